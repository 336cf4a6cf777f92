//! The request to the origin: which client headers survive, and what the gateway adds.
//!
//! Anything that could claim an identity is removed before the gateway adds its own, so an
//! origin can trust `X-Forwarded-User` and friends (GHSA-vjrc-mh2v-45x6, GHSA-7x63-xv5r-3p2x).
//! The list itself is in `strip`. Headers a client names in `Connection:` change nothing
//! here: `Connection` itself is stripped and the gateway's own headers are set after every
//! removal, so a client cannot make the gateway drop them (Traefik CVE-2024-45410).

mod claims;
mod principal;
mod response;
mod strip;

pub use claims::{add_claim_headers, ascii_json};
pub use principal::{add_client_principal, principal_document};
pub use response::{AnswerEdits, answer_edits, header_pairs, origin_set_cookie_allowed, private_cache_control};
pub use strip::StripRule;

use crate::gateway::RequestHeaders;
use crate::session::cookie::{is_gateway_cookie, without_gateway_cookies};
use serde_json::{Map, Value};
use std::borrow::Cow;
use strip::is_stripped;

/// The identity headers the gateway sets.
pub const USER_HEADER: &str = "x-forwarded-user";
pub const EMAIL_HEADER: &str = "x-forwarded-email";
/// Entra's stable identifiers: `oid` (the user or app in its tenant) and `tid`.
pub const OBJECT_ID_HEADER: &str = "x-forwarded-object-id";
pub const TENANT_HEADER: &str = "x-forwarded-tenant-id";
/// The provider that vouched for the caller, sent only when the deployment has several: `sub`
/// is unique per issuer only, so two providers' users may share one.
pub const PROVIDER_HEADER: &str = "x-forwarded-provider";

/// Whether `text` can travel as a header value unchanged: printable ASCII only (other bytes
/// reach origins mangled, differently per server), with no leading or trailing space (HTTP
/// trims those, RFC 9110 §5.5).
pub fn is_header_safe(text: &str) -> bool {
    text.bytes().all(|b| (0x20..0x7f).contains(&b)) && !text.starts_with(' ') && !text.ends_with(' ')
}

/// Who the origin is told the caller is.
#[derive(Default)]
pub struct ForwardIdentity<'a> {
    pub subject: &'a str,
    pub email: Option<&'a str>,
    /// Entra `oid`: stable across applications, unlike `sub`.
    pub object_id: Option<&'a str>,
    /// Entra `tid`.
    pub tenant: Option<&'a str>,
    /// The provider's name, with several providers (see [`PROVIDER_HEADER`]).
    pub provider: Option<&'a str>,
    /// Every claim of the verified token (ID token for sessions, access token for bearer
    /// callers), when the route maps claims to headers; `None` otherwise (not needed).
    pub claims: Option<&'a Map<String, Value>>,
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
    /// The route decides `Authorization` (`origin_token`): a token the gateway obtained (its
    /// app token, an on-behalf-of token) or none; identity headers when there is a caller.
    Replaced { access_token: Option<&'a str>, identity: Option<ForwardIdentity<'a>> },
}

impl<'a> Credential<'a> {
    /// The identity this credential vouches for, if any.
    pub fn identity(&self) -> Option<&ForwardIdentity<'a>> {
        match self {
            Credential::Authenticated { identity, .. } | Credential::Presented { identity } => Some(identity),
            Credential::Replaced { identity, .. } => identity.as_ref(),
            Credential::Anonymous => None,
        }
    }
}

/// How the client's headers change on the way to the origin. Expressed as a change rather
/// than a new header list so the edge copies the client's headers once and edits a few,
/// instead of rebuilding every header across the JS boundary. The edge applies every removal
/// before any `set`.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct HeaderChanges {
    /// Client headers to drop (names as the runtime lists them).
    pub remove: Vec<String>,
    /// Headers to set, replacing any value the client sent. Values are text as it must reach
    /// the origin (the client's own `Cookie` text may hold bytes `http` refuses). Names are
    /// lower-case tokens: the gateway's own, or a route's, checked when the settings were read.
    /// Plain text rather than `http::HeaderName`, whose constructor carries a 12 KB matcher of
    /// standard names into the wasm for names the runtime takes as text anyway.
    pub set: Vec<(Cow<'static, str>, String)>,
}

impl HeaderChanges {
    /// Set `name` to `text`, or leave it out if the text cannot be a header value (rather than
    /// mangle it). [`is_header_safe`] is the whole check: stricter than `http::HeaderValue`'s,
    /// and without building one (a copy and a free per header per request).
    fn set(&mut self, name: &'static str, text: &str) {
        if is_header_safe(text) {
            self.set.push((name.into(), text.to_owned()));
        }
    }

    /// [`Self::set`] for text already owned (no second copy).
    fn set_owned(&mut self, name: &'static str, text: String) {
        if is_header_safe(&text) {
            self.set.push((name.into(), text));
        }
    }

