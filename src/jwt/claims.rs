//! Claim validation after the signature is known good: RFC 7519 §4.1 (`iss`, `aud`, `exp`,
//! `nbf`, `iat`), RFC 8725 §3.8–3.11 (issuer, audience, explicit typing), RFC 9068 §4 (JWT
//! access tokens: `typ` `at+jwt`), and OIDC Core §3.1.3.7 (ID tokens: `iat` required, `azp`,
//! `auth_time` against `max_age`).
//!
//! Time is an input (`now`, Unix seconds). Comparisons saturate, so absurd claim values can
//! neither overflow nor wrap into validity.

use serde_json::{Map, Value};

use super::error::{JwtError, log_snippet};
use super::parse::JwtHeader;

/// Clock skew tolerated between the provider and the gateway.
pub const DEFAULT_LEEWAY_SECS: u64 = 60;

/// Which `iss` values are accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IssuerRule {
    /// The `iss` must equal this string exactly (OIDC Core §3.1.3.7 item 2: no normalization).
    Exact(String),
    /// Entra ID: one signing key set serves every tenant, so the issuer alone proves nothing.
    /// The token's `tid` (a tenant GUID) is put into each template's `{tenantid}`; `iss` must
    /// equal one result exactly, and the tenant must be allowed.
    TenantTemplate { templates: Vec<String>, tenants: TenantAllowList },
}

/// Which Entra tenants may sign in or call an API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TenantAllowList {
    /// Every tenant: only when configured as an explicit `*`.
    Any,
    /// These tenant GUIDs (lowercase).
    Only(Vec<String>),
}

impl TenantAllowList {
    pub fn allows(&self, tid: &str) -> bool {
        match self {
            Self::Any => true,
            Self::Only(list) => list.iter().any(|t| t == tid),
        }
    }
}

/// The placeholder Entra's multi-tenant discovery documents put in `issuer`.
pub const TENANT_PLACEHOLDER: &str = "{tenantid}";

/// A tenant id as Entra writes it in `tid`: a lowercase GUID. Anything else could smuggle
/// path characters into an issuer template.
pub fn is_tenant_guid(tid: &str) -> bool {
    let groups: Vec<&str> = tid.split('-').collect();
    groups.iter().map(|g| g.len()).eq([8, 4, 4, 4, 12])
        && groups.iter().all(|g| g.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)))
}

impl IssuerRule {
    /// Check `iss` (and for tenant templates, `tid`) from a token.
    pub fn check(&self, iss: &str, tid: Option<&str>) -> Result<(), JwtError> {
        let mismatch = || JwtError::IssuerMismatch { found: log_snippet(iss) };
        match self {
            Self::Exact(expected) if iss == expected => Ok(()),
            Self::Exact(_) => Err(mismatch()),
            Self::TenantTemplate { templates, tenants } => {
                let tid = tid.ok_or(JwtError::MissingClaim("tid"))?;
                if !is_tenant_guid(tid) {
                    return Err(JwtError::InvalidClaim("tid"));
                }
                if !templates.iter().any(|t| t.replace(TENANT_PLACEHOLDER, tid) == iss) {
                    return Err(mismatch());
                }
                if tenants.allows(tid) { Ok(()) } else { Err(JwtError::TenantNotAllowed) }
            }
        }
    }
}

/// What a token's claims must satisfy for one issuer and one use (ID token or access token).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimRules {
    pub issuer: IssuerRule,
    /// At least one must appear in `aud`. Empty refuses every token: accepting any audience
    /// would accept tokens minted for other applications (RFC 8725 §3.9).
    pub audiences: Vec<String>,
    /// Tolerated clock skew for `exp`, `nbf` and `iat`.
    pub leeway_secs: u64,
    /// Accepted header `typ` values, compared case-insensitively with the `application/` prefix
    /// optional (RFC 7515 §4.1.9). Empty accepts any `typ`, or none; otherwise `typ` is required.
    pub accepted_types: Vec<String>,
    /// Require `iat` (OIDC Core §2 makes it mandatory in ID tokens).
    pub require_iat: bool,
    /// Refuse tokens issued longer ago than this (requires `iat`).
    pub max_age_secs: Option<u64>,
    /// Refuse tokens whose `auth_time` is older than this: the OIDC `max_age` check
    /// (OIDC Core §3.1.3.7 item 13). Requires `auth_time`.
    pub max_auth_age_secs: Option<u64>,
    /// The client the token must be issued to when it names one: a present `azp` must equal
    /// it, and a multi-valued `aud` requires `azp` (OIDC Core §3.1.3.7 items 4–5).
    pub authorized_party: Option<String>,
    /// Require what every Entra access token has and its ID tokens lack: the calling client
    /// (`azp` in v2, `appid` in v1) and `scp` or `roles`. An ID token issued to an app whose
    /// client id is an accepted audience (the API's own registration) is then never taken
    /// for an access token, even when it lists app roles.
    pub require_entra_access_claims: bool,
}

impl ClaimRules {
    /// Rules with the defaults: 60 s leeway, any `typ`, `iat` optional, no age limits.
    pub fn new(issuer: IssuerRule, audiences: Vec<String>) -> Self {
        Self {
            issuer,
            audiences,
            leeway_secs: DEFAULT_LEEWAY_SECS,
            accepted_types: Vec::new(),
            require_iat: false,
            max_age_secs: None,
            max_auth_age_secs: None,
            authorized_party: None,
            require_entra_access_claims: false,
        }
    }

