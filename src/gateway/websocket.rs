//! WebSocket upgrades on routes that let them through (the `websocket` route field, RFC 6455).
//!
//! The core decides, the edge carries out. For an authenticated upgrade on a `pass` or `proxy`
//! route the core keeps the handshake (`Upgrade: websocket`, `Connection: Upgrade`, set by the
//! gateway itself after every removal, and the client's `Sec-WebSocket-*` headers, which are
//! never stripped) and says in the [`SocketPlan`] what the edge does with the socket:
//! - `Pass`: return the origin's `101` and its socket as they are. The gateway is out of the
//!   path from then on; a session that ends leaves the socket open until a side closes it.
//! - `Proxy`: the edge's relay (`scripts/ws-relay.mjs`) holds both sockets and closes them with
//!   [`CLOSE_SESSION_ENDED`] at the [`SocketWatch`]'s deadline, when this isolate ends the
//!   session (logout, back-channel logout, a refused refresh: [`super::Gateway::take_ended_sessions`]),
//!   or when the session's tombstone appears in KV (read every `SESSION_REVALIDATE`, as a warm
//!   session is re-read).
//!
//! Every other upgrade (route `off`, or a method other than GET) loses `Upgrade`/`Connection`
//! like any hop-by-hop header, and an unauthenticated one is refused before any of this (a
//! handshake is never a navigation, so it gets a `401`, never a redirect it cannot follow).

use super::origin_token::CallerScope;
use super::request::IncomingRequest;
use crate::policy::{Route, WebSocketMode};
use crate::proxy::HeaderChanges;
use crate::store::tombstone_key;

/// The close code for a proxied socket whose session ended: in the range RFC 6455 §7.4.2 leaves
/// to applications, read as "401": sign in again before reconnecting (graphql-ws uses it too).
/// Not 1008 (policy violation): a client cannot tell that from any other policy and may simply
/// retry.
pub const CLOSE_SESSION_ENDED: u16 = 4401;

/// What the edge does with a forwarded WebSocket upgrade.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SocketPlan {
    /// Hand the origin's `101` and socket to the client.
    Pass,
    /// Relay the socket through the Worker and close it as the watch says.
    Proxy(SocketWatch),
}

/// When a proxied socket must be closed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SocketWatch {
    /// The session's storage key (`session:v1:<hash>`: no secret), matched against the sessions
    /// this isolate ends; `None` for a bearer caller.
    pub session: Option<String>,
    /// The session's tombstone in KV (`session-ended:v1:<hash>`), read every `revalidate_ms`,
    /// so a logout in another isolate or location closes the socket too.
    pub tombstone: Option<String>,
    /// The latest moment the socket may stay open (ms since the epoch): the session's absolute
    /// or idle deadline, whichever is first, or a bearer token's `exp`.
    pub close_at_ms: u64,
    /// How often the tombstone is read: as often as a warm session is re-read from KV
    /// (`SESSION_REVALIDATE`).
    pub revalidate_ms: u64,
}

/// Whether this request is a WebSocket upgrade the route lets through.
pub fn passes_upgrade(route: &Route, req: &IncomingRequest) -> bool {
    route.websocket != WebSocketMode::Off && req.is_websocket_upgrade()
}

/// Keep the handshake on the origin request. The client's own `Upgrade` and `Connection` were
/// removed with the other hop-by-hop headers; the gateway sets them anew, so names a client
/// lists in its `Connection` can never make the runtime drop the gateway's identity headers.
pub fn keep_handshake(headers: &mut HeaderChanges) {
    headers.set.push(("upgrade".into(), "websocket".to_owned()));
    headers.set.push(("connection".into(), "Upgrade".to_owned()));
}

/// The socket plan for a forwarded request, `None` unless it is an upgrade the route lets
/// through. A `proxy` route without a deadline for the caller (none exists: public routes
/// cannot be `proxy`) closes at once rather than never.
pub fn socket_plan(
    route: &Route,
    req: &IncomingRequest,
    caller: &CallerScope<'_>,
    revalidate_secs: u64,
) -> Option<SocketPlan> {
    if !passes_upgrade(route, req) {
        return None;
    }
    if route.websocket == WebSocketMode::Pass {
        return Some(SocketPlan::Pass);
    }
    Some(SocketPlan::Proxy(SocketWatch {
        session: caller.session_key.map(str::to_owned),
        tombstone: caller.session_key.map(tombstone_key),
        close_at_ms: caller.ends_at.unwrap_or(0).saturating_mul(1000),
        revalidate_ms: revalidate_secs.saturating_mul(1000),
    }))
}
