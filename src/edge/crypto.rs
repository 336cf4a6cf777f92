//! `crypto.subtle` signature verification and signing, and `crypto.getRandomValues`.
//!
//! workerd exposes `crypto` as a global (there is no `window`). Keys are imported from a minimal
//! JWK (key material only): a JWK's own `alg` would pin it to one algorithm, and the core
//! already decided which algorithm this import is for.

use super::ports::EdgePorts;
use super::trampoline::JsAwait;
use crate::jwt::{HashAlg, Jwk, JwsAlgorithm};
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

fn hash_name(hash: HashAlg) -> &'static str {
    match hash {
        HashAlg::Sha256 => "SHA-256",
        HashAlg::Sha384 => "SHA-384",
        HashAlg::Sha512 => "SHA-512",
    }
}

fn object(pairs: &[(&str, JsValue)]) -> Result<Object, CryptoError> {
    let obj = Object::new();
    for (k, v) in pairs {
        Reflect::set(&obj, &JsValue::from_str(k), v).map_err(err)?;
    }
    Ok(obj)
}

/// The `importKey` algorithm parameter for `alg`.
fn import_params(alg: JwsAlgorithm) -> Result<Object, CryptoError> {
    let hash = JsValue::from_str(hash_name(alg.hash()));
    match alg {
        JwsAlgorithm::Rs256 | JwsAlgorithm::Rs384 | JwsAlgorithm::Rs512 => {
            object(&[("name", "RSASSA-PKCS1-v1_5".into()), ("hash", hash)])
        }
        JwsAlgorithm::Ps256 | JwsAlgorithm::Ps384 | JwsAlgorithm::Ps512 => {
            object(&[("name", "RSA-PSS".into()), ("hash", hash)])
        }
        JwsAlgorithm::Es256 => object(&[("name", "ECDSA".into()), ("namedCurve", "P-256".into())]),
        JwsAlgorithm::Es384 => object(&[("name", "ECDSA".into()), ("namedCurve", "P-384".into())]),
        JwsAlgorithm::EdDsa => object(&[("name", "Ed25519".into())]),
    }
}

/// The `verify` algorithm parameter for `alg` (RFC 7518 §3.5: PSS salt = hash length).
fn verify_params(alg: JwsAlgorithm) -> Result<Object, CryptoError> {
    let hash = JsValue::from_str(hash_name(alg.hash()));
    match alg {
        JwsAlgorithm::Rs256 | JwsAlgorithm::Rs384 | JwsAlgorithm::Rs512 => {
            object(&[("name", "RSASSA-PKCS1-v1_5".into())])
        }
        JwsAlgorithm::Ps256 => object(&[("name", "RSA-PSS".into()), ("saltLength", 32.into())]),
        JwsAlgorithm::Ps384 => object(&[("name", "RSA-PSS".into()), ("saltLength", 48.into())]),
        JwsAlgorithm::Ps512 => object(&[("name", "RSA-PSS".into()), ("saltLength", 64.into())]),
        JwsAlgorithm::Es256 | JwsAlgorithm::Es384 => object(&[("name", "ECDSA".into()), ("hash", hash)]),
        JwsAlgorithm::EdDsa => object(&[("name", "Ed25519".into())]),
    }
}

/// The key material of `jwk` as a JS object, without `alg`, `use` or `key_ops`.
fn key_material(jwk: &Jwk) -> Result<Object, CryptoError> {
    let mut material = serde_json::Map::new();
    material.insert("kty".into(), jwk.kty.clone().into());
    for (name, value) in [("n", &jwk.n), ("e", &jwk.e), ("crv", &jwk.crv), ("x", &jwk.x), ("y", &jwk.y)] {
        if let Some(value) = value {
            material.insert(name.into(), value.clone().into());
        }
    }
    let text = serde_json::Value::Object(material).to_string();
    JSON::parse(&text).map_err(err)?.dyn_into::<Object>().map_err(err)
}

impl SignatureVerifier for EdgePorts {
    type Key = CryptoKey;

    async fn import_key(&self, jwk: &Jwk, alg: JwsAlgorithm) -> Result<CryptoKey, CryptoError> {
        let usages = Array::of1(&JsValue::from_str("verify"));
        let (material, params) = (key_material(jwk)?, import_params(alg)?);
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
            let params = verify_params(alg)?;
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
        let (der, params) = (Uint8Array::from(pkcs8), import_params(alg)?);
        let promise =
            SUBTLE.with(|subtle| subtle.import_key_with_object("pkcs8", &der, &params, false, &usages)).map_err(err)?;
        JsAwait::new(promise).await.map_err(err)?.dyn_into::<CryptoKey>().map_err(err)
    }

    /// `sign` takes the same parameters as `verify`; ECDSA signatures come back as raw `r || s`.
    async fn sign(&self, key: &CryptoKey, alg: JwsAlgorithm, signing_input: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let params = verify_params(alg)?;
        let promise =
            SUBTLE.with(|subtle| subtle.sign_with_object_and_u8_array(&params, key, signing_input)).map_err(err)?;
        Ok(Uint8Array::new(&JsAwait::new(promise).await.map_err(err)?).to_vec())
    }
}
