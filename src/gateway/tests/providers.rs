//! Several identity providers in one deployment: each route's provider signs users in, its
//! sessions, transactions and bearer tokens never count for another provider's routes.

use super::*;
use crate::testkit::idp::FakeIdp;

const PARTNERS: &str = "https://partners.example.com";

const ROUTES: &str = r#"[
    {"prefix": "/", "auth": "session"},
    {"prefix": "/partners/", "auth": "session", "provider": "partners"},
    {"prefix": "/api/a/", "auth": "bearer"},
    {"prefix": "/api/b/", "auth": "bearer", "provider": "partners"},
    {"prefix": "/api/both/", "auth": "bearer", "providers": ["default", "partners"],
     "rate_limit": {"binding": "API_LIMIT", "key": "sub"}},
    {"prefix": "/obo/", "auth": "bearer", "providers": ["default", "partners"], "origin_token": "on_behalf_of",
     "token_target": {"scope": "api://downstream/.default"}},
    {"prefix": "/partners/app/", "auth": "session", "provider": "partners", "origin_token": "app",
     "token_target": {"resource": "https://hooks.internal"}}
]"#;

fn table() -> String {
    format!(
        r#"[{{"name":"partners","issuer":"{PARTNERS}","client_id":"gw-partners","client_secret_name":"PARTNERS_SECRET"}}]"#
    )
}

/// The default provider (`w.idp`, at [`ISSUER`]) and `partners`, both on one HTTP port.
fn two_providers() -> (World, Rc<FakeIdp>) {
    let idp = FakeIdp::new();
    let partners = FakeIdp::at(PARTNERS);
    let ports = TestPorts::new(FakeIdp::http_for(&[Rc::clone(&idp), Rc::clone(&partners)], NOW), NOW);
    let table = table();
    let config = config(&[
        ("PROVIDERS", &table),
        ("PARTNERS_SECRET", "partners-secret"),
        ("ROUTES", ROUTES),
        ("API_AUDIENCES", "https://api.example.test"),
    ]);
    // Partners' tokens differ from the default provider's, so a test sees whose were used.
    let answering = Rc::clone(&partners);
    *partners.token_answer.borrow_mut() = Some(Box::new(move |nonce| {
        let mut claims = answering.id_claims(nonce, NOW);
        claims["aud"] = json!("gw-partners");
        claims["sid"] = json!("partners-sid");
        let id_token = answering.signer.sign_claims(&claims);
        let mut body = answering.token_body(&id_token);
        body["access_token"] = json!("partners-access");
        body["refresh_token"] = json!("partners-refresh");
        Ok(json_response(200, &body))
    }));
    (World { idp, ports, gateway: Gateway::new(config) }, partners)
}

/// Requests the fake providers received at `host`'s `path`.
fn sent_to(w: &World, host: &str, path: &str) -> usize {
    w.ports.http.sent.borrow().iter().filter(|r| r.uri().host() == Some(host) && r.uri().path() == path).count()
}

/// Sign in at `path` with the provider `idp` (the route's); returns the new session cookie.
fn sign_in_at(w: &World, idp: &FakeIdp, path: &str, cookie: &str) -> String {
    let d = block_on(w.gateway.handle(&w.ports, &navigate(path, cookie)));
    let r = response(&d);
    let location = r.headers()["location"].to_str().unwrap().to_owned();
    assert!(location.starts_with(&format!("{}/authorize?", idp.issuer)), "{location}");
    let q = query_of(&location);
    *idp.nonce.borrow_mut() = q["nonce"].clone();
    let tx = cookie_pairs(r).join("; ");
    let d = callback(w, &format!("code=c&state={}&iss={}", q["state"], idp.issuer), &tx);
    let r = response(&d);
    assert_eq!(r.status(), 302, "{:?}", d.log);
    let session = cookie_pairs(r);
    assert_eq!(session.len(), 1, "{session:?}");
    session[0].clone()
}

fn forwarded_token(d: &Decision) -> String {
    set_header(d, "authorization").unwrap_or_else(|| panic!("not forwarded: {:?}", d.log))
}

