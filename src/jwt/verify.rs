//! Signature verification (RFC 7515 §5.2 steps 8–9, RFC 7518 §3) and the gateway's one-call
//! entry point.
//!
//! Order matters (RFC 8725 §3.1, §3.4): the `alg` must be in the configured allow-list before
//! any key is chosen; a signature that cannot be well formed for that algorithm (wrong length,
//! ECDSA `r` or `s` zero — the "psychic signatures" class, CVE-2022-21449) is refused before the
//! crypto backend sees it; the key is the one the provider's JWKS binds to the token's `kid`
//! and `alg`, never one the token supplies; claims are read only after the signature holds.

use std::rc::Rc;

use super::alg::JwsAlgorithm;
use super::cache::{CacheEvent, JwksCache};
use super::claims::ClaimRules;
use super::error::{JwtError, log_snippet};
use super::keys::{KeySet, UsableKey};
use super::parse::UnverifiedJwt;
use super::verified::VerifiedJwt;
use crate::ports::{Clock, HttpClient, SignatureVerifier};

/// Check the token's algorithm and signature against the provider's keys. Claims are not
/// looked at; [`verify`] does both.
pub async fn verify_signature<V: SignatureVerifier>(
    verifier: &V,
    keys: &KeySet<V::Key>,
    token: &UnverifiedJwt,
    allowed_algs: &[JwsAlgorithm],
) -> Result<(), JwtError> {
    let alg = token.alg();
    if !allowed_algs.contains(&alg) {
        return Err(JwtError::AlgNotAllowed(log_snippet(alg.name())));
    }
    check_signature_shape(alg, token.signature())?;
    let (key, signature_len) = keys.key_for(verifier, token.header()).await?;
    if token.signature().len() != signature_len {
        return Err(JwtError::SignatureMalformed("length does not match the key"));
    }
    let valid = verifier.verify(&key, alg, token.signing_input(), token.signature()).await.map_err(JwtError::Crypto)?;
    if valid { Ok(()) } else { Err(JwtError::SignatureInvalid) }
}

/// Verify the signature, then the claims at `now` (Unix seconds).
pub async fn verify<V: SignatureVerifier>(
    verifier: &V,
    keys: &KeySet<V::Key>,
    token: &UnverifiedJwt,
    allowed_algs: &[JwsAlgorithm],
    rules: &ClaimRules,
    now: u64,
) -> Result<VerifiedJwt, JwtError> {
    verify_signature(verifier, keys, token, allowed_algs).await?;
    rules.validate(token.header(), token.unverified_claims(), now)?;
    check_key_issuer(keys, token)?;
    Ok(VerifiedJwt::new(token.header().clone(), token.unverified_claims().clone()))
}

/// The outcome of [`verify_with_cache`]: the verdict, plus key-cache events to log whatever the
/// verdict (e.g. `jwks_refresh_failed_using_cached`).
#[derive(Debug)]
pub struct Verification {
    pub result: Result<VerifiedJwt, JwtError>,
    pub events: Vec<CacheEvent>,
    /// The JWKS key that verified the signature, when it held: the verified-token cache ties
    /// its entry to that key, so the entry dies when the key leaves the set.
    pub verified_by: Option<UsableKey>,
}

impl Verification {
    fn new<K>(result: Result<VerifiedJwt, JwtError>, events: Vec<CacheEvent>, keys: &KeySet<K>) -> Self {
        let verified_by = match &result {
            Ok(jwt) => keys.jwks().select(jwt.header()).ok().and_then(|i| keys.jwks().keys().get(i).cloned()),
            Err(_) => None,
        };
        Self { result, events, verified_by }
    }

    fn refused(error: JwtError, events: Vec<CacheEvent>) -> Self {
        Self { result: Err(error), events, verified_by: None }
    }
}

