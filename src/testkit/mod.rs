//! In-memory ports for host tests: deterministic randomness, a settable clock, a KV map that
//! counts reads, and a scripted HTTP client that records every request.
//!
//! Test-only: the module is compiled under `#[cfg(test)]` (see lib.rs), so it may panic freely.

use crate::ports::{Clock, HttpClient, HttpError, IncomingResponse, KvError, KvStore, OutgoingRequest, Rng};
use std::cell::{Cell, RefCell};
use std::collections::HashMap;

pub use futures::executor::block_on;

pub mod idp;
pub mod native_crypto;
pub mod ports;

/// A future that is pending once, so concurrent callers really overlap under `join`.
struct YieldOnce(bool);

impl std::future::Future for YieldOnce {
    type Output = ();
    fn poll(mut self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<()> {
        if self.0 {
            std::task::Poll::Ready(())
        } else {
            self.0 = true;
            cx.waker().wake_by_ref();
            std::task::Poll::Pending
        }
    }
}

/// Give way once, as a real subrequest would.
pub async fn yield_once() {
    YieldOnce(false).await
}

/// Deterministic bytes (xorshift), different per seed.
pub struct FakeRng(Cell<u64>);

impl FakeRng {
    pub fn new(seed: u64) -> Self {
        Self(Cell::new(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1))
    }
}

impl Rng for FakeRng {
    fn fill(&self, buf: &mut [u8]) {
        for b in buf {
            let mut x = self.0.get();
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            self.0.set(x);
            *b = (x >> 24) as u8;
        }
    }
}

/// A clock the test moves by hand.
pub struct FakeClock(Cell<u64>);

impl FakeClock {
    pub fn at_secs(secs: u64) -> Self {
        Self(Cell::new(secs * 1000))
    }
    pub fn advance_secs(&self, secs: u64) {
        self.0.set(self.0.get() + secs * 1000);
    }
}

impl Clock for FakeClock {
    fn now_millis(&self) -> u64 {
        self.0.get()
    }
    /// Gives way once without moving time: waiting in tests costs no (fake) time.
    async fn sleep(&self, _millis: u64) {
        yield_once().await
    }
}

/// KV as a map of key → (value, ttl), counting reads so tests can prove the warm path.
#[derive(Default)]
pub struct FakeKv {
    map: RefCell<HashMap<String, (Vec<u8>, u64)>>,
    reads: Cell<usize>,
    pub fail: Cell<bool>,
    /// Reads give way once before answering, as a real KV read would, so concurrent
    /// requests overlap under `join`.
    pub slow_reads: Cell<bool>,
}

impl FakeKv {
    pub fn entry(&self, key: &str) -> Option<(Vec<u8>, u64)> {
        self.map.borrow().get(key).cloned()
    }
    pub fn reads(&self) -> usize {
        self.reads.get()
    }
    pub fn len(&self) -> usize {
        self.map.borrow().len()
    }
}

impl KvStore for FakeKv {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, KvError> {
        self.reads.set(self.reads.get() + 1);
        if self.slow_reads.get() {
            yield_once().await;
        }
        if self.fail.get() {
            return Err(KvError("injected".into()));
        }
        Ok(self.map.borrow().get(key).map(|(v, _)| v.clone()))
    }
    async fn put(&self, key: &str, value: &[u8], ttl_secs: u64) -> Result<(), KvError> {
        if self.fail.get() {
            return Err(KvError("injected".into()));
        }
        self.map.borrow_mut().insert(key.to_owned(), (value.to_vec(), ttl_secs.max(60)));
        Ok(())
    }
    async fn delete(&self, key: &str) -> Result<(), KvError> {
        self.map.borrow_mut().remove(key);
        Ok(())
    }
    async fn list(&self, prefix: &str) -> Result<Vec<String>, KvError> {
        let mut keys: Vec<String> = self.map.borrow().keys().filter(|k| k.starts_with(prefix)).cloned().collect();
        keys.sort();
        Ok(keys)
    }
}

/// KV alone: no sessions' objects bound.
impl crate::ports::SessionCoordinator for FakeKv {}

type Route = Box<dyn Fn(&OutgoingRequest) -> Result<IncomingResponse, HttpError>>;

/// An HTTP client answering from a routing function and recording each request.
pub struct FakeHttp {
    route: Route,
    pub sent: RefCell<Vec<OutgoingRequest>>,
}

impl FakeHttp {
    pub fn new(route: impl Fn(&OutgoingRequest) -> Result<IncomingResponse, HttpError> + 'static) -> Self {
        Self { route: Box::new(route), sent: RefCell::new(Vec::new()) }
    }
    pub fn count(&self, path: &str) -> usize {
        self.sent.borrow().iter().filter(|r| r.uri().path() == path).count()
    }
}

impl HttpClient for FakeHttp {
    async fn send(&self, request: OutgoingRequest) -> Result<IncomingResponse, HttpError> {
        yield_once().await;
        let answer = (self.route)(&request);
        self.sent.borrow_mut().push(request);
        answer.map(as_the_edge_delivers)
    }
}

/// A provider's answer as the edge hands it to the core: only the headers of
/// [`crate::ports::PROVIDER_RESPONSE_HEADERS`] (so a test of core code that reads another one
/// fails here, as it would in the Worker).
pub fn as_the_edge_delivers(mut response: IncomingResponse) -> IncomingResponse {
    let headers = response.headers_mut();
    let kept: Vec<_> = crate::ports::PROVIDER_RESPONSE_HEADERS
        .iter()
        .flat_map(|name| headers.get_all(name).iter().map(|v| (name.clone(), v.clone())).collect::<Vec<_>>())
        .collect();
    headers.clear();
    for (name, value) in kept {
        headers.append(name, value);
    }
    response
}

/// A JSON response with the given status.
pub fn json_response(status: u16, body: &serde_json::Value) -> IncomingResponse {
    http::Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(serde_json::to_vec(body).unwrap())
        .unwrap()
}
