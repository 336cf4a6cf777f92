//! JWKS parsing and key selection (`src/jwt/keys.rs`, `src/jwt/jwk.rs`).
//!
//! Invariants: no panic; a document that is not a `{"keys":[...]}` object, or holds no usable
//! key, is an `Err` blamed on the provider; every kept key is one RFC 7517/7518 and RFC 8725
//! allow (public RSA of 2048-8192 bits, P-256/P-384, Ed25519; `use` sig; `key_ops` verify; its
//! own `alg` fitting its type); kept keys are distinct, at most `MAX_KEYS`, and kept + skipped
//! never exceeds the keys listed; `select` returns a key only when exactly one key carries the
//! token's `kid` (or, without one, exactly one key fits at all) and fits the token's `alg`.
#![no_main]

use edgeguard::jwt::keys::MAX_KEYS;
use edgeguard::jwt::{Jwks, JwksError, JwsAlgorithm, JwtError, JwtHeader, KeyFamily, UsableKey};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let listed = serde_json::from_slice::<Value>(data).ok().and_then(|v| Some(v.get("keys")?.as_array()?.len()));
    match Jwks::parse(data) {
        Err(JwksError::NoUsableKeys { skipped }) => assert!(listed.is_some_and(|n| skipped <= n)),
        Err(JwksError::Malformed(_)) => {}
        Err(other) => panic!("parsing alone cannot fail with {other:?}"),
        Ok(jwks) => {
            let keys = jwks.keys();
            assert!(!keys.is_empty() && keys.len() <= MAX_KEYS);
            assert!(keys.len() + jwks.skipped() <= listed.unwrap_or(0), "more keys than the document lists");
            for (i, key) in keys.iter().enumerate() {
                check_key(key);
                assert!(!keys.get(..i).unwrap_or_default().contains(key), "key {i} kept twice");
                for alg in JwsAlgorithm::ALL {
                    check_select(&jwks, alg, key.jwk.kid.clone());
                    check_select(&jwks, alg, None);
                }
            }
            check_select(&jwks, JwsAlgorithm::Rs256, Some("no-such-kid\u{0}".into()));
        }
    }
});

fn check_key(key: &UsableKey) {
    let jwk = &key.jwk;
    assert!(jwk.use_.as_deref().is_none_or(|u| u == "sig"), "{jwk:?}");
    assert!(jwk.key_ops.as_ref().is_none_or(|ops| ops.iter().any(|op| op == "verify")), "{jwk:?}");
    match (jwk.kty.as_str(), key.family) {
        ("RSA", KeyFamily::Rsa) => assert!((256..=1024).contains(&key.signature_len), "{key:?}"),
        ("EC", KeyFamily::Ec("P-256")) => assert_eq!((jwk.crv.as_deref(), key.signature_len), (Some("P-256"), 64)),
        ("EC", KeyFamily::Ec("P-384")) => assert_eq!((jwk.crv.as_deref(), key.signature_len), (Some("P-384"), 96)),
        ("OKP", KeyFamily::Okp) => assert_eq!((jwk.crv.as_deref(), key.signature_len), (Some("Ed25519"), 64)),
        other => panic!("kept an unusable key type {other:?}"),
    }
    assert_eq!(key.alg.map(JwsAlgorithm::name), jwk.alg.as_deref(), "declared alg lost");
    assert!(key.alg.is_none_or(|alg| alg.key_family() == key.family), "{key:?}");
}

/// `select` against an oracle: the candidates are the keys with the header's kid (every key
/// when it has none) that fit the algorithm; exactly one must exist for a key to be chosen.
fn check_select(jwks: &edgeguard::jwt::Jwks, alg: JwsAlgorithm, kid: Option<String>) {
    let keys = jwks.keys();
    let candidates: Vec<usize> = (0..keys.len())
        .filter(|&i| {
            let key = &keys[i];
            kid.as_deref().is_none_or(|kid| key.jwk.kid.as_deref() == Some(kid)) && key.fits(alg)
        })
        .collect();
    let header = JwtHeader { alg, kid: kid.clone(), typ: None, has_nonce: false };
    match (jwks.select(&header), candidates.as_slice()) {
        (Ok(i), [only]) => assert_eq!(i, *only),
        (Err(JwtError::KidAmbiguous), [_, _, ..]) => assert!(kid.is_some()),
        (Err(JwtError::KidRequired), [_, _, ..]) => assert!(kid.is_none()),
        (Err(JwtError::KeyAlgMismatch(_) | JwtError::KidUnknown | JwtError::NoMatchingKey(_)), []) => {}
        (result, candidates) => panic!("select gave {result:?} with candidates {candidates:?}"),
    }
}
