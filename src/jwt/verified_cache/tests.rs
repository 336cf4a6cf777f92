#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use super::*;
use crate::jwt::{DEFAULT_MAX_TOKEN_LEN, IssuerRule, Jwks, UnverifiedJwt};
use crate::testkit::native_crypto::{TestKey, jwks_doc, sign_token};
use serde_json::{Value, json};

const NOW: u64 = 1_700_000_000;
const ISS: &str = "https://idp.example";

fn rules() -> ClaimRules {
    ClaimRules::new(IssuerRule::Exact(ISS.into()), vec!["api".into()])
}

fn claims(sub: &str, exp: u64) -> Value {
    json!({"iss": ISS, "aud": "api", "sub": sub, "exp": exp, "iat": NOW})
}

struct Keys {
    signer: TestKey,
    set: Rc<KeySet<()>>,
}

fn keys(kid: &str) -> Keys {
    let signer = TestKey::es256();
    let set = Rc::new(KeySet::new(Jwks::parse(&jwks_doc(&[signer.jwk(kid)])).unwrap()));
    Keys { signer, set }
}

/// The provider every helper below caches for and looks up as (index 0, as the default).
const PROVIDER: usize = 0;

/// What the gateway answers for `accepted` providers: `set` and the rules, for those alone.
fn keys_for(
    accepted: &[usize],
    set: &Rc<KeySet<()>>,
) -> impl FnOnce(usize) -> Option<(Rc<KeySet<()>>, Rc<ClaimRules>)> {
    let accepted = accepted.to_vec();
    let set = Rc::clone(set);
    move |index| accepted.contains(&index).then(|| (set, Rc::new(rules())))
}

/// A token as the full path hands it over: its text, and the verified token with its key.
fn verified(keys: &Keys, kid: &str, claims: &Value) -> (String, Rc<VerifiedJwt>, UsableKey) {
    let token = sign_token(&keys.signer, &json!({"alg": "ES256", "kid": kid}), claims);
    let parsed = UnverifiedJwt::parse(&token, DEFAULT_MAX_TOKEN_LEN).unwrap();
    let jwt = VerifiedJwt::new(parsed.header().clone(), parsed.unverified_claims().clone());
    let key = keys.set.jwks().keys()[keys.set.jwks().select(parsed.header()).unwrap()].clone();
    (token, Rc::new(jwt), key)
}

fn put(cache: &VerifiedTokenCache, keys: &Keys, claims: &Value, now: u64) -> String {
    let (token, jwt, key) = verified(keys, "k1", claims);
    cache.insert((TokenDigest::of(&token), token.len()), jwt, (PROVIDER, key), &rules(), now);
    token
}

fn get(cache: &VerifiedTokenCache, keys: &Keys, token: &str, now: u64) -> CachedVerdict {
    cache.lookup(&TokenDigest::of(token), now, keys_for(&[PROVIDER], &keys.set))
}

fn is_valid(verdict: &CachedVerdict) -> bool {
    matches!(verdict, CachedVerdict::Valid(_, PROVIDER))
}

#[test]
fn a_hit_gives_the_claims_until_the_token_expires_with_skew() {
    let cache = VerifiedTokenCache::default();
    let k = keys("k1");
    let token = put(&cache, &k, &claims("alice", NOW + 300), NOW);
    let CachedVerdict::Valid(jwt, _) = get(&cache, &k, &token, NOW + 10) else { panic!("expected a hit") };
    assert_eq!(jwt.sub(), Some("alice"));
    // Still inside the 60 s skew after `exp`, then refused with the full path's own reason.
    assert!(is_valid(&get(&cache, &k, &token, NOW + 300 + 59)));
    let CachedVerdict::Refused(refusal) = get(&cache, &k, &token, NOW + 300 + 60) else { panic!("expected expiry") };
    assert_eq!(refusal.reason(), "token_expired");
    assert!(cache.is_empty(), "an expired entry is dropped");
    assert!(matches!(get(&cache, &k, &token, NOW), CachedVerdict::Miss));
}

