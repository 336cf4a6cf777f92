#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use super::*;
use crate::ports::HttpError;
use crate::testkit::native_crypto::{NativeKey, TestKey, jwks_doc, jwks_response};
use crate::testkit::ports::TestPorts;
use futures::FutureExt;
use futures::executor::block_on;
use futures::future::join_all;

const URI: &str = "https://idp.example/discovery/keys";
const T0: u64 = 1_700_000_000;

fn doc(kids: &[&str]) -> Vec<u8> {
    let key = TestKey::rsa_a();
    jwks_doc(&kids.iter().map(|kid| key.jwk(kid)).collect::<Vec<_>>())
}

type Answer = Result<http::Response<Vec<u8>>, HttpError>;

fn ok(kids: &[&str], cache_control: Option<&str>) -> Answer {
    jwks_response(200, doc(kids), cache_control)
}

fn cache() -> JwksCache<NativeKey> {
    JwksCache::new(JwksCachePolicy::default())
}

fn get(ports: &TestPorts, cache: &JwksCache<NativeKey>) -> Result<KeyLookup<NativeKey>, JwtError> {
    block_on(cache.key_set(ports, URI))
}

fn refetch(ports: &TestPorts, cache: &JwksCache<NativeKey>, kid: &str) -> KeyLookup<NativeKey> {
    block_on(cache.refetch_for_unknown_kid(ports, URI, kid)).unwrap()
}

#[test]
fn fetches_on_first_use_then_serves_from_memory() {
    let ports = TestPorts::at_secs(T0);
    ports.http.always(ok(&["k1"], None));
    let cache = cache();
    let first = get(&ports, &cache).unwrap();
    let second = get(&ports, &cache).unwrap();
    assert!(Rc::ptr_eq(&first.keys, &second.keys));
    assert!(first.event.is_none() && second.event.is_none());
    assert_eq!(ports.http.calls(), 1);
}

#[test]
fn max_age_is_respected_within_bounds() {
    // (Cache-Control, seconds the keys stay fresh)
    let cases: &[(Option<&str>, u64)] = &[
        (Some("public, max-age=600"), 600),
        (Some("max-age=5"), 300),
        (Some("max-age=604800"), 86_400),
        (Some("no-store"), 300),
        (None, 3600),
    ];
    for (cc, fresh_for) in cases {
        let ports = TestPorts::at_secs(T0);
        ports.http.always(ok(&["k1"], *cc));
        let cache = cache();
        get(&ports, &cache).unwrap();
        ports.clock.advance_secs(fresh_for - 1);
        get(&ports, &cache).unwrap();
        assert_eq!(ports.http.calls(), 1, "{cc:?}: still fresh");
        ports.clock.advance_secs(1);
        get(&ports, &cache).unwrap();
        assert_eq!(ports.http.calls(), 2, "{cc:?}: expired");
    }
}

#[test]
fn unknown_kid_refetch_is_rate_limited() {
    let ports = TestPorts::at_secs(T0);
    ports.http.then(ok(&["k1"], None)).then(ok(&["k1", "k2"], None));
    ports.http.always(ok(&["k1", "k2", "k3"], None));
    let cache = cache();
    get(&ports, &cache).unwrap();

    // A key rotated in right after the first fetch is found at once: the cooldown counts from
    // kid-triggered refetches only.
    let fresh = refetch(&ports, &cache, "k2");
    assert!(fresh.keys.contains_kid("k2"));
    assert_eq!(ports.http.calls(), 2);

    // A second unknown kid inside that refetch's cooldown causes no fetch.
    let after = refetch(&ports, &cache, "k3");
    assert!(Rc::ptr_eq(&fresh.keys, &after.keys));
    assert!(!after.keys.contains_kid("k3"));
    assert_eq!(ports.http.calls(), 2);

    // A kid the refetch already brought in is served without fetching again.
    assert!(refetch(&ports, &cache, "k2").keys.contains_kid("k2"));
    ports.clock.advance_secs(10);
    assert!(refetch(&ports, &cache, "k3").keys.contains_kid("k3"));
    assert_eq!(ports.http.calls(), 3);
}

#[test]
fn kids_missing_after_a_refetch_are_remembered() {
    let ports = TestPorts::at_secs(T0);
    ports.http.always(ok(&["k1"], None));
    let cache = cache();
    get(&ports, &cache).unwrap();
    ports.clock.advance_secs(10);
    refetch(&ports, &cache, "forged");
    assert_eq!(ports.http.calls(), 2);
    // Long after the cooldown, the same forged kid still costs nothing...
    for _ in 0..20 {
        ports.clock.advance_secs(11);
        refetch(&ports, &cache, "forged");
    }
    assert_eq!(ports.http.calls(), 2);
    // ...until the memory expires (5 min) — then one more fetch.
    ports.clock.advance_secs(300);
    refetch(&ports, &cache, "forged");
    assert_eq!(ports.http.calls(), 3);
    // A different new kid is a refetch of its own (after the cooldown).
    ports.clock.advance_secs(10);
    refetch(&ports, &cache, "other");
    assert_eq!(ports.http.calls(), 4);
}