#[test]
fn a_session_of_one_provider_is_no_session_on_another_providers_routes() {
    let (w, partners) = two_providers();
    let staff = sign_in_at(&w, &w.idp, "/", "");
    assert!(staff.starts_with("__Host-edgeguard="), "the default provider keeps the classic cookie: {staff}");
    // On a partners route the staff session does not count: sign in with partners, and the
    // staff session is left alone (no cookie cleared).
    let d = block_on(w.gateway.handle(&w.ports, &navigate("/partners/x", &staff)));
    assert_eq!(d.log.reason, "login_redirect");
    assert_eq!(d.log.detail.as_deref(), Some("session_missing"));
    assert!(set_cookies(response(&d)).iter().all(|c| !c.starts_with("__Host-edgeguard=")), "staff session kept");
    let partner = sign_in_at(&w, &partners, "/partners/x", &staff);
    assert!(partner.starts_with("__Host-edgeguard-partners="), "{partner}");
    let both = format!("{staff}; {partner}");
    let d = block_on(w.gateway.handle(&w.ports, &navigate("/partners/x", &both)));
    assert_eq!(forwarded_token(&d), "Bearer partners-access");
    let d = block_on(w.gateway.handle(&w.ports, &navigate("/home", &both)));
    assert_eq!(forwarded_token(&d), "Bearer access-token-1");
    // A partners session alone gets nowhere on the staff site.
    let d = block_on(w.gateway.handle(&w.ports, &navigate("/home", &partner)));
    assert_eq!(d.log.reason, "login_redirect");
    // Its value under the staff cookie's name does not open (the name is sealed in).
    let renamed = partner.replacen("__Host-edgeguard-partners=", "__Host-edgeguard=", 1);
    let d = block_on(w.gateway.handle(&w.ports, &navigate("/home", &renamed)));
    assert_eq!(d.log.detail.as_deref(), Some("session_cookie_invalid"));
}

#[test]
fn a_flow_of_one_provider_cannot_be_finished_with_another_providers_answer() {
    let (w, _partners) = two_providers();
    let d = block_on(w.gateway.handle(&w.ports, &navigate("/", "")));
    let q = query_of(response(&d).headers()["location"].to_str().unwrap());
    let tx = cookie_pairs(response(&d)).join("; ");
    // The default provider's flow state replayed with the partners provider's RFC 9207 `iss`.
    let d = callback(&w, &format!("code=c&state={}&iss={PARTNERS}", q["state"]), &tx);
    assert_eq!(response(&d).status(), 400, "{:?}", d.log);
    assert_eq!(d.log.reason, "callback_issuer_mismatch");
    assert_eq!(sent_to(&w, "partners.example.com", "/token") + sent_to(&w, "idp.example.com", "/token"), 0);
    // The transaction alone decides where the code goes: the default provider's token endpoint.
    *w.idp.nonce.borrow_mut() = q["nonce"].clone();
    let d = callback(&w, &format!("code=c&state={}", q["state"]), &tx);
    assert_eq!(response(&d).status(), 302, "{:?}", d.log);
    assert_eq!((sent_to(&w, "idp.example.com", "/token"), sent_to(&w, "partners.example.com", "/token")), (1, 0));
}

#[test]
fn login_picks_the_provider_by_name_or_by_the_return_path() {
    let (w, _partners) = two_providers();
    let location = |query: &str| {
        let d = block_on(w.gateway.handle(&w.ports, &navigate(&format!("/auth/login?{query}"), "")));
        (response(&d).status(), response(&d).headers().get("location").map(|l| l.to_str().unwrap().to_owned()))
    };
    assert!(location("provider=partners").1.unwrap().starts_with(PARTNERS));
    assert!(location("rd=/partners/page").1.unwrap().starts_with(PARTNERS));
    assert!(location("rd=/home").1.unwrap().starts_with(ISSUER));
    let (status, _) = location("provider=nobody");
    assert_eq!(status, 400);
}

