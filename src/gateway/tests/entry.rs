//! The Worker's way through the gateway (`gateway::entry`): rate limits before and after
//! authentication, the form body, the configuration error page, and which lines are logged.

use super::*;
use crate::gateway::entry::{Next, RequestRuntime, decide};
use std::cell::{Cell, RefCell};

/// The request's runtime: a client at 203.0.113.5, rate-limiting bindings that refuse when
/// named in `over`, a form body, and what was asked and logged.
#[derive(Default)]
struct Runtime {
    over: Vec<&'static str>,
    asked: RefCell<Vec<(String, String)>>,
    form_reads: Cell<usize>,
    logged: RefCell<Vec<(&'static str, Option<u16>)>>,
}

impl RequestRuntime for Runtime {
    type Error = ();

    fn client_ip(&self) -> Option<String> {
        Some("203.0.113.5".into())
    }

    async fn within_limit(&self, binding: &str, key: &str) -> bool {
        self.asked.borrow_mut().push((binding.into(), key.into()));
        !self.over.contains(&binding)
    }

    async fn read_form(&self) -> Result<Option<Vec<u8>>, ()> {
        self.form_reads.set(self.form_reads.get() + 1);
        Ok(Some(b"logout_token=x".to_vec()))
    }

    fn emit(&self, log: &DecisionLog) {
        self.logged.borrow_mut().push((log.reason, log.status));
    }
}

fn over(bindings: &[&'static str]) -> Runtime {
    Runtime { over: bindings.to_vec(), ..Runtime::default() }
}

fn run(w: &World, runtime: &Runtime, mut req: IncomingRequest) -> Next {
    block_on(decide(Ok(&w.gateway), &w.ports, runtime, &mut req)).unwrap()
}

fn status(next: &Next) -> u16 {
    match next {
        Next::Respond { response, .. } => response.status().as_u16(),
        Next::Forward(plan) => panic!("expected an answer, got a forward to {}", plan.url),
    }
}

#[test]
fn a_gateway_endpoint_over_its_limit_gets_429_before_the_gateway_runs() {
    let w = world();
    let runtime = over(&["AUTH_RATE_LIMIT"]);
    let next = run(&w, &runtime, navigate("/auth/%6Cogin?rd=/", ""));
    assert_eq!(status(&next), 429);
    assert_eq!(*runtime.asked.borrow(), [("AUTH_RATE_LIMIT".to_string(), "203.0.113.5".to_string())]);
    assert_eq!(*runtime.logged.borrow(), [("rate_limited", Some(429))]);
    assert!(w.ports.http.sent.borrow().is_empty(), "the provider was never asked");
    let free = Runtime::default();
    assert_eq!(status(&run(&w, &free, navigate("/auth/login?rd=/", ""))), 302, "under the limit: sign-in starts");
    assert_eq!(status(&run(&w, &free, navigate("/docs", ""))), 302, "other paths ask no counter");
    assert_eq!(free.asked.borrow().len(), 1);
}

#[test]
fn a_route_limit_counts_the_signed_in_caller_and_refuses_before_the_origin() {
    let mut w = world();
    w.gateway = Gateway::new(config(&[(
        "ROUTES",
        r#"[{"prefix": "/", "auth": "session", "rate_limit": {"binding": "USER_LIMIT", "key": "sub"}}]"#,
    )]));
    let session = sign_in(&w, "/");
    let limited = over(&["USER_LIMIT"]);
    assert_eq!(status(&run(&w, &limited, navigate("/docs", &session))), 429);
    assert_eq!(*limited.asked.borrow(), [("USER_LIMIT".to_string(), "sub:alice".to_string())]);
    assert_eq!(*limited.logged.borrow(), [("rate_limited", Some(429))], "no forward line for a refused request");
    let free = Runtime::default();
    let Next::Forward(plan) = run(&w, &free, navigate("/docs", &session)) else { panic!("under the limit: forwarded") };
    assert_eq!(plan.url, "https://origin.internal/docs");
    assert_eq!(free.logged.borrow().len(), 1, "the forward is logged once");
}

#[test]
fn the_form_is_read_only_for_a_form_endpoint_that_does_not_declare_too_much() {
    let w = world();
    let runtime = Runtime::default();
    run(&w, &runtime, request(Method::POST, "/auth/backchannel-logout", &[("content-length", "14")]));
    assert_eq!(runtime.form_reads.get(), 1);
    let huge = (MAX_FORM_BYTES + 1).to_string();
    let next = run(&w, &runtime, request(Method::POST, "/auth/backchannel-logout", &[("content-length", &huge)]));
    assert_eq!(status(&next), 413);
    run(&w, &runtime, request(Method::POST, "/docs", &[("content-length", "14")]));
    assert_eq!(runtime.form_reads.get(), 1, "neither a declared oversized form nor another path is read");
}

#[test]
fn a_misconfigured_gateway_answers_500_naming_the_settings_and_logs_it() {
    let w = world();
    let errors = Config::from_settings(|name| (name == "OIDC_ISSUER").then(|| ISSUER.to_owned())).unwrap_err();
    let runtime = Runtime::default();
    let next = block_on(decide::<TestPorts, _>(Err(&errors), &w.ports, &runtime, &mut navigate("/", ""))).unwrap();
    let Next::Respond { response, ended } = next else { panic!("never forwarded") };
    assert_eq!(response.status(), 500);
    assert!(String::from_utf8_lossy(response.body()).contains("OIDC_CLIENT_ID"));
    assert!(ended.is_empty());
    assert_eq!(runtime.logged.borrow()[0].1, Some(500));
}

#[test]
fn a_logout_answer_names_the_session_it_ended_once() {
    let w = world();
    let session = sign_in(&w, "/");
    let post = request(Method::POST, "/auth/logout", &[("cookie", &session), ("origin", "https://gw.example.com")]);
    let Next::Respond { response, ended } = run(&w, &Runtime::default(), post) else { panic!("answered") };
    assert_eq!(response.status(), 200);
    assert_eq!(ended.len(), 1, "the relay closes this session's sockets");
    let Next::Respond { ended, .. } = run(&w, &Runtime::default(), navigate("/docs", "")) else { panic!() };
    assert!(ended.is_empty(), "handed over once");
}
