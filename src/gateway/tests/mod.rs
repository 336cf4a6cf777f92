//! Flow tests of the whole pipeline with in-memory ports, a scripted provider and real
//! signatures (ring). Each asserts what a browser or API client would notice.

mod app_token;
mod assertion;
mod bearer;
mod bindings;
mod client_auth;
mod dpop;
mod edge_input;
mod entra;
mod entra_graph;
mod entry;
mod frontchannel;
mod identity_headers;
mod me;
mod on_behalf_of;
mod paths;
mod providers;
mod rate_limit;
mod refresh_id_token;
mod session_objects;
mod sessions;
mod step_up;
mod token_cache;
mod websocket;

use super::*;
use crate::oidc::ProviderMetadata;
use crate::ports::{HttpError, IncomingResponse};
use crate::testkit::idp::{FakeIdp, ISSUER};
use crate::testkit::{FakeHttp, block_on, json_response};
use http::Method;
use serde_json::json;
use std::collections::HashMap;
use std::rc::Rc;

pub const NOW: u64 = 1_700_000_000;

/// A change to a token's claims, for table-driven tests.
type Edit = Box<dyn Fn(&mut serde_json::Value)>;

/// A valid configuration with `overrides`.
pub fn config(overrides: &[(&str, &str)]) -> Config {
    let mut map: HashMap<&str, &str> = HashMap::from([
        ("OIDC_ISSUER", ISSUER),
        ("OIDC_CLIENT_ID", "edgeguard"),
        ("OIDC_CLIENT_SECRET", "client-secret"),
        ("PUBLIC_URL", "https://gw.example.com"),
        ("ORIGIN_URL", "https://origin.internal"),
        ("SESSION_SECRET", "0123456789abcdef0123456789abcdef"),
        ("API_PATH_PREFIXES", "/api/"),
    ]);
    map.extend(overrides.iter().copied());
    Config::from_settings(|name| map.get(name).map(|v| (*v).to_owned())).unwrap()
}

pub fn metadata(issuer: &str) -> ProviderMetadata {
    let doc = json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{issuer}/authorize"),
        "token_endpoint": format!("{issuer}/token"),
        "jwks_uri": format!("{issuer}/jwks"),
        "scopes_supported": ["openid", "offline_access"],
    });
    ProviderMetadata::parse(&serde_json::to_vec(&doc).unwrap(), issuer).unwrap()
}

/// Every port, faked, with the scripted provider answering HTTP.
pub type TestPorts = crate::testkit::ports::TestPorts<FakeHttp>;

struct World {
    idp: Rc<FakeIdp>,
    ports: TestPorts,
    gateway: Gateway<TestPorts>,
}

fn world() -> World {
    let idp = FakeIdp::new();
    let ports = TestPorts::new(idp.http(NOW), NOW);
    World { idp, ports, gateway: Gateway::new(config(&[])) }
}

fn request(method: Method, path_and_query: &str, headers: &[(&str, &str)]) -> IncomingRequest {
    let (path, query) = match path_and_query.split_once('?') {
        Some((p, q)) => (p.to_owned(), Some(q.to_owned())),
        None => (path_and_query.to_owned(), None),
    };
    IncomingRequest { method, path, query, headers: RequestHeaders::from_pairs(headers), form: None }
}

fn navigate(path: &str, cookie: &str) -> IncomingRequest {
    let mut headers = vec![("sec-fetch-mode", "navigate"), ("accept", "text/html")];
    if !cookie.is_empty() {
        headers.push(("cookie", cookie));
    }
    request(Method::GET, path, &headers)
}

/// What the gateway sets on the origin request (its own headers, not the client's).
fn set_header(d: &Decision, name: &str) -> Option<String> {
    let Outcome::Forward(plan) = &d.outcome else { return None };
    plan.headers.set.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone())
}

fn response(decision: &Decision) -> &http::Response<Vec<u8>> {
    match &decision.outcome {
        Outcome::Respond(r) => r,
        Outcome::Forward(plan) => panic!("expected a response, got a forward to {}", plan.url),
    }
}

fn set_cookies(r: &http::Response<Vec<u8>>) -> Vec<String> {
    r.headers().get_all("set-cookie").iter().map(|v| v.to_str().unwrap().to_owned()).collect()
}

