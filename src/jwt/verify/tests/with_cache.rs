//! `verify_with_cache`: the gateway's entry point, end to end with a scripted provider.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use super::*;
use crate::jwt::{DEFAULT_MAX_TOKEN_LEN, ErrorClass, IssuerRule, JwksCache, JwksCachePolicy, JwksError};
use crate::ports::Clock;
use crate::testkit::native_crypto::{NativeKey, TestKey, jwks_doc, jwks_response, sign_token};
use crate::testkit::ports::TestPorts;
use futures::executor::block_on;
use serde_json::{Value, json};

const NOW: u64 = 1_700_000_000;
const ISS: &str = "https://idp.example";
const JWKS_URI: &str = "https://idp.example/jwks";

/// Claims that outlive the clock moves below.
fn long_claims() -> Value {
    json!({"iss": ISS, "aud": "api", "sub": "alice", "exp": NOW + 86_400, "iat": NOW - 5})
}

fn rules() -> ClaimRules {
    ClaimRules::new(IssuerRule::Exact(ISS.into()), vec!["api".into()])
}

fn verify_cached(ports: &TestPorts, cache: &JwksCache<NativeKey>, token: &str) -> Verification {
    let parsed = UnverifiedJwt::parse(token, DEFAULT_MAX_TOKEN_LEN).unwrap();
    block_on(verify_with_cache(ports, cache, JWKS_URI, &parsed, &JwsAlgorithm::ALL, &rules(), ports.now_secs()))
}

#[test]
fn key_rotation_is_picked_up_through_one_refetch() {
    let (old, new) = (TestKey::rsa_a(), TestKey::rsa_b());
    let ports = TestPorts::at_secs(NOW);
    ports.http.then(jwks_response(200, jwks_doc(&[old.jwk("k1")]), None));
    ports.http.then(jwks_response(200, jwks_doc(&[old.jwk("k1"), new.jwk("k2")]), None));
    let cache = JwksCache::new(JwksCachePolicy::default());

    let v = verify_cached(&ports, &cache, &sign_token(&old, &json!({"alg": "RS256", "kid": "k1"}), &long_claims()));
    assert!(v.result.is_ok() && v.events.is_empty());
    ports.clock.advance_secs(30);
    let rotated = sign_token(&new, &json!({"alg": "RS256", "kid": "k2"}), &long_claims());
    let v = verify_cached(&ports, &cache, &rotated);
    assert_eq!(v.result.unwrap().sub(), Some("alice"));
    assert_eq!(ports.http.calls(), 2);
}

#[test]
fn forged_kids_cost_at_most_one_fetch_per_cooldown() {
    let key = TestKey::rsa_a();
    let ports = TestPorts::at_secs(NOW);
    ports.http.always(jwks_response(200, jwks_doc(&[key.jwk("k1")]), None));
    let cache = JwksCache::new(JwksCachePolicy::default());
    let forged = |i: usize| {
        let token = sign_token(&key, &json!({"alg": "RS256", "kid": format!("forged-{i}")}), &long_claims());
        assert_eq!(verify_cached(&ports, &cache, &token).result.unwrap_err(), JwtError::KidUnknown);
    };
    // The first request fetches, and its unknown kid earns one refetch; the other 49 fall in
    // that refetch's cooldown.
    (0..50).for_each(forged);
    assert_eq!(ports.http.calls(), 2);
    // After the cooldown, one refetch for the first new kid; the rest fall in the new cooldown,
    // and the kids already refused are remembered.
    ports.clock.advance_secs(11);
    (0..100).for_each(forged);
    assert_eq!(ports.http.calls(), 3);
}

#[test]
fn provider_down_without_cached_keys_is_a_provider_error() {
    let ports = TestPorts::at_secs(NOW);
    ports.http.always(jwks_response(503, Vec::new(), None));
    let cache = JwksCache::new(JwksCachePolicy::default());
    let token = sign_token(&TestKey::rsa_a(), &json!({"alg": "RS256", "kid": "k1"}), &long_claims());
    let err = verify_cached(&ports, &cache, &token).result.unwrap_err();
    assert_eq!(err, JwtError::Jwks(JwksError::Status(503)));
    assert_eq!(err.class(), ErrorClass::Provider);
    assert_eq!(err.reason(), "jwks_http_status");
}

#[test]
fn provider_down_with_cached_keys_verifies_and_reports() {
    let key = TestKey::rsa_a();
    let ports = TestPorts::at_secs(NOW);
    ports.http.then(jwks_response(200, jwks_doc(&[key.jwk("k1")]), Some("max-age=600")));
    ports.http.always(jwks_response(500, Vec::new(), None));
    let cache = JwksCache::new(JwksCachePolicy::default());
    let token = sign_token(&key, &json!({"alg": "RS256", "kid": "k1"}), &long_claims());
    assert!(verify_cached(&ports, &cache, &token).result.is_ok());
    ports.clock.advance_secs(601);
    let v = verify_cached(&ports, &cache, &token);
    assert!(v.result.is_ok());
    assert_eq!(v.events.len(), 1);
    assert_eq!(v.events[0].reason(), "jwks_refresh_failed_using_cached");
}
