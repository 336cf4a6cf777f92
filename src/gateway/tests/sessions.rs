//! Sessions over time: refresh (coalesced, with grace records), failures, idle timeout, secret
//! rotation, logout and back-channel logout. Time moves with the fake clock, never by sleeping.

use super::*;
use crate::ports::KvStore;
use futures::future::join_all;

fn world_with(overrides: &[(&str, &str)]) -> World {
    let mut w = world();
    w.gateway = Gateway::new(config(overrides));
    w
}

/// Long idle timeout so only the access token's expiry matters.
fn refresh_world() -> World {
    world_with(&[("SESSION_IDLE_TIMEOUT", "8h")])
}

fn api_get(w: &World, gateway: &Gateway<TestPorts>, session: &str) -> Decision {
    block_on(
        gateway
            .handle(&w.ports, &request(Method::GET, "/api/x", &[("cookie", session), ("accept", "application/json")])),
    )
}

fn forwarded_token(d: &Decision) -> String {
    match &d.outcome {
        Outcome::Forward(_) => set_header(d, "authorization").unwrap(),
        Outcome::Respond(r) => panic!("not forwarded: {} {:?}", r.status(), d.log),
    }
}

#[test]
fn an_expiring_access_token_is_refreshed_transparently() {
    let w = refresh_world();
    let session = sign_in(&w, "/");
    w.ports.clock.advance_secs(3600 - 29);
    let d = api_get(&w, &w.gateway, &session);
    assert_eq!(forwarded_token(&d), "Bearer access-token-2");
    assert_eq!(*w.idp.refreshes.borrow(), vec!["refresh-token-1"]);
    let Outcome::Forward(plan) = &d.outcome else { unreachable!() };
    assert!(plan.set_cookies.is_empty(), "a refresh does not change the cookie");
    // Again later: the rotated refresh token is the one presented.
    w.ports.clock.advance_secs(3600);
    assert_eq!(forwarded_token(&api_get(&w, &w.gateway, &session)), "Bearer access-token-3");
    assert_eq!(*w.idp.refreshes.borrow(), vec!["refresh-token-1", "refresh-token-2"]);
}

#[test]
fn parallel_requests_on_an_expired_session_refresh_once() {
    let w = refresh_world();
    let session = sign_in(&w, "/");
    w.ports.clock.advance_secs(3600);
    let requests: Vec<_> = (0..20)
        .map(|_| request(Method::GET, "/api/x", &[("cookie", session.as_str()), ("accept", "application/json")]))
        .collect();
    let decisions = block_on(join_all(requests.iter().map(|r| w.gateway.handle(&w.ports, r))));
    assert_eq!(w.idp.refreshes.borrow().len(), 1, "exactly one refresh grant");
    assert_eq!(w.gateway.refreshing.slots(), 0, "no refresh result (tokens) is kept once all have read it");
    for d in &decisions {
        assert_eq!(forwarded_token(d), "Bearer access-token-2");
    }
    assert_eq!(forwarded_token(&api_get(&w, &w.gateway, &session)), "Bearer access-token-2");
}

#[test]
fn another_isolate_with_the_old_refresh_token_uses_the_grace_record() {
    let w = refresh_world();
    let session = sign_in(&w, "/");
    let other: Gateway<TestPorts> = Gateway::new(config(&[("SESSION_IDLE_TIMEOUT", "8h")]));
    // The other isolate warms up with the original record...
    assert_eq!(forwarded_token(&api_get(&w, &other, &session)), "Bearer access-token-1");
    w.ports.clock.advance_secs(3600);
    // ...this isolate refreshes...
    assert_eq!(forwarded_token(&api_get(&w, &w.gateway, &session)), "Bearer access-token-2");
    // ...and the other, still holding refresh-token-1 in memory, must not present it again.
    assert_eq!(forwarded_token(&api_get(&w, &other, &session)), "Bearer access-token-2");
    assert_eq!(w.idp.refreshes.borrow().len(), 1);
}

