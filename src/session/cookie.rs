//! Reading the `Cookie` header and writing `Set-Cookie` (RFC 6265bis), with the `__Host-` and
//! `__Secure-` prefixes that stop a sibling subdomain or plain-http page from planting them.

/// The session cookie: `__Host-` pins it to this host, path `/`, Secure.
pub const SESSION_COOKIE: &str = "__Host-edgeguard";
/// Prefix of the browser-binding cookies, one per sign-in in flight (named like its transaction
/// cookie): each login transaction carries the hash of its binding's value, so a transaction
/// planted from a sibling subdomain (which can set `__Secure-` cookies with `Domain=`, but
/// never `__Host-` ones) cannot be completed in another browser. One per sign-in rather than
/// one per browser, so tabs that start signing in at the same moment cannot overwrite each
/// other's binding.
pub const BINDING_COOKIE_PREFIX: &str = "__Host-edgeguard-bind-";
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

/// The client's `Cookie` header text without the gateway's own pairs, every other byte as the
/// client sent it (quotes, pairs without `=`, tabs, non-ASCII values): origins parse cookies in
/// their own ways, and the gateway has no business rewriting the ones it does not own. `None`
/// when nothing but whitespace is left.
pub fn without_gateway_cookies(header: &str) -> Option<String> {
    let kept: Vec<&str> = header
        .split(';')
        .filter(|pair| !pair.split_once('=').is_some_and(|(name, _)| is_gateway_cookie(name.trim())))
        .collect();
    let text = kept.join(";");
    let text = text.trim_start_matches([' ', '\t']);
    (!text.trim().is_empty()).then(|| text.to_owned())
}

/// The session cookie of a provider: [`SESSION_COOKIE`] for the default one (index 0), else
/// `__Host-edgeguard-<name>` (provider names are `[a-z0-9-]` and never start with `bind-`, so
/// they share no name with the binding cookies).
pub fn session_cookie_name(provider_index: usize, provider_name: &str) -> String {
    match provider_index {
        0 => SESSION_COOKIE.to_owned(),
        _ => format!("{SESSION_COOKIE}-{provider_name}"),
    }
}

/// Whether a cookie belongs to the gateway (and so must never reach the origin): every
/// provider's session cookie, the binding and the transaction cookies.
pub fn is_gateway_cookie(name: &str) -> bool {
    name == SESSION_COOKIE
        || name.strip_prefix(SESSION_COOKIE).is_some_and(|rest| rest.starts_with('-'))
        || name.starts_with(TX_COOKIE_PREFIX)
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
    fn non_ascii_and_odd_pairs_never_hide_the_gateway_cookie() {
        let header = "city=Z\u{fc}rich; junk; __Host-edgeguard=sealed; ctl=\u{1}";
        let pairs: Vec<_> = parse_cookie_header(header).collect();
        assert!(pairs.contains(&(SESSION_COOKIE, "sealed")), "{pairs:?}");
    }

    #[test]
    fn origin_cookie_text_is_the_client_text_minus_gateway_pairs() {
        let strip = without_gateway_cookies;
        assert_eq!(
            strip("a=\"quoted\"; __Host-edgeguard=s; flag; b=1;\tc=Z\u{fc}rich").as_deref(),
            Some("a=\"quoted\"; flag; b=1;\tc=Z\u{fc}rich")
        );
        assert_eq!(strip("__Host-edgeguard=s; theme=dark").as_deref(), Some("theme=dark"));
        assert_eq!(strip("theme=dark;__Secure-edgeguard-tx-1=t").as_deref(), Some("theme=dark"));
        assert_eq!(strip("__Host-edgeguard=s; __Secure-edgeguard-tx-1=t"), None);
        assert_eq!(strip("no-gateway=1;  spaced = v ").as_deref(), Some("no-gateway=1;  spaced = v "));
    }

    #[test]
    fn recognises_gateway_cookies() {
        assert!(is_gateway_cookie("__Host-edgeguard"));
        assert!(is_gateway_cookie("__Secure-edgeguard-tx-abc"));
        assert!(is_gateway_cookie("__Host-edgeguard-bind-0011223344556677"));
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
