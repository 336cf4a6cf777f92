//! Identity headers from claims and Easy Auth's principal, through the whole pipeline.

use super::bearer::access_token;
use super::*;

const ROUTES: &str = r#"[
    {"prefix": "/", "auth": "session", "headers": {"X-User-Name": "name", "X-Claims-Email": {"claim": "email", "format": "json"}}},
    {"prefix": "/public/", "auth": "public"},
    {"prefix": "/easy/", "auth": "session", "client_principal": true},
    {"prefix": "/api/", "auth": "bearer",
     "headers": {"X-Forwarded-Groups": "groups", "X-Groups-Json": {"claim": "groups", "format": "json"},
                 "X-Small": {"claim": "groups", "max_bytes": 8}, "X-Dept": "org.dept", "X-Note": "note"}}
]"#;

fn headers_world() -> World {
    let mut w = world();
    w.gateway = Gateway::new(config(&[("ROUTES", ROUTES), ("API_AUDIENCES", "https://api.example.test")]));
    w
}

fn sent(d: &Decision, req: &IncomingRequest) -> http::HeaderMap {
    let Outcome::Forward(plan) = &d.outcome else { panic!("not forwarded: {:?}", d.log) };
    plan.headers.apply(&req.headers)
}

#[test]
fn session_routes_map_id_token_claims() {
    let w = headers_world();
    let session = sign_in(&w, "/");
    let req = request(Method::GET, "/docs", &[("cookie", &session), ("x-user-name", "mallory")]);
    let d = block_on(w.gateway.handle(&w.ports, &req));
    let out = sent(&d, &req);
    assert_eq!(out.get_all("x-user-name").iter().collect::<Vec<_>>(), vec!["Alice"]);
    assert_eq!(out["x-claims-email"], "\"alice@example.com\"");
}

#[test]
fn mapped_id_token_claims_stay_right_on_every_request_and_follow_the_stored_record() {
    use crate::ports::KvStore;
    let w = headers_world();
    let session = sign_in(&w, "/");
    let user_name = |w: &World| {
        let req = request(Method::GET, "/docs", &[("cookie", &session)]);
        let d = block_on(w.gateway.handle(&w.ports, &req));
        sent(&d, &req).get("x-user-name").map(|v| v.to_str().unwrap().to_owned())
    };
    for n in 1..=5 {
        assert_eq!(user_name(&w).as_deref(), Some("Alice"), "request {n}");
    }
    // The stored record gets a new ID token (as a refresh in another isolate would write it):
    // once this isolate re-reads it, the header shows the new token's claim.
    let key = block_on(w.ports.list("session:v1:")).unwrap().pop().unwrap();
    let keys = &w.gateway.config.session.keys;
    let mut record =
        crate::session::SessionRecord::open(&block_on(w.ports.get(&key)).unwrap().unwrap(), &key, keys).unwrap();
    let mut claims = w.idp.id_claims("n", NOW);
    claims["name"] = json!("Alice Cooper");
    record.id_token = w.idp.signer.sign_claims(&claims);
    block_on(w.ports.put(&key, &record.seal(&key, keys, &w.ports), 3600)).unwrap();
    assert_eq!(user_name(&w).as_deref(), Some("Alice"), "the warm copy is still trusted");
    w.ports.clock.advance_secs(crate::store::WARM_REVALIDATE_SECS);
    for n in 1..=3 {
        assert_eq!(user_name(&w).as_deref(), Some("Alice Cooper"), "request {n} after the re-read");
    }
}

#[test]
fn client_copies_of_mapped_headers_are_stripped_on_every_route() {
    let w = headers_world();
    let spoofed = [("X-Forwarded-Groups", "admins"), ("x_groups_json", "[\"admins\"]"), ("X-User-Name", "mallory")];
    let req = request(Method::GET, "/public/x", &spoofed);
    let out = sent(&block_on(w.gateway.handle(&w.ports, &req)), &req);
    for name in ["x-forwarded-groups", "x_groups_json", "x-groups-json", "x-user-name"] {
        assert!(out.get(name).is_none(), "{name} reached a public route's origin");
    }
    let session = sign_in(&w, "/");
    let mut headers = spoofed.to_vec();
    headers.push(("cookie", &session));
    let req = request(Method::GET, "/easy/x", &headers);
    let out = sent(&block_on(w.gateway.handle(&w.ports, &req)), &req);
    assert!(out.get("x-forwarded-groups").is_none(), "a session route that maps nothing");
}

