//! Rate limits on the gateway's own endpoints that anyone can call without credentials: sign-in
//! (`/auth/login`), the callback (`/auth/callback`, a token-endpoint call per request) and
//! back-channel logout (`/auth/backchannel-logout`, a signature check and KV work per request) and
//! front-channel logout (`/auth/frontchannel-logout`, a KV listing per request).
//!
//! The counting is the Workers rate-limiting binding's (`AUTH_RATE_LIMIT`, keyed by the client's
//! `CF-Connecting-IP`); the edge asks it only for these paths and only when it is bound, so the
//! hot path never waits on it and nothing changes without it. This module decides which paths
//! count and what a limited client is told.

use super::{Decision, IncomingRequest, log, paths, respond::error_response, respond_with};
use crate::error::GatewayError;
use crate::policy::normalise_path;

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

/// The answer once the client is over its limit: `429` with `Retry-After`, logged as `rate_limited`.
pub fn rate_limited_decision(req: &IncomingRequest) -> Decision {
    let err = GatewayError::RateLimited(RETRY_AFTER_SECS);
    let mut entry = log(req, err.reason(), Some(err.status()));
    entry.detail = Some(err.to_string());
    respond_with(error_response(&err, req, "edgeguard", &[]), entry)
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
