//! Origins that are Worker bindings (issue 11, item 1): the plan names the binding, and the
//! request carries exactly what an HTTP origin would get.

use super::bearer::call;
use super::*;
use crate::config::bindings::{WorkerBindings, check_bindings};

const ROUTES: &str = r#"[
    {"prefix": "/", "auth": "session", "origin": "binding:ASSETS"},
    {"prefix": "/api/", "auth": "session"},
    {"prefix": "/internal/", "auth": "session", "origin": "binding:INTERNAL_API"}
]"#;

fn bound_world() -> World {
    let mut w = world();
    w.gateway = Gateway::new(config(&[("ROUTES", ROUTES)]));
    w
}

fn plan_for(w: &World, req: &IncomingRequest) -> (Option<String>, String, http::HeaderMap) {
    let d = block_on(w.gateway.handle(&w.ports, req));
    let Outcome::Forward(plan) = &d.outcome else { panic!("not forwarded: {:?}", d.log) };
    (plan.binding.clone(), plan.url.clone(), plan.headers.apply(&req.headers))
}

#[test]
fn a_binding_route_forwards_to_the_binding_with_the_same_credentials_as_http() {
    let w = bound_world();
    let session = sign_in(&w, "/index.html");
    let spoofed = [("cookie", session.as_str()), ("x-forwarded-user", "mallory"), ("x-forwarded-email", "m@evil")];

    let (binding, url, sent) = plan_for(&w, &request(Method::GET, "/internal/orders?id=1", &spoofed));
    assert_eq!(binding.as_deref(), Some("INTERNAL_API"));
    assert_eq!(url, "https://gw.example.com/internal/orders?id=1", "the binding sees the public URL");
    let (http_binding, http_url, http_sent) = plan_for(&w, &request(Method::GET, "/api/orders?id=1", &spoofed));
    assert_eq!((http_binding, http_url.as_str()), (None, "https://origin.internal/api/orders?id=1"));

    for sent in [&sent, &http_sent] {
        assert_eq!(sent["authorization"], "Bearer access-token-1");
        assert_eq!(sent.get_all("x-forwarded-user").iter().collect::<Vec<_>>(), vec!["alice"]);
        assert_eq!(sent["x-forwarded-email"], "alice@example.com");
        assert!(sent.get("cookie").is_none(), "the session cookie never reaches an origin");
    }
    let (assets, _, _) = plan_for(&w, &request(Method::GET, "/index.html", &[("cookie", &session)]));
    assert_eq!(assets.as_deref(), Some("ASSETS"));
}

#[test]
fn a_binding_route_without_a_session_never_reaches_the_binding() {
    let w = bound_world();
    let d = block_on(w.gateway.handle(&w.ports, &navigate("/index.html", "")));
    assert_eq!(response(&d).status(), 302);
    let d = call(&w, Method::GET, "/index.html", &[]);
    assert_eq!(response(&d).status(), 401, "a fetch() without a session");
}

#[test]
fn the_bindings_routes_need_are_listed_once_for_the_start_up_check() {
    let table = config(&[("ROUTES", ROUTES)]).routes;
    assert_eq!(table.bindings(), vec!["ASSETS", "INTERNAL_API"]);
    let bad = Config::from_settings(|name| match name {
        "ROUTES" => Some(r#"[{"prefix": "/", "origin": "binding:not-a-name"}]"#.into()),
        "OIDC_ISSUER" => Some(ISSUER.into()),
        "OIDC_CLIENT_ID" | "OIDC_CLIENT_SECRET" => Some("x".into()),
        "PUBLIC_URL" => Some("https://gw.example.com".into()),
        "SESSION_SECRET" => Some("0123456789abcdef0123456789abcdef".into()),
        _ => None,
    })
    .unwrap_err();
    assert_eq!(bad.0.len(), 1);
    assert_eq!(bad.0[0].setting, "ROUTES");
    assert!(bad.0[0].problem.contains("not-a-name"), "{}", bad.0[0].problem);
}

/// An environment with the bindings listed (by name), of any kind.
struct Env(&'static [&'static str]);

impl WorkerBindings for Env {
    fn has_kv(&self, name: &str) -> bool {
        self.0.contains(&name)
    }
    fn has_fetch(&self, name: &str) -> bool {
        self.0.contains(&name)
    }
    fn has_rate_limit(&self, name: &str) -> bool {
        self.0.contains(&name)
    }
}

const LIMITED: &str = r#"[
    {"prefix": "/", "auth": "session", "origin": "binding:ASSETS", "rate_limit": {"binding": "USER_LIMIT", "key": "sub"}}
]"#;

#[test]
fn start_up_names_every_binding_the_worker_lacks_with_its_fix() {
    let ok = check_bindings(Ok(config(&[("ROUTES", LIMITED)])), &Env(&["SESSIONS", "ASSETS", "USER_LIMIT"]));
    assert!(ok.is_ok(), "every binding present: {ok:?}");
    let errors = check_bindings(Ok(config(&[("ROUTES", LIMITED)])), &Env(&[])).unwrap_err();
    let found: Vec<_> = errors.0.iter().map(|e| (e.setting, e.problem.as_str())).collect();
    assert_eq!(
        found,
        [
            ("SESSIONS", "the KV namespace binding is missing"),
            ("ROUTES", "a route's origin is binding:ASSETS, but the Worker has no binding ASSETS with fetch"),
            (
                "ROUTES",
                "a route's rate_limit names binding USER_LIMIT, but the Worker has no rate-limiting binding USER_LIMIT"
            ),
        ]
    );
    assert!(errors.0.iter().all(|e| e.fix.contains("wrangler.toml")));
}

#[test]
fn a_missing_kv_binding_is_reported_beside_the_setting_errors() {
    let bad = Config::from_settings(|name| (name == "OIDC_ISSUER").then(|| ISSUER.to_owned()));
    let settings = bad.clone().unwrap_err().0.len();
    let errors = check_bindings(bad, &Env(&[])).unwrap_err();
    assert_eq!(errors.0.len(), settings + 1);
    assert_eq!(errors.0.last().map(|e| e.setting), Some("SESSIONS"));
}