/// `name=value` pairs of the cookies a response sets (deletions excluded).
fn cookie_pairs(r: &http::Response<Vec<u8>>) -> Vec<String> {
    set_cookies(r)
        .into_iter()
        .filter(|c| !c.contains("Max-Age=0"))
        .map(|c| c.split(';').next().unwrap().to_owned())
        .collect()
}

fn query_of(location: &str) -> HashMap<String, String> {
    url::Url::parse(location).unwrap().query_pairs().into_owned().collect()
}

/// Start a sign-in at `path`: returns the authorize URL's parameters and the tx cookie.
fn start(w: &World, path: &str) -> (HashMap<String, String>, String) {
    let d = block_on(w.gateway.handle(&w.ports, &navigate(path, "")));
    let r = response(&d);
    assert_eq!(r.status(), 302);
    let q = query_of(r.headers()["location"].to_str().unwrap());
    *w.idp.nonce.borrow_mut() = q["nonce"].clone();
    (q, cookie_pairs(r).join("; "))
}

fn callback(w: &World, query: &str, cookie: &str) -> Decision {
    block_on(w.gateway.handle(&w.ports, &navigate(&format!("/auth/callback?{query}"), cookie)))
}

/// A complete sign-in; returns the session cookie pair.
fn sign_in(w: &World, path: &str) -> String {
    let (q, tx) = start(w, path);
    let d = callback(w, &format!("code=the-code&state={}", q["state"]), &tx);
    let r = response(&d);
    assert_eq!(r.status(), 302, "{}", String::from_utf8_lossy(r.body()));
    assert_eq!(r.headers()["location"], format!("https://gw.example.com{path}"));
    let session = cookie_pairs(r);
    assert_eq!(session.len(), 1, "{session:?}");
    assert!(session[0].starts_with("__Host-edgeguard="));
    session[0].clone()
}

#[test]
fn unauthenticated_navigation_is_redirected_to_the_provider() {
    let w = world();
    let (q, tx) = start(&w, "/docs?page=2");
    assert_eq!(q["response_type"], "code");
    assert_eq!(q["client_id"], "edgeguard");
    assert_eq!(q["redirect_uri"], "https://gw.example.com/auth/callback");
    assert_eq!(q["scope"], "openid profile email offline_access");
    assert_eq!(q["code_challenge_method"], "S256");
    assert!(tx.contains("__Secure-edgeguard-tx-"), "{tx}");
    assert!(tx.contains("; __Host-edgeguard-bind-"), "the sign-in is bound to this browser: {tx}");
    assert_eq!(w.ports.kv.len(), 0, "no KV write before sign-in");
}

#[test]
fn unauthenticated_api_calls_get_401_with_a_challenge() {
    let w = world();
    for req in [
        request(Method::GET, "/data", &[("accept", "*/*")]),
        request(Method::GET, "/api/items", &[("sec-fetch-mode", "navigate"), ("accept", "text/html")]),
        request(Method::POST, "/form", &[("accept", "text/html")]),
        request(Method::GET, "/x", &[("sec-fetch-mode", "cors"), ("accept", "text/html")]),
    ] {
        let d = block_on(w.gateway.handle(&w.ports, &req));
        let r = response(&d);
        assert_eq!(r.status(), 401, "{}", req.path);
        assert_eq!(r.headers()["www-authenticate"], "Bearer realm=\"gw.example.com\"");
        assert_eq!(d.log.reason, "session_missing");
    }
}

#[test]
fn sign_in_then_requests_are_forwarded_with_bearer_and_identity() {
    let w = world();
    let session = sign_in(&w, "/docs?page=2");
    let reads = w.ports.kv.reads();
    let req = request(
        Method::POST,
        "/api/items?x=1",
        &[
            ("cookie", &format!("{session}; theme=dark")),
            ("x-forwarded-user", "mallory"),
            ("accept", "application/json"),
        ],
    );
    let d = block_on(w.gateway.handle(&w.ports, &req));
    let Outcome::Forward(plan) = &d.outcome else { panic!("not forwarded: {:?}", d.log) };
    assert_eq!(plan.url, "https://origin.internal/api/items?x=1");
    let sent = plan.headers.apply(&req.headers);
    assert_eq!(sent["authorization"], "Bearer access-token-1");
    assert_eq!(sent.get_all("x-forwarded-user").iter().collect::<Vec<_>>(), vec!["alice"]);
    assert_eq!(sent["x-forwarded-email"], "alice@example.com");
    assert_eq!(sent["cookie"], "theme=dark");
    assert_eq!(d.log.sub.as_deref(), Some("alice"));
    assert_eq!(w.ports.kv.reads(), reads, "the warm path reads no KV");
    assert_eq!(w.ports.http.count("/jwks"), 1);
}