/// OIDC Core §4: a provider sends the browser to `/auth/login` with its `iss` (and maybe a
/// `login_hint` and a `target_link_uri`); the sign-in goes to that provider, and back to the
/// target only if it is on the gateway.
#[test]
fn a_sign_in_the_provider_initiates_goes_to_that_provider_and_back_to_the_target_on_the_gateway() {
    let (w, partners) = two_providers();
    let start = |query: &str| block_on(w.gateway.handle(&w.ports, &navigate(&format!("/auth/login?{query}"), "")));
    let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    let target = enc("https://gw.example.com/partners/report?y=2");
    let d = start(&format!("iss={}&login_hint=bob%40partner.example&target_link_uri={target}", enc(PARTNERS)));
    let r = response(&d);
    let location = r.headers()["location"].to_str().unwrap().to_owned();
    assert!(location.starts_with(&format!("{PARTNERS}/authorize?")), "{location}");
    let q = query_of(&location);
    assert_eq!(q["login_hint"], "bob@partner.example");
    *partners.nonce.borrow_mut() = q["nonce"].clone();
    let d = callback(&w, &format!("code=c&state={}&iss={PARTNERS}", q["state"]), &cookie_pairs(r).join("; "));
    assert_eq!(response(&d).headers()["location"], "https://gw.example.com/partners/report?y=2", "{:?}", d.log);

    // A target off the gateway is no open redirect: the sign-in comes back to `/`.
    let d = start(&format!("iss={}&target_link_uri={}", enc(ISSUER), enc("https://evil.example/phish")));
    let r = response(&d);
    let q = query_of(r.headers()["location"].to_str().unwrap());
    *w.idp.nonce.borrow_mut() = q["nonce"].clone();
    let d = callback(&w, &format!("code=c&state={}&iss={}", q["state"], enc(ISSUER)), &cookie_pairs(r).join("; "));
    assert_eq!(response(&d).headers()["location"], "https://gw.example.com/", "{:?}", d.log);

    // An issuer not configured here, or one that contradicts `provider`, starts nothing.
    for query in [format!("iss={}", enc("https://evil.example")), format!("iss={}&provider=default", enc(PARTNERS))] {
        let d = start(&query);
        assert_eq!((response(&d).status().as_u16(), d.log.reason), (400, "login_issuer_unknown"), "{query}");
        assert!(cookie_pairs(response(&d)).is_empty(), "no login transaction");
    }
}

fn partners_token(partners: &FakeIdp, iss: &str) -> String {
    let claims = json!({"iss": iss, "sub": "svc", "aud": "https://api.example.test", "exp": NOW + 300, "iat": NOW});
    partners.signer.sign(&json!({"alg": "ES256", "kid": partners.signer.kid, "typ": "at+jwt"}), &claims)
}

fn bearer(w: &World, path: &str, token: &str) -> Decision {
    let req = request(Method::GET, path, &[("authorization", &format!("Bearer {token}"))]);
    block_on(w.gateway.handle(&w.ports, &req))
}

#[test]
fn a_bearer_tokens_issuer_picks_the_keys_that_verify_it() {
    let (w, partners) = two_providers();
    let token = partners_token(&partners, PARTNERS);
    for path in ["/api/b/x", "/api/both/x"] {
        assert!(matches!(bearer(&w, path, &token).outcome, Outcome::Forward(_)), "{path}");
    }
    // On the default provider's route, partners' token names an issuer the route does not take.
    let d = bearer(&w, "/api/a/x", &token);
    assert_eq!((response(&d).status().as_u16(), d.log.reason), (401, "issuer_unknown"));
    // Claiming the default provider's issuer, the partners key does not verify it (both keys
    // have the same kid): the default provider's keys alone are tried.
    let forged = partners_token(&partners, ISSUER);
    let d = bearer(&w, "/api/both/x", &forged);
    assert_eq!((response(&d).status().as_u16(), d.log.reason), (401, "signature_invalid"));
    assert_eq!(sent_to(&w, "partners.example.com", "/jwks"), 1, "fetched once, for the genuine token");
}

