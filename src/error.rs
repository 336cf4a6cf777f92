//! Every refusal the gateway makes, and the one place that turns it into an HTTP answer.
//!
//! Each variant knows its status, a stable reason code for the decision log, and a message safe
//! to show the client. Details (which claim, what the provider said) go to the log only.
//! Classes: bad client input → 4xx; provider or store trouble → 502/503/504; bad settings → 500.

use crate::config::ConfigErrors;
use crate::jwt::JwtError;
use crate::oidc::{AppTokenError, IdTokenError, ProviderError, TokenError};
use crate::policy::Unmet;
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
    /// A body the gateway reads itself (back-channel logout) beyond its cap; refused by
    /// `Content-Length` or while streaming, never read whole.
    #[error("request body too large (over {0} bytes)")]
    BodyTooLarge(usize),
    /// A callback without a matching login transaction (forged, replayed, expired, other tab).
    #[error("callback state does not match a login in progress: {0}")]
    StateMismatch(&'static str),
    /// The callback request is not an authorization response.
    #[error("malformed callback")]
    MalformedCallback,
    /// The authorization response names another issuer (RFC 9207 mix-up defence).
    #[error("authorization response issuer {0:?} differs from the configured issuer")]
    CallbackIssuerMismatch(String),
    /// The authorization response lacks the `iss` its provider says it always sends (RFC 9207
    /// §2.4: refused, as a mix-up or a tampered response).
    #[error("authorization response has no iss though the provider always sends one")]
    CallbackIssuerMissing,
    /// The provider answered the authorization request with an error.
    #[error("provider returned {error} ({description:?})")]
    ProviderDenied { error: String, description: Option<String> },
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
    /// Too many requests from this client to a gateway endpoint (the rate-limiting binding said so).
    #[error("rate limit exceeded for this client; retry after {0} s")]
    RateLimited(u32),
    /// A bearer token failed validation (RFC 6750 §3.1 `invalid_token`).
    #[error("bearer token rejected: {0}")]
    InvalidToken(JwtError),
    /// The route needs a stronger or more recent authentication than the caller's (RFC 9470):
    /// APIs get a challenge saying what to obtain; browsers are sent to sign in again.
    #[error("step-up required: {}", .1.reason())]
    StepUpRequired(crate::policy::StepUp, crate::policy::StepUpUnmet),
    /// A step-up sign-in came back without the strength or recency that was asked for.
    #[error("step-up sign-in did not satisfy the route: {}", .0.reason())]
    StepUpNotSatisfied(crate::policy::StepUpUnmet),
    /// A DPoP proof, or the binding between proof and token, failed (RFC 9449 §7.1).
    #[error("DPoP refused: {0}")]
    Dpop(crate::dpop::DpopError),
    /// A malformed request (RFC 6750 §3.1 `invalid_request`, or a path no route may see).
    #[error("invalid request: {0}")]
    InvalidRequest(&'static str),
    /// The caller lacks a scope, role, group or tenant the route requires (RFC 6750 §3.1
    /// `insufficient_scope`).
    #[error("requirement not met: {}", .0.reason)]
    InsufficientScope(Unmet),
    /// No route matches the path (deny by default when `ROUTES` is set).
    #[error("no route for this path")]
    RouteNotFound,
    /// The access token expired and could not be refreshed for now (provider or KV trouble);
    /// the session is kept.
    #[error("refresh unavailable: {0}")]
    RefreshUnavailable(String),
    /// The gateway's own private key (client assertion, user assertion) could not be imported
    /// or used: a deployment problem, not the client's.
    #[error("signing key unusable: {0}")]
    SigningKeyUnusable(crate::ports::CryptoError),
    /// No token for the origin could be had from the provider (`origin_token: app`): 502, or
    /// 504 on timeout.
    #[error(transparent)]
    OriginToken(AppTokenError),
    /// Entra group overage on a route that needs a group, and Microsoft Graph could not say
    /// whether the caller is in it (`ENTRA_GROUPS_OVERAGE=graph`): refused, never a 5xx, since
    /// what is missing is proof of membership.
    #[error("groups overage unresolved: {0}")]
    GroupsOverageUnresolved(String),
    /// A back-channel logout request the gateway refuses (OIDC Back-Channel Logout §2.8).
    #[error("logout token rejected: {0}")]
    LogoutTokenRejected(String),
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
            GatewayError::Config(_) | GatewayError::SigningKeyUnusable(_) => 500,
            GatewayError::Unauthenticated(_) => 401,
            GatewayError::HeadersTooLarge(_) => 431,
            GatewayError::BodyTooLarge(_) => 413,
            GatewayError::StateMismatch(_)
            | GatewayError::MalformedCallback
            | GatewayError::CallbackIssuerMismatch(_)
            | GatewayError::CallbackIssuerMissing
            | GatewayError::CodeRejected(_)
            | GatewayError::IdToken(_) => 400,
            GatewayError::ProviderDenied { .. } | GatewayError::CrossOrigin(_) => 403,
            GatewayError::Provider(p) if p.is_timeout() => 504,
            GatewayError::Provider(_) | GatewayError::OriginUnreachable(_) => 502,
            GatewayError::OriginToken(AppTokenError::Timeout) => 504,
            GatewayError::OriginToken(_) => 502,
            GatewayError::InvalidToken(e) if e.class() != crate::jwt::ErrorClass::Token => {
                if e.is_timeout() {
                    504
                } else {
                    502
                }
            }
            GatewayError::InvalidToken(_) => 401,
            GatewayError::InvalidRequest(_) => 400,
            GatewayError::Dpop(_) => 401,
            GatewayError::StepUpRequired(..) => 401,
            GatewayError::StepUpNotSatisfied(_) => 403,
            GatewayError::InsufficientScope(_) | GatewayError::GroupsOverageUnresolved(_) => 403,
            GatewayError::RouteNotFound => 404,
            GatewayError::RateLimited(_) => 429,
            GatewayError::RefreshUnavailable(_) => 503,
            GatewayError::LogoutTokenRejected(_) => 400,
            GatewayError::Store(_) => 503,
        }
    }

    /// A stable snake_case code for the decision log and dashboards.
    pub fn reason(&self) -> &'static str {
        match self {
            GatewayError::Config(_) => "config_invalid",
            GatewayError::SigningKeyUnusable(_) => "signing_key_unusable",
            GatewayError::OriginToken(e) => e.reason(),
            GatewayError::Unauthenticated(why) => why,
            GatewayError::HeadersTooLarge(_) => "headers_too_large",
            GatewayError::BodyTooLarge(_) => "body_too_large",
            GatewayError::StateMismatch(why) => why,
            GatewayError::MalformedCallback => "callback_malformed",
            GatewayError::CallbackIssuerMismatch(_) => "callback_issuer_mismatch",
            GatewayError::CallbackIssuerMissing => "callback_issuer_missing",
            GatewayError::ProviderDenied { error, .. } if is_consent_error(error) => "consent_required",
            GatewayError::ProviderDenied { .. } => "provider_denied",
            GatewayError::CodeRejected(_) => "code_rejected",
            GatewayError::IdToken(e) => e.reason(),
            GatewayError::CrossOrigin(_) => "cross_origin_refused",
            GatewayError::Provider(e) => e.reason(),
            GatewayError::Store(_) => "session_store_unavailable",
            GatewayError::OriginUnreachable(_) => "origin_unreachable",
            GatewayError::InvalidToken(e) => e.reason(),
            GatewayError::InvalidRequest(why) => why,
            GatewayError::Dpop(e) => e.reason(),
            GatewayError::StepUpRequired(_, unmet) => unmet.reason(),
            GatewayError::StepUpNotSatisfied(_) => "step_up_not_satisfied",
            GatewayError::InsufficientScope(unmet) => unmet.reason,
            GatewayError::GroupsOverageUnresolved(_) => "groups_overage_unresolved",
            GatewayError::RouteNotFound => "route_not_found",
            GatewayError::RateLimited(_) => "rate_limited",
            GatewayError::RefreshUnavailable(_) => "refresh_unavailable",
            GatewayError::LogoutTokenRejected(_) => "logout_token_rejected",
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
            GatewayError::SigningKeyUnusable(_) => {
                "The gateway's signing key is unusable; an administrator must replace it.".into()
            }
            GatewayError::HeadersTooLarge(_) => "Request headers are too large.".into(),
            GatewayError::BodyTooLarge(_) => "Request body is too large.".into(),
            GatewayError::StateMismatch(_) | GatewayError::MalformedCallback => {
                "This sign-in link is not valid (expired, already used, or started elsewhere). Please start again.".into()
            }
            GatewayError::CallbackIssuerMismatch(_) | GatewayError::CallbackIssuerMissing => {
                "The sign-in answer came from an unexpected provider.".into()
            }
            GatewayError::ProviderDenied { error, .. } if error == "access_denied" => {
                "Sign-in was cancelled or access was denied by the identity provider.".into()
            }
            GatewayError::ProviderDenied { error, .. } if is_consent_error(error) => {
                "This application needs permissions that you could not grant. An administrator of your \
                 organization must consent first: ask them to open /auth/admin-consent on this site, then sign in again."
                    .into()
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
            GatewayError::OriginToken(_) => {
                "The gateway could not obtain a token for the application. Please try again shortly.".into()
            }
            GatewayError::OriginUnreachable(_) => "The application behind this gateway is unavailable.".into(),
            GatewayError::InvalidToken(e) if e.class() != crate::jwt::ErrorClass::Token => {
                "The identity provider's signing keys are unavailable. Please try again shortly.".into()
            }
            GatewayError::InvalidToken(e) => e.description(),
            GatewayError::InvalidRequest(_) => "The request is malformed.".into(),
            GatewayError::Dpop(e) => capitalised(&e.to_string()),
            GatewayError::StepUpRequired(..) => {
                "This resource needs a stronger or more recent sign-in.".into()
            }
            GatewayError::StepUpNotSatisfied(_) => {
                "The identity provider did not confirm the stronger or more recent sign-in this page needs.".into()
            }
            GatewayError::InsufficientScope(unmet) if unmet.reason == "groups_overage" => {
                "Your account is in more groups than the token can list (Entra ID group overage), so group \
                 membership cannot be checked here. Ask an administrator to grant access through an app role \
                 (the roles claim) instead of a group."
                    .into()
            }
            GatewayError::InsufficientScope(_) => "You are signed in but not allowed to use this resource.".into(),
            GatewayError::GroupsOverageUnresolved(_) => {
                "Your account is in more groups than the token can list (Entra ID group overage), and the \
                 gateway could not look your groups up in Microsoft Graph. Try again later, or ask an \
                 administrator to grant access through an app role (the roles claim) instead of a group."
                    .into()
            }
            GatewayError::RouteNotFound => "Not found.".into(),
            GatewayError::RateLimited(_) => "Too many requests. Please wait a minute and try again.".into(),
            GatewayError::RefreshUnavailable(_) => {
                "Your session could not be renewed just now. Please try again in a few seconds.".into()
            }
            GatewayError::LogoutTokenRejected(_) => "invalid_request".into(),
        }
    }

    /// Seconds a client should wait before retrying (`Retry-After`), for temporary refusals.
    pub fn retry_after(&self) -> Option<u32> {
        match self {
            GatewayError::RefreshUnavailable(_) | GatewayError::Store(_) => Some(5),
            GatewayError::RateLimited(secs) => Some(*secs),
            _ => None,
        }
    }

    /// The `DPoP-Nonce` to answer with (RFC 9449 §8.1), when the refusal asks for a new nonce.
    pub fn dpop_nonce(&self) -> Option<&str> {
        match self {
            GatewayError::Dpop(e) => e.fresh_nonce(),
            _ => None,
        }
    }

    /// The RFC 6750 §3 `WWW-Authenticate` parameters after `realm`, if this refusal has any.
    pub fn challenge(&self) -> Option<String> {
        match self {
            GatewayError::Unauthenticated(_) => Some(String::new()),
            GatewayError::InvalidToken(e) if e.class() == crate::jwt::ErrorClass::Token => {
                Some(format!(", error=\"invalid_token\", error_description=\"{}\"", quoted(&e.description())))
            }
            GatewayError::Dpop(e) => Some(match e.error_code() {
                Some(code) => {
                    format!(", error=\"{code}\", error_description=\"{}\"", quoted(&capitalised(&e.to_string())))
                }
                None => String::new(),
            }),
            GatewayError::StepUpRequired(step_up, _) => Some(format!(
                ", error=\"insufficient_user_authentication\", error_description=\"A stronger or more recent authentication is required\"{}",
                step_up.challenge_params()
            )),
            GatewayError::GroupsOverageUnresolved(_) => Some(", error=\"insufficient_scope\"".into()),
            GatewayError::InsufficientScope(unmet) if unmet.required_scopes.is_empty() => {
                Some(", error=\"insufficient_scope\"".into())
            }
            GatewayError::InsufficientScope(unmet) => {
                Some(format!(", error=\"insufficient_scope\", scope=\"{}\"", quoted(&unmet.required_scopes)))
            }
            _ => None,
        }
    }
}

