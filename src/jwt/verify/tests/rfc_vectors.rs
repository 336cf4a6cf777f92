//! Published test vectors: RFC 7515 Appendix A.2 (RS256) and A.3 (ES256) verify; RFC 7520 §4.1
//! (RS256 over a non-JSON payload) verifies at the signature level and is refused as a JWT;
//! RFC 7520 §4.3 (ES512) is refused for its algorithm.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use super::*;
use crate::jwt::{DEFAULT_MAX_TOKEN_LEN, IssuerRule, Jwks, JwtHeader};
use crate::testkit::native_crypto::NativeVerifier;
use futures::executor::block_on;
use serde_json::json;

/// The JWS Payload shared by RFC 7515 A.1–A.3: `{"iss":"joe",\r\n "exp":1300819380,\r\n ...}`.
const RFC7515_PAYLOAD: &str = "eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFt\
                               cGxlLmNvbS9pc19yb290Ijp0cnVlfQ";

const RFC7515_A2_N: &str = "ofgWCuLjybRlzo0tZWJjNiuSfb4p4fAkd_wWJcyQoTbji9k0l8W26mPddxHmfHQp-Vaw-4qP\
    CJrcS2mJPMEzP1Pt0Bm4d4QlL-yRT-SFd2lZS-pCgNMsD1W_YpRPEwOWvG6b32690r2jZ47soMZo9wGzjb_7OMg0LOL-\
    bSf63kpaSHSXndS5z5rexMdbBYUsLA9e-KXBdQOS-UTo7WTBEMa2R2CapHg665xsmtdVMTBQY4uDZlxvb3qCo5ZwKh9k\
    G4LT6_I5IhlJH7aGhyxXFvUK-DWNmoudF8NAco9_h9iaGNj8q2ethFkMLs91kzk2PAcDTW9gb54h4FRWyuXpoQ";

const RFC7515_A2_SIG: &str = "cC4hiUPoj9Eetdgtv3hF80EGrhuB__dzERat0XF9g2VtQgr9PJbu3XOiZj5RZmh7\
    AAuHIm4Bh-0Qc_lF5YKt_O8W2Fp5jujGbds9uJdbF9CUAr7t1dnZcAcQjbKBYNX4BAynRFdiuB--f_nZLgrnbyTyWzO7\
    5vRK5h6xBArLIARNPvkSjtQBMHlb1L07Qe7K0GarZRmB_eSN9383LcOLn6_dO--xi12jzDwusC-eOkHWEsqtFZESc6Bf\
    I7noOPqvhJ1phCnvWh6IeYI2w9QOYEUipUTI8np6LbgGY9Fs98rqVt5AXLIhWkWywlVmtVrBp0igcN_IoypGlUPQGe77Rw";

const RFC7515_A3_SIG: &str = "DtEhU3ljbEg8L38VWAfUAqOyKAM6-Xx-F4GawxaepmXFCgfTjDxw5djxLa8ISlSApmWQxfKTUJqPP3-Kg6NU1Q";

/// RFC 7520 §3.4 (bilbo.baggins@hobbiton.example, RSA public part).
const RFC7520_RSA_N: &str = "n4EPtAOCc9AlkeQHPzHStgAbgs7bTZLwUBZdR8_KuKPEHLd4rHVTeT-O-XV2jRojdNhxJWT\
    DvNd7nqQ0VEiZQHz_AJmSCpMaJMRBSFKrKb2wqVwGU_NsYOYL-QtiWN2lbzcEe6XC0dApr5ydQLrHqkHHig3RBordaZ6Aj-\
    oBHqFEHYpPe7Tpe-OfVfHd1E6cS6M1FZcD1NNLYD5lFHpPI9bTwJlsde3uhGqC0ZCuEHg8lhzwOHrtIQbS0FVbb9k3-tVT\
    U4fg_3L_vniUFAKwuCLqKnS2BYwdq_mzSnbLY7h_qixoR7jig3__kRhuaxwUkRz5iaiQkqgc5gHdrNP5zw";

/// RFC 7520 Figure 8: the Fellowship of the Ring quote (not JSON).
const RFC7520_PAYLOAD: &str = "SXTigJlzIGEgZGFuZ2Vyb3VzIGJ1c2luZXNzLCBGcm9kbywgZ29pbmcgb3V0IH\
    lvdXIgZG9vci4gWW91IHN0ZXAgb250byB0aGUgcm9hZCwgYW5kIGlmIHlvdSBkb24ndCBrZWVwIHlvdXIgZmVldCwgdG\
    hlcmXigJlzIG5vIGtub3dpbmcgd2hlcmUgeW91IG1pZ2h0IGJlIHN3ZXB0IG9mZiB0by4";

const RFC7520_41_HEADER: &str = "eyJhbGciOiJSUzI1NiIsImtpZCI6ImJpbGJvLmJhZ2dpbnNAaG9iYml0b24uZXhhbXBsZSJ9";

const RFC7520_41_SIG: &str = "MRjdkly7_-oTPTS3AXP41iQIGKa80A0ZmTuV5MEaHoxnW2e5CZ5NlKtainoFmKZopdHM1O2U\
    4mwzJdQx996ivp83xuglII7PNDi84wnB-BDkoBwA78185hX-Es4JIwmDLJK3lfWRa-XtL0RnltuYv746iYTh_qHRD68BNt1\
    uSNCrUCTJDt5aAE6x8wW1Kt9eRo4QPocSadnHXFxnt8Is9UzpERV0ePPQdLuW3IS_de3xyIrDaLGdjluPxUAhb6L2aXic1U\
    12podGU0KLUQSE_oI-ZnmKJ3F4uOZDnd6QZWJushZ41Axf_fcIe8u9ipH84ogoree7vjbU5y18kDquDg";

