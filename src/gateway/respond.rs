//! Building the gateway's own answers: redirects, HTML pages, JSON errors with RFC 6750
//! challenges. Every refusal goes through [`error_response`].

use super::request::IncomingRequest;
use crate::error::GatewayError;
use http::Response;
use http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, HeaderName, LOCATION, REFERRER_POLICY, RETRY_AFTER,
    SET_COOKIE, WWW_AUTHENTICATE, X_CONTENT_TYPE_OPTIONS, X_FRAME_OPTIONS,
};

/// RFC 9449 §8's header. Names are constants, never text: `http` turns a name given as text
/// into a `HeaderName` at run time through a matcher of every standard name (12 KB of wasm).
const DPOP_NONCE: HeaderName = HeaderName::from_static("dpop-nonce");

/// The `algs` parameter of a DPoP challenge (RFC 9449 §7.1): every asymmetric algorithm the
/// gateway verifies proofs with.
const DPOP_ALGS: &str = ", algs=\"ES256 ES384 RS256 RS384 RS512 PS256 PS384 PS512 EdDSA\"";

/// Headers every gateway-generated page carries: never cached, never framed, no scripts.
fn base(status: u16) -> http::response::Builder {
    Response::builder()
        .status(status)
        .header(CACHE_CONTROL, "no-store")
        .header(X_CONTENT_TYPE_OPTIONS, "nosniff")
        .header(REFERRER_POLICY, "no-referrer")
        .header(X_FRAME_OPTIONS, "DENY")
        .header(
            CONTENT_SECURITY_POLICY,
            "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'",
        )
}

fn finish(builder: http::response::Builder, body: Vec<u8>) -> Response<Vec<u8>> {
    builder.body(body).unwrap_or_else(|_| {
        let mut fallback = Response::new(b"internal error".to_vec());
        *fallback.status_mut() = http::StatusCode::INTERNAL_SERVER_ERROR;
        fallback
    })
}

pub fn escape_html(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '&' => "&amp;".to_owned(),
            '<' => "&lt;".to_owned(),
            '>' => "&gt;".to_owned(),
            '"' => "&quot;".to_owned(),
            '\'' => "&#39;".to_owned(),
            c => c.to_string(),
        })
        .collect()
}

/// A small HTML page. `body_html` must already be escaped.
pub fn html_page(status: u16, title: &str, body_html: &str, set_cookies: &[String]) -> Response<Vec<u8>> {
    let page = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title}</title>\
         <meta name=\"viewport\" content=\"width=device-width\"><style>body{{font-family:system-ui,sans-serif;\
         max-width:40rem;margin:4rem auto;padding:0 1rem;color:#222}}pre{{white-space:pre-wrap}}</style></head>\
         <body><h1>{title}</h1>{body_html}</body></html>",
        title = escape_html(title)
    );
    let mut builder = base(status).header(CONTENT_TYPE, "text/html; charset=utf-8");
    for cookie in set_cookies {
        builder = builder.header(SET_COOKIE, cookie);
    }
    finish(builder, page.into_bytes())
}

/// A 302 (with `Set-Cookie`s) that no cache may keep.
pub fn redirect(location: &str, set_cookies: &[String]) -> Response<Vec<u8>> {
    let mut builder = base(302).header(LOCATION, location);
    for cookie in set_cookies {
        builder = builder.header(SET_COOKIE, cookie);
    }
    finish(builder, Vec::new())
}

pub fn json(status: u16, value: &serde_json::Value) -> Response<Vec<u8>> {
    finish(base(status).header(CONTENT_TYPE, "application/json"), serde_json::to_vec(value).unwrap_or_default())
}

/// The answer for a refusal: HTML for browsers, JSON for everyone else; 401s carry an RFC 6750
/// challenge (without an error code when no credentials were presented, §3.1).
pub fn error_response(
    err: &GatewayError,
    req: &IncomingRequest,
    realm: &str,
    set_cookies: &[String],
) -> Response<Vec<u8>> {
    let status = err.status();
    let message = err.public_message();
    let wants_html = req.header("accept").is_some_and(|a| a.contains("text/html")) || req.is_navigation();
    let mut response = if wants_html {
        let title = match status {
            401 => "Sign-in required",
            403 => "Access denied",
            500 => "Gateway misconfigured",
            502..=504 => "Temporarily unavailable",
            _ => "Sign-in failed",
        };
        let body = format!(
            "<pre>{}</pre><p><a href=\"/\">Start again</a></p><p><small>Reason: {}</small></p>",
            escape_html(&message),
            err.reason()
        );
        html_page(status, title, &body, set_cookies)
    } else {
        let mut r = json(status, &serde_json::json!({ "error": err.reason(), "error_description": message }));
        for cookie in set_cookies {
            if let Ok(v) = http::HeaderValue::from_str(cookie) {
                r.headers_mut().append(SET_COOKIE, v);
            }
        }
        r
    };
    if let Some(secs) = err.retry_after() {
        response.headers_mut().insert(RETRY_AFTER, http::HeaderValue::from(secs));
    }
    if let Some(nonce) = err.dpop_nonce().and_then(|n| http::HeaderValue::from_str(n).ok()) {
        response.headers_mut().insert(DPOP_NONCE, nonce);
    }
    if let Some(params) = err.challenge() {
        let scheme = crate::error::challenge_scheme(err, super::bearer::presents_dpop(req));
        let algs = if scheme == "DPoP" { DPOP_ALGS } else { "" };
        let challenge = format!("{scheme} realm=\"{realm}\"{algs}{params}");
        if let Ok(v) = http::HeaderValue::from_str(&challenge) {
            response.headers_mut().insert(WWW_AUTHENTICATE, v);
        }
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup() {
        assert_eq!(escape_html("<a href='x'>&\""), "&lt;a href=&#39;x&#39;&gt;&amp;&quot;");
    }
}
