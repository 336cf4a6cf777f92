//! Between the runtime's `Request`/`Response` and the core's `http` types, and the origin fetch.
//!
//! This works on `web_sys` types directly rather than workers-rs' wrappers: those convert every
//! request and response (headers, `cf` object, body) on the way in and out, which measured as
//! the bulk of the Worker's per-request CPU. Here a request's headers are read once, and the
//! origin request is a copy of the client's headers with a few edits.

use crate::gateway::{ForwardPlan, IncomingRequest, MAX_FORM_BYTES};
use js_sys::{Array, Promise, Uint8Array};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;
use web_sys::{Headers, Request, RequestInit, RequestRedirect, Response, ResponseInit};

#[wasm_bindgen]
extern "C" {
    /// The runtime's global `fetch(url, init)` (cheaper than building a `Request` first).
    #[wasm_bindgen(js_name = fetch)]
    fn global_fetch(url: &str, init: &RequestInit) -> Promise;
}

/// Send a request with the runtime's `fetch`.
pub async fn fetch(url: &str, init: &RequestInit) -> Result<Response, JsValue> {
    JsFuture::from(global_fetch(url, init)).await?.dyn_into::<Response>()
}

/// The request as the core sees it. The body is read only for the gateway's own form
/// endpoints, and only up to [`MAX_FORM_BYTES`]; other bodies stay streams for the origin.
pub async fn incoming_request(req: &Request) -> Result<IncomingRequest, JsValue> {
    let (path, query) = IncomingRequest::split_url(&req.url());
    let method = http::Method::from_bytes(req.method().as_bytes()).unwrap_or(http::Method::GET);
    let mut headers = http::HeaderMap::new();
    if let Some(entries) = js_sys::try_iter(&req.headers())? {
        for entry in entries {
            let pair: Array = entry?.unchecked_into();
            let (Some(name), Some(value)) = (pair.get(0).as_string(), pair.get(1).as_string()) else {
                continue;
            };
            if let (Ok(name), Ok(value)) =
                (http::HeaderName::from_bytes(name.as_bytes()), http::HeaderValue::from_str(&value))
            {
                headers.append(name, value);
            }
        }
    }
    let form = if IncomingRequest::wants_form(&method, &path) {
        let buffer = JsFuture::from(req.array_buffer()?).await?;
        let bytes = Uint8Array::new(&buffer).to_vec();
        Some(if bytes.len() > MAX_FORM_BYTES { Vec::new() } else { bytes })
    } else {
        None
    };
    Ok(IncomingRequest { method, path, query, headers, form })
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

/// Send the request to the origin with the plan's URL and header changes, streaming the body
/// both ways. Origin redirects are passed to the client, not followed.
pub async fn forward(req: &Request, plan: ForwardPlan) -> Result<Response, JsValue> {
    let headers = Headers::new_with_headers(&req.headers())?;
    for name in &plan.headers.remove {
        headers.delete(name.as_str())?;
    }
    for (name, value) in &plan.headers.set {
        if let Ok(value) = value.to_str() {
            headers.set(name.as_str(), value)?;
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
    let response = fetch(&plan.url, &init).await?;
    if plan.set_cookies.is_empty() {
        return Ok(response);
    }
    // A fetched response's headers are immutable: copy them to add the gateway's cookies.
    let headers = Headers::new_with_headers(&response.headers())?;
    for cookie in &plan.set_cookies {
        headers.append("set-cookie", cookie)?;
    }
    let init = ResponseInit::new();
    init.set_status(response.status());
    init.set_status_text(&response.status_text());
    init.set_headers(&headers);
    Response::new_with_opt_readable_stream_and_init(response.body().as_ref(), &init)
}
