//! The token endpoint (RFC 6749 §3.2, §4.1.3, §5; OIDC Core §3.1.3): building requests with
//! client authentication, and reading answers.

use super::client_auth::ClientAuthentication;
use crate::config::ProviderConfig;
use crate::ports::{HttpError, IncomingResponse, OutgoingRequest};
use serde::Deserialize;
use url::form_urlencoded;

/// A grant sent to the token endpoint.
pub enum Grant<'a> {
    /// Authorization code with its PKCE verifier (RFC 7636 §4.5).
    AuthorizationCode { code: &'a str, redirect_uri: &'a str, pkce_verifier: &'a str },
    /// A refresh token for new tokens without a new sign-in (RFC 6749 §6).
    RefreshToken { refresh_token: &'a str },
}

/// A successful token response.
#[derive(Clone, Deserialize)]
pub struct TokenResponse {
    pub access_token: String,
    pub token_type: String,
    /// Seconds; Azure AD v1 sends it as a JSON string (`"3599"`), so both forms are read.
    #[serde(default, deserialize_with = "seconds")]
    pub expires_in: Option<u64>,
    #[serde(default)]
    pub refresh_token: Option<String>,
    #[serde(default)]
    pub id_token: Option<String>,
    /// Granted scopes, space-separated (RFC 6749 §5.1).
    #[serde(default)]
    pub scope: Option<String>,
}

/// A number of seconds written as a JSON number or a string of digits. Read through
/// `serde_json::Value` (already in the bundle) rather than an untagged enum, whose buffering
/// machinery costs kilobytes of wasm.
fn seconds<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Option<u64>, D::Error> {
    use serde::de::Error;
    match serde_json::Value::deserialize(deserializer)? {
        serde_json::Value::Null => Ok(None),
        serde_json::Value::Number(n) => {
            n.as_u64().map(Some).ok_or_else(|| D::Error::custom("expires_in is not a whole number"))
        }
        serde_json::Value::String(t) => t.trim().parse().map(Some).map_err(D::Error::custom),
        _ => Err(D::Error::custom("expires_in is not a number")),
    }
}

impl std::fmt::Debug for TokenResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenResponse")
            .field("token_type", &self.token_type)
            .field("expires_in", &self.expires_in)
            .finish_non_exhaustive()
    }
}

/// Why no tokens came back.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// The provider refused the grant (RFC 6749 §5.2), e.g. `invalid_grant` for a used code.
    #[error("token endpoint refused the grant: {error}")]
    Refused { error: String, description: Option<String> },
    /// The provider failed (5xx or an unexpected status).
    #[error("token endpoint answered HTTP {0}")]
    ProviderStatus(u16),
    /// A 200 answer that is not a usable token response.
    #[error("token response is malformed: {0}")]
    Malformed(String),
    /// No answer at all.
    #[error("token endpoint unreachable: {0}")]
    Unreachable(HttpError),
}

/// Build the POST to the token endpoint with the client authentication for this request.
pub fn build_token_request(
    token_endpoint: &str,
    provider: &ProviderConfig,
    grant: &Grant<'_>,
    auth: &ClientAuthentication<'_>,
) -> Result<OutgoingRequest, http::Error> {
    let mut form = form_urlencoded::Serializer::new(String::new());
    match grant {
        Grant::AuthorizationCode { code, redirect_uri, pkce_verifier } => {
            form.append_pair("grant_type", "authorization_code")
                .append_pair("code", code)
                .append_pair("redirect_uri", redirect_uri)
                .append_pair("code_verifier", pkce_verifier);
        }
        Grant::RefreshToken { refresh_token } => {
            form.append_pair("grant_type", "refresh_token").append_pair("refresh_token", refresh_token);
        }
    }
    if let Some(resource) = &provider.resource {
        form.append_pair("resource", resource);
    }
    client_authenticated_post(token_endpoint, auth, form)
}