    /// The origin's headers, for tests that look at the result rather than the change
    /// (`client` from [`RequestHeaders::from_pairs`], which keeps every value).
    #[cfg(test)]
    pub fn apply(&self, client: &RequestHeaders) -> http::HeaderMap {
        let mut headers = http::HeaderMap::new();
        for name in client.names().filter(|n| !self.remove.iter().any(|r| r == n)) {
            let value = client.value(name).unwrap_or_default();
            headers.insert(http::HeaderName::from_bytes(name.as_bytes()).unwrap(), value.parse().unwrap());
        }
        for (name, value) in &self.set {
            headers.insert(http::HeaderName::from_bytes(name.as_bytes()).unwrap(), value.parse().unwrap());
        }
        headers
    }
}

/// What becomes of the client's headers: spoofable ones (the built-in list plus `extra`, the
/// deployment's `STRIP_HEADERS`) and the gateway's cookies go, the credential's bearer token
/// and identity headers come.
pub fn origin_headers(
    client: &RequestHeaders,
    credential: &Credential<'_>,
    public_url: &url::Url,
    extra: &[StripRule],
) -> HeaderChanges {
    let own_authorization = matches!(credential, Credential::Anonymous | Credential::Presented { .. });
    let mut changes = HeaderChanges::default();
    for name in client.names() {
        let keep_authorization = own_authorization && name.eq_ignore_ascii_case("authorization");
        // A DPoP proof belongs with the token it was made for: it goes where that token goes.
        let orphaned_proof = !own_authorization && name.eq_ignore_ascii_case("dpop");
        if (is_stripped(name, extra) && !keep_authorization) || orphaned_proof {
            changes.remove.push(name.to_owned());
        }
    }
    let cookies = client.get("cookie").unwrap_or_default();
    if cookie_names(cookies).any(is_gateway_cookie) {
        match without_gateway_cookies(cookies) {
            Some(kept) => changes.set.push(("cookie".into(), kept)),
            None => changes.remove.push("cookie".to_owned()),
        }
    }
    let identity = match credential {
        Credential::Authenticated { access_token, identity } => {
            changes.set_owned("authorization", format!("Bearer {access_token}"));
            Some(identity)
        }
        Credential::Presented { identity } => Some(identity),
        Credential::Replaced { access_token, identity } => {
            if let Some(token) = access_token {
                changes.set_owned("authorization", format!("Bearer {token}"));
            }
            identity.as_ref()
        }
        Credential::Anonymous => None,
    };
    if let Some(identity) = identity {
        changes.set(USER_HEADER, identity.subject);
        if let Some(email) = identity.email {
            changes.set(EMAIL_HEADER, email);
        }
        if let Some(oid) = identity.object_id {
            changes.set(OBJECT_ID_HEADER, oid);
        }
        if let Some(tid) = identity.tenant {
            changes.set(TENANT_HEADER, tid);
        }
        if let Some(provider) = identity.provider {
            changes.set(PROVIDER_HEADER, provider);
        }
    }
    if let Some(host) = public_url.host_str() {
        match public_url.port() {
            Some(port) => changes.set_owned("x-forwarded-host", format!("{host}:{port}")),
            None => changes.set("x-forwarded-host", host),
        }
    }
    changes.set("x-forwarded-proto", public_url.scheme());
    changes
}

/// Drop every client header an origin would read as one of `names` (lower case; any case, `_`
/// for `-`): the headers routes map from claims, which no client may send on any route.
pub fn strip_names(changes: &mut HeaderChanges, client: &RequestHeaders, names: &[String]) {
    if names.is_empty() {
        return;
    }
    for name in client.names() {
        let normalised = strip::normalise(name);
        if names.iter().any(|n| *n == *normalised) && !changes.remove.iter().any(|n| n == name) {
            changes.remove.push(name.to_owned());
        }
    }
}

