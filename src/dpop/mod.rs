//! DPoP (RFC 9449): proof that the caller holds the private key a token is bound to, so a
//! stolen access token is useless without that key.
//!
//! [`check_proof`] applies RFC 9449 §4.3 to the `DPoP` header of one request: the proof is a
//! JWS of type `dpop+jwt` signed with the public key it carries (asymmetric only, no private
//! members), for this request's method (`htm`) and URI (`htu`, without query and fragment,
//! compared after normalisation), recent (`iat`), for this access token (`ath`), and the
//! token's `cnf.jkt` (§6.1) must be the proof key's thumbprint (RFC 7638). Replays (`jti`) are
//! refused by the caller with a [`ReplayGuard`] once everything else has passed, and the
//! server nonce (§8, when required) with [`nonce_accepted`].

mod nonce;
mod replay;
mod thumbprint;

pub use nonce::{NONCE_WINDOW_SECS, current_nonce, nonce_accepted};
pub use replay::ReplayGuard;
pub use thumbprint::jwk_thumbprint;

use crate::encoding::{b64url, ct_eq, sha256};
use crate::jwt::{Jwks, JwsAlgorithm, KeySet, UnverifiedJwt, verify_signature};
use crate::ports::SignatureVerifier;
use serde_json::{Map, Value};
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use url::Url;

/// A proof is a few hundred bytes; an RSA key in it makes it about 1.5 KB.
pub const MAX_PROOF_LEN: usize = 8 * 1024;
/// How old a proof may be (beyond the clock skew): long enough for a slow request, short
/// enough that the replay memory stays small.
pub const MAX_PROOF_AGE_SECS: u64 = 60;
/// Longest `jti` accepted.
const MAX_JTI_LEN: usize = 256;
/// JWK members that only a private key has; a proof carrying one leaked its own secret.
const PRIVATE_MEMBERS: [&str; 8] = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

/// Why a DPoP proof, or the binding between proof and token, was refused. Each is a `401`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DpopError {
    /// `Authorization: DPoP` without exactly one `DPoP` header.
    #[error("no DPoP proof")]
    ProofMissing,
    /// Not a well-formed proof JWS (or a JWS with forbidden header parameters).
    #[error("malformed proof: {0}")]
    Malformed(String),
    /// `typ` is not `dpop+jwt`.
    #[error("typ is not dpop+jwt")]
    WrongType,
    /// The carried key is symmetric, private, or not one the gateway can verify with.
    #[error("the proof key is not a usable public key")]
    KeyNotPublic,
    /// The signature does not verify with the carried key.
    #[error("the proof signature does not verify")]
    SignatureInvalid,
    /// `htm` is not this request's method.
    #[error("htm does not match the request method")]
    MethodMismatch,
    /// `htu` is not this request's URI.
    #[error("htu does not match the request URI")]
    UriMismatch,
    /// `iat` missing, too old or in the future.
    #[error("iat is outside the accepted window")]
    IatOutOfWindow,
    /// `jti` missing or unusable.
    #[error("jti missing or too long")]
    JtiInvalid,
    /// This proof was used before.
    #[error("the proof was already used")]
    Replayed,
    /// `ath` is not the hash of the presented access token.
    #[error("ath does not match the access token")]
    AthMismatch,
    /// The token is bound to another key (`cnf.jkt`), or to none.
    #[error("the access token is not bound to the proof key")]
    KeyMismatch,
    /// A DPoP-bound token presented with the `Bearer` scheme (RFC 9449 §7.1).
    #[error("a DPoP-bound token was presented as a Bearer token")]
    BoundTokenAsBearer,
    /// Nonces are required (`DPOP_NONCE`) and the proof has none; carries the nonce to use.
    #[error("a DPoP nonce is required")]
    NonceMissing(String),
    /// The proof's nonce is not a current one (expired, or never issued); carries a fresh one.
    #[error("the DPoP nonce is not current")]
    NonceInvalid(String),
    /// The route accepts only DPoP-bound tokens.
    #[error("this resource requires a DPoP-bound token")]
    Required,
    /// No access token at all on a route that requires DPoP: the challenge says which scheme
    /// to use, without an error code (RFC 6750 §3.1, RFC 9449 §7.1).
    #[error("sign-in required")]
    TokenMissing,
}

