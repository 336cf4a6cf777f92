#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use super::*;
use crate::testkit::native_crypto::b64;
use serde_json::json;

const SIG: &[u8] = &[7; 256];

/// A token from raw header and payload text with a dummy signature (parsing never checks it).
fn raw(header: &str, payload: &str) -> String {
    format!("{}.{}.{}", b64(header.as_bytes()), b64(payload.as_bytes()), b64(SIG))
}

const PAYLOAD: &str = r#"{"iss":"https://idp.example","sub":"u1","aud":"api","exp":2000000000}"#;

fn parse(token: &str) -> Result<UnverifiedJwt, JwtError> {
    UnverifiedJwt::parse(token, DEFAULT_MAX_TOKEN_LEN)
}

fn reason(token: &str) -> &'static str {
    match parse(token) {
        Ok(_) => "ok",
        Err(e) => e.reason(),
    }
}

#[test]
fn well_formed_token_keeps_what_verification_needs() {
    let header = r#"{"alg":"RS256","kid":"k1","typ":"at+jwt","x5t":"abc","nonce":"n"}"#;
    let token = raw(header, PAYLOAD);
    let jwt = parse(&token).unwrap();
    assert_eq!(
        jwt.header(),
        &JwtHeader { alg: JwsAlgorithm::Rs256, kid: Some("k1".into()), typ: Some("at+jwt".into()), has_nonce: true }
    );
    assert_eq!(jwt.kid(), Some("k1"));
    assert_eq!(jwt.unverified_claims()["sub"], json!("u1"));
    assert_eq!(jwt.signature(), SIG);
    let (input, _) = token.rsplit_once('.').unwrap();
    assert_eq!(jwt.signing_input(), input.as_bytes());
}

