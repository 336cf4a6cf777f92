//! Between the runtime's `Request`/`Response` and the core's types, and the origin fetch.
//!
//! This works on `web_sys` types directly rather than workers-rs' wrappers: those convert every
//! request and response (headers, `cf` object, body) on the way in and out, which measured as
//! the bulk of the Worker's per-request CPU. Here the JS entry lists the header names once,
//! the core's decision headers are read by name, and the origin request is a copy of the
//! client's headers with a few edits.

use super::trampoline::JsAwait;
use crate::config::bindings::WorkerBindings;
use crate::gateway::entry::RequestRuntime;
use crate::gateway::{DecisionLog, ForwardPlan, IncomingRequest, MAX_FORM_BYTES, RequestHeaders};
use crate::proxy::answer_edits;
use js_sys::{Array, Promise, Reflect, Uint8Array};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;
use web_sys::{Headers, Request, RequestInit, RequestRedirect, Response, ResponseInit};
use worker::Env;

#[wasm_bindgen]
extern "C" {
    /// The runtime's global `fetch(url, init)` (cheaper than building a `Request` first).
    #[wasm_bindgen(js_name = fetch)]
    fn global_fetch(url: &str, init: &RequestInit) -> Promise;

    /// `Headers`, for the one method web-sys lacks.
    #[wasm_bindgen(js_name = Headers)]
    type SetCookieHeaders;

    /// A Worker binding with a `fetch` method (`env.ASSETS`, a service binding).
    type Fetcher;

    #[wasm_bindgen(method, js_name = fetch)]
    fn binding_fetch(this: &Fetcher, url: &str, init: &RequestInit) -> Promise;

    /// The Workers rate-limiting binding (`[[ratelimits]]`).
    type RateLimiter;

    #[wasm_bindgen(method, catch, js_name = limit)]
    fn limit(this: &RateLimiter, options: &JsValue) -> Result<Promise, JsValue>;

    /// `Headers.getSetCookie()`: each `Set-Cookie` on its own (they cannot be comma-joined).
    #[wasm_bindgen(method, js_name = getSetCookie)]
    fn get_set_cookie(this: &SetCookieHeaders) -> Array;
}

/// Send a request with the runtime's `fetch`.
pub async fn fetch(url: &str, init: &RequestInit) -> Result<Response, JsValue> {
    JsFuture::from(global_fetch(url, init)).await?.dyn_into::<Response>()
}

/// The binding `name` of `env`, when it is one with a `fetch` method.
fn fetcher(env: &Env, name: &str) -> Option<Fetcher> {
    let binding = Reflect::get(env.as_ref(), &JsValue::from_str(name)).ok()?;
    let fetch = Reflect::get(&binding, &JsValue::from_str("fetch")).ok()?;
    fetch.is_function().then(|| binding.unchecked_into())
}

/// One request's runtime, for the core's `gateway::entry`.
pub struct Runtime<'a> {
    pub req: &'a Request,
    pub env: &'a Env,
}

impl RequestRuntime for Runtime<'_> {
    type Error = JsValue;

    /// The client's address, as Cloudflare tells it (`CF-Connecting-IP`).
    fn client_ip(&self) -> Option<String> {
        self.req.headers().get("cf-connecting-ip").ok().flatten()
    }

    /// `true` when the binding is absent (the endpoints' optional one; a route's is checked at
    /// start-up), and when it fails.
    async fn within_limit(&self, binding: &str, key: &str) -> bool {
        let Ok(binding) = Reflect::get(self.env.as_ref(), &JsValue::from_str(binding)) else {
            return true;
        };
        if !Reflect::get(&binding, &JsValue::from_str("limit")).is_ok_and(|f| f.is_function()) {
            return true;
        }
        let options = js_sys::Object::new();
        if Reflect::set(&options, &JsValue::from_str("key"), &JsValue::from_str(key)).is_err() {
            return true;
        }
        let Ok(counted) = binding.unchecked_into::<RateLimiter>().limit(&options) else {
            return true;
        };
        match JsAwait::new(counted).await {
            Ok(outcome) => {
                Reflect::get(&outcome, &JsValue::from_str("success")).ok().and_then(|v| v.as_bool()) != Some(false)
            }
            Err(_) => true,
        }
    }

    /// Read with a running cap: `None` as soon as it passes [`MAX_FORM_BYTES`] (the stream is
    /// cancelled, never buffered whole).
    async fn read_form(&self) -> Result<Option<Vec<u8>>, JsValue> {
        let Some(stream) = self.req.body() else {
            return Ok(Some(Vec::new()));
        };
        let reader: web_sys::ReadableStreamDefaultReader = stream.get_reader().unchecked_into();
        let mut body = Vec::new();
        loop {
            let chunk = JsFuture::from(reader.read()).await?;
            if Reflect::get(&chunk, &"done".into())?.as_bool().unwrap_or(true) {
                return Ok(Some(body));
            }
            let bytes = Uint8Array::new(&Reflect::get(&chunk, &"value".into())?);
            if body.len().saturating_add(bytes.length() as usize) > MAX_FORM_BYTES {
                let _ = reader.cancel();
                return Ok(None);
            }
            body.extend(bytes.to_vec());
        }
    }

    fn emit(&self, log: &DecisionLog) {
        super::emit(log);
    }
}

