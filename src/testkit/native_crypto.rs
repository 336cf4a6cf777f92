//! Host-test stand-ins for the edge: a `ring`-backed [`SignatureVerifier`] that behaves like
//! Web Crypto (a key is bound to the one algorithm it was imported for), signing helpers that
//! mint tokens in-test, and small scripted fakes for [`HttpClient`] and [`Clock`].
//!
//! RSA test keys are PKCS#8 fixtures made once with `openssl genpkey` (ring cannot generate
//! RSA keys); EC and Ed25519 keys are generated per test run.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]
//!
//! Test-only: the module is compiled under `#[cfg(test)]` (see lib.rs), so it may panic freely.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::rc::Rc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::rand::SystemRandom;
use ring::rsa::PublicKeyComponents;
use ring::signature::{self, EcdsaKeyPair, Ed25519KeyPair, KeyPair, RsaKeyPair};
use serde_json::{Value, json};

use crate::jwt::{Jwk, JwsAlgorithm, KeyFamily};
use crate::ports::{CryptoError, HttpClient, HttpError, IncomingResponse, OutgoingRequest, SignatureVerifier};

const RSA_A: &[u8] = include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/keys/rsa2048-a.pk8"));
const RSA_B: &[u8] = include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/keys/rsa2048-b.pk8"));

// ---------------------------------------------------------------------------------------------
// Verifier

/// Verifies JWS signatures with `ring`, counting imports and verifications so tests can prove
/// key caching and verified-token caching.
#[derive(Default)]
pub struct NativeVerifier {
    imports: Cell<usize>,
    verifications: Cell<usize>,
}

impl NativeVerifier {
    pub fn imports(&self) -> usize {
        self.imports.get()
    }

    pub fn verifications(&self) -> usize {
        self.verifications.get()
    }
}

/// An imported public key, bound to one algorithm as a Web Crypto `CryptoKey` is.
#[derive(Debug, Clone)]
pub struct NativeKey {
    alg: JwsAlgorithm,
    material: Rc<Material>,
}

#[derive(Debug)]
enum Material {
    Rsa {
        n: Vec<u8>,
        e: Vec<u8>,
    },
    /// Uncompressed EC point `0x04 || x || y`, or the raw Ed25519 public key.
    Raw(Vec<u8>),
}

fn b64_member(value: &Option<String>, name: &str) -> Result<Vec<u8>, CryptoError> {
    let text = value.as_deref().ok_or_else(|| CryptoError(format!("{name} missing")))?;
    URL_SAFE_NO_PAD.decode(text).map_err(|_| CryptoError(format!("{name} not base64url")))
}

impl SignatureVerifier for NativeVerifier {
    type Key = NativeKey;

    async fn import_key(&self, jwk: &Jwk, alg: JwsAlgorithm) -> Result<NativeKey, CryptoError> {
        self.imports.set(self.imports.get() + 1);
        let material = match alg.key_family() {
            KeyFamily::Rsa if jwk.kty == "RSA" => {
                Material::Rsa { n: b64_member(&jwk.n, "n")?, e: b64_member(&jwk.e, "e")? }
            }
            KeyFamily::Ec(crv) if jwk.kty == "EC" && jwk.crv.as_deref() == Some(crv) => {
                let (x, y) = (b64_member(&jwk.x, "x")?, b64_member(&jwk.y, "y")?);
                let size = if crv == "P-256" { 32 } else { 48 };
                if x.len() != size || y.len() != size {
                    return Err(CryptoError("bad coordinate length".into()));
                }
                Material::Raw([&[4u8][..], &x, &y].concat())
            }
            KeyFamily::Okp if jwk.kty == "OKP" && jwk.crv.as_deref() == Some("Ed25519") => {
                Material::Raw(b64_member(&jwk.x, "x")?)
            }
            _ => return Err(CryptoError(format!("key does not fit {alg}"))),
        };
        Ok(NativeKey { alg, material: Rc::new(material) })
    }

