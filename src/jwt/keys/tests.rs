#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use super::*;
use crate::testkit::native_crypto::{NativeVerifier, TestKey, b64, jwks_doc};
use futures::executor::block_on;
use serde_json::{Value, json};

fn rsa(kid: &str) -> Value {
    TestKey::rsa_a().jwk(kid)
}

fn with(mut jwk: Value, member: &str, value: Value) -> Value {
    jwk[member] = value;
    jwk
}

/// An RSA public key of `bits` bits (the value need not be a real modulus to test sizing).
fn rsa_bits(bits: usize) -> Value {
    let mut n = vec![0xff; bits / 8];
    n[0] = 0x80;
    json!({"kty": "RSA", "kid": "short", "n": b64(&n), "e": "AQAB"})
}

#[test]
fn usable_keys_table() {
    let ec = TestKey::es256().jwk("ec");
    let cases: Vec<(&str, Value, bool)> = vec![
        ("rsa", rsa("a"), true),
        ("rsa use=sig", with(rsa("a"), "use", json!("sig")), true),
        ("rsa use=enc", with(rsa("a"), "use", json!("enc")), false),
        ("key_ops verify", with(rsa("a"), "key_ops", json!(["verify"])), true),
        ("key_ops encrypt", with(rsa("a"), "key_ops", json!(["encrypt", "wrapKey"])), false),
        ("alg RS256", with(rsa("a"), "alg", json!("RS256")), true),
        ("alg PS512", with(rsa("a"), "alg", json!("PS512")), true),
        ("alg HS256 on RSA", with(rsa("a"), "alg", json!("HS256")), false),
        ("alg RSA-OAEP", with(rsa("a"), "alg", json!("RSA-OAEP")), false),
        ("alg ES256 on RSA", with(rsa("a"), "alg", json!("ES256")), false),
        ("rsa 1024", rsa_bits(1024), false),
        ("rsa 2040", rsa_bits(2040), false),
        ("rsa 2048", rsa_bits(2048), true),
        ("rsa 16384", rsa_bits(16384), false),
        ("rsa e=0", with(rsa("a"), "e", json!("AA")), false),
        ("rsa n padded", with(rsa("a"), "n", json!(format!("{}=", rsa("a")["n"].as_str().unwrap()))), false),
        ("rsa n missing", json!({"kty": "RSA", "e": "AQAB"}), false),
        ("oct", json!({"kty": "oct", "k": "c2VjcmV0", "kid": "h"}), false),
        ("unknown kty", json!({"kty": "PQC", "x": "AA"}), false),
        ("kid not a string", with(rsa("a"), "kid", json!(5)), false),
        ("ec p-256", ec.clone(), true),
        ("ec alg ES256", with(ec.clone(), "alg", json!("ES256")), true),
        ("ec alg ES384 on P-256", with(ec.clone(), "alg", json!("ES384")), false),
        ("ec p-384", TestKey::es384().jwk("e3"), true),
        ("ec p-521", with(ec.clone(), "crv", json!("P-521")), false),
        ("ec short x", with(ec.clone(), "x", json!(b64(&[1; 31]))), false),
        ("ec y missing", json!({"kty": "EC", "crv": "P-256", "x": ec["x"]}), false),
        ("ed25519", TestKey::ed25519().jwk("ed"), true),
        ("x25519", json!({"kty": "OKP", "crv": "X25519", "x": b64(&[1; 32])}), false),
        ("ed25519 short", json!({"kty": "OKP", "crv": "Ed25519", "x": b64(&[1; 31])}), false),
    ];
    for (name, jwk, want) in cases {
        let parsed = Jwks::parse(&jwks_doc(&[jwk]));
        assert_eq!(parsed.is_ok(), want, "{name}: {parsed:?}");
        if !want {
            assert_eq!(parsed.unwrap_err(), JwksError::NoUsableKeys { skipped: 1 }, "{name}");
        }
    }
}

/// Found by the `jwks` fuzz target: serde's derived struct read `[[key, ...]]` as a key set.
#[test]
fn a_key_set_is_an_object_never_an_array() {
    let keys = serde_json::to_vec(&json!([[rsa("a")]])).unwrap();
    assert!(matches!(Jwks::parse(&keys), Err(JwksError::Malformed(_))));
    assert!(matches!(Jwks::parse(b"[[]]"), Err(JwksError::Malformed(_))));
    assert!(Jwks::parse(&jwks_doc(&[rsa("a")])).is_ok());
    let spaced = [b" \n".as_slice(), &jwks_doc(&[rsa("a")])].concat();
    assert!(Jwks::parse(&spaced).is_ok(), "leading JSON whitespace is fine");
}

