//! The exact token-endpoint and revocation requests for every grant the gateway makes (code,
//! refresh, client credentials, on-behalf-of, revocation), under each client authentication method (RFC 6749 §2.3.1, RFC 7523 §2.2).

use super::*;
use crate::jwt::JwsAlgorithm;
use crate::ports::OutgoingRequest;
use crate::ports::SignatureVerifier;
use crate::testkit::native_crypto::{TestKey, rsa_a_pem};
use base64::Engine;

type Form = HashMap<String, String>;

fn form(req: &OutgoingRequest) -> Form {
    url::form_urlencoded::parse(req.body()).into_owned().collect()
}

const ROUTES: &str = r#"[{"prefix": "/app/", "origin_token": "app", "token_target": {"scope": "api://x/.default"}},
    {"prefix": "/obo/", "origin_token": "on_behalf_of", "token_target": {"resource": "api://y"}},
    {"prefix": "/"}]"#;

/// Sign in, refresh once, call an app-token route, sign out; the token and revocation requests
/// the provider saw.
fn whole_session(overrides: &[(&str, &str)]) -> Vec<OutgoingRequest> {
    let mut w = world();
    w.gateway = Gateway::new(config(&[&[("SESSION_IDLE_TIMEOUT", "8h"), ("ROUTES", ROUTES)], overrides].concat()));
    let session = sign_in(&w, "/");
    w.ports.clock.advance_secs(3600);
    let d = block_on(w.gateway.handle(&w.ports, &request(Method::GET, "/x", &[("cookie", &session)])));
    assert!(matches!(d.outcome, Outcome::Forward(_)), "{:?}", d.log);
    let d = block_on(w.gateway.handle(&w.ports, &request(Method::GET, "/app/x", &[("cookie", &session)])));
    assert_eq!(set_header(&d, "authorization").as_deref(), Some("Bearer app-token-1"), "{:?}", d.log);
    let d = block_on(w.gateway.handle(&w.ports, &request(Method::GET, "/obo/x", &[("cookie", &session)])));
    assert_eq!(set_header(&d, "authorization").as_deref(), Some("Bearer obo-token-1"), "{:?}", d.log);
    let post = request(Method::POST, "/auth/logout", &[("cookie", &session), ("origin", "https://gw.example.com")]);
    assert_eq!(response(&block_on(w.gateway.handle(&w.ports, &post))).status(), 200);
    let sent = w.ports.http.sent.borrow();
    let calls: Vec<OutgoingRequest> = sent
        .iter()
        .filter(|r| matches!(r.uri().path(), "/token" | "/revoke"))
        .map(|r| {
            let mut copy = http::Request::new(r.body().clone());
            *copy.uri_mut() = r.uri().clone();
            *copy.method_mut() = r.method().clone();
            *copy.headers_mut() = r.headers().clone();
            copy
        })
        .collect();
    assert_eq!(calls.len(), 5, "code, refresh, client credentials, token exchange, revocation");
    calls
}

fn grant_fields(calls: &[OutgoingRequest]) {
    let (code, refresh, app) = (form(&calls[0]), form(&calls[1]), form(&calls[2]));
    let (exchange, revoke) = (form(&calls[3]), form(&calls[4]));
    assert_eq!(code["grant_type"], "authorization_code");
    assert_eq!(code["code"], "the-code");
    assert_eq!(code["redirect_uri"], "https://gw.example.com/auth/callback");
    assert_eq!(refresh["grant_type"], "refresh_token");
    assert_eq!(refresh["refresh_token"], "refresh-token-1");
    assert_eq!(app["grant_type"], "client_credentials");
    assert_eq!(app["scope"], "api://x/.default");
    assert_eq!(exchange["grant_type"], "urn:ietf:params:oauth:grant-type:token-exchange");
    assert_eq!(exchange["subject_token"], "access-token-2");
    assert_eq!(exchange["resource"], "api://y");
    assert_eq!(revoke["token"], "refresh-token-2");
    assert_eq!(revoke["token_type_hint"], "refresh_token");
    for call in calls {
        assert_eq!(call.method(), Method::POST);
        assert_eq!(call.headers()["content-type"], "application/x-www-form-urlencoded");
    }
}

#[test]
fn client_secret_basic_on_every_call() {
    let calls = whole_session(&[("OIDC_CLIENT_SECRET", "p@ss:w%rd+ é")]);
    grant_fields(&calls);
    for call in &calls {
        let header = call.headers()["authorization"].to_str().unwrap();
        let decoded = base64::engine::general_purpose::STANDARD.decode(header.strip_prefix("Basic ").unwrap()).unwrap();
        assert_eq!(String::from_utf8(decoded).unwrap(), "edgeguard:p%40ss%3Aw%25rd%2B+%C3%A9");
        assert!(!form(call).contains_key("client_secret"));
    }
}

#[test]
fn client_secret_post_on_every_call() {
    let calls = whole_session(&[("OIDC_CLIENT_AUTH_METHOD", "client_secret_post")]);
    grant_fields(&calls);
    for call in &calls {
        assert!(call.headers().get("authorization").is_none());
        let f = form(call);
        assert_eq!((f["client_id"].as_str(), f["client_secret"].as_str()), ("edgeguard", "client-secret"));
        assert!(!f.contains_key("client_assertion"));
    }
}

