//! Helpers shared by the fuzz targets: a reader that carves typed values out of libFuzzer's
//! bytes, and an `Rng` port fed from those bytes (so a crash reproduces from its input alone).

use edgeguard::jwt::{Jwk, JwsAlgorithm};
use edgeguard::ports::{CryptoError, HttpError, KvError, Rng};
use std::cell::Cell;

/// Reads fields off the front of the fuzz input. Running out yields zeros and empty strings,
/// never a panic, so every input is a valid (if short) case.
pub struct Input<'a> {
    rest: &'a [u8],
}

impl<'a> Input<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Self { rest: data }
    }

    pub fn byte(&mut self) -> u8 {
        let (first, rest) = self.rest.split_first().map_or((0, &[][..]), |(b, r)| (*b, r));
        self.rest = rest;
        first
    }

    pub fn u64(&mut self) -> u64 {
        let mut buf = [0u8; 8];
        for b in &mut buf {
            *b = self.byte();
        }
        u64::from_be_bytes(buf)
    }

    /// Bytes up to the next `\n` (which is consumed), or everything left.
    pub fn line(&mut self) -> &'a [u8] {
        match self.rest.iter().position(|b| *b == b'\n') {
            Some(i) => {
                let (line, rest) = self.rest.split_at(i);
                self.rest = rest.get(1..).unwrap_or_default();
                line
            }
            None => self.rest(),
        }
    }

    /// A line as text (invalid UTF-8 replaced, as a runtime would hand it to us).
    pub fn text_line(&mut self) -> String {
        String::from_utf8_lossy(self.line()).into_owned()
    }

    pub fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.rest)
    }

    pub fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }
}

/// Deterministic "randomness" for the `Rng` port: a counter mixed with a seed from the input.
pub struct FuzzRng {
    state: Cell<u64>,
}

impl FuzzRng {
    pub fn new(seed: u64) -> Self {
        Self { state: Cell::new(seed) }
    }
}

impl Rng for FuzzRng {
    fn fill(&self, buf: &mut [u8]) {
        for b in buf {
            // splitmix64: distinct outputs per call, enough for nonces and ids in a test.
            let mut z = self.state.get().wrapping_add(0x9e37_79b9_7f4a_7c15);
            self.state.set(z);
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            *b = (z ^ (z >> 31)) as u8;
        }
    }
}

/// Ports for a gateway that must decide without the outside world: every fetch, KV call and
/// key import fails (as if the provider and KV were down), the clock stands still and
/// randomness comes from the input. Enough for public routes and every refusal.
pub struct OfflinePorts {
    pub rng: FuzzRng,
    pub now_millis: u64,
}

impl edgeguard::ports::HttpClient for OfflinePorts {
    async fn send(
        &self,
        _: edgeguard::ports::OutgoingRequest,
    ) -> Result<edgeguard::ports::IncomingResponse, HttpError> {
        Err(HttpError::Network("offline (fuzzing)".into()))
    }
}

impl edgeguard::ports::KvStore for OfflinePorts {
    async fn get(&self, _: &str) -> Result<Option<Vec<u8>>, KvError> {
        Err(KvError("offline (fuzzing)".into()))
    }
    async fn put(&self, _: &str, _: &[u8], _: u64) -> Result<(), KvError> {
        Err(KvError("offline (fuzzing)".into()))
    }
    async fn delete(&self, _: &str) -> Result<(), KvError> {
        Err(KvError("offline (fuzzing)".into()))
    }
    async fn list(&self, _: &str) -> Result<Vec<String>, KvError> {
        Err(KvError("offline (fuzzing)".into()))
    }
}

/// No session objects bound: the KV-only design.
impl edgeguard::ports::SessionCoordinator for OfflinePorts {}

impl edgeguard::ports::SignatureVerifier for OfflinePorts {
    type Key = ();
    async fn import_key(&self, _: &Jwk, _: JwsAlgorithm) -> Result<(), CryptoError> {
        Err(CryptoError("offline (fuzzing)".into()))
    }
    async fn verify(&self, _: &(), _: JwsAlgorithm, _: &[u8], _: &[u8]) -> Result<bool, CryptoError> {
        Err(CryptoError("offline (fuzzing)".into()))
    }
}

impl edgeguard::ports::Signer for OfflinePorts {
    type SigningKey = ();
    async fn import_signing_key(&self, _: &[u8], _: JwsAlgorithm) -> Result<(), CryptoError> {
        Err(CryptoError("offline (fuzzing)".into()))
    }
    async fn sign(&self, _: &(), _: JwsAlgorithm, _: &[u8]) -> Result<Vec<u8>, CryptoError> {
        Err(CryptoError("offline (fuzzing)".into()))
    }
}

impl edgeguard::ports::Clock for OfflinePorts {
    fn now_millis(&self) -> u64 {
        self.now_millis
    }
    async fn sleep(&self, _: u64) {}
}

impl Rng for OfflinePorts {
    fn fill(&self, buf: &mut [u8]) {
        self.rng.fill(buf)
    }
}