/// Whether the request went to the origin, and as which provider's caller.
fn forwarded_as(w: &World, path: &str, token: &str) -> Result<Option<String>, (u16, &'static str)> {
    let d = bearer(w, path, token);
    match &d.outcome {
        Outcome::Forward(_) => Ok(set_header(&d, "x-forwarded-provider")),
        Outcome::Respond(r) => Err((r.status().as_u16(), d.log.reason)),
    }
}

#[test]
fn a_cached_token_counts_only_on_routes_taking_the_provider_that_verified_it() {
    let (w, partners) = two_providers();
    let partner = partners_token(&partners, PARTNERS);
    let staff = partners_token(&w.idp, ISSUER);
    for _ in 0..3 {
        assert_eq!(forwarded_as(&w, "/api/both/x", &partner), Ok(Some("partners".into())));
        assert_eq!(forwarded_as(&w, "/api/both/x", &staff), Ok(Some("default".into())));
    }
    assert_eq!(w.ports.crypto.verifications(), 2, "the route of both serves repeats from the cache");
    assert_eq!(forwarded_as(&w, "/api/a/x", &partner), Err((401, "issuer_unknown")));
    assert_eq!(forwarded_as(&w, "/api/b/x", &staff), Err((401, "issuer_unknown")));
    // Each still counts where its provider is taken, from the cache.
    assert_eq!(forwarded_as(&w, "/api/b/x", &partner), Ok(Some("partners".into())));
    assert_eq!(forwarded_as(&w, "/api/both/x", &partner), Ok(Some("partners".into())));
    assert_eq!(forwarded_as(&w, "/api/a/x", &staff), Ok(Some("default".into())));
    assert_eq!(w.ports.crypto.verifications(), 2);
}

#[test]
fn a_cached_token_whose_key_left_its_providers_jwks_is_refused_on_a_route_of_both() {
    let (mut w, partners) = two_providers();
    // The partners provider's published keys, in the test's hands.
    let published = Rc::new(std::cell::RefCell::new(vec![partners.signer.jwk()]));
    let (keys, idps) = (Rc::clone(&published), [Rc::clone(&w.idp), Rc::clone(&partners)]);
    w.ports = TestPorts::new(
        FakeHttp::new(move |req| match (req.uri().host(), req.uri().path()) {
            (Some("partners.example.com"), "/jwks") => Ok(json_response(200, &json!({"keys": *keys.borrow()}))),
            (Some("partners.example.com"), _) => idps[1].answer(req, NOW),
            _ => idps[0].answer(req, NOW),
        }),
        NOW,
    );
    let old = partners_token(&partners, PARTNERS);
    assert_eq!(forwarded_as(&w, "/api/both/x", &old), Ok(Some("partners".into())));
    assert_eq!(forwarded_as(&w, "/api/both/x", &old), Ok(Some("partners".into())));
    // Hard rotation; the gateway learns of it when a token with the new kid arrives.
    let rotated = crate::testkit::idp::Signer::new("k2");
    *published.borrow_mut() = vec![rotated.jwk()];
    w.ports.clock.advance_secs(30);
    let claims =
        json!({"iss": PARTNERS, "sub": "new", "aud": "https://api.example.test", "exp": NOW + 300, "iat": NOW});
    let new = rotated.sign(&json!({"alg": "ES256", "kid": "k2", "typ": "at+jwt"}), &claims);
    assert_eq!(forwarded_as(&w, "/api/both/x", &new), Ok(Some("partners".into())));
    assert_eq!(sent_to(&w, "partners.example.com", "/jwks"), 2);
    assert_eq!(forwarded_as(&w, "/api/both/x", &old), Err((401, "kid_unknown")));
    assert_eq!(forwarded_as(&w, "/api/b/x", &old), Err((401, "kid_unknown")));
}

