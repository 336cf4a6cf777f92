//! Every way a JWT or its provider's key set can be refused.
//!
//! Two families, kept apart so the gateway can answer correctly:
//! - [`JwtError`]: the token is bad (RFC 6750 §3.1 `invalid_token`, 401), or, for a few variants,
//!   the provider or the gateway itself is at fault — see [`JwtError::class`].
//! - [`JwksError`]: the provider's JWKS could not be obtained or used (RFC 7517 §5) — a provider
//!   problem the gateway maps to 502/503/504, never a reason to blame the client's token.
//!
//! Each variant has a stable snake_case [`reason`](JwtError::reason) for the decision log, and a
//! [`description`](JwtError::description) safe to put in an RFC 6750 `error_description`: no key
//! material, no claim values, nothing from the token.

use crate::ports::{CryptoError, HttpError};

/// Who is at fault, which decides the HTTP status the gateway answers with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// The token is invalid: 401 with `error="invalid_token"` (RFC 6750 §3.1).
    Token,
    /// The identity provider is unreachable or serves unusable keys: 502/503 (504 on timeout).
    Provider,
    /// The gateway is misconfigured or its crypto backend failed: 500.
    Internal,
}

/// Why a provider's JSON Web Key Set could not be fetched or used. Cloneable because one fetch
/// result is shared by every request that waited on it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwksError {
    /// The request produced no HTTP answer (connection failure or timeout).
    #[error("JWKS request failed: {0}")]
    Http(#[from] HttpError),
    /// The JWKS endpoint answered with a status other than 200.
    #[error("JWKS endpoint answered HTTP {0}")]
    Status(u16),
    /// The JWKS document exceeds the size the gateway is willing to parse.
    #[error("JWKS document too large ({0} bytes)")]
    TooLarge(usize),
    /// The body is not a JSON object with a `keys` array (RFC 7517 §5).
    #[error("JWKS document is malformed: {0}")]
    Malformed(String),
    /// The set parsed, but none of its keys may verify signatures here.
    #[error("JWKS has no usable signing keys ({skipped} skipped)")]
    NoUsableKeys {
        /// How many keys were present but unusable (wrong `use`, symmetric, too short, ...).
        skipped: usize,
    },
    /// The configured `jwks_uri` cannot be turned into a request.
    #[error("invalid JWKS URI")]
    InvalidUri,
}

impl JwksError {
    /// A stable snake_case code for the decision log.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Http(HttpError::Timeout) => "jwks_timeout",
            Self::Http(HttpError::Network(_)) => "jwks_fetch_failed",
            Self::Status(_) => "jwks_http_status",
            Self::TooLarge(_) => "jwks_too_large",
            Self::Malformed(_) => "jwks_malformed",
            Self::NoUsableKeys { .. } => "jwks_no_usable_keys",
            Self::InvalidUri => "jwks_uri_invalid",
        }
    }

    /// True when the provider did not answer in time (the gateway answers 504).
    pub fn is_timeout(&self) -> bool {
        matches!(self, Self::Http(HttpError::Timeout))
    }
}

