//! The core's ports on the Workers runtime: `fetch`, Workers KV, `Date.now()`, `crypto.getRandomValues`.
//! Signature verification (`crypto.subtle`) is in `crypto.rs`.

use super::convert::{fetch, js_headers};
use crate::config::bindings::SESSIONS_BINDING;
use crate::ports::{
    Clock, HttpClient, HttpError, IncomingResponse, KvError, KvStore, OutgoingRequest, PROVIDER_RESPONSE_HEADERS, Rng,
};
use futures::future::{Either, select};
use js_sys::{Array, Object, Promise, Reflect, Uint8Array};
use std::cell::OnceCell;
use std::pin::pin;
use std::time::Duration;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;
use web_sys::{RequestInit, RequestRedirect};
use worker::{Delay, Env};

/// How long the provider gets to answer one request.
const PROVIDER_TIMEOUT: Duration = Duration::from_secs(10);

#[wasm_bindgen]
extern "C" {
    /// A Workers KV namespace binding, called directly rather than through workers-rs'
    /// `KvStore`: its builders read list pages through serde-wasm-bindgen, which alone was
    /// ~10 KB of the wasm for four calls that need no conversion but bytes and key names.
    pub type KvNamespace;

    #[wasm_bindgen(method, catch)]
    fn get(this: &KvNamespace, key: &str, kind: &str) -> Result<Promise, JsValue>;

    #[wasm_bindgen(method, catch)]
    fn put(this: &KvNamespace, key: &str, value: &Uint8Array, options: &Object) -> Result<Promise, JsValue>;

    #[wasm_bindgen(method, catch)]
    fn delete(this: &KvNamespace, key: &str) -> Result<Promise, JsValue>;

    #[wasm_bindgen(method, catch)]
    fn list(this: &KvNamespace, options: &Object) -> Result<Promise, JsValue>;
}

/// The KV namespace bound as `name`, if `env` has one (an object with a `get` method).
pub fn kv_namespace(env: &Env, name: &str) -> Option<KvNamespace> {
    let binding = Reflect::get(env.as_ref(), &JsValue::from_str(name)).ok()?;
    let get = Reflect::get(&binding, &JsValue::from_str("get")).ok()?;
    get.is_function().then(|| binding.unchecked_into())
}

/// One value per request, carrying the KV binding.
pub struct EdgePorts {
    env: Env,
    /// The KV binding, looked up on first use: bearer and public requests never touch KV.
    kv: OnceCell<Option<KvNamespace>>,
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

    fn kv(&self) -> Result<&KvNamespace, KvError> {
        self.kv
            .get_or_init(|| kv_namespace(&self.env, SESSIONS_BINDING))
            .as_ref()
            .ok_or_else(|| KvError("the SESSIONS KV binding is missing".into()))
    }
}

/// A KV call's outcome: the promise's value, or the runtime's reason as a [`KvError`].
async fn settle(call: Result<Promise, JsValue>) -> Result<JsValue, KvError> {
    let kv_error = |e: JsValue| {
        let message = Reflect::get(&e, &JsValue::from_str("message")).ok().and_then(|m| m.as_string());
        KvError(message.or_else(|| e.as_string()).unwrap_or_else(|| format!("{e:?}")))
    };
    JsFuture::from(call.map_err(kv_error)?).await.map_err(kv_error)
}

/// `object` with `name` set to `value` (KV's options).
fn with(object: Object, name: &str, value: &JsValue) -> Object {
    let _ = Reflect::set(&object, &JsValue::from_str(name), value);
    object
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
    let headers = response.headers();
    for name in PROVIDER_RESPONSE_HEADERS {
        if let Some(value) = headers.get(name.as_str())? {
            builder = builder.header(name, value);
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
        let value = settle(self.kv()?.get(key, "arrayBuffer")).await?;
        Ok((!value.is_null() && !value.is_undefined()).then(|| Uint8Array::new(&value).to_vec()))
    }

    async fn put(&self, key: &str, value: &[u8], ttl_secs: u64) -> Result<(), KvError> {
        let options = with(Object::new(), "expirationTtl", &JsValue::from(ttl_secs.max(60) as f64));
        settle(self.kv()?.put(key, &Uint8Array::from(value), &options)).await.map(drop)
    }

    async fn delete(&self, key: &str) -> Result<(), KvError> {
        settle(self.kv()?.delete(key)).await.map(drop)
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>, KvError> {
        let kv = self.kv()?;
        let mut names = Vec::new();
        let mut cursor = JsValue::UNDEFINED;
        // A user's sessions fit in one page (1,000 keys); a few pages bound the work anyway.
        for _ in 0..5 {
            let mut options = with(Object::new(), "prefix", &JsValue::from_str(prefix));
            if !cursor.is_undefined() {
                options = with(options, "cursor", &cursor);
            }
            let page = settle(kv.list(&options)).await?;
            let field = |name: &str| Reflect::get(&page, &JsValue::from_str(name)).unwrap_or(JsValue::UNDEFINED);
            let keys: Array = field("keys").dyn_into().map_err(|_| KvError("a KV list page without keys".into()))?;
            names
                .extend(keys.iter().filter_map(|key| Reflect::get(&key, &JsValue::from_str("name")).ok()?.as_string()));
            cursor = field("cursor");
            if field("list_complete").as_bool() != Some(false) || cursor.as_string().is_none_or(|c| c.is_empty()) {
                break;
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