/// Verify a token against the issuer's JWKS held in `cache`: fetch or refresh the keys as the
/// cache policy says, and when the token's `kid` is unknown ask for one (rate-limited,
/// coalesced) refetch before refusing — providers publish new keys before using them, but the
/// cache may predate that. Claims are checked at `now` (Unix seconds); the cache's own
/// freshness bookkeeping uses the `Clock` port.
pub async fn verify_with_cache<P>(
    ports: &P,
    cache: &JwksCache<P::Key>,
    jwks_uri: &str,
    token: &UnverifiedJwt,
    allowed_algs: &[JwsAlgorithm],
    rules: &ClaimRules,
    now: u64,
) -> Verification
where
    P: HttpClient + Clock + SignatureVerifier,
{
    let mut events = Vec::new();
    let first = match cache.key_set(ports, jwks_uri).await {
        Ok(lookup) => lookup,
        Err(e) => return Verification::refused(e, events),
    };
    events.extend(first.event);
    let result = verify(ports, &first.keys, token, allowed_algs, rules, now).await;
    let (Err(JwtError::KidUnknown), Some(kid)) = (&result, token.kid()) else {
        return Verification::new(result, events, &first.keys);
    };
    let second = match cache.refetch_for_unknown_kid(ports, jwks_uri, kid).await {
        Ok(lookup) => lookup,
        Err(e) => return Verification::refused(e, events),
    };
    events.extend(second.event);
    if Rc::ptr_eq(&first.keys, &second.keys) {
        // No new keys (rate-limited, negatively cached, or the refetch failed).
        return Verification::new(result, events, &first.keys);
    }
    let result = verify(ports, &second.keys, token, allowed_algs, rules, now).await;
    Verification::new(result, events, &second.keys)
}

/// A key that names its issuer (Entra's JWKS `issuer` member) signs only for it: the token's
/// `iss` must equal it, with `{tenantid}` read as the token's `tid`. Entra signs v1 tokens
/// (`https://sts.windows.net/{tid}/`, Azure China `https://sts.chinacloudapi.cn/{tid}/`) with the
/// keys its v2 key set publishes for
/// `.../{tid}/v2.0`, so a v1 token of the same tenant matches that key too.
fn check_key_issuer<K>(keys: &KeySet<K>, token: &UnverifiedJwt) -> Result<(), JwtError> {
    let index = keys.jwks().select(token.header())?;
    let Some(key_issuer) = keys.jwks().keys().get(index).and_then(|k| k.jwk.issuer.as_deref()) else {
        return Ok(());
    };
    let claims = token.unverified_claims();
    let iss = claims.get("iss").and_then(|v| v.as_str()).unwrap_or_default();
    let tid = claims.get("tid").and_then(|v| v.as_str()).filter(|t| super::claims::is_tenant_guid(t));
    let expected = match tid {
        Some(tid) => key_issuer.replace(super::claims::TENANT_PLACEHOLDER, tid),
        None => key_issuer.to_owned(),
    };
    let v1_of_same_tenant = tid.is_some_and(|tid| {
        crate::entra::V1_ISSUER_PREFIXES.iter().any(|prefix| iss.strip_prefix(prefix) == Some(&format!("{tid}/")))
            && expected.strip_suffix("/v2.0").is_some_and(|head| head.ends_with(&format!("/{tid}")))
    });
    if expected == iss || v1_of_same_tenant { Ok(()) } else { Err(JwtError::KeyIssuerMismatch) }
}

/// Refuse signatures that cannot be valid for `alg` whatever the key (RFC 7518 §3.4: an ECDSA
/// JWS signature is exactly `r || s`, each the curve's size, and neither may be zero).
fn check_signature_shape(alg: JwsAlgorithm, signature: &[u8]) -> Result<(), JwtError> {
    let Some(expected) = alg.ecdsa_signature_len() else {
        return Ok(());
    };
    if signature.len() != expected {
        return Err(JwtError::SignatureMalformed("ECDSA signature length"));
    }
    let (r, s) = signature.split_at_checked(expected / 2).unwrap_or_default();
    let zero = |half: &[u8]| half.iter().all(|b| *b == 0);
    if zero(r) || zero(s) {
        return Err(JwtError::SignatureMalformed("ECDSA r or s is zero"));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
