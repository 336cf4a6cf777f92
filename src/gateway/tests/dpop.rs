//! DPoP-bound tokens on bearer routes (RFC 9449 §7), through the whole pipeline.

use super::bearer::{ROUTES, access_token, api_world, call, challenge};
use super::*;
use crate::dpop::jwk_thumbprint;
use crate::encoding::{b64url, sha256};
use crate::testkit::native_crypto::{TestKey, sign_token};

fn jkt(key: &TestKey) -> String {
    jwk_thumbprint(key.jwk("").as_object().unwrap()).unwrap()
}

fn proof(key: &TestKey, method: &str, url: &str, token: &str, jti: &str) -> String {
    let header = json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": key.jwk("")});
    let claims = json!({"jti": jti, "htm": method, "htu": url, "iat": NOW, "ath": b64url(&sha256(token.as_bytes()))});
    sign_token(key, &header, &claims)
}

fn dpop_call(w: &World, token: &str, proof: &str) -> Decision {
    let auth = format!("DPoP {token}");
    call(w, Method::GET, "/api/orders", &[("authorization", &auth), ("dpop", proof), ("accept", "application/json")])
}

const URL: &str = "https://gw.example.com/api/orders";

#[test]
fn a_bound_token_with_its_proof_is_forwarded_with_the_confirmation() {
    let w = api_world();
    let key = TestKey::es256();
    let token = access_token(&w, json!({"cnf": {"jkt": jkt(&key)}}));
    let d = dpop_call(&w, &token, &proof(&key, "GET", URL, &token, "p1"));
    let Outcome::Forward(plan) = &d.outcome else { panic!("{:?}", d.log) };
    assert!(!plan.headers.remove.iter().any(|n| n == "authorization"), "the caller's DPoP header passes as sent");
    assert_eq!(set_header(&d, "x-edgeguard-dpop-jkt"), Some(jkt(&key)));
    assert_eq!(set_header(&d, "x-forwarded-user").as_deref(), Some("client-app"));
}

#[test]
fn every_binding_failure_is_a_401_with_a_dpop_challenge() {
    let w = api_world();
    let key = TestKey::es256();
    let other = TestKey::es256();
    let token = access_token(&w, json!({"cnf": {"jkt": jkt(&key)}}));
    let unbound = access_token(&w, json!({}));
    let cases = [
        ("no proof", dpop_call(&w, &token, ""), "dpop_proof_missing"),
        ("wrong htm", dpop_call(&w, &token, &proof(&key, "POST", URL, &token, "a")), "dpop_htm_mismatch"),
        (
            "wrong htu",
            dpop_call(&w, &token, &proof(&key, "GET", "https://gw.example.com/api/admin/x", &token, "b")),
            "dpop_htu_mismatch",
        ),
        ("wrong ath", dpop_call(&w, &token, &proof(&key, "GET", URL, "another-token", "c")), "dpop_ath_mismatch"),
        ("another key", dpop_call(&w, &token, &proof(&other, "GET", URL, &token, "d")), "dpop_key_mismatch"),
        ("unbound token", dpop_call(&w, &unbound, &proof(&key, "GET", URL, &unbound, "e")), "dpop_key_mismatch"),
    ];
    for (name, d, reason) in cases {
        assert_eq!(response(&d).status(), 401, "{name}");
        assert_eq!(d.log.reason, reason, "{name}");
        assert!(challenge(&d).starts_with("DPoP realm=\"gw.example.com\", algs=\""), "{name}: {}", challenge(&d));
    }
}

#[test]
fn a_proof_is_used_once() {
    let w = api_world();
    let key = TestKey::es256();
    let token = access_token(&w, json!({"cnf": {"jkt": jkt(&key)}}));
    let p = proof(&key, "GET", URL, &token, "once");
    assert!(matches!(dpop_call(&w, &token, &p).outcome, Outcome::Forward(_)));
    let d = dpop_call(&w, &token, &p);
    assert_eq!(d.log.reason, "dpop_proof_replayed");
    assert!(challenge(&d).contains("error=\"invalid_dpop_proof\""), "{}", challenge(&d));
    assert!(matches!(dpop_call(&w, &token, &proof(&key, "GET", URL, &token, "twice")).outcome, Outcome::Forward(_)));
}

#[test]
fn a_bound_token_sent_as_bearer_is_refused() {
    let w = api_world();
    let key = TestKey::es256();
    let token = access_token(&w, json!({"cnf": {"jkt": jkt(&key)}}));
    let d = call(&w, Method::GET, "/api/orders", &[("authorization", &format!("Bearer {token}"))]);
    assert_eq!(response(&d).status(), 401);
    assert_eq!(d.log.reason, "dpop_bound_token_as_bearer");
    assert!(challenge(&d).starts_with("Bearer realm="), "{}", challenge(&d));
    assert!(challenge(&d).contains("error=\"invalid_token\""));
}

