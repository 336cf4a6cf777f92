//! The provider's JSON Web Key Set (RFC 7517 §5): which keys may verify signatures, which key a
//! token names, and imported keys kept per algorithm.
//!
//! Usable keys (RFC 7517 §4, RFC 7518 §6, RFC 8725 §3.5): public `RSA` (≥ 2048 bits), `EC` on
//! P-256/P-384, `OKP` Ed25519; `use` absent or `sig`; `key_ops` absent or containing `verify`;
//! `alg` absent or an algorithm we accept that fits the key. Symmetric (`oct`) keys are never
//! usable: a provider's tokens are verified with public keys only. Unusable keys are skipped,
//! not fatal — providers publish encryption keys beside signing keys — but a set with no usable
//! key is a provider error.

use std::cell::RefCell;
use std::collections::BTreeMap;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;
use serde_json::Value;

use super::alg::{JwsAlgorithm, KeyFamily};
use super::error::{JwksError, JwtError};
use super::jwk::Jwk;
use super::parse::JwtHeader;
use crate::ports::SignatureVerifier;

/// RSA keys below this are refused (RFC 7518 §3.3 requires 2048 bits).
pub const MIN_RSA_BITS: usize = 2048;
/// RSA keys above this are refused too: verification cost grows with size, and no provider
/// uses more.
pub const MAX_RSA_BITS: usize = 8192;
/// A JWKS with more usable keys than this keeps only the first ones; real sets have a handful.
pub const MAX_KEYS: usize = 64;

/// One key that may verify signatures, with what it fits already worked out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsableKey {
    pub jwk: Jwk,
    pub family: KeyFamily,
    /// The key's own `alg`, when it declares one: then only that algorithm may use it.
    pub alg: Option<JwsAlgorithm>,
    /// The exact signature length this key produces (RSA: modulus bytes).
    pub signature_len: usize,
}

impl UsableKey {
    /// Whether a token signed with `alg` may be checked with this key.
    pub fn fits(&self, alg: JwsAlgorithm) -> bool {
        self.family == alg.key_family() && self.alg.is_none_or(|own| own == alg)
    }

    fn has_kid(&self, kid: &str) -> bool {
        self.jwk.kid.as_deref() == Some(kid)
    }
}

/// The usable keys of one JWKS document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Jwks {
    keys: Vec<UsableKey>,
    skipped: usize,
}

#[derive(Deserialize)]
struct Document {
    keys: Vec<Value>,
}

impl Jwks {
    /// Parse a JWKS document (`{"keys":[...]}`), keeping only usable keys.
    pub fn parse(bytes: &[u8]) -> Result<Self, JwksError> {
        // serde's derived struct also reads the array form (`[[...keys...]]`); a JWK Set is an
        // object (RFC 7517 §5), and accepting anything else hides a broken endpoint.
        if bytes.trim_ascii_start().first() != Some(&b'{') {
            return Err(JwksError::Malformed("a JWK Set is a JSON object".into()));
        }
        // JSON is UTF-8 (RFC 8259 §8.1); serde skips members it ignores without checking that.
        let text = std::str::from_utf8(bytes).map_err(|_| JwksError::Malformed("not UTF-8".into()))?;
        let doc: Document = crate::json::decode(text.as_bytes()).map_err(|e| JwksError::Malformed(e.to_string()))?;
        let mut keys: Vec<UsableKey> = Vec::new();
        let mut skipped = 0;
        for value in doc.keys {
            match serde_json::from_value::<Jwk>(value).ok().and_then(usable) {
                Some(key) if keys.len() < MAX_KEYS => {
                    // Providers sometimes list one key twice; that must not look ambiguous.
                    if !keys.contains(&key) {
                        keys.push(key);
                    }
                }
                _ => skipped += 1,
            }
        }
        if keys.is_empty() {
            return Err(JwksError::NoUsableKeys { skipped });
        }
        Ok(Self { keys, skipped })
    }

    pub fn keys(&self) -> &[UsableKey] {
        &self.keys
    }

    /// How many keys of the document were not usable.
    pub fn skipped(&self) -> usize {
        self.skipped
    }

    pub fn contains_kid(&self, kid: &str) -> bool {
        self.keys.iter().any(|k| k.has_kid(kid))
    }

    /// The index of the one key that may verify a token with this header.
    ///
    /// With a `kid`, only keys carrying that `kid` are candidates (a kid-less key is never a
    /// fallback); without one, every key is, and exactly one may fit — guessing among several
    /// would let a token pick its key.
    pub fn select(&self, header: &JwtHeader) -> Result<usize, JwtError> {
        let alg = header.alg;
        let mut fitting = self
            .keys
            .iter()
            .enumerate()
            .filter(|(_, k)| header.kid.as_deref().is_none_or(|kid| k.has_kid(kid)))
            .filter(|(_, k)| k.fits(alg))
            .map(|(i, _)| i);
        match (fitting.next(), fitting.next(), header.kid.as_deref()) {
            (Some(i), None, _) => Ok(i),
            (Some(_), Some(_), Some(_)) => Err(JwtError::KidAmbiguous),
            (Some(_), Some(_), None) => Err(JwtError::KidRequired),
            (None, _, Some(kid)) if self.contains_kid(kid) => Err(JwtError::KeyAlgMismatch(alg.name())),
            (None, _, Some(_)) => Err(JwtError::KidUnknown),
            (None, _, None) => Err(JwtError::NoMatchingKey(alg.name())),
        }
    }
}

