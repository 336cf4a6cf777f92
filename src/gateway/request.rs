//! The inbound request as the core sees it, and what the core decides to do with it.

use http::Method;
use serde::Serialize;

pub use super::headers::RequestHeaders;

/// Largest total size of request headers accepted (Cloudflare's own limit is 32 KiB).
pub const MAX_HEADER_BYTES: usize = 32 * 1024;

/// An inbound request, without its body: the edge streams the body to the origin untouched.
#[derive(Debug, Clone)]
pub struct IncomingRequest {
    pub method: Method,
    /// The path, percent-encoded as received.
    pub path: String,
    pub query: Option<String>,
    pub headers: RequestHeaders,
    /// The body, read by the edge only for the gateway's own form endpoints (see
    /// [`IncomingRequest::wants_form`]); every other body streams to the origin untouched.
    /// `None` there means the body was over [`MAX_FORM_BYTES`] and was not read.
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

    /// The declared body size, when the client declared a valid one.
    pub fn content_length(&self) -> Option<u64> {
        self.header("content-length").and_then(|v| v.trim().parse().ok())
    }

    /// Whether the edge should refuse to read this body, by its declared size alone.
    pub fn declares_oversized_form(&self) -> bool {
        self.content_length().is_some_and(|n| n > MAX_FORM_BYTES as u64)
    }

    /// A form endpoint's body that is over the cap, declared or found while streaming (then the
    /// edge passes no body at all).
    pub fn form_too_large(&self) -> bool {
        Self::wants_form(&self.method, &self.path) && (self.declares_oversized_form() || self.form.is_none())
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name)
    }

    /// The `Cookie` header as the client sent it, odd bytes and all (empty if none): one
    /// unusual cookie must never hide the others (`city=Zürich` beside the session cookie).
    pub fn cookie_header(&self) -> String {
        self.headers.get("cookie").unwrap_or_default().to_owned()
    }

    /// Path plus query, as the origin should see them.
    pub fn path_and_query(&self) -> String {
        match &self.query {
            Some(q) => format!("{}?{q}", self.path),
            None => self.path.clone(),
        }
    }

    pub fn header_bytes(&self) -> usize {
        self.headers.size
    }

    /// A CORS preflight: `OPTIONS` with `Origin` and `Access-Control-Request-Method`
    /// (browsers send no credentials on these).
    pub fn is_cors_preflight(&self) -> bool {
        self.method == Method::OPTIONS
            && self.headers.contains("origin")
            && self.headers.contains("access-control-request-method")
    }

    /// A WebSocket opening handshake (RFC 6455 §4.1): a GET whose `Upgrade` names `websocket`
    /// (any letter case, among other protocols or alone).
    pub fn is_websocket_upgrade(&self) -> bool {
        self.method == Method::GET
            && self.header("upgrade").is_some_and(|u| u.split(',').any(|p| p.trim().eq_ignore_ascii_case("websocket")))
    }

    /// A browser navigation may be redirected to sign in; anything else (fetch/XHR, API
    /// clients, non-GET, a WebSocket handshake, which cannot follow a redirect) must get a 401
    /// it can act on, never a 302 to the provider.
    pub fn is_navigation(&self) -> bool {
        if (self.method != Method::GET && self.method != Method::HEAD) || self.is_websocket_upgrade() {
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
    /// The URL the origin sees. For a binding, the gateway's own `PUBLIC_URL` origin and the
    /// request's path: the assets binding serves by path, a service binding sees the public URL.
    pub url: String,
    /// Send through this Worker binding (`env[NAME].fetch`) instead of the network.
    pub binding: Option<String>,
    /// How the client's headers change for the origin.
    pub headers: crate::proxy::HeaderChanges,
    /// `Set-Cookie` values to add to the origin's answer (a re-sealed session cookie).
    pub set_cookies: Vec<String>,
    /// Headers to set on the origin's answer (a fresh `DPoP-Nonce`), lower-case names.
    pub answer_headers: Vec<(&'static str, String)>,
    /// A WebSocket upgrade the route lets through: how the edge handles the socket.
    pub socket: Option<super::websocket::SocketPlan>,
    /// The route's per-caller limit, for the edge to count before it forwards.
    pub rate_limit: Option<super::rate_limit::RateLimitCheck>,
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

impl DecisionLog {
    /// The log line: one JSON object, serialised straight into a buffer sized for a typical
    /// line (one allocation), handed to the runtime as one string.
    pub fn to_line(&self) -> String {
        let mut line = Vec::with_capacity(192 + self.path.len() + self.detail.as_ref().map_or(0, String::len));
        if serde_json::to_writer(&mut line, self).is_err() {
            return String::new();
        }
        String::from_utf8(line).unwrap_or_default()
    }
}

/// The gateway's decision and its log line.
#[derive(Debug)]
pub struct Decision {
    pub outcome: Outcome,
    pub log: DecisionLog,
    /// A forwarded request under `LOG_FORWARDED=false`: its log line may be skipped.
    pub quiet: bool,
}

/// A refusal decided around the pipeline (a rate limit, an unreachable origin): always
/// answered, never forwarded, always logged.
#[derive(Debug)]
pub struct Refusal {
    pub response: http::Response<Vec<u8>>,
    pub log: DecisionLog,
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
        IncomingRequest {
            method,
            path: "/".into(),
            query: None,
            headers: RequestHeaders::from_pairs(headers),
            form: None,
        }
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
    fn a_log_line_is_one_json_object() {
        let log = DecisionLog {
            event: "decision",
            reason: "forwarded",
            status: None,
            method: "GET".into(),
            path: "/a\"b\n".into(),
            sub: Some("alice".into()),
            detail: None,
            notes: vec!["jwks_refreshed"],
        };
        let line = log.to_line();
        assert!(!line.contains('\n'), "{line}");
        let parsed: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(parsed["path"], "/a\"b\n");
        assert_eq!(parsed["reason"], "forwarded");
        assert_eq!(parsed["notes"][0], "jwks_refreshed");
        assert!(parsed.get("detail").is_none());
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
        assert!(!req(Method::GET, &[("upgrade", "websocket"), ("accept", "text/html")]).is_navigation());
    }

    #[test]
    fn websocket_upgrade_detection() {
        for upgrade in ["websocket", "WebSocket", "h2c, websocket"] {
            assert!(req(Method::GET, &[("upgrade", upgrade)]).is_websocket_upgrade(), "{upgrade}");
        }
        assert!(!req(Method::POST, &[("upgrade", "websocket")]).is_websocket_upgrade());
        assert!(!req(Method::GET, &[("upgrade", "h2c")]).is_websocket_upgrade());
        assert!(!req(Method::GET, &[("upgrade", "websockets")]).is_websocket_upgrade());
        assert!(!req(Method::GET, &[]).is_websocket_upgrade());
    }
}
