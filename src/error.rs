//! Every refusal the gateway makes, and the one place that turns it into an HTTP answer.
//!
//! Each variant knows its status, a stable reason code for the decision log, and a message safe
//! to show the client. Details (which claim, what the provider said) go to the log only.
//! Classes: bad client input → 4xx; provider or store trouble → 502/503/504; bad settings → 500.

use crate::config::ConfigErrors;
use crate::oidc::{IdTokenError, ProviderError, TokenError};
use crate::ports::KvError;

/// Why a request was not forwarded.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// The settings are invalid; nothing can work until they are fixed.
    #[error(transparent)]
    Config(#[from] ConfigErrors),
    /// No valid session (API-style request): 401 with a Bearer challenge.
    #[error("authentication required: {0}")]
    Unauthenticated(&'static str),
    /// Request headers beyond what the gateway accepts.
    #[error("request headers too large ({0} bytes)")]
    HeadersTooLarge(usize),
    /// A callback without a matching login transaction (forged, replayed, expired, other tab).
    #[error("callback state does not match a login in progress: {0}")]
    StateMismatch(&'static str),
    /// The callback request is not an authorization response.
    #[error("malformed callback")]
    MalformedCallback,
    /// The authorization response names another issuer (RFC 9207 mix-up defence).
    #[error("authorization response issuer {0:?} differs from the configured issuer")]
    CallbackIssuerMismatch(String),
    /// The provider answered the authorization request with an error.
    #[error("provider returned {error} ({description:?})")]
    ProviderDenied {
        error: String,
        description: Option<String>,
    },
    /// The token endpoint refused the code (used, expired, foreign, wrong verifier).
    #[error("code exchange refused: {0}")]
    CodeRejected(String),
    /// The ID token failed validation (OIDC Core §3.1.3.7).
    #[error("ID token rejected: {0}")]
    IdToken(#[from] IdTokenError),
    /// A state-changing request from another origin.
    #[error("cross-origin request refused (Origin {0:?})")]
    CrossOrigin(String),
    /// The provider is unreachable or misbehaving.
    #[error(transparent)]
    Provider(#[from] ProviderError),
    /// The session store failed.
    #[error(transparent)]
    Store(#[from] KvError),
    /// The origin could not be reached.
    #[error("origin unreachable: {0}")]
    OriginUnreachable(String),
}

impl From<TokenError> for GatewayError {
    fn from(e: TokenError) -> Self {
        match e {
            TokenError::Refused { error, .. } => GatewayError::CodeRejected(error),
            other => GatewayError::Provider(ProviderError::Token(other)),
        }
    }
}

impl GatewayError {
    pub fn status(&self) -> u16 {
        match self {
            GatewayError::Config(_) => 500,
            GatewayError::Unauthenticated(_) => 401,
            GatewayError::HeadersTooLarge(_) => 431,
            GatewayError::StateMismatch(_)
            | GatewayError::MalformedCallback
            | GatewayError::CallbackIssuerMismatch(_)
            | GatewayError::CodeRejected(_)
            | GatewayError::IdToken(_) => 400,
            GatewayError::ProviderDenied { .. } | GatewayError::CrossOrigin(_) => 403,
            GatewayError::Provider(p) if p.is_timeout() => 504,
            GatewayError::Provider(_) | GatewayError::OriginUnreachable(_) => 502,
            GatewayError::Store(_) => 503,
        }
    }

    /// A stable snake_case code for the decision log and dashboards.
    pub fn reason(&self) -> &'static str {
        match self {
            GatewayError::Config(_) => "config_invalid",
            GatewayError::Unauthenticated(why) => why,
            GatewayError::HeadersTooLarge(_) => "headers_too_large",
            GatewayError::StateMismatch(why) => why,
            GatewayError::MalformedCallback => "callback_malformed",
            GatewayError::CallbackIssuerMismatch(_) => "callback_issuer_mismatch",
            GatewayError::ProviderDenied { .. } => "provider_denied",
            GatewayError::CodeRejected(_) => "code_rejected",
            GatewayError::IdToken(e) => e.reason(),
            GatewayError::CrossOrigin(_) => "cross_origin_refused",
            GatewayError::Provider(e) => e.reason(),
            GatewayError::Store(_) => "session_store_unavailable",
            GatewayError::OriginUnreachable(_) => "origin_unreachable",
        }
    }

    /// What the user is told. Never token contents, secrets or provider internals.
    pub fn public_message(&self) -> String {
        match self {
            GatewayError::Config(errors) => format!(
                "The gateway is misconfigured. Fix these settings and redeploy:\n{}",
                errors.0.iter().map(|e| format!("- {e}")).collect::<Vec<_>>().join("\n")
            ),
            GatewayError::Unauthenticated(_) => "Sign-in required.".into(),
            GatewayError::HeadersTooLarge(_) => "Request headers are too large.".into(),
            GatewayError::StateMismatch(_) | GatewayError::MalformedCallback => {
                "This sign-in link is not valid (expired, already used, or started elsewhere). Please start again.".into()
            }
            GatewayError::CallbackIssuerMismatch(_) => "The sign-in answer came from an unexpected provider.".into(),
            GatewayError::ProviderDenied { error, .. } if error == "access_denied" => {
                "Sign-in was cancelled or access was denied by the identity provider.".into()
            }
            GatewayError::ProviderDenied { error, .. } => {
                format!("The identity provider refused the sign-in ({}).", sanitise(error))
            }
            GatewayError::CodeRejected(_) => {
                "The identity provider did not accept this sign-in (the link may have been used already). Please start again.".into()
            }
            GatewayError::IdToken(_) => "The identity provider's answer failed validation. Please start again.".into(),
            GatewayError::CrossOrigin(_) => "This request must come from this site.".into(),
            GatewayError::Provider(_) => "The identity provider is unavailable. Please try again shortly.".into(),
            GatewayError::Store(_) => "Sessions are temporarily unavailable. Please try again shortly.".into(),
            GatewayError::OriginUnreachable(_) => "The application behind this gateway is unavailable.".into(),
        }
    }
}

/// Provider-supplied text reduced to a harmless token for display.
fn sanitise(text: &str) -> String {
    text.chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
        .take(64)
        .collect()
}
