//! A refresh response's ID token (OIDC Core §12.2): checked like the sign-in's, then the
//! session's identity and mapped headers follow it on every refresh path; a bad one ends the
//! session and nothing it says reaches the origin.

use super::*;
use crate::ports::KvStore;
use crate::testkit::idp::Signer;

const ROUTES: &str = r#"[{"prefix": "/", "auth": "session",
    "headers": {"X-User-Name": "name", "X-User-Groups": "groups", "X-User-Email": "email"}}]"#;
/// When the access token from sign-in is due and the refresh answers.
const REFRESHED_AT: u64 = NOW + 3600;

/// A world whose sign-in ID token says `auth_time` and `groups`, and whose refresh grants
/// answer with an ID token `edit` made from the sign-in's claims.
fn world_refreshing_with(
    edit: impl Fn(&mut serde_json::Value) + 'static,
    objects: bool,
) -> (World, Gateway<TestPorts>) {
    let overrides = [("SESSION_IDLE_TIMEOUT", "8h"), ("ROUTES", ROUTES)];
    let mut w = world();
    w.gateway = Gateway::new(config(&overrides));
    w.ports.objects.bound.set(objects);
    let idp = Rc::clone(&w.idp);
    *w.idp.token_answer.borrow_mut() = Some(Box::new(move |nonce| {
        let mut claims = idp.id_claims(nonce, NOW);
        claims["auth_time"] = json!(NOW - 5);
        claims["groups"] = json!(["staff"]);
        Ok(json_response(200, &idp.token_body(&idp.signer.sign_claims(&claims))))
    }));
    let idp = Rc::clone(&w.idp);
    *w.idp.refresh_answer.borrow_mut() = Some(Box::new(move |_| {
        let mut claims = idp.id_claims(&idp.nonce.borrow(), REFRESHED_AT);
        claims["auth_time"] = json!(NOW - 5);
        claims["groups"] = json!(["staff"]);
        edit(&mut claims);
        let id_token = match claims.get("forged_by") {
            Some(_) => Signer::new(crate::testkit::idp::KID).sign_claims(&claims),
            None => idp.signer.sign_claims(&claims),
        };
        let body = json!({
            "access_token": "access-token-2", "token_type": "Bearer", "expires_in": 3600,
            "refresh_token": "refresh-token-2", "id_token": id_token,
        });
        Ok(json_response(200, &body))
    }));
    (w, Gateway::new(config(&overrides)))
}

/// What the provider says about Alice by the time the session is refreshed.
fn promoted(claims: &mut serde_json::Value) {
    claims["name"] = json!("Alice Cooper");
    claims["email"] = json!("alice.cooper@example.com");
    claims["groups"] = json!(["staff", "admins"]);
}

fn get(w: &World, gateway: &Gateway<TestPorts>, session: &str) -> Decision {
    block_on(
        gateway
            .handle(&w.ports, &request(Method::GET, "/api/x", &[("cookie", session), ("accept", "application/json")])),
    )
}

/// The identity headers the origin got (mapped from ID token claims, and the session identity's
/// e-mail), or why nothing was forwarded.
fn mapped(d: &Decision) -> Result<[String; 4], (u16, &'static str)> {
    match &d.outcome {
        Outcome::Forward(_) => {
            Ok(["x-user-name", "x-user-groups", "x-user-email", "x-forwarded-email"].map(|h| set_header(d, h).unwrap()))
        }
        Outcome::Respond(r) => Err((r.status().as_u16(), d.log.reason)),
    }
}

fn before() -> Result<[String; 4], (u16, &'static str)> {
    Ok(["Alice".into(), "staff".into(), "alice@example.com".into(), "alice@example.com".into()])
}

fn after() -> Result<[String; 4], (u16, &'static str)> {
    let email = "alice.cooper@example.com";
    Ok(["Alice Cooper".into(), "staff,admins".into(), email.into(), email.into()])
}

#[test]
fn a_refreshed_id_token_changes_the_mapped_headers_and_auth_me() {
    let (w, other) = world_refreshing_with(promoted, false);
    let session = sign_in(&w, "/");
    assert_eq!(mapped(&get(&w, &w.gateway, &session)), before());
    w.ports.clock.advance_secs(3600);
    // The request that refreshes, the next one (the warm copy) and another isolate (KV).
    assert_eq!(mapped(&get(&w, &w.gateway, &session)), after());
    assert_eq!(mapped(&get(&w, &w.gateway, &session)), after());
    assert_eq!(mapped(&get(&w, &other, &session)), after());
    assert_eq!(*w.idp.refreshes.borrow(), vec!["refresh-token-1"]);
    let me = block_on(w.gateway.handle(&w.ports, &request(Method::GET, "/auth/me", &[("cookie", &session)])));
    let body: serde_json::Value = serde_json::from_slice(response(&me).body()).unwrap();
    assert_eq!(
        (body["name"].as_str(), body["email"].as_str()),
        (Some("Alice Cooper"), Some("alice.cooper@example.com"))
    );
    assert_eq!(body["groups"], json!(["staff", "admins"]));
}

