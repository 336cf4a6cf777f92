//! ID token validation (OIDC Core §3.1.3.7) on top of the JWT engine: signature, `iss`, `aud`,
//! `exp`, `iat`, `nbf` come from [`crate::jwt`]; this adds what is specific to ID tokens —
//! `azp`, `nonce`, a required `sub` and `iat`, and `at_hash` when present.

use crate::config::ProviderConfig;
use crate::encoding::{b64url, ct_eq};
use crate::entra::EntraClaims;
use crate::error::GatewayError;
use crate::jwt::{
    CacheEvent, ClaimRules, DEFAULT_MAX_TOKEN_LEN, ErrorClass, HashAlg, JwksCache, JwsAlgorithm, JwtError,
    UnverifiedJwt, verify_with_cache,
};
use crate::oidc::{ProviderError, ProviderMetadata};
use crate::ports::Ports;
use crate::session::Identity;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256, Sha384, Sha512};

/// Why an ID token was refused (beyond the generic JWT rules).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdTokenError {
    /// A generic JWT rule failed (signature, issuer, audience, lifetime, structure).
    #[error(transparent)]
    Jwt(JwtError),
    /// `nonce` missing or not the one sent in the authorization request (replay defence).
    #[error("nonce does not match the login transaction")]
    NonceMismatch,
    /// Several audiences but no `azp` naming this client.
    #[error("aud has several values and azp is missing")]
    AzpMissing,
    /// `azp` names another client.
    #[error("azp names another client")]
    AzpMismatch,
    /// No `sub`, or not a non-empty string.
    #[error("sub is missing")]
    SubMissing,
    /// `sub` has characters that cannot be forwarded in a header unchanged.
    #[error("sub cannot be forwarded as a header value")]
    SubNotHeaderSafe,
    /// `at_hash` does not match the access token that came with it.
    #[error("at_hash does not match the access token")]
    AtHashMismatch,
}

impl IdTokenError {
    pub fn reason(&self) -> &'static str {
        match self {
            IdTokenError::Jwt(e) => e.reason(),
            IdTokenError::NonceMismatch => "nonce_mismatch",
            IdTokenError::AzpMissing => "azp_missing",
            IdTokenError::AzpMismatch => "azp_mismatch",
            IdTokenError::SubMissing => "sub_missing",
            IdTokenError::SubNotHeaderSafe => "sub_not_header_safe",
            IdTokenError::AtHashMismatch => "at_hash_mismatch",
        }
    }
}

fn string_claim<'a>(claims: &'a Map<String, Value>, name: &str) -> Option<&'a str> {
    claims.get(name).and_then(Value::as_str).filter(|s| !s.is_empty())
}

/// The left half of the access token's hash, as `at_hash` carries it (OIDC Core §3.1.3.6).
fn at_hash(access_token: &str, hash: HashAlg) -> String {
    let digest: Vec<u8> = match hash {
        HashAlg::Sha256 => Sha256::digest(access_token.as_bytes()).to_vec(),
        HashAlg::Sha384 => Sha384::digest(access_token.as_bytes()).to_vec(),
        HashAlg::Sha512 => Sha512::digest(access_token.as_bytes()).to_vec(),
    };
    b64url(digest.get(..digest.len() / 2).unwrap_or_default())
}

