//! The inbound request as the core sees it, and what the core decides to do with it.

use http::{HeaderMap, Method};
use serde::Serialize;

/// Largest total size of request headers accepted (Cloudflare's own limit is 32 KiB).
pub const MAX_HEADER_BYTES: usize = 32 * 1024;

/// An inbound request, without its body: the edge streams the body to the origin untouched.
#[derive(Debug, Clone)]
pub struct IncomingRequest {
    pub method: Method,
    /// The path, percent-encoded as received.
    pub path: String,
    pub query: Option<String>,
    pub headers: HeaderMap,
    /// The body, read by the edge only for the gateway's own form endpoints (see
    /// [`IncomingRequest::wants_form`]); every other body streams to the origin untouched.
    pub form: Option<Vec<u8>>,
}

/// Largest form body the gateway reads (a logout token is a few KB).
pub const MAX_FORM_BYTES: usize = 64 * 1024;

impl IncomingRequest {
    /// Path and query of an absolute request URL (`scheme://authority/path?query#fragment`),
    /// as received: no decoding, no normalisation (routing normalises separately).
    pub fn split_url(url: &str) -> (String, Option<String>) {
        let after_scheme = url.split_once("://").map_or(url, |(_, rest)| rest);
        let from_path = after_scheme.find('/').and_then(|i| after_scheme.get(i..)).unwrap_or("/");
        let without_fragment = from_path.split('#').next().unwrap_or(from_path);
        match without_fragment.split_once('?') {
            Some((path, query)) => (path.to_owned(), Some(query.to_owned())),
            None => (without_fragment.to_owned(), None),
        }
    }

    /// Whether the edge should read the body into [`IncomingRequest::form`].
    pub fn wants_form(method: &Method, path: &str) -> bool {
        *method == Method::POST && path == super::paths::BACKCHANNEL_LOGOUT
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// All `Cookie` headers joined, as HTTP/2 may split them.
    pub fn cookie_header(&self) -> String {
        let parts: Vec<&str> =
            self.headers.get_all(http::header::COOKIE).iter().filter_map(|v| v.to_str().ok()).collect();
        parts.join("; ")
    }

    /// Path plus query, as the origin should see them.
    pub fn path_and_query(&self) -> String {
        match &self.query {
            Some(q) => format!("{}?{q}", self.path),
            None => self.path.clone(),
        }
    }

    pub fn header_bytes(&self) -> usize {
        self.headers.iter().map(|(n, v)| n.as_str().len() + v.len() + 4).sum()
    }

    /// A CORS preflight: `OPTIONS` with `Origin` and `Access-Control-Request-Method`
    /// (browsers send no credentials on these).
    pub fn is_cors_preflight(&self) -> bool {
        self.method == Method::OPTIONS
            && self.headers.contains_key("origin")
            && self.headers.contains_key("access-control-request-method")
    }

    /// A browser navigation may be redirected to sign in; anything else (fetch/XHR, API
    /// clients, non-GET) must get a 401 it can act on, never a 302 to the provider.
    pub fn is_navigation(&self) -> bool {
        if self.method != Method::GET && self.method != Method::HEAD {
            return false;
        }
        match self.header("sec-fetch-mode") {
            Some(mode) => mode.eq_ignore_ascii_case("navigate"),
            None => self.header("accept").is_some_and(|a| a.to_ascii_lowercase().contains("text/html")),
        }
    }
}

/// What to do with a request.
#[derive(Debug)]
pub enum Outcome {
    /// Answer directly.
    Respond(http::Response<Vec<u8>>),
    /// Send to the origin with these headers (the edge adds the body).
    Forward(ForwardPlan),
}

/// The origin request, minus its body.
#[derive(Debug)]
pub struct ForwardPlan {
    pub url: String,
    /// How the client's headers change for the origin.
    pub headers: crate::proxy::HeaderChanges,
    /// `Set-Cookie` values to add to the origin's answer (a re-sealed session cookie).
    pub set_cookies: Vec<String>,
}

/// One structured log line per decision (never tokens, codes or secrets).
#[derive(Debug, Serialize)]
pub struct DecisionLog {
    pub event: &'static str,
    pub reason: &'static str,
    pub status: Option<u16>,
    pub method: String,
    pub path: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// Side events worth knowing (e.g. `jwks_refresh_failed_using_cached`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<&'static str>,
}

/// The gateway's decision and its log line.
#[derive(Debug)]
pub struct Decision {
    pub outcome: Outcome,
    pub log: DecisionLog,
    /// A forwarded request under `LOG_FORWARDED=false`: its log line may be skipped.
    pub quiet: bool,
}

impl Decision {
    /// Whether to write the log line: always for refusals, errors and anything with notes;
    /// for forwarded requests unless configured quiet.
    pub fn should_log(&self) -> bool {
        !self.quiet || !self.log.notes.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(method: Method, headers: &[(&'static str, &'static str)]) -> IncomingRequest {
        let mut h = HeaderMap::new();
        for (n, v) in headers {
            h.insert(*n, v.parse().unwrap());
        }
        IncomingRequest { method, path: "/".into(), query: None, headers: h, form: None }
    }

    #[test]
    fn splits_path_and_query() {
        let split = IncomingRequest::split_url;
        assert_eq!(split("https://gw.example.com/a/b?x=1#f"), ("/a/b".into(), Some("x=1".into())));
        assert_eq!(split("https://gw.example.com"), ("/".into(), None));
        assert_eq!(split("http://127.0.0.1:8787/?"), ("/".into(), Some(String::new())));
        assert_eq!(split("https://gw.example.com/%2F%2Fevil?a=%20"), ("/%2F%2Fevil".into(), Some("a=%20".into())));
    }

    #[test]
    fn navigation_detection() {
        assert!(req(Method::GET, &[("sec-fetch-mode", "navigate")]).is_navigation());
        assert!(req(Method::GET, &[("accept", "text/html,application/xhtml+xml")]).is_navigation());
        assert!(!req(Method::GET, &[("sec-fetch-mode", "cors"), ("accept", "text/html")]).is_navigation());
        assert!(!req(Method::GET, &[("accept", "*/*")]).is_navigation());
        assert!(!req(Method::GET, &[("accept", "application/json")]).is_navigation());
        assert!(!req(Method::GET, &[]).is_navigation());
        assert!(!req(Method::POST, &[("sec-fetch-mode", "navigate")]).is_navigation());
    }
}