#[test]
fn the_origin_and_route_limits_tell_apart_two_providers_users_with_one_sub() {
    let (w, partners) = two_providers();
    let staff = partners_token(&w.idp, ISSUER);
    let partner = partners_token(&partners, PARTNERS);
    let seen = |token: &str| {
        let d = bearer(&w, "/api/both/x", token);
        let Outcome::Forward(plan) = &d.outcome else { panic!("not forwarded: {:?}", d.log) };
        (
            set_header(&d, "x-forwarded-user"),
            set_header(&d, "x-forwarded-provider"),
            plan.rate_limit.clone().unwrap().key(None),
        )
    };
    assert_eq!(seen(&staff), (Some("svc".into()), Some("default".into()), "sub:default:svc".into()));
    assert_eq!(seen(&partner), (Some("svc".into()), Some("partners".into()), "sub:partners:svc".into()));
}

#[test]
fn a_token_naming_an_unknown_issuer_fetches_nothing() {
    let (w, partners) = two_providers();
    for path in ["/api/both/x", "/api/a/x", "/api/b/x"] {
        let d = bearer(&w, path, &partners_token(&partners, "https://evil.example"));
        assert_eq!((response(&d).status().as_u16(), d.log.reason), (401, "issuer_unknown"), "{path}");
    }
    assert!(w.ports.http.sent.borrow().is_empty(), "no discovery, no JWKS");
}

#[test]
fn logout_ends_every_providers_session_and_me_names_the_provider() {
    let (w, partners) = two_providers();
    let staff = sign_in_at(&w, &w.idp, "/", "");
    let partner = sign_in_at(&w, &partners, "/partners/", "");
    let me = |cookie: &str, query: &str| {
        let req = request(Method::GET, &format!("/auth/me{query}"), &[("cookie", cookie)]);
        let d = block_on(w.gateway.handle(&w.ports, &req));
        serde_json::from_slice::<serde_json::Value>(response(&d).body()).unwrap()
    };
    assert_eq!(me(&partner, "")["provider_name"], "partners");
    assert_eq!(me(&partner, "")["provider"], PARTNERS);
    let both = format!("{staff}; {partner}");
    assert_eq!(me(&both, "")["provider_name"], "default");
    assert_eq!(me(&both, "?provider=partners")["provider_name"], "partners");
    let req = request(Method::POST, "/auth/logout", &[("cookie", &both), ("origin", "https://gw.example.com")]);
    let d = block_on(w.gateway.handle(&w.ports, &req));
    let cleared: Vec<String> = set_cookies(response(&d)).into_iter().filter(|c| c.contains("Max-Age=0")).collect();
    assert_eq!(cleared.len(), 2, "{cleared:?}");
    assert_eq!(*w.idp.revoked.borrow(), vec!["refresh-token-1"]);
    assert_eq!(*partners.revoked.borrow(), vec!["partners-refresh"]);
    for (cookie, path) in [(&staff, "/home"), (&partner, "/partners/")] {
        let d = block_on(w.gateway.handle(&w.ports, &navigate(path, cookie)));
        assert_eq!(d.log.detail.as_deref(), Some("session_unknown"), "{path}");
    }
}

#[test]
fn a_logout_tokens_issuer_picks_the_provider() {
    let (w, partners) = two_providers();
    let staff = sign_in_at(&w, &w.idp, "/", "");
    let partner = sign_in_at(&w, &partners, "/partners/", "");
    let claims = json!({
        "iss": PARTNERS, "aud": "gw-partners", "iat": NOW, "exp": NOW + 120, "jti": "j", "sub": "alice",
        "events": {"http://schemas.openid.net/event/backchannel-logout": {}},
    });
    let token =
        partners.signer.sign(&json!({"alg": "ES256", "kid": partners.signer.kid, "typ": "logout+jwt"}), &claims);
    let mut req =
        request(Method::POST, "/auth/backchannel-logout", &[("content-type", "application/x-www-form-urlencoded")]);
    req.form = Some(format!("logout_token={token}").into_bytes());
    let d = block_on(w.gateway.handle(&w.ports, &req));
    assert_eq!(d.log.detail.as_deref(), Some("1 session(s) ended"), "{:?}", d.log);
    let d = block_on(w.gateway.handle(&w.ports, &navigate("/partners/", &partner)));
    assert_eq!(d.log.detail.as_deref(), Some("session_unknown"));
    assert!(matches!(block_on(w.gateway.handle(&w.ports, &navigate("/", &staff))).outcome, Outcome::Forward(_)));
}

