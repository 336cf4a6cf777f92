//! RFC 9449 §4.3 rule by rule, with real signatures (ring) over hand-made proofs.

use super::*;
use crate::testkit::block_on;
use crate::testkit::native_crypto::{NativeVerifier, TestKey, sign_token};
use serde_json::json;

const NOW: u64 = 1_700_000_000;
const TOKEN: &str = "the-access-token";

fn uri() -> Url {
    Url::parse("https://gw.example.com/api/orders").unwrap()
}

fn ctx(uri: &Url) -> ProofContext<'_> {
    ProofContext { method: "POST", uri, access_token: TOKEN, now: NOW, leeway_secs: 60 }
}

fn claims() -> Value {
    json!({
        "jti": "proof-1", "htm": "POST", "htu": "https://gw.example.com/api/orders", "iat": NOW,
        "ath": b64url(&sha256(TOKEN.as_bytes())),
    })
}

fn proof_with(key: &TestKey, header: Value, claims: Value) -> String {
    sign_token(key, &header, &claims)
}

fn proof(key: &TestKey, edit: impl Fn(&mut Value, &mut Value)) -> String {
    let mut header = json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": key.jwk("")});
    let mut c = claims();
    edit(&mut header, &mut c);
    proof_with(key, header, c)
}

fn check(proof: &str) -> Result<CheckedProof, DpopError> {
    let uri = uri();
    block_on(check_proof(&NativeVerifier::default(), &ProofKeys::default(), proof, &ctx(&uri)))
}

#[test]
fn a_clients_later_proofs_reuse_its_imported_key() {
    let (verifier, known) = (NativeVerifier::default(), ProofKeys::default());
    let key = TestKey::es256();
    let uri = uri();
    for jti in ["a", "b", "c"] {
        let p = proof(&key, |_, c| c["jti"] = json!(jti));
        assert!(block_on(check_proof(&verifier, &known, &p, &ctx(&uri))).is_ok());
    }
    assert_eq!(verifier.imports(), 1, "one importKey for three proofs");
    // Another member (its own alg) is another key entry, checked on its own.
    let mut header = json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": key.jwk("")});
    header["jwk"]["alg"] = json!("ES384");
    let refused = proof_with(&key, header, claims());
    assert_eq!(block_on(check_proof(&verifier, &known, &refused, &ctx(&uri))), Err(DpopError::KeyNotPublic));
    assert_eq!(known.len(), 1, "a key that cannot verify is not kept");
}

