//! Bearer routes and the route table, end to end through the pipeline.

use super::*;

pub(super) const ROUTES: &str = r#"[
    {"prefix": "/", "auth": "public"},
    {"prefix": "/api/", "auth": "bearer", "scopes": ["orders.read"], "cors_preflight": true},
    {"prefix": "/api/admin/", "auth": "bearer", "roles": ["Admin"], "tenants": ["t1"]},
    {"prefix": "/app/", "auth": "session_or_bearer"},
    {"prefix": "/private/", "auth": "session", "origin": "https://private.internal"}
]"#;

pub(super) fn api_world() -> World {
    let mut w = world();
    w.gateway = Gateway::new(config(&[("ROUTES", ROUTES), ("API_AUDIENCES", "https://api.example.test")]));
    w
}

fn access_claims(overrides: serde_json::Value) -> serde_json::Value {
    let mut claims = json!({
        "iss": ISSUER, "sub": "client-app", "aud": "https://api.example.test", "exp": NOW + 300, "iat": NOW,
        "scope": "orders.read orders.write", "roles": ["Admin"], "tid": "t1", "email": "svc@example.com",
        "email_verified": true,
    });
    for (k, v) in overrides.as_object().unwrap() {
        if v.is_null() {
            claims.as_object_mut().unwrap().remove(k);
        } else {
            claims[k] = v.clone();
        }
    }
    claims
}

pub(super) fn access_token(w: &World, overrides: serde_json::Value) -> String {
    w.idp.signer.sign(&json!({"alg": "ES256", "kid": w.idp.signer.kid, "typ": "at+jwt"}), &access_claims(overrides))
}

pub(super) fn call(w: &World, method: Method, path: &str, headers: &[(&str, &str)]) -> Decision {
    block_on(w.gateway.handle(&w.ports, &request(method, path, headers)))
}

fn bearer(w: &World, path: &str, token: &str) -> Decision {
    call(w, Method::GET, path, &[("authorization", &format!("Bearer {token}")), ("accept", "application/json")])
}

pub(super) fn challenge(d: &Decision) -> String {
    response(d).headers()["www-authenticate"].to_str().unwrap().to_owned()
}

#[test]
fn valid_tokens_are_forwarded_as_presented_with_identity() {
    let w = api_world();
    let token = access_token(&w, json!({}));
    let authorization = format!("Bearer {token}");
    let req =
        request(Method::GET, "/api/orders?id=1", &[("authorization", &authorization), ("x-forwarded-user", "mallory")]);
    let d = block_on(w.gateway.handle(&w.ports, &req));
    let Outcome::Forward(plan) = &d.outcome else { panic!("{:?}", d.log) };
    assert_eq!(plan.url, "https://origin.internal/api/orders?id=1");
    let sent = plan.headers.apply(&req.headers);
    assert_eq!(sent["authorization"], format!("Bearer {token}"), "the caller's own token, untouched");
    assert_eq!(set_header(&d, "x-forwarded-user").as_deref(), Some("client-app"));
    assert_eq!(set_header(&d, "x-forwarded-email").as_deref(), Some("svc@example.com"));
    assert!(plan.headers.remove.iter().any(|n| n == "x-forwarded-user"), "the spoofed value goes first");
    assert_eq!(d.log.reason, "bearer_forwarded");

    // The warm path: no discovery, no JWKS, no KV.
    let (sent, reads) = (w.ports.http.sent.borrow().len(), w.ports.kv.reads());
    assert!(matches!(bearer(&w, "/api/orders", &token).outcome, Outcome::Forward(_)));
    assert_eq!(w.ports.http.sent.borrow().len(), sent);
    assert_eq!(w.ports.kv.reads(), reads);
}

