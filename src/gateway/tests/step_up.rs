//! Authorization request parameters and step-up (OIDC Core §3.1.2.1, RFC 9470).

use super::*;

const ROUTES: &str = r#"[
    {"prefix": "/", "auth": "session"},
    {"prefix": "/admin/", "auth": "session", "acr_values": ["mfa"]},
    {"prefix": "/pay/", "auth": "session", "max_age": 300},
    {"prefix": "/api/mfa/", "auth": "bearer", "acr_values": ["mfa"]}
]"#;

fn step_up_world() -> World {
    let mut w = world();
    w.gateway = Gateway::new(config(&[("ROUTES", ROUTES), ("API_AUDIENCES", "https://api.example.test")]));
    w
}

/// The ID tokens the provider issues from now on carry `claims` on top of the usual ones.
fn provider_says(w: &World, claims: serde_json::Value) {
    let idp = Rc::clone(&w.idp);
    *w.idp.token_answer.borrow_mut() = Some(Box::new(move |nonce| {
        let mut c = idp.id_claims(nonce, NOW);
        for (k, v) in claims.as_object().unwrap() {
            c[k] = v.clone();
        }
        Ok(json_response(200, &idp.token_body(&idp.signer.sign_claims(&c))))
    }));
}

fn authorize_query(d: &Decision) -> HashMap<String, String> {
    let r = response(d);
    assert_eq!(r.status(), 302, "{:?}", d.log);
    query_of(r.headers()["location"].to_str().unwrap())
}

#[test]
fn login_hints_pass_through_and_junk_does_not() {
    let w = world();
    let d = block_on(w.gateway.handle(
        &w.ports,
        &navigate("/auth/login?rd=/x&login_hint=alice%40example.com&prompt=select_account&prompt=none&bogus=1&client_id=evil&ui_locales=fr%0A", ""),
    ));
    let q = authorize_query(&d);
    assert_eq!(q["login_hint"], "alice@example.com");
    assert_eq!(q["prompt"], "select_account", "the first prompt only");
    assert_eq!(q["client_id"], "edgeguard", "a hint cannot replace a protocol parameter");
    assert!(!q.contains_key("bogus") && !q.contains_key("ui_locales"), "{q:?}");
    let d = block_on(w.gateway.handle(&w.ports, &navigate("/auth/login?prompt=evil", "")));
    assert!(!authorize_query(&d).contains_key("prompt"));
}

#[test]
fn oidc_auth_params_go_on_every_sign_in_and_cannot_touch_the_protocol() {
    let mut w = world();
    w.gateway = Gateway::new(config(&[("OIDC_AUTH_PARAMS", "domain_hint=contoso.com&prompt=select_account")]));
    let (q, _) = start(&w, "/");
    assert_eq!(q["domain_hint"], "contoso.com");
    assert_eq!(q["prompt"], "select_account");
    // A sign-in's own prompt replaces the deployment's, and is sent once.
    let d = block_on(w.gateway.handle(&w.ports, &navigate("/auth/login?prompt=login", "")));
    let location = response(&d).headers()["location"].to_str().unwrap().to_owned();
    assert_eq!(location.matches("prompt=").count(), 1, "{location}");
    assert_eq!(query_of(&location)["prompt"], "login");
    let map = HashMap::from([
        ("OIDC_ISSUER", ISSUER),
        ("OIDC_CLIENT_ID", "edgeguard"),
        ("OIDC_CLIENT_SECRET", "s"),
        ("PUBLIC_URL", "https://gw.example.com"),
        ("ORIGIN_URL", "https://origin.internal"),
        ("SESSION_SECRET", "0123456789abcdef0123456789abcdef"),
        ("OIDC_AUTH_PARAMS", "redirect_uri=https://evil.example/cb"),
    ]);
    let errors = Config::from_settings(|name| map.get(name).map(|v| (*v).to_owned())).unwrap_err();
    assert_eq!(errors.0.iter().map(|e| e.setting).collect::<Vec<_>>(), vec!["OIDC_AUTH_PARAMS"]);
}