    async fn verify(
        &self,
        key: &NativeKey,
        alg: JwsAlgorithm,
        signing_input: &[u8],
        sig: &[u8],
    ) -> Result<bool, CryptoError> {
        self.verifications.set(self.verifications.get() + 1);
        if key.alg != alg {
            return Err(CryptoError("key imported for another algorithm".into()));
        }
        let ok = match (&*key.material, alg) {
            (Material::Rsa { n, e }, _) => {
                let params: &signature::RsaParameters = match alg {
                    JwsAlgorithm::Rs256 => &signature::RSA_PKCS1_2048_8192_SHA256,
                    JwsAlgorithm::Rs384 => &signature::RSA_PKCS1_2048_8192_SHA384,
                    JwsAlgorithm::Rs512 => &signature::RSA_PKCS1_2048_8192_SHA512,
                    JwsAlgorithm::Ps256 => &signature::RSA_PSS_2048_8192_SHA256,
                    JwsAlgorithm::Ps384 => &signature::RSA_PSS_2048_8192_SHA384,
                    JwsAlgorithm::Ps512 => &signature::RSA_PSS_2048_8192_SHA512,
                    _ => return Err(CryptoError("RSA key with non-RSA alg".into())),
                };
                PublicKeyComponents { n, e }.verify(params, signing_input, sig).is_ok()
            }
            (Material::Raw(raw), _) => {
                let algorithm: &dyn signature::VerificationAlgorithm = match alg {
                    JwsAlgorithm::Es256 => &signature::ECDSA_P256_SHA256_FIXED,
                    JwsAlgorithm::Es384 => &signature::ECDSA_P384_SHA384_FIXED,
                    JwsAlgorithm::EdDsa => &signature::ED25519,
                    _ => return Err(CryptoError("raw key with RSA alg".into())),
                };
                signature::UnparsedPublicKey::new(algorithm, raw).verify(signing_input, sig).is_ok()
            }
        };
        Ok(ok)
    }
}

// ---------------------------------------------------------------------------------------------
// Signing

/// A private key that mints test tokens.
pub enum TestKey {
    Rsa(RsaKeyPair),
    Ec(EcdsaKeyPair, JwsAlgorithm),
    Ed(Ed25519KeyPair),
}

pub fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

impl TestKey {
    /// First RSA 2048 fixture.
    pub fn rsa_a() -> Self {
        Self::Rsa(RsaKeyPair::from_pkcs8(RSA_A).unwrap())
    }
    /// Second, unrelated RSA 2048 fixture.
    pub fn rsa_b() -> Self {
        Self::Rsa(RsaKeyPair::from_pkcs8(RSA_B).unwrap())
    }
    pub fn es256() -> Self {
        Self::ec(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, JwsAlgorithm::Es256)
    }
    pub fn es384() -> Self {
        Self::ec(&signature::ECDSA_P384_SHA384_FIXED_SIGNING, JwsAlgorithm::Es384)
    }
    /// A fresh ES256 key and its PKCS#8 PEM (as an operator would store it).
    pub fn es256_with_pem() -> (Self, String) {
        let alg = &signature::ECDSA_P256_SHA256_FIXED_SIGNING;
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(alg, &rng).unwrap();
        let key = Self::Ec(EcdsaKeyPair::from_pkcs8(alg, pkcs8.as_ref(), &rng).unwrap(), JwsAlgorithm::Es256);
        (key, pem(pkcs8.as_ref()))
    }
    /// A signing key from PKCS#8 DER, for the algorithm it will sign with.
    pub fn from_pkcs8(der: &[u8], alg: JwsAlgorithm) -> Result<Self, CryptoError> {
        let rng = SystemRandom::new();
        match alg.key_family() {
            KeyFamily::Rsa => RsaKeyPair::from_pkcs8(der).map(Self::Rsa).map_err(|e| CryptoError(e.to_string())),
            KeyFamily::Ec("P-256") => EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, der, &rng)
                .map(|k| Self::Ec(k, alg))
                .map_err(|e| CryptoError(e.to_string())),
            _ => Err(CryptoError(format!("cannot sign {alg}"))),
        }
    }
    fn ec(alg: &'static signature::EcdsaSigningAlgorithm, jws: JwsAlgorithm) -> Self {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(alg, &rng).unwrap();
        Self::Ec(EcdsaKeyPair::from_pkcs8(alg, pkcs8.as_ref(), &rng).unwrap(), jws)
    }
    pub fn ed25519() -> Self {
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).unwrap();
        Self::Ed(Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap())
    }

    /// The public JWK with the given `kid` (none if empty).
    pub fn jwk(&self, kid: &str) -> Value {
        let mut jwk = match self {
            Self::Rsa(pair) => {
                let c: PublicKeyComponents<Vec<u8>> = pair.public().into();
                json!({"kty": "RSA", "n": b64(&c.n), "e": b64(&c.e)})
            }
            Self::Ec(pair, alg) => {
                let point = pair.public_key().as_ref();
                let size = (point.len() - 1) / 2;
                let crv = if *alg == JwsAlgorithm::Es256 { "P-256" } else { "P-384" };
                json!({"kty": "EC", "crv": crv, "x": b64(&point[1..=size]),
                       "y": b64(&point[size + 1..])})
            }
            Self::Ed(pair) => {
                json!({"kty": "OKP", "crv": "Ed25519", "x": b64(pair.public_key().as_ref())})
            }
        };
        if !kid.is_empty() {
            jwk["kid"] = json!(kid);
        }
        jwk
    }

    /// A JOSE signature over `msg`.
    pub fn sign(&self, alg: JwsAlgorithm, msg: &[u8]) -> Vec<u8> {
        let rng = SystemRandom::new();
        match self {
            Self::Rsa(pair) => {
                let padding: &dyn signature::RsaEncoding = match alg {
                    JwsAlgorithm::Rs256 => &signature::RSA_PKCS1_SHA256,
                    JwsAlgorithm::Rs384 => &signature::RSA_PKCS1_SHA384,
                    JwsAlgorithm::Rs512 => &signature::RSA_PKCS1_SHA512,
                    JwsAlgorithm::Ps256 => &signature::RSA_PSS_SHA256,
                    JwsAlgorithm::Ps384 => &signature::RSA_PSS_SHA384,
                    JwsAlgorithm::Ps512 => &signature::RSA_PSS_SHA512,
                    other => panic!("RSA key cannot sign {other}"),
                };
                let mut sig = vec![0; pair.public().modulus_len()];
                pair.sign(padding, &rng, msg, &mut sig).unwrap();
                sig
            }
            Self::Ec(pair, _) => pair.sign(&rng, msg).unwrap().as_ref().to_vec(),
            Self::Ed(pair) => pair.sign(msg).as_ref().to_vec(),
        }
    }
}

