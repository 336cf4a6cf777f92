//! A client over its limit on a gateway endpoint (issue 11, item 4): what it is told.

use super::*;
use crate::gateway::rate_limited_decision;
use crate::gateway::{Counted, RateLimitCheck};

#[test]
fn a_limited_client_gets_429_with_retry_after_and_a_log_reason() {
    for req in [navigate("/auth/login?rd=/", ""), request(Method::POST, "/auth/backchannel-logout", &[])] {
        let d = rate_limited_decision(&req);
        assert_eq!(d.response.status(), 429);
        assert_eq!(d.response.headers()["retry-after"], "60");
        assert_eq!((d.log.reason, d.log.status), ("rate_limited", Some(429)));
    }
}

const LIMITED_ROUTES: &str = r#"[
    {"prefix": "/", "auth": "session", "rate_limit": {"binding": "USER_LIMIT", "key": "sub"}},
    {"prefix": "/api/", "auth": "bearer", "rate_limit": {"binding": "API_LIMIT", "key": "client_id"}},
    {"prefix": "/hooks/", "auth": "public", "rate_limit": {"binding": "IP_LIMIT", "key": "ip"}},
    {"prefix": "/free/", "auth": "public"}
]"#;

fn limited_world() -> World {
    let mut w = world();
    w.gateway = Gateway::new(config(&[("ROUTES", LIMITED_ROUTES), ("API_AUDIENCES", "https://api.example.test")]));
    w
}

/// The route limit's binding and key, for a client at 203.0.113.5.
fn limit_of(d: &Decision) -> Option<(String, String)> {
    match &d.outcome {
        Outcome::Forward(plan) => plan.rate_limit.as_ref().map(|l| (l.binding.clone(), l.key(Some("203.0.113.5")))),
        Outcome::Respond(r) => panic!("expected a forward, got {}: {:?}", r.status(), d.log),
    }
}

fn check(binding: &str, key: &str) -> Option<(String, String)> {
    Some((binding.into(), key.into()))
}

#[test]
fn route_limits_count_the_authenticated_caller_by_the_routes_key() {
    let w = limited_world();
    let session = sign_in(&w, "/");
    let page = block_on(w.gateway.handle(&w.ports, &navigate("/docs", &session)));
    assert_eq!(limit_of(&page), check("USER_LIMIT", "sub:alice"));
    let token = super::bearer::access_token(&w, json!({ "client_id": "orders-app" }));
    let auth = format!("Bearer {token}");
    let api = super::bearer::call(&w, Method::GET, "/api/orders", &[("authorization", &auth)]);
    assert_eq!(limit_of(&api), check("API_LIMIT", "client_id:orders-app"));
    let v2 = super::bearer::access_token(&w, json!({ "azp": "spa" }));
    let api = super::bearer::call(&w, Method::GET, "/api/orders", &[("authorization", &format!("Bearer {v2}"))]);
    assert_eq!(limit_of(&api), check("API_LIMIT", "client_id:spa"), "Entra v2: azp");
    let hook = request(Method::POST, "/hooks/x", &[]);
    assert_eq!(limit_of(&block_on(w.gateway.handle(&w.ports, &hook))), check("IP_LIMIT", "ip:203.0.113.5"));
    let unknown = RateLimitCheck { binding: "IP_LIMIT".into(), counted: Counted::ClientIp };
    assert_eq!(unknown.key(None), "ip:unknown", "no address: one shared count, never none");
    let free = request(Method::GET, "/free/x", &[]);
    assert_eq!(limit_of(&block_on(w.gateway.handle(&w.ports, &free))), None, "nothing changes where no route asks");
}

#[test]
fn nothing_is_counted_before_authentication() {
    let w = limited_world();
    let refused = super::bearer::call(&w, Method::GET, "/api/orders", &[]);
    assert_eq!(response(&refused).status(), 401);
    let anonymous = request(Method::GET, "/docs", &[("accept", "application/json")]);
    assert_eq!(response(&block_on(w.gateway.handle(&w.ports, &anonymous))).status(), 401);
}
