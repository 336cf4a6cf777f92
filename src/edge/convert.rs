//! Between workers-rs requests/responses and the core's `http` types, and the origin fetch.

use crate::gateway::{ForwardPlan, IncomingRequest};
use worker::{Fetch, Headers, Method, Request, RequestInit, RequestRedirect, Response, Result};

pub fn incoming_request(req: &Request) -> Result<IncomingRequest> {
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
    Ok(IncomingRequest { method, path: url.path().to_owned(), query: url.query().map(str::to_owned), headers })
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
    let mut init = RequestInit::new();
    init.with_method(method.clone())
        .with_headers(worker_headers(&plan.headers)?)
        .with_redirect(RequestRedirect::Manual);
    if !matches!(method, Method::Get | Method::Head)
        && let Some(body) = req.inner().body()
    {
        init.with_body(Some(body.into()));
    }
    let origin_request = Request::new_with_init(&plan.url, &init)?;
    Fetch::Request(origin_request).send().await
}
