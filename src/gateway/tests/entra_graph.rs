//! Entra group overage resolved through Microsoft Graph (`ENTRA_GROUPS_OVERAGE=graph`): the
//! scripted Entra of `entra.rs` plus a scripted Graph that serves memberships in pages and an
//! app-token grant at the user's tenant.

use super::entra::{EntraWorld, H, bearer, entra_world, handle, session_cookie, sign_in, sign_in_at};
use super::*;
use crate::entra::tests::{HOME, PARTNER};
use crate::ports::OutgoingRequest;
use serde_json::Value;
use std::cell::RefCell;

const GROUP: &str = "1ba1e0b4-7f2f-4b1c-9f55-7f5d1b0f1a2c";
const OID: &str = "00000000-0000-0000-66f3-3332eca7ea81";
const GRAPH: &str = "https://graph.microsoft.com";

/// What the scripted Graph and token endpoint saw and will answer.
#[derive(Default)]
struct Graph {
    /// Group ids per object id, served two per page.
    members: RefCell<HashMap<String, Vec<String>>>,
    /// Answer every Graph request with this status instead (403: permission missing).
    fail_with: RefCell<Option<u16>>,
    /// Refuse the client-credentials grant.
    refuse_grant: RefCell<bool>,
    graph_requests: RefCell<Vec<OutgoingRequest>>,
    grants: RefCell<Vec<(String, String)>>,
}

fn form(req: &OutgoingRequest) -> HashMap<String, String> {
    url::form_urlencoded::parse(req.body()).into_owned().collect()
}

impl Graph {
    fn answer(&self, req: &OutgoingRequest) -> Option<crate::ports::IncomingResponse> {
        let uri = req.uri().to_string();
        if req.method() == Method::POST && form(req).get("grant_type").map(String::as_str) == Some("client_credentials")
        {
            self.grants.borrow_mut().push((uri, form(req).get("scope").cloned().unwrap_or_default()));
            if *self.refuse_grant.borrow() {
                return Some(json_response(400, &json!({"error": "invalid_client"})));
            }
            return Some(json_response(
                200,
                &json!({"token_type": "Bearer", "access_token": "graph-app-token", "expires_in": 3599}),
            ));
        }
        if !uri.starts_with(GRAPH) {
            return None;
        }
        self.graph_requests.borrow_mut().push(req.clone());
        if let Some(status) = *self.fail_with.borrow() {
            return Some(json_response(status, &json!({"error": {"code": "Authorization_RequestDenied"}})));
        }
        assert_eq!(req.headers()["authorization"], "Bearer graph-app-token");
        let path = req.uri().path();
        let oid = path.split('/').nth(3).unwrap_or_default();
        let page: usize = req.uri().query().and_then(|q| q.split("page=").nth(1)).map_or(0, |p| p.parse().unwrap());
        let ids = self.members.borrow().get(oid).cloned().unwrap_or_default();
        let mut body = json!({"value": ids.iter().skip(page * 2).take(2)
            .map(|id| json!({"@odata.type": "#microsoft.graph.group", "id": id})).collect::<Vec<_>>()});
        if ids.len() > (page + 1) * 2 {
            body["@odata.nextLink"] = json!(format!("{GRAPH}{path}?$select=id&page={}", page + 1));
        }
        Some(json_response(200, &body))
    }
}

fn with_graph(w: &EntraWorld) -> Rc<Graph> {
    let graph = Rc::new(Graph::default());
    let answering = Rc::clone(&graph);
    *w.entra.extra.borrow_mut() = Some(Box::new(move |req| answering.answer(req)));
    graph
}

fn graph_world(settings: &[(&str, &str)]) -> (EntraWorld, Rc<Graph>) {
    let mut all = vec![("ENTRA_TENANT", HOME), ("ENTRA_GROUPS_OVERAGE", "graph")];
    all.extend(settings);
    let w = entra_world(&all, "discovery-v2-tenant.json", None);
    let graph = with_graph(&w);
    (w, graph)
}

fn member_of(graph: &Graph, oid: &str, groups: &[&str]) {
    graph.members.borrow_mut().insert(oid.to_owned(), groups.iter().map(|g| (*g).to_owned()).collect());
}