/// The ID-token-only rules, on claims whose signature and generic claims already passed.
/// `expected_nonce` is the sign-in's: required and equal. A refresh's ID token has none to
/// expect (OIDC Core §12.2); [`super::refreshed_identity`] compares it with the sign-in's.
pub fn check_id_token_claims(
    claims: &Map<String, Value>,
    alg: JwsAlgorithm,
    client_id: &str,
    expected_nonce: Option<&str>,
    access_token: &str,
) -> Result<Identity, IdTokenError> {
    let audiences = match claims.get("aud") {
        Some(Value::Array(list)) => list.len(),
        _ => 1,
    };
    match string_claim(claims, "azp") {
        Some(azp) if azp != client_id => return Err(IdTokenError::AzpMismatch),
        None if audiences > 1 => return Err(IdTokenError::AzpMissing),
        _ => {}
    }
    if let Some(expected) = expected_nonce {
        let nonce = string_claim(claims, "nonce").ok_or(IdTokenError::NonceMismatch)?;
        if !ct_eq(nonce, expected) {
            return Err(IdTokenError::NonceMismatch);
        }
    }
    let sub = string_claim(claims, "sub").ok_or(IdTokenError::SubMissing)?;
    if !crate::proxy::is_header_safe(sub) {
        return Err(IdTokenError::SubNotHeaderSafe);
    }
    if let Some(claimed) = claims.get("at_hash")
        && claimed.as_str() != Some(at_hash(access_token, alg.hash()).as_str())
    {
        return Err(IdTokenError::AtHashMismatch);
    }
    let strings = |name: &str| -> Vec<String> {
        match claims.get(name) {
            Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).map(str::to_owned).collect(),
            _ => Vec::new(),
        }
    };
    Ok(Identity {
        sub: sub.to_owned(),
        email: string_claim(claims, "email").map(str::to_owned),
        email_verified: crate::policy::email_verified(claims),
        name: string_claim(claims, "name").map(str::to_owned),
        roles: strings("roles"),
        groups: strings("groups"),
        tenant: string_claim(claims, "tid").map(str::to_owned),
        oid: string_claim(claims, "oid").map(str::to_owned),
        wids: strings("wids"),
        groups_overage: claims.has_group_overage(),
        sid: string_claim(claims, "sid").map(str::to_owned),
        acr: string_claim(claims, "acr").map(str::to_owned),
        auth_time: claims.get("auth_time").and_then(Value::as_u64),
        scopes: Vec::new(),
    })
}

/// Verify `id_token` completely and return who signed in. A token problem is a
/// [`GatewayError::IdToken`] (400); missing provider keys are a provider error (502/504).
/// Key-cache events worth a log line (e.g. serving cached keys while the JWKS is down) are
/// pushed to `notes`.
#[allow(clippy::too_many_arguments)]
pub async fn validate_id_token<P: Ports>(
    ports: &P,
    keys: &JwksCache<P::Key>,
    metadata: &ProviderMetadata,
    id_token: &str,
    provider: &ProviderConfig,
    expected_nonce: Option<&str>,
    access_token: &str,
    notes: &mut Vec<&'static str>,
) -> Result<Identity, GatewayError> {
    let token_error = |e: JwtError| match e.class() {
        ErrorClass::Token => GatewayError::IdToken(IdTokenError::Jwt(e)),
        ErrorClass::Provider | ErrorClass::Internal => GatewayError::Provider(ProviderError::Keys(e)),
    };
    let token = UnverifiedJwt::parse(id_token, DEFAULT_MAX_TOKEN_LEN).map_err(token_error)?;
    let issuer = crate::entra::id_token_issuer_rule(provider, &metadata.issuer);
    let mut rules = ClaimRules::new(issuer, vec![provider.client_id.clone()]);
    rules.leeway_secs = provider.clock_skew_secs;
    rules.require_iat = true;
    let now = ports.now_secs();
    let verification =
        verify_with_cache(ports, keys, &metadata.jwks_uri, &token, &provider.allowed_algs, &rules, now).await;
    notes.extend(verification.events.iter().map(CacheEvent::reason));
    let verified = verification.result.map_err(token_error)?;
    Ok(check_id_token_claims(verified.claims(), token.alg(), &provider.client_id, expected_nonce, access_token)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_hash_matches_the_oidc_example() {
        // OIDC Core Appendix A.3: access token "jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y".
        assert_eq!(at_hash("jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y", HashAlg::Sha256), "77QmUPtjPfzWtF2AnpK9RQ");
    }
}
