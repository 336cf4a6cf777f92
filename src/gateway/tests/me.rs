//! `GET /auth/me` for single-page apps.

use super::*;

fn me(w: &World, cookie: &str) -> Decision {
    let mut headers = vec![("accept", "application/json")];
    if !cookie.is_empty() {
        headers.push(("cookie", cookie));
    }
    block_on(w.gateway.handle(&w.ports, &request(Method::GET, "/auth/me", &headers)))
}

fn body(d: &Decision) -> serde_json::Value {
    serde_json::from_slice(response(d).body()).unwrap()
}

#[test]
fn signed_in_it_says_who_and_until_when_but_gives_no_token() {
    let w = world();
    let session = sign_in(&w, "/");
    let d = me(&w, &session);
    let r = response(&d);
    assert_eq!(r.status(), 200, "{:?}", d.log);
    assert_eq!(r.headers()["cache-control"], "no-store");
    let b = body(&d);
    assert_eq!(b["sub"], "alice");
    assert_eq!(b["email"], "alice@example.com");
    assert_eq!(b["name"], "Alice");
    assert_eq!(b["provider"], crate::testkit::idp::ISSUER);
    assert_eq!(b["access_token_expires_at"], NOW + 3600);
    assert!(b["session_expires_at"].as_u64().unwrap() > NOW);
    let text = String::from_utf8_lossy(r.body()).to_string();
    assert!(!text.contains("access-token-1") && !text.contains("refresh-token"), "no token: {text}");
    assert_eq!(d.log.reason, "me");
}

#[test]
fn signed_out_it_is_a_401_never_a_redirect() {
    let w = world();
    let d = me(&w, "");
    let r = response(&d);
    assert_eq!(r.status(), 401);
    assert_eq!(r.headers()["content-type"], "application/json");
    assert!(r.headers().contains_key("www-authenticate"));
    let nav = block_on(w.gateway.handle(&w.ports, &navigate("/auth/me", "")));
    assert_eq!(response(&nav).status(), 401, "even a navigation is answered, not redirected");
}

#[test]
fn the_access_token_only_when_the_deployment_opts_in() {
    let mut w = world();
    w.gateway = Gateway::new(config(&[("AUTH_ME_ACCESS_TOKEN", "true")]));
    let session = sign_in(&w, "/");
    assert_eq!(body(&me(&w, &session))["access_token"], "access-token-1");
}
