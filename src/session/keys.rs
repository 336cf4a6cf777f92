//! Keys derived from `SESSION_SECRET`, and authenticated encryption with them.
//!
//! Each secret in the comma-separated list (newest first) yields one key per purpose through
//! HKDF-SHA256 (RFC 5869) with distinct labels, so the cookie key and the KV key are
//! independent even though one secret feeds both. Sealing always uses the newest secret;
//! opening tries each in turn, which is what makes rotation ("new,old") seamless.
//!
//! AES-256-GCM runs in Rust rather than through Web Crypto: values are tiny (a cookie, a
//! session record), the call is synchronous, and native tests exercise the same code as wasm.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use hkdf::Hkdf;
use sha2::Sha256;
use std::fmt;

/// Length of the random AES-GCM nonce that prefixes every sealed value.
pub const NONCE_LEN: usize = 12;

/// What a key is for; each purpose has its own HKDF label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// Browser cookies: the session cookie and login-transaction cookies.
    Cookie,
    /// Session records at rest in KV (refresh tokens among them).
    Store,
}

impl Purpose {
    fn label(self) -> &'static [u8] {
        match self {
            Purpose::Cookie => b"edgeguard cookie sealing v1",
            Purpose::Store => b"edgeguard kv encryption v1",
        }
    }
}

/// The HKDF label of the key that makes DPoP nonces (an HMAC key, not a cipher).
const DPOP_NONCE_LABEL: &[u8] = b"edgeguard dpop nonce v1";

/// The ciphers and MAC key for one secret.
#[derive(Clone)]
struct KeyGeneration {
    cookie: Aes256Gcm,
    store: Aes256Gcm,
    dpop_nonce: [u8; 32],
}

/// Keys for every configured secret, newest first. Never printed.
#[derive(Clone)]
pub struct SessionKeys {
    generations: Vec<KeyGeneration>,
}

impl fmt::Debug for SessionKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SessionKeys([redacted; {}])", self.generations.len())
    }
}

fn derive_key(secret: &str, label: &[u8]) -> [u8; 32] {
    let hkdf = Hkdf::<Sha256>::new(Some(b"edgeguard"), secret.as_bytes());
    let mut key = [0u8; 32];
    // 32 bytes is far below HKDF-SHA256's 255 * 32 byte limit, so expand cannot fail.
    let _ = hkdf.expand(label, &mut key);
    key
}

fn derive_cipher(secret: &str, purpose: Purpose) -> Aes256Gcm {
    Aes256Gcm::new(&derive_key(secret, purpose.label()).into())
}

impl SessionKeys {
    /// Derive keys from the secrets, newest first. Callers validate length beforehand.
    pub fn derive(secrets: &[&str]) -> Self {
        let generations = secrets
            .iter()
            .map(|s| KeyGeneration {
                cookie: derive_cipher(s, Purpose::Cookie),
                store: derive_cipher(s, Purpose::Store),
                dpop_nonce: derive_key(s, DPOP_NONCE_LABEL),
            })
            .collect();
        Self { generations }
    }

    /// The DPoP nonce keys, newest secret first: nonces are made with the first and accepted
    /// from any, so a secret rotation costs clients no extra `use_dpop_nonce` round trip.
    pub fn dpop_nonce_keys(&self) -> impl Iterator<Item = &[u8; 32]> {
        self.generations.iter().map(|g| &g.dpop_nonce)
    }

    fn cipher(generation: &KeyGeneration, purpose: Purpose) -> &Aes256Gcm {
        match purpose {
            Purpose::Cookie => &generation.cookie,
            Purpose::Store => &generation.store,
        }
    }

    /// Encrypt with the newest key. `aad` binds the value to its place (a cookie name, a KV
    /// key), so a sealed value moved elsewhere no longer opens. Returns `nonce || ciphertext`.
    pub fn seal(&self, purpose: Purpose, aad: &[u8], plaintext: &[u8], nonce: [u8; NONCE_LEN]) -> Vec<u8> {
        let Some(newest) = self.generations.first() else {
            return Vec::new();
        };
        let payload = Payload { msg: plaintext, aad };
        match Self::cipher(newest, purpose).encrypt(Nonce::from_slice(&nonce), payload) {
            Ok(ciphertext) => [nonce.as_slice(), &ciphertext].concat(),
            // AES-GCM encryption only fails for inputs of gigabytes.
            Err(_) => Vec::new(),
        }
    }

    /// Decrypt with whichever configured key sealed the value; `None` if none did (tampered,
    /// truncated, sealed for another place, or by a secret no longer configured).
    pub fn open(&self, purpose: Purpose, aad: &[u8], sealed: &[u8]) -> Option<Vec<u8>> {
        let (nonce, ciphertext) = sealed.split_at_checked(NONCE_LEN)?;
        self.generations.iter().find_map(|generation| {
            let payload = Payload { msg: ciphertext, aad };
            Self::cipher(generation, purpose).decrypt(Nonce::from_slice(nonce), payload).ok()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NEW: &str = "new-secret-new-secret-new-secret-0001";
    const OLD: &str = "old-secret-old-secret-old-secret-0001";

    #[test]
    fn seals_and_opens() {
        let keys = SessionKeys::derive(&[NEW]);
        let sealed = keys.seal(Purpose::Cookie, b"name", b"hello", [7; NONCE_LEN]);
        assert_eq!(keys.open(Purpose::Cookie, b"name", &sealed).as_deref(), Some(&b"hello"[..]));
    }

    #[test]
    fn refuses_other_place_purpose_or_tampering() {
        let keys = SessionKeys::derive(&[NEW]);
        let sealed = keys.seal(Purpose::Cookie, b"name", b"hello", [7; NONCE_LEN]);
        assert_eq!(keys.open(Purpose::Cookie, b"other-name", &sealed), None);
        assert_eq!(keys.open(Purpose::Store, b"name", &sealed), None);
        for i in 0..sealed.len() {
            let mut bad = sealed.clone();
            bad[i] ^= 1;
            assert_eq!(keys.open(Purpose::Cookie, b"name", &bad), None, "flipped byte {i}");
        }
        assert_eq!(keys.open(Purpose::Cookie, b"name", &sealed[..5]), None);
    }

    #[test]
    fn rotation_opens_old_values_and_seals_with_the_new_secret() {
        let old_only = SessionKeys::derive(&[OLD]);
        let rotated = SessionKeys::derive(&[NEW, OLD]);
        let new_only = SessionKeys::derive(&[NEW]);
        let sealed_old = old_only.seal(Purpose::Store, b"k", b"record", [1; NONCE_LEN]);
        assert!(rotated.open(Purpose::Store, b"k", &sealed_old).is_some());
        let sealed_new = rotated.seal(Purpose::Store, b"k", b"record", [2; NONCE_LEN]);
        assert!(new_only.open(Purpose::Store, b"k", &sealed_new).is_some());
        assert!(old_only.open(Purpose::Store, b"k", &sealed_new).is_none());
    }

    #[test]
    fn debug_is_redacted() {
        assert_eq!(format!("{:?}", SessionKeys::derive(&[NEW, OLD])), "SessionKeys([redacted; 2])");
    }
}