/// Signs in, refreshes through `w.gateway` (whose answer carries the new claims), then puts the
/// sign-in record back into KV, as another isolate or location may still read it. The cookie.
fn refreshed_with_the_sign_in_record_back_in_kv(w: &World) -> String {
    let session = sign_in(w, "/");
    let key = block_on(w.ports.kv.list("session:v1:")).unwrap().remove(0);
    let stale = w.ports.kv.entry(&key).unwrap();
    w.ports.clock.advance_secs(3600);
    assert_eq!(mapped(&get(w, &w.gateway, &session)), after());
    block_on(w.ports.kv.put(&key, &stale.0, stale.1)).unwrap();
    session
}

#[test]
fn a_warm_isolate_still_reading_the_old_record_takes_the_new_claims_from_the_grace_record() {
    let (w, other) = world_refreshing_with(promoted, false);
    // Where `other` runs, KV still has the record from sign-in (refresh-token-1).
    let session = refreshed_with_the_sign_in_record_back_in_kv(&w);
    assert_eq!(mapped(&get(&w, &other, &session)), after());
    assert_eq!(w.idp.refreshes.borrow().len(), 1, "the grace record, not a second grant");
}

#[test]
fn with_session_objects_every_isolate_takes_the_new_claims() {
    let (w, other) = world_refreshing_with(promoted, true);
    // `other` reads the old record and no grace record: the object hands it the sealed tokens.
    let session = refreshed_with_the_sign_in_record_back_in_kv(&w);
    for grace in block_on(w.ports.kv.list("refresh-grace:")).unwrap() {
        block_on(w.ports.kv.delete(&grace)).unwrap();
    }
    assert_eq!(mapped(&get(&w, &other, &session)), after());
    assert_eq!(w.idp.refreshes.borrow().len(), 1);
}

#[test]
fn a_refresh_without_an_id_token_keeps_the_claims() {
    let (w, _) = world_refreshing_with(promoted, false);
    *w.idp.refresh_answer.borrow_mut() = None;
    let session = sign_in(&w, "/");
    w.ports.clock.advance_secs(3600);
    let d = get(&w, &w.gateway, &session);
    assert_eq!(set_header(&d, "authorization").as_deref(), Some("Bearer access-token-2"));
    assert_eq!(mapped(&d), before());
}

/// Each hostile refreshed ID token: what is wrong with it, and the edit that makes it so.
fn hostile() -> Vec<(&'static str, Edit)> {
    vec![
        ("sub_changed", Box::new(|c| c["sub"] = json!("mallory"))),
        ("issuer_mismatch", Box::new(|c| c["iss"] = json!("https://evil.example"))),
        ("audience_mismatch", Box::new(|c| c["aud"] = json!("another-client"))),
        ("azp_mismatch", Box::new(|c| c["azp"] = json!("another-client"))),
        ("signature_invalid", Box::new(|c| c["forged_by"] = json!("mallory"))),
        ("auth_time_changed", Box::new(|c| c["auth_time"] = json!(NOW + 3000))),
        ("nonce_changed", Box::new(|c| c["nonce"] = json!("replayed-nonce"))),
        ("token_expired", Box::new(|c| c["exp"] = json!(REFRESHED_AT - 600))),
        ("iat_in_future", Box::new(|c| c["iat"] = json!(REFRESHED_AT + 3600))),
        ("at_hash_mismatch", Box::new(|c| c["at_hash"] = json!("AAAAAAAAAAAAAAAAAAAAAA"))),
        ("directory_id_changed", Box::new(|c| c["oid"] = json!("00000000-0000-0000-0000-000000000001"))),
    ]
}

#[test]
fn a_bad_refreshed_id_token_ends_the_session_and_never_reaches_the_origin() {
    for objects in [false, true] {
        for (what, edit) in hostile() {
            let (w, other) = world_refreshing_with(
                move |c| {
                    promoted(c);
                    edit(c);
                },
                objects,
            );
            let session = sign_in(&w, "/");
            assert_eq!(mapped(&get(&w, &other, &session)), before(), "{what}: the other isolate warms up");
            w.ports.clock.advance_secs(3600);
            let d = get(&w, &w.gateway, &session);
            assert_eq!(mapped(&d), Err((401, "refresh_id_token_invalid")), "{what}");
            assert_eq!(d.log.notes, vec![what], "the log line says which check failed");
            assert_eq!(mapped(&get(&w, &w.gateway, &session)), Err((401, "session_unknown")), "{what}");
            assert!(mapped(&get(&w, &other, &session)).is_err(), "{what}: ended in the other isolate too");
            assert!(block_on(w.ports.kv.list("session:v1:")).unwrap().is_empty(), "{what}");
        }
    }
}
