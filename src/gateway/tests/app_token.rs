//! Routes whose origin gets the gateway's own token (client credentials) or no token: what the
//! origin receives, how often the provider is asked, renewal, outages and refusals.

use super::*;
use futures::future::join_all;

const ROUTES: &str = r#"[
    {"prefix": "/orders/", "auth": "session", "origin_token": "app", "token_target": {"scope": "api://orders/.default"}},
    {"prefix": "/hooks/", "auth": "public", "origin_token": "app", "token_target": {"resource": "https://hooks.internal"}},
    {"prefix": "/api/", "auth": "bearer", "origin_token": "app", "token_target": {"audience": "https://api.internal"}},
    {"prefix": "/plain/", "auth": "session", "origin_token": "none"},
    {"prefix": "/", "auth": "session"}
]"#;

fn app_world() -> World {
    let mut w = world();
    w.gateway = Gateway::new(config(&[("ROUTES", ROUTES), ("API_AUDIENCES", "https://api.example.test")]));
    w
}

fn get(w: &World, gateway: &Gateway<TestPorts>, path: &str, headers: &[(&str, &str)]) -> Decision {
    let mut all = vec![("accept", "application/json")];
    all.extend_from_slice(headers);
    block_on(gateway.handle(&w.ports, &request(Method::GET, path, &all)))
}

fn authorization(d: &Decision) -> Option<String> {
    assert!(matches!(d.outcome, Outcome::Forward(_)), "not forwarded: {:?}", d.log);
    set_header(d, "authorization")
}

#[test]
fn a_session_route_with_an_app_token_sends_the_app_token_and_the_user_identity() {
    let w = app_world();
    let session = sign_in(&w, "/");
    let d = get(&w, &w.gateway, "/orders/1", &[("cookie", &session)]);
    assert_eq!(authorization(&d).as_deref(), Some("Bearer app-token-1"));
    assert_eq!(set_header(&d, "x-forwarded-user").as_deref(), Some("alice"));
    assert_eq!(*w.idp.app_grants.borrow(), vec!["api://orders/.default"]);
    let grant = w.ports.http.sent.borrow().iter().rev().find(|r| r.uri().path() == "/token").map(|r| r.body().clone());
    let form: HashMap<String, String> = url::form_urlencoded::parse(&grant.unwrap()).into_owned().collect();
    assert_eq!(form["grant_type"], "client_credentials");
    assert_eq!(form["scope"], "api://orders/.default");
    assert!(!form.contains_key("resource"), "only the route's target, not OIDC_RESOURCE");
    // Without a session the route still needs sign-in: no token is obtained for strangers.
    let d = get(&w, &w.gateway, "/orders/1", &[]);
    assert_eq!(response(&d).status(), 401);
    assert_eq!(w.idp.app_grants.borrow().len(), 1);
}

#[test]
fn an_app_only_route_needs_no_user_and_drops_the_client_authorization() {
    let w = app_world();
    let d = get(&w, &w.gateway, "/hooks/github", &[("authorization", "Bearer forged"), ("x-forwarded-user", "admin")]);
    assert_eq!(authorization(&d).as_deref(), Some("Bearer app-token-1"));
    let Outcome::Forward(plan) = &d.outcome else { unreachable!() };
    let sent = plan.headers.apply(&request(Method::GET, "/", &[("authorization", "Bearer forged")]).headers);
    assert_eq!(sent["authorization"], "Bearer app-token-1");
    assert!(set_header(&d, "x-forwarded-user").is_none());
    assert_eq!(*w.idp.app_grants.borrow(), vec!["https://hooks.internal"]);
}

#[test]
fn origin_token_none_strips_authorization() {
    let w = app_world();
    let session = sign_in(&w, "/");
    let req = request(Method::GET, "/plain/x", &[("cookie", &session), ("authorization", "Basic abc")]);
    let d = block_on(w.gateway.handle(&w.ports, &req));
    let Outcome::Forward(plan) = &d.outcome else { panic!("{:?}", d.log) };
    let sent = plan.headers.apply(&req.headers);
    assert!(sent.get("authorization").is_none());
    assert_eq!(sent["x-forwarded-user"], "alice");
}

#[test]
fn ten_sequential_and_twenty_parallel_requests_make_one_grant() {
    let w = app_world();
    for _ in 0..10 {
        assert_eq!(authorization(&get(&w, &w.gateway, "/hooks/x", &[])).as_deref(), Some("Bearer app-token-1"));
    }
    let cold: Gateway<TestPorts> = Gateway::new(config(&[("ROUTES", ROUTES), ("API_AUDIENCES", "x")]));
    let requests: Vec<_> = (0..20).map(|_| request(Method::GET, "/hooks/y", &[])).collect();
    let decisions = block_on(join_all(requests.iter().map(|r| w.gateway.handle(&w.ports, r))));
    let cold_decisions = block_on(join_all(requests.iter().map(|r| cold.handle(&w.ports, r))));
    for d in decisions.iter().chain(&cold_decisions) {
        assert_eq!(authorization(d).as_deref(), Some("Bearer app-token-1"));
    }
    assert_eq!(w.idp.app_grants.borrow().len(), 1, "one grant; a cold isolate takes it from KV");
    let (sealed, ttl) = w
        .ports
        .kv
        .entry(&w.gateway.app_token_key(
            0,
            None,
            &crate::policy::TokenTarget { resource: Some("https://hooks.internal".into()), ..Default::default() },
        ))
        .unwrap();
    assert!(!String::from_utf8_lossy(&sealed).contains("app-token"), "sealed at rest");
    assert_eq!(ttl, 3600);
}