#[test]
fn on_behalf_of_and_app_tokens_come_from_the_callers_provider() {
    let (w, partners) = two_providers();
    let token = partners_token(&partners, PARTNERS);
    let d = bearer(&w, "/obo/x", &token);
    assert_eq!(forwarded_token(&d), "Bearer obo-token-1");
    // The partners user's token went to the partners provider only, never to the default one.
    assert_eq!(partners.exchanges.borrow().len(), 1);
    assert_eq!(partners.exchanges.borrow()[0].1, token);
    assert!(w.idp.exchanges.borrow().is_empty());
    let session = sign_in_at(&w, &partners, "/partners/app/x", "");
    let d = block_on(w.gateway.handle(&w.ports, &navigate("/partners/app/x", &session)));
    assert_eq!(forwarded_token(&d), "Bearer app-token-1");
    assert_eq!((partners.app_grants.borrow().len(), w.idp.app_grants.borrow().len()), (1, 0));
}

#[test]
fn an_entra_preset_is_asked_only_about_issuers_of_its_shape() {
    const TENANT: &str = "7d3e1b2a-4c5f-4e6a-9b8c-0d1e2f3a4b5c";
    let table = format!(
        r#"[{{"name":"staff","entra_tenant":"{TENANT}","client_id":"c","client_secret_name":"PARTNERS_SECRET"}}]"#
    );
    let routes = r#"[{"prefix": "/api/", "auth": "bearer", "providers": ["default", "staff"]}]"#;
    let config = config(&[
        ("PROVIDERS", &table),
        ("PARTNERS_SECRET", "s"),
        ("ROUTES", routes),
        ("API_AUDIENCES", "https://api.example.test"),
    ]);
    let idp = FakeIdp::new();
    let ports = TestPorts::new(FakeHttp::new(|_| Ok(json_response(404, &json!({})))), NOW);
    let w = World { idp: Rc::clone(&idp), ports, gateway: Gateway::new(config) };
    let token = |iss: &str, tid: &str| {
        let claims = json!({"iss": iss, "tid": tid, "sub": "s", "aud": "https://api.example.test", "exp": NOW + 60});
        idp.signer.sign(&json!({"alg": "ES256", "kid": idp.signer.kid, "typ": "JWT"}), &claims)
    };
    let d = bearer(&w, "/api/x", &token("https://evil.example/v2.0", TENANT));
    assert_eq!((response(&d).status().as_u16(), d.log.reason), (401, "issuer_unknown"));
    let d =
        bearer(&w, "/api/x", &token("https://login.evil.example/7d3e1b2a-4c5f-4e6a-9b8c-0d1e2f3a4b5c/v2.0", TENANT));
    assert_eq!(d.log.reason, "issuer_unknown");
    assert!(w.ports.http.sent.borrow().is_empty(), "nothing fetched for issuers no provider has");
    // A tenant issuer of the preset's cloud is the preset's to judge: its discovery is read.
    let d = bearer(&w, "/api/x", &token(&format!("https://login.microsoftonline.com/{TENANT}/v2.0"), TENANT));
    assert_eq!(d.log.reason, "provider_discovery_unavailable");
    assert_eq!(
        sent_to(&w, "login.microsoftonline.com", &format!("/{TENANT}/v2.0/.well-known/openid-configuration")),
        1
    );
}

