//! The `SessionObject` Durable Object class and the isolates' side of it: with a
//! `SESSION_OBJECTS` namespace bound, every session (by its session hash, `idFromName`) has one
//! object worldwide. Its behaviour is the core's `store::coordinator` (state machine and
//! waiting loop); this file only loads and stores that state and carries calls as JSON.
//!
//! A plain `#[wasm_bindgen]` class rather than workers-rs' `#[durable_object]`: measured, the
//! macro's `Request`/`Response`/`Storage` wrappers (and the exports they pull in) added 36 KiB
//! gzip to the bundle, while the object needs five runtime calls (`storage.get`/`put`/
//! `setAlarm`/`deleteAll`, `request.text`), bound below. `scripts/worker-entry.mjs` exports the
//! class, wrapped so that a wasm instance reset never leaves it pointing at the old instance.

use super::ports::EdgePorts;
use crate::ports::{Clock, KvError, SessionCoordinator};
use crate::store::coordinator::{ObjectAnswer, ObjectCall, ObjectState, serve};
use js_sys::{Promise, Reflect};
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::{JsFuture, future_to_promise};
use web_sys::{Request, RequestInit, Response, ResponseInit};
use worker::Env;

/// The Durable Object namespace binding of the sessions' objects (optional).
pub const SESSION_OBJECTS_BINDING: &str = "SESSION_OBJECTS";
/// The one storage key of an object: its whole state, as JSON.
const STATE_KEY: &str = "state";

#[wasm_bindgen]
extern "C" {
    /// The `state` a Durable Object class is constructed with.
    pub type DurableObjectState;
    #[wasm_bindgen(method, getter)]
    fn storage(this: &DurableObjectState) -> Storage;

    /// `state.storage` (the object's own transactional storage).
    type Storage;
    #[wasm_bindgen(method, catch, js_name = get)]
    fn get_key(this: &Storage, key: &str) -> Result<Promise, JsValue>;
    #[wasm_bindgen(method, catch, js_name = put)]
    fn put_key(this: &Storage, key: &str, value: &str) -> Result<Promise, JsValue>;
    #[wasm_bindgen(method, catch, js_name = setAlarm)]
    fn set_alarm(this: &Storage, at_millis: f64) -> Result<Promise, JsValue>;
    #[wasm_bindgen(method, catch, js_name = deleteAll)]
    fn delete_all(this: &Storage) -> Result<Promise, JsValue>;

    /// A Durable Object namespace binding.
    type Namespace;
    #[wasm_bindgen(method, catch, js_name = idFromName)]
    fn id_from_name(this: &Namespace, name: &str) -> Result<JsValue, JsValue>;
    #[wasm_bindgen(method, catch, js_name = get)]
    fn stub(this: &Namespace, id: &JsValue) -> Result<Stub, JsValue>;

    /// A stub of one object.
    type Stub;
    #[wasm_bindgen(method, catch, js_name = fetch)]
    fn stub_fetch(this: &Stub, url: &str, init: &RequestInit) -> Result<Promise, JsValue>;
}

struct Object {
    storage: Storage,
    ports: EdgePorts,
    session: RefCell<ObjectState>,
    loaded: Cell<bool>,
}

/// One session's object (exported to JS; `scripts/worker-entry.mjs` wraps it).
#[wasm_bindgen]
pub struct SessionObject(Rc<Object>);

#[wasm_bindgen]
impl SessionObject {
    #[wasm_bindgen(constructor)]
    pub fn new(state: DurableObjectState, env: JsValue) -> SessionObject {
        let ports = EdgePorts::new(env.unchecked_into::<Env>());
        SessionObject(Rc::new(Object {
            storage: state.storage(),
            ports,
            session: RefCell::default(),
            loaded: Cell::new(false),
        }))
    }

    /// One call (JSON `ObjectCall`) in, one answer (JSON `ObjectAnswer`) out.
    pub fn fetch(&self, request: Request) -> Promise {
        let object = Rc::clone(&self.0);
        future_to_promise(async move { object.answer(request).await.map(JsValue::from) })
    }

    /// The session's possible lifetime is over: forget it.
    pub fn alarm(&self) -> Promise {
        let object = Rc::clone(&self.0);
        future_to_promise(async move { object.expire().await.map(|()| JsValue::UNDEFINED) })
    }
}

