//! Between workers-rs requests/responses and the core's `http` types, and the origin fetch.

use crate::gateway::{ForwardPlan, IncomingRequest, MAX_FORM_BYTES};
use worker::{Fetch, Headers, Method, Request, RequestInit, RequestRedirect, Response, Result};

/// The request as the core sees it. The body is read only for the gateway's own form
/// endpoints, and only up to [`MAX_FORM_BYTES`]; other bodies stay streams for the origin.
pub async fn incoming_request(req: &mut Request) -> Result<IncomingRequest> {
    let url = req.url()?;
    let method = http::Method::from_bytes(req.method().as_ref().as_bytes()).unwrap_or(http::Method::GET);
    let mut headers = http::HeaderMap::new();
    for (name, value) in req.headers().entries() {
        if let (Ok(name), Ok(value)) =
            (http::HeaderName::from_bytes(name.as_bytes()), http::HeaderValue::from_str(&value))
        {
            headers.append(name, value);
        }
    }
    let path = url.path().to_owned();
    let form = if IncomingRequest::wants_form(&method, &path) {
        let bytes = req.bytes().await.unwrap_or_default();
        Some(if bytes.len() > MAX_FORM_BYTES { Vec::new() } else { bytes })
    } else {
        None
    };
    Ok(IncomingRequest { method, path, query: url.query().map(str::to_owned), headers, form })
}

pub fn worker_headers(map: &http::HeaderMap) -> Result<Headers> {
    let headers = Headers::new();
    for (name, value) in map {
        if let Ok(value) = value.to_str() {
            headers.append(name.as_str(), value)?;
        }
    }
    Ok(headers)
}

pub fn worker_response(response: http::Response<Vec<u8>>) -> Result<Response> {
    let status = response.status().as_u16();
    let headers = worker_headers(response.headers())?;
    let body = response.into_body();
    let response = if body.is_empty() { Response::empty()? } else { Response::from_bytes(body)? };
    Ok(response.with_status(status).with_headers(headers))
}

/// Send the request to the origin with the plan's URL and headers, streaming the body both
/// ways. Origin redirects are passed to the client, not followed.
pub async fn forward(req: Request, plan: ForwardPlan) -> Result<Response> {
    let method = req.method();
    // One copy of the client's headers, then the few changes (cheaper than rebuilding them all).
    let headers = req.headers().clone();
    for name in &plan.headers.remove {
        headers.delete(name.as_str())?;
    }
    for (name, value) in &plan.headers.set {
        if let Ok(value) = value.to_str() {
            headers.set(name.as_str(), value)?;
        }
    }
    let mut init = RequestInit::new();
    init.with_method(method.clone()).with_headers(headers).with_redirect(RequestRedirect::Manual);
    if !matches!(method, Method::Get | Method::Head)
        && let Some(body) = req.inner().body()
    {
        init.with_body(Some(body.into()));
    }
    let origin_request = Request::new_with_init(&plan.url, &init)?;
    let response = Fetch::Request(origin_request).send().await?;
    if plan.set_cookies.is_empty() {
        return Ok(response);
    }
    // A fetched response's headers are immutable: copy them to add the gateway's cookies.
    let headers = Headers::new();
    for (name, value) in response.headers().entries() {
        headers.append(&name, &value)?;
    }
    for cookie in &plan.set_cookies {
        headers.append("set-cookie", cookie)?;
    }
    Ok(response.with_headers(headers))
}