fn overage() -> Value {
    json!({"groups": null, "_claim_names": {"groups": "src1"},
           "_claim_sources": {"src1": {"endpoint": "https://graph.microsoft.com/v1.0/users/x/getMemberObjects"}}})
}

fn admin_page(w: &EntraWorld, session: &str) -> Decision {
    handle(w, &request(Method::GET, "/admin/x", &[("cookie", session), ("accept", "text/html")]))
}

fn forwarded(d: &Decision) -> bool {
    matches!(d.outcome, Outcome::Forward(_))
}

#[test]
fn a_session_with_overage_is_let_in_by_graph_membership_and_asks_once_per_session() {
    let (w, graph) = graph_world(&[]);
    // Five groups: the required one is on the third page.
    member_of(&graph, OID, &["g1", "g2", "g3", "g4", GROUP]);
    let session = session_cookie(&sign_in(&w, overage()));
    let d = admin_page(&w, &session);
    assert!(forwarded(&d), "{:?}", d.log);
    assert_eq!(graph.graph_requests.borrow().len(), 3, "every page was read");
    let first = graph.graph_requests.borrow()[0].uri().to_string();
    assert_eq!(first, format!("{GRAPH}/v1.0/users/{OID}/transitiveMemberOf?$select=id&$top=999"));
    // The app token came from the user's tenant, for Graph.
    let grants = graph.grants.borrow().clone();
    assert_eq!(grants, [(format!("{H}/{HOME}/oauth2/v2.0/token"), format!("{GRAPH}/.default"))]);
    // The second request, and a fresh isolate reading what was stored beside the session, ask nothing.
    assert!(forwarded(&admin_page(&w, &session)));
    let fresh = Gateway::new(w.gateway.config.clone());
    let d = block_on(fresh.handle(&w.ports, &request(Method::GET, "/admin/y", &[("cookie", &session)])));
    assert!(forwarded(&d), "{:?}", d.log);
    assert_eq!(graph.graph_requests.borrow().len(), 3, "no second Graph walk");
    assert_eq!(graph.grants.borrow().len(), 1);
    // Routes without a group requirement never ask Graph.
    let (other, other_graph) = graph_world(&[]);
    let session = session_cookie(&sign_in(&other, overage()));
    assert!(forwarded(&handle(&other, &request(Method::GET, "/docs", &[("cookie", &session)]))));
    assert!(other_graph.graph_requests.borrow().is_empty());
}

#[test]
fn a_session_with_overage_outside_the_group_is_refused_as_group_missing() {
    let (w, graph) = graph_world(&[]);
    member_of(&graph, OID, &["g1", "g2", "g3"]);
    let session = session_cookie(&sign_in(&w, overage()));
    let d = admin_page(&w, &session);
    assert_eq!(response(&d).status(), 403);
    assert_eq!(d.log.reason, "group_missing");
}

#[test]
fn graph_failures_refuse_with_their_reason_and_hold_for_a_few_seconds_per_user() {
    let (w, graph) = graph_world(&[]);
    member_of(&graph, OID, &[GROUP]);
    let session = session_cookie(&sign_in(&w, overage()));
    *graph.fail_with.borrow_mut() = Some(403);
    let d = admin_page(&w, &session);
    assert_eq!(response(&d).status(), 403);
    assert_eq!(d.log.reason, "groups_overage_unresolved");
    assert!(d.log.detail.as_deref().unwrap().contains("HTTP 403"), "{:?}", d.log.detail);
    let body = String::from_utf8_lossy(response(&d).body()).into_owned();
    assert!(body.contains("Microsoft Graph") && body.contains("app role"), "{body}");
    let asked = || graph.graph_requests.borrow().len();
    assert_eq!(asked(), 1);
    // Throttled or down is the same refusal, for a bearer token (another key: Graph is asked).
    for (status, token) in [(500, json!({})), (429, json!({"oid": "11111111-2222-4333-8444-555555555555"}))] {
        *graph.fail_with.borrow_mut() = Some(status);
        let d = bearer(&w, "/api/team/x", &w.entra.sign("access_token_v2_group_overage", token));
        let got = (response(&d).status().as_u16(), d.log.reason);
        assert_eq!(got, (403, "groups_overage_unresolved"), "Graph {status}");
    }
    assert_eq!(asked(), 3);
    // Graph is back, but this session failed a moment ago: refused without asking, for 10 s.
    *graph.fail_with.borrow_mut() = None;
    assert_eq!(admin_page(&w, &session).log.reason, "groups_overage_unresolved");
    assert_eq!(asked(), 3, "no Graph call while the failure stands");
    w.ports.clock.advance_secs(crate::gateway::groups_overage::RETRY_AFTER_FAILURE_SECS);
    assert!(forwarded(&admin_page(&w, &session)), "then the next request asks again");
    assert_eq!(asked(), 4);
    // No app token at all is the same refusal.
    let (w, graph) = graph_world(&[]);
    *graph.refuse_grant.borrow_mut() = true;
    let d = bearer(&w, "/api/team/x", &w.entra.sign("access_token_v2_group_overage", json!({})));
    assert_eq!((response(&d).status().as_u16(), d.log.reason), (403, "groups_overage_unresolved"));
    assert!(graph.graph_requests.borrow().is_empty());
}

