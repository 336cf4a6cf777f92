//! The authorization response at the callback (`src/oidc/callback.rs`).
//!
//! Invariants: no panic; a success carries a non-empty `code` and `state` and an error carries
//! its `error`, each exactly as the query says; a query that repeats one of the parameters the
//! gateway reads, or has an over-long value, is refused as `Malformed`; and
//! parse(serialise(x)) = x for every response the parser produces.
#![no_main]

use edgeguard::oidc::AuthorizationResponse;
use libfuzzer_sys::fuzz_target;
use url::form_urlencoded;

/// The parameters the callback reads; a repeat of any of them is ambiguous.
const READ: [&str; 5] = ["code", "state", "iss", "error", "error_description"];
const MAX_PARAM_LEN: usize = 4096;

fuzz_target!(|data: &[u8]| {
    let Ok(query) = std::str::from_utf8(data) else { return };
    let response = AuthorizationResponse::from_query(query);
    let pairs: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes()).into_owned().collect();
    let first = |name: &str| pairs.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone());
    let repeated = READ.iter().any(|name| pairs.iter().filter(|(n, _)| n == name).count() > 1);
    let too_long = pairs.iter().any(|(_, v)| v.len() > MAX_PARAM_LEN);
    if repeated || too_long {
        assert_eq!(response, AuthorizationResponse::Malformed, "ambiguous or over-long query accepted");
        return;
    }
    match &response {
        AuthorizationResponse::Code { code, state, iss } => {
            assert!(!code.is_empty() && !state.is_empty());
            assert_eq!((Some(code), Some(state)), (first("code").as_ref(), first("state").as_ref()));
            assert_eq!(iss, &first("iss"));
            assert_eq!(first("error"), None, "an error response read as a success");
        }
        AuthorizationResponse::Error { error, description, state, iss } => {
            assert_eq!(Some(error), first("error").as_ref());
            assert_eq!((description, state), (&first("error_description"), &first("state")));
            assert_eq!(iss, &first("iss"));
        }
        AuthorizationResponse::Malformed => {
            let has_code =
                first("code").is_some_and(|c| !c.is_empty()) && first("state").is_some_and(|s| !s.is_empty());
            assert!(first("error").is_none() && !has_code, "a well-formed callback refused");
            return;
        }
    }
    assert_eq!(AuthorizationResponse::from_query(&serialise(&response)), response, "parse(serialise(x)) != x");
});

fn serialise(response: &AuthorizationResponse) -> String {
    let mut query = form_urlencoded::Serializer::new(String::new());
    match response {
        AuthorizationResponse::Code { code, state, iss } => {
            query.append_pair("code", code).append_pair("state", state);
            if let Some(iss) = iss {
                query.append_pair("iss", iss);
            }
        }
        AuthorizationResponse::Error { error, description, state, iss } => {
            query.append_pair("error", error);
            if let Some(description) = description {
                query.append_pair("error_description", description);
            }
            if let Some(state) = state {
                query.append_pair("state", state);
            }
            if let Some(iss) = iss {
                query.append_pair("iss", iss);
            }
        }
        AuthorizationResponse::Malformed => {}
    }
    query.finish()
}