/// A form POST to one of the provider's endpoints (token, revocation) with the client
/// authentication added.
pub fn client_authenticated_post(
    endpoint: &str,
    auth: &ClientAuthentication<'_>,
    mut form: form_urlencoded::Serializer<'_, String>,
) -> Result<OutgoingRequest, http::Error> {
    let builder = http::Request::post(endpoint)
        .header(http::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(http::header::ACCEPT, "application/json");
    let builder = auth.apply(builder, &mut form);
    builder.body(form.finish().into_bytes())
}

#[derive(Deserialize)]
struct ErrorBody {
    error: String,
    #[serde(default)]
    error_description: Option<String>,
}

/// Read the token endpoint's answer.
pub fn parse_token_response(result: Result<IncomingResponse, HttpError>) -> Result<TokenResponse, TokenError> {
    let response = result.map_err(TokenError::Unreachable)?;
    let status = response.status();
    if status.is_success() {
        let tokens: TokenResponse =
            crate::json::decode(response.body()).map_err(|e| TokenError::Malformed(e.to_string()))?;
        if !tokens.token_type.eq_ignore_ascii_case("bearer") {
            return Err(TokenError::Malformed(format!("token_type {:?} is not Bearer", tokens.token_type)));
        }
        if tokens.access_token.is_empty() {
            return Err(TokenError::Malformed("empty access_token".into()));
        }
        return Ok(tokens);
    }
    if status.is_client_error()
        && let Ok(body) = crate::json::decode::<ErrorBody>(response.body())
    {
        return Err(TokenError::Refused { error: body.error, description: body.error_description });
    }
    Err(TokenError::ProviderStatus(status.as_u16()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::json_response;
    use base64::Engine;
    use serde_json::json;

    fn provider() -> ProviderConfig {
        crate::gateway::tests::config(&[("OIDC_RESOURCE", "https://api")]).provider
    }

    fn body(req: &OutgoingRequest) -> std::collections::HashMap<String, String> {
        form_urlencoded::parse(req.body()).into_owned().collect()
    }

    const GRANT: Grant<'static> =
        Grant::AuthorizationCode { code: "the-code", redirect_uri: "https://gw/auth/callback", pkce_verifier: "v" };

    fn secret() -> crate::config::Secret {
        crate::config::Secret::new("s3cr:t&x".into())
    }

    #[test]
    fn basic_auth_form_encodes_credentials() {
        let secret = secret();
        let auth = ClientAuthentication::Basic { client_id: "edge guard", secret: &secret };
        let req = build_token_request("https://idp/token", &provider(), &GRANT, &auth).unwrap();
        assert_eq!(req.method(), http::Method::POST);
        let auth = req.headers()["authorization"].to_str().unwrap();
        let decoded = base64::engine::general_purpose::STANDARD.decode(auth.trim_start_matches("Basic ")).unwrap();
        assert_eq!(String::from_utf8(decoded).unwrap(), "edge+guard:s3cr%3At%26x");
        let form = body(&req);
        assert_eq!(form["grant_type"], "authorization_code");
        assert_eq!(form["code"], "the-code");
        assert_eq!(form["code_verifier"], "v");
        assert_eq!(form["redirect_uri"], "https://gw/auth/callback");
        assert_eq!(form["resource"], "https://api");
        assert!(!form.contains_key("client_secret"));
    }

    #[test]
    fn post_auth_puts_credentials_in_the_body() {
        let secret = secret();
        let auth = ClientAuthentication::Post { client_id: "edgeguard", secret: &secret };
        let req = build_token_request("https://idp/token", &provider(), &GRANT, &auth).unwrap();
        assert!(req.headers().get("authorization").is_none());
        let form = body(&req);
        assert_eq!(form["client_id"], "edgeguard");
        assert_eq!(form["client_secret"], "s3cr:t&x");
    }

    #[test]
    fn refresh_grant_carries_the_refresh_token_and_resource() {
        let grant = Grant::RefreshToken { refresh_token: "rt-1" };
        let auth = ClientAuthentication::Assertion { client_id: "edgeguard", assertion: "a.b.c".into() };
        let req = build_token_request("https://idp/token", &provider(), &grant, &auth).unwrap();
        let form = body(&req);
        assert_eq!(form["grant_type"], "refresh_token");
        assert_eq!(form["refresh_token"], "rt-1");
        assert_eq!(form["resource"], "https://api");
        assert_eq!(form["client_assertion"], "a.b.c");
        assert!(!form.contains_key("code"));
        assert!(req.headers().get("authorization").is_none());
    }

    #[test]
    fn reads_success_refusal_and_failure() {
        let ok = parse_token_response(Ok(json_response(
            200,
            &json!({"access_token": "at", "token_type": "bearer", "expires_in": 60, "id_token": "x"}),
        )))
        .unwrap();
        assert_eq!(ok.expires_in, Some(60));
        let v1 = parse_token_response(Ok(json_response(
            200,
            &json!({"access_token": "at", "token_type": "Bearer", "expires_in": "3599", "ext_expires_in": "3599"}),
        )))
        .unwrap();
        assert_eq!(v1.expires_in, Some(3599), "Azure AD v1 sends expires_in as a string");
        assert!(matches!(
            parse_token_response(Ok(json_response(
                200,
                &json!({"access_token": "a", "token_type": "Bearer", "expires_in": "soon"})
            ))),
            Err(TokenError::Malformed(_))
        ));
        assert_eq!(
            parse_token_response(Ok(json_response(400, &json!({"error": "invalid_grant"})))).unwrap_err(),
            TokenError::Refused { error: "invalid_grant".into(), description: None }
        );
        assert_eq!(
            parse_token_response(Ok(json_response(503, &json!({})))).unwrap_err(),
            TokenError::ProviderStatus(503)
        );
        assert!(matches!(
            parse_token_response(Ok(json_response(200, &json!({"access_token": "a", "token_type": "mac"})))),
            Err(TokenError::Malformed(_))
        ));
        assert!(matches!(
            parse_token_response(Err(HttpError::Timeout)),
            Err(TokenError::Unreachable(HttpError::Timeout))
        ));
    }

    #[test]
    fn debug_hides_tokens() {
        let t = TokenResponse {
            access_token: "secret-at".into(),
            token_type: "Bearer".into(),
            expires_in: None,
            refresh_token: Some("secret-rt".into()),
            id_token: None,
            scope: None,
        };
        assert!(!format!("{t:?}").contains("secret"));
    }
}