#[test]
fn a_rejected_refresh_token_ends_the_session_cleanly() {
    let w = refresh_world();
    let session = sign_in(&w, "/");
    *w.idp.refresh_answer.borrow_mut() = Some(Box::new(|_| Ok(json_response(400, &json!({"error": "invalid_grant"})))));
    w.ports.clock.advance_secs(3600);
    let d = api_get(&w, &w.gateway, &session);
    assert_eq!(response(&d).status(), 401);
    assert_eq!(d.log.reason, "refresh_token_rejected");
    // The session is gone: a browser gets one redirect to sign in, not a loop of refreshes.
    let d = block_on(w.gateway.handle(&w.ports, &navigate("/page", &session)));
    assert_eq!(response(&d).status(), 302);
    assert_eq!(d.log.detail.as_deref(), Some("session_unknown"));
    assert_eq!(w.idp.refreshes.borrow().len(), 1);
}

#[test]
fn provider_trouble_during_refresh_keeps_the_session() {
    let w = refresh_world();
    let session = sign_in(&w, "/");
    *w.idp.refresh_answer.borrow_mut() = Some(Box::new(|_| Ok(json_response(503, &json!({})))));
    // Inside the margin but not yet expired: served with the current token.
    w.ports.clock.advance_secs(3600 - 10);
    assert_eq!(forwarded_token(&api_get(&w, &w.gateway, &session)), "Bearer access-token-1");
    // Expired: 503 with Retry-After, and the session survives.
    w.ports.clock.advance_secs(20);
    let d = api_get(&w, &w.gateway, &session);
    assert_eq!(response(&d).status(), 503);
    assert_eq!(response(&d).headers()["retry-after"], "5");
    *w.idp.refresh_answer.borrow_mut() = None;
    assert!(forwarded_token(&api_get(&w, &w.gateway, &session)).starts_with("Bearer access-token-"));
}

#[test]
fn idle_sessions_end_and_active_ones_are_extended_rarely() {
    let w = world_with(&[("SESSION_IDLE_TIMEOUT", "10m")]);
    let session = sign_in(&w, "/");
    w.ports.clock.advance_secs(200);
    let Outcome::Forward(plan) = api_get(&w, &w.gateway, &session).outcome else { panic!() };
    assert!(plan.set_cookies.is_empty(), "not re-set while more than half the idle time is left");
    w.ports.clock.advance_secs(200);
    let Outcome::Forward(plan) = api_get(&w, &w.gateway, &session).outcome else { panic!() };
    assert_eq!(plan.set_cookies.len(), 1, "re-set once past half");
    let renewed = plan.set_cookies[0].split(';').next().unwrap().to_owned();
    // The old cookie idles out at +600 s; the renewed one lives until +400+600.
    w.ports.clock.advance_secs(300);
    assert_eq!(api_get(&w, &w.gateway, &session).log.reason, "session_idle_timeout");
    assert!(matches!(api_get(&w, &w.gateway, &renewed).outcome, Outcome::Forward(_)));
}

#[test]
fn secret_rotation_keeps_old_sessions_and_seals_new_ones_with_the_new_secret() {
    const OLD: &str = "old-secret-old-secret-old-secret-0001";
    const NEW: &str = "new-secret-new-secret-new-secret-0001";
    let mut w = world_with(&[("SESSION_SECRET", OLD)]);
    let old_session = sign_in(&w, "/");
    let both = format!("{NEW},{OLD}");
    w.gateway = Gateway::new(config(&[("SESSION_SECRET", &both)]));
    assert!(matches!(api_get(&w, &w.gateway, &old_session).outcome, Outcome::Forward(_)), "old cookie and record open");
    let new_session = sign_in(&w, "/");
    w.gateway = Gateway::new(config(&[("SESSION_SECRET", NEW)]));
    assert!(matches!(api_get(&w, &w.gateway, &new_session).outcome, Outcome::Forward(_)), "sealed with the new secret");
    assert_eq!(api_get(&w, &w.gateway, &old_session).log.reason, "session_cookie_invalid");
}

fn logout(w: &World, session: &str) -> Decision {
    let req = request(Method::POST, "/auth/logout", &[("cookie", session), ("origin", "https://gw.example.com")]);
    block_on(w.gateway.handle(&w.ports, &req))
}

