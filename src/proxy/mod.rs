//! The request to the origin: which client headers survive, and what the gateway adds.
//!
//! Anything that could claim an identity is removed before the gateway adds its own, so an
//! origin can trust `X-Forwarded-User` and friends (GHSA-vjrc-mh2v-45x6, GHSA-7x63-xv5r-3p2x).
//! Names are compared after lower-casing and turning `_` into `-`, because many servers (CGI,
//! PHP, nginx with `underscores_in_headers`) treat `X_Forwarded_User` as `X-Forwarded-User`.

use crate::session::cookie::{is_gateway_cookie, parse_cookie_header};
use http::{HeaderMap, HeaderName, HeaderValue};

/// The identity headers the gateway sets.
pub const USER_HEADER: &str = "x-forwarded-user";
pub const EMAIL_HEADER: &str = "x-forwarded-email";

/// Exact names (normalised) a client may never send to the origin.
const STRIPPED: &[&str] = &[
    // hop-by-hop (RFC 9110 §7.6.1) and what the runtime sets itself
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "host",
    "content-length",
    // identity and client-address claims
    "authorization",
    "proxy-authorization",
    "forwarded",
    "remote-user",
    "remote-email",
    "remote-groups",
    "remote-name",
    "x-remote-user",
    "x-user",
    "x-email",
    "x-real-ip",
    "true-client-ip",
];

/// Name prefixes (normalised) a client may never send to the origin.
const STRIPPED_PREFIXES: &[&str] = &[
    "x-forwarded-",
    "x-auth-request-",
    "x-auth-",
    "cf-access-",
    "x-edgeguard-",
    "x-ms-client-principal",
    "x-ms-token-",
    "x-goog-authenticated-user-",
    "x-amzn-oidc-",
    "x-pomerium-",
    "proxy-",
];

fn normalise(name: &str) -> String {
    name.to_ascii_lowercase().replace('_', "-")
}

fn is_stripped(name: &str) -> bool {
    let name = normalise(name);
    STRIPPED.contains(&name.as_str()) || STRIPPED_PREFIXES.iter().any(|p| name.starts_with(p))
}

/// The client's `Cookie` header without the gateway's own cookies (`None` if nothing is left).
fn origin_cookies(header: &str) -> Option<String> {
    let kept: Vec<String> = parse_cookie_header(header)
        .filter(|(name, _)| !is_gateway_cookie(name))
        .map(|(name, value)| format!("{name}={value}"))
        .collect();
    (!kept.is_empty()).then(|| kept.join("; "))
}

/// Whether `text` can travel as a header value unchanged: printable ASCII only (other bytes
/// reach origins mangled, differently per server), with no leading or trailing space (HTTP
/// trims those, RFC 9110 §5.5).
pub fn is_header_safe(text: &str) -> bool {
    text.bytes().all(|b| (0x20..0x7f).contains(&b)) && !text.starts_with(' ') && !text.ends_with(' ')
}

/// A header value the gateway sets, or `None` if the text cannot be a header value (then the
/// header is left out rather than mangled).
fn value(text: &str) -> Option<HeaderValue> {
    HeaderValue::from_str(text).ok().filter(|_| is_header_safe(text))
}

/// Who the origin is told the caller is.
pub struct ForwardIdentity<'a> {
    pub subject: &'a str,
    pub email: Option<&'a str>,
}

/// What the gateway vouches for on the origin request.
pub enum Credential<'a> {
    /// An authenticated caller: `Authorization: Bearer <token>` and identity headers.
    Authenticated { access_token: &'a str, identity: ForwardIdentity<'a> },
    /// A caller whose own bearer token was verified: its `Authorization` header passes as sent,
    /// with identity headers.
    Presented { identity: ForwardIdentity<'a> },
    /// An unauthenticated route (public, CORS preflight): the client's own `Authorization`
    /// passes through, identity headers never do.
    Anonymous,
}

/// How the client's headers change on the way to the origin. Expressed as a change rather
/// than a new header list so the edge copies the client's headers once and edits a few,
/// instead of rebuilding every header across the JS boundary.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct HeaderChanges {
    /// Client headers to drop (names as the client sent them).
    pub remove: Vec<HeaderName>,
    /// Headers to set, replacing any value the client sent.
    pub set: Vec<(HeaderName, HeaderValue)>,
}

impl HeaderChanges {
    fn set(&mut self, name: &'static str, text: &str) {
        if let Some(v) = value(text) {
            self.set.push((HeaderName::from_static(name), v));
        }
    }

    /// The origin's headers, for tests that look at the result rather than the change.
    #[cfg(test)]
    pub fn apply(&self, client: &HeaderMap) -> HeaderMap {
        let mut headers = client.clone();
        for name in &self.remove {
            headers.remove(name);
        }
        for (name, value) in &self.set {
            headers.insert(name.clone(), value.clone());
        }
        headers
    }
}

