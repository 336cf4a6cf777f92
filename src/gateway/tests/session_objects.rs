//! Sessions with a `SESSION_OBJECTS` namespace bound: two gateways stand for two isolates (in
//! one location or two), sharing KV, the provider and the sessions' objects (the real state
//! machine, in memory). KV lag between locations is played by putting back what another
//! location would still read.

use super::*;
use crate::ports::KvStore;
use crate::store::ObjectCall;
use futures::future::join_all;

const IDLE: (&str, &str) = ("SESSION_IDLE_TIMEOUT", "8h");

fn bound_world() -> (World, Gateway<TestPorts>) {
    let mut w = world();
    w.gateway = Gateway::new(config(&[IDLE]));
    w.ports.objects.bound.set(true);
    (w, Gateway::new(config(&[IDLE])))
}

fn api_get(w: &World, gateway: &Gateway<TestPorts>, session: &str) -> Decision {
    let req = request(Method::GET, "/api/x", &[("cookie", session), ("accept", "application/json")]);
    block_on(gateway.handle(&w.ports, &req))
}

fn forwarded_token(d: &Decision) -> String {
    match &d.outcome {
        Outcome::Forward(_) => set_header(d, "authorization").unwrap(),
        Outcome::Respond(r) => panic!("not forwarded: {} {:?}", r.status(), d.log),
    }
}

fn calls(w: &World, pred: impl Fn(&ObjectCall) -> bool) -> usize {
    w.ports.objects.count(pred)
}

fn is_check(c: &ObjectCall) -> bool {
    matches!(c, ObjectCall::Check)
}

fn the_session_key(w: &World) -> String {
    let keys = block_on(w.ports.kv.list("session:v1:")).unwrap();
    assert_eq!(keys.len(), 1, "{keys:?}");
    keys[0].clone()
}

#[test]
fn twenty_requests_across_two_isolates_make_one_refresh_grant() {
    let (w, other) = bound_world();
    let session = sign_in(&w, "/");
    assert_eq!(forwarded_token(&api_get(&w, &other, &session)), "Bearer access-token-1", "the other isolate warms up");
    w.ports.clock.advance_secs(3600);
    let requests: Vec<_> = (0..20)
        .map(|_| request(Method::GET, "/api/x", &[("cookie", session.as_str()), ("accept", "application/json")]))
        .collect();
    let decisions = block_on(join_all(
        requests.iter().enumerate().map(|(i, r)| if i % 2 == 0 { &w.gateway } else { &other }.handle(&w.ports, r)),
    ));
    assert_eq!(*w.idp.refreshes.borrow(), vec!["refresh-token-1"], "exactly one refresh grant");
    for d in &decisions {
        assert_eq!(forwarded_token(d), "Bearer access-token-2");
    }
    let refreshes = calls(&w, |c| matches!(c, ObjectCall::Refresh { .. }));
    assert_eq!(refreshes, 2, "one object request per isolate, not per request");
    // The rotated token is what both isolates present next time: the session lives on.
    w.ports.clock.advance_secs(3600);
    assert_eq!(forwarded_token(&api_get(&w, &other, &session)), "Bearer access-token-3");
    assert_eq!(forwarded_token(&api_get(&w, &w.gateway, &session)), "Bearer access-token-3");
    assert_eq!(*w.idp.refreshes.borrow(), vec!["refresh-token-1", "refresh-token-2"]);
}

#[test]
fn a_location_still_reading_the_old_record_gets_the_new_tokens_not_a_second_grant() {
    let (w, other) = bound_world();
    let session = sign_in(&w, "/");
    let key = the_session_key(&w);
    let stale = w.ports.kv.entry(&key).unwrap();
    w.ports.clock.advance_secs(3600);
    assert_eq!(forwarded_token(&api_get(&w, &w.gateway, &session)), "Bearer access-token-2");
    // Where `other` runs, KV has not caught up: the record and no grace record.
    block_on(w.ports.kv.put(&key, &stale.0, stale.1)).unwrap();
    for grace in block_on(w.ports.kv.list("refresh-grace:")).unwrap() {
        block_on(w.ports.kv.delete(&grace)).unwrap();
    }
    assert_eq!(forwarded_token(&api_get(&w, &other, &session)), "Bearer access-token-2");
    assert_eq!(w.idp.refreshes.borrow().len(), 1, "refresh-token-1 must not be presented twice");
}

#[test]
fn logout_in_one_isolate_ends_the_session_in_the_other_at_its_next_revalidation() {
    let (w, other) = bound_world();
    let session = sign_in(&w, "/");
    let key = the_session_key(&w);
    let stale = w.ports.kv.entry(&key).unwrap();
    assert!(matches!(api_get(&w, &other, &session).outcome, Outcome::Forward(_)));
    let checks = calls(&w, is_check);
    assert!(matches!(api_get(&w, &other, &session).outcome, Outcome::Forward(_)));
    assert_eq!(calls(&w, is_check), checks, "a warm request asks no object");

    let post = request(Method::POST, "/auth/logout", &[("cookie", &session), ("origin", "https://gw.example.com")]);
    assert_eq!(response(&block_on(w.gateway.handle(&w.ports, &post))).status(), 200);
    // Where `other` runs, KV still has the record and no tombstone yet.
    block_on(w.ports.kv.put(&key, &stale.0, stale.1)).unwrap();
    for tombstone in block_on(w.ports.kv.list("session-ended:")).unwrap() {
        block_on(w.ports.kv.delete(&tombstone)).unwrap();
    }
    w.ports.clock.advance_secs(crate::store::WARM_REVALIDATE_SECS - 1);
    assert!(matches!(api_get(&w, &other, &session).outcome, Outcome::Forward(_)), "warm until revalidation");
    w.ports.clock.advance_secs(1);
    let d = api_get(&w, &other, &session);
    assert_eq!((response(&d).status().as_u16(), d.log.reason), (401, "session_unknown"));
    assert_eq!(w.ports.kv.entry(&key), None, "the stray record is deleted where it is found");
}

