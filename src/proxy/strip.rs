//! Which client headers never reach the origin: anything that could claim an identity, a
//! client address or a rewritten URL, hop-by-hop headers, and a deployment's own names.
//!
//! Names are compared after lower-casing and turning `_` into `-`, because many servers (CGI,
//! PHP, nginx with `underscores_in_headers`) treat `X_Forwarded_User` as `X-Forwarded-User`.
//! The list is matched against the runtime's header *names*, never against parsed values, so a
//! header whose value is odd (control bytes, obs-text) is stripped like any other.

use std::borrow::Cow;

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
    "x-remote-group",
    "x-user",
    "x-email",
    "x-webauth-user",
    "x-authenticated-userid",
    "x-arr-clientcert",
    "x-real-ip",
    "x-client-ip",
    "client-ip",
    "true-client-ip",
    // URL rewrites that IIS, Symfony and Laravel origins obey (a route bypass)
    "x-original-url",
    "x-rewrite-url",
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
    "x-remote-extra-",
    "x-consumer-",
    "x-ssl-client-",
    "proxy-",
];

/// A header name as servers may read it: lower case, `_` as `-`. Borrowed when it already is
/// (the runtime lists names in lower case): this runs for every client header of every request.
pub fn normalise(name: &str) -> Cow<'_, str> {
    if name.bytes().any(|b| b == b'_' || b.is_ascii_uppercase()) {
        Cow::Owned(name.to_ascii_lowercase().replace('_', "-"))
    } else {
        Cow::Borrowed(name)
    }
}

/// One entry of a deployment's own strip list (`STRIP_HEADERS`): a name, or a prefix written
/// with a trailing `*`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StripRule {
    Name(String),
    Prefix(String),
}

impl StripRule {
    /// A rule from the setting's text, or `None` if it is not a header name (an optional
    /// trailing `*`).
    pub fn parse(text: &str) -> Option<Self> {
        let text = text.trim();
        let (name, prefix) = match text.strip_suffix('*') {
            Some(name) => (name, true),
            None => (text, false),
        };
        let is_token = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'+-.^_`|~".contains(&b);
        if name.is_empty() || !name.bytes().all(is_token) {
            return None;
        }
        let name = normalise(name).into_owned();
        Some(if prefix { StripRule::Prefix(name) } else { StripRule::Name(name) })
    }

    fn matches(&self, normalised: &str) -> bool {
        match self {
            StripRule::Name(n) => normalised == n,
            StripRule::Prefix(p) => normalised.starts_with(p.as_str()),
        }
    }
}

/// Whether a client header of this name is removed before the origin request.
pub fn is_stripped(name: &str, extra: &[StripRule]) -> bool {
    let name = normalise(name);
    let name = name.as_ref();
    STRIPPED.contains(&name)
        || STRIPPED_PREFIXES.iter().any(|p| name.starts_with(p))
        || extra.iter().any(|rule| rule.matches(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_origins_trust_are_stripped_in_any_spelling() {
        for name in [
            "X-Original-URL",
            "X-Rewrite-Url",
            "X-Remote-Group",
            "X-Remote-Extra-Scopes",
            "X-WEBAUTH-USER",
            "X-Authenticated-Userid",
            "X-Consumer-Username",
            "X-Consumer-Custom-ID",
            "X-SSL-Client-Verify",
            "X-SSL-Client-S-DN",
            "X-ARR-ClientCert",
            "X-Client-IP",
            "Client-IP",
            "client_ip",
            "x_webauth_user",
        ] {
            assert!(is_stripped(name, &[]), "{name}");
        }
        for kept in ["accept", "x-custom", "x-request-id", "x-original-method-override", "consumer"] {
            assert!(!is_stripped(kept, &[]), "{kept}");
        }
    }

    #[test]
    fn a_deployment_adds_names_and_prefixes() {
        let extra: Vec<StripRule> =
            ["X-Tenant-Admin", "x-corp-*"].iter().map(|t| StripRule::parse(t).unwrap()).collect();
        assert!(is_stripped("x-tenant-admin", &extra));
        assert!(is_stripped("X_Tenant_Admin", &extra));
        assert!(is_stripped("X-Corp-Role", &extra));
        assert!(!is_stripped("x-tenant-admins", &extra));
        assert!(!is_stripped("x-corporate", &extra));
        for bad in ["", "*", "x y", "x:y", "x-\u{e9}*"] {
            assert_eq!(StripRule::parse(bad), None, "{bad:?}");
        }
    }
}