#[test]
fn a_route_can_require_dpop() {
    let mut w = api_world();
    let routes = ROUTES.replace(r#""cors_preflight": true}"#, r#""cors_preflight": true, "dpop": "required"}"#);
    w.gateway = Gateway::new(config(&[("ROUTES", &routes), ("API_AUDIENCES", "https://api.example.test")]));
    let unbound = access_token(&w, json!({}));
    let d = call(&w, Method::GET, "/api/orders", &[("authorization", &format!("Bearer {unbound}"))]);
    assert_eq!(d.log.reason, "dpop_required");
    assert!(challenge(&d).starts_with("DPoP realm="), "{}", challenge(&d));
    let d = call(&w, Method::GET, "/api/orders", &[("accept", "application/json")]);
    assert_eq!(d.log.reason, "token_missing");
    assert_eq!(
        challenge(&d),
        "DPoP realm=\"gw.example.com\", algs=\"ES256 ES384 RS256 RS384 RS512 PS256 PS384 PS512 EdDSA\"",
        "no error code when no credentials were presented"
    );
    let key = TestKey::es256();
    let token = access_token(&w, json!({"cnf": {"jkt": jkt(&key)}}));
    assert!(matches!(dpop_call(&w, &token, &proof(&key, "GET", URL, &token, "ok")).outcome, Outcome::Forward(_)));
}

#[test]
fn a_dpop_request_with_a_bad_token_gets_a_dpop_challenge() {
    let w = api_world();
    let key = TestKey::es256();
    let d = dpop_call(&w, "not.a.token", &proof(&key, "GET", URL, "not.a.token", "x"));
    assert_eq!(response(&d).status(), 401);
    assert!(challenge(&d).starts_with("DPoP realm="), "{}", challenge(&d));
    assert!(challenge(&d).contains("error=\"invalid_token\""));
}

#[test]
fn a_cached_bound_token_still_needs_a_fresh_proof_on_every_request() {
    let w = api_world();
    let key = TestKey::es256();
    let token = access_token(&w, json!({"cnf": {"jkt": jkt(&key)}}));
    assert!(matches!(dpop_call(&w, &token, &proof(&key, "GET", URL, &token, "first")).outcome, Outcome::Forward(_)));
    let verified_once = w.ports.crypto.verifications();
    // The token is now in the verified-token cache: the binding is judged anew each time.
    assert_eq!(dpop_call(&w, &token, "").log.reason, "dpop_proof_missing");
    let d = call(&w, Method::GET, "/api/orders", &[("authorization", &format!("Bearer {token}"))]);
    assert_eq!(d.log.reason, "dpop_bound_token_as_bearer");
    let stolen_proof = proof(&TestKey::es256(), "GET", URL, &token, "other-key");
    assert_eq!(dpop_call(&w, &token, &stolen_proof).log.reason, "dpop_key_mismatch");
    assert!(matches!(dpop_call(&w, &token, &proof(&key, "GET", URL, &token, "second")).outcome, Outcome::Forward(_)));
    // After the first request only proofs were signature-checked (at most the three presented),
    // never the token again (that would add one per request: four).
    assert!(w.ports.crypto.verifications() - verified_once <= 3);
}

fn proof_with_nonce(key: &TestKey, token: &str, jti: &str, nonce: Option<&str>) -> String {
    let header = json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": key.jwk("")});
    let mut claims =
        json!({"jti": jti, "htm": "GET", "htu": URL, "iat": NOW, "ath": b64url(&sha256(token.as_bytes()))});
    if let Some(nonce) = nonce {
        claims["nonce"] = json!(nonce);
    }
    sign_token(key, &header, &claims)
}

fn world_with(settings: &[(&str, &str)]) -> World {
    let mut w = api_world();
    let mut all = vec![("ROUTES", ROUTES), ("API_AUDIENCES", "https://api.example.test")];
    all.extend_from_slice(settings);
    w.gateway = Gateway::new(config(&all));
    w
}

#[test]
fn with_dpop_nonce_a_proof_needs_the_servers_nonce() {
    let w = world_with(&[("DPOP_NONCE", "true")]);
    let key = TestKey::es256();
    let token = access_token(&w, json!({"cnf": {"jkt": jkt(&key)}}));
    let d = dpop_call(&w, &token, &proof_with_nonce(&key, &token, "n1", None));
    assert_eq!(response(&d).status(), 401);
    assert_eq!(d.log.reason, "dpop_nonce_missing");
    assert!(challenge(&d).starts_with("DPoP realm="), "{}", challenge(&d));
    assert!(challenge(&d).contains("error=\"use_dpop_nonce\""), "{}", challenge(&d));
    let nonce = response(&d).headers()["dpop-nonce"].to_str().unwrap().to_owned();
    assert_eq!(nonce.len(), 43);
    let d = dpop_call(&w, &token, &proof_with_nonce(&key, &token, "n2", Some("made-up")));
    assert_eq!(d.log.reason, "dpop_nonce_invalid");
    assert_eq!(response(&d).headers()["dpop-nonce"], nonce.as_str(), "the same window's nonce");
    let d = dpop_call(&w, &token, &proof_with_nonce(&key, &token, "n3", Some(&nonce)));
    let Outcome::Forward(plan) = &d.outcome else { panic!("{:?}", d.log) };
    assert_eq!(plan.answer_headers, vec![("dpop-nonce", nonce.clone())], "the answer carries the current nonce");
    // Another isolate (same SESSION_SECRET) accepts it too: nothing is stored.
    let other = Gateway::new(config(&[
        ("ROUTES", ROUTES),
        ("API_AUDIENCES", "https://api.example.test"),
        ("DPOP_NONCE", "true"),
    ]));
    let req = request(
        Method::GET,
        "/api/orders",
        &[("authorization", &format!("DPoP {token}")), ("dpop", &proof_with_nonce(&key, &token, "n4", Some(&nonce)))],
    );
    assert!(matches!(block_on(other.handle(&w.ports, &req)).outcome, Outcome::Forward(_)));
    // Without the setting, nonces are neither required nor offered.
    let plain = Gateway::new(config(&[("ROUTES", ROUTES), ("API_AUDIENCES", "https://api.example.test")]));
    let req = request(
        Method::GET,
        "/api/orders",
        &[("authorization", &format!("DPoP {token}")), ("dpop", &proof_with_nonce(&key, &token, "n5", None))],
    );
    let d = block_on(plain.handle(&w.ports, &req));
    let Outcome::Forward(plan) = &d.outcome else { panic!("{:?}", d.log) };
    assert!(plan.answer_headers.is_empty(), "no DPoP-Nonce without the setting");
}

#[test]
fn with_dpop_replay_kv_a_proof_replayed_to_another_isolate_is_refused() {
    let w = world_with(&[("DPOP_REPLAY_KV", "true")]);
    let key = TestKey::es256();
    let token = access_token(&w, json!({"cnf": {"jkt": jkt(&key)}}));
    let p = proof(&key, "GET", URL, &token, "kv-1");
    assert!(matches!(dpop_call(&w, &token, &p).outcome, Outcome::Forward(_)));
    let keys = block_on(crate::ports::KvStore::list(&w.ports.kv, "dpop-jti:v1:")).unwrap();
    assert_eq!(keys.len(), 1, "one record, under a hash");
    assert!(!keys[0].contains("kv-1"));
    let (_, ttl) = w.ports.kv.entry(&keys[0]).unwrap();
    assert!((60..=200).contains(&ttl), "as long as the proof's window, at least KV's 60 s: {ttl}");
    let isolate = |settings: &[(&str, &str)]| {
        let mut all = vec![("ROUTES", ROUTES), ("API_AUDIENCES", "https://api.example.test")];
        all.extend_from_slice(settings);
        Gateway::new(config(&all))
    };
    let req = request(Method::GET, "/api/orders", &[("authorization", &format!("DPoP {token}")), ("dpop", &p)]);
    let d = block_on(isolate(&[("DPOP_REPLAY_KV", "true")]).handle(&w.ports, &req));
    assert_eq!(d.log.reason, "dpop_proof_replayed");
    assert_eq!(response(&d).status(), 401);
    let d = block_on(isolate(&[]).handle(&w.ports, &req));
    assert!(matches!(d.outcome, Outcome::Forward(_)), "without the setting, only the isolate remembers");
}

#[test]
fn with_dpop_replay_kv_a_kv_outage_is_logged_not_refused() {
    let w = world_with(&[("DPOP_REPLAY_KV", "true")]);
    let key = TestKey::es256();
    let token = access_token(&w, json!({"cnf": {"jkt": jkt(&key)}}));
    assert!(matches!(dpop_call(&w, &token, &proof(&key, "GET", URL, &token, "warm")).outcome, Outcome::Forward(_)));
    w.ports.kv.fail.set(true);
    let p = proof(&key, "GET", URL, &token, "kv-down");
    let d = dpop_call(&w, &token, &p);
    assert!(matches!(d.outcome, Outcome::Forward(_)), "{:?}", d.log);
    assert!(d.log.notes.contains(&"dpop_replay_kv_unavailable"), "{:?}", d.log.notes);
    assert!(!d.quiet);
    assert_eq!(dpop_call(&w, &token, &p).log.reason, "dpop_proof_replayed", "the isolate still remembers it");
}