#[test]
fn a_key_set_is_utf_8_even_in_members_the_gateway_ignores() {
    // Found by the jwks fuzz target: serde skips ignored members without checking their bytes.
    let mut doc = br#"{"keys": [], "issuer": "https:"#.to_vec();
    doc.extend_from_slice(&[0x98, 0x98, b'"', b'}']);
    assert!(matches!(Jwks::parse(&doc), Err(JwksError::Malformed(_))));
}

#[test]
fn documents_table() {
    assert!(matches!(Jwks::parse(b"not json"), Err(JwksError::Malformed(_))));
    assert!(matches!(Jwks::parse(br#"{"keys":5}"#), Err(JwksError::Malformed(_))));
    assert!(matches!(Jwks::parse(br#"{"nokeys":[]}"#), Err(JwksError::Malformed(_))));
    assert_eq!(Jwks::parse(br#"{"keys":[]}"#), Err(JwksError::NoUsableKeys { skipped: 0 }));
    let enc = with(TestKey::rsa_b().jwk("enc"), "use", json!("enc"));
    let set = Jwks::parse(&jwks_doc(&[rsa("a"), enc, rsa("a"), json!("junk")])).unwrap();
    assert_eq!(set.keys().len(), 1, "duplicate listing collapsed");
    assert_eq!(set.skipped(), 2);
    assert!(set.contains_kid("a"));
    assert!(!set.contains_kid("enc"));
    assert_eq!(set.keys()[0].signature_len, 256);
}

fn header(alg: JwsAlgorithm, kid: Option<&str>) -> JwtHeader {
    JwtHeader { alg, kid: kid.map(str::to_owned), typ: None, has_nonce: false }
}

#[test]
fn key_selection_table() {
    use JwsAlgorithm::*;
    let set = Jwks::parse(&jwks_doc(&[
        rsa("r1"),                                               // 0
        with(TestKey::rsa_b().jwk("r2"), "alg", json!("RS256")), // 1
        TestKey::es256().jwk("e1"),                              // 2
        TestKey::rsa_b().jwk("dup"),                             // 3
        rsa("dup"),                                              // 4
        TestKey::ed25519().jwk(""),                              // 5: no kid
    ]))
    .unwrap();
    let cases: Vec<(JwtHeader, Result<usize, JwtError>)> = vec![
        (header(Rs256, Some("r1")), Ok(0)),
        (header(Ps384, Some("r1")), Ok(0)),
        (header(Rs256, Some("r2")), Ok(1)),
        (header(Ps256, Some("r2")), Err(JwtError::KeyAlgMismatch("PS256"))),
        (header(Es256, Some("r1")), Err(JwtError::KeyAlgMismatch("ES256"))),
        (header(Es256, Some("e1")), Ok(2)),
        (header(Es384, Some("e1")), Err(JwtError::KeyAlgMismatch("ES384"))),
        (header(Rs256, Some("nope")), Err(JwtError::KidUnknown)),
        (header(Rs256, Some("dup")), Err(JwtError::KidAmbiguous)),
        // The kid-less Ed25519 key is no fallback for a token that names a kid.
        (header(EdDsa, Some("nope")), Err(JwtError::KidUnknown)),
        (header(EdDsa, None), Ok(5)),
        (header(Es256, None), Ok(2)),
        (header(Rs256, None), Err(JwtError::KidRequired)),
        (header(Es384, None), Err(JwtError::NoMatchingKey("ES384"))),
    ];
    for (h, want) in cases {
        assert_eq!(set.select(&h), want, "{h:?}");
    }
}

#[test]
fn no_kid_with_exactly_one_fitting_key_is_accepted() {
    let set = Jwks::parse(&jwks_doc(&[rsa("")])).unwrap();
    assert_eq!(set.select(&header(JwsAlgorithm::Rs256, None)), Ok(0));
    let two = Jwks::parse(&jwks_doc(&[rsa(""), TestKey::rsa_b().jwk("")])).unwrap();
    assert_eq!(two.select(&header(JwsAlgorithm::Rs256, None)), Err(JwtError::KidRequired));
}

#[test]
fn imports_are_cached_per_key_and_algorithm() {
    let verifier = NativeVerifier::default();
    let keys: KeySet<_> = KeySet::new(Jwks::parse(&jwks_doc(&[rsa("r1")])).unwrap());
    let rs = header(JwsAlgorithm::Rs256, Some("r1"));
    let ps = header(JwsAlgorithm::Ps256, Some("r1"));
    block_on(async {
        keys.key_for(&verifier, &rs).await.unwrap();
        keys.key_for(&verifier, &rs).await.unwrap();
        assert_eq!(verifier.imports(), 1);
        keys.key_for(&verifier, &ps).await.unwrap();
        assert_eq!(verifier.imports(), 2);
        assert_eq!(keys.imported_count(), 2);
        let unknown = header(JwsAlgorithm::Rs256, Some("zz"));
        assert_eq!(keys.key_for(&verifier, &unknown).await.unwrap_err(), JwtError::KidUnknown);
        assert_eq!(verifier.imports(), 2);
    });
}
