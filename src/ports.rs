//! The core's only doors to the world. The edge implements them with workers-rs (`Fetch`, KV,
//! `crypto.subtle`, `Date.now()`, `crypto.getRandomValues`); host tests implement them with
//! in-memory fakes and a native crypto backend, so every protocol rule runs under `cargo test`.
//!
//! Futures are not `Send`: Worker futures live on one JS thread.
#![allow(async_fn_in_trait)]

use crate::jwt::{Jwk, JwsAlgorithm};

/// An outgoing HTTP request to the identity provider (discovery, JWKS, token endpoint).
pub type OutgoingRequest = http::Request<Vec<u8>>;
/// The provider's answer, body fully read, with the headers of [`PROVIDER_RESPONSE_HEADERS`].
pub type IncomingResponse = http::Response<Vec<u8>>;

/// The only headers of a provider's answer the core reads (the JWKS cache lifetime), so the
/// only ones an [`HttpClient`] must carry over. A fixed list of constants rather than every
/// header by its name as text: `http` parses a text name through a matcher of all standard
/// names (12 KB of wasm). Reading another header means adding it here.
pub const PROVIDER_RESPONSE_HEADERS: [http::HeaderName; 2] = [http::header::CACHE_CONTROL, http::header::AGE];

/// Why an outgoing request produced no HTTP answer at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HttpError {
    /// The connection failed or the runtime refused the request.
    #[error("network error: {0}")]
    Network(String),
    /// No answer within the time allowed.
    #[error("timed out")]
    Timeout,
}

/// Sends HTTP requests to the identity provider.
pub trait HttpClient {
    async fn send(&self, request: OutgoingRequest) -> Result<IncomingResponse, HttpError>;
}

/// A KV store failure (the binding is missing, the runtime threw, a limit was hit).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("key-value store error: {0}")]
pub struct KvError(pub String);

/// Workers KV: eventually consistent, one write per key per second, TTL at least 60 s.
pub trait KvStore {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, KvError>;
    /// Store `value` under `key`, expiring after `ttl_secs` (raised to KV's 60 s minimum).
    async fn put(&self, key: &str, value: &[u8], ttl_secs: u64) -> Result<(), KvError>;
    async fn delete(&self, key: &str) -> Result<(), KvError>;
    /// Names of the keys that start with `prefix` (eventually consistent, like reads).
    async fn list(&self, prefix: &str) -> Result<Vec<String>, KvError>;
}

/// Why a key could not be imported or a signature could not be checked (not "signature invalid":
/// that is `Ok(false)`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("crypto error: {0}")]
pub struct CryptoError(pub String);

/// Public-key signature verification: `crypto.subtle` on wasm, a native backend in host tests.
/// Asymmetric only: the gateway never verifies provider tokens with shared secrets.
pub trait SignatureVerifier {
    /// An imported key, bound to one algorithm (Web Crypto keys are), cheap to clone.
    type Key: Clone;
    /// Import a public JWK for use with exactly one algorithm.
    async fn import_key(&self, jwk: &Jwk, alg: JwsAlgorithm) -> Result<Self::Key, CryptoError>;
    /// Check a JWS signature (JOSE encoding: raw `r || s` for ECDSA) over `signing_input`.
    async fn verify(
        &self,
        key: &Self::Key,
        alg: JwsAlgorithm,
        signing_input: &[u8],
        signature: &[u8],
    ) -> Result<bool, CryptoError>;
}

/// JWS signing with the gateway's own private keys (client assertions, user assertions):
/// `crypto.subtle.importKey("pkcs8")` + `sign` on wasm, `ring` in host tests.
pub trait Signer {
    /// An imported private key, bound to one algorithm, cheap to clone.
    type SigningKey: Clone;
    /// Import a PKCS#8 DER private key for signing with `alg` (RS256, PS256 or ES256).
    async fn import_signing_key(&self, pkcs8: &[u8], alg: JwsAlgorithm) -> Result<Self::SigningKey, CryptoError>;
    /// A JWS signature (raw `r || s` for ECDSA) over `signing_input`.
    async fn sign(
        &self,
        key: &Self::SigningKey,
        alg: JwsAlgorithm,
        signing_input: &[u8],
    ) -> Result<Vec<u8>, CryptoError>;
}

/// Wall-clock time as an input, so every expiry rule is testable without sleeping.
pub trait Clock {
    /// Milliseconds since the Unix epoch.
    fn now_millis(&self) -> u64;
    /// Whole seconds since the Unix epoch.
    fn now_secs(&self) -> u64 {
        self.now_millis() / 1000
    }
    /// Wait about `millis` on this request's own timer (used only to wait for work another
    /// request in the isolate is doing).
    async fn sleep(&self, millis: u64);
}

/// Cryptographically secure randomness as an input.
pub trait Rng {
    fn fill(&self, buf: &mut [u8]);
}

pub use crate::store::SessionCoordinator;

/// Everything the request pipeline needs from the world, implemented by one value per runtime.
pub trait Ports: HttpClient + KvStore + SessionCoordinator + SignatureVerifier + Signer + Clock + Rng {}

impl<T: HttpClient + KvStore + SessionCoordinator + SignatureVerifier + Signer + Clock + Rng> Ports for T {}