/// The start-up check's view of `env`.
impl WorkerBindings for Env {
    fn has_kv(&self, name: &str) -> bool {
        super::ports::kv_namespace(self, name).is_some()
    }

    fn has_fetch(&self, name: &str) -> bool {
        fetcher(self, name).is_some()
    }

    fn has_rate_limit(&self, name: &str) -> bool {
        Reflect::get(self.as_ref(), &JsValue::from_str(name))
            .and_then(|b| Reflect::get(&b, &JsValue::from_str("limit")))
            .is_ok_and(|f| f.is_function())
    }
}

/// The request as the core sees it, without its body. `names` is the runtime's list of header
/// names (one per line) and `size` the bytes of all headers, both from the JS entry's one pass.
pub fn incoming_request(req: &Request, names: &str, size: usize) -> IncomingRequest {
    let (path, query) = IncomingRequest::split_url(&req.url());
    let method = http::Method::from_bytes(req.method().as_bytes()).unwrap_or(http::Method::GET);
    let js = req.headers();
    let names = names.split('\n').filter(|n| !n.is_empty()).map(str::to_owned).collect();
    let headers = RequestHeaders::from_runtime(names, size, |name| js.get(name).ok().flatten());
    IncomingRequest { method, path, query, headers, form: None }
}

/// A `Headers` object with every header of `map`.
pub fn js_headers(map: &http::HeaderMap) -> Result<Headers, JsValue> {
    let headers = Headers::new()?;
    for (name, value) in map {
        if let Ok(value) = value.to_str() {
            headers.append(name.as_str(), value)?;
        }
    }
    Ok(headers)
}

/// The runtime's `Response` for one the core built.
pub fn js_response(response: http::Response<Vec<u8>>) -> Result<Response, JsValue> {
    let init = ResponseInit::new();
    init.set_status(response.status().as_u16());
    init.set_headers(&js_headers(response.headers())?.into());
    let mut body = response.into_body();
    if body.is_empty() {
        Response::new_with_opt_str_and_init(None, &init)
    } else {
        Response::new_with_opt_u8_array_and_init(Some(&mut body), &init)
    }
}

/// The origin fetch for a plan, not awaited: the client's headers with the plan's removals,
/// then its own headers (so nothing a client sends can remove them), the body streamed through.
/// Origin redirects are passed to the client, not followed. A binding origin gets the same
/// request through `env[NAME].fetch`.
pub fn forward(req: &Request, env: &Env, plan: &ForwardPlan) -> Result<Promise, JsValue> {
    let headers = Headers::new_with_headers(&req.headers())?;
    for name in &plan.headers.remove {
        headers.delete(name)?;
    }
    for (name, value) in &plan.headers.set {
        if headers.set(name, value).is_err() {
            // Only the client's own Cookie text can be refused; never let it pass unedited.
            headers.delete(name)?;
        }
    }
    let init = RequestInit::new();
    let method = req.method();
    init.set_method(&method);
    init.set_headers(&headers);
    init.set_redirect(RequestRedirect::Manual);
    if method != "GET"
        && method != "HEAD"
        && let Some(body) = req.body()
    {
        init.set_body(&body);
    }
    match &plan.binding {
        None => Ok(global_fetch(&plan.url, &init)),
        Some(name) => match fetcher(env, name) {
            Some(binding) => Ok(binding.binding_fetch(&plan.url, &init)),
            None => Err(JsValue::from_str("the origin binding is missing")),
        },
    }
}

/// The origin's answer as the browser may see it: without `Set-Cookie`s that name a gateway
/// cookie, plus the gateway's own cookies (`set_cookies`) and then `Cache-Control: private`, and
/// the gateway's headers (`added`: a fresh `DPoP-Nonce`). Called only when the answer has a
/// `Set-Cookie` or the gateway adds something.
pub fn origin_response(
    response: &Response,
    set_cookies: &[String],
    added: &[(&str, String)],
) -> Result<Response, JsValue> {
    let headers = Headers::new_with_headers(&response.headers())?;
    let from_origin = response.headers().unchecked_into::<SetCookieHeaders>().get_set_cookie();
    let from_origin = from_origin.iter().filter_map(|c| c.as_string());
    let edits = answer_edits(from_origin, headers.get("cache-control")?.as_deref(), set_cookies, added);
    headers.delete("set-cookie")?;
    for cookie in &edits.set_cookies {
        headers.append("set-cookie", cookie)?;
    }
    for (name, value) in &edits.set {
        headers.set(name, value)?;
    }
    let init = ResponseInit::new();
    init.set_status(response.status());
    init.set_status_text(&response.status_text());
    init.set_headers(&headers);
    // A `101` from a WebSocket origin has no body but a socket, which must come along.
    let socket = Reflect::get(response, &JsValue::from_str("webSocket"))?;
    if !socket.is_undefined() && !socket.is_null() {
        Reflect::set(&init, &JsValue::from_str("webSocket"), &socket)?;
    }
    Response::new_with_opt_readable_stream_and_init(response.body().as_ref(), &init)
}