#[test]
fn missing_and_invalid_tokens_get_rfc6750_challenges() {
    let w = api_world();
    let d = call(&w, Method::GET, "/api/orders", &[("accept", "application/json")]);
    assert_eq!(response(&d).status(), 401);
    assert_eq!(challenge(&d), "Bearer realm=\"gw.example.com\"");
    let d = call(&w, Method::GET, "/api/orders", &[("authorization", "Basic YWxhZGRpbjpvcGVu")]);
    assert_eq!((response(&d).status().as_u16(), d.log.reason), (401, "token_missing"));
    let d = call(&w, Method::GET, "/api/orders", &[("authorization", "Bearer")]);
    assert_eq!((response(&d).status().as_u16(), d.log.reason), (401, "malformed_token"));
    assert!(challenge(&d).contains("error=\"invalid_token\""));

    let cases = [
        (access_token(&w, json!({"aud": "edgeguard"})), "audience_mismatch"),
        (access_token(&w, json!({"iss": "https://evil.example.com"})), "issuer_mismatch"),
        (access_token(&w, json!({"exp": NOW - 120})), "token_expired"),
        (access_token(&w, json!({"exp": null})), "exp_missing"),
        (access_token(&w, json!({"sub": null})), "sub_missing"),
        (access_token(&w, json!({"sub": "\u{e4}lice"})), "claim_invalid"),
        (
            w.idp
                .signer
                .sign(&json!({"alg": "ES256", "kid": w.idp.signer.kid, "typ": "id+jwt"}), &access_claims(json!({}))),
            "typ_mismatch",
        ),
        ("not.a.jwt".to_owned(), "malformed_token"),
        ("".to_owned(), "malformed_token"),
    ];
    for (token, reason) in cases {
        let d = bearer(&w, "/api/orders", &token);
        assert_eq!(response(&d).status(), 401, "{reason}: {:?}", d.log);
        assert_eq!(d.log.reason, reason);
        let c = challenge(&d);
        assert!(c.starts_with("Bearer realm=\"gw.example.com\", error=\"invalid_token\", error_description=\""), "{c}");
        let body: serde_json::Value = serde_json::from_slice(response(&d).body()).unwrap();
        assert_eq!(body["error"], reason);
    }
}

#[test]
fn an_id_token_is_not_an_access_token() {
    let w = api_world();
    let id_token = w.idp.signer.sign_claims(&w.idp.id_claims("n", NOW));
    let d = bearer(&w, "/api/orders", &id_token);
    assert_eq!(response(&d).status(), 401);
}

#[test]
fn route_requirements_give_403_insufficient_scope() {
    let w = api_world();
    let d = bearer(&w, "/api/orders", &access_token(&w, json!({"scope": "orders.write"})));
    assert_eq!(response(&d).status(), 403);
    assert_eq!(d.log.reason, "scope_missing");
    assert_eq!(challenge(&d), "Bearer realm=\"gw.example.com\", error=\"insufficient_scope\", scope=\"orders.read\"");
    // Entra's `scp` counts as well as RFC 9068's `scope`.
    let d = bearer(&w, "/api/orders", &access_token(&w, json!({"scope": null, "scp": "orders.read"})));
    assert!(matches!(d.outcome, Outcome::Forward(_)), "{:?}", d.log);
    let d = bearer(&w, "/api/admin/x", &access_token(&w, json!({"roles": ["Reader"]})));
    assert_eq!((response(&d).status().as_u16(), d.log.reason), (403, "role_missing"));
    let d = bearer(&w, "/api/admin/x", &access_token(&w, json!({"tid": "t2"})));
    assert_eq!((response(&d).status().as_u16(), d.log.reason), (403, "tenant_not_allowed"));
    assert!(matches!(bearer(&w, "/api/admin/x", &access_token(&w, json!({}))).outcome, Outcome::Forward(_)));
}

