//! The wasm32-only edge layer: workers-rs adapters for the core's ports, and the fetch entry
//! point. No protocol logic lives here.
//!
//! [`handle_fetch`] answers `scripts/worker-entry.mjs` with a *step* (`[0, response]`,
//! `[1, originFetch, ...]`, `[2, promise, id]`, `[3, promise]`); that file's header is the one
//! description of the steps and of why the entry is ours rather than `#[event(fetch)]`.

mod convert;
mod crypto;
mod ports;
mod session_object;
mod trampoline;

use crate::config::bindings::check_bindings;
use crate::config::{Config, ConfigErrors};
use crate::gateway::entry::{self, Next};
use crate::gateway::{CLOSE_SESSION_ENDED, Gateway, IncomingRequest, SocketPlan, origin_failure_decision};
use crate::proxy::header_pairs;
use js_sys::Array;
use ports::EdgePorts;
use std::cell::RefCell;
use std::rc::Rc;
use wasm_bindgen::prelude::*;
use web_sys::{Request, Response};
use worker::Env;

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
    let config = Config::from_settings(|name| setting(env, name));
    Rc::new(check_bindings(config, env).map(Gateway::new))
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

/// One log line per decision, as JSON on stdout (`wrangler tail`, Logpush): one preformatted
/// string, the cheapest thing `console.log` can print.
fn emit(log: &crate::gateway::DecisionLog) {
    web_sys::console::log_1(&JsValue::from_str(&log.to_line()));
}

/// The fetch entry, called by `scripts/worker-entry.mjs` with the runtime's header names (one
/// per line) and the headers' total size. Returns a step (see worker-entry.mjs).
#[wasm_bindgen(js_name = handleFetch)]
pub fn handle_fetch(req: Request, env: JsValue, names: &str, size: usize) -> Result<JsValue, JsValue> {
    let incoming = convert::incoming_request(&req, names, size);
    let env: Env = env.unchecked_into();
    trampoline::drive(Box::pin(decide(req, env, incoming)))
}

async fn decide(req: Request, env: Env, mut incoming: IncomingRequest) -> Result<JsValue, JsValue> {
    let state = state(&env);
    let runtime = convert::Runtime { req: &req, env: &env };
    let next = entry::decide(state.as_ref().as_ref(), &EdgePorts::new(env.clone()), &runtime, &mut incoming).await?;
    let plan = match next {
        Next::Respond { response, ended } => return respond(response, ended),
        Next::Forward(plan) => plan,
    };
    let origin = convert::forward(&req, &env, &plan)?;
    let cookies = js_strings(plan.set_cookies.iter().map(String::as_str).collect());
    // Headers for the answer as one flat [name, value, …] array (step[4]).
    let added = js_strings(plan.answer_headers.iter().flat_map(|(n, v)| [*n, v.as_str()]).collect());
    if let Some(SocketPlan::Proxy(watch)) = &plan.socket {
        // The relay runs in JS on this request's own turn, also when wasm-bindgen-futures polled
        // this far (then the origin fetch was started in whichever turn that was: in the rare
        // case it was another request's, the relay's await fails and the client gets a 502).
        let watch: Array = [
            watch.session.as_deref().map_or(JsValue::NULL, JsValue::from_str),
            watch.tombstone.as_deref().map_or(JsValue::NULL, JsValue::from_str),
            JsValue::from_f64(watch.close_at_ms as f64),
            JsValue::from_f64(watch.revalidate_ms as f64),
            JsValue::from(CLOSE_SESSION_ENDED),
        ]
        .iter()
        .collect();
        return Ok(Array::of5(&1.into(), &origin, &cookies, &watch, &added).into());
    }
    if trampoline::driving() {
        return Ok(Array::of5(&1.into(), &origin, &cookies, &JsValue::UNDEFINED, &added).into());
    }
    // Polled by wasm-bindgen-futures, possibly in another request's turn (a waiter woken by a
    // shared JWKS refetch): workerd ties a promise to the request whose turn created it, so the
    // JS entry of *this* request could not wait on it. Finish here instead.
    let answer = match wasm_bindgen_futures::JsFuture::from(origin).await {
        Ok(response) => {
            let response: Response = response.dyn_into()?;
            let untouched = plan.set_cookies.is_empty() && plan.answer_headers.is_empty();
            match untouched && !response.headers().has("set-cookie")? {
                true => response,
                false => convert::origin_response(&response, &plan.set_cookies, &plan.answer_headers)?,
            }
        }
        Err(error) => origin_failure(&incoming, format!("{error:?}"))?,
    };
    Ok(Array::of2(&0.into(), &answer.into()).into())
}

/// The origin's answer, when it has a `Set-Cookie` or the gateway adds cookies (`set_cookies`,
/// from step 1) or headers (`added`, flat name/value pairs): gateway cookie names dropped from
/// the origin's, `Cache-Control: private` with cookies.
#[wasm_bindgen(js_name = originResponse)]
pub fn origin_response(
    response: Response,
    set_cookies: Option<Vec<String>>,
    added: Option<Vec<String>>,
) -> Result<Response, JsValue> {
    let added = added.unwrap_or_default();
    convert::origin_response(&response, &set_cookies.unwrap_or_default(), &header_pairs(&added))
}

/// Step 0: answer with the gateway's own response, naming the sessions this isolate just
/// ended (their proxied sockets close).
fn respond(response: http::Response<Vec<u8>>, ended: Vec<String>) -> Result<JsValue, JsValue> {
    let response = convert::js_response(response)?.into();
    if ended.is_empty() {
        return Ok(Array::of2(&0.into(), &response).into());
    }
    Ok(Array::of3(&0.into(), &response, &js_strings(ended.iter().map(String::as_str).collect())).into())
}

/// `items` as a JS array, or `undefined` when there are none (the JS entry's cheap test).
fn js_strings(items: Vec<&str>) -> JsValue {
    match items.is_empty() {
        true => JsValue::UNDEFINED,
        false => items.into_iter().map(JsValue::from_str).collect::<Array>().into(),
    }
}

/// The answer when the origin fetch rejected: 502, with a log line saying why.
#[wasm_bindgen(js_name = originFailed)]
pub fn origin_failed(req: Request, names: &str, size: usize, reason: String) -> Result<Response, JsValue> {
    origin_failure(&convert::incoming_request(&req, names, size), reason)
}

fn origin_failure(incoming: &IncomingRequest, reason: String) -> Result<Response, JsValue> {
    let failure = origin_failure_decision(incoming, reason);
    emit(&failure.log);
    convert::js_response(failure.response)
}