#[test]
fn a_cold_isolate_finds_the_session_in_kv() {
    let w = world();
    let session = sign_in(&w, "/");
    let cold: Gateway<TestPorts> = Gateway::new(config(&[]));
    let d = block_on(cold.handle(&w.ports, &navigate("/", &session)));
    assert!(matches!(d.outcome, Outcome::Forward(_)), "{:?}", d.log);
}

fn expect_refused(w: &World, d: &Decision, status: u16, reason: &str) {
    let r = response(d);
    assert_eq!(r.status(), status, "{:?}", d.log);
    assert_eq!(d.log.reason, reason);
    assert!(cookie_pairs(r).iter().all(|c| !c.starts_with("__Host-edgeguard")), "no session on refusal");
    assert_eq!(w.ports.kv.len(), 0, "no session record on refusal");
}

/// Sign in with the token endpoint answering an ID token with `claims` changed by `edit`.
fn callback_with_claims(edit: impl Fn(&mut serde_json::Value) + 'static) -> (World, Decision) {
    let w = world();
    let idp = Rc::clone(&w.idp);
    *w.idp.token_answer.borrow_mut() = Some(Box::new(move |nonce| {
        let mut claims = idp.id_claims(nonce, NOW);
        edit(&mut claims);
        let token = idp.signer.sign_claims(&claims);
        Ok(json_response(200, &idp.token_body(&token)))
    }));
    let (q, tx) = start(&w, "/");
    let d = callback(&w, &format!("code=c&state={}", q["state"]), &tx);
    (w, d)
}

#[test]
fn id_token_claim_violations_are_refused() {
    let cases: Vec<(&str, Edit)> = vec![
        ("nonce_mismatch", Box::new(|c| c["nonce"] = json!("other"))),
        (
            "nonce_mismatch",
            Box::new(|c| {
                c.as_object_mut().unwrap().remove("nonce");
            }),
        ),
        ("issuer_mismatch", Box::new(|c| c["iss"] = json!("https://evil.example.com"))),
        ("audience_mismatch", Box::new(|c| c["aud"] = json!("someone-else"))),
        (
            "azp_mismatch",
            Box::new(|c| {
                c["aud"] = json!(["edgeguard", "other"]);
                c["azp"] = json!("other");
            }),
        ),
        ("azp_missing", Box::new(|c| c["aud"] = json!(["edgeguard", "other"]))),
        ("sub_not_header_safe", Box::new(|c| c["sub"] = json!("al\nice"))),
        (
            "sub_missing",
            Box::new(|c| {
                c.as_object_mut().unwrap().remove("sub");
            }),
        ),
        (
            "iat_missing",
            Box::new(|c| {
                c.as_object_mut().unwrap().remove("iat");
            }),
        ),
        ("token_expired", Box::new(|c| c["exp"] = json!(NOW - 61))),
        ("token_not_yet_valid", Box::new(|c| c["nbf"] = json!(NOW + 120))),
        ("iat_in_future", Box::new(|c| c["iat"] = json!(NOW + 3600))),
    ];
    for (reason, edit) in cases {
        let (w, d) = callback_with_claims(edit);
        expect_refused(&w, &d, 400, reason);
    }
}

#[test]
fn a_session_whose_id_token_states_the_email_unverified_forwards_no_email() {
    let (w, d) = callback_with_claims(|c| c["email_verified"] = json!(false));
    let session = cookie_pairs(response(&d)).into_iter().find(|c| c.starts_with("__Host-edgeguard=")).unwrap();
    let d = block_on(w.gateway.handle(&w.ports, &request(Method::GET, "/x", &[("cookie", &session)])));
    assert!(matches!(d.outcome, Outcome::Forward(_)), "{:?}", d.log);
    assert_eq!(set_header(&d, "x-forwarded-user").as_deref(), Some("alice"));
    assert_eq!(set_header(&d, "x-forwarded-email"), None);
}