#[test]
fn parallel_requests_on_a_cold_isolate_share_one_grant() {
    let w = app_world();
    let requests: Vec<_> = (0..20).map(|_| request(Method::GET, "/hooks/y", &[])).collect();
    let decisions = block_on(join_all(requests.iter().map(|r| w.gateway.handle(&w.ports, r))));
    assert!(decisions.iter().all(|d| authorization(d).as_deref() == Some("Bearer app-token-1")));
    assert_eq!(w.idp.app_grants.borrow().len(), 1);
}

#[test]
fn tokens_are_renewed_before_expiry_and_never_forwarded_expired() {
    let w = app_world();
    assert_eq!(authorization(&get(&w, &w.gateway, "/hooks/x", &[])).as_deref(), Some("Bearer app-token-1"));
    // A 3600 s token is renewed between 2520 s and 2880 s after issue (a fifth early, plus jitter).
    w.ports.clock.advance_secs(2519);
    assert_eq!(authorization(&get(&w, &w.gateway, "/hooks/x", &[])).as_deref(), Some("Bearer app-token-1"));
    w.ports.clock.advance_secs(362);
    assert_eq!(authorization(&get(&w, &w.gateway, "/hooks/x", &[])).as_deref(), Some("Bearer app-token-2"));
    assert_eq!(w.idp.app_grants.borrow().len(), 2);

    // Renewal fails while the cached token is still valid: keep serving it...
    *w.idp.app_answer.borrow_mut() = Some(Box::new(|_| Ok(json_response(503, &json!({})))));
    w.ports.clock.advance_secs(3000);
    let d = get(&w, &w.gateway, "/hooks/x", &[]);
    assert_eq!(authorization(&d).as_deref(), Some("Bearer app-token-2"));
    // ...but never once it has expired.
    w.ports.clock.advance_secs(600);
    let d = get(&w, &w.gateway, "/hooks/x", &[]);
    assert_eq!(response(&d).status(), 502);
    assert_eq!(d.log.reason, "origin_token_unavailable");
}

#[test]
fn refusals_and_timeouts_are_502_and_504_with_reasons() {
    let cases: Vec<(u16, &str, Result<IncomingResponse, HttpError>)> = vec![
        (502, "origin_token_refused", Ok(json_response(400, &json!({"error": "invalid_scope"})))),
        (502, "origin_token_unavailable", Ok(json_response(200, &json!({"token_type": "Bearer"})))),
        (504, "origin_token_unavailable", Err(HttpError::Timeout)),
    ];
    for (status, reason, answer) in cases {
        let w = app_world();
        *w.idp.app_answer.borrow_mut() = Some(Box::new(move |_| answer.clone()));
        let d = get(&w, &w.gateway, "/hooks/x", &[]);
        assert_eq!(response(&d).status(), status, "{reason}");
        assert_eq!(d.log.reason, reason);
    }
}

#[test]
fn a_bearer_caller_is_verified_then_the_origin_gets_the_app_token() {
    let w = app_world();
    let claims = json!({"iss": crate::testkit::idp::ISSUER, "sub": "svc", "aud": "x", "exp": NOW + 60, "iat": NOW});
    let token = w.idp.signer.sign(&json!({"alg": "ES256", "kid": w.idp.signer.kid, "typ": "at+jwt"}), &claims);
    let d = get(&w, &w.gateway, "/api/x", &[("authorization", &format!("Bearer {token}"))]);
    assert_eq!(response(&d).status(), 401, "audience checked before any app token: {:?}", d.log);
    assert!(w.idp.app_grants.borrow().is_empty());
    let claims = json!({"iss": crate::testkit::idp::ISSUER, "sub": "svc", "aud": "https://api.example.test", "exp": NOW + 60, "iat": NOW});
    let token = w.idp.signer.sign(&json!({"alg": "ES256", "kid": w.idp.signer.kid, "typ": "at+jwt"}), &claims);
    let d = get(&w, &w.gateway, "/api/x", &[("authorization", &format!("Bearer {token}"))]);
    assert_eq!(authorization(&d).as_deref(), Some("Bearer app-token-1"));
    assert_eq!(set_header(&d, "x-forwarded-user").as_deref(), Some("svc"));
}