/// PKCS#8 DER as a PEM `PRIVATE KEY` block.
pub fn pem(der: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    format!("-----BEGIN PRIVATE KEY-----\n{b64}\n-----END PRIVATE KEY-----\n")
}

/// The first RSA fixture as PEM.
pub fn rsa_a_pem() -> String {
    pem(RSA_A)
}

/// A compact JWS over raw header and payload text (so tests can write duplicate members).
pub fn sign_raw(key: &TestKey, alg: JwsAlgorithm, header: &str, payload: &str) -> String {
    let input = format!("{}.{}", b64(header.as_bytes()), b64(payload.as_bytes()));
    let sig = key.sign(alg, input.as_bytes());
    format!("{input}.{}", b64(&sig))
}

/// A compact JWS; the algorithm is read from the header's `alg`.
pub fn sign_token(key: &TestKey, header: &Value, claims: &Value) -> String {
    let alg: JwsAlgorithm = header["alg"].as_str().unwrap().parse().unwrap();
    sign_raw(key, alg, &header.to_string(), &claims.to_string())
}

/// A JWKS document from JWK values.
pub fn jwks_doc(keys: &[Value]) -> Vec<u8> {
    serde_json::to_vec(&json!({ "keys": keys })).unwrap()
}

// ---------------------------------------------------------------------------------------------
// Ports

type Answer = Result<IncomingResponse, HttpError>;

/// An HTTP client that answers from a script (then repeats a default), counting requests.
/// Every answer takes one extra poll, as a real fetch would.
#[derive(Default)]
pub struct ScriptedHttp {
    script: RefCell<VecDeque<Answer>>,
    default: RefCell<Option<Answer>>,
    calls: Cell<usize>,
}

impl ScriptedHttp {
    /// Answer the next request with this.
    pub fn then(&self, answer: Answer) -> &Self {
        self.script.borrow_mut().push_back(answer);
        self
    }
    /// Answer with this whenever the script is empty.
    pub fn always(&self, answer: Answer) {
        *self.default.borrow_mut() = Some(answer);
    }
    pub fn calls(&self) -> usize {
        self.calls.get()
    }
}

impl HttpClient for ScriptedHttp {
    async fn send(&self, _request: OutgoingRequest) -> Answer {
        self.calls.set(self.calls.get() + 1);
        super::yield_once().await;
        let next = self.script.borrow_mut().pop_front();
        let answer = next.or_else(|| self.default.borrow().clone());
        answer.unwrap_or(Err(HttpError::Network("no scripted answer".into()))).map(super::as_the_edge_delivers)
    }
}

/// A JWKS HTTP answer.
pub fn jwks_response(status: u16, body: Vec<u8>, cache_control: Option<&str>) -> Answer {
    let mut builder = http::Response::builder().status(status);
    if let Some(cc) = cache_control {
        builder = builder.header("cache-control", cc);
    }
    Ok(builder.body(body).unwrap())
}
