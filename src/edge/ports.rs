//! The core's ports on workers-rs: `Fetch`, Workers KV, `Date.now()`, `crypto.getRandomValues`.
//! Signature verification (`crypto.subtle`) is in `crypto.rs`.

use super::convert::worker_headers;
use crate::ports::{Clock, HttpClient, HttpError, IncomingResponse, KvError, KvStore, OutgoingRequest, Rng};
use futures::future::{Either, select};
use std::pin::pin;
use std::time::Duration;
use worker::{Delay, Fetch, Method, Request, RequestInit, RequestRedirect};

/// How long the provider gets to answer one request.
const PROVIDER_TIMEOUT: Duration = Duration::from_secs(10);

/// One value per request, carrying the KV binding.
pub struct EdgePorts {
    kv: Option<worker::kv::KvStore>,
}

impl EdgePorts {
    pub fn new(kv: Option<worker::kv::KvStore>) -> Self {
        Self { kv }
    }

    fn kv(&self) -> Result<&worker::kv::KvStore, KvError> {
        self.kv.as_ref().ok_or_else(|| KvError("the SESSIONS KV binding is missing".into()))
    }
}

fn method(m: &http::Method) -> Method {
    Method::from(m.as_str().to_owned())
}

async fn send_once(request: OutgoingRequest) -> worker::Result<IncomingResponse> {
    let (parts, body) = request.into_parts();
    let mut init = RequestInit::new();
    init.with_method(method(&parts.method))
        .with_headers(worker_headers(&parts.headers)?)
        .with_redirect(RequestRedirect::Manual);
    if !body.is_empty() {
        init.with_body(Some(js_sys::Uint8Array::from(body.as_slice()).into()));
    }
    let req = Request::new_with_init(&parts.uri.to_string(), &init)?;
    let mut resp = Fetch::Request(req).send().await?;
    let mut builder = http::Response::builder().status(resp.status_code());
    for (name, value) in resp.headers().entries() {
        builder = builder.header(name, value);
    }
    let bytes = resp.bytes().await?;
    builder.body(bytes).map_err(|e| worker::Error::RustError(e.to_string()))
}

impl HttpClient for EdgePorts {
    async fn send(&self, request: OutgoingRequest) -> Result<IncomingResponse, HttpError> {
        let fetch = pin!(send_once(request));
        let timeout = pin!(Delay::from(PROVIDER_TIMEOUT));
        match select(fetch, timeout).await {
            Either::Left((result, _)) => result.map_err(|e| HttpError::Network(e.to_string())),
            Either::Right(_) => Err(HttpError::Timeout),
        }
    }
}

impl KvStore for EdgePorts {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, KvError> {
        self.kv()?.get(key).bytes().await.map_err(|e| KvError(e.to_string()))
    }

    async fn put(&self, key: &str, value: &[u8], ttl_secs: u64) -> Result<(), KvError> {
        self.kv()?
            .put_bytes(key, value)
            .map_err(|e| KvError(e.to_string()))?
            .expiration_ttl(ttl_secs.max(60))
            .execute()
            .await
            .map_err(|e| KvError(e.to_string()))
    }

    async fn delete(&self, key: &str) -> Result<(), KvError> {
        self.kv()?.delete(key).await.map_err(|e| KvError(e.to_string()))
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>, KvError> {
        let kv = self.kv()?;
        let mut names = Vec::new();
        let mut cursor: Option<String> = None;
        // A user's sessions fit in one page (1,000 keys); a few pages bound the work anyway.
        for _ in 0..5 {
            let mut request = kv.list().prefix(prefix.to_owned());
            if let Some(c) = cursor.take() {
                request = request.cursor(c);
            }
            let page = request.execute().await.map_err(|e| KvError(e.to_string()))?;
            names.extend(page.keys.into_iter().map(|k| k.name));
            match page.cursor {
                Some(c) if !page.list_complete => cursor = Some(c),
                _ => break,
            }
        }
        Ok(names)
    }
}

impl Clock for EdgePorts {
    fn now_millis(&self) -> u64 {
        js_sys::Date::now() as u64
    }

    async fn sleep(&self, millis: u64) {
        Delay::from(Duration::from_millis(millis)).await
    }
}

impl Rng for EdgePorts {
    fn fill(&self, buf: &mut [u8]) {
        super::crypto::fill_random(buf);
    }
}