/// Decide whether a JWK may verify signatures here, and what it fits.
fn usable(jwk: Jwk) -> Option<UsableKey> {
    if jwk.use_.as_deref().is_some_and(|u| u != "sig") {
        return None;
    }
    if jwk.key_ops.as_ref().is_some_and(|ops| !ops.iter().any(|op| op == "verify")) {
        return None;
    }
    let (family, signature_len) = match jwk.kty.as_str() {
        "RSA" => (KeyFamily::Rsa, rsa_modulus_len(&jwk)?),
        "EC" => ec_family(&jwk)?,
        "OKP" if jwk.crv.as_deref() == Some("Ed25519") => {
            (b64_len(jwk.x.as_deref()) == Some(32)).then_some((KeyFamily::Okp, 64))?
        }
        // "oct" (symmetric) and anything unknown.
        _ => return None,
    };
    let alg = match jwk.alg.as_deref() {
        None => None,
        Some(name) => Some(name.parse::<JwsAlgorithm>().ok()?),
    };
    if alg.is_some_and(|a| a.key_family() != family) {
        return None;
    }
    Some(UsableKey { jwk, family, alg, signature_len })
}

/// The modulus length in bytes, if `n` and `e` are sound and the size is within bounds.
fn rsa_modulus_len(jwk: &Jwk) -> Option<usize> {
    let n = b64(jwk.n.as_deref())?;
    let e = b64(jwk.e.as_deref())?;
    let e_ok = e.iter().any(|b| *b != 0) && e.len() <= 8;
    let significant = n.iter().position(|b| *b != 0).and_then(|i| n.get(i..))?;
    let first = significant.first()?;
    let bits = significant.len() * 8 - first.leading_zeros() as usize;
    (e_ok && (MIN_RSA_BITS..=MAX_RSA_BITS).contains(&bits)).then_some(significant.len())
}

fn ec_family(jwk: &Jwk) -> Option<(KeyFamily, usize)> {
    let (family, size) = match jwk.crv.as_deref()? {
        "P-256" => (KeyFamily::Ec("P-256"), 32),
        "P-384" => (KeyFamily::Ec("P-384"), 48),
        _ => return None,
    };
    let x_ok = b64_len(jwk.x.as_deref()) == Some(size);
    let y_ok = b64_len(jwk.y.as_deref()) == Some(size);
    (x_ok && y_ok).then_some((family, 2 * size))
}

fn b64(text: Option<&str>) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(text?).ok()
}

fn b64_len(text: Option<&str>) -> Option<usize> {
    b64(text).map(|bytes| bytes.len())
}

/// A parsed JWKS plus the keys imported from it so far. Imports are cached per (key, alg)
/// because a Web Crypto key is bound to one algorithm: one RSA JWK may be imported for RS256
/// and for PS256 separately.
pub struct KeySet<K> {
    jwks: Jwks,
    imported: RefCell<BTreeMap<(usize, JwsAlgorithm), K>>,
}

impl<K> KeySet<K> {
    pub fn new(jwks: Jwks) -> Self {
        Self { jwks, imported: RefCell::new(BTreeMap::new()) }
    }

    pub fn jwks(&self) -> &Jwks {
        &self.jwks
    }

    pub fn contains_kid(&self, kid: &str) -> bool {
        self.jwks.contains_kid(kid)
    }

    /// The selected key for this header, imported for the header's `alg` (once), plus the
    /// exact signature length that key produces.
    pub async fn key_for<V: SignatureVerifier<Key = K>>(
        &self,
        verifier: &V,
        header: &JwtHeader,
    ) -> Result<(K, usize), JwtError>
    where
        K: Clone,
    {
        let index = self.jwks.select(header)?;
        let key = self.jwks.keys.get(index).ok_or(JwtError::KidUnknown)?;
        let slot = (index, header.alg);
        // The borrow ends with this statement: nothing is borrowed across the await below.
        let cached = self.imported.borrow().get(&slot).cloned();
        if let Some(imported) = cached {
            return Ok((imported, key.signature_len));
        }
        let imported = verifier.import_key(&key.jwk, header.alg).await.map_err(JwtError::KeyImport)?;
        self.imported.borrow_mut().insert(slot, imported.clone());
        Ok((imported, key.signature_len))
    }

    /// How many (key, alg) imports are cached.
    pub fn imported_count(&self) -> usize {
        self.imported.borrow().len()
    }
}

#[cfg(test)]
mod tests;