#[test]
fn public_routes_preflights_and_unknown_paths() {
    let w = api_world();
    let req = request(Method::GET, "/index.html", &[("x-forwarded-user", "mallory"), ("authorization", "Basic abc")]);
    let d = block_on(w.gateway.handle(&w.ports, &req));
    let Outcome::Forward(plan) = &d.outcome else { panic!("{:?}", d.log) };
    let sent = plan.headers.apply(&req.headers);
    assert!(sent.get("x-forwarded-user").is_none());
    assert_eq!(sent["authorization"], "Basic abc");
    let preflight = [("origin", "https://spa.example.com"), ("access-control-request-method", "POST")];
    assert_eq!(call(&w, Method::OPTIONS, "/api/orders", &preflight).log.reason, "cors_preflight_forwarded");
    assert_eq!(response(&call(&w, Method::OPTIONS, "/api/admin/x", &preflight)).status(), 401);

    let strict: Gateway<TestPorts> = Gateway::new(config(&[("ROUTES", r#"[{"prefix": "/api/", "auth": "public"}]"#)]));
    let d = block_on(strict.handle(&w.ports, &request(Method::GET, "/other", &[])));
    assert_eq!((response(&d).status().as_u16(), d.log.reason), (404, "route_not_found"));
    // Encoded variants of a path reach the same route, and encoded slashes reach none.
    assert!(matches!(
        block_on(strict.handle(&w.ports, &request(Method::GET, "/%61pi/x", &[]))).outcome,
        Outcome::Forward(_)
    ));
    let d = block_on(strict.handle(&w.ports, &request(Method::GET, "/api%2Fx", &[])));
    assert_eq!(response(&d).status(), 400);
}

#[test]
fn session_or_bearer_routes_take_either() {
    let w = api_world();
    let token = access_token(&w, json!({}));
    assert!(matches!(bearer(&w, "/app/x", &token).outcome, Outcome::Forward(_)));
    let session = sign_in(&w, "/private/x");
    let d = call(&w, Method::GET, "/app/x", &[("cookie", &session)]);
    assert_eq!(set_header(&d, "authorization").as_deref(), Some("Bearer access-token-1"));
    let d = call(&w, Method::GET, "/private/y", &[("cookie", &session)]);
    let Outcome::Forward(plan) = &d.outcome else { panic!("{:?}", d.log) };
    assert_eq!(plan.url, "https://private.internal/private/y");
    // A presented bearer token is judged alone: a bad one is refused even with a good cookie.
    let d = call(&w, Method::GET, "/app/x", &[("cookie", &session), ("authorization", "Bearer junk")]);
    assert_eq!(response(&d).status(), 401);
}

#[test]
fn bearer_routes_need_an_audience() {
    let errors = Config::from_settings(|name| match name {
        "ROUTES" => Some(r#"[{"prefix": "/", "auth": "bearer"}]"#.into()),
        "OIDC_ISSUER" => Some(ISSUER.into()),
        "OIDC_CLIENT_ID" | "OIDC_CLIENT_SECRET" => Some("x".into()),
        "PUBLIC_URL" => Some("https://gw.example.com".into()),
        "ORIGIN_URL" => Some("https://origin.internal".into()),
        "SESSION_SECRET" => Some("0123456789abcdef0123456789abcdef".into()),
        _ => None,
    })
    .unwrap_err();
    assert_eq!(errors.0.iter().map(|e| e.setting).collect::<Vec<_>>(), vec!["API_AUDIENCES"]);
}

#[test]
fn forwarded_requests_can_be_logged_quietly_but_refusals_never_are() {
    let mut w = api_world();
    let token = access_token(&w, json!({}));
    assert!(bearer(&w, "/api/orders", &token).should_log(), "logged by default");
    w.gateway = Gateway::new(config(&[
        ("ROUTES", ROUTES),
        ("API_AUDIENCES", "https://api.example.test"),
        ("LOG_FORWARDED", "false"),
    ]));
    let forwarded = bearer(&w, "/api/orders", &token);
    assert!(matches!(forwarded.outcome, Outcome::Forward(_)));
    assert!(!forwarded.should_log());
    assert!(bearer(&w, "/api/orders", "junk").should_log());
}

#[test]
fn an_email_not_stated_verified_is_not_forwarded() {
    let w = api_world();
    let email_of =
        |w: &World, claims| set_header(&bearer(w, "/api/orders", &access_token(w, claims)), "x-forwarded-email");
    assert_eq!(email_of(&w, json!({"email_verified": false})), None, "stated unverified");
    assert_eq!(email_of(&w, json!({"email_verified": null})), None, "nothing stated, and the default requires it");
    assert_eq!(email_of(&w, json!({"email_verified": null, "xms_edov": true})).as_deref(), Some("svc@example.com"));
    let mut lenient = api_world();
    lenient.gateway = Gateway::new(config(&[
        ("ROUTES", ROUTES),
        ("API_AUDIENCES", "https://api.example.test"),
        ("EMAIL_VERIFIED_REQUIRED", "false"),
    ]));
    assert_eq!(email_of(&lenient, json!({"email_verified": null})).as_deref(), Some("svc@example.com"));
    assert_eq!(email_of(&lenient, json!({"email_verified": "false"})), None, "never when stated unverified");
}