impl Object {
    /// The state is stored before the answer leaves whenever the call changed it.
    async fn answer(&self, request: Request) -> Result<Response, JsValue> {
        let body = JsFuture::from(request.text()?).await?.as_string().unwrap_or_default();
        let Ok(call) = crate::json::decode::<ObjectCall>(body.as_bytes()) else {
            return respond(400, "not a session object call");
        };
        self.load().await?;
        let (answer, changed) = serve(&self.session, &call, &self.ports, &self.ports).await;
        if changed {
            self.store().await?;
        }
        respond(200, &serde_json::to_string(&answer).map_err(|e| JsValue::from_str(&e.to_string()))?)
    }

    async fn expire(&self) -> Result<(), JsValue> {
        self.load().await?;
        let keep_until_ms = self.session.borrow().keep_until_ms;
        if keep_until_ms > self.ports.now_millis() {
            JsFuture::from(self.storage.set_alarm(keep_until_ms as f64)?).await?;
        } else {
            JsFuture::from(self.storage.delete_all()?).await?;
            *self.session.borrow_mut() = ObjectState::default();
        }
        Ok(())
    }

    /// Read the stored state once per instance. The runtime's input gate holds other calls
    /// while storage is read; a call that finds it loaded meanwhile keeps what is there.
    async fn load(&self) -> Result<(), JsValue> {
        if self.loaded.get() {
            return Ok(());
        }
        let stored = JsFuture::from(self.storage.get_key(STATE_KEY)?).await?;
        if !self.loaded.replace(true) {
            let state =
                stored.as_string().and_then(|json| crate::json::decode(json.as_bytes()).ok()).unwrap_or_default();
            *self.session.borrow_mut() = state;
        }
        Ok(())
    }

    /// Store the state and schedule its deletion at the end of the session's possible lifetime.
    async fn store(&self) -> Result<(), JsValue> {
        let (json, keep_until_ms) = {
            let session = self.session.borrow();
            (serde_json::to_string(&*session).unwrap_or_default(), session.keep_until_ms)
        };
        JsFuture::from(self.storage.put_key(STATE_KEY, &json)?).await?;
        if keep_until_ms > 0 {
            JsFuture::from(self.storage.set_alarm(keep_until_ms as f64)?).await?;
        }
        Ok(())
    }
}

fn respond(status: u16, body: &str) -> Result<Response, JsValue> {
    let init = ResponseInit::new();
    init.set_status(status);
    Response::new_with_opt_str_and_init(Some(body), &init)
}

fn store_error(e: JsValue) -> KvError {
    KvError(format!("session object: {}", e.as_string().unwrap_or_else(|| format!("{e:?}"))))
}

/// The `SESSION_OBJECTS` namespace of `env`, when bound.
pub fn namespace(env: &Env) -> Option<JsValue> {
    let binding = Reflect::get(env.as_ref(), &JsValue::from_str(SESSION_OBJECTS_BINDING)).ok()?;
    let id_from_name = Reflect::get(&binding, &JsValue::from_str("idFromName")).ok()?;
    id_from_name.is_function().then_some(binding)
}

impl SessionCoordinator for EdgePorts {
    async fn ask_session_object(&self, session_hash: &str, call: &ObjectCall) -> Result<Option<ObjectAnswer>, KvError> {
        let Some(namespace) = self.session_objects() else {
            return Ok(None);
        };
        let namespace: &Namespace = namespace.unchecked_ref();
        let id = namespace.id_from_name(session_hash).map_err(store_error)?;
        let stub = namespace.stub(&id).map_err(store_error)?;
        let body = serde_json::to_string(call).map_err(|e| KvError(e.to_string()))?;
        let init = RequestInit::new();
        init.set_method("POST");
        init.set_body(&JsValue::from_str(&body));
        let answer = JsFuture::from(stub.stub_fetch("https://session-object/", &init).map_err(store_error)?);
        let response: Response = answer.await.and_then(|r| r.dyn_into()).map_err(store_error)?;
        if response.status() != 200 {
            return Err(KvError(format!("session object: answered {}", response.status())));
        }
        let text = JsFuture::from(response.text().map_err(store_error)?).await.map_err(store_error)?;
        let answer = crate::json::decode(text.as_string().unwrap_or_default().as_bytes());
        answer.map(Some).map_err(|e| KvError(format!("session object: {e}")))
    }
}
