//! Graph membership paging against a scripted Graph.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use super::*;
use crate::testkit::{FakeHttp, block_on, json_response};
use serde_json::json;

const GRAPH: &str = "https://graph.microsoft.com";
const OID: &str = "00000000-0000-0000-66f3-3332eca7ea81";

fn group(id: &str) -> serde_json::Value {
    json!({"@odata.type": "#microsoft.graph.group", "id": id})
}

/// A Graph whose answer to the n-th page request is `pages[n]`.
fn graph(pages: Vec<serde_json::Value>) -> FakeHttp {
    let served = std::cell::Cell::new(0usize);
    FakeHttp::new(move |_| {
        let n = served.get();
        served.set(n + 1);
        Ok(json_response(200, &pages[n.min(pages.len() - 1)]))
    })
}

fn list(http: &FakeHttp) -> Result<MemberGroups, GraphError> {
    block_on(list_member_groups(http, GRAPH, CallerKind::User, OID, "app-token"))
}

#[test]
fn pages_are_followed_and_only_groups_kept() {
    let next = format!("{GRAPH}/v1.0/users/{OID}/transitiveMemberOf?$select=id&$top=999&$skiptoken=X");
    let http = graph(vec![
        json!({"value": [group("g1"), {"@odata.type": "#microsoft.graph.directoryRole", "id": "role1"}],
               "@odata.nextLink": next}),
        json!({"value": [group("g2"), {"@odata.type": "#microsoft.graph.administrativeUnit", "id": "au1"}]}),
    ]);
    assert_eq!(list(&http).unwrap(), MemberGroups { ids: vec!["g1".into(), "g2".into()], complete: true });
    let sent = http.sent.borrow();
    assert_eq!(sent.len(), 2);
    assert_eq!(sent[0].uri().to_string(), format!("{GRAPH}/v1.0/users/{OID}/transitiveMemberOf?$select=id&$top=999"));
    assert_eq!(sent[0].headers()["authorization"], "Bearer app-token");
    assert_eq!(sent[1].uri().to_string(), next);
}

#[test]
fn the_page_cap_ends_the_walk_as_incomplete() {
    let endless = json!({"value": [group("g")], "@odata.nextLink": format!("{GRAPH}/v1.0/next")});
    let http = graph(vec![endless]);
    let groups = list(&http).unwrap();
    assert!(!groups.complete);
    assert_eq!(http.sent.borrow().len(), MAX_PAGES);
}

#[test]
fn a_next_link_off_graph_never_gets_the_token() {
    for foreign in ["https://graph.microsoft.com.evil.example/v1.0/x", "http://graph.microsoft.com/v1.0/x", "/v1.0/x"] {
        let http = graph(vec![json!({"value": [], "@odata.nextLink": foreign})]);
        assert_eq!(list(&http), Err(GraphError::ForeignNextLink), "{foreign}");
        assert_eq!(http.sent.borrow().len(), 1);
    }
}

#[test]
fn errors_and_bad_answers_are_named() {
    let forbidden =
        FakeHttp::new(|_| Ok(json_response(403, &json!({"error": {"code": "Authorization_RequestDenied"}}))));
    assert_eq!(list(&forbidden), Err(GraphError::Status(403)));
    let junk = FakeHttp::new(|_| Ok(json_response(200, &json!({"items": []}))));
    assert_eq!(list(&junk), Err(GraphError::Malformed));
    let down = FakeHttp::new(|_| Err(crate::ports::HttpError::Timeout));
    assert!(matches!(list(&down), Err(GraphError::Unreachable(_))));
    // An oid that is not a GUID never becomes part of a Graph path.
    let http = graph(vec![json!({"value": []})]);
    let odd = block_on(list_member_groups(&http, GRAPH, CallerKind::User, "../me", "t"));
    assert_eq!(odd, Err(GraphError::NoObjectId));
    assert!(http.sent.borrow().is_empty());
}

#[test]
fn apps_are_looked_up_as_service_principals() {
    let url = first_page_url(GRAPH, CallerKind::App, OID).unwrap();
    assert!(url.starts_with(&format!("{GRAPH}/v1.0/servicePrincipals/{OID}/transitiveMemberOf?")), "{url}");
}

#[test]
fn member_groups_round_trip_through_their_stored_line() {
    for groups in [
        MemberGroups { ids: vec!["a".into(), "b".into()], complete: true },
        MemberGroups { ids: vec![], complete: false },
    ] {
        assert_eq!(MemberGroups::decode(&groups.encode()), Some(groups));
    }
    assert_eq!(MemberGroups::decode("2 a"), None);
    assert_eq!(MemberGroups::decode(""), None);
}

#[test]
fn each_cloud_has_its_graph() {
    let cases = [
        ("https://login.microsoftonline.com", Some("https://graph.microsoft.com")),
        ("https://login.microsoftonline.us", Some("https://graph.microsoft.us")),
        ("https://login.chinacloudapi.cn", Some("https://microsoftgraph.chinacloudapi.cn")),
        ("https://login.partner.microsoftonline.cn", Some("https://microsoftgraph.chinacloudapi.cn")),
        ("http://localhost:8080", None),
    ];
    for (authority, graph) in cases {
        assert_eq!(default_graph_url(authority), graph, "{authority}");
    }
}
