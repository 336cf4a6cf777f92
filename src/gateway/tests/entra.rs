//! Entra ID through the whole pipeline: a scripted Entra (discovery documents and token claim
//! sets from tests/fixtures/entra, a JWKS with `x5t`/`x5c`/`issuer`, RS256 tokens signed with a
//! fixture key) in front of the gateway configured with the preset.

use super::*;
use crate::entra::tests::{HOME, PARTNER};
use crate::testkit::FakeHttp;
use crate::testkit::native_crypto::{TestKey, sign_token};
use serde_json::Value;
use std::cell::RefCell;

pub(super) const H: &str = "https://login.microsoftonline.com";
const KID: &str = "nOo3ZDrODXEK1jKWhXslHR_KXEg";
const CLIENT_ID: &str = "6731de76-14a6-49ae-97bc-6eba6914391e";

fn fixture(name: &str) -> Value {
    let path = format!("{}/tests/fixtures/entra/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// A claim set from tokens.json with fresh times and `edits` applied (null removes).
fn claims(name: &str, edits: Value) -> (Value, Value) {
    let entry = fixture("tokens.json")[name].clone();
    let mut claims = entry["claims"].clone();
    claims["iat"] = json!(NOW - 60);
    claims["nbf"] = json!(NOW - 60);
    claims["exp"] = json!(NOW + 3600);
    for (k, v) in edits.as_object().unwrap() {
        if v.is_null() {
            claims.as_object_mut().unwrap().remove(k);
        } else {
            claims[k] = v.clone();
        }
    }
    (entry["header"].clone(), claims)
}

pub(super) struct Entra {
    key: TestKey,
    pub(super) discovery: Value,
    /// The `issuer` member on the JWKS key, if any.
    key_issuer: Option<String>,
    nonce: RefCell<String>,
    /// Edits to the ID token of the next code exchange.
    id_edits: RefCell<Value>,
    token_extra: RefCell<Value>,
    /// Answers for requests the lookalike does not know (Microsoft Graph, other grants).
    pub(super) extra: RefCell<Option<Extra>>,
}

/// A test's own answers, tried before the lookalike's.
pub(super) type Extra = Box<dyn Fn(&crate::ports::OutgoingRequest) -> Option<crate::ports::IncomingResponse>>;

impl Entra {
    pub(super) fn sign(&self, name: &str, edits: Value) -> String {
        let (header, claims) = claims(name, edits);
        sign_token(&self.key, &header, &claims)
    }

    fn jwks(&self) -> Value {
        let mut jwk = self.key.jwk(KID);
        jwk["use"] = json!("sig");
        jwk["x5t"] = json!(KID);
        // Certificates are never read: keys are chosen by kid, and x5c from tokens is refused.
        jwk["x5c"] = json!(["MIIDBTCCAe2gAwIBAgIQN33ROaIJ6bJBWDCxtmJEbjANBgkqhkiG9w0BAQsFADAt"]);
        if let Some(issuer) = &self.key_issuer {
            jwk["issuer"] = json!(issuer);
        }
        json!({ "keys": [jwk] })
    }

    fn http(self: &Rc<Self>) -> FakeHttp {
        let entra = Rc::clone(self);
        FakeHttp::new(move |req| {
            if let Some(answer) = entra.extra.borrow().as_ref().and_then(|extra| extra(req)) {
                return Ok(answer);
            }
            let path = req.uri().path();
            if path.ends_with("/.well-known/openid-configuration") {
                return Ok(json_response(200, &entra.discovery));
            }
            if path.ends_with("/keys") {
                return Ok(json_response(200, &entra.jwks()));
            }
            if path.ends_with("/token") {
                let mut edits = entra.id_edits.borrow().clone();
                edits["nonce"] = json!(entra.nonce.borrow().clone());
                edits["aud"] = json!(CLIENT_ID);
                let id_token = entra.sign("id_token_v2", edits);
                let mut body = json!({
                    "token_type": "Bearer", "scope": "Orders.Read", "expires_in": "3599",
                    "ext_expires_in": "3599", "access_token": "entra-access-token",
                    "refresh_token": "entra-refresh-token", "id_token": id_token,
                });
                for (k, v) in entra.token_extra.borrow().as_object().unwrap() {
                    body[k] = v.clone();
                }
                return Ok(json_response(200, &body));
            }
            Ok(json_response(404, &json!({})))
        })
    }
}

pub(super) struct EntraWorld {
    pub(super) entra: Rc<Entra>,
    pub(super) ports: crate::testkit::ports::TestPorts<FakeHttp>,
    pub(super) gateway: Gateway<crate::testkit::ports::TestPorts<FakeHttp>>,
}

const ROUTES: &str = r#"[
    {"prefix": "/", "auth": "session"},
    {"prefix": "/admin/", "auth": "session", "groups": ["1ba1e0b4-7f2f-4b1c-9f55-7f5d1b0f1a2c"]},
    {"prefix": "/api/", "auth": "bearer", "scopes": ["Orders.Read"], "caller": "user"},
    {"prefix": "/api/jobs/", "auth": "bearer", "roles": ["Orders.Write.All"], "caller": "app"},
    {"prefix": "/api/directory/", "auth": "bearer", "wids": ["62e90394-69f5-4237-9190-012177145e10"]},
    {"prefix": "/api/team/", "auth": "bearer", "groups": ["1ba1e0b4-7f2f-4b1c-9f55-7f5d1b0f1a2c"]}
]"#;

pub(super) fn entra_world(settings: &[(&str, &str)], discovery: &str, key_issuer: Option<&str>) -> EntraWorld {
    let entra = Rc::new(Entra {
        key: TestKey::rsa_a(),
        discovery: fixture(discovery),
        key_issuer: key_issuer.map(str::to_owned),
        nonce: RefCell::new(String::new()),
        id_edits: RefCell::new(json!({})),
        token_extra: RefCell::new(json!({})),
        extra: RefCell::new(None),
    });
    let mut map: HashMap<&str, &str> = HashMap::from([
        ("OIDC_CLIENT_ID", CLIENT_ID),
        ("OIDC_CLIENT_SECRET", "client-secret"),
        ("PUBLIC_URL", "https://gw.example.com"),
        ("ORIGIN_URL", "https://origin.internal"),
        ("SESSION_SECRET", "0123456789abcdef0123456789abcdef"),
        ("ROUTES", ROUTES),
        ("API_AUDIENCES", "api://orders,8a1c2d3e-0000-4000-8000-00000000a0b1"),
    ]);
    map.extend(settings.iter().copied());
    let config = Config::from_settings(|name| map.get(name).map(|v| (*v).to_owned())).unwrap();
    let ports = crate::testkit::ports::TestPorts::new(entra.http(), NOW);
    EntraWorld { entra, ports, gateway: Gateway::new(config) }
}

fn multi_tenant() -> EntraWorld {
    entra_world(
        &[("ENTRA_TENANT", "organizations"), ("ENTRA_ALLOWED_TENANTS", HOME)],
        "discovery-v2-organizations.json",
        Some("https://login.microsoftonline.com/{tenantid}/v2.0"),
    )
}

pub(super) fn single_tenant() -> EntraWorld {
    entra_world(&[("ENTRA_TENANT", HOME)], "discovery-v2-tenant.json", None)
}

pub(super) fn handle(w: &EntraWorld, req: &IncomingRequest) -> Decision {
    block_on(w.gateway.handle(&w.ports, req))
}

/// Start and finish a sign-in; the callback's decision.
pub(super) fn sign_in(w: &EntraWorld, id_edits: Value) -> Decision {
    sign_in_at(w, "/docs", id_edits)
}

/// [`sign_in`] starting at `path` (whose route picks the provider).
pub(super) fn sign_in_at(w: &EntraWorld, path: &str, id_edits: Value) -> Decision {
    let d = handle(w, &navigate(path, ""));
    let r = response(&d);
    assert_eq!(r.status(), 302, "{:?}", d.log);
    let q = query_of(r.headers()["location"].to_str().unwrap());
    *w.entra.nonce.borrow_mut() = q["nonce"].clone();
    *w.entra.id_edits.borrow_mut() = id_edits;
    let tx = cookie_pairs(r).join("; ");
    handle(w, &navigate(&format!("/auth/callback?code=c&state={}", q["state"]), &tx))
}

pub(super) fn session_cookie(d: &Decision) -> String {
    let r = response(d);
    assert_eq!(r.status(), 302, "{:?} {}", d.log, String::from_utf8_lossy(r.body()));
    cookie_pairs(r).into_iter().find(|c| c.starts_with("__Host-edgeguard=")).unwrap()
}

pub(super) fn bearer(w: &EntraWorld, path: &str, token: &str) -> Decision {
    let auth = format!("Bearer {token}");
    handle(w, &request(Method::GET, path, &[("authorization", &auth), ("accept", "application/json")]))
}

pub(super) fn forwarded_header(
    d: &Decision,
    req_headers: &crate::gateway::RequestHeaders,
    name: &str,
) -> Option<String> {
    let Outcome::Forward(plan) = &d.outcome else { panic!("not forwarded: {:?}", d.log) };
    plan.headers.apply(req_headers).get(name).map(|v| v.to_str().unwrap().to_owned())
}

#[test]
fn preset_authorize_request_uses_the_tenant_authority_and_offline_access() {
    let w = multi_tenant();
    let d = handle(&w, &navigate("/", ""));
    let location = response(&d).headers()["location"].to_str().unwrap().to_owned();
    assert!(location.starts_with(&format!("{H}/organizations/oauth2/v2.0/authorize?")), "{location}");
    let q = query_of(&location);
    assert_eq!(q["scope"], "openid profile email offline_access");
    assert!(!q.contains_key("resource"), "v2 sends scope, never resource");
    assert_eq!(w.ports.http.count("/organizations/v2.0/.well-known/openid-configuration"), 1);
}

#[test]
fn multi_tenant_sign_in_from_an_allowed_tenant_carries_oid_and_tid() {
    let w = multi_tenant();
    let session = session_cookie(&sign_in(&w, json!({})));
    let req = request(Method::GET, "/docs", &[("cookie", &session), ("x-forwarded-object-id", "spoofed")]);
    let d = handle(&w, &req);
    assert_eq!(
        forwarded_header(&d, &req.headers, "x-forwarded-object-id").unwrap(),
        "00000000-0000-0000-66f3-3332eca7ea81"
    );
    assert_eq!(forwarded_header(&d, &req.headers, "x-forwarded-tenant-id").unwrap(), HOME);
    assert_eq!(forwarded_header(&d, &req.headers, "authorization").unwrap(), "Bearer entra-access-token");
    // The ID token listed the group, so the group route admits this user.
    assert!(matches!(
        handle(&w, &request(Method::GET, "/admin/x", &[("cookie", &session)])).outcome,
        Outcome::Forward(_)
    ));
}

#[test]
fn multi_tenant_sign_in_from_a_refused_tenant_makes_no_session() {
    let w = multi_tenant();
    let partner_iss = format!("{H}/{PARTNER}/v2.0");
    let d = sign_in(&w, json!({"tid": PARTNER, "iss": partner_iss}));
    assert_eq!(response(&d).status(), 400);
    assert_eq!(d.log.reason, "issuer_tenant_not_allowed");
    assert!(cookie_pairs(response(&d)).iter().all(|c| !c.starts_with("__Host-edgeguard=")));
    assert_eq!(w.ports.kv.len(), 0, "nothing stored");
    // A token whose tid and iss disagree is refused whichever tenant it names.
    let d = sign_in(&w, json!({"tid": HOME, "iss": partner_iss}));
    assert_eq!(d.log.reason, "issuer_mismatch");
}

#[test]
fn session_with_group_overage_is_refused_with_a_reason_that_explains() {
    let w = single_tenant();
    let overage = json!({"groups": null, "_claim_names": {"groups": "src1"},
                         "_claim_sources": {"src1": {"endpoint": "https://graph.microsoft.com/v1.0/users/x/getMemberObjects"}}});
    let session = session_cookie(&sign_in(&w, overage));
    let req = request(Method::GET, "/admin/x", &[("cookie", &session), ("accept", "text/html")]);
    let d = handle(&w, &req);
    let r = response(&d);
    assert_eq!(r.status(), 403);
    assert_eq!(d.log.reason, "groups_overage");
    let body = String::from_utf8_lossy(r.body());
    assert!(body.contains("group overage") && body.contains("app role"), "{body}");
}

#[test]
fn v1_and_v2_access_tokens_of_the_tenant_are_accepted_on_api_routes() {
    let w = single_tenant();
    let v1 = w.entra.sign("access_token_v1_delegated", json!({}));
    let d = bearer(&w, "/api/orders", &v1);
    assert!(matches!(d.outcome, Outcome::Forward(_)), "{:?}", d.log);
    let v2 = w.entra.sign("access_token_v2_delegated", json!({}));
    let req = request(Method::GET, "/api/orders", &[("authorization", &format!("Bearer {v2}"))]);
    let d = handle(&w, &req);
    assert_eq!(
        forwarded_header(&d, &req.headers, "x-forwarded-object-id").unwrap(),
        "00000000-0000-0000-66f3-3332eca7ea81"
    );
    assert_eq!(forwarded_header(&d, &req.headers, "x-forwarded-tenant-id").unwrap(), HOME);
    // Another tenant's token is refused even though Entra's keys signed it.
    let foreign = w.entra.sign(
        "access_token_v1_delegated",
        json!({"tid": PARTNER, "iss": format!("https://sts.windows.net/{PARTNER}/")}),
    );
    assert_eq!(bearer(&w, "/api/orders", &foreign).log.reason, "issuer_tenant_not_allowed");
    let only_v2 =
        entra_world(&[("ENTRA_TENANT", HOME), ("ENTRA_API_TOKEN_VERSIONS", "v2")], "discovery-v2-tenant.json", None);
    assert_eq!(
        bearer(&only_v2, "/api/orders", &only_v2.entra.sign("access_token_v1_delegated", json!({}))).log.reason,
        "issuer_mismatch"
    );
}

#[test]
fn graph_tokens_are_refused_with_their_own_reason() {
    let w = single_tenant();
    let graph = w.entra.sign("graph_access_token", json!({}));
    let d = bearer(&w, "/api/orders", &graph);
    assert_eq!(response(&d).status(), 401);
    assert_eq!(d.log.reason, "graph_token_not_for_this_api");
    let challenge = response(&d).headers()["www-authenticate"].to_str().unwrap().to_owned();
    assert!(challenge.contains("Microsoft Graph"), "{challenge}");
}

#[test]
fn an_id_token_is_not_an_access_token_even_for_an_accepted_audience() {
    // The API's own registration signs users in too: its ID tokens carry its client id as
    // aud, and app roles, like its v2 access tokens.
    let w = single_tenant();
    let api_id_token = w.entra.sign(
        "id_token_v2",
        json!({"aud": "8a1c2d3e-0000-4000-8000-00000000a0b1", "wids": ["62e90394-69f5-4237-9190-012177145e10"]}),
    );
    assert_eq!(bearer(&w, "/api/directory/x", &api_id_token).log.reason, "not_an_access_token");
    let v1_id_token = w.entra.sign("id_token_v1", json!({"aud": "api://orders", "roles": ["Orders.Admin"]}));
    assert_eq!(bearer(&w, "/api/directory/x", &v1_id_token).log.reason, "not_an_access_token");
    // The gateway's own client id is never an API audience (config refuses it).
    let err = Config::from_settings(|name| match name {
        "ENTRA_TENANT" => Some(HOME.into()),
        "OIDC_CLIENT_ID" | "API_AUDIENCES" => Some(CLIENT_ID.into()),
        "OIDC_CLIENT_SECRET" => Some("s".into()),
        "PUBLIC_URL" => Some("https://gw.example.com".into()),
        "ORIGIN_URL" => Some("https://origin.internal".into()),
        "SESSION_SECRET" => Some("0123456789abcdef0123456789abcdef".into()),
        _ => None,
    })
    .unwrap_err();
    assert!(err.0.iter().any(|e| e.setting == "API_AUDIENCES"), "{err}");
}

#[test]
fn routes_require_user_or_app_tokens_roles_and_directory_roles() {
    let w = single_tenant();
    let app = w.entra.sign("access_token_v2_app_only", json!({}));
    let user = w.entra.sign("access_token_v2_delegated", json!({}));
    assert!(matches!(bearer(&w, "/api/jobs/run", &app).outcome, Outcome::Forward(_)));
    assert_eq!(bearer(&w, "/api/jobs/run", &user).log.reason, "app_token_required");
    let app_with_scope = w.entra.sign("access_token_v2_app_only", json!({"scp": "Orders.Read"}));
    assert_eq!(bearer(&w, "/api/orders", &app_with_scope).log.reason, "user_token_required");
    // An app token without idtyp is still recognised: roles and no scp.
    let v1_app = w.entra.sign("access_token_v2_app_only", json!({"idtyp": null}));
    assert!(matches!(bearer(&w, "/api/jobs/run", &v1_app).outcome, Outcome::Forward(_)));
    let admin = w.entra.sign("access_token_v2_delegated", json!({"wids": ["62e90394-69f5-4237-9190-012177145e10"]}));
    assert!(matches!(bearer(&w, "/api/directory/x", &admin).outcome, Outcome::Forward(_)));
    assert_eq!(bearer(&w, "/api/directory/x", &user).log.reason, "directory_role_missing");
    // preferred_username / upn never authorise: naming an admin there changes nothing.
    let named =
        w.entra.sign("access_token_v2_delegated", json!({"preferred_username": "admin@contoso.com", "upn": "admin"}));
    assert_eq!(bearer(&w, "/api/directory/x", &named).log.reason, "directory_role_missing");
}

#[test]
fn api_group_overage_is_refused_with_the_overage_reason() {
    let w = single_tenant();
    let token = w.entra.sign("access_token_v2_group_overage", json!({}));
    let d = bearer(&w, "/api/team/x", &token);
    assert_eq!(response(&d).status(), 403);
    assert_eq!(d.log.reason, "groups_overage");
    let hasgroups = w.entra.sign("access_token_v2_delegated", json!({"hasgroups": true}));
    assert_eq!(bearer(&w, "/api/team/x", &hasgroups).log.reason, "groups_overage");
    assert_eq!(
        bearer(&w, "/api/team/x", &w.entra.sign("access_token_v2_delegated", json!({}))).log.reason,
        "group_missing"
    );
}

#[test]
fn keys_are_chosen_by_kid_honour_their_issuer_and_x5c_in_tokens_is_refused() {
    // The key is published for the home tenant only; a partner token signed with it is refused
    // even though the partner tenant is allowed.
    let home_key = format!("{H}/{HOME}/v2.0");
    let w = entra_world(
        &[("ENTRA_TENANT", "common"), ("ENTRA_ALLOWED_TENANTS", &format!("{HOME},{PARTNER}"))],
        "discovery-v2-common.json",
        Some(&home_key),
    );
    let home = w.entra.sign("access_token_v2_delegated", json!({}));
    assert!(matches!(bearer(&w, "/api/orders", &home).outcome, Outcome::Forward(_)));
    let partner =
        w.entra.sign("access_token_v2_delegated", json!({"tid": PARTNER, "iss": format!("{H}/{PARTNER}/v2.0")}));
    assert_eq!(bearer(&w, "/api/orders", &partner).log.reason, "key_issuer_mismatch");
    // Entra signs v1 tokens with the keys its v2 key set publishes: same tenant, accepted;
    // another tenant's v1 token is not.
    let home_v1 = w.entra.sign("access_token_v1_delegated", json!({}));
    assert!(matches!(bearer(&w, "/api/orders", &home_v1).outcome, Outcome::Forward(_)));
    let partner_v1 = w.entra.sign(
        "access_token_v1_delegated",
        json!({"tid": PARTNER, "iss": format!("https://sts.windows.net/{PARTNER}/")}),
    );
    assert_eq!(bearer(&w, "/api/orders", &partner_v1).log.reason, "key_issuer_mismatch");
    // A token bringing its own certificate chain is refused before any key is looked at.
    let (mut header, body) = claims("access_token_v2_delegated", json!({}));
    header["x5c"] = json!(["MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA"]);
    let with_x5c = sign_token(&w.entra.key, &header, &body);
    assert_eq!(bearer(&w, "/api/orders", &with_x5c).log.reason, "embedded_key_refused");
    // A kid the JWKS does not have is unknown, whatever x5t says.
    let (mut header, body) = claims("access_token_v2_delegated", json!({}));
    header["kid"] = json!("not-published");
    assert_eq!(bearer(&w, "/api/orders", &sign_token(&w.entra.key, &header, &body)).log.reason, "kid_unknown");
}

#[test]
fn v1_sign_in_sends_resource_and_reads_string_expires_in() {
    let w = entra_world(
        &[("ENTRA_TENANT", HOME), ("ENTRA_VERSION", "v1"), ("OIDC_RESOURCE", "api://orders")],
        "discovery-v1-tenant.json",
        None,
    );
    let d = handle(&w, &navigate("/", ""));
    let location = response(&d).headers()["location"].to_str().unwrap().to_owned();
    assert!(location.starts_with(&format!("{H}/{HOME}/oauth2/authorize?")), "{location}");
    assert_eq!(query_of(&location)["resource"], "api://orders");
    // The v1 ID token has the sts.windows.net issuer.
    let v1_iss = format!("https://sts.windows.net/{HOME}/");
    let session = session_cookie(&sign_in(&w, json!({"iss": v1_iss, "ver": "1.0"})));
    let token_request =
        w.ports.http.sent.borrow().iter().find(|r| r.uri().path().ends_with("/token")).cloned().unwrap();
    let form: HashMap<String, String> = url::form_urlencoded::parse(token_request.body()).into_owned().collect();
    assert_eq!(form["resource"], "api://orders");
    // expires_in "3599" was read: the session's token is fresh, so no refresh happens; near
    // its expiry, the refresh does.
    let token_calls = || w.ports.http.sent.borrow().iter().filter(|r| r.uri().path().ends_with("/token")).count();
    let d = handle(&w, &request(Method::GET, "/docs", &[("cookie", &session)]));
    assert!(matches!(d.outcome, Outcome::Forward(_)), "{:?}", d.log);
    assert_eq!(token_calls(), 1);
    w.ports.clock.advance_secs(3599);
    let d = handle(&w, &request(Method::GET, "/docs", &[("cookie", &session)]));
    assert_eq!(token_calls(), 2, "{:?}", d.log);
}

#[test]
fn consent_required_is_retried_once_with_prompt_consent_then_explained() {
    let w = single_tenant();
    let d = handle(&w, &navigate("/docs?x=1", ""));
    let r = response(&d);
    let first = query_of(r.headers()["location"].to_str().unwrap());
    assert!(!first.contains_key("prompt"));
    let tx = cookie_pairs(r).join("; ");
    let callback = |state: &str, cookie: &str| {
        let q = format!("error=consent_required&error_description=AADSTS65001%3A+consent&state={state}");
        handle(&w, &navigate(&format!("/auth/callback?{q}"), cookie))
    };
    let d = callback(&first["state"], &tx);
    let r = response(&d);
    assert_eq!(r.status(), 302, "{:?}", d.log);
    assert_eq!(d.log.reason, "consent_retry");
    let retry = query_of(r.headers()["location"].to_str().unwrap());
    assert_eq!(retry["prompt"], "consent");
    assert_ne!(retry["state"], first["state"], "a fresh transaction");
    assert!(set_cookies(r).iter().any(|c| c.contains("Max-Age=0")), "the first transaction is cleared");
    let retry_tx = cookie_pairs(r).join("; ");
    // Refused again: no second retry, a page that says an administrator must consent.
    let d = callback(&retry["state"], &retry_tx);
    let r = response(&d);
    assert_eq!(r.status(), 403);
    assert_eq!(d.log.reason, "consent_required");
    assert!(String::from_utf8_lossy(r.body()).contains("/auth/admin-consent"));
    // A consent error with no matching transaction is not retried either.
    assert_eq!(callback("forged-state", "").log.reason, "consent_required");
    // Nor one that another issuer sent into this flow (RFC 9207 mix-up): refused, not retried.
    let d = handle(&w, &navigate("/docs", ""));
    let r = response(&d);
    let q = query_of(r.headers()["location"].to_str().unwrap());
    let mixed = format!("error=consent_required&state={}&iss=https%3A%2F%2Fevil.example", q["state"]);
    let d = handle(&w, &navigate(&format!("/auth/callback?{mixed}"), &cookie_pairs(r).join("; ")));
    assert_eq!((response(&d).status().as_u16(), d.log.reason), (400, "callback_issuer_mismatch"));
    // After the retry the user consents: the sign-in completes where it was going.
    let d = handle(&w, &navigate("/docs?x=1", ""));
    let r = response(&d);
    let q = query_of(r.headers()["location"].to_str().unwrap());
    let d = callback(&q["state"], &cookie_pairs(r).join("; "));
    let r = response(&d);
    let q = query_of(r.headers()["location"].to_str().unwrap());
    *w.entra.nonce.borrow_mut() = q["nonce"].clone();
    let d = handle(&w, &navigate(&format!("/auth/callback?code=c&state={}", q["state"]), &cookie_pairs(r).join("; ")));
    assert_eq!(response(&d).headers()["location"], "https://gw.example.com/docs?x=1");
}

fn admin_consent(w: &EntraWorld, query: &str, cookie: &str) -> Decision {
    let path = if query.is_empty() { "/auth/admin-consent".to_owned() } else { format!("/auth/admin-consent?{query}") };
    handle(w, &navigate(&path, cookie))
}

#[test]
fn admin_consent_round_trip() {
    let w =
        entra_world(&[("ENTRA_TENANT", "common"), ("ENTRA_ALLOWED_TENANTS", HOME)], "discovery-v2-common.json", None);
    let d = admin_consent(&w, "", "");
    let r = response(&d);
    assert_eq!(r.status(), 302);
    let location = r.headers()["location"].to_str().unwrap().to_owned();
    assert!(
        location.starts_with(&format!("{H}/organizations/v2.0/adminconsent?")),
        "common is not allowed there: {location}"
    );
    let q = query_of(&location);
    assert_eq!(q["client_id"], CLIENT_ID);
    assert_eq!(q["redirect_uri"], "https://gw.example.com/auth/admin-consent");
    assert_eq!(q["scope"], "openid profile email");
    let cookie = cookie_pairs(r).join("; ");
    assert!(cookie.starts_with("__Secure-edgeguard-admin-consent="));
    let state = &q["state"];

    let d = admin_consent(&w, &format!("admin_consent=True&tenant={HOME}&state={state}"), &cookie);
    assert_eq!((response(&d).status().as_u16(), d.log.reason), (200, "admin_consent_granted"));
    assert!(String::from_utf8_lossy(response(&d).body()).contains(HOME));
    let d = admin_consent(&w, &format!("admin_consent=True&tenant={PARTNER}&state={state}"), &cookie);
    assert!(String::from_utf8_lossy(response(&d).body()).contains("ENTRA_ALLOWED_TENANTS"), "not yet accepted");
    let d = admin_consent(&w, &format!("error=access_denied&error_description=AADSTS65004&state={state}"), &cookie);
    assert_eq!((response(&d).status().as_u16(), d.log.reason), (403, "admin_consent_denied"));
    // A forged answer (other state, or no cookie) claims nothing.
    let d = admin_consent(&w, &format!("admin_consent=True&tenant={HOME}&state=forged"), &cookie);
    assert_eq!((response(&d).status().as_u16(), d.log.reason), (400, "admin_consent_state_mismatch"));
    let d = admin_consent(&w, &format!("admin_consent=True&tenant={HOME}&state={state}"), "");
    assert_eq!(d.log.reason, "admin_consent_state_mismatch");
}

#[test]
fn admin_consent_v1_uses_prompt_admin_consent_and_other_providers_have_none() {
    let w = entra_world(
        &[("ENTRA_TENANT", HOME), ("ENTRA_VERSION", "v1"), ("OIDC_RESOURCE", "api://orders")],
        "discovery-v1-tenant.json",
        None,
    );
    let d = admin_consent(&w, "", "");
    let location = response(&d).headers()["location"].to_str().unwrap().to_owned();
    assert!(location.starts_with(&format!("{H}/{HOME}/oauth2/authorize?")), "{location}");
    let q = query_of(&location);
    assert_eq!((q["prompt"].as_str(), q["resource"].as_str()), ("admin_consent", "api://orders"));
    let generic = world();
    let d = block_on(generic.gateway.handle(&generic.ports, &navigate("/auth/admin-consent", "")));
    assert_eq!(response(&d).status(), 404);
}

#[test]
fn national_cloud_api_tokens_carry_their_cloud_s_issuers() {
    let china = entra_world(
        &[("ENTRA_TENANT", HOME), ("ENTRA_AUTHORITY", "https://login.partner.microsoftonline.cn")],
        "discovery-v2-tenant-china.json",
        Some("https://login.partner.microsoftonline.cn/{tenantid}/v2.0"),
    );
    let v1 =
        china.entra.sign("access_token_v1_delegated", json!({"iss": format!("https://sts.chinacloudapi.cn/{HOME}/")}));
    let d = bearer(&china, "/api/orders", &v1);
    assert!(matches!(d.outcome, Outcome::Forward(_)), "a China v1 token, its key naming the v2 issuer: {:?}", d.log);
    let public_v1 = china.entra.sign("access_token_v1_delegated", json!({}));
    assert_eq!(bearer(&china, "/api/orders", &public_v1).log.reason, "issuer_mismatch");

    let us = entra_world(
        &[("ENTRA_TENANT", HOME), ("ENTRA_AUTHORITY", "https://login.microsoftonline.us")],
        "discovery-v2-tenant-usgov.json",
        None,
    );
    let v1 = us.entra.sign("access_token_v1_delegated", json!({}));
    assert!(matches!(bearer(&us, "/api/orders", &v1).outcome, Outcome::Forward(_)), "US Gov v1 is sts.windows.net");
    let v2 = us
        .entra
        .sign("access_token_v2_delegated", json!({"iss": format!("https://login.microsoftonline.us/{HOME}/v2.0")}));
    assert!(matches!(bearer(&us, "/api/orders", &v2).outcome, Outcome::Forward(_)));
    let public_v2 = us.entra.sign("access_token_v2_delegated", json!({}));
    assert_eq!(bearer(&us, "/api/orders", &public_v2).log.reason, "issuer_mismatch");
}