    /// Check the header `typ` and the claims at time `now` (Unix seconds).
    pub fn validate(&self, header: &JwtHeader, claims: &Map<String, Value>, now: u64) -> Result<(), JwtError> {
        self.check_type(header.typ.as_deref())?;
        self.check_issuer(claims)?;
        let audiences = self.check_audience(claims)?;
        self.check_times(claims, now)?;
        if self.require_entra_access_claims && !is_entra_access_token(claims) {
            return Err(JwtError::NotAnAccessToken);
        }
        self.check_authorized_party(claims, audiences)
    }

    fn check_type(&self, typ: Option<&str>) -> Result<(), JwtError> {
        if self.accepted_types.is_empty() {
            return Ok(());
        }
        let accepted = typ.is_some_and(|t| {
            let t = normalize_type(t);
            self.accepted_types.iter().any(|a| normalize_type(a) == t)
        });
        if accepted { Ok(()) } else { Err(JwtError::TypeMismatch { found: typ.map(log_snippet) }) }
    }

    fn check_issuer(&self, claims: &Map<String, Value>) -> Result<(), JwtError> {
        match claims.get("iss") {
            None => Err(JwtError::MissingClaim("iss")),
            Some(Value::String(iss)) => {
                let tid = match claims.get("tid") {
                    None => None,
                    Some(Value::String(tid)) => Some(tid.as_str()),
                    Some(_) => return Err(JwtError::InvalidClaim("tid")),
                };
                self.issuer.check(iss, tid)
            }
            Some(_) => Err(JwtError::InvalidClaim("iss")),
        }
    }

    /// Returns how many audiences the token names, for the `azp` rule.
    fn check_audience(&self, claims: &Map<String, Value>) -> Result<usize, JwtError> {
        if self.audiences.is_empty() {
            return Err(JwtError::AudienceNotConfigured);
        }
        let names: Vec<&str> = match claims.get("aud") {
            None => return Err(JwtError::MissingClaim("aud")),
            Some(Value::String(one)) => vec![one.as_str()],
            Some(Value::Array(many)) => {
                many.iter().map(|v| v.as_str().ok_or(JwtError::InvalidClaim("aud"))).collect::<Result<_, _>>()?
            }
            Some(_) => return Err(JwtError::InvalidClaim("aud")),
        };
        if names.iter().any(|n| self.audiences.iter().any(|a| a == n)) {
            Ok(names.len())
        } else {
            Err(JwtError::AudienceMismatch)
        }
    }

    fn check_times(&self, claims: &Map<String, Value>, now: u64) -> Result<(), JwtError> {
        let leeway = self.leeway_secs;
        let exp = numeric_date(claims, "exp")?.ok_or(JwtError::MissingClaim("exp"))?;
        if now >= exp.saturating_add(leeway) {
            return Err(JwtError::TokenExpired { exp, now });
        }
        if let Some(nbf) = numeric_date(claims, "nbf")?
            && nbf > now.saturating_add(leeway)
        {
            return Err(JwtError::NotYetValid { nbf, now });
        }
        let iat = numeric_date(claims, "iat")?;
        if iat.is_none() && (self.require_iat || self.max_age_secs.is_some()) {
            return Err(JwtError::MissingClaim("iat"));
        }
        if let Some(iat) = iat {
            if iat > now.saturating_add(leeway) {
                return Err(JwtError::IssuedInFuture { iat, now });
            }
            if let Some(max_age) = self.max_age_secs
                && now > iat.saturating_add(max_age).saturating_add(leeway)
            {
                return Err(JwtError::TokenTooOld { iat, now });
            }
        }
        if let Some(max_auth_age) = self.max_auth_age_secs {
            let auth_time = numeric_date(claims, "auth_time")?.ok_or(JwtError::MissingClaim("auth_time"))?;
            if now > auth_time.saturating_add(max_auth_age).saturating_add(leeway) {
                return Err(JwtError::AuthTooOld { auth_time, now });
            }
        }
        Ok(())
    }

    fn check_authorized_party(&self, claims: &Map<String, Value>, audience_count: usize) -> Result<(), JwtError> {
        let Some(client_id) = &self.authorized_party else {
            return Ok(());
        };
        match claims.get("azp") {
            None if audience_count > 1 => Err(JwtError::AuthorizedPartyMismatch),
            None => Ok(()),
            Some(Value::String(azp)) if azp == client_id => Ok(()),
            Some(Value::String(_)) => Err(JwtError::AuthorizedPartyMismatch),
            Some(_) => Err(JwtError::InvalidClaim("azp")),
        }
    }
}

fn is_entra_access_token(claims: &Map<String, Value>) -> bool {
    let client = claims.contains_key("azp") || claims.contains_key("appid");
    client && (claims.contains_key("scp") || claims.contains_key("roles"))
}

/// `at+jwt`, `AT+JWT` and `application/at+jwt` are one media type (RFC 7515 §4.1.9).
fn normalize_type(typ: &str) -> String {
    let lower = typ.to_ascii_lowercase();
    match lower.strip_prefix("application/") {
        Some(rest) => rest.to_owned(),
        None => lower,
    }
}

/// A NumericDate claim (RFC 7519 §2): a non-negative JSON number, fractions truncated.
pub(crate) fn numeric_date(claims: &Map<String, Value>, name: &'static str) -> Result<Option<u64>, JwtError> {
    let Some(value) = claims.get(name) else {
        return Ok(None);
    };
    let Value::Number(number) = value else {
        return Err(JwtError::InvalidClaim(name));
    };
    if let Some(whole) = number.as_u64() {
        return Ok(Some(whole));
    }
    match number.as_f64() {
        // `as` saturates at u64::MAX for huge values, which the checks treat as far future.
        Some(f) if f.is_finite() && f >= 0.0 => Ok(Some(f as u64)),
        _ => Err(JwtError::InvalidClaim(name)),
    }
}

#[cfg(test)]
mod tests;
