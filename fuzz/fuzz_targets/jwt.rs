//! The JWT parser and its strict JSON pass (`src/jwt/parse.rs`, `src/json.rs`).
//!
//! The first byte picks the shape of the input: even, the rest is a raw compact token; odd, the
//! rest is `header JSON \n payload JSON \n signature bytes`, base64url-encoded here so the
//! fuzzer spends its time on the JSON and header rules rather than on learning base64.
//!
//! Invariants: no panic; a refusal is an `Err` with a reason code and a token class (401, never
//! blamed on the provider); an accepted token is three canonical base64url segments whose
//! signing input is the token up to its last dot; the strict JSON parser agrees with
//! `serde_json` wherever no member name repeats, refuses repeats, and parse(serialise(x)) = x;
//! an accepted header carries an allowed `alg` and none of the refused parameters.
#![no_main]

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use edgeguard::json::{StrictJsonError, parse_object};
use edgeguard::jwt::{DEFAULT_MAX_TOKEN_LEN, ErrorClass, JwtError, UnverifiedJwt};
use edgeguard_fuzz::Input;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

/// Header parameters whose presence must make parsing fail.
const REFUSED_PARAMS: [&str; 6] = ["crit", "jwk", "jku", "x5u", "x5c", "enc"];

fuzz_target!(|data: &[u8]| {
    let mut input = Input::new(data);
    if input.byte().is_multiple_of(2) {
        if let Ok(token) = std::str::from_utf8(input.rest()) {
            let _ = check_token(token);
        }
        return;
    }
    let header = input.line();
    let payload = input.line();
    let signature = input.rest();
    check_json(header);
    check_json(payload);
    let token = format!("{}.{}.{}", B64.encode(header), B64.encode(payload), B64.encode(signature));
    let parsed = check_token(&token);
    match (parse_object(header), &parsed) {
        (Err(StrictJsonError::DuplicateMember), result) => {
            assert!(matches!(result, Err(JwtError::DuplicateJsonMember("header"))), "{result:?}")
        }
        (Err(_), result) => assert!(result.is_err(), "a header that is no JSON object was accepted"),
        (Ok(header), Ok(jwt)) => check_accepted_header(&header, jwt),
        (Ok(_), Err(_)) => {}
    }
    if let Ok(jwt) = &parsed {
        assert_eq!(parse_object(payload).as_ref(), Ok(jwt.unverified_claims()));
        assert_eq!(jwt.signature(), signature);
    }
    if signature.is_empty() {
        assert!(parsed.is_err(), "a token with an empty signature was accepted");
    }
});

/// Parse a token and check what holds for every outcome.
fn check_token(token: &str) -> Result<UnverifiedJwt, JwtError> {
    let parsed = UnverifiedJwt::parse(token, DEFAULT_MAX_TOKEN_LEN);
    match &parsed {
        Err(e) => {
            assert!(!e.reason().is_empty());
            assert_eq!(e.class(), ErrorClass::Token, "a bad token blamed on someone else: {e:?}");
            if token.len() > DEFAULT_MAX_TOKEN_LEN {
                assert!(matches!(e, JwtError::TokenTooLarge { .. }), "{e:?}");
            }
        }
        Ok(jwt) => {
            let segments: Vec<&str> = token.split('.').collect();
            let [header_b64, payload_b64, signature_b64] = segments.as_slice() else {
                panic!("accepted a token with {} segments", segments.len());
            };
            // Canonical base64url: one token has exactly one spelling.
            assert_eq!(B64.encode(jwt.signature()), *signature_b64);
            for segment in [header_b64, payload_b64] {
                let decoded = B64.decode(segment).unwrap();
                assert_eq!(B64.encode(decoded), **segment);
            }
            let (signing_input, _) = token.rsplit_once('.').unwrap();
            assert_eq!(jwt.signing_input(), signing_input.as_bytes());
            // The bound is inclusive and exact.
            assert!(UnverifiedJwt::parse(token, token.len()).is_ok());
            let too_small = UnverifiedJwt::parse(token, token.len() - 1);
            assert!(matches!(too_small, Err(JwtError::TokenTooLarge { .. })));
        }
    }
    parsed
}

/// The strict JSON pass against `serde_json`, and its round trip.
fn check_json(bytes: &[u8]) {
    let plain = serde_json::from_slice::<Value>(bytes);
    match parse_object(bytes) {
        Ok(map) => {
            assert_eq!(plain.ok(), Some(Value::Object(map.clone())), "strict and serde_json disagree");
            let text = serde_json::to_vec(&map).unwrap();
            let again = parse_object(&text);
            // serde_json (without its `float_roundtrip` feature) may read a long decimal one ULP
            // off, so its own output can read back differently; floats are not claims we use.
            if !map.values().any(has_float) {
                assert_eq!(again, Ok(map), "parse(serialise(x)) != x");
            } else {
                assert!(again.is_ok_and(|m| m.keys().eq(map.keys())), "parse(serialise(x)) lost members");
            }
        }
        Err(StrictJsonError::NotObject) => assert!(plain.is_ok_and(|v| !v.is_object())),
        Err(StrictJsonError::Invalid) => assert!(plain.is_err(), "strict refused JSON serde_json reads"),
        Err(StrictJsonError::DuplicateMember) => {}
    }
}

fn has_float(value: &Value) -> bool {
    match value {
        Value::Number(n) => n.is_f64(),
        Value::Array(items) => items.iter().any(has_float),
        Value::Object(members) => members.values().any(has_float),
        _ => false,
    }
}

/// An accepted header says what its JSON says, and holds nothing that must be refused.
fn check_accepted_header(header: &serde_json::Map<String, Value>, jwt: &UnverifiedJwt) {
    assert_eq!(header.get("alg").and_then(Value::as_str), Some(jwt.alg().name()));
    assert_eq!(header.get("kid").and_then(Value::as_str), jwt.kid());
    assert_eq!(header.get("typ").and_then(Value::as_str), jwt.header().typ.as_deref());
    assert_eq!(header.contains_key("nonce"), jwt.header().has_nonce);
    for param in REFUSED_PARAMS {
        assert!(!header.contains_key(param), "accepted a header with {param}");
    }
    assert_ne!(header.get("b64"), Some(&Value::Bool(false)));
    let cty = header.get("cty").and_then(Value::as_str);
    assert!(!cty.is_some_and(|c| c.eq_ignore_ascii_case("JWT")), "accepted a nested JWT");
}