/// Check one client assertion: signature with `key`, header, and RFC 7523 §3 claims.
fn check_assertion(f: &Form, key: &TestKey, alg: JwsAlgorithm, jtis: &mut Vec<String>) -> serde_json::Value {
    assert_eq!(f["client_id"], "edgeguard");
    assert_eq!(f["client_assertion_type"], "urn:ietf:params:oauth:client-assertion-type:jwt-bearer");
    assert!(!f.contains_key("client_secret"));
    let jwt = &f["client_assertion"];
    let (input, sig) = jwt.rsplit_once('.').unwrap();
    let verifier = crate::testkit::native_crypto::NativeVerifier::default();
    let jwk: crate::jwt::Jwk = serde_json::from_value(key.jwk("")).unwrap();
    let public = block_on(verifier.import_key(&jwk, alg)).unwrap();
    let sig = crate::encoding::b64url_decode(sig).unwrap();
    assert!(block_on(verifier.verify(&public, alg, input.as_bytes(), &sig)).unwrap(), "signature verifies");
    let part = |i: usize| -> serde_json::Value {
        serde_json::from_slice(&crate::encoding::b64url_decode(input.split('.').nth(i).unwrap()).unwrap()).unwrap()
    };
    let (header, claims) = (part(0), part(1));
    assert_eq!(header["alg"], alg.name());
    assert_eq!(claims["iss"], "edgeguard");
    assert_eq!(claims["sub"], "edgeguard");
    assert_eq!(claims["aud"], format!("{}/token", crate::testkit::idp::ISSUER));
    let (iat, exp) = (claims["iat"].as_u64().unwrap(), claims["exp"].as_u64().unwrap());
    assert!(exp > iat && exp - iat <= 300, "exp at most 5 minutes on");
    let jti = claims["jti"].as_str().unwrap().to_owned();
    assert!(jti.len() >= 22 && !jtis.contains(&jti), "fresh jti each time");
    jtis.push(jti);
    header
}

#[test]
fn private_key_jwt_rs256_on_every_call_with_entra_thumbprints() {
    let pem = rsa_a_pem();
    let sha256 = "AB".repeat(32);
    let calls = whole_session(&[
        ("OIDC_CLIENT_AUTH_METHOD", "private_key_jwt"),
        ("OIDC_CLIENT_PRIVATE_KEY", &pem),
        ("OIDC_CLIENT_CERT_THUMBPRINT_SHA256", &sha256),
        ("OIDC_CLIENT_CERT_THUMBPRINT_SHA1", "5B:AA:61:E4:C9:B9:3F:3F:06:82:25:0B:6C:F8:33:1B:7E:E6:8F:D8"),
    ]);
    grant_fields(&calls);
    let mut jtis = Vec::new();
    for call in &calls {
        assert!(call.headers().get("authorization").is_none());
        let header = check_assertion(&form(call), &TestKey::rsa_a(), JwsAlgorithm::Rs256, &mut jtis);
        assert_eq!(header["x5t"], "W6ph5Mm5Pz8GgiULbPgzG37mj9g");
        assert_eq!(header["x5t#S256"], crate::encoding::b64url(&[0xAB; 32]));
    }
}

#[test]
fn private_key_jwt_ps256_and_es256() {
    let pem = rsa_a_pem();
    let calls = whole_session(&[
        ("OIDC_CLIENT_AUTH_METHOD", "private_key_jwt"),
        ("OIDC_CLIENT_PRIVATE_KEY", &pem),
        ("OIDC_CLIENT_ASSERTION_ALG", "PS256"),
    ]);
    let mut jtis = Vec::new();
    for call in &calls {
        let header = check_assertion(&form(call), &TestKey::rsa_a(), JwsAlgorithm::Ps256, &mut jtis);
        assert!(header.get("x5t").is_none());
    }
    let (key, pem) = TestKey::es256_with_pem();
    let calls = whole_session(&[("OIDC_CLIENT_AUTH_METHOD", "private_key_jwt"), ("OIDC_CLIENT_PRIVATE_KEY", &pem)]);
    let mut jtis = Vec::new();
    for call in &calls {
        check_assertion(&form(call), &key, JwsAlgorithm::Es256, &mut jtis);
    }
}

#[test]
fn an_unusable_private_key_is_a_500_naming_the_key_never_a_panic() {
    // Structurally PKCS#8 (it passes the start-up check) but not a usable RSA key.
    let der = [
        0x30, 0x14, 0x02, 0x01, 0x00, 0x30, 0x0B, 0x06, 0x09, 0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x01, 0x01,
        0x04, 0x02, 0x30, 0x00,
    ];
    let pem = crate::testkit::native_crypto::pem(&der);
    let mut w = world();
    w.gateway =
        Gateway::new(config(&[("OIDC_CLIENT_AUTH_METHOD", "private_key_jwt"), ("OIDC_CLIENT_PRIVATE_KEY", &pem)]));
    let (q, tx) = start(&w, "/");
    let d = callback(&w, &format!("code=c&state={}", q["state"]), &tx);
    assert_eq!(response(&d).status(), 500);
    assert_eq!(d.log.reason, "signing_key_unusable");
    assert_eq!(w.ports.http.count("/token"), 0);
}
