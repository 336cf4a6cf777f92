//! The `SessionObject` Durable Object class and the isolates' side of it: with a
//! `SESSION_OBJECTS` namespace bound, every session (by its session hash, `idFromName`) has one
//! object worldwide. Its behaviour is the core's (`store::coordinator`: state machine and waiting
//! loop; `store::session_object`: loading, storing, the alarm); this file binds the runtime's
//! storage and carries calls and answers.
//!
//! A plain `#[wasm_bindgen]` class rather than workers-rs' `#[durable_object]`: measured, the
//! macro's `Request`/`Response`/`Storage` wrappers (and the exports they pull in) added 36 KiB
//! gzip to the bundle, while the object needs five runtime calls (`storage.get`/`put`/
//! `setAlarm`/`deleteAll`, `request.text`), bound below. `scripts/worker-entry.mjs` exports the
//! class, wrapped so that a wasm instance reset never leaves it pointing at the old instance.

use super::ports::EdgePorts;
use crate::ports::{KvError, SessionCoordinator};
use crate::store::coordinator::{ObjectAnswer, ObjectCall};
use crate::store::session_object::{ObjectInstance, ObjectStorage, read_reply};
use js_sys::{Promise, Reflect};
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
    fn set_alarm_at(this: &Storage, at_millis: f64) -> Result<Promise, JsValue>;
    #[wasm_bindgen(method, catch, js_name = deleteAll)]
    fn delete_everything(this: &Storage) -> Result<Promise, JsValue>;

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

impl ObjectStorage for Storage {
    type Error = JsValue;

    async fn load_state(&self) -> Result<Option<String>, JsValue> {
        Ok(JsFuture::from(self.get_key(STATE_KEY)?).await?.as_string())
    }

    async fn store_state(&self, json: &str) -> Result<(), JsValue> {
        JsFuture::from(self.put_key(STATE_KEY, json)?).await.map(drop)
    }

    async fn set_alarm(&self, at_ms: u64) -> Result<(), JsValue> {
        JsFuture::from(self.set_alarm_at(at_ms as f64)?).await.map(drop)
    }

    async fn delete_all(&self) -> Result<(), JsValue> {
        JsFuture::from(self.delete_everything()?).await.map(drop)
    }
}

struct Object {
    instance: ObjectInstance<Storage>,
    ports: EdgePorts,
}

/// One session's object (exported to JS; `scripts/worker-entry.mjs` wraps it).
#[wasm_bindgen]
pub struct SessionObject(Rc<Object>);

#[wasm_bindgen]
impl SessionObject {
    #[wasm_bindgen(constructor)]
    pub fn new(state: DurableObjectState, env: JsValue) -> SessionObject {
        let ports = EdgePorts::new(env.unchecked_into::<Env>());
        SessionObject(Rc::new(Object { instance: ObjectInstance::new(state.storage()), ports }))
    }

    /// One call (JSON `ObjectCall`) in, one answer (JSON `ObjectAnswer`) out.
    pub fn fetch(&self, request: Request) -> Promise {
        let object = Rc::clone(&self.0);
        future_to_promise(async move {
            let body = JsFuture::from(request.text()?).await?.as_string().unwrap_or_default();
            let reply = object.instance.answer(body.as_bytes(), &object.ports, &object.ports).await?;
            let init = ResponseInit::new();
            init.set_status(reply.status);
            Response::new_with_opt_str_and_init(Some(&reply.body), &init).map(JsValue::from)
        })
    }

    /// The session's possible lifetime may be over: forget it (see `ObjectInstance::alarm`).
    pub fn alarm(&self) -> Promise {
        let object = Rc::clone(&self.0);
        future_to_promise(async move { object.instance.alarm(&object.ports).await.map(|()| JsValue::UNDEFINED) })
    }
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
        let text = JsFuture::from(response.text().map_err(store_error)?).await.map_err(store_error)?;
        read_reply(response.status(), &text.as_string().unwrap_or_default()).map(Some)
    }
}