impl DpopError {
    /// The decision-log reason code.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::ProofMissing => "dpop_proof_missing",
            Self::Malformed(_) => "dpop_proof_malformed",
            Self::WrongType => "dpop_proof_wrong_type",
            Self::KeyNotPublic => "dpop_key_not_public",
            Self::SignatureInvalid => "dpop_signature_invalid",
            Self::MethodMismatch => "dpop_htm_mismatch",
            Self::UriMismatch => "dpop_htu_mismatch",
            Self::IatOutOfWindow => "dpop_iat_out_of_window",
            Self::JtiInvalid => "dpop_jti_invalid",
            Self::Replayed => "dpop_proof_replayed",
            Self::NonceMissing(_) => "dpop_nonce_missing",
            Self::NonceInvalid(_) => "dpop_nonce_invalid",
            Self::AthMismatch => "dpop_ath_mismatch",
            Self::KeyMismatch => "dpop_key_mismatch",
            Self::BoundTokenAsBearer => "dpop_bound_token_as_bearer",
            Self::Required => "dpop_required",
            Self::TokenMissing => "token_missing",
        }
    }

    /// The RFC 9449 §7.1 error code of the challenge: proof problems are
    /// `invalid_dpop_proof`; a token used the wrong way is `invalid_token`; none when no
    /// credentials were presented.
    pub fn error_code(&self) -> Option<&'static str> {
        match self {
            Self::KeyMismatch | Self::BoundTokenAsBearer => Some("invalid_token"),
            Self::Required => Some("invalid_request"),
            Self::NonceMissing(_) | Self::NonceInvalid(_) => Some("use_dpop_nonce"),
            Self::TokenMissing => None,
            _ => Some("invalid_dpop_proof"),
        }
    }

    /// The nonce the client must put in its next proof (the `DPoP-Nonce` header, §8.1).
    pub fn fresh_nonce(&self) -> Option<&str> {
        match self {
            Self::NonceMissing(nonce) | Self::NonceInvalid(nonce) => Some(nonce),
            _ => None,
        }
    }

    /// Whether the challenge uses the `Bearer` scheme (the client presented a Bearer token)
    /// rather than `DPoP`.
    pub fn bearer_challenge(&self) -> bool {
        matches!(self, Self::BoundTokenAsBearer)
    }
}

/// What the request says a proof must match.
pub struct ProofContext<'a> {
    /// The request method, as sent.
    pub method: &'a str,
    /// The request URI as the client addressed it: the gateway's public origin and the
    /// canonical path (queries and fragments are not part of `htu`).
    pub uri: &'a Url,
    /// The access token the proof must be bound to (`ath`).
    pub access_token: &'a str,
    pub now: u64,
    pub leeway_secs: u64,
}

/// A proof that passed every check but the replay check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckedProof {
    /// The proof key's RFC 7638 thumbprint, to compare with the token's `cnf.jkt`.
    pub jkt: String,
    /// Identifies this proof for the replay guard: SHA-256 of thumbprint and `jti`.
    pub replay_id: [u8; 32],
    /// Until when a replay of it would still be accepted.
    pub replay_until: u64,
    /// The server nonce the proof carries (`nonce` claim), if any.
    pub nonce: Option<String>,
}

/// How many clients' proof keys an isolate keeps imported.
pub const MAX_PROOF_KEYS: usize = 256;

/// Proof keys already checked and imported, by the SHA-256 of their whole JWK: a client signs
/// every proof with one key, so its later proofs cost no JWK parse and no `importKey` (a
/// quarter or more of a verify). The whole JWK is the key, not its thumbprint, because
/// members outside the thumbprint (`alg`) decide what the key may verify.
pub struct ProofKeys<K> {
    sets: RefCell<HashMap<[u8; 32], Rc<KeySet<K>>>>,
}

impl<K> Default for ProofKeys<K> {
    fn default() -> Self {
        Self { sets: RefCell::new(HashMap::new()) }
    }
}

impl<K> ProofKeys<K> {
    fn get_or_check(&self, jwk: Map<String, Value>) -> Result<Rc<KeySet<K>>, DpopError> {
        let doc = serde_json::to_vec(&serde_json::json!({ "keys": [Value::Object(jwk)] }))
            .map_err(|_| DpopError::KeyNotPublic)?;
        let id = sha256(&doc);
        if let Some(keys) = self.sets.borrow().get(&id) {
            return Ok(Rc::clone(keys));
        }
        let keys = Rc::new(own_key_set(&doc)?);
        let mut sets = self.sets.borrow_mut();
        if sets.len() >= MAX_PROOF_KEYS {
            // A flood of fresh keys only costs imports again, never memory.
            sets.clear();
        }
        sets.insert(id, Rc::clone(&keys));
        Ok(keys)
    }

