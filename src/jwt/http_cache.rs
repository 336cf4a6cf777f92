//! How long a JWKS response stays fresh, from its `Cache-Control` (RFC 9111 §5.2.2.1 `max-age`,
//! §5.1 `Age`), bounded so a provider can neither make the gateway refetch on every request nor
//! pin keys for days after a rotation.

use http::HeaderMap;
use http::header::{AGE, CACHE_CONTROL};

/// Bounds and default for the freshness lifetime, in seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TtlBounds {
    pub default_secs: u64,
    pub min_secs: u64,
    pub max_secs: u64,
}

/// The freshness lifetime in seconds: `max-age` less `Age`, clamped to the bounds; the default
/// when there is no usable `max-age`; the minimum for `no-store`/`no-cache` (honouring them
/// literally would mean one provider round trip per request).
pub fn freshness_secs(headers: &HeaderMap, bounds: TtlBounds) -> u64 {
    let mut max_age: Option<u64> = None;
    let mut no_cache = false;
    for value in headers.get_all(CACHE_CONTROL) {
        let Ok(text) = value.to_str() else { continue };
        for directive in text.split(',') {
            let directive = directive.trim();
            let (name, arg) = match directive.split_once('=') {
                Some((name, arg)) => (name.trim(), Some(arg.trim().trim_matches('"'))),
                None => (directive, None),
            };
            if name.eq_ignore_ascii_case("max-age") {
                // RFC 9111 §4.2.1: with several max-age directives, the response is stale.
                let parsed = arg.and_then(|a| a.parse::<u64>().ok()).unwrap_or(0);
                max_age = Some(max_age.map_or(parsed, |m| m.min(parsed)));
            } else if name.eq_ignore_ascii_case("no-store") || name.eq_ignore_ascii_case("no-cache") {
                no_cache = true;
            }
        }
    }
    let age = headers.get(AGE).and_then(|v| v.to_str().ok()).and_then(|v| v.trim().parse::<u64>().ok()).unwrap_or(0);
    let lifetime =
        if no_cache { bounds.min_secs } else { max_age.map_or(bounds.default_secs, |m| m.saturating_sub(age)) };
    lifetime.clamp(bounds.min_secs, bounds.max_secs.max(bounds.min_secs))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const BOUNDS: TtlBounds = TtlBounds { default_secs: 3600, min_secs: 300, max_secs: 86_400 };

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(http::HeaderName::from_bytes(name.as_bytes()).unwrap(), value.parse().unwrap());
        }
        map
    }

    #[test]
    fn table() {
        let cases: &[(&[(&str, &str)], u64)] = &[
            (&[], 3600),
            (&[("cache-control", "public, max-age=7200")], 7200),
            (&[("cache-control", "MAX-AGE=\"900\"")], 900),
            (&[("cache-control", "max-age=10")], 300),
            (&[("cache-control", "max-age=9999999")], 86_400),
            (&[("cache-control", "max-age=7200"), ("age", "3600")], 3600),
            (&[("cache-control", "max-age=600"), ("age", "3600")], 300),
            (&[("cache-control", "no-store")], 300),
            (&[("cache-control", "no-cache, max-age=7200")], 300),
            (&[("cache-control", "max-age=abc")], 300),
            (&[("cache-control", "max-age=7200, max-age=1800")], 1800),
            (&[("cache-control", "public"), ("cache-control", "max-age=5000")], 5000),
            (&[("cache-control", "s-maxage=60, must-revalidate")], 3600),
        ];
        for (pairs, want) in cases {
            assert_eq!(freshness_secs(&headers(pairs), BOUNDS), *want, "{pairs:?}");
        }
    }
}
