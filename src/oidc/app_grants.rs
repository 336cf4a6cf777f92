//! Grants the gateway makes for origins rather than for sign-in: client credentials
//! (RFC 6749 §4.4) for the gateway's own token, on-behalf-of exchanges of the caller's token
//! (RFC 8693 token exchange, or Entra ID's JWT-bearer on-behalf-of), and why such a token could
//! not be had.

use super::client_auth::ClientAuthentication;
use super::token::{TokenError, client_authenticated_post};
use crate::config::OnBehalfOfGrant;
use crate::policy::TokenTarget;
use crate::ports::OutgoingRequest;
use url::form_urlencoded;

/// Why the gateway has no token for an origin. Never the caller's fault: 502 (504 on timeout).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AppTokenError {
    /// The provider refused the grant (`invalid_client`, `invalid_scope`, `unauthorized_client`...):
    /// the gateway's registration or the route's `token_target` needs fixing.
    #[error("provider refused the token request: {error}")]
    Refused { error: String },
    /// The provider could not be asked or answered badly (discovery, 5xx, malformed, timeout).
    #[error("provider unavailable for the token request: {0}")]
    Unavailable(String),
    /// The timeout case of `Unavailable`, kept apart for the 504.
    #[error("provider timed out on the token request")]
    Timeout,
}

impl AppTokenError {
    pub fn reason(&self) -> &'static str {
        match self {
            AppTokenError::Refused { .. } => "origin_token_refused",
            AppTokenError::Unavailable(_) | AppTokenError::Timeout => "origin_token_unavailable",
        }
    }
}

impl From<TokenError> for AppTokenError {
    fn from(e: TokenError) -> Self {
        match e {
            TokenError::Refused { error, .. } => AppTokenError::Refused { error },
            TokenError::Unreachable(crate::ports::HttpError::Timeout) => AppTokenError::Timeout,
            other => AppTokenError::Unavailable(other.to_string()),
        }
    }
}

/// The client-credentials grant for `target`.
pub fn build_client_credentials_request(
    token_endpoint: &str,
    target: &TokenTarget,
    auth: &ClientAuthentication<'_>,
) -> Result<OutgoingRequest, http::Error> {
    let mut form = form_urlencoded::Serializer::new(String::new());
    form.append_pair("grant_type", "client_credentials");
    for (name, value) in target.params() {
        form.append_pair(name, value);
    }
    client_authenticated_post(token_endpoint, auth, form)
}

/// Exchange `subject_token` (the caller's access token) for a token for `target`.
pub fn build_on_behalf_of_request(
    token_endpoint: &str,
    grant: OnBehalfOfGrant,
    subject_token: &str,
    target: &TokenTarget,
    auth: &ClientAuthentication<'_>,
) -> Result<OutgoingRequest, http::Error> {
    const ACCESS_TOKEN: &str = "urn:ietf:params:oauth:token-type:access_token";
    let mut form = form_urlencoded::Serializer::new(String::new());
    match grant {
        OnBehalfOfGrant::TokenExchange => {
            form.append_pair("grant_type", "urn:ietf:params:oauth:grant-type:token-exchange")
                .append_pair("subject_token", subject_token)
                .append_pair("subject_token_type", ACCESS_TOKEN)
                .append_pair("requested_token_type", ACCESS_TOKEN);
        }
        OnBehalfOfGrant::JwtBearer => {
            form.append_pair("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer")
                .append_pair("assertion", subject_token)
                .append_pair("requested_token_use", "on_behalf_of");
        }
    }
    for (name, value) in target.params() {
        form.append_pair(name, value);
    }
    client_authenticated_post(token_endpoint, auth, form)
}
