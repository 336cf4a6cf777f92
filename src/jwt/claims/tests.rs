#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use super::*;
use crate::jwt::JwsAlgorithm;
use serde_json::json;

const NOW: u64 = 1_700_000_000;
const ISS: &str = "https://idp.example/tenant/v2.0";

fn rules() -> ClaimRules {
    ClaimRules::new(IssuerRule::Exact(ISS.into()), vec!["api://gw".into(), "client-1".into()])
}

fn good() -> Value {
    json!({"iss": ISS, "aud": "api://gw", "sub": "u", "exp": NOW + 300, "iat": NOW - 10, "nbf": NOW - 10})
}

fn with(mut claims: Value, name: &str, value: Value) -> Value {
    if value.is_null() {
        claims.as_object_mut().unwrap().remove(name);
    } else {
        claims[name] = value;
    }
    claims
}

fn check(rules: &ClaimRules, typ: Option<&str>, claims: &Value) -> Result<(), JwtError> {
    let header = JwtHeader { alg: JwsAlgorithm::Rs256, kid: None, typ: typ.map(str::to_owned), has_nonce: false };
    rules.validate(&header, claims.as_object().unwrap(), NOW)
}

fn reason(r: Result<(), JwtError>) -> &'static str {
    r.map_or_else(|e| e.reason(), |()| "ok")
}

#[test]
fn registered_claims_table() {
    let leeway = DEFAULT_LEEWAY_SECS;
    let cases: Vec<(&str, Value, &str)> = vec![
        ("good", good(), "ok"),
        // iss
        ("iss missing", with(good(), "iss", Value::Null), "iss_missing"),
        ("iss other", with(good(), "iss", json!("https://evil.example")), "issuer_mismatch"),
        ("iss trailing slash", with(good(), "iss", json!(format!("{ISS}/"))), "issuer_mismatch"),
        ("iss case", with(good(), "iss", json!(ISS.to_uppercase())), "issuer_mismatch"),
        ("iss number", with(good(), "iss", json!(1)), "claim_invalid"),
        // aud
        ("aud array with ours", with(good(), "aud", json!(["other", "client-1"])), "ok"),
        ("aud other", with(good(), "aud", json!("other")), "audience_mismatch"),
        ("aud array without ours", with(good(), "aud", json!(["a", "b"])), "audience_mismatch"),
        ("aud empty array", with(good(), "aud", json!([])), "audience_mismatch"),
        ("aud missing", with(good(), "aud", Value::Null), "aud_missing"),
        ("aud number", with(good(), "aud", json!(5)), "claim_invalid"),
        ("aud array with number", with(good(), "aud", json!(["api://gw", 5])), "claim_invalid"),
        ("aud prefix only", with(good(), "aud", json!("api://g")), "audience_mismatch"),
        // exp: valid while now < exp + leeway
        ("exp missing", with(good(), "exp", Value::Null), "exp_missing"),
        ("exp just past, in leeway", with(good(), "exp", json!(NOW - leeway + 1)), "ok"),
        ("exp past leeway", with(good(), "exp", json!(NOW - leeway)), "token_expired"),
        ("exp long past", with(good(), "exp", json!(NOW - 86_400)), "token_expired"),
        ("exp string", with(good(), "exp", json!("2030-01-01")), "claim_invalid"),
        ("exp negative", with(good(), "exp", json!(-1)), "claim_invalid"),
        ("exp fractional", with(good(), "exp", json!(NOW as f64 + 0.5)), "ok"),
        ("exp huge", with(good(), "exp", json!(u64::MAX)), "ok"),
        ("exp huge float", with(good(), "exp", json!(1e300)), "ok"),
        // nbf: valid when nbf <= now + leeway
        ("nbf absent", with(good(), "nbf", Value::Null), "ok"),
        ("nbf in leeway", with(good(), "nbf", json!(NOW + leeway)), "ok"),
        ("nbf future", with(good(), "nbf", json!(NOW + leeway + 1)), "token_not_yet_valid"),
        ("nbf bool", with(good(), "nbf", json!(true)), "claim_invalid"),
        // iat: not in the future beyond leeway
        ("iat absent", with(good(), "iat", Value::Null), "ok"),
        ("iat in leeway", with(good(), "iat", json!(NOW + leeway)), "ok"),
        ("iat future", with(good(), "iat", json!(NOW + leeway + 1)), "iat_in_future"),
        ("iat array", with(good(), "iat", json!([])), "claim_invalid"),
    ];
    for (name, claims, want) in cases {
        assert_eq!(reason(check(&rules(), None, &claims)), want, "{name}");
    }
}

