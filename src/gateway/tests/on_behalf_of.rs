//! Routes whose origin gets a token exchanged from the caller's own (RFC 8693 token exchange,
//! Entra ID on-behalf-of): the exact exchange request, caching per caller token, refusals.

use super::*;

const ROUTES: &str = r#"[
    {"prefix": "/orders/", "origin_token": "on_behalf_of", "token_target": {"scope": "api://orders/.default"}},
    {"prefix": "/api/", "auth": "bearer", "origin_token": "on_behalf_of", "token_target": {"audience": "https://inner"}},
    {"prefix": "/", "auth": "session"}
]"#;

fn obo_world(extra: &[(&str, &str)]) -> World {
    let mut w = world();
    let settings =
        [&[("ROUTES", ROUTES), ("API_AUDIENCES", "https://api.example.test"), ("SESSION_IDLE_TIMEOUT", "8h")], extra]
            .concat();
    w.gateway = Gateway::new(config(&settings));
    w
}

fn last_token_form(w: &World) -> HashMap<String, String> {
    let sent = w.ports.http.sent.borrow();
    let body = sent.iter().rev().find(|r| r.uri().path() == "/token").unwrap().body().clone();
    url::form_urlencoded::parse(&body).into_owned().collect()
}

fn get(w: &World, path: &str, headers: &[(&str, &str)]) -> Decision {
    block_on(w.gateway.handle(&w.ports, &request(Method::GET, path, headers)))
}

#[test]
fn rfc8693_token_exchange_for_a_session_cached_until_the_users_token_changes() {
    let w = obo_world(&[]);
    let session = sign_in(&w, "/");
    let d = get(&w, "/orders/1", &[("cookie", &session)]);
    assert_eq!(set_header(&d, "authorization").as_deref(), Some("Bearer obo-token-1"), "{:?}", d.log);
    assert_eq!(set_header(&d, "x-forwarded-user").as_deref(), Some("alice"));
    let form = last_token_form(&w);
    assert_eq!(form["grant_type"], "urn:ietf:params:oauth:grant-type:token-exchange");
    assert_eq!(form["subject_token"], "access-token-1");
    assert_eq!(form["subject_token_type"], "urn:ietf:params:oauth:token-type:access_token");
    assert_eq!(form["requested_token_type"], "urn:ietf:params:oauth:token-type:access_token");
    assert_eq!(form["scope"], "api://orders/.default");
    assert_eq!(form["client_id"], "edgeguard");
    assert!(
        w.ports
            .http
            .sent
            .borrow()
            .iter()
            .rev()
            .find(|r| r.uri().path() == "/token")
            .unwrap()
            .headers()
            .contains_key("authorization")
    );
    for _ in 0..5 {
        assert_eq!(
            set_header(&get(&w, "/orders/2", &[("cookie", &session)]), "authorization").as_deref(),
            Some("Bearer obo-token-1")
        );
    }
    assert_eq!(w.idp.exchanges.borrow().len(), 1, "one exchange per user token and target");
    // The user's token is refreshed: the next request exchanges the new one.
    w.ports.clock.advance_secs(3600);
    let d = get(&w, "/orders/3", &[("cookie", &session)]);
    assert_eq!(set_header(&d, "authorization").as_deref(), Some("Bearer obo-token-2"));
    assert_eq!(last_token_form(&w)["subject_token"], "access-token-2");
}

#[test]
fn entra_on_behalf_of_uses_the_jwt_bearer_grant() {
    let w = obo_world(&[("ON_BEHALF_OF_GRANT", "jwt_bearer")]);
    let session = sign_in(&w, "/");
    let d = get(&w, "/orders/1", &[("cookie", &session)]);
    assert_eq!(set_header(&d, "authorization").as_deref(), Some("Bearer obo-token-1"));
    let form = last_token_form(&w);
    assert_eq!(form["grant_type"], "urn:ietf:params:oauth:grant-type:jwt-bearer");
    assert_eq!(form["assertion"], "access-token-1");
    assert_eq!(form["requested_token_use"], "on_behalf_of");
    assert_eq!(form["scope"], "api://orders/.default");
    assert!(!form.contains_key("subject_token"));
}

#[test]
fn a_bearer_callers_own_token_is_exchanged() {
    let w = obo_world(&[]);
    let claims = json!({"iss": crate::testkit::idp::ISSUER, "sub": "svc", "aud": "https://api.example.test", "exp": NOW + 60, "iat": NOW});
    let token = w.idp.signer.sign(&json!({"alg": "ES256", "kid": w.idp.signer.kid, "typ": "at+jwt"}), &claims);
    let d = get(&w, "/api/x", &[("authorization", &format!("Bearer {token}"))]);
    assert_eq!(set_header(&d, "authorization").as_deref(), Some("Bearer obo-token-1"), "{:?}", d.log);
    let form = last_token_form(&w);
    assert_eq!(form["subject_token"], token);
    assert_eq!(form["audience"], "https://inner");
}

#[test]
fn a_refused_exchange_is_a_502_and_nothing_is_forwarded() {
    let w = obo_world(&[]);
    *w.idp.refresh_answer.borrow_mut() = None;
    let idp = Rc::clone(&w.idp);
    *w.idp.token_answer.borrow_mut() = Some(Box::new(move |nonce| {
        let mut body = idp.token_body(&idp.signer.sign_claims(&idp.id_claims(nonce, NOW)));
        body["access_token"] = json!("refused");
        Ok(json_response(200, &body))
    }));
    let session = sign_in(&w, "/");
    let d = get(&w, "/orders/1", &[("cookie", &session), ("accept", "application/json")]);
    assert_eq!(response(&d).status(), 502);
    assert_eq!(d.log.reason, "origin_token_refused");
}