#[test]
fn any_other_token_misses_even_with_the_same_claims() {
    let cache = VerifiedTokenCache::default();
    let k = keys("k1");
    let token = put(&cache, &k, &claims("alice", NOW + 300), NOW);
    // Same header and claims, signature bytes changed: a different token, never a hit.
    let (head, sig) = token.rsplit_once('.').unwrap();
    let flipped = if sig.starts_with('A') { "B" } else { "A" };
    let tampered = format!("{head}.{flipped}{}", &sig[1..]);
    assert!(matches!(get(&cache, &k, &tampered, NOW), CachedVerdict::Miss));
    assert!(matches!(get(&cache, &k, &format!("{token} "), NOW), CachedVerdict::Miss));
}

#[test]
fn an_entry_dies_when_its_key_leaves_the_jwks() {
    let cache = VerifiedTokenCache::default();
    let k = keys("k1");
    let token = put(&cache, &k, &claims("alice", NOW + 3600), NOW);
    // A refreshed JWKS that still publishes the key (plus a new one) keeps the entry.
    let refreshed =
        Rc::new(KeySet::<()>::new(Jwks::parse(&jwks_doc(&[k.signer.jwk("k1"), TestKey::es256().jwk("k2")])).unwrap()));
    assert!(is_valid(&cache.lookup(&TokenDigest::of(&token), NOW, keys_for(&[PROVIDER], &refreshed))));
    // Hard rotation: the key is gone, so is the entry.
    let rotated = keys("k2");
    assert!(matches!(get(&cache, &rotated, &token, NOW), CachedVerdict::Miss));
    assert!(cache.is_empty());
    // Another key published under the old kid is not the key that verified the token.
    let token = put(&cache, &k, &claims("alice", NOW + 3600), NOW);
    let reused_kid = keys("k1");
    assert!(matches!(get(&cache, &reused_kid, &token, NOW), CachedVerdict::Miss));
}

#[test]
fn a_flood_of_distinct_tokens_stays_within_the_cap_and_keeps_repeat_callers() {
    let cache = VerifiedTokenCache::new(16, DEFAULT_BYTE_BUDGET);
    let k = keys("k1");
    let regular = put(&cache, &k, &claims("regular", NOW + 3600), NOW);
    assert!(is_valid(&get(&cache, &k, &regular, NOW)), "one hit: the regular caller is protected");
    let mut peak = 0;
    for i in 0..500 {
        put(&cache, &k, &claims(&format!("flood-{i}"), NOW + 3600), NOW);
        peak = peak.max(cache.len());
        if i % 50 == 0 {
            assert!(is_valid(&get(&cache, &k, &regular, NOW)), "evicted after {i} flood tokens");
        }
    }
    assert_eq!(peak, 16);
    assert!(is_valid(&get(&cache, &k, &regular, NOW)));
}

#[test]
fn the_byte_budget_bounds_memory_whatever_the_token_sizes() {
    let k = keys("k1");
    let big = |i: usize| json!({"iss": ISS, "aud": "api", "sub": format!("s{i:03}"), "exp": NOW + 3600, "pad": "x".repeat(2000)});
    let token_len = put(&VerifiedTokenCache::default(), &k, &big(0), NOW).len();
    let cache = VerifiedTokenCache::new(1000, 5 * token_len);
    for i in 0..40 {
        put(&cache, &k, &big(i), NOW);
        assert!(cache.bytes() <= 5 * token_len);
    }
    assert_eq!(cache.len(), 5);
    // A token larger than the whole budget is simply not cached.
    let small = VerifiedTokenCache::new(1000, token_len - 1);
    put(&small, &k, &big(0), NOW);
    assert!(small.is_empty());
}