#[test]
fn optional_rules_table() {
    let require_iat = ClaimRules { require_iat: true, ..rules() };
    let max_age = ClaimRules { max_age_secs: Some(3600), ..rules() };
    let max_auth = ClaimRules { max_auth_age_secs: Some(600), ..rules() };
    let azp = ClaimRules { authorized_party: Some("client-1".into()), ..rules() };
    let no_leeway = ClaimRules { leeway_secs: 0, ..rules() };
    let no_aud = ClaimRules { audiences: vec![], ..rules() };
    let cases: Vec<(&str, &ClaimRules, Value, &str)> = vec![
        ("iat required, present", &require_iat, good(), "ok"),
        ("iat required, absent", &require_iat, with(good(), "iat", Value::Null), "iat_missing"),
        ("max age ok", &max_age, with(good(), "iat", json!(NOW - 3600)), "ok"),
        ("max age exceeded", &max_age, with(good(), "iat", json!(NOW - 3600 - 61)), "token_too_old"),
        ("max age needs iat", &max_age, with(good(), "iat", Value::Null), "iat_missing"),
        ("auth_time fresh", &max_auth, with(good(), "auth_time", json!(NOW - 600)), "ok"),
        ("auth_time old", &max_auth, with(good(), "auth_time", json!(NOW - 700)), "auth_time_too_old"),
        ("auth_time missing", &max_auth, good(), "claim_missing"),
        ("azp absent, one aud", &azp, good(), "ok"),
        ("azp matches", &azp, with(good(), "azp", json!("client-1")), "ok"),
        ("azp other", &azp, with(good(), "azp", json!("client-2")), "azp_mismatch"),
        ("azp absent, many aud", &azp, with(good(), "aud", json!(["client-1", "x"])), "azp_mismatch"),
        ("azp number", &azp, with(good(), "azp", json!(1)), "claim_invalid"),
        ("no leeway, exp now", &no_leeway, with(good(), "exp", json!(NOW)), "token_expired"),
        ("no leeway, exp next second", &no_leeway, with(good(), "exp", json!(NOW + 1)), "ok"),
        ("no leeway, nbf next second", &no_leeway, with(good(), "nbf", json!(NOW + 1)), "token_not_yet_valid"),
        ("no audience configured", &no_aud, good(), "audience_not_configured"),
    ];
    for (name, rules, claims, want) in cases {
        assert_eq!(reason(check(rules, None, &claims)), want, "{name}");
    }
}

#[test]
fn typ_table() {
    let any = rules();
    let at = ClaimRules { accepted_types: vec!["at+jwt".into()], ..rules() };
    let app = ClaimRules { accepted_types: vec!["application/at+jwt".into(), "JWT".into()], ..rules() };
    let cases: Vec<(&str, &ClaimRules, Option<&str>, &str)> = vec![
        ("any typ when unconfigured", &any, Some("whatever"), "ok"),
        ("no typ when unconfigured", &any, None, "ok"),
        ("exact", &at, Some("at+jwt"), "ok"),
        ("case-insensitive", &at, Some("AT+JWT"), "ok"),
        ("with application/ prefix", &at, Some("application/at+jwt"), "ok"),
        ("prefix in config, none in token", &app, Some("at+jwt"), "ok"),
        ("second accepted type", &app, Some("jwt"), "ok"),
        ("missing typ when required", &at, None, "typ_mismatch"),
        ("ID token typ for access token rule", &at, Some("JWT"), "typ_mismatch"),
        ("logout token", &at, Some("logout+jwt"), "typ_mismatch"),
        ("other media type prefix", &at, Some("text/at+jwt"), "typ_mismatch"),
    ];
    for (name, rules, typ, want) in cases {
        assert_eq!(reason(check(rules, typ, &good())), want, "{name}");
    }
}

#[test]
fn mismatch_details_are_for_logs_only() {
    let err = check(&rules(), None, &with(good(), "iss", json!("https://evil.example"))).unwrap_err();
    assert_eq!(err, JwtError::IssuerMismatch { found: "https://evil.example".into() });
    assert!(!err.description().contains("evil"));
}
