//! The core's ports on the Workers runtime: `fetch`, Workers KV, `Date.now()`, `crypto.getRandomValues`.
//! Signature verification (`crypto.subtle`) is in `crypto.rs`.

use super::convert::{fetch, js_headers};
use crate::ports::{Clock, HttpClient, HttpError, IncomingResponse, KvError, KvStore, OutgoingRequest, Rng};
use futures::future::{Either, select};
use js_sys::{Array, Uint8Array};
use std::cell::OnceCell;
use std::pin::pin;
use std::time::Duration;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{RequestInit, RequestRedirect};
use worker::{Delay, Env};

/// How long the provider gets to answer one request.
const PROVIDER_TIMEOUT: Duration = Duration::from_secs(10);

/// One value per request, carrying the KV binding.
pub struct EdgePorts {
    env: Env,
    /// The KV binding, looked up on first use: bearer and public requests never touch KV.
    kv: OnceCell<Option<worker::kv::KvStore>>,
    /// The sessions' Durable Object namespace, when bound (looked up on first use).
    objects: OnceCell<Option<wasm_bindgen::JsValue>>,
}

impl EdgePorts {
    pub fn new(env: Env) -> Self {
        Self { env, kv: OnceCell::new(), objects: OnceCell::new() }
    }

    /// The `SESSION_OBJECTS` namespace; `None` when not bound (KV only).
    pub(super) fn session_objects(&self) -> Option<&wasm_bindgen::JsValue> {
        self.objects.get_or_init(|| super::session_object::namespace(&self.env)).as_ref()
    }

    fn kv(&self) -> Result<&worker::kv::KvStore, KvError> {
        self.kv
            .get_or_init(|| self.env.kv(super::SESSIONS_BINDING).ok())
            .as_ref()
            .ok_or_else(|| KvError("the SESSIONS KV binding is missing".into()))
    }
}

async fn send_once(request: OutgoingRequest) -> Result<IncomingResponse, JsValue> {
    let (parts, body) = request.into_parts();
    let init = RequestInit::new();
    init.set_method(parts.method.as_str());
    init.set_headers(&js_headers(&parts.headers)?.into());
    init.set_redirect(RequestRedirect::Manual);
    if !body.is_empty() {
        init.set_body(&Uint8Array::from(body.as_slice()));
    }
    let response = fetch(&parts.uri.to_string(), &init).await?;
    let mut builder = http::Response::builder().status(response.status());
    if let Some(entries) = js_sys::try_iter(&response.headers())? {
        for entry in entries {
            let pair: Array = entry?.unchecked_into();
            if let (Some(name), Some(value)) = (pair.get(0).as_string(), pair.get(1).as_string()) {
                builder = builder.header(name, value);
            }
        }
    }
    let buffer = JsFuture::from(response.array_buffer()?).await?;
    builder.body(Uint8Array::new(&buffer).to_vec()).map_err(|e| JsValue::from_str(&e.to_string()))
}

impl HttpClient for EdgePorts {
    async fn send(&self, request: OutgoingRequest) -> Result<IncomingResponse, HttpError> {
        let fetch = pin!(send_once(request));
        let timeout = pin!(Delay::from(PROVIDER_TIMEOUT));
        match select(fetch, timeout).await {
            Either::Left((result, _)) => {
                result.map_err(|e| HttpError::Network(e.as_string().unwrap_or_else(|| format!("{e:?}"))))
            }
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