/// The cookie names in a `Cookie` header (pairs without `=` have none).
fn cookie_names(header: &str) -> impl Iterator<Item = &str> {
    header.split(';').filter_map(|pair| pair.split_once('=').map(|(name, _)| name.trim()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(pairs: &[(&str, &str)]) -> RequestHeaders {
        RequestHeaders::from_pairs(pairs)
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
            identity: ForwardIdentity { subject: "alice", email: Some("a@example.com"), ..Default::default() },
        };
        let out = origin_headers(&h, &credential, &url, &[]).apply(&h);
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
            identity: ForwardIdentity { subject: "al\u{e9}", ..Default::default() },
        };
        let out = origin_headers(&h, &credential, &url, &[]).apply(&h);
        assert!(out.get("cookie").is_none());
        assert!(out.get("x-forwarded-user").is_none());
        assert_eq!(out["x-forwarded-host"], "127.0.0.1:8787");
    }

    #[test]
    fn a_replaced_authorization_drops_the_client_one() {
        let h = client(&[("Authorization", "Bearer the-users"), ("X-Forwarded-User", "admin")]);
        let url = url::Url::parse("https://gw.example.com").unwrap();
        let app = Credential::Replaced { access_token: Some("app-token"), identity: None };
        let out = origin_headers(&h, &app, &url, &[]).apply(&h);
        assert_eq!(out["authorization"], "Bearer app-token");
        assert!(out.get("x-forwarded-user").is_none());
        let identity = ForwardIdentity { subject: "alice", ..Default::default() };
        let none = Credential::Replaced { access_token: None, identity: Some(identity) };
        let out = origin_headers(&h, &none, &url, &[]).apply(&h);
        assert!(out.get("authorization").is_none());
        assert_eq!(out["x-forwarded-user"], "alice");
    }

    #[test]
    fn a_dpop_proof_goes_only_where_its_token_goes() {
        let h = client(&[("Authorization", "DPoP the-users"), ("DPoP", "the-proof")]);
        let url = url::Url::parse("https://gw.example.com").unwrap();
        let app = Credential::Replaced { access_token: Some("app-token"), identity: None };
        assert!(origin_headers(&h, &app, &url, &[]).apply(&h).get("dpop").is_none());
        let identity = ForwardIdentity { subject: "alice", ..Default::default() };
        let own = Credential::Presented { identity };
        assert_eq!(origin_headers(&h, &own, &url, &[]).apply(&h)["dpop"], "the-proof");
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
        let out = origin_headers(&h, &Credential::Anonymous, &url, &[]).apply(&h);
        assert_eq!(out["authorization"], "Basic abc");
        assert!(out.get("x-forwarded-user").is_none());
        assert!(out.get("remote-user").is_none());
    }

    fn alice() -> Credential<'static> {
        Credential::Presented { identity: ForwardIdentity { subject: "alice", ..Default::default() } }
    }

    #[test]
    fn a_header_with_control_bytes_is_stripped_by_name() {
        // The runtime lists the name whatever its value; `http` would refuse the value.
        let h = RequestHeaders::from_runtime(
            vec!["x-auth-request-groups".into(), "x-forwarded-user".into(), "accept".into()],
            64,
            |_| None,
        );
        let url = url::Url::parse("https://gw.example.com").unwrap();
        let changes = origin_headers(&h, &alice(), &url, &[]);
        assert!(changes.remove.iter().any(|n| n == "x-auth-request-groups"), "{changes:?}");
        assert!(changes.remove.iter().any(|n| n == "x-forwarded-user"));
        assert!(!changes.remove.iter().any(|n| n == "accept"));
    }

    #[test]
    fn connection_listed_names_never_drop_the_gateway_identity() {
        let h = client(&[
            ("Connection", "close, X-Forwarded-User, X-Forwarded-Email, Authorization"),
            ("Authorization", "Bearer caller"),
            ("X-Forwarded-User", "mallory"),
        ]);
        let url = url::Url::parse("https://gw.example.com").unwrap();
        let credential = Credential::Presented {
            identity: ForwardIdentity { subject: "alice", email: Some("a@x.io"), ..Default::default() },
        };
        let out = origin_headers(&h, &credential, &url, &[]).apply(&h);
        assert!(out.get("connection").is_none());
        assert_eq!(out.get_all("x-forwarded-user").iter().collect::<Vec<_>>(), vec!["alice"]);
        assert_eq!(out["x-forwarded-email"], "a@x.io");
        assert_eq!(out["authorization"], "Bearer caller");
    }

    #[test]
    fn deployment_strip_rules_apply() {
        let h = client(&[("X-Tenant-Role", "admin"), ("X-Corp-Groups", "admins"), ("X-Other", "kept")]);
        let url = url::Url::parse("https://gw.example.com").unwrap();
        let extra = [StripRule::parse("x-tenant-role").unwrap(), StripRule::parse("X-Corp-*").unwrap()];
        let out = origin_headers(&h, &Credential::Anonymous, &url, &extra).apply(&h);
        assert!(out.get("x-tenant-role").is_none());
        assert!(out.get("x-corp-groups").is_none());
        assert_eq!(out["x-other"], "kept");
    }

    #[test]
    fn the_origin_cookie_keeps_the_client_text() {
        let h = client(&[("Cookie", "a=\"q\"; __Host-edgeguard=s; flag;\tcity=Z\u{fc}rich")]);
        let url = url::Url::parse("https://gw.example.com").unwrap();
        let changes = origin_headers(&h, &Credential::Anonymous, &url, &[]);
        let cookie = changes.set.iter().find(|(n, _)| n == "cookie").map(|(_, v)| v.as_str());
        assert_eq!(cookie, Some("a=\"q\"; flag;\tcity=Z\u{fc}rich"));
        let untouched = client(&[("Cookie", "a=\"q\"; flag")]);
        assert_eq!(origin_headers(&untouched, &Credential::Anonymous, &url, &[]).set.len(), 2, "host and proto only");
    }
}