/// What becomes of the client's headers: spoofable ones and the gateway's cookies go, the
/// credential's bearer token and identity headers come.
pub fn origin_headers(client: &HeaderMap, credential: &Credential<'_>, public_url: &url::Url) -> HeaderChanges {
    let own_authorization = matches!(credential, Credential::Anonymous | Credential::Presented { .. });
    let mut changes = HeaderChanges::default();
    for name in client.keys() {
        let keep_authorization = own_authorization && name == http::header::AUTHORIZATION;
        if is_stripped(name.as_str()) && !keep_authorization {
            changes.remove.push(name.clone());
        }
    }
    let cookies: Vec<&str> = client.get_all(http::header::COOKIE).iter().filter_map(|v| v.to_str().ok()).collect();
    let cookies = cookies.join("; ");
    if parse_cookie_header(&cookies).any(|(name, _)| is_gateway_cookie(name)) {
        match origin_cookies(&cookies).as_deref().and_then(value) {
            Some(kept) => changes.set.push((http::header::COOKIE, kept)),
            None => changes.remove.push(http::header::COOKIE),
        }
    }
    let identity = match credential {
        Credential::Authenticated { access_token, identity } => {
            changes.set("authorization", &format!("Bearer {access_token}"));
            Some(identity)
        }
        Credential::Presented { identity } => Some(identity),
        Credential::Anonymous => None,
    };
    if let Some(identity) = identity {
        changes.set(USER_HEADER, identity.subject);
        if let Some(email) = identity.email {
            changes.set(EMAIL_HEADER, email);
        }
    }
    if let Some(host) = public_url.host_str() {
        let host = match public_url.port() {
            Some(port) => format!("{host}:{port}"),
            None => host.to_owned(),
        };
        changes.set("x-forwarded-host", &host);
    }
    changes.set("x-forwarded-proto", public_url.scheme());
    changes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (n, v) in pairs {
            h.append(HeaderName::from_bytes(n.as_bytes()).unwrap(), HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn strips_spoofed_identity_and_adds_ours() {
        let h = client(&[
            ("X-Forwarded-User", "admin"),
            ("x_forwarded_user", "admin"),
            ("X-Forwarded-Email", "admin@evil"),
            ("X-Auth-Request-User", "admin"),
            ("Remote-User", "admin"),
            ("Remote_User", "admin"),
            ("Cf-Access-Authenticated-User-Email", "admin@evil"),
            ("X-MS-CLIENT-PRINCIPAL-NAME", "admin"),
            ("Authorization", "Bearer forged"),
            ("X-Forwarded-For", "1.2.3.4"),
            ("Accept", "text/html"),
            ("X-Custom", "kept"),
            ("Cookie", "__Host-edgeguard=sealed; theme=dark"),
            ("Cookie", "__Secure-edgeguard-tx-ab=x; lang=en"),
        ]);
        let url = url::Url::parse("https://gw.example.com").unwrap();
        let credential = Credential::Authenticated {
            access_token: "the-at",
            identity: ForwardIdentity { subject: "alice", email: Some("a@example.com") },
        };
        let out = origin_headers(&h, &credential, &url).apply(&h);
        assert_eq!(out.get_all("x-forwarded-user").iter().collect::<Vec<_>>(), vec!["alice"]);
        assert_eq!(out["x-forwarded-email"], "a@example.com");
        assert_eq!(out["authorization"], "Bearer the-at");
        assert_eq!(out["x-forwarded-host"], "gw.example.com");
        assert_eq!(out["x-forwarded-proto"], "https");
        assert_eq!(out["accept"], "text/html");
        assert_eq!(out["x-custom"], "kept");
        assert_eq!(out["cookie"], "theme=dark; lang=en");
        for gone in [
            "x-auth-request-user",
            "remote-user",
            "cf-access-authenticated-user-email",
            "x-ms-client-principal-name",
            "x-forwarded-for",
        ] {
            assert!(out.get(gone).is_none(), "{gone}");
        }
        assert!(out.keys().all(|k| !k.as_str().contains('_')), "{out:?}");
    }

    #[test]
    fn drops_cookie_header_when_only_gateway_cookies_and_skips_unprintable_identity() {
        let h = client(&[("Cookie", "__Host-edgeguard=sealed")]);
        let url = url::Url::parse("http://127.0.0.1:8787").unwrap();
        let credential = Credential::Authenticated {
            access_token: "at",
            identity: ForwardIdentity { subject: "al\u{e9}", email: None },
        };
        let out = origin_headers(&h, &credential, &url).apply(&h);
        assert!(out.get("cookie").is_none());
        assert!(out.get("x-forwarded-user").is_none());
        assert_eq!(out["x-forwarded-host"], "127.0.0.1:8787");
    }

    #[test]
    fn header_safety() {
        assert!(is_header_safe("alice@example.com"));
        for bad in ["\u{e4}lice", "alice\r\nx: 1", "alice\u{0}", " alice", "alice ", "a\tb"] {
            assert!(!is_header_safe(bad), "{bad:?}");
        }
    }

    #[test]
    fn anonymous_routes_keep_the_client_authorization_but_never_identity() {
        let h = client(&[("Authorization", "Basic abc"), ("X-Forwarded-User", "admin"), ("Remote-User", "admin")]);
        let url = url::Url::parse("https://gw.example.com").unwrap();
        let out = origin_headers(&h, &Credential::Anonymous, &url).apply(&h);
        assert_eq!(out["authorization"], "Basic abc");
        assert!(out.get("x-forwarded-user").is_none());
        assert!(out.get("remote-user").is_none());
    }
}