#[test]
fn header_attacks_are_refused_with_their_reason() {
    let cases: &[(&str, &str)] = &[
        (r#"{"alg":"RS256"}"#, "ok"),
        (r#"{"alg":"EdDSA","b64":true}"#, "ok"),
        (r#"{"alg":"ES256","cty":"json"}"#, "ok"),
        (r#"{"alg":"none"}"#, "alg_not_allowed"),
        (r#"{"alg":"None"}"#, "alg_not_allowed"),
        (r#"{"alg":"HS256"}"#, "alg_not_allowed"),
        (r#"{"alg":"HS512"}"#, "alg_not_allowed"),
        (r#"{"alg":"rs256"}"#, "alg_not_allowed"),
        (r#"{"alg":"ES512"}"#, "alg_not_allowed"),
        (r#"{"alg":""}"#, "alg_not_allowed"),
        (r#"{"alg":["RS256"]}"#, "malformed_token"),
        (r#"{"kid":"k"}"#, "malformed_token"),
        (r#"{"alg":"RS256","crit":["exp"],"exp":1}"#, "crit_unsupported"),
        (r#"{"alg":"RS256","crit":[]}"#, "crit_unsupported"),
        (r#"{"alg":"RS256","jwk":{"kty":"RSA","n":"AQAB","e":"AQAB"}}"#, "embedded_key_refused"),
        (r#"{"alg":"RS256","jku":"https://evil.example/jwks"}"#, "embedded_key_refused"),
        (r#"{"alg":"RS256","x5u":"https://evil.example/cert"}"#, "embedded_key_refused"),
        (r#"{"alg":"RS256","x5c":["MIIB"]}"#, "embedded_key_refused"),
        (r#"{"alg":"RS256","b64":false}"#, "unencoded_payload_unsupported"),
        (r#"{"alg":"RS256","b64":"no"}"#, "malformed_token"),
        (r#"{"alg":"RS256","cty":"JWT"}"#, "nested_jwt_unsupported"),
        (r#"{"alg":"RS256","enc":"A256GCM"}"#, "jwe_unsupported"),
        (r#"{"alg":"RS256","kid":7}"#, "malformed_token"),
        (r#"{"alg":"RS256","typ":null}"#, "malformed_token"),
        (r#"{"alg":"RS256","alg":"none"}"#, "duplicate_json_member"),
        (r#"{"alg":"none","alg":"RS256"}"#, "duplicate_json_member"),
        (r#"{"alg":"RS256","\u0061lg":"RS256"}"#, "duplicate_json_member"),
        (r#"{"alg":"RS256","kid":"a","kid":"b"}"#, "duplicate_json_member"),
        (r#"["alg","RS256"]"#, "malformed_token"),
        (r#"{"alg":"RS256""#, "malformed_token"),
    ];
    for (header, want) in cases {
        assert_eq!(reason(&raw(header, PAYLOAD)), *want, "header {header}");
    }
}

#[test]
fn payload_rules() {
    let header = r#"{"alg":"RS256"}"#;
    let cases: &[(&str, &str)] = &[
        (PAYLOAD, "ok"),
        (r#"{"sub":"alice","sub":"admin"}"#, "duplicate_json_member"),
        (r#"{"s\u0075b":"alice","sub":"admin"}"#, "duplicate_json_member"),
        (r#"{"cnf":{"jkt":"a","jkt":"b"}}"#, "duplicate_json_member"),
        (r#"{"a":{"sub":"x"},"sub":"y"}"#, "ok"),
        ("[]", "malformed_token"),
        ("not json", "malformed_token"),
        (r#"{"exp":1}garbage"#, "malformed_token"),
    ];
    for (payload, want) in cases {
        assert_eq!(reason(&raw(header, payload)), *want, "payload {payload}");
    }
}

#[test]
fn segments_and_encoding() {
    let h = b64(br#"{"alg":"RS256","kid":"k"}"#);
    let p = b64(PAYLOAD.as_bytes());
    let s = b64(SIG);
    // [0xfb, 0xff] is "-_8" in base64url and "+/8" in standard base64.
    let url_safe = b64(&[0xfb, 0xff]);
    assert_eq!(url_safe, "-_8");
    let padded_h = format!("{h}=");
    let cases: Vec<(String, &str)> = vec![
        (format!("{h}.{p}.{s}"), "ok"),
        (format!("{h}.{p}.{url_safe}"), "ok"),
        (format!("{h}.{p}.+/8"), "malformed_token"),
        (format!("{padded_h}.{p}.{s}"), "malformed_token"),
        (format!("{h}.{p}.{s}=="), "malformed_token"),
        (format!("{h}.{p}.{s} "), "malformed_token"),
        (format!(" {h}.{p}.{s}"), "malformed_token"),
        (format!("{h}.{p}.{s}\n"), "malformed_token"),
        (format!("{h}.{p} .{s}"), "malformed_token"),
        // One byte 'A' is "QQ"; "QR" carries non-zero trailing bits: a second spelling.
        (format!("{h}.{p}.QQ"), "ok"),
        (format!("{h}.{p}.QR"), "malformed_token"),
        (format!("{h}.{p}."), "malformed_token"),
        (format!("{h}..{s}"), "malformed_token"),
        (format!(".{p}.{s}"), "malformed_token"),
        (format!("{h}.{p}"), "malformed_token"),
        (format!("{h}.{p}.{s}.{s}"), "malformed_token"),
        (format!("{h}.{p}.{s}.{s}.{s}"), "jwe_unsupported"),
        (format!("{h}.{p}.{s}.{s}.{s}.{s}"), "malformed_token"),
        (String::new(), "malformed_token"),
        ("....".to_owned(), "jwe_unsupported"),
    ];
    for (token, want) in cases {
        assert_eq!(reason(&token), want, "token {token:?}");
    }
}

#[test]
fn alg_none_with_empty_signature_is_refused_for_its_alg() {
    let token = format!("{}.{}.", b64(br#"{"alg":"none"}"#), b64(PAYLOAD.as_bytes()));
    assert_eq!(parse(&token).unwrap_err(), JwtError::AlgNotAllowed("none".into()));
}

#[test]
fn size_bound_is_checked_first() {
    let token = raw(r#"{"alg":"RS256"}"#, PAYLOAD);
    assert!(UnverifiedJwt::parse(&token, token.len()).is_ok());
    assert_eq!(
        UnverifiedJwt::parse(&token, token.len() - 1).unwrap_err(),
        JwtError::TokenTooLarge { len: token.len(), max: token.len() - 1 }
    );
    // Oversize garbage is refused for its size, not parsed.
    let huge = "A".repeat(DEFAULT_MAX_TOKEN_LEN + 1);
    assert_eq!(reason(&huge), "token_too_large");
    let big_claims = format!(r#"{{"pad":"{}"}}"#, "x".repeat(DEFAULT_MAX_TOKEN_LEN));
    assert_eq!(reason(&raw(r#"{"alg":"RS256"}"#, &big_claims)), "token_too_large");
}

#[test]
fn alg_in_error_is_truncated_for_logs() {
    let long_alg = "X".repeat(500);
    let err = parse(&raw(&format!(r#"{{"alg":"{long_alg}"}}"#), PAYLOAD)).unwrap_err();
    let JwtError::AlgNotAllowed(logged) = err else { panic!("{err:?}") };
    assert!(logged.len() < 80);
}
