//! The origin's answer on its way to the browser: it may not touch the gateway's cookies, and
//! an answer that carries a gateway cookie must not be stored by a shared cache.

use crate::session::cookie::{SESSION_COOKIE, TX_COOKIE_PREFIX};

/// Whether an origin `Set-Cookie` may reach the browser. One naming a gateway cookie would
/// overwrite or delete the session (fixation, forced sign-out) and is dropped. Names are
/// compared without case: browsers match the `__Host-`/`__Secure-` prefixes case-insensitively
/// (RFC 6265bis §4.1.3), so `__HOST-edgeguard` is as much ours.
pub fn origin_set_cookie_allowed(set_cookie: &str) -> bool {
    let name = set_cookie.split(';').next().and_then(|pair| pair.split_once('=')).map_or("", |(n, _)| n).trim();
    let lower = name.to_ascii_lowercase();
    let session = SESSION_COOKIE.to_ascii_lowercase();
    // Every provider's session cookie (`__Host-edgeguard-<name>`) and the binding cookies too.
    let ours = lower == session || lower.strip_prefix(&session).is_some_and(|rest| rest.starts_with('-'));
    !ours && !lower.starts_with(&TX_COOKIE_PREFIX.to_ascii_lowercase())
}

/// The `Cache-Control` of an origin answer the gateway adds a cookie to: `private`, keeping the
/// origin's other directives but those that let a shared cache store it (`public`,
/// `s-maxage`). A cached copy would hand one user's session cookie to the next.
pub fn private_cache_control(origin: Option<&str>) -> String {
    let kept: Vec<&str> = origin
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .filter(|d| {
            let name = d.split('=').next().unwrap_or_default().trim().to_ascii_lowercase();
            !matches!(name.as_str(), "public" | "s-maxage" | "private")
        })
        .collect();
    std::iter::once("private").chain(kept).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origin_cookies_that_name_the_gateways_are_dropped() {
        for ours in [
            "__Host-edgeguard=forged; Path=/; Secure; HttpOnly",
            "__host-EDGEGUARD=x",
            " __Host-edgeguard =x",
            "__Secure-edgeguard-tx-abc=planted; Path=/auth/callback",
            "__Host-edgeguard=; Max-Age=0",
        ] {
            assert!(!origin_set_cookie_allowed(ours), "{ours}");
        }
        for theirs in ["app=1; Path=/", "edgeguard=1", "__Host-app=1; Path=/; Secure", "flag"] {
            assert!(origin_set_cookie_allowed(theirs), "{theirs}");
        }
    }

    #[test]
    fn cache_control_becomes_private() {
        assert_eq!(private_cache_control(None), "private");
        assert_eq!(private_cache_control(Some("public, max-age=600, s-maxage=3600")), "private, max-age=600");
        assert_eq!(private_cache_control(Some("no-store")), "private, no-store");
        assert_eq!(private_cache_control(Some("private, max-age=5")), "private, max-age=5");
    }
}
