//! Rate limits on the gateway's own endpoints that anyone can call without credentials: sign-in
//! (`/auth/login`), the callback (`/auth/callback`, a token-endpoint call per request) and
//! back-channel logout (`/auth/backchannel-logout`, a signature check and KV work per request) and
//! front-channel logout (`/auth/frontchannel-logout`, a KV listing per request); and per-route
//! limits (the `rate_limit` route field), counted per caller after authentication.
//!
//! The counting is the Workers rate-limiting binding's: `AUTH_RATE_LIMIT` keyed by the client's
//! `CF-Connecting-IP` for the endpoints, asked only for these paths and only when it is bound;
//! a route's own binding keyed as the route says, asked only for that route's forwarded
//! requests (the plan's [`RateLimitCheck`]). So the hot path of any other route never waits
//! on a counter, and nothing changes where no route asks. This module decides which requests
//! count, under which key, and what a limited client is told.

use super::origin_token::CallerScope;
use super::{IncomingRequest, Refusal, paths};
use crate::error::GatewayError;
use crate::policy::{RateLimitKey, Route, normalise_path};

/// The Workers rate-limiting binding the edge asks, when the Worker has it.
pub const RATE_LIMIT_BINDING: &str = "AUTH_RATE_LIMIT";

/// Seconds a limited client is told to wait: the binding's longest period (10 s or 60 s).
pub const RETRY_AFTER_SECS: u32 = 60;

/// Whether a request to `path` counts against the client's limit: the path the gateway
/// dispatches on (canonical), so `/auth/%6Cogin` counts as `/auth/login`.
pub fn rate_limited_endpoint(path: &str) -> bool {
    if !path.starts_with("/auth/") && !path.contains('%') {
        return false;
    }
    matches!(
        normalise_path(path).as_deref(),
        Ok(paths::LOGIN | paths::CALLBACK | paths::BACKCHANNEL_LOGOUT | paths::FRONTCHANNEL_LOGOUT)
    )
}

/// A count the edge makes before forwarding: `binding.limit({ key })`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateLimitCheck {
    pub binding: String,
    /// Who is counted; a client address is read by the edge, only for routes keyed by it, so
    /// no other request pays for reading `CF-Connecting-IP`.
    pub counted: Counted,
}

/// What a route's limit counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Counted {
    /// The authenticated caller, as the key: `sub:<sub>` or `client_id:<id>`.
    Caller(String),
    /// The client's address (`CF-Connecting-IP`).
    ClientIp,
}

impl RateLimitCheck {
    /// The binding's key. Each kind names itself, so a binding shared by routes with different
    /// keys never mixes a user with an address.
    pub fn key(&self, client_ip: Option<&str>) -> String {
        match &self.counted {
            Counted::Caller(key) => key.clone(),
            Counted::ClientIp => format!("ip:{}", client_ip.unwrap_or("unknown")),
        }
    }
}

/// The route's limit for this caller, if the route has one.
pub(super) fn route_limit(route: &Route, caller: &CallerScope<'_>) -> Option<RateLimitCheck> {
    let limit = route.rate_limit.as_ref()?;
    // With several providers the provider's name comes first (names have no `:`), so two
    // providers' users that share a `sub` or a client id never share a budget.
    let of = caller.provider.map(|name| format!("{name}:")).unwrap_or_default();
    let counted = match (limit.key, caller.client_id, caller.sub) {
        (RateLimitKey::ClientId, Some(client), _) => Counted::Caller(format!("client_id:{of}{client}")),
        (RateLimitKey::Sub | RateLimitKey::ClientId, _, Some(sub)) => Counted::Caller(format!("sub:{of}{sub}")),
        // A route with a caller always has a subject; without one, count the address.
        _ => Counted::ClientIp,
    };
    Some(RateLimitCheck { binding: limit.binding.clone(), counted })
}

/// The answer once the client is over its limit: `429` with `Retry-After`, logged as `rate_limited`.
pub fn rate_limited_decision(req: &IncomingRequest) -> Refusal {
    super::refusal(GatewayError::RateLimited(RETRY_AFTER_SECS), req)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_unauthenticated_gateway_endpoints_count() {
        for counted in
            ["/auth/login", "/auth/callback", "/auth/backchannel-logout", "/auth/%6Cogin", "/%61uth/callback"]
        {
            assert!(rate_limited_endpoint(counted), "{counted}");
        }
        for free in ["/", "/api/x", "/auth/me", "/auth/logout", "/auth/health", "/auth/login/x", "/AUTH/login", "/%2e"]
        {
            assert!(!rate_limited_endpoint(free), "{free}");
        }
    }
}
