//! Reading the `Cookie` header and writing `Set-Cookie` (RFC 6265bis), with the `__Host-` and
//! `__Secure-` prefixes that stop a sibling subdomain or plain-http page from planting them.

/// The session cookie: `__Host-` pins it to this host, path `/`, Secure.
pub const SESSION_COOKIE: &str = "__Host-edgeguard";
/// The browser-binding cookie of sign-ins in flight: each login transaction carries the hash of
/// its value, so a transaction planted from a sibling subdomain (which can set `__Secure-`
/// cookies with `Domain=`, but never `__Host-` ones) cannot be completed in another browser.
pub const BINDING_COOKIE: &str = "__Host-edgeguard-bind";
/// Prefix of the per-flow login-transaction cookies (one per concurrent sign-in).
pub const TX_COOKIE_PREFIX: &str = "__Secure-edgeguard-tx-";
/// Largest cookie value the gateway will try to open; anything bigger is not ours.
pub const MAX_COOKIE_VALUE_LEN: usize = 4096;

/// Name/value pairs from a request's `Cookie` headers, in order.
pub fn parse_cookie_header(header: &str) -> impl Iterator<Item = (&str, &str)> {
    header.split(';').filter_map(|pair| {
        let (name, value) = pair.split_once('=')?;
        let value = value.trim();
        let value = value.strip_prefix('"').and_then(|v| v.strip_suffix('"')).unwrap_or(value);
        Some((name.trim(), value))
    })
}

/// Whether a cookie belongs to the gateway (and so must never reach the origin).
pub fn is_gateway_cookie(name: &str) -> bool {
    name == SESSION_COOKIE || name == BINDING_COOKIE || name.starts_with(TX_COOKIE_PREFIX)
}

/// A `Set-Cookie` value. Always HttpOnly and Secure (browsers accept Secure cookies from
/// `http://localhost` too), SameSite=Lax so the provider's redirect back carries them.
pub fn set_cookie(name: &str, value: &str, path: &str, max_age_secs: u64) -> String {
    format!("{name}={value}; Path={path}; Max-Age={max_age_secs}; HttpOnly; Secure; SameSite=Lax")
}

/// A `Set-Cookie` value that deletes the cookie.
pub fn clear_cookie(name: &str, path: &str) -> String {
    format!("{name}=; Path={path}; Max-Age=0; HttpOnly; Secure; SameSite=Lax")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_pairs_and_tolerates_spacing_and_quotes() {
        let pairs: Vec<_> = parse_cookie_header("a=1; b = \"two\";c=;junk; d=x=y").collect();
        assert_eq!(pairs, vec![("a", "1"), ("b", "two"), ("c", ""), ("d", "x=y")]);
    }

    #[test]
    fn recognises_gateway_cookies() {
        assert!(is_gateway_cookie("__Host-edgeguard"));
        assert!(is_gateway_cookie("__Secure-edgeguard-tx-abc"));
        assert!(is_gateway_cookie("__Host-edgeguard-bind"));
        assert!(!is_gateway_cookie("edgeguard"));
        assert!(!is_gateway_cookie("other"));
    }

    #[test]
    fn set_cookie_has_every_attribute() {
        let c = set_cookie(SESSION_COOKIE, "v", "/", 60);
        assert_eq!(c, "__Host-edgeguard=v; Path=/; Max-Age=60; HttpOnly; Secure; SameSite=Lax");
        assert!(clear_cookie(SESSION_COOKIE, "/").contains("Max-Age=0"));
    }
}