#[test]
fn id_token_within_skew_and_with_matching_azp_is_accepted() {
    let (_, d) = callback_with_claims(|c| {
        c["exp"] = json!(NOW - 30);
        c["aud"] = json!(["edgeguard", "other"]);
        c["azp"] = json!("edgeguard");
    });
    assert_eq!(response(&d).status(), 302, "{:?}", d.log);
}

fn callback_with_token(make: impl Fn(&FakeIdp, &str) -> String + 'static) -> (World, Decision) {
    let w = world();
    let idp = Rc::clone(&w.idp);
    *w.idp.token_answer.borrow_mut() = Some(Box::new(move |nonce| {
        let token = make(&idp, nonce);
        Ok(json_response(200, &idp.token_body(&token)))
    }));
    let (q, tx) = start(&w, "/");
    let d = callback(&w, &format!("code=c&state={}", q["state"]), &tx);
    (w, d)
}

#[test]
fn forged_id_tokens_are_refused() {
    let (w, d) = callback_with_token(|idp, nonce| {
        let good = idp.signer.sign_claims(&idp.id_claims(nonce, NOW));
        let (input, _) = good.rsplit_once('.').unwrap();
        format!("{input}.{}", crate::encoding::b64url(&[7u8; 64]))
    });
    expect_refused(&w, &d, 400, "signature_invalid");

    let (w, d) = callback_with_token(|idp, nonce| {
        let header = crate::encoding::b64url(br#"{"alg":"none","typ":"JWT"}"#);
        let claims = crate::encoding::b64url(&serde_json::to_vec(&idp.id_claims(nonce, NOW)).unwrap());
        format!("{header}.{claims}.")
    });
    expect_refused(&w, &d, 400, "alg_not_allowed");

    let (w, d) = callback_with_token(|idp, nonce| {
        let other = crate::testkit::idp::Signer::new("unknown-kid");
        other.sign_claims(&idp.id_claims(nonce, NOW))
    });
    expect_refused(&w, &d, 400, "kid_unknown");
}

#[test]
fn callback_without_matching_transaction_is_refused() {
    let w = world();
    let (q, tx) = start(&w, "/");
    expect_refused(&w, &callback(&w, &format!("code=c&state={}", q["state"]), ""), 400, "login_transaction_missing");
    expect_refused(&w, &callback(&w, "code=c&state=forged", &tx), 400, "state_mismatch");
    expect_refused(&w, &callback(&w, "state=x", &tx), 400, "callback_malformed");
    let d = callback(&w, &format!("error=access_denied&state={}", q["state"]), &tx);
    expect_refused(&w, &d, 403, "provider_denied");
    assert!(
        set_cookies(response(&d)).iter().any(|c| { c.starts_with(&tx_cookie_name(&tx)) && c.contains("Max-Age=0") })
    );
    let d = callback(&w, &format!("code=c&state={}&iss=https%3A%2F%2Fevil.example", q["state"]), &tx);
    expect_refused(&w, &d, 400, "callback_issuer_mismatch");
    // RFC 9207 §2.4 holds for error responses too: another issuer's error is a mix-up, not
    // this provider's answer.
    let d = callback(&w, &format!("error=access_denied&state={}&iss=https%3A%2F%2Fevil.example", q["state"]), &tx);
    expect_refused(&w, &d, 400, "callback_issuer_mismatch");
    let d = callback(&w, &format!("error=access_denied&state={}&iss=https%3A%2F%2Fidp.example.com", q["state"]), &tx);
    expect_refused(&w, &d, 403, "provider_denied");
    assert_eq!(w.ports.http.count("/token"), 0, "nothing is exchanged for a refused callback");
}

/// The name of the login-transaction cookie among `cookies` (`name=value; ...`).
fn tx_cookie_name(cookies: &str) -> String {
    let pair = cookies.split("; ").find(|c| c.starts_with("__Secure-edgeguard-tx-")).unwrap();
    pair.split('=').next().unwrap().to_owned()
}

/// Login CSRF (RFC 9700 §4.7): a sibling subdomain plants the attacker's own transaction cookie
/// (`__Secure-` cookies accept `Domain=`) and sends the victim to the callback with the
/// attacker's code and state. The victim's browser lacks the attacker's `__Host-` binding.
#[test]
fn a_planted_transaction_cannot_be_completed_in_another_browser() {
    let w = world();
    let (q, attackers_cookies) = start(&w, "/");
    let planted = attackers_cookies.split("; ").find(|c| c.starts_with("__Secure-edgeguard-tx-")).unwrap();
    let query = format!("code=attackers-code&state={}", q["state"]);
    expect_refused(&w, &callback(&w, &query, planted), 400, "login_binding_mismatch");
    let (_, victims_cookies) = start(&w, "/");
    let victims_binding = victims_cookies.split("; ").find(|c| c.starts_with("__Host-edgeguard-bind-")).unwrap();
    let d = callback(&w, &query, &format!("{planted}; {victims_binding}"));
    expect_refused(&w, &d, 400, "login_binding_mismatch");
    assert_eq!(w.ports.http.count("/token"), 0, "the attacker's code is never exchanged");
    // The attacker's own browser completes its own sign-in.
    *w.idp.nonce.borrow_mut() = q["nonce"].clone();
    let d = callback(&w, &query, &attackers_cookies);
    assert_eq!(response(&d).status(), 302, "{:?}", d.log);
}

#[test]
fn a_long_return_path_does_not_break_sign_in() {
    let w = world();
    let long = format!("/search?q={}", "x".repeat(3000));
    let (q, cookies) = start(&w, &long);
    assert!(cookies.split("; ").all(|c| c.len() < 4096), "every cookie fits a browser");
    let d = callback(&w, &format!("code=the-code&state={}", q["state"]), &cookies);
    let r = response(&d);
    assert_eq!(r.status(), 302, "{:?}", d.log);
    assert_eq!(r.headers()["location"], "https://gw.example.com/search", "the path survives, the long query does not");
}

#[test]
fn token_endpoint_refusal_is_4xx_and_outage_is_5xx() {
    let answers: Vec<(u16, &str, Result<IncomingResponse, HttpError>)> = vec![
        (400, "code_rejected", Ok(json_response(400, &json!({"error": "invalid_grant"})))),
        (502, "provider_token_endpoint_failed", Ok(json_response(503, &json!({})))),
        (502, "provider_token_endpoint_failed", Err(HttpError::Network("refused".into()))),
        (504, "provider_token_endpoint_failed", Err(HttpError::Timeout)),
    ];
    for (status, reason, answer) in answers {
        let w = world();
        *w.idp.token_answer.borrow_mut() = Some(Box::new(move |_| answer.clone()));
        let (q, tx) = start(&w, "/");
        expect_refused(&w, &callback(&w, &format!("code=c&state={}", q["state"]), &tx), status, reason);
    }
}

#[test]
fn tampered_or_foreign_session_cookies_are_refused() {
    let w = world();
    let session = sign_in(&w, "/");
    let tampered = format!("{}A", session);
    let d = block_on(w.gateway.handle(&w.ports, &request(Method::GET, "/x", &[("cookie", &tampered)])));
    assert_eq!(response(&d).status(), 401);
    assert_eq!(d.log.reason, "session_cookie_invalid");
    let other: Gateway<TestPorts> = Gateway::new(config(&[("SESSION_SECRET", "another-secret-another-secret-0000")]));
    let d = block_on(other.handle(&w.ports, &request(Method::GET, "/x", &[("cookie", &session)])));
    assert_eq!(response(&d).status(), 401);
}

#[test]
fn logout_ends_the_session() {
    let w = world();
    let session = sign_in(&w, "/");
    let d = block_on(w.gateway.handle(&w.ports, &request(Method::GET, "/auth/logout", &[("cookie", &session)])));
    assert_eq!(response(&d).status(), 200, "GET only confirms");
    let cross = request(Method::POST, "/auth/logout", &[("cookie", &session), ("origin", "https://evil.example")]);
    assert_eq!(response(&block_on(w.gateway.handle(&w.ports, &cross))).status(), 403);
    let post = request(Method::POST, "/auth/logout", &[("cookie", &session), ("origin", "https://gw.example.com")]);
    let d = block_on(w.gateway.handle(&w.ports, &post));
    assert_eq!(response(&d).status(), 200);
    assert!(set_cookies(response(&d)).iter().any(|c| c.starts_with("__Host-edgeguard=;") && c.contains("Max-Age=0")));
    let after = block_on(w.gateway.handle(&w.ports, &request(Method::GET, "/x", &[("cookie", &session)])));
    assert_eq!(response(&after).status(), 401);
    assert_eq!(after.log.reason, "session_unknown");
}

/// A real browser posting the gateway's own sign-out form sends `Origin: null` (the page has
/// `Referrer-Policy: no-referrer`) and `Sec-Fetch-Site: same-origin`; a sibling subdomain's
/// form sends `same-site`.
#[test]
fn the_sign_out_button_works_from_a_real_browser_and_nowhere_else() {
    let w = world();
    let session = sign_in(&w, "/");
    let post = |headers: &[(&str, &str)]| {
        let mut all = vec![("cookie", session.as_str())];
        all.extend_from_slice(headers);
        block_on(w.gateway.handle(&w.ports, &request(Method::POST, "/auth/logout", &all)))
    };
    for refused in [
        vec![("origin", "null"), ("sec-fetch-site", "same-site")],
        vec![("origin", "https://evil.example"), ("sec-fetch-site", "cross-site")],
        vec![("origin", "null")],
    ] {
        let d = post(&refused);
        assert_eq!(response(&d).status(), 403, "{refused:?}");
        assert_eq!(d.log.reason, "cross_origin_refused", "{refused:?}");
    }
    let d = post(&[("origin", "null"), ("sec-fetch-site", "same-origin")]);
    assert_eq!(response(&d).status(), 200, "{:?}", d.log);
}

#[test]
fn login_endpoint_never_redirects_off_site() {
    let w = world();
    for (rd, expected) in
        [("%2Fdocs%3Fa%3D1", "/docs?a=1"), ("%2F%2Fevil.example", "/"), ("https%3A%2F%2Fevil.example", "/")]
    {
        let d = block_on(w.gateway.handle(&w.ports, &navigate(&format!("/auth/login?rd={rd}"), "")));
        let r = response(&d);
        let q = query_of(r.headers()["location"].to_str().unwrap());
        *w.idp.nonce.borrow_mut() = q["nonce"].clone();
        let tx = cookie_pairs(r).join("; ");
        let done = callback(&w, &format!("code=c&state={}", q["state"]), &tx);
        assert_eq!(response(&done).headers()["location"], format!("https://gw.example.com{expected}"));
    }
}

#[test]
fn oversized_headers_get_431() {
    let w = world();
    let big = "a".repeat(MAX_HEADER_BYTES);
    let d = block_on(w.gateway.handle(&w.ports, &request(Method::GET, "/", &[("x-big", &big)])));
    assert_eq!(response(&d).status(), 431);
}

#[test]
fn invalid_configuration_names_every_setting() {
    let errors =
        Config::from_settings(|name| (name == "OIDC_ISSUER").then(|| "http://idp.example.com".to_owned())).unwrap_err();
    let d = config_error_decision(&errors, &navigate("/", ""));
    let r = response(&d);
    assert_eq!(r.status(), 500);
    let body = String::from_utf8_lossy(r.body());
    for name in ["OIDC_ISSUER", "OIDC_CLIENT_ID", "OIDC_CLIENT_SECRET", "PUBLIC_URL", "ORIGIN_URL", "SESSION_SECRET"] {
        assert!(body.contains(name), "{name} missing from {body}");
    }
}

#[test]
fn provider_outage_at_login_is_a_502_not_a_panic() {
    let mut w = world();
    w.ports.http = FakeHttp::new(|_| Err(HttpError::Network("down".into())));
    let d = block_on(w.gateway.handle(&w.ports, &navigate("/", "")));
    assert_eq!(response(&d).status(), 502);
    assert_eq!(d.log.reason, "provider_discovery_unavailable");
}
