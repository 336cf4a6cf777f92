//! Per-route rate limits (the `rate_limit` route field): a Workers rate-limiting binding named on
//! the route, counted per caller after authentication, so one user or client application
//! cannot use up an API's capacity for everyone.

use super::AuthMode;
use serde::Deserialize;

/// What a route's requests are counted by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RateLimitKey {
    /// The caller's subject: the session's or the token's `sub`.
    Sub,
    /// The client application: the token's `client_id` (RFC 9068), else `azp`, else `appid`
    /// (Entra v1); a session caller, or a token with none of them, counts by its `sub`.
    ClientId,
    /// The client's address (`CF-Connecting-IP`).
    Ip,
}

/// A route's limit: which binding counts, and by what.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteRateLimit {
    pub binding: String,
    pub key: RateLimitKey,
}

/// Problems with a route's `rate_limit`, for the config error list.
pub fn check_rate_limit(auth: AuthMode, limit: &RouteRateLimit) -> Option<String> {
    let name_ok = !limit.binding.is_empty()
        && limit.binding.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        && !limit.binding.starts_with(|c: char| c.is_ascii_digit());
    if !name_ok {
        return Some(format!(
            "rate_limit binding {:?} is not a binding name (letters, digits and _, e.g. \"API_RATE_LIMIT\")",
            limit.binding
        ));
    }
    (auth == AuthMode::Public && limit.key != RateLimitKey::Ip).then(|| {
        "rate_limit key \"sub\" and \"client_id\" need a caller, and a public route has none: use key \"ip\"".to_owned()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limit(binding: &str, key: RateLimitKey) -> RouteRateLimit {
        RouteRateLimit { binding: binding.into(), key }
    }

    #[test]
    fn binding_names_and_keys_are_checked() {
        assert_eq!(check_rate_limit(AuthMode::Bearer, &limit("API_RATE_LIMIT", RateLimitKey::ClientId)), None);
        assert_eq!(check_rate_limit(AuthMode::Public, &limit("PUBLIC_LIMIT", RateLimitKey::Ip)), None);
        assert!(check_rate_limit(AuthMode::Public, &limit("L", RateLimitKey::Sub)).unwrap().contains("key \"ip\""));
        for bad in ["", "api-limit", "1LIMIT", "A B"] {
            assert!(check_rate_limit(AuthMode::Session, &limit(bad, RateLimitKey::Sub)).is_some(), "{bad:?}");
        }
    }
}
