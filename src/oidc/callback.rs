//! The authorization response at the redirect URI (RFC 6749 §4.1.2, §4.1.2.1; RFC 9207).

use url::form_urlencoded;

/// What the provider sent back to the callback.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthorizationResponse {
    /// Success: a code to exchange, the state to match, and the issuer if the provider
    /// identifies itself (RFC 9207; Azure AD does not).
    Code { code: String, state: String, iss: Option<String> },
    /// The provider refused (e.g. `access_denied` when the user cancels), with the issuer
    /// if it says who it is (RFC 9207 §2 covers error responses too).
    Error { error: String, description: Option<String>, state: Option<String>, iss: Option<String> },
    /// Neither a code with a state nor an error: not a callback at all.
    Malformed,
}

/// Longest parameter accepted; codes and states are far shorter.
const MAX_PARAM_LEN: usize = 4096;

impl AuthorizationResponse {
    pub fn from_query(query: &str) -> Self {
        let mut code = None;
        let mut state = None;
        let mut iss = None;
        let mut error = None;
        let mut description = None;
        for (name, value) in form_urlencoded::parse(query.as_bytes()) {
            if value.len() > MAX_PARAM_LEN {
                return Self::Malformed;
            }
            let slot = match name.as_ref() {
                "code" => &mut code,
                "state" => &mut state,
                "iss" => &mut iss,
                "error" => &mut error,
                "error_description" => &mut description,
                _ => continue,
            };
            // A repeated parameter is ambiguous: refuse rather than pick one (RFC 6749 §3.1).
            if slot.replace(value.into_owned()).is_some() {
                return Self::Malformed;
            }
        }
        match (error, code, state) {
            (Some(error), _, state) => Self::Error { error, description, state, iss },
            (None, Some(code), Some(state)) if !code.is_empty() && !state.is_empty() => Self::Code { code, state, iss },
            _ => Self::Malformed,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_code_error_and_garbage() {
        assert_eq!(
            AuthorizationResponse::from_query("code=c&state=s&iss=https%3A%2F%2Fidp"),
            AuthorizationResponse::Code { code: "c".into(), state: "s".into(), iss: Some("https://idp".into()) }
        );
        assert_eq!(
            AuthorizationResponse::from_query("error=access_denied&state=s"),
            AuthorizationResponse::Error {
                error: "access_denied".into(),
                description: None,
                state: Some("s".into()),
                iss: None
            }
        );
        for bad in ["", "code=c", "state=s", "code=&state=s", "code=a&code=b&state=s"] {
            assert_eq!(AuthorizationResponse::from_query(bad), AuthorizationResponse::Malformed, "{bad}");
        }
    }
}