#[test]
fn a_full_cache_drops_expired_entries_first_then_probation_in_arrival_order() {
    let cache = VerifiedTokenCache::new(3, DEFAULT_BYTE_BUDGET);
    let k = keys("k1");
    let short = put(&cache, &k, &claims("short", NOW + 10), NOW);
    let first = put(&cache, &k, &claims("first", NOW + 3600), NOW);
    let second = put(&cache, &k, &claims("second", NOW + 3600), NOW);
    // At NOW + 100 "short" is dead: it goes, though it is the oldest only by accident.
    let third = put(&cache, &k, &claims("third", NOW + 3600), NOW + 100);
    assert!(matches!(get(&cache, &k, &short, NOW + 100), CachedVerdict::Miss));
    // No expired entry left: the oldest never-hit entry goes.
    assert!(is_valid(&get(&cache, &k, &second, NOW + 100)));
    put(&cache, &k, &claims("fourth", NOW + 3600), NOW + 100);
    assert!(matches!(get(&cache, &k, &first, NOW + 100), CachedVerdict::Miss));
    assert!(is_valid(&get(&cache, &k, &second, NOW + 100)));
    assert!(is_valid(&get(&cache, &k, &third, NOW + 100)));
}

#[test]
fn when_every_entry_is_in_use_hit_counts_age_so_new_callers_still_get_in() {
    let cache = VerifiedTokenCache::new(2, DEFAULT_BYTE_BUDGET);
    let k = keys("k1");
    let busy = put(&cache, &k, &claims("busy", NOW + 3600), NOW);
    let once = put(&cache, &k, &claims("once", NOW + 3600), NOW);
    for _ in 0..10 {
        get(&cache, &k, &busy, NOW);
    }
    get(&cache, &k, &once, NOW);
    let newcomer = put(&cache, &k, &claims("new", NOW + 3600), NOW);
    assert!(is_valid(&get(&cache, &k, &newcomer, NOW)));
    assert!(is_valid(&get(&cache, &k, &busy, NOW)), "the busiest caller keeps its entry");
    assert!(matches!(get(&cache, &k, &once, NOW), CachedVerdict::Miss));
}

#[test]
fn a_zero_capacity_caches_nothing() {
    let cache = VerifiedTokenCache::new(0, DEFAULT_BYTE_BUDGET);
    let k = keys("k1");
    let token = put(&cache, &k, &claims("alice", NOW + 300), NOW);
    assert!(matches!(get(&cache, &k, &token, NOW), CachedVerdict::Miss));
}

#[test]
fn an_entry_serves_only_routes_taking_the_provider_that_verified_it() {
    let cache = VerifiedTokenCache::default();
    let k = keys("k1");
    let (a, b) = (0, 1);
    let (token, jwt, key) = verified(&k, "k1", &claims("alice", NOW + 3600));
    let digest = TokenDigest::of(&token);
    cache.insert((digest, token.len()), jwt, (a, key), &rules(), NOW);
    // B publishes the very same key and has the same rules: still not B's token.
    assert!(matches!(cache.lookup(&digest, NOW, keys_for(&[b], &k.set)), CachedVerdict::Miss));
    assert_eq!(cache.len(), 1, "kept for A's routes");
    // A route taking both: a hit, as A's.
    assert!(matches!(cache.lookup(&digest, NOW, keys_for(&[b, a], &k.set)), CachedVerdict::Valid(_, 0)));
    // A's keys not at hand (due for a refresh): a miss that keeps the entry.
    assert!(matches!(cache.lookup(&digest, NOW, |_| None::<(Rc<KeySet<()>>, Rc<ClaimRules>)>), CachedVerdict::Miss));
    assert_eq!(cache.len(), 1);
    // Refused in full under B: nothing to do with A's entry. Refused under A: gone.
    cache.forget(&digest, b);
    assert_eq!(cache.len(), 1);
    cache.forget(&digest, a);
    assert!(cache.is_empty());
    let (_, jwt, key) = verified(&k, "k1", &claims("alice", NOW + 3600));
    cache.insert((digest, token.len()), jwt, (a, key), &rules(), NOW);
    // A's key rotated out: gone, even on a route taking both.
    assert!(matches!(cache.lookup(&digest, NOW, keys_for(&[a, b], &keys("k2").set)), CachedVerdict::Miss));
    assert!(cache.is_empty());
}
