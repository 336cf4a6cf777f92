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

/// What the gateway does to the headers of an origin answer that has a `Set-Cookie` or gains
/// something.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnswerEdits<'a> {
    /// The answer's `Set-Cookie`s, replacing the origin's: those of the origin that may pass,
    /// then the gateway's own.
    pub set_cookies: Vec<String>,
    /// Headers to set, each replacing the origin's: `Cache-Control: private` when the gateway
    /// adds a cookie, then the gateway's own headers (a fresh `DPoP-Nonce`).
    pub set: Vec<(&'a str, String)>,
}

/// The edits to an origin answer with `origin_cookies` and `cache_control`, when the gateway
/// adds `set_cookies` and the headers `added`.
pub fn answer_edits<'a>(
    origin_cookies: impl IntoIterator<Item = String>,
    cache_control: Option<&str>,
    set_cookies: &[String],
    added: &[(&'a str, String)],
) -> AnswerEdits<'a> {
    let mut cookies: Vec<String> = origin_cookies.into_iter().filter(|c| origin_set_cookie_allowed(c)).collect();
    cookies.extend_from_slice(set_cookies);
    let mut set = Vec::new();
    if !set_cookies.is_empty() {
        set.push(("cache-control", private_cache_control(cache_control)));
    }
    set.extend(added.iter().cloned());
    AnswerEdits { set_cookies: cookies, set }
}

/// Header pairs sent flat (`[name, value, name, value, ...]`), as the JS entry hands them back;
/// an odd last name is dropped.
pub fn header_pairs(flat: &[String]) -> Vec<(&str, String)> {
    flat.chunks_exact(2).filter_map(|p| Some((p.first()?.as_str(), p.get(1)?.clone()))).collect()
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

    #[test]
    fn an_answer_keeps_the_origins_own_cookies_and_gains_the_gateways_privately() {
        let origin = ["app=1; Path=/".to_string(), "__Host-edgeguard=forged; Path=/".to_string()];
        let ours = ["__Host-edgeguard=resealed; Path=/; Secure; HttpOnly".to_string()];
        let nonce = [("dpop-nonce", "n-2".to_string())];
        let edits = answer_edits(origin.clone(), Some("public, max-age=60"), &ours, &nonce);
        assert_eq!(edits.set_cookies, ["app=1; Path=/", "__Host-edgeguard=resealed; Path=/; Secure; HttpOnly"]);
        assert_eq!(edits.set, [("cache-control", "private, max-age=60".into()), ("dpop-nonce", "n-2".into())]);
        let untouched = answer_edits(origin, Some("public"), &[], &[]);
        assert_eq!(untouched.set_cookies, ["app=1; Path=/"], "the forged gateway cookie is dropped all the same");
        assert!(untouched.set.is_empty(), "without a gateway cookie the origin's caching stands");
    }

    #[test]
    fn flat_pairs_come_back_as_pairs() {
        let flat = ["dpop-nonce", "n", "x-odd"].map(String::from);
        assert_eq!(header_pairs(&flat), [("dpop-nonce", "n".to_string())]);
    }
}