#[test]
fn concurrent_callers_share_one_fetch() {
    let ports = TestPorts::at_secs(T0);
    ports.http.always(ok(&["k1"], None));
    let cache = cache();
    let results = block_on(join_all((0..8).map(|_| cache.key_set(&ports, URI))));
    assert_eq!(ports.http.calls(), 1);
    let first = results[0].as_ref().unwrap();
    for r in &results {
        assert!(Rc::ptr_eq(&first.keys, &r.as_ref().unwrap().keys));
    }
}

#[test]
fn concurrent_unknown_kids_share_one_refetch() {
    let ports = TestPorts::at_secs(T0);
    ports.http.then(ok(&["k1"], None));
    ports.http.always(ok(&["k1", "k2"], None));
    let cache = cache();
    get(&ports, &cache).unwrap();
    ports.clock.advance_secs(10);
    let kids = ["k2", "x1", "x2", "x3", "k2"];
    let results = block_on(join_all(kids.iter().map(|kid| cache.refetch_for_unknown_kid(&ports, URI, kid))));
    assert_eq!(ports.http.calls(), 2);
    assert!(results.iter().all(|r| r.as_ref().unwrap().keys.contains_kid("k2")));
}

#[test]
fn concurrent_failure_reports_once_and_keeps_last_known_good() {
    let ports = TestPorts::at_secs(T0);
    ports.http.then(ok(&["k1"], None));
    ports.http.always(Err(HttpError::Timeout));
    let cache = cache();
    let good = get(&ports, &cache).unwrap();
    ports.clock.advance_secs(3600);
    let results = block_on(join_all((0..4).map(|_| cache.key_set(&ports, URI))));
    assert_eq!(ports.http.calls(), 2);
    let events: Vec<_> = results.iter().filter_map(|r| r.as_ref().unwrap().event.clone()).collect();
    assert_eq!(events, [CacheEvent::RefreshFailedUsingCached(JwksError::Http(HttpError::Timeout))]);
    assert!(results.iter().all(|r| Rc::ptr_eq(&good.keys, &r.as_ref().unwrap().keys)));
}

#[test]
fn expired_keys_are_served_while_another_request_refreshes_them() {
    let ports = TestPorts::at_secs(T0);
    ports.http.then(ok(&["k1"], None));
    ports.http.always(ok(&["k2"], None));
    let cache = cache();
    let good = get(&ports, &cache).unwrap();
    ports.clock.advance_secs(3600);
    // The refresh is pending at the provider (which may be hanging)...
    let mut leader = Box::pin(cache.key_set(&ports, URI));
    assert!((&mut leader).now_or_never().is_none());
    // ...other requests do not wait for it: they verify with the keys they have.
    let meanwhile = cache.key_set(&ports, URI).now_or_never().expect("served without waiting").unwrap();
    assert!(Rc::ptr_eq(&good.keys, &meanwhile.keys));
    assert!(block_on(leader).unwrap().keys.contains_kid("k2"));
    assert_eq!(ports.http.calls(), 2);
}