#[test]
fn a_session_ended_while_another_isolate_waits_to_refresh_is_refused_there() {
    let (w, other) = bound_world();
    let session = sign_in(&w, "/");
    // `other` holds the session warm with 40 s left on the access token...
    w.ports.clock.advance_secs(3600 - 40);
    assert!(matches!(api_get(&w, &other, &session).outcome, Outcome::Forward(_)));
    // ...when its object ends it (a back-channel logout elsewhere, KV not caught up)...
    let hash = crate::store::session_hash(&the_session_key(&w)).to_owned();
    let end = ObjectCall::End { keep_secs: 3600 };
    block_on(crate::ports::SessionCoordinator::ask_session_object(&w.ports, &hash, &end)).unwrap();
    // ...and then finds the token due, still warm: the object refuses the refresh.
    w.ports.clock.advance_secs(15);
    let d = api_get(&w, &other, &session);
    assert_eq!((response(&d).status().as_u16(), d.log.reason), (401, "session_ended"));
    assert!(w.idp.refreshes.borrow().is_empty(), "no refresh grant for an ended session");
    assert_eq!(api_get(&w, &other, &session).log.reason, "session_unknown", "forgotten in that isolate");
}

#[test]
fn a_provider_outage_frees_the_lease_for_the_next_request() {
    let (w, other) = bound_world();
    let session = sign_in(&w, "/");
    w.ports.clock.advance_secs(3600);
    *w.idp.refresh_answer.borrow_mut() = Some(Box::new(|_| Ok(json_response(503, &json!({})))));
    let d = api_get(&w, &w.gateway, &session);
    assert_eq!((response(&d).status().as_u16(), d.log.reason), (503, "refresh_unavailable"));
    assert_eq!(calls(&w, |c| matches!(c, ObjectCall::Abandon { .. })), 1);
    *w.idp.refresh_answer.borrow_mut() = None;
    assert!(matches!(api_get(&w, &other, &session).outcome, Outcome::Forward(_)), "led at once, no wait");
    assert_eq!(
        *w.idp.refreshes.borrow(),
        vec!["refresh-token-1", "refresh-token-1"],
        "the failed grant did not rotate"
    );
}

#[test]
fn an_unreachable_object_is_a_503_never_a_pass() {
    let (w, _) = bound_world();
    let session = sign_in(&w, "/");
    w.ports.objects.fail.set(true);
    w.ports.clock.advance_secs(crate::store::WARM_REVALIDATE_SECS);
    let d = api_get(&w, &w.gateway, &session);
    assert_eq!((response(&d).status().as_u16(), d.log.reason), (503, "session_store_unavailable"));
    w.ports.objects.fail.set(false);
    w.ports.clock.advance_secs(3600);
    w.ports.objects.fail.set(true);
    let d = api_get(&w, &w.gateway, &session);
    assert_eq!(response(&d).status(), 503, "{:?}", d.log);
    assert!(w.idp.refreshes.borrow().is_empty(), "no grant without the object's lease");
}

/// A logout while the session's object is unreachable must still end the session in KV (the
/// record goes, a tombstone stays): otherwise, once the object is back and knows nothing of the
/// logout, every other isolate serves the signed-out session again.
#[test]
fn a_logout_while_the_object_is_unreachable_still_ends_the_session_everywhere() {
    let (w, other) = bound_world();
    let session = sign_in(&w, "/");
    let key = the_session_key(&w);
    w.ports.objects.fail.set(true);
    let post = request(Method::POST, "/auth/logout", &[("cookie", &session), ("origin", "https://gw.example.com")]);
    let d = block_on(w.gateway.handle(&w.ports, &post));
    assert!(response(&d).status().as_u16() < 500 || d.log.reason == "session_store_unavailable", "{:?}", d.log);
    assert_eq!(w.ports.kv.entry(&key), None, "the record is gone from KV");
    w.ports.objects.fail.set(false);
    let d = api_get(&w, &other, &session);
    assert_eq!(response(&d).status(), 401, "the signed-out session is served again: {:?}", d.log);
    assert!(matches!(api_get(&w, &w.gateway, &session).outcome, Outcome::Respond(_)));
}

#[test]
fn without_the_binding_no_object_is_asked_and_revalidation_follows_the_setting() {
    let mut w = world();
    w.gateway = Gateway::new(config(&[IDLE, ("SESSION_REVALIDATE", "2s")]));
    let session = sign_in(&w, "/");
    let key = the_session_key(&w);
    assert!(matches!(api_get(&w, &w.gateway, &session).outcome, Outcome::Forward(_)));
    block_on(w.ports.kv.delete(&key)).unwrap();
    w.ports.clock.advance_secs(1);
    assert!(matches!(api_get(&w, &w.gateway, &session).outcome, Outcome::Forward(_)), "warm for 2 s");
    w.ports.clock.advance_secs(1);
    assert_eq!(api_get(&w, &w.gateway, &session).log.reason, "session_unknown");
    assert!(w.ports.objects.calls.borrow().is_empty());
}