#[test]
fn logout_revokes_the_refresh_token_and_can_end_the_provider_session() {
    let w = world();
    let session = sign_in(&w, "/");
    let d = logout(&w, &session);
    assert_eq!(response(&d).status(), 200);
    assert_eq!(*w.idp.revoked.borrow(), vec!["refresh-token-1"]);
    assert_eq!(d.log.notes, vec!["refresh_token_revoked"]);
    assert_eq!(api_get(&w, &w.gateway, &session).log.reason, "session_unknown");

    let w = world_with(&[("POST_LOGOUT_REDIRECT_URL", "https://gw.example.com/bye")]);
    let session = sign_in(&w, "/");
    let d = logout(&w, &session);
    let location = response(&d).headers()["location"].to_str().unwrap().to_owned();
    assert!(location.starts_with("https://idp.example.com/session/end?"), "{location}");
    let q = query_of(&location);
    assert_eq!(q["post_logout_redirect_uri"], "https://gw.example.com/bye");
    assert_eq!(q["client_id"], "edgeguard");
    assert_eq!(q["id_token_hint"].split('.').count(), 3);
}

fn logout_token(w: &World, edit: impl Fn(&mut serde_json::Value)) -> String {
    let mut claims = json!({
        "iss": ISSUER, "aud": "edgeguard", "iat": NOW, "exp": NOW + 120, "jti": "jti-1", "sub": "alice",
        "events": {"http://schemas.openid.net/event/backchannel-logout": {}},
    });
    edit(&mut claims);
    w.idp.signer.sign(&json!({"alg": "ES256", "kid": w.idp.signer.kid, "typ": "logout+jwt"}), &claims)
}

fn backchannel(w: &World, token: &str) -> Decision {
    let mut req =
        request(Method::POST, "/auth/backchannel-logout", &[("content-type", "application/x-www-form-urlencoded")]);
    req.form = Some(format!("logout_token={token}").into_bytes());
    block_on(w.gateway.handle(&w.ports, &req))
}

#[test]
fn backchannel_logout_ends_the_users_sessions_once() {
    let w = world();
    let first = sign_in(&w, "/");
    let second = sign_in(&w, "/");
    let d = backchannel(&w, &logout_token(&w, |_| {}));
    assert_eq!(response(&d).status(), 200, "{:?}", d.log);
    assert_eq!(response(&d).headers()["cache-control"], "no-store");
    assert_eq!(d.log.detail.as_deref(), Some("2 session(s) ended"));
    for session in [&first, &second] {
        assert_eq!(api_get(&w, &w.gateway, session).log.reason, "session_unknown");
    }
    let replay = backchannel(&w, &logout_token(&w, |_| {}));
    assert_eq!((response(&replay).status().as_u16(), replay.log.reason), (400, "logout_token_rejected"));
}

#[test]
fn bad_logout_tokens_are_refused() {
    let cases: Vec<(&str, Edit)> = vec![
        ("nonce", Box::new(|c| c["nonce"] = json!("n"))),
        (
            "no events",
            Box::new(|c| {
                c.as_object_mut().unwrap().remove("events");
            }),
        ),
        ("wrong event", Box::new(|c| c["events"] = json!({"urn:other": {}}))),
        (
            "no sid or sub",
            Box::new(|c| {
                c.as_object_mut().unwrap().remove("sub");
            }),
        ),
        (
            "no jti",
            Box::new(|c| {
                c.as_object_mut().unwrap().remove("jti");
            }),
        ),
        ("wrong aud", Box::new(|c| c["aud"] = json!("someone-else"))),
        ("old", Box::new(|c| c["iat"] = json!(NOW - 3600))),
    ];
    for (name, edit) in cases {
        let w = world();
        let session = sign_in(&w, "/");
        let d = backchannel(&w, &logout_token(&w, edit));
        assert_eq!(response(&d).status(), 400, "{name}: {:?}", d.log);
        assert!(matches!(api_get(&w, &w.gateway, &session).outcome, Outcome::Forward(_)), "{name}: session kept");
    }
    let w = world();
    let d = backchannel(&w, "not-a-token");
    assert_eq!(response(&d).status(), 400);
}