/// Why a JWT was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwtError {
    /// The token is longer than the configured bound; refused before any decoding.
    #[error("token is {len} bytes, over the {max}-byte limit")]
    TokenTooLarge { len: usize, max: usize },
    /// The token is not a well-formed JWS Compact Serialization (RFC 7515 §7.1).
    #[error("malformed token: {0}")]
    Malformed(&'static str),
    /// The token has five segments: an encrypted JWT (RFC 7516), which the gateway never accepts.
    #[error("JWE tokens are not accepted")]
    JweUnsupported,
    /// A JSON object in the header or payload repeats a member name (RFC 8725 §3.2, RFC 7515 §5.2).
    #[error("duplicate JSON member name in the token {0}")]
    DuplicateJsonMember(&'static str),
    /// The `alg` is not accepted: unknown, `none`, symmetric, or outside the configured list.
    #[error("algorithm {0:?} not allowed")]
    AlgNotAllowed(String),
    /// The header has `crit`; the gateway understands no extensions (RFC 7515 §4.1.11).
    #[error("critical header extensions are not supported")]
    CritUnsupported,
    /// The header carries or points at its own key (`jwk`, `jku`, `x5u`, `x5c`); never trusted.
    #[error("embedded or referenced key in header {0:?} refused")]
    EmbeddedKeyRefused(&'static str),
    /// The header asks for an unencoded payload (`b64: false`, RFC 7797).
    #[error("unencoded payload (b64=false) not supported")]
    UnencodedPayload,
    /// The header declares a nested JWT (`cty: JWT`, RFC 7519 §5.2); not supported.
    #[error("nested JWTs are not supported")]
    NestedJwtUnsupported,
    /// No key in the provider's set has the token's `kid` (may trigger a JWKS refetch).
    #[error("no key with the token's kid")]
    KidUnknown,
    /// The token has no `kid` and several provider keys could have signed it.
    #[error("token has no kid and several keys fit its algorithm")]
    KidRequired,
    /// More than one key carries the token's `kid` and fits its algorithm.
    #[error("several keys share the token's kid")]
    KidAmbiguous,
    /// The key named by `kid` has another type, curve or declared `alg` than the token's `alg`.
    #[error("the key named by kid does not fit algorithm {0}")]
    KeyAlgMismatch(&'static str),
    /// The token has no `kid` and no provider key fits its algorithm.
    #[error("no key fits algorithm {0}")]
    NoMatchingKey(&'static str),
    /// The signature bytes cannot be a valid signature for the algorithm (length, zero r or s).
    #[error("malformed signature: {0}")]
    SignatureMalformed(&'static str),
    /// The signature does not verify with the selected key.
    #[error("signature invalid")]
    SignatureInvalid,
    /// The provider's key could not be imported by the crypto backend.
    #[error("key import failed: {0}")]
    KeyImport(CryptoError),
    /// The crypto backend failed while verifying (not a mismatch: an error).
    #[error("signature verification error: {0}")]
    Crypto(CryptoError),
    /// The provider's key set could not be obtained.
    #[error(transparent)]
    Jwks(#[from] JwksError),
    /// A claim the rules require is absent.
    #[error("required claim {0:?} missing")]
    MissingClaim(&'static str),
    /// A claim has the wrong JSON type or an impossible value.
    #[error("claim {0:?} has an invalid value")]
    InvalidClaim(&'static str),
    /// `exp` plus leeway is not after now (RFC 7519 §4.1.4).
    #[error("token expired at {exp} (now {now})")]
    TokenExpired { exp: u64, now: u64 },
    /// `nbf` minus leeway is after now (RFC 7519 §4.1.5).
    #[error("token not valid before {nbf} (now {now})")]
    NotYetValid { nbf: u64, now: u64 },
    /// `iat` is further in the future than the leeway allows.
    #[error("token issued in the future at {iat} (now {now})")]
    IssuedInFuture { iat: u64, now: u64 },
    /// `iat` is older than the configured maximum token age.
    #[error("token issued at {iat} is older than allowed (now {now})")]
    TokenTooOld { iat: u64, now: u64 },
    /// `auth_time` is older than the configured maximum authentication age (OIDC `max_age`).
    #[error("authentication at {auth_time} is older than allowed (now {now})")]
    AuthTooOld { auth_time: u64, now: u64 },
    /// `iss` differs from the configured issuer.
    #[error("issuer {found:?} not accepted")]
    IssuerMismatch { found: String },
    /// `iss` names none of the providers whose tokens the route accepts (nothing was fetched
    /// for it).
    #[error("issuer of no provider this route accepts")]
    IssuerUnknown,
    /// None of the token's audiences is configured (RFC 7519 §4.1.3).
    #[error("audience not accepted")]
    AudienceMismatch,
    /// `azp` is missing where required or names another client (OIDC Core §3.1.3.7).
    #[error("authorized party not accepted")]
    AuthorizedPartyMismatch,
    /// The header `typ` is missing or not one of the accepted types (RFC 8725 §3.11, RFC 9068 §4).
    #[error("token type {found:?} not accepted")]
    TypeMismatch { found: Option<String> },
    /// The rules name no audience, so no token can be accepted (RFC 8725 §3.9).
    #[error("no audience configured")]
    AudienceNotConfigured,
    /// The `tid` matches the issuer but is not in the tenant allow-list (Entra multi-tenant).
    #[error("tenant not allowed")]
    TenantNotAllowed,
    /// The signing key names an `issuer` (Entra JWKS) that is not the token's.
    #[error("the signing key belongs to another issuer")]
    KeyIssuerMismatch,
    /// A Microsoft Graph access token (JOSE header `nonce`): only Graph can verify it, and it
    /// was never meant for this API.
    #[error("Microsoft Graph access token presented to this API")]
    GraphToken,
    /// No calling client (`azp`/`appid`) or neither `scp` nor `roles`: an Entra ID token, not
    /// an access token.
    #[error("not an access token (no azp/appid, or no scp/roles)")]
    NotAnAccessToken,
}

impl JwtError {
    /// A stable snake_case code for the decision log and dashboards.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::TokenTooLarge { .. } => "token_too_large",
            Self::Malformed(_) => "malformed_token",
            Self::JweUnsupported => "jwe_unsupported",
            Self::DuplicateJsonMember(_) => "duplicate_json_member",
            Self::AlgNotAllowed(_) => "alg_not_allowed",
            Self::CritUnsupported => "crit_unsupported",
            Self::EmbeddedKeyRefused(_) => "embedded_key_refused",
            Self::UnencodedPayload => "unencoded_payload_unsupported",
            Self::NestedJwtUnsupported => "nested_jwt_unsupported",
            Self::KidUnknown => "kid_unknown",
            Self::KidRequired => "kid_required",
            Self::KidAmbiguous => "kid_ambiguous",
            Self::KeyAlgMismatch(_) => "key_alg_mismatch",
            Self::NoMatchingKey(_) => "no_matching_key",
            Self::SignatureMalformed(_) => "signature_malformed",
            Self::SignatureInvalid => "signature_invalid",
            Self::KeyImport(_) => "key_import_failed",
            Self::Crypto(_) => "crypto_error",
            Self::Jwks(e) => e.reason(),
            Self::MissingClaim("exp") => "exp_missing",
            Self::MissingClaim("iat") => "iat_missing",
            Self::MissingClaim("iss") => "iss_missing",
            Self::MissingClaim("aud") => "aud_missing",
            Self::MissingClaim("sub") => "sub_missing",
            Self::MissingClaim("tid") => "tid_missing",
            Self::MissingClaim(_) => "claim_missing",
            Self::InvalidClaim(_) => "claim_invalid",
            Self::TokenExpired { .. } => "token_expired",
            Self::NotYetValid { .. } => "token_not_yet_valid",
            Self::IssuedInFuture { .. } => "iat_in_future",
            Self::TokenTooOld { .. } => "token_too_old",
            Self::AuthTooOld { .. } => "auth_time_too_old",
            Self::IssuerMismatch { .. } => "issuer_mismatch",
            Self::IssuerUnknown => "issuer_unknown",
            Self::AudienceMismatch => "audience_mismatch",
            Self::AuthorizedPartyMismatch => "azp_mismatch",
            Self::TypeMismatch { .. } => "typ_mismatch",
            Self::AudienceNotConfigured => "audience_not_configured",
            Self::TenantNotAllowed => "issuer_tenant_not_allowed",
            Self::KeyIssuerMismatch => "key_issuer_mismatch",
            Self::GraphToken => "graph_token_not_for_this_api",
            Self::NotAnAccessToken => "not_an_access_token",
        }
    }

    /// Who is at fault: the token, the provider, or the gateway.
    pub fn class(&self) -> ErrorClass {
        match self {
            Self::Jwks(_) | Self::KeyImport(_) => ErrorClass::Provider,
            Self::Crypto(_) | Self::AudienceNotConfigured => ErrorClass::Internal,
            _ => ErrorClass::Token,
        }
    }

    /// True when the provider did not answer in time (504 rather than 502).
    pub fn is_timeout(&self) -> bool {
        matches!(self, Self::Jwks(e) if e.is_timeout())
    }

    /// Text for an RFC 6750 `error_description`: says what kind of check failed, never which
    /// value was seen or expected, so nothing from the token or the configuration leaks.
    pub fn description(&self) -> String {
        let text = match self {
            Self::TokenTooLarge { .. } => "The token is too large",
            Self::Malformed(_) => "The token is malformed",
            Self::JweUnsupported => "Encrypted tokens are not accepted",
            Self::DuplicateJsonMember(_) => "The token contains duplicate JSON members",
            Self::AlgNotAllowed(_) => "The token's signing algorithm is not accepted",
            Self::CritUnsupported => "The token uses unsupported critical header parameters",
            Self::EmbeddedKeyRefused(_) => "Tokens carrying their own keys are not accepted",
            Self::UnencodedPayload => "Tokens with an unencoded payload are not accepted",
            Self::NestedJwtUnsupported => "Nested tokens are not accepted",
            Self::KidUnknown
            | Self::KidRequired
            | Self::KidAmbiguous
            | Self::KeyAlgMismatch(_)
            | Self::NoMatchingKey(_) => "The token's signing key is not recognized",
            Self::SignatureMalformed(_) | Self::SignatureInvalid => "The token signature is invalid",
            Self::KeyImport(_) | Self::Jwks(_) => "The identity provider's signing keys are unavailable",
            Self::Crypto(_) | Self::AudienceNotConfigured => "The token could not be validated",
            Self::MissingClaim(_) => "The token lacks a required claim",
            Self::InvalidClaim(_) => "The token contains an invalid claim",
            Self::TokenExpired { .. } => "The token has expired",
            Self::NotYetValid { .. } => "The token is not yet valid",
            Self::IssuedInFuture { .. } => "The token was issued in the future",
            Self::TokenTooOld { .. } => "The token is too old",
            Self::AuthTooOld { .. } => "The authentication is too old",
            Self::IssuerMismatch { .. } | Self::IssuerUnknown => "The token was issued by an unexpected issuer",
            Self::AudienceMismatch => "The token is not intended for this audience",
            Self::AuthorizedPartyMismatch => "The token was issued to an unexpected client",
            Self::TypeMismatch { .. } => "The token type is not accepted",
            Self::TenantNotAllowed => "The token's tenant is not allowed",
            Self::KeyIssuerMismatch => "The token was signed with another issuer's key",
            Self::GraphToken => "This is a Microsoft Graph access token; request a token for this API's scopes instead",
            Self::NotAnAccessToken => "The token is not an access token",
        };
        text.to_owned()
    }
}

/// Keep attacker-chosen strings short in log fields (they are also escaped by `{:?}`).
pub(crate) fn log_snippet(s: &str) -> String {
    const MAX: usize = 64;
    match s.char_indices().nth(MAX) {
        Some((cut, _)) => s.get(..cut).map_or_else(String::new, |head| format!("{head}…")),
        None => s.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_are_snake_case_and_descriptions_leak_nothing() {
        let samples = [
            JwtError::AlgNotAllowed("HS256-secret-ish".into()),
            JwtError::IssuerMismatch { found: "https://evil.example".into() },
            JwtError::TypeMismatch { found: Some("secret-typ".into()) },
            JwtError::TokenExpired { exp: 1, now: 2 },
            JwtError::Jwks(JwksError::Malformed("provider said x".into())),
        ];
        for e in samples {
            let reason = e.reason();
            assert!(reason.chars().all(|c| c.is_ascii_lowercase() || c == '_'), "{reason}");
            let d = e.description();
            for leak in ["HS256-secret-ish", "evil", "secret-typ", "provider said"] {
                assert!(!d.contains(leak), "{d}");
            }
        }
    }

    #[test]
    fn classes_separate_provider_from_token_failures() {
        let timeout = JwtError::Jwks(JwksError::Http(HttpError::Timeout));
        assert_eq!(timeout.class(), ErrorClass::Provider);
        assert!(timeout.is_timeout());
        assert_eq!(timeout.reason(), "jwks_timeout");
        assert_eq!(JwtError::SignatureInvalid.class(), ErrorClass::Token);
        assert_eq!(JwtError::AudienceNotConfigured.class(), ErrorClass::Internal);
    }

    #[test]
    fn log_snippet_truncates_on_char_boundaries() {
        assert_eq!(log_snippet("RS256"), "RS256");
        let long = "é".repeat(100);
        let cut = log_snippet(&long);
        assert_eq!(cut.chars().count(), 65);
        assert!(cut.ends_with('…'));
    }
}
