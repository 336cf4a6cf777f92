//! OpenID Connect Front-Channel Logout: the provider's iframe ends the sessions its `sid` names,
//! whatever cookie the request carries or lacks; a request naming another issuer ends nothing.

use super::entra::{EntraWorld, entra_world, handle, session_cookie, sign_in as entra_sign_in};
use super::*;
use crate::entra::tests::{HOME, PARTNER};

/// A complete sign-in whose ID token carries `sid`.
fn sign_in_with_sid(w: &World, sid: &str) -> String {
    let idp = Rc::clone(&w.idp);
    let sid = sid.to_owned();
    *w.idp.token_answer.borrow_mut() = Some(Box::new(move |nonce| {
        let mut claims = idp.id_claims(nonce, NOW);
        claims["sid"] = json!(sid);
        Ok(json_response(200, &idp.token_body(&idp.signer.sign_claims(&claims))))
    }));
    sign_in(w, "/")
}

fn frontchannel<P: Ports>(gateway: &Gateway<P>, ports: &P, query: &str) -> Decision {
    block_on(gateway.handle(ports, &request(Method::GET, &format!("/auth/frontchannel-logout?{query}"), &[])))
}

fn signed_in(w: &World, session: &str) -> bool {
    let req = request(Method::GET, "/x", &[("cookie", session), ("accept", "application/json")]);
    matches!(block_on(w.gateway.handle(&w.ports, &req)).outcome, Outcome::Forward(_))
}

fn iss() -> String {
    url::form_urlencoded::byte_serialize(ISSUER.as_bytes()).collect()
}

#[test]
fn the_providers_iframe_ends_the_sessions_of_its_sid_without_a_cookie() {
    let w = world();
    let first = sign_in_with_sid(&w, "sid-1");
    let second = sign_in_with_sid(&w, "sid-1");
    let other = sign_in_with_sid(&w, "sid-2");
    let d = frontchannel(&w.gateway, &w.ports, &format!("iss={}&sid=sid-1", iss()));
    let r = response(&d);
    assert_eq!(r.status(), 200, "{:?}", d.log);
    assert_eq!(r.headers()["cache-control"], "no-store");
    assert!(String::from_utf8_lossy(r.body()).contains("signed out"));
    assert_eq!((d.log.reason, d.log.detail.as_deref()), ("frontchannel_logout", Some("2 session(s) ended")));
    assert!(!signed_in(&w, &first) && !signed_in(&w, &second));
    assert!(signed_in(&w, &other), "another sid is untouched");
    // Another isolate (reading KV) sees them ended too.
    let fresh = Gateway::new(w.gateway.config.clone());
    let req = request(Method::GET, "/x", &[("cookie", &first), ("accept", "application/json")]);
    assert!(matches!(block_on(fresh.handle(&w.ports, &req)).outcome, Outcome::Respond(_)));
    // Again: nothing left to end, still a quiet 200.
    let d = frontchannel(&w.gateway, &w.ports, &format!("iss={}&sid=sid-1", iss()));
    assert_eq!(d.log.detail.as_deref(), Some("0 session(s) ended"));
}

#[test]
fn requests_that_do_not_name_this_provider_and_a_sid_end_nothing() {
    let w = world();
    let session = sign_in_with_sid(&w, "sid-1");
    let cases = [
        ("iss=https%3A%2F%2Fidp.evil.example&sid=sid-1", "frontchannel_logout_issuer_mismatch"),
        ("sid=sid-1", "frontchannel_logout_iss_missing"),
        (&*format!("iss={}", iss()), "frontchannel_logout_sid_missing"),
        (&*format!("iss={}&sid=", iss()), "frontchannel_logout_sid_missing"),
    ];
    for (query, reason) in cases {
        let d = frontchannel(&w.gateway, &w.ports, query);
        assert_eq!((response(&d).status().as_u16(), d.log.reason), (400, reason), "{query}");
        assert!(signed_in(&w, &session), "{query}: the session is kept");
    }
    // The cookie of the session a request carries ends nothing either: only the sid counts.
    let req = request(Method::GET, "/auth/frontchannel-logout?sid=nobody", &[("cookie", &session)]);
    let d = block_on(w.gateway.handle(&w.ports, &req));
    assert_eq!(d.log.reason, "frontchannel_logout_iss_missing");
    let req = request(Method::POST, &format!("/auth/frontchannel-logout?iss={}&sid=sid-1", iss()), &[]);
    assert_eq!(block_on(w.gateway.handle(&w.ports, &req)).log.reason, "frontchannel_logout_not_get");
    assert!(signed_in(&w, &session));
}

fn entra_signed_in(w: &EntraWorld, session: &str) -> bool {
    let req = request(Method::GET, "/docs", &[("cookie", session), ("accept", "application/json")]);
    matches!(handle(w, &req).outcome, Outcome::Forward(_))
}

#[test]
fn entra_sends_sid_alone_and_a_multi_tenant_iss_must_be_an_allowed_tenant_s() {
    let w = entra_world(
        &[("ENTRA_TENANT", "organizations"), ("ENTRA_ALLOWED_TENANTS", HOME)],
        "discovery-v2-organizations.json",
        Some("https://login.microsoftonline.com/{tenantid}/v2.0"),
    );
    let sid = "007e3899-e104-731f-b675-0617c1f2dd72";
    let session = session_cookie(&entra_sign_in(&w, json!({"sid": sid})));
    assert!(entra_signed_in(&w, &session));
    let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    for (iss, reason) in [
        (format!("https://login.microsoftonline.com/{PARTNER}/v2.0"), "frontchannel_logout_issuer_mismatch"),
        ("https://login.microsoftonline.com/{tenantid}/v2.0".to_owned(), "frontchannel_logout_issuer_mismatch"),
        (format!("https://sts.windows.net/{HOME}/"), "frontchannel_logout_issuer_mismatch"),
    ] {
        let d =
            handle(&w, &request(Method::GET, &format!("/auth/frontchannel-logout?iss={}&sid={sid}", enc(&iss)), &[]));
        assert_eq!(d.log.reason, reason, "{iss}");
        assert!(entra_signed_in(&w, &session), "{iss}");
    }
    let home = enc(&format!("https://login.microsoftonline.com/{HOME}/v2.0"));
    let d = handle(&w, &request(Method::GET, &format!("/auth/frontchannel-logout?iss={home}&sid={sid}"), &[]));
    assert_eq!(d.log.detail.as_deref(), Some("1 session(s) ended"), "{:?}", d.log);
    assert!(!entra_signed_in(&w, &session));
    // Entra's own request: sid only.
    let again = session_cookie(&entra_sign_in(&w, json!({"sid": sid})));
    let d = handle(&w, &request(Method::GET, &format!("/auth/frontchannel-logout?sid={sid}"), &[]));
    assert_eq!((response(&d).status().as_u16(), d.log.detail.as_deref()), (200, Some("1 session(s) ended")));
    assert!(!entra_signed_in(&w, &again));
}