#[test]
fn a_front_channel_logouts_iss_picks_the_provider() {
    let (w, partners) = two_providers();
    let staff = sign_in_at(&w, &w.idp, "/", "");
    let partner = sign_in_at(&w, &partners, "/partners/", "");
    let frontchannel = |query: &str| {
        let req = request(Method::GET, &format!("/auth/frontchannel-logout?{query}"), &[]);
        block_on(w.gateway.handle(&w.ports, &req))
    };
    let d = frontchannel("iss=https%3A%2F%2Fnobody.example&sid=partners-sid");
    assert_eq!(d.log.reason, "frontchannel_logout_issuer_mismatch");
    let d = frontchannel("iss=https%3A%2F%2Fpartners.example.com&sid=partners-sid");
    assert_eq!(d.log.detail.as_deref(), Some("1 session(s) ended"), "{:?}", d.log);
    let d = block_on(w.gateway.handle(&w.ports, &navigate("/partners/", &partner)));
    assert_eq!(d.log.detail.as_deref(), Some("session_unknown"));
    assert!(matches!(block_on(w.gateway.handle(&w.ports, &navigate("/", &staff))).outcome, Outcome::Forward(_)));
}

#[test]
fn every_providers_session_cookie_is_kept_from_the_origin() {
    let (w, partners) = two_providers();
    let staff = sign_in_at(&w, &w.idp, "/", "");
    let partner = sign_in_at(&w, &partners, "/partners/", "");
    let cookie = format!("theme=dark; {staff}; {partner}");
    let req = navigate("/partners/x", &cookie);
    let d = block_on(w.gateway.handle(&w.ports, &req));
    let Outcome::Forward(plan) = &d.outcome else { panic!("{:?}", d.log) };
    assert_eq!(plan.headers.apply(&req.headers)["cookie"], "theme=dark");
    // Nor may the origin set one.
    assert!(!crate::proxy::origin_set_cookie_allowed("__Host-edgeguard-partners=x; Path=/"));
    assert!(!crate::proxy::origin_set_cookie_allowed("__HOST-EDGEGUARD-partners=x"));
    assert!(crate::proxy::origin_set_cookie_allowed("__Host-edgeguardian=x"));
}

/// With the Entra preset on a provider other than the default, `/auth/admin-consent` is that
/// provider's: its client and tenant, and the answer page's sign-in link and tenant check.
#[test]
fn admin_consent_is_the_entra_providers_even_when_it_is_not_the_default() {
    const TENANT: &str = "7d3e1b2a-4c5f-4e6a-9b8c-0d1e2f3a4b5c";
    let table = format!(
        r#"[{{"name":"staff","entra_tenant":"{TENANT}","client_id":"staff-app","client_secret_name":"PARTNERS_SECRET"}}]"#
    );
    let config = config(&[("PROVIDERS", &table), ("PARTNERS_SECRET", "s")]);
    let ports = TestPorts::new(FakeHttp::new(|_| Ok(json_response(404, &json!({})))), NOW);
    let w = World { idp: FakeIdp::new(), ports, gateway: Gateway::new(config) };
    let get = |query: &str, cookie: &str| {
        block_on(w.gateway.handle(&w.ports, &navigate(&format!("/auth/admin-consent{query}"), cookie)))
    };
    let d = get("", "");
    let r = response(&d);
    let location = r.headers()["location"].to_str().unwrap().to_owned();
    assert!(
        location.starts_with(&format!("https://login.microsoftonline.com/{TENANT}/v2.0/adminconsent?")),
        "{location}"
    );
    let q = query_of(&location);
    assert_eq!(q["client_id"], "staff-app");
    let cookie = cookie_pairs(r).join("; ");
    let d = get(&format!("?admin_consent=True&tenant={TENANT}&state={}", q["state"]), &cookie);
    assert_eq!(response(&d).status(), 200, "{:?}", d.log);
    let page = String::from_utf8_lossy(response(&d).body()).into_owned();
    assert!(page.contains("href=\"/auth/login?provider=staff\""), "{page}");
    // The default provider has no Entra preset: nothing to consent to there.
    assert_eq!(response(&get("?provider=default", "")).status(), 404);
    assert_eq!(response(&get("?provider=nobody", "")).status(), 404);
    assert_eq!(response(&get("?provider=staff", "")).status(), 302);
}
