//! Every port in one value for pipeline tests: an HTTP fake of the test's choosing, KV, clock,
//! randomness and the native signature verifier.
//!
//! Test-only: the module is compiled under `#[cfg(test)]` (see lib.rs), so it may panic freely.

use super::native_crypto::{NativeKey, NativeVerifier, ScriptedHttp, TestKey};
use super::{FakeClock, FakeKv, FakeRng};
use crate::jwt::{Jwk, JwsAlgorithm};
use crate::ports::{
    Clock, CryptoError, HttpClient, HttpError, IncomingResponse, KvError, KvStore, OutgoingRequest, Rng,
    SignatureVerifier, Signer,
};

pub struct TestPorts<H = ScriptedHttp> {
    pub http: H,
    pub kv: FakeKv,
    pub clock: FakeClock,
    pub rng: FakeRng,
    pub crypto: NativeVerifier,
    /// Sessions' objects (`SESSION_OBJECTS`); unbound unless a test sets `objects.bound`.
    pub objects: crate::store::coordinator::fake::FakeObjects,
}

impl<H> TestPorts<H> {
    pub fn new(http: H, now_secs: u64) -> Self {
        Self {
            http,
            kv: FakeKv::default(),
            clock: FakeClock::at_secs(now_secs),
            rng: FakeRng::new(42),
            crypto: NativeVerifier::default(),
            objects: Default::default(),
        }
    }
}

impl TestPorts<ScriptedHttp> {
    /// Ports whose HTTP answers come from a script, at `secs`.
    pub fn at_secs(secs: u64) -> Self {
        Self::new(ScriptedHttp::default(), secs)
    }
}

impl<H: HttpClient> HttpClient for TestPorts<H> {
    async fn send(&self, request: OutgoingRequest) -> Result<IncomingResponse, HttpError> {
        self.http.send(request).await
    }
}

impl<H> KvStore for TestPorts<H> {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, KvError> {
        self.kv.get(key).await
    }
    async fn put(&self, key: &str, value: &[u8], ttl: u64) -> Result<(), KvError> {
        self.kv.put(key, value, ttl).await
    }
    async fn delete(&self, key: &str) -> Result<(), KvError> {
        self.kv.delete(key).await
    }
    async fn list(&self, prefix: &str) -> Result<Vec<String>, KvError> {
        self.kv.list(prefix).await
    }
}

impl<H> crate::ports::SessionCoordinator for TestPorts<H> {
    async fn ask_session_object(
        &self,
        session_hash: &str,
        call: &crate::store::ObjectCall,
    ) -> Result<Option<crate::store::ObjectAnswer>, KvError> {
        self.objects.ask(&self.clock, session_hash, call).await
    }
}

impl<H> SignatureVerifier for TestPorts<H> {
    type Key = NativeKey;
    async fn import_key(&self, jwk: &Jwk, alg: JwsAlgorithm) -> Result<NativeKey, CryptoError> {
        self.crypto.import_key(jwk, alg).await
    }
    async fn verify(&self, key: &NativeKey, alg: JwsAlgorithm, input: &[u8], sig: &[u8]) -> Result<bool, CryptoError> {
        self.crypto.verify(key, alg, input, sig).await
    }
}

impl<H> Signer for TestPorts<H> {
    type SigningKey = std::rc::Rc<TestKey>;
    async fn import_signing_key(&self, pkcs8: &[u8], alg: JwsAlgorithm) -> Result<Self::SigningKey, CryptoError> {
        TestKey::from_pkcs8(pkcs8, alg).map(std::rc::Rc::new)
    }
    async fn sign(&self, key: &Self::SigningKey, alg: JwsAlgorithm, input: &[u8]) -> Result<Vec<u8>, CryptoError> {
        Ok(key.sign(alg, input))
    }
}

impl<H> Clock for TestPorts<H> {
    fn now_millis(&self) -> u64 {
        self.clock.now_millis()
    }
    async fn sleep(&self, millis: u64) {
        self.clock.sleep(millis).await
    }
}

impl<H> Rng for TestPorts<H> {
    fn fill(&self, buf: &mut [u8]) {
        self.rng.fill(buf)
    }
}
