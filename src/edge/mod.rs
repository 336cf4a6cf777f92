//! The wasm32-only edge layer: workers-rs adapters for the core's ports, and the fetch entry
//! point. No protocol logic lives here.

mod convert;
mod crypto;
mod ports;

use crate::config::{Config, ConfigErrors, SettingError};
use crate::gateway::{Gateway, Outcome, config_error_decision, origin_failure_decision};
use ports::EdgePorts;
use std::cell::RefCell;
use std::rc::Rc;
use wasm_bindgen::JsValue;
use worker::{Context, Env, Result, event};

/// The KV namespace binding that holds session records.
pub const SESSIONS_BINDING: &str = "SESSIONS";

type State = Rc<std::result::Result<Gateway<EdgePorts>, ConfigErrors>>;

thread_local! {
    /// Built on the isolate's first request and kept: the config, provider metadata, imported
    /// keys and warm sessions all live here.
    static STATE: RefCell<Option<State>> = const { RefCell::new(None) };
}

/// A setting as text. Vars and secrets are strings; a structured var (wrangler.toml's
/// `ROUTES = [ {...} ]`) arrives as a JS value and is turned back into JSON.
fn setting(env: &Env, name: &str) -> Option<String> {
    let value = js_sys::Reflect::get(env.as_ref(), &wasm_bindgen::JsValue::from_str(name)).ok()?;
    if value.is_undefined() || value.is_null() {
        return None;
    }
    match value.as_string() {
        Some(text) => Some(text),
        None => js_sys::JSON::stringify(&value).ok().and_then(|s| s.as_string()),
    }
}

fn build_state(env: &Env) -> State {
    let mut result = Config::from_settings(|name| setting(env, name)).map(Gateway::new);
    if env.kv(SESSIONS_BINDING).is_err() {
        let missing = SettingError {
            setting: "SESSIONS",
            problem: "the KV namespace binding is missing".into(),
            fix: "add [[kv_namespaces]] binding = \"SESSIONS\" to wrangler.toml (see README)",
        };
        result = match result {
            Ok(_) => Err(ConfigErrors(vec![missing])),
            Err(ConfigErrors(mut errors)) => {
                errors.push(missing);
                Err(ConfigErrors(errors))
            }
        };
    }
    Rc::new(result)
}

fn state(env: &Env) -> State {
    STATE.with(|cell| {
        let mut slot = cell.borrow_mut();
        match slot.as_ref() {
            Some(state) => Rc::clone(state),
            None => {
                let state = build_state(env);
                *slot = Some(Rc::clone(&state));
                state
            }
        }
    })
}

/// One log line per decision, as JSON on stdout (`wrangler tail`, Logpush).
fn emit(log: &crate::gateway::DecisionLog) {
    web_sys::console::log_1(&JsValue::from_str(&serde_json::to_string(log).unwrap_or_default()));
}

#[event(fetch)]
async fn fetch(req: web_sys::Request, env: Env, _ctx: Context) -> Result<web_sys::Response> {
    let incoming = convert::incoming_request(&req).await.map_err(js_error)?;
    let state = state(&env);
    let decision = match state.as_ref() {
        Ok(gateway) => {
            let ports = EdgePorts::new(env.clone());
            gateway.handle(&ports, &incoming).await
        }
        Err(errors) => config_error_decision(errors, &incoming),
    };
    if decision.should_log() {
        emit(&decision.log);
    }
    let response = match decision.outcome {
        Outcome::Respond(response) => convert::js_response(response),
        Outcome::Forward(plan) => match convert::forward(&req, plan).await {
            Ok(response) => Ok(response),
            Err(err) => {
                let failure = origin_failure_decision(&incoming, format!("{err:?}"));
                emit(&failure.log);
                match failure.outcome {
                    Outcome::Respond(response) => convert::js_response(response),
                    Outcome::Forward(_) => Err(err),
                }
            }
        },
    };
    response.map_err(js_error)
}

fn js_error(e: JsValue) -> worker::Error {
    worker::Error::JsError(e.as_string().unwrap_or_else(|| format!("{e:?}")))
}