const RFC7520_43_HEADER: &str = "eyJhbGciOiJFUzUxMiIsImtpZCI6ImJpbGJvLmJhZ2dpbnNAaG9iYml0b24uZXhhbXBsZSJ9";

const RFC7520_43_SIG: &str = "AE_R_YZCChjn4791jSQCrdPZCNYqHXCTZH0-JZGYNlaAjP2kqaluUIIUnC9qvbu9Plon7KRT\
    zoNEuT4Va2cmL1eJAQy3mtPBu_u_sDDyYjnAMDxXPn7XrT0lw-kvAD890jl8e2puQens_IEKBpHABlsbEPX6sFY8OcGDqo\
    RuBomu9xQ2";

/// Continuation lines above are indented for reading; the vectors have no whitespace.
fn clean(s: &str) -> String {
    s.split_whitespace().collect()
}

fn key_set(jwk: serde_json::Value) -> KeySet<crate::testkit::native_crypto::NativeKey> {
    KeySet::new(Jwks::parse(&serde_json::to_vec(&json!({ "keys": [jwk] })).unwrap()).unwrap())
}

/// Before the vectors' exp (1300819380, March 2011).
const NOW: u64 = 1_300_000_000;

fn joe_rules() -> ClaimRules {
    ClaimRules::new(IssuerRule::Exact("joe".into()), vec!["anything".into()])
}

#[test]
fn rfc7515_a2_rs256_verifies() {
    let token = format!("eyJhbGciOiJSUzI1NiJ9.{}.{}", clean(RFC7515_PAYLOAD), clean(RFC7515_A2_SIG));
    let jwt = UnverifiedJwt::parse(&token, DEFAULT_MAX_TOKEN_LEN).unwrap();
    let keys = key_set(json!({"kty": "RSA", "n": clean(RFC7515_A2_N), "e": "AQAB"}));
    let verifier = NativeVerifier::default();
    block_on(verify_signature(&verifier, &keys, &jwt, &[JwsAlgorithm::Rs256])).unwrap();
    // The signature holds; the claims then fail only on the audience the vector lacks.
    let full = block_on(verify(&verifier, &keys, &jwt, &[JwsAlgorithm::Rs256], &joe_rules(), NOW));
    assert_eq!(full.unwrap_err(), JwtError::MissingClaim("aud"));
    assert_eq!(jwt.unverified_claims()["http://example.com/is_root"], json!(true));
}

#[test]
fn rfc7515_a3_es256_verifies() {
    let token = format!("eyJhbGciOiJFUzI1NiJ9.{}.{RFC7515_A3_SIG}", clean(RFC7515_PAYLOAD));
    let jwt = UnverifiedJwt::parse(&token, DEFAULT_MAX_TOKEN_LEN).unwrap();
    let keys = key_set(json!({"kty": "EC", "crv": "P-256",
        "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
        "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}));
    let verifier = NativeVerifier::default();
    block_on(verify_signature(&verifier, &keys, &jwt, &[JwsAlgorithm::Es256])).unwrap();
    // Refused when ES256 is not in the allow-list, and when a bit of the signature flips.
    let refused = block_on(verify_signature(&verifier, &keys, &jwt, &[JwsAlgorithm::Rs256]));
    assert_eq!(refused.unwrap_err().reason(), "alg_not_allowed");
    let flipped = token.replace("DtEh", "DtEi");
    let jwt = UnverifiedJwt::parse(&flipped, DEFAULT_MAX_TOKEN_LEN).unwrap();
    let bad = block_on(verify_signature(&verifier, &keys, &jwt, &[JwsAlgorithm::Es256]));
    assert_eq!(bad.unwrap_err(), JwtError::SignatureInvalid);
}

#[test]
fn rfc7520_4_1_rs256_signature_verifies_but_is_not_a_jwt() {
    let input = format!("{RFC7520_41_HEADER}.{}", clean(RFC7520_PAYLOAD));
    let keys = key_set(json!({"kty": "RSA", "kid": "bilbo.baggins@hobbiton.example", "use": "sig",
        "n": clean(RFC7520_RSA_N), "e": "AQAB"}));
    let header = JwtHeader {
        alg: JwsAlgorithm::Rs256,
        kid: Some("bilbo.baggins@hobbiton.example".into()),
        typ: None,
        has_nonce: false,
    };
    let verifier = NativeVerifier::default();
    let sig = {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(clean(RFC7520_41_SIG)).unwrap()
    };
    let ok = block_on(async {
        let (key, len) = keys.key_for(&verifier, &header).await.unwrap();
        assert_eq!(len, sig.len());
        verifier.verify(&key, JwsAlgorithm::Rs256, input.as_bytes(), &sig).await.unwrap()
    });
    assert!(ok);
    // As a JWT it is refused: the payload is prose, not a claims set.
    let token = format!("{input}.{}", clean(RFC7520_41_SIG));
    let err = UnverifiedJwt::parse(&token, DEFAULT_MAX_TOKEN_LEN).unwrap_err();
    assert_eq!(err, JwtError::Malformed("payload is not a JSON object"));
}

#[test]
fn rfc7520_4_3_es512_is_refused_for_its_algorithm() {
    let token = format!("{RFC7520_43_HEADER}.{}.{}", clean(RFC7520_PAYLOAD), clean(RFC7520_43_SIG));
    let err = UnverifiedJwt::parse(&token, DEFAULT_MAX_TOKEN_LEN).unwrap_err();
    assert_eq!(err, JwtError::AlgNotAllowed("ES512".into()));
}
