//! The verified-token cache seen from the pipeline: what an API client notices (same answers,
//! fewer signature checks) and what it must never notice (an expired, rotated-out or
//! under-privileged token let through).

use super::*;
use crate::ports::OutgoingRequest;
use crate::testkit::idp::Signer;
use std::cell::RefCell;

const ROUTES: &str = r#"[
    {"prefix": "/api/", "auth": "bearer", "scopes": ["orders.read"]},
    {"prefix": "/api/admin/", "auth": "bearer", "roles": ["Admin"]}
]"#;

/// A provider whose published keys the test changes (hard rotation), with the gateway and
/// ports around it.
struct Api {
    published: Rc<RefCell<Vec<serde_json::Value>>>,
    ports: TestPorts,
    gateway: Gateway<TestPorts>,
}

fn api(first: &Signer) -> Api {
    let published = Rc::new(RefCell::new(vec![first.jwk()]));
    let jwks = Rc::clone(&published);
    let http = FakeHttp::new(move |req: &OutgoingRequest| match req.uri().path() {
        "/.well-known/openid-configuration" => Ok(json_response(
            200,
            &json!({
                "issuer": ISSUER, "authorization_endpoint": format!("{ISSUER}/authorize"),
                "token_endpoint": format!("{ISSUER}/token"), "jwks_uri": format!("{ISSUER}/jwks"),
            }),
        )),
        "/jwks" => Ok(json_response(200, &json!({"keys": *jwks.borrow()}))),
        _ => Ok(json_response(404, &json!({}))),
    });
    let gateway = Gateway::new(config(&[("ROUTES", ROUTES), ("API_AUDIENCES", "https://api.example.test")]));
    Api { published, ports: TestPorts::new(http, NOW), gateway }
}

fn token(signer: &Signer, overrides: serde_json::Value) -> String {
    let mut claims = json!({
        "iss": ISSUER, "sub": "client-app", "aud": "https://api.example.test", "exp": NOW + 300, "iat": NOW,
        "scope": "orders.read",
    });
    claims.as_object_mut().unwrap().extend(overrides.as_object().unwrap().clone());
    signer.sign(&json!({"alg": "ES256", "kid": signer.kid, "typ": "at+jwt"}), &claims)
}

fn get(api: &Api, path: &str, token: &str) -> Decision {
    let req =
        request(Method::GET, path, &[("authorization", &format!("Bearer {token}")), ("accept", "application/json")]);
    block_on(api.gateway.handle(&api.ports, &req))
}

fn status(d: &Decision) -> (u16, &'static str) {
    match &d.outcome {
        Outcome::Forward(_) => (200, d.log.reason),
        Outcome::Respond(r) => (r.status().as_u16(), d.log.reason),
    }
}

#[test]
fn a_repeated_token_is_served_without_another_signature_check() {
    let signer = Signer::new("k1");
    let api = api(&signer);
    let t = token(&signer, json!({"email": "svc@example.com", "email_verified": true}));
    let first = get(&api, "/api/orders", &t);
    assert_eq!(status(&first), (200, "bearer_forwarded"));
    assert_eq!(api.ports.crypto.verifications(), 1);
    for _ in 0..5 {
        let again = get(&api, "/api/orders", &t);
        assert_eq!(status(&again), (200, "bearer_forwarded"));
        assert_eq!(set_header(&again, "x-forwarded-user").as_deref(), Some("client-app"));
        assert_eq!(set_header(&again, "x-forwarded-email").as_deref(), Some("svc@example.com"));
    }
    assert_eq!(api.ports.crypto.verifications(), 1, "hits skip the signature");
    assert_eq!(api.ports.http.count("/jwks"), 1);
    assert_eq!(api.ports.kv.reads(), 0);
}

#[test]
fn a_cached_token_expires_on_time() {
    let signer = Signer::new("k1");
    let api = api(&signer);
    let t = token(&signer, json!({}));
    assert_eq!(status(&get(&api, "/api/orders", &t)).0, 200);
    // exp is NOW + 300 and the default skew 60 s: valid until just before NOW + 360.
    api.ports.clock.advance_secs(359);
    assert_eq!(status(&get(&api, "/api/orders", &t)).0, 200);
    api.ports.clock.advance_secs(1);
    assert_eq!(status(&get(&api, "/api/orders", &t)), (401, "token_expired"));
    assert_eq!(api.ports.crypto.verifications(), 1, "refused from the cache, as the full path would");
    assert_eq!(api.gateway.verified_tokens.len(), 0);
}