/// The challenge scheme: `DPoP` for a request that used it or a refusal about it
/// (RFC 9449 §7.1), `Bearer` otherwise (RFC 6750 §3).
pub fn challenge_scheme(err: &GatewayError, used_dpop: bool) -> &'static str {
    match err {
        GatewayError::Dpop(e) if e.bearer_challenge() => "Bearer",
        GatewayError::Dpop(_) => "DPoP",
        _ if used_dpop => "DPoP",
        _ => "Bearer",
    }
}

fn capitalised(text: &str) -> String {
    let mut chars = text.chars();
    chars.next().map(|c| c.to_ascii_uppercase().to_string() + chars.as_str()).unwrap_or_default()
}

/// Errors that mean the user (or an administrator) must consent (OIDC Core §3.1.2.6).
fn is_consent_error(error: &str) -> bool {
    crate::gateway::CONSENT_ERRORS.contains(&error)
}

/// Text safe inside a quoted-string of a header (RFC 9110 §5.6.4): printable ASCII, no `"`/`\`.
fn quoted(text: &str) -> String {
    text.chars().filter(|c| (' '..='~').contains(c) && *c != '"' && *c != '\\').collect()
}

/// Provider-supplied text reduced to a harmless token for display.
fn sanitise(text: &str) -> String {
    text.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '_').take(64).collect()
}