/// Sign in with access tokens (from sign-in and every refresh) that live `lifetime` seconds.
fn short_token_world(lifetime: u64) -> (World, String) {
    let w = refresh_world();
    let idp = Rc::clone(&w.idp);
    *w.idp.token_answer.borrow_mut() = Some(Box::new(move |nonce| {
        let mut body = idp.token_body(&idp.signer.sign_claims(&idp.id_claims(nonce, NOW)));
        body["expires_in"] = json!(lifetime);
        Ok(json_response(200, &body))
    }));
    let refreshes = Rc::clone(&w.idp);
    *w.idp.refresh_answer.borrow_mut() = Some(Box::new(move |_| {
        let n = refreshes.refreshes.borrow().len() + 1;
        Ok(json_response(
            200,
            &json!({
                "access_token": format!("access-token-{n}"), "token_type": "Bearer",
                "expires_in": lifetime, "refresh_token": format!("refresh-token-{n}"),
            }),
        ))
    }));
    let session = sign_in(&w, "/");
    (w, session)
}

#[test]
fn short_lived_access_tokens_are_refreshed_once_per_lifetime_not_per_request() {
    let (w, session) = short_token_world(2);
    // A fresh 2 s token is used as it is, by a burst of parallel requests and by later ones.
    let burst = |w: &World| {
        let requests: Vec<_> = (0..10)
            .map(|_| request(Method::GET, "/api/x", &[("cookie", session.as_str()), ("accept", "application/json")]))
            .collect();
        block_on(join_all(requests.iter().map(|r| w.gateway.handle(&w.ports, r))))
            .iter()
            .map(forwarded_token)
            .collect::<Vec<_>>()
    };
    assert_eq!(burst(&w), vec!["Bearer access-token-1"; 10]);
    assert!(w.idp.refreshes.borrow().is_empty(), "a fresh token is not refreshed");
    // Once it expires: one refresh grant for the burst, and the new token is used as it is.
    w.ports.clock.advance_secs(2);
    assert_eq!(burst(&w), vec!["Bearer access-token-2"; 10]);
    assert_eq!(burst(&w), vec!["Bearer access-token-2"; 10]);
    assert_eq!(w.idp.refreshes.borrow().len(), 1, "one refresh grant per token lifetime");
    // A 10-minute token is still refreshed 30 s before it expires, as before.
    let (w, session) = short_token_world(600);
    w.ports.clock.advance_secs(600 - 31);
    assert_eq!(forwarded_token(&api_get(&w, &w.gateway, &session)), "Bearer access-token-1");
    w.ports.clock.advance_secs(1);
    assert_eq!(forwarded_token(&api_get(&w, &w.gateway, &session)), "Bearer access-token-2");
}

#[test]
fn only_invalid_grant_ends_a_session_other_refresh_errors_are_transient() {
    let transient: Vec<(&str, IncomingResponse)> = vec![
        ("provider_rate_limited", json_response(429, &json!({"error": "slow_down"}))),
        ("provider_rate_limited", json_response(429, &json!({}))),
        ("provider_temporarily_unavailable", json_response(400, &json!({"error": "temporarily_unavailable"}))),
        ("provider_error", json_response(503, &json!({"error": "temporarily_unavailable"}))),
        ("client_authentication_failed", json_response(401, &json!({"error": "invalid_client"}))),
        ("provider_error", json_response(500, &json!({"error": "server_error"}))),
        ("provider_error", json_response(400, &json!({"error": "invalid_request"}))),
    ];
    for (reason, answer) in transient {
        let w = refresh_world();
        let session = sign_in(&w, "/");
        let status = answer.status();
        *w.idp.refresh_answer.borrow_mut() = Some(Box::new(move |_| Ok(answer.clone())));
        // Inside the margin: the still-valid token is served, with a note saying why it was not renewed.
        w.ports.clock.advance_secs(3600 - 10);
        let d = api_get(&w, &w.gateway, &session);
        assert_eq!(forwarded_token(&d), "Bearer access-token-1", "{status}");
        assert_eq!(d.log.notes, vec!["refresh_deferred", reason], "{status}");
        // Expired: 503 + Retry-After with the reason, and the session survives for when the provider is back.
        w.ports.clock.advance_secs(20);
        let d = api_get(&w, &w.gateway, &session);
        assert_eq!(response(&d).status(), 503, "{status}: {:?}", d.log);
        assert!(response(&d).headers().contains_key("retry-after"), "{status}");
        assert_eq!(d.log.reason, "refresh_unavailable");
        assert!(d.log.detail.as_deref().unwrap_or_default().contains(reason), "{status}: {:?}", d.log.detail);
        *w.idp.refresh_answer.borrow_mut() = None;
        assert!(forwarded_token(&api_get(&w, &w.gateway, &session)).starts_with("Bearer access-token-"), "{status}");
    }
}

