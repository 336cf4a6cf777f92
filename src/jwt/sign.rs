//! Compact JWS signing (RFC 7515 §3.1, §5.1) for tokens the gateway issues itself: client
//! assertions (RFC 7523) and user assertions for origins. The private key is imported once per
//! isolate and kept, as verification keys are.

use crate::config::SigningKeyConfig;
use crate::encoding::b64url;
use crate::ports::{CryptoError, Signer};
use std::cell::RefCell;

/// `header.payload` of a JWS: what gets signed.
pub fn signing_input(header: &serde_json::Value, claims: &serde_json::Value) -> String {
    format!("{}.{}", b64url(header.to_string().as_bytes()), b64url(claims.to_string().as_bytes()))
}

/// One private key, imported on first use and kept for the isolate's life.
pub struct SigningKeySlot<K> {
    imported: RefCell<Option<K>>,
}

impl<K> Default for SigningKeySlot<K> {
    fn default() -> Self {
        Self { imported: RefCell::new(None) }
    }
}

impl<K: Clone> SigningKeySlot<K> {
    /// Sign `header` + `claims` with the configured key (`alg` in the header must match it).
    pub async fn sign<S: Signer<SigningKey = K>>(
        &self,
        signer: &S,
        config: &SigningKeyConfig,
        header: &serde_json::Value,
        claims: &serde_json::Value,
    ) -> Result<String, CryptoError> {
        let cached = self.imported.borrow().clone();
        let key = match cached {
            Some(key) => key,
            None => {
                let key = signer.import_signing_key(config.pkcs8.bytes(), config.alg).await?;
                *self.imported.borrow_mut() = Some(key.clone());
                key
            }
        };
        let input = signing_input(header, claims);
        let signature = signer.sign(&key, config.alg, input.as_bytes()).await?;
        Ok(format!("{input}.{}", b64url(&signature)))
    }
}