#[test]
fn a_route_needing_mfa_sends_a_password_session_to_step_up() {
    let w = step_up_world();
    let session = sign_in(&w, "/");
    let d = block_on(w.gateway.handle(&w.ports, &navigate("/admin/users", &session)));
    assert_eq!(d.log.reason, "step_up_redirect");
    let q = authorize_query(&d);
    assert_eq!(q["acr_values"], "mfa");
    let tx = cookie_pairs(response(&d)).join("; ");
    *w.idp.nonce.borrow_mut() = q["nonce"].clone();
    // The provider answers with a stronger authentication: the new session passes.
    provider_says(&w, json!({"acr": "mfa"}));
    let d = callback(&w, &format!("code=c&state={}", q["state"]), &tx);
    assert_eq!(response(&d).headers()["location"], "https://gw.example.com/admin/users");
    let stronger = cookie_pairs(response(&d)).into_iter().find(|c| c.starts_with("__Host-edgeguard=")).unwrap();
    let d = block_on(w.gateway.handle(&w.ports, &navigate("/admin/users", &stronger)));
    assert!(matches!(d.outcome, Outcome::Forward(_)), "{:?}", d.log);
}

#[test]
fn a_step_up_answer_without_the_level_is_refused_not_looped() {
    let w = step_up_world();
    let session = sign_in(&w, "/");
    let d = block_on(w.gateway.handle(&w.ports, &navigate("/admin/users", &session)));
    let q = authorize_query(&d);
    let tx = cookie_pairs(response(&d)).join("; ");
    *w.idp.nonce.borrow_mut() = q["nonce"].clone();
    provider_says(&w, json!({"acr": "pwd"}));
    let d = callback(&w, &format!("code=c&state={}", q["state"]), &tx);
    assert_eq!(response(&d).status(), 403);
    assert_eq!(d.log.reason, "step_up_not_satisfied");
}

#[test]
fn an_old_sign_in_is_asked_to_authenticate_again() {
    let w = step_up_world();
    provider_says(&w, json!({"auth_time": NOW - 1000}));
    let session = sign_in(&w, "/");
    let d = block_on(w.gateway.handle(&w.ports, &navigate("/pay/now", &session)));
    let q = authorize_query(&d);
    assert_eq!(q["max_age"], "300");
    assert_eq!(q["prompt"], "login");
    // API calls are told what to get (RFC 9470), not redirected.
    let api = block_on(w.gateway.handle(&w.ports, &request(Method::GET, "/pay/now", &[("cookie", &session)])));
    let r = response(&api);
    assert_eq!(r.status(), 401);
    let challenge = r.headers()["www-authenticate"].to_str().unwrap();
    assert!(challenge.contains("error=\"insufficient_user_authentication\""), "{challenge}");
    assert!(challenge.ends_with(", max_age=300"), "{challenge}");
    assert_eq!(api.log.reason, "step_up_reauthentication_required");
}

#[test]
fn bearer_routes_check_the_access_tokens_acr() {
    let w = step_up_world();
    let claims = |acr: Option<&str>| {
        let mut c =
            json!({"iss": ISSUER, "sub": "svc", "aud": "https://api.example.test", "exp": NOW + 300, "iat": NOW});
        if let Some(acr) = acr {
            c["acr"] = json!(acr);
        }
        w.idp.signer.sign(&json!({"alg": "ES256", "kid": w.idp.signer.kid, "typ": "at+jwt"}), &c)
    };
    let call = |token: String| {
        let auth = format!("Bearer {token}");
        block_on(w.gateway.handle(&w.ports, &request(Method::GET, "/api/mfa/x", &[("authorization", &auth)])))
    };
    let d = call(claims(None));
    assert_eq!(response(&d).status(), 401);
    let challenge = response(&d).headers()["www-authenticate"].to_str().unwrap().to_owned();
    assert!(challenge.contains("acr_values=\"mfa\""), "{challenge}");
    assert!(matches!(call(claims(Some("mfa"))).outcome, Outcome::Forward(_)));
}