#[test]
fn a_cached_token_is_refused_once_its_key_is_rotated_out() {
    let (old, new) = (Signer::new("k1"), Signer::new("k2"));
    let api = api(&old);
    let t = token(&old, json!({"exp": NOW + 86_400}));
    assert_eq!(status(&get(&api, "/api/orders", &t)).0, 200);
    // Hard rotation at the provider; the gateway learns of it when a token with the new kid
    // arrives (one refetch).
    *api.published.borrow_mut() = vec![new.jwk()];
    api.ports.clock.advance_secs(30);
    assert_eq!(status(&get(&api, "/api/orders", &token(&new, json!({})))).0, 200);
    assert_eq!(api.ports.http.count("/jwks"), 2);
    assert_eq!(status(&get(&api, "/api/orders", &t)), (401, "kid_unknown"));
}

#[test]
fn a_cached_token_is_refused_after_a_scheduled_jwks_refresh_drops_its_key() {
    let (old, new) = (Signer::new("k1"), Signer::new("k2"));
    let api = api(&old);
    let t = token(&old, json!({"exp": NOW + 86_400}));
    assert_eq!(status(&get(&api, "/api/orders", &t)).0, 200);
    *api.published.borrow_mut() = vec![new.jwk()];
    // Keys are cached for an hour without Cache-Control; past that the next request refreshes.
    api.ports.clock.advance_secs(3601);
    assert_eq!(status(&get(&api, "/api/orders", &t)), (401, "kid_unknown"));
    assert_eq!(api.gateway.verified_tokens.len(), 0);
}

#[test]
fn route_policy_is_checked_on_every_hit() {
    let signer = Signer::new("k1");
    let api = api(&signer);
    let reader = token(&signer, json!({}));
    assert_eq!(status(&get(&api, "/api/orders", &reader)).0, 200);
    assert_eq!(status(&get(&api, "/api/admin/users", &reader)), (403, "role_missing"));
    assert_eq!(status(&get(&api, "/api/orders", &reader)).0, 200);
    // And the other way round: first seen on the stricter route, where it is refused.
    let admin_without_scope = token(&signer, json!({"scope": "other", "roles": ["Admin"]}));
    assert_eq!(status(&get(&api, "/api/admin/users", &admin_without_scope)).0, 200);
    assert_eq!(status(&get(&api, "/api/orders", &admin_without_scope)), (403, "scope_missing"));
    assert_eq!(api.ports.crypto.verifications(), 2);
}

#[test]
fn refused_tokens_never_enter_the_cache() {
    let (signer, stranger) = (Signer::new("k1"), Signer::new("k1"));
    let api = api(&signer);
    let refused = [
        (token(&stranger, json!({})), "signature_invalid"),
        (token(&signer, json!({"aud": "someone-else"})), "audience_mismatch"),
        (token(&signer, json!({"nbf": NOW + 600, "exp": NOW + 3600})), "token_not_yet_valid"),
        (token(&signer, json!({"sub": null})), "sub_missing"),
    ];
    for (t, reason) in &refused {
        assert_eq!(status(&get(&api, "/api/orders", t)), (401, *reason));
    }
    assert_eq!(api.gateway.verified_tokens.len(), 0);
    // Refused again in full, never from memory.
    let before = api.ports.crypto.verifications();
    assert_eq!(status(&get(&api, "/api/orders", &refused[0].0)).1, "signature_invalid");
    assert_eq!(api.ports.crypto.verifications(), before + 1);
    // A not-yet-valid token becomes valid when its time comes, checked in full then.
    api.ports.clock.advance_secs(600);
    assert_eq!(status(&get(&api, "/api/orders", &refused[2].0)).0, 200);
}

#[test]
fn a_flood_of_distinct_valid_tokens_keeps_the_cache_bounded_and_the_regular_caller_cached() {
    let signer = Signer::new("k1");
    let api = api(&signer);
    let regular = token(&signer, json!({"sub": "regular"}));
    assert_eq!(status(&get(&api, "/api/orders", &regular)).0, 200);
    assert_eq!(status(&get(&api, "/api/orders", &regular)).0, 200);
    let cap = crate::jwt::verified_cache::DEFAULT_CAPACITY;
    for i in 0..cap + 200 {
        let t = token(&signer, json!({"sub": format!("flood-{i}")}));
        assert_eq!(status(&get(&api, "/api/orders", &t)).0, 200);
    }
    assert_eq!(api.gateway.verified_tokens.len(), cap);
    let before = api.ports.crypto.verifications();
    assert_eq!(status(&get(&api, "/api/orders", &regular)).0, 200);
    assert_eq!(api.ports.crypto.verifications(), before, "the regular caller is still a hit");
}
