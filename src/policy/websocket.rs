//! Whether a route lets WebSocket upgrades (RFC 6455 §4.1) through, and how (the `websocket`
//! route field).
//!
//! Off by default: an upgrade on such a route has its `Upgrade`/`Connection` stripped like any
//! hop-by-hop header, so the origin sees a plain GET. Turning it on is a choice about what
//! happens when the session ends while a socket is open: with `pass` nothing (the socket is the
//! origin's and lives until one side closes it), with `proxy` the Worker sits in the socket and
//! closes it then, at the cost of running for as long as the socket is open.

use super::AuthMode;
use serde::Deserialize;

/// A route's WebSocket handling.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WebSocketMode {
    /// Upgrades are not passed on: `Upgrade` and `Connection` are stripped (the default).
    #[default]
    Off,
    /// After authentication the upgrade goes to the origin, whose `101` and socket are handed
    /// to the client as they are; the gateway is out of the path from then on.
    Pass,
    /// After authentication the Worker opens the origin's socket itself, relays messages both
    /// ways, and closes both sides when the caller's session (or token) ends or they sign out.
    Proxy,
}

/// Problems with a route's `websocket` field, for the config error list.
pub fn check_websocket(auth: AuthMode, mode: WebSocketMode) -> Option<String> {
    (mode == WebSocketMode::Proxy && auth == AuthMode::Public).then(|| {
        "websocket \"proxy\" closes sockets when the caller's session ends, and a public route has no caller: \
         use websocket \"pass\", or auth session, bearer or session_or_bearer"
            .to_owned()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proxy_needs_a_caller() {
        assert!(check_websocket(AuthMode::Public, WebSocketMode::Proxy).is_some());
        for auth in [AuthMode::Session, AuthMode::Bearer, AuthMode::SessionOrBearer] {
            assert_eq!(check_websocket(auth, WebSocketMode::Proxy), None);
        }
        assert_eq!(check_websocket(AuthMode::Public, WebSocketMode::Pass), None);
    }
}