#[test]
fn the_key_memory_stays_bounded() {
    let (verifier, known) = (NativeVerifier::default(), ProofKeys::default());
    let uri = uri();
    let key = TestKey::es256();
    for i in 0..(MAX_PROOF_KEYS + 10) {
        // Distinct JWKs for one key: an extra member changes the document.
        let mut jwk = key.jwk("");
        jwk["kid"] = json!(format!("k{i}"));
        let p = proof_with(&key, json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": jwk}), claims());
        assert!(block_on(check_proof(&verifier, &known, &p, &ctx(&uri))).is_ok());
    }
    assert!(known.len() <= MAX_PROOF_KEYS);
}

#[test]
fn a_valid_proof_yields_the_key_thumbprint() {
    let key = TestKey::es256();
    let checked = check(&proof(&key, |_, _| {})).unwrap();
    let jwk = key.jwk("");
    assert_eq!(checked.jkt, jwk_thumbprint(jwk.as_object().unwrap()).unwrap());
    assert!(checked.replay_until > NOW + MAX_PROOF_AGE_SECS);
}

#[test]
fn htu_is_compared_after_normalisation_and_without_query() {
    let key = TestKey::es256();
    for htu in [
        "https://GW.Example.com/api/orders",
        "https://gw.example.com:443/api/orders",
        "https://gw.example.com/%61pi/orders",
        "https://gw.example.com/api/orders?x=1#frag",
    ] {
        assert!(check(&proof(&key, |_, c| c["htu"] = json!(htu))).is_ok(), "{htu}");
    }
}

#[test]
fn every_rule_is_enforced() {
    let key = TestKey::es256();
    let cases: Vec<(&str, String, DpopError)> = vec![
        ("typ JWT", proof(&key, |h, _| h["typ"] = json!("JWT")), DpopError::WrongType),
        (
            "typ missing",
            proof(&key, |h, _| h.as_object_mut().unwrap().remove("typ").map(drop).unwrap_or(())),
            DpopError::WrongType,
        ),
        ("htm GET", proof(&key, |_, c| c["htm"] = json!("GET")), DpopError::MethodMismatch),
        (
            "htu other path",
            proof(&key, |_, c| c["htu"] = json!("https://gw.example.com/api/admin")),
            DpopError::UriMismatch,
        ),
        (
            "htu other host",
            proof(&key, |_, c| c["htu"] = json!("https://evil.example/api/orders")),
            DpopError::UriMismatch,
        ),
        ("htu http", proof(&key, |_, c| c["htu"] = json!("http://gw.example.com/api/orders")), DpopError::UriMismatch),
        ("htu missing", proof(&key, |_, c| c["htu"] = Value::Null), DpopError::UriMismatch),
        ("iat old", proof(&key, |_, c| c["iat"] = json!(NOW - 600)), DpopError::IatOutOfWindow),
        ("iat future", proof(&key, |_, c| c["iat"] = json!(NOW + 600)), DpopError::IatOutOfWindow),
        ("iat string", proof(&key, |_, c| c["iat"] = json!("now")), DpopError::IatOutOfWindow),
        ("jti missing", proof(&key, |_, c| c["jti"] = Value::Null), DpopError::JtiInvalid),
        ("jti huge", proof(&key, |_, c| c["jti"] = json!("j".repeat(300))), DpopError::JtiInvalid),
        ("ath other token", proof(&key, |_, c| c["ath"] = json!(b64url(&sha256(b"other")))), DpopError::AthMismatch),
        ("ath missing", proof(&key, |_, c| c["ath"] = Value::Null), DpopError::AthMismatch),
    ];
    for (name, proof, want) in cases {
        assert_eq!(check(&proof), Err(want), "{name}");
    }
}

#[test]
fn the_proof_must_be_signed_by_the_public_key_it_carries() {
    let key = TestKey::es256();
    let other = TestKey::es256();
    // Signed by another key than the one in the header.
    let forged = proof_with(&other, json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": key.jwk("")}), claims());
    assert_eq!(check(&forged), Err(DpopError::SignatureInvalid));
    // A header key with private members, a symmetric key, or none at all.
    let mut private = key.jwk("");
    private["d"] = json!("c2VjcmV0");
    let leaked = proof_with(&key, json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": private}), claims());
    assert_eq!(check(&leaked), Err(DpopError::KeyNotPublic));
    let oct =
        proof_with(&key, json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": {"kty": "oct", "k": "c2VjcmV0"}}), claims());
    assert_eq!(check(&oct), Err(DpopError::KeyNotPublic));
    let no_key = proof_with(&key, json!({"typ": "dpop+jwt", "alg": "ES256"}), claims());
    assert!(matches!(check(&no_key), Err(DpopError::Malformed(_))));
    // A key that does not fit the algorithm.
    let rsa = TestKey::rsa_a();
    let mismatch = proof_with(&key, json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": rsa.jwk("")}), claims());
    assert_eq!(check(&mismatch), Err(DpopError::KeyNotPublic));
    // HS256 and none are not representable at all.
    for alg in ["HS256", "none"] {
        let header =
            crate::encoding::b64url(json!({"typ": "dpop+jwt", "alg": alg, "jwk": key.jwk("")}).to_string().as_bytes());
        let body = crate::encoding::b64url(claims().to_string().as_bytes());
        assert!(matches!(check(&format!("{header}.{body}.c2ln")), Err(DpopError::Malformed(_))), "{alg}");
    }
}

#[test]
fn rsa_and_eddsa_proofs_work_too() {
    for (key, alg) in [(TestKey::rsa_a(), "PS256"), (TestKey::ed25519(), "EdDSA")] {
        let proof = proof_with(&key, json!({"typ": "dpop+jwt", "alg": alg, "jwk": key.jwk("")}), claims());
        assert!(check(&proof).is_ok(), "{alg}");
    }
}

#[test]
fn reads_the_token_binding() {
    let bound = json!({"cnf": {"jkt": "abc"}});
    assert_eq!(bound_thumbprint(bound.as_object().unwrap()), Some("abc"));
    assert_eq!(bound_thumbprint(json!({"cnf": {"x5t#S256": "x"}}).as_object().unwrap()), None);
    assert_eq!(bound_thumbprint(json!({}).as_object().unwrap()), None);
}