#[test]
fn bearer_overage_is_resolved_per_tenant_and_user_until_the_token_expires() {
    let (w, graph) = graph_world(&[]);
    member_of(&graph, OID, &[GROUP]);
    let hasgroups = w.entra.sign("access_token_v2_delegated", json!({"hasgroups": true}));
    let d = bearer(&w, "/api/team/x", &hasgroups);
    assert!(forwarded(&d), "{:?}", d.log);
    // Another token of the same user within the first one's life: no Graph call.
    let again = w.entra.sign("access_token_v2_group_overage", json!({"uti": "second"}));
    assert!(forwarded(&bearer(&w, "/api/team/x", &again)));
    assert_eq!(graph.graph_requests.borrow().len(), 1);
    // Past the first token's expiry, a new token asks Graph again.
    w.ports.clock.advance_secs(3700);
    let later =
        w.entra.sign("access_token_v2_group_overage", json!({"iat": NOW + 3650, "nbf": NOW + 3650, "exp": NOW + 7200}));
    assert!(forwarded(&bearer(&w, "/api/team/x", &later)));
    assert_eq!(graph.graph_requests.borrow().len(), 2);
    // A non-member with an overage token is refused as such.
    let stranger = "11111111-2222-4333-8444-555555555555";
    member_of(&graph, stranger, &["g9"]);
    let token = w.entra.sign(
        "access_token_v2_group_overage",
        json!({"oid": stranger, "iat": NOW + 3650, "nbf": NOW + 3650, "exp": NOW + 7200}),
    );
    assert_eq!(bearer(&w, "/api/team/x", &token).log.reason, "group_missing");
}

#[test]
fn app_callers_are_looked_up_as_service_principals_and_partners_in_their_tenant() {
    let w = entra_world(
        &[
            ("ENTRA_TENANT", "organizations"),
            ("ENTRA_ALLOWED_TENANTS", &format!("{HOME},{PARTNER}")),
            ("ENTRA_GROUPS_OVERAGE", "graph"),
        ],
        "discovery-v2-organizations.json",
        Some("https://login.microsoftonline.com/{tenantid}/v2.0"),
    );
    let graph = with_graph(&w);
    let app = "a0a0a0a0-0000-4000-8000-000000000001";
    member_of(&graph, app, &[GROUP]);
    let token = w.entra.sign(
        "access_token_v2_app_only",
        json!({"oid": app, "tid": PARTNER, "iss": format!("{H}/{PARTNER}/v2.0"), "hasgroups": true}),
    );
    let d = bearer(&w, "/api/team/x", &token);
    assert!(forwarded(&d), "{:?}", d.log);
    let path = graph.graph_requests.borrow()[0].uri().path().to_owned();
    assert_eq!(path, format!("/v1.0/servicePrincipals/{app}/transitiveMemberOf"));
    assert_eq!(graph.grants.borrow()[0].0, format!("{H}/{PARTNER}/oauth2/v2.0/token"));
}

#[test]
fn the_default_refuse_mode_never_asks_graph() {
    let w = entra_world(&[("ENTRA_TENANT", HOME)], "discovery-v2-tenant.json", None);
    let graph = with_graph(&w);
    member_of(&graph, OID, &[GROUP]);
    let d = bearer(&w, "/api/team/x", &w.entra.sign("access_token_v2_group_overage", json!({})));
    assert_eq!(d.log.reason, "groups_overage");
    assert!(graph.graph_requests.borrow().is_empty() && graph.grants.borrow().is_empty());
}