#[test]
fn failed_refresh_keeps_last_known_good_keys() {
    let failures: Vec<(&str, Answer, JwksError)> = vec![
        ("network", Err(HttpError::Network("reset".into())), JwksError::Http(HttpError::Network("reset".into()))),
        ("5xx", jwks_response(502, b"bad gateway".to_vec(), None), JwksError::Status(502)),
        ("garbage", jwks_response(200, b"<html>".to_vec(), None), JwksError::Malformed(String::new())),
        ("empty set", jwks_response(200, br#"{"keys":[]}"#.to_vec(), None), JwksError::NoUsableKeys { skipped: 0 }),
        (
            "only enc keys",
            jwks_response(200, br#"{"keys":[{"kty":"oct","k":"AA"}]}"#.to_vec(), None),
            JwksError::NoUsableKeys { skipped: 1 },
        ),
        ("too large", jwks_response(200, vec![b' '; 256 * 1024 + 1], None), JwksError::TooLarge(256 * 1024 + 1)),
    ];
    for (name, failure, want) in failures {
        let ports = TestPorts::at_secs(T0);
        ports.http.then(ok(&["k1"], Some("max-age=600")));
        ports.http.always(failure);
        let cache = cache();
        let good = get(&ports, &cache).unwrap();
        ports.clock.advance_secs(600);
        let stale = get(&ports, &cache).unwrap();
        assert!(Rc::ptr_eq(&good.keys, &stale.keys), "{name}");
        let Some(CacheEvent::RefreshFailedUsingCached(error)) = &stale.event else { panic!("{name}") };
        assert_eq!(stale.event.as_ref().unwrap().reason(), "jwks_refresh_failed_using_cached");
        match (error, &want) {
            (JwksError::Malformed(_), JwksError::Malformed(_)) => {}
            _ => assert_eq!(error, &want, "{name}"),
        }
        // Within the failure backoff: cached keys, no new attempt, no repeated event.
        let quiet = get(&ports, &cache).unwrap();
        assert!(quiet.event.is_none() && Rc::ptr_eq(&good.keys, &quiet.keys), "{name}");
        assert_eq!(ports.http.calls(), 2, "{name}");
        // After it: another attempt.
        ports.clock.advance_secs(10);
        get(&ports, &cache).unwrap();
        assert_eq!(ports.http.calls(), 3, "{name}");
    }
}

#[test]
fn recovery_after_failure_replaces_the_keys() {
    let ports = TestPorts::at_secs(T0);
    ports.http.then(ok(&["k1"], None)).then(jwks_response(500, Vec::new(), None));
    ports.http.always(ok(&["k2"], None));
    let cache = cache();
    get(&ports, &cache).unwrap();
    ports.clock.advance_secs(3600);
    assert!(get(&ports, &cache).unwrap().event.is_some());
    ports.clock.advance_secs(10);
    let recovered = get(&ports, &cache).unwrap();
    assert!(recovered.event.is_none() && recovered.keys.contains_kid("k2"));
}

#[test]
fn no_cached_keys_and_provider_down_is_a_provider_error() {
    let ports = TestPorts::at_secs(T0);
    ports.http.always(jwks_response(503, Vec::new(), None));
    let cache = cache();
    let err = get(&ports, &cache).err().unwrap();
    assert_eq!(err, JwtError::Jwks(JwksError::Status(503)));
    assert_eq!(err.class(), crate::jwt::ErrorClass::Provider);
    // With nothing cached there is nothing to fall back on: each later request tries again, so
    // the first one after the provider recovers succeeds.
    ports.http.always(Err(HttpError::Timeout));
    let timeout = get(&ports, &cache).err().unwrap();
    assert!(timeout.is_timeout());
    assert_eq!(ports.http.calls(), 2);
    ports.http.always(ok(&["k1"], None));
    assert!(get(&ports, &cache).is_ok());
    assert_eq!(ports.http.calls(), 3);
}

#[test]
fn last_known_good_keys_expire_after_max_stale() {
    let ports = TestPorts::at_secs(T0);
    ports.http.then(ok(&["k1"], None));
    ports.http.always(jwks_response(500, Vec::new(), None));
    let cache = cache();
    get(&ports, &cache).unwrap();
    ports.clock.advance_secs(3600 + 86_400 - 1);
    assert!(get(&ports, &cache).is_ok());
    ports.clock.advance_secs(11);
    assert_eq!(get(&ports, &cache).err().unwrap(), JwtError::Jwks(JwksError::Status(500)));
}

#[test]
fn a_cancelled_leader_does_not_strand_the_others() {
    let ports = TestPorts::at_secs(T0);
    ports.http.always(ok(&["k1"], None));
    let cache = cache();
    // The leader starts a fetch (pending on the network) and is then dropped.
    let mut leader = Box::pin(cache.key_set(&ports, URI));
    assert!((&mut leader).now_or_never().is_none());
    // A caller that joined the leader's fetch...
    let mut joiner = Box::pin(cache.key_set(&ports, URI));
    assert!((&mut joiner).now_or_never().is_none());
    drop(leader);
    // ...sees it abandoned and fetches itself; later callers are served from memory.
    assert!(block_on(joiner).is_ok());
    assert!(get(&ports, &cache).is_ok());
    assert_eq!(ports.http.calls(), 2);
}

#[test]
fn another_uri_is_not_served_from_this_cache() {
    let ports = TestPorts::at_secs(T0);
    ports.http.always(ok(&["k1"], None));
    let cache = cache();
    get(&ports, &cache).unwrap();
    block_on(cache.key_set(&ports, "https://other.example/keys")).unwrap();
    assert_eq!(ports.http.calls(), 2);
    let bad = block_on(cache.key_set(&ports, "not a uri"));
    assert_eq!(bad.err().unwrap(), JwtError::Jwks(JwksError::InvalidUri));
}

#[test]
fn the_cache_needs_nothing_of_its_key_type() {
    struct OpaqueKey;
    let cache: JwksCache<OpaqueKey> = JwksCache::default();
    assert_eq!(cache.policy(), &JwksCachePolicy::default());
}
