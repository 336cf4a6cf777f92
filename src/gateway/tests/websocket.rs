//! WebSocket upgrades (issue 11, item 2): which ones reach the origin with their handshake, and
//! what the edge is told about the socket.

use super::bearer::{access_token, call};
use super::*;
use crate::gateway::{CLOSE_SESSION_ENDED, SocketPlan, SocketWatch};

const ROUTES: &str = r#"[
    {"prefix": "/", "auth": "session"},
    {"prefix": "/ws/pass/", "auth": "session", "websocket": "pass"},
    {"prefix": "/ws/proxy/", "auth": "session", "websocket": "proxy"},
    {"prefix": "/ws/api/", "auth": "bearer", "websocket": "proxy"},
    {"prefix": "/ws/public/", "auth": "public", "websocket": "pass"}
]"#;

fn ws_world() -> World {
    let mut w = world();
    w.gateway = Gateway::new(config(&[("ROUTES", ROUTES), ("API_AUDIENCES", "https://api.example.test")]));
    w
}

fn upgrade<'a>(extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut headers = vec![
        ("upgrade", "websocket"),
        ("connection", "keep-alive, Upgrade, X-Forwarded-User"),
        ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
        ("sec-websocket-version", "13"),
        ("sec-websocket-protocol", "chat"),
        ("sec-fetch-mode", "websocket"),
        ("x-forwarded-user", "mallory"),
    ];
    headers.extend_from_slice(extra);
    headers
}

fn plan(d: &Decision) -> &ForwardPlan {
    match &d.outcome {
        Outcome::Forward(plan) => plan,
        Outcome::Respond(r) => panic!("expected a forward, got {}: {:?}", r.status(), d.log),
    }
}

#[test]
fn a_signed_in_upgrade_reaches_the_origin_with_its_handshake_and_no_spoofed_identity() {
    let w = ws_world();
    let session = sign_in(&w, "/");
    let req = request(Method::GET, "/ws/pass/chat", &upgrade(&[("cookie", &session)]));
    let d = block_on(w.gateway.handle(&w.ports, &req));
    let sent = plan(&d).headers.apply(&req.headers);
    assert_eq!(plan(&d).socket, Some(SocketPlan::Pass));
    assert_eq!(sent["upgrade"], "websocket");
    assert_eq!(sent["connection"], "Upgrade", "the gateway's own, not the client's list");
    assert_eq!(sent["sec-websocket-key"], "dGhlIHNhbXBsZSBub25jZQ==");
    assert_eq!(sent["sec-websocket-protocol"], "chat");
    assert_eq!(sent.get_all("x-forwarded-user").iter().collect::<Vec<_>>(), vec!["alice"]);
    assert_eq!(sent["authorization"], "Bearer access-token-1");
}

#[test]
fn upgrades_are_stripped_where_the_route_does_not_allow_them_and_for_other_methods() {
    let w = ws_world();
    let session = sign_in(&w, "/");
    for (method, path) in [(Method::GET, "/chat"), (Method::POST, "/ws/pass/chat")] {
        let req = request(method, path, &upgrade(&[("cookie", &session)]));
        let d = block_on(w.gateway.handle(&w.ports, &req));
        let sent = plan(&d).headers.apply(&req.headers);
        assert!(sent.get("upgrade").is_none() && sent.get("connection").is_none(), "{path}: {sent:?}");
        assert_eq!(plan(&d).socket, None, "{path}");
    }
}

#[test]
fn an_unauthenticated_upgrade_gets_401_never_a_redirect() {
    let w = ws_world();
    for path in ["/ws/pass/chat", "/ws/proxy/chat", "/chat"] {
        let req = request(Method::GET, path, &upgrade(&[("accept", "text/html")]));
        let d = block_on(w.gateway.handle(&w.ports, &req));
        assert_eq!(response(&d).status(), 401, "{path}");
        assert_eq!(d.log.reason, "session_missing");
    }
}

#[test]
fn a_proxied_session_socket_closes_at_the_idle_deadline_and_watches_the_tombstone() {
    let w = ws_world();
    let session = sign_in(&w, "/");
    let req = request(Method::GET, "/ws/proxy/chat", &upgrade(&[("cookie", &session)]));
    let d = block_on(w.gateway.handle(&w.ports, &req));
    let Some(SocketPlan::Proxy(SocketWatch {
        session: Some(key),
        tombstone: Some(tombstone),
        close_at_ms,
        revalidate_ms,
    })) = plan(&d).socket.clone()
    else {
        panic!("not proxied: {:?}", plan(&d).socket);
    };
    assert!(key.starts_with("session:v1:") && tombstone == key.replace("session:v1:", "session-ended:v1:"));
    assert_eq!(close_at_ms, (NOW + 3600) * 1000, "SESSION_IDLE_TIMEOUT (1 h) comes before SESSION_TTL (8 h)");
    assert_eq!(revalidate_ms, 30_000);
    assert_eq!(CLOSE_SESSION_ENDED, 4401);

    // Signing out names the session, so the relay closes its sockets.
    assert!(w.gateway.take_ended_sessions().is_empty());
    let logout = request(Method::POST, "/auth/logout", &[("cookie", &session), ("origin", "https://gw.example.com")]);
    block_on(w.gateway.handle(&w.ports, &logout));
    assert_eq!(w.gateway.take_ended_sessions(), vec![key]);
    assert!(w.gateway.take_ended_sessions().is_empty(), "each ended session is handed over once");
}

#[test]
fn a_proxied_bearer_socket_closes_when_the_token_expires() {
    let w = ws_world();
    let token = access_token(&w, json!({ "exp": NOW + 120 }));
    let auth = format!("Bearer {token}");
    let d = call(&w, Method::GET, "/ws/api/feed", &upgrade(&[("authorization", &auth)]));
    let expected =
        SocketWatch { session: None, tombstone: None, close_at_ms: (NOW + 120) * 1000, revalidate_ms: 30_000 };
    assert_eq!(plan(&d).socket, Some(SocketPlan::Proxy(expected)));
    let refused = call(&w, Method::GET, "/ws/api/feed", &upgrade(&[]));
    assert_eq!(response(&refused).status(), 401);
}

#[test]
fn a_public_route_may_pass_upgrades() {
    let w = ws_world();
    let req = request(Method::GET, "/ws/public/ticker", &upgrade(&[]));
    let d = block_on(w.gateway.handle(&w.ports, &req));
    assert_eq!(plan(&d).socket, Some(SocketPlan::Pass));
    let sent = plan(&d).headers.apply(&req.headers);
    assert!(sent.get("x-forwarded-user").is_none());
}

#[test]
fn the_tombstone_is_read_as_often_as_session_revalidate_says() {
    let mut w = world();
    w.gateway = Gateway::new(config(&[
        ("ROUTES", ROUTES),
        ("API_AUDIENCES", "https://api.example.test"),
        ("SESSION_REVALIDATE", "5s"),
    ]));
    let session = sign_in(&w, "/");
    let req = request(Method::GET, "/ws/proxy/chat", &upgrade(&[("cookie", &session)]));
    let d = block_on(w.gateway.handle(&w.ports, &req));
    let Some(SocketPlan::Proxy(watch)) = &plan(&d).socket else { panic!("not proxied: {:?}", plan(&d).socket) };
    assert_eq!(watch.revalidate_ms, 5_000);
}
