//! `crypto.subtle` signature verification and signing, and `crypto.getRandomValues`.
//!
//! workerd exposes `crypto` as a global (there is no `window`). What to pass for each algorithm,
//! and the JWK to import, is the core's (`jwt::web_crypto`).

use super::ports::EdgePorts;
use super::trampoline::JsAwait;
use crate::jwt::web_crypto::{WebCryptoParams, import_jwk};
use crate::jwt::{Jwk, JwsAlgorithm};
use crate::ports::{CryptoError, SignatureVerifier, Signer};
use js_sys::{Array, JSON, Object, Reflect, Uint8Array};
use std::cell::RefCell;
use std::collections::HashMap;
use wasm_bindgen::prelude::*;
use web_sys::CryptoKey;

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(thread_local_v2, js_name = crypto)]
    static CRYPTO: web_sys::Crypto;
}

thread_local! {
    /// `crypto.subtle`, looked up once per isolate.
    static SUBTLE: web_sys::SubtleCrypto = CRYPTO.with(|c| c.subtle());
    /// `verify` parameter objects per algorithm, built once per isolate (they never change).
    static VERIFY_PARAMS: RefCell<HashMap<JwsAlgorithm, Object>> = RefCell::new(HashMap::new());
}

pub fn fill_random(buf: &mut [u8]) {
    // getRandomValues takes at most 65536 bytes per call.
    for chunk in buf.chunks_mut(65_536) {
        let _ = CRYPTO.with(|c| c.get_random_values_with_u8_array(chunk));
    }
}

fn err(e: JsValue) -> CryptoError {
    CryptoError(e.as_string().unwrap_or_else(|| format!("{e:?}")))
}

/// The JS object of Web Crypto parameters the core chose.
fn object(params: WebCryptoParams) -> Result<Object, CryptoError> {
    let obj = Object::new();
    let set = |name: &str, value: JsValue| Reflect::set(&obj, &JsValue::from_str(name), &value).map_err(err);
    set("name", params.name.into())?;
    if let Some(hash) = params.hash {
        set("hash", hash.into())?;
    }
    if let Some(curve) = params.named_curve {
        set("namedCurve", curve.into())?;
    }
    if let Some(salt) = params.salt_length {
        set("saltLength", salt.into())?;
    }
    Ok(obj)
}

impl SignatureVerifier for EdgePorts {
    type Key = CryptoKey;

    async fn import_key(&self, jwk: &Jwk, alg: JwsAlgorithm) -> Result<CryptoKey, CryptoError> {
        let usages = Array::of1(&JsValue::from_str("verify"));
        let material = JSON::parse(&import_jwk(jwk)).map_err(err)?.dyn_into::<Object>().map_err(err)?;
        let params = object(alg.web_crypto_import())?;
        let promise = SUBTLE
            .with(|subtle| subtle.import_key_with_object("jwk", &material, &params, false, &usages))
            .map_err(err)?;
        JsAwait::new(promise).await.map_err(err)?.dyn_into::<CryptoKey>().map_err(err)
    }

    async fn verify(
        &self,
        key: &CryptoKey,
        alg: JwsAlgorithm,
        signing_input: &[u8],
        signature: &[u8],
    ) -> Result<bool, CryptoError> {
        let params = VERIFY_PARAMS.with(|cache| -> Result<Object, CryptoError> {
            if let Some(params) = cache.borrow().get(&alg) {
                return Ok(params.clone());
            }
            let params = object(alg.web_crypto_verify())?;
            cache.borrow_mut().insert(alg, params.clone());
            Ok(params)
        })?;
        let promise = SUBTLE
            .with(|subtle| subtle.verify_with_object_and_u8_array_and_u8_array(&params, key, signature, signing_input))
            .map_err(err)?;
        Ok(JsAwait::new(promise).await.map_err(err)?.as_bool().unwrap_or(false))
    }
}

impl Signer for EdgePorts {
    type SigningKey = CryptoKey;

    async fn import_signing_key(&self, pkcs8: &[u8], alg: JwsAlgorithm) -> Result<CryptoKey, CryptoError> {
        let usages = Array::of1(&JsValue::from_str("sign"));
        let (der, params) = (Uint8Array::from(pkcs8), object(alg.web_crypto_import())?);
        let promise =
            SUBTLE.with(|subtle| subtle.import_key_with_object("pkcs8", &der, &params, false, &usages)).map_err(err)?;
        JsAwait::new(promise).await.map_err(err)?.dyn_into::<CryptoKey>().map_err(err)
    }

    /// `sign` takes the same parameters as `verify`; ECDSA signatures come back as raw `r || s`.
    async fn sign(&self, key: &CryptoKey, alg: JwsAlgorithm, signing_input: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let params = object(alg.web_crypto_verify())?;
        let promise =
            SUBTLE.with(|subtle| subtle.sign_with_object_and_u8_array(&params, key, signing_input)).map_err(err)?;
        Ok(Uint8Array::new(&JsAwait::new(promise).await.map_err(err)?).to_vec())
    }
}
