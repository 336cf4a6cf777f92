//! Path confusion: the route is chosen on the canonical path and the origin receives exactly
//! that path; paths that origins read differently never reach one (issue 9, item 1 and 13).

use super::*;

const ROUTES: &str = r#"[
    {"prefix": "/", "auth": "session"},
    {"prefix": "/public/", "auth": "public"},
    {"prefix": "/api/admin/", "auth": "bearer", "roles": ["Admin"]}
]"#;

fn routed_world() -> World {
    let mut w = world();
    w.gateway = Gateway::new(config(&[("ROUTES", ROUTES), ("API_AUDIENCES", "https://api.example.test")]));
    w
}

#[test]
fn paths_origins_read_differently_are_refused_before_any_route() {
    let w = routed_world();
    for (path, reason) in [
        ("/public/..;/admin/users", "path_parameter"),
        ("/public/x;jsessionid=1", "path_parameter"),
        ("/api/admin;x/users", "path_parameter"),
        ("/public/%2e%2e/admin", "path_dot_segment"),
        ("/public//admin", "path_empty_segment"),
        ("/public/%2fadmin", "path_not_canonical"),
        ("/API/admin/users", "path_case_ambiguous"),
        ("/Public/x", "path_case_ambiguous"),
    ] {
        let d = block_on(w.gateway.handle(&w.ports, &request(Method::GET, path, &[("accept", "*/*")])));
        let r = response(&d);
        assert_eq!(r.status(), 400, "{path}");
        assert_eq!(d.log.reason, reason, "{path}");
    }
}

#[test]
fn the_origin_receives_the_path_that_was_matched() {
    let w = routed_world();
    let d = block_on(w.gateway.handle(&w.ports, &request(Method::GET, "/%70ublic/a%7eb?q=%2F", &[])));
    let Outcome::Forward(plan) = &d.outcome else { panic!("not forwarded: {:?}", d.log) };
    assert_eq!(plan.url, "https://origin.internal/public/a~b?q=%2F", "query untouched");
    assert_eq!(d.log.reason, "public_forwarded");
}

#[test]
fn gateway_endpoints_are_found_by_their_canonical_path() {
    let w = routed_world();
    let d = block_on(w.gateway.handle(&w.ports, &request(Method::GET, "/auth/%68ealth", &[])));
    assert_eq!(response(&d).status(), 200);
    assert_eq!(d.log.reason, "health");
}

#[test]
fn api_path_prefixes_match_canonical_segments() {
    let w = world();
    let nav = |path: &str| block_on(w.gateway.handle(&w.ports, &navigate(path, ""))).log.reason;
    assert_eq!(nav("/%61pi/items"), "session_missing", "an escaped API path is still an API path: 401");
    assert_eq!(nav("/API/items"), "session_missing", "letter case does not make an API path a page");
    assert_eq!(nav("/apix"), "login_redirect", "/api/ is a segment prefix, not a string prefix");
}