#[test]
fn another_providers_session_with_overage_is_refused_without_asking_graph() {
    // A partner tenant's Entra registration as a PROVIDERS entry without entra_groups_overage:
    // the default provider's ENTRA_GROUPS_OVERAGE is not its setting, so its callers are never
    // resolved (least of all with the default's app).
    let table = format!(
        r#"[{{"name":"partners","entra_tenant":"{PARTNER}","client_id":"6731de76-14a6-49ae-97bc-6eba6914391e","client_secret_name":"P_SECRET"}}]"#
    );
    let routes = format!(
        r#"[{{"prefix": "/", "auth": "session"}},
            {{"prefix": "/admin/", "auth": "session", "groups": ["{GROUP}"]}},
            {{"prefix": "/p/", "auth": "session", "provider": "partners", "groups": ["{GROUP}"]}}]"#
    );
    let (w, graph) = graph_world(&[("PROVIDERS", &table), ("P_SECRET", "s"), ("ROUTES", &routes)]);
    // The partner tenant's discovery document; everything else as before.
    let partner_doc: Value =
        serde_json::from_str(&serde_json::to_string(&w.entra.discovery).unwrap().replace(HOME, PARTNER)).unwrap();
    let answering = Rc::clone(&graph);
    *w.entra.extra.borrow_mut() = Some(Box::new(move |req| {
        let path = req.uri().path();
        if path == format!("/{PARTNER}/v2.0/.well-known/openid-configuration") {
            return Some(json_response(200, &partner_doc));
        }
        answering.answer(req)
    }));
    member_of(&graph, OID, &[GROUP]);
    let partner_iss = format!("{H}/{PARTNER}/v2.0");
    let d = sign_in_at(&w, "/p/x", json!({"groups": null, "hasgroups": true, "tid": PARTNER, "iss": partner_iss}));
    let cookie = cookie_pairs(response(&d)).into_iter().find(|c| c.starts_with("__Host-edgeguard")).unwrap();
    let d = handle(&w, &request(Method::GET, "/p/x", &[("cookie", &cookie), ("accept", "text/html")]));
    assert_eq!(d.log.reason, "groups_overage", "{:?}", d.log);
    assert!(graph.graph_requests.borrow().is_empty() && graph.grants.borrow().is_empty());
    // The default provider's own session is resolved as before.
    let session = session_cookie(&sign_in(&w, overage()));
    assert!(forwarded(&admin_page(&w, &session)));
}

#[test]
fn a_table_providers_preset_resolves_its_own_sessions_groups() {
    // The Entra preset is the PROVIDERS entry `contoso` beside a plain default provider, and the
    // site is contoso's: overage resolution follows the session's provider, with its app.
    let table = format!(
        r#"[{{"name":"contoso","entra_tenant":"{HOME}","entra_groups_overage":"graph",
              "client_id":"6731de76-14a6-49ae-97bc-6eba6914391e","client_secret_name":"CONTOSO_SECRET"}}]"#
    );
    let routes = format!(
        r#"[{{"prefix": "/", "provider": "contoso"}}, {{"prefix": "/admin/", "provider": "contoso", "groups": ["{GROUP}"]}}]"#
    );
    let settings = [
        ("OIDC_ISSUER", "https://idp.example.com"),
        ("PROVIDERS", table.as_str()),
        ("CONTOSO_SECRET", "contoso-secret"),
        ("ROUTES", routes.as_str()),
    ];
    let w = entra_world(&settings, "discovery-v2-tenant.json", None);
    let graph = with_graph(&w);
    member_of(&graph, OID, &["g1", GROUP]);
    let d = sign_in(&w, overage());
    let session = cookie_pairs(response(&d)).into_iter().find(|c| c.starts_with("__Host-edgeguard-contoso=")).unwrap();
    let d = admin_page(&w, &session);
    assert!(forwarded(&d), "{:?}", d.log);
    assert_eq!(graph.grants.borrow().len(), 1, "one app token, at the user's tenant");
}
