//! What the edge hands the core, when the client's headers or body are unusual (issue 9: odd
//! cookie bytes, control bytes in identity headers, oversized back-channel bodies).

use super::*;

fn forwarded(d: &Decision) -> &ForwardPlan {
    match &d.outcome {
        Outcome::Forward(plan) => plan,
        Outcome::Respond(r) => panic!("expected a forward, got {}: {:?}", r.status(), d.log),
    }
}

#[test]
fn a_non_ascii_cookie_beside_the_session_keeps_the_user_signed_in() {
    let w = world();
    let session = sign_in(&w, "/");
    let cookie = format!("city=Z\u{fc}rich; {session}; lang=\"de\"; flag");
    let req = request(Method::GET, "/docs", &[("cookie", &cookie), ("sec-fetch-mode", "navigate")]);
    let d = block_on(w.gateway.handle(&w.ports, &req));
    let plan = forwarded(&d);
    assert_eq!(d.log.sub.as_deref(), Some("alice"));
    assert_eq!(set_header(&d, "cookie").as_deref(), Some("city=Z\u{fc}rich; lang=\"de\"; flag"), "{plan:?}");
}

#[test]
fn a_non_ascii_cookie_never_lets_the_gateway_cookie_reach_a_public_origin() {
    let mut w = world();
    w.gateway = Gateway::new(config(&[("ROUTES", r#"[{"prefix": "/", "auth": "public"}]"#)]));
    let req = request(Method::GET, "/", &[("cookie", "__Host-edgeguard=sealed; city=Z\u{fc}rich")]);
    let d = block_on(w.gateway.handle(&w.ports, &req));
    forwarded(&d);
    assert_eq!(set_header(&d, "cookie").as_deref(), Some("city=Z\u{fc}rich"));
}

#[test]
fn oversized_backchannel_bodies_are_refused_without_reading() {
    let w = world();
    let declared = (MAX_FORM_BYTES + 1).to_string();
    let mut req = request(Method::POST, "/auth/backchannel-logout", &[("content-length", &declared)]);
    req.form = Some(b"logout_token=x".to_vec());
    let d = block_on(w.gateway.handle(&w.ports, &req));
    assert_eq!(response(&d).status(), 413);
    assert_eq!(d.log.reason, "body_too_large");
    // The edge stopped reading a stream past the cap: no body at all.
    let streamed = request(Method::POST, "/auth/backchannel-logout", &[]);
    assert_eq!(response(&block_on(w.gateway.handle(&w.ports, &streamed))).status(), 413);
    assert_eq!(w.ports.http.sent.borrow().len(), 0, "nothing was fetched for it");
}

#[test]
fn a_deployment_strip_list_applies_to_every_route() {
    let mut w = world();
    w.gateway = Gateway::new(config(&[
        ("ROUTES", r#"[{"prefix": "/", "auth": "public"}]"#),
        ("STRIP_HEADERS", "X-Tenant-Role, X-Corp-*"),
    ]));
    let req = request(Method::GET, "/", &[("x-tenant-role", "admin"), ("X-Corp-Groups", "all"), ("x-other", "1")]);
    let d = block_on(w.gateway.handle(&w.ports, &req));
    let removed = &forwarded(&d).headers.remove;
    assert!(removed.iter().any(|n| n == "x-tenant-role") && removed.iter().any(|n| n == "x-corp-groups"));
    assert!(!removed.iter().any(|n| n == "x-other"));
}

#[test]
fn bad_strip_and_sample_settings_are_named() {
    let errors = Config::from_settings(|name| match name {
        "OIDC_ISSUER" => Some(ISSUER.into()),
        "OIDC_CLIENT_ID" => Some("edgeguard".into()),
        "OIDC_CLIENT_SECRET" => Some("client-secret".into()),
        "PUBLIC_URL" => Some("https://gw.example.com".into()),
        "ORIGIN_URL" => Some("https://origin.internal".into()),
        "SESSION_SECRET" => Some("0123456789abcdef0123456789abcdef".into()),
        "STRIP_HEADERS" => Some("X-Ok, bad name".into()),
        "LOG_FORWARDED_SAMPLE" => Some("0".into()),
        _ => None,
    })
    .unwrap_err()
    .to_string();
    assert!(errors.contains("STRIP_HEADERS: \"bad name\""), "{errors}");
    assert!(errors.contains("LOG_FORWARDED_SAMPLE"), "{errors}");
}

#[test]
fn forwarded_log_lines_can_be_sampled() {
    let mut w = world();
    w.gateway =
        Gateway::new(config(&[("ROUTES", r#"[{"prefix": "/", "auth": "public"}]"#), ("LOG_FORWARDED_SAMPLE", "3")]));
    let logged: Vec<bool> =
        (0..6).map(|_| block_on(w.gateway.handle(&w.ports, &request(Method::GET, "/", &[]))).should_log()).collect();
    assert_eq!(logged, [true, false, false, true, false, false]);
    let refused = block_on(w.gateway.handle(&w.ports, &request(Method::GET, "/%zz", &[])));
    assert!(refused.should_log(), "refusals are never sampled away");
}