#[test]
fn bearer_routes_map_access_token_claims_as_comma_lists_or_json() {
    let w = headers_world();
    let token = access_token(
        &w,
        json!({"groups": ["admins", "staff"], "org": {"dept": "sales"}, "note": "a\r\nX-Forwarded-User: admin"}),
    );
    let auth = format!("Bearer {token}");
    let req = request(Method::GET, "/api/x", &[("authorization", &auth), ("x-forwarded-groups", "root")]);
    let d = block_on(w.gateway.handle(&w.ports, &req));
    let out = sent(&d, &req);
    assert_eq!(out.get_all("x-forwarded-groups").iter().collect::<Vec<_>>(), vec!["admins,staff"]);
    assert_eq!(out["x-groups-json"], r#"["admins","staff"]"#);
    assert_eq!(out["x-dept"], "sales");
    assert!(out.get("x-small").is_none(), "12 bytes over a cap of 8: left out, not cut");
    assert!(out.get("x-note").is_none(), "CR/LF never reaches the origin");
    assert_eq!(out["x-forwarded-user"], "client-app");
    assert_eq!(d.log.notes, vec!["claim_header_unsafe", "claim_header_too_large"]);
    assert!(!d.quiet, "a header left out is logged");
}

#[test]
fn the_easy_auth_principal_carries_every_id_token_claim() {
    use base64::Engine;
    let w = headers_world();
    let session = sign_in(&w, "/");
    let req = request(Method::GET, "/easy/x", &[("cookie", &session), ("x-ms-client-principal", "Zm9yZ2Vk")]);
    let out = sent(&block_on(w.gateway.handle(&w.ports, &req)), &req);
    let values: Vec<_> = out.get_all("x-ms-client-principal").iter().collect();
    assert_eq!(values.len(), 1);
    let raw = base64::engine::general_purpose::STANDARD.decode(values[0].as_bytes()).unwrap();
    let doc: serde_json::Value = serde_json::from_slice(&raw).unwrap();
    assert_eq!(doc["auth_typ"], "oidc");
    assert_eq!(doc["name_typ"], "sub", "no preferred_username or upn in this ID token");
    let claims = doc["claims"].as_array().unwrap();
    assert!(claims.contains(&json!({"typ": "name", "val": "Alice"})), "{claims:?}");
    assert!(claims.contains(&json!({"typ": "sub", "val": "alice"})), "{claims:?}");
    assert_eq!(out["x-ms-client-principal-id"], "alice");
    assert_eq!(out["x-ms-client-principal-name"], "alice");
    assert_eq!(out["x-ms-client-principal-idp"], "oidc");
}

#[test]
fn mappings_are_checked_at_start_up() {
    let bad = r#"[{"prefix": "/", "auth": "public", "headers": {"X-A": "a"}},
                  {"prefix": "/b/", "headers": {"Authorization": "sub", "X_B": "b"}},
                  {"prefix": "/c/", "assertion": true, "assertion_header": "X-C", "headers": {"X-C": "sub"}}]"#;
    let errors = crate::policy::parse_routes(bad, Some(&url::Url::parse("https://o.internal").unwrap())).unwrap_err();
    assert_eq!(errors.len(), 4, "{errors:?}");
    assert!(errors[0].starts_with("route 0: headers and client_principal need a caller"), "{errors:?}");
    assert!(errors[3].contains("both its assertion_header and mapped"), "{errors:?}");
}

#[test]
fn the_easy_auth_idp_is_aad_for_an_entra_session() {
    use super::entra::{entra_world, handle, session_cookie, sign_in};
    use base64::Engine;
    let routes = r#"[{"prefix": "/", "auth": "session", "client_principal": true}]"#;
    let w = entra_world(
        &[("ENTRA_TENANT", crate::entra::tests::HOME), ("ROUTES", routes)],
        "discovery-v2-tenant.json",
        None,
    );
    let session = session_cookie(&sign_in(&w, json!({})));
    let req = request(Method::GET, "/docs", &[("cookie", &session)]);
    let out = sent(&handle(&w, &req), &req);
    assert_eq!(out["x-ms-client-principal-idp"], "aad");
    let raw = base64::engine::general_purpose::STANDARD.decode(out["x-ms-client-principal"].as_bytes()).unwrap();
    let doc: serde_json::Value = serde_json::from_slice(&raw).unwrap();
    assert_eq!(doc["auth_typ"], "aad");
    assert_eq!(out["x-ms-client-principal-id"], "00000000-0000-0000-66f3-3332eca7ea81", "Entra's oid");
}