    pub fn len(&self) -> usize {
        self.sets.borrow().len()
    }

    pub fn is_empty(&self) -> bool {
        self.sets.borrow().is_empty()
    }
}

/// Check a DPoP proof against the request (RFC 9449 §4.3 steps 2–12, all but replay).
pub async fn check_proof<V: SignatureVerifier>(
    verifier: &V,
    known_keys: &ProofKeys<V::Key>,
    proof: &str,
    ctx: &ProofContext<'_>,
) -> Result<CheckedProof, DpopError> {
    let (jwt, jwk) = UnverifiedJwt::parse_with_own_key(proof, MAX_PROOF_LEN)
        .map_err(|e| DpopError::Malformed(e.reason().to_owned()))?;
    if !jwt.header().typ.as_deref().is_some_and(|t| t.eq_ignore_ascii_case("dpop+jwt")) {
        return Err(DpopError::WrongType);
    }
    if PRIVATE_MEMBERS.iter().any(|m| jwk.contains_key(*m)) {
        return Err(DpopError::KeyNotPublic);
    }
    let jkt = jwk_thumbprint(&jwk).ok_or(DpopError::KeyNotPublic)?;
    let keys = known_keys.get_or_check(jwk)?;
    verify_signature(verifier, &keys, &jwt, &JwsAlgorithm::ALL).await.map_err(|e| match e {
        crate::jwt::JwtError::SignatureInvalid => DpopError::SignatureInvalid,
        _ => DpopError::KeyNotPublic,
    })?;
    let claims = jwt.unverified_claims();
    let text = |name: &str| claims.get(name).and_then(Value::as_str);
    if text("htm") != Some(ctx.method) {
        return Err(DpopError::MethodMismatch);
    }
    if !text("htu").is_some_and(|htu| same_uri(htu, ctx.uri)) {
        return Err(DpopError::UriMismatch);
    }
    let iat = claims.get("iat").and_then(Value::as_u64).ok_or(DpopError::IatOutOfWindow)?;
    let oldest = ctx.now.saturating_sub(MAX_PROOF_AGE_SECS + ctx.leeway_secs);
    if iat < oldest || iat > ctx.now.saturating_add(ctx.leeway_secs) {
        return Err(DpopError::IatOutOfWindow);
    }
    let jti = text("jti").filter(|j| !j.is_empty() && j.len() <= MAX_JTI_LEN).ok_or(DpopError::JtiInvalid)?;
    let ath = b64url(&sha256(ctx.access_token.as_bytes()));
    if !text("ath").is_some_and(|claimed| ct_eq(claimed, &ath)) {
        return Err(DpopError::AthMismatch);
    }
    let replay_id = sha256(format!("{jkt}.{jti}").as_bytes());
    // A replay matters until the proof's own iat leaves the window.
    let replay_until = iat.saturating_add(MAX_PROOF_AGE_SECS + 2 * ctx.leeway_secs + 1);
    let nonce = text("nonce").map(str::to_owned);
    Ok(CheckedProof { jkt, replay_id, replay_until, nonce })
}

/// The proof's own key (as a one-key JWKS document) as a key set, through the same checks as
/// provider keys (key type and size, algorithm fit, signature shape).
fn own_key_set<K>(doc: &[u8]) -> Result<KeySet<K>, DpopError> {
    let jwks = Jwks::parse(doc).map_err(|_| DpopError::KeyNotPublic)?;
    if jwks.keys().len() != 1 {
        return Err(DpopError::KeyNotPublic);
    }
    Ok(KeySet::new(jwks))
}

/// RFC 9449 §4.3 step 9: `htu` names the request URI, ignoring query and fragment, after
/// syntax- and scheme-based normalisation (RFC 3986 §6.2.2–6.2.3): case of scheme and host,
/// default ports, percent-encoding of unreserved characters, dot segments.
fn same_uri(htu: &str, request: &Url) -> bool {
    let Ok(claimed) = Url::parse(htu) else { return false };
    let Ok(path) = crate::policy::normalise_path(claimed.path()) else { return false };
    claimed.scheme() == request.scheme()
        && claimed.host_str() == request.host_str()
        && claimed.port_or_known_default() == request.port_or_known_default()
        && claimed.username().is_empty()
        && path == request.path()
}

/// The token's confirmation key thumbprint (`cnf.jkt`, RFC 9449 §6.1), if it is DPoP-bound.
pub fn bound_thumbprint(claims: &Map<String, Value>) -> Option<&str> {
    claims.get("cnf")?.get("jkt")?.as_str()
}

#[cfg(test)]
mod tests;