/// The session record's KV key and its sealed value as stored now.
fn stored_record(w: &World) -> (String, Vec<u8>, u64) {
    let keys = block_on(w.ports.kv.list("session:v1:")).unwrap();
    assert_eq!(keys.len(), 1, "{keys:?}");
    let (sealed, ttl) = w.ports.kv.entry(&keys[0]).unwrap();
    (keys[0].clone(), sealed, ttl)
}

#[test]
fn a_refresh_write_that_lands_after_logout_does_not_bring_the_session_back() {
    let w = refresh_world();
    let session = sign_in(&w, "/");
    let elsewhere: Gateway<TestPorts> = Gateway::new(config(&[("SESSION_IDLE_TIMEOUT", "8h")]));
    assert!(matches!(api_get(&w, &elsewhere, &session).outcome, Outcome::Forward(_)), "warm in another isolate");
    // A refresh in another location checked the tombstone before the logout (or did not see it
    // yet) and writes the record after it.
    let (key, sealed, ttl) = stored_record(&w);
    assert_eq!(response(&logout(&w, &session)).status(), 200);
    block_on(w.ports.kv.put(&key, &sealed, ttl)).unwrap();
    // A cold isolate must not take the record for a live session...
    let cold: Gateway<TestPorts> = Gateway::new(config(&[("SESSION_IDLE_TIMEOUT", "8h")]));
    let d = api_get(&w, &cold, &session);
    assert_eq!((response(&d).status().as_u16(), d.log.reason), (401, "session_unknown"));
    assert!(w.ports.kv.entry(&key).is_none(), "the revived record is deleted again");
    // ...nor may the warm one once it re-reads KV.
    block_on(w.ports.kv.put(&key, &sealed, ttl)).unwrap();
    w.ports.clock.advance_secs(crate::store::WARM_REVALIDATE_SECS);
    let d = api_get(&w, &elsewhere, &session);
    assert_eq!((response(&d).status().as_u16(), d.log.reason), (401, "session_unknown"));
}

#[test]
fn a_burst_on_a_due_warm_session_reads_kv_once_not_once_per_request() {
    let w = world();
    let session = sign_in(&w, "/");
    w.ports.clock.advance_secs(crate::store::WARM_REVALIDATE_SECS);
    w.ports.kv.slow_reads.set(true);
    let reads = w.ports.kv.reads();
    let requests: Vec<_> = (0..10)
        .map(|_| request(Method::GET, "/api/x", &[("cookie", session.as_str()), ("accept", "application/json")]))
        .collect();
    let decisions = block_on(join_all(requests.iter().map(|r| w.gateway.handle(&w.ports, r))));
    assert!(decisions.iter().all(|d| matches!(d.outcome, Outcome::Forward(_))), "every request served");
    assert_eq!(w.ports.kv.reads() - reads, 2, "one re-read (record + tombstone) for the whole burst");
    // The next due re-read still happens (the mark went with the read).
    let reads = w.ports.kv.reads();
    w.ports.clock.advance_secs(crate::store::WARM_REVALIDATE_SECS);
    assert!(matches!(api_get(&w, &w.gateway, &session).outcome, Outcome::Forward(_)));
    assert_eq!(w.ports.kv.reads() - reads, 2);
}
