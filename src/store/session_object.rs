//! One instance of a session's Durable Object: its state loaded once from the object's own
//! storage, each call served by [`serve`] and stored before the answer leaves whenever it
//! changed the state, and the alarm that forgets the state when the session's possible
//! lifetime is over.
//!
//! The runtime's part (`src/edge/session_object.rs`) is the [`ObjectStorage`] calls and the
//! class the Worker exports; everything decided between them is here, tested on the host.

use super::coordinator::{ObjectAnswer, ObjectCall, ObjectState, serve};
use crate::ports::{Clock, KvError, Rng};
use std::cell::{Cell, RefCell};

/// A Durable Object's transactional storage, as the session object uses it: one value (the
/// whole state, as JSON) and one alarm.
#[allow(async_fn_in_trait)] // Worker futures are not Send (see ports.rs)
pub trait ObjectStorage {
    type Error;
    /// The stored state, if any.
    async fn load_state(&self) -> Result<Option<String>, Self::Error>;
    async fn store_state(&self, json: &str) -> Result<(), Self::Error>;
    /// Call the object's `alarm` at `at_ms` (Unix milliseconds).
    async fn set_alarm(&self, at_ms: u64) -> Result<(), Self::Error>;
    /// Forget everything stored.
    async fn delete_all(&self) -> Result<(), Self::Error>;
}

/// The object's answer to one call: an HTTP status and a JSON body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectReply {
    pub status: u16,
    pub body: String,
}

/// One instance of a session's object.
pub struct ObjectInstance<S> {
    storage: S,
    state: RefCell<ObjectState>,
    loaded: Cell<bool>,
}

impl<S: ObjectStorage> ObjectInstance<S> {
    pub fn new(storage: S) -> Self {
        Self { storage, state: RefCell::default(), loaded: Cell::new(false) }
    }

    /// One call (`body`, a JSON [`ObjectCall`]) in, one answer out: `200` with a JSON
    /// [`ObjectAnswer`], `400` when the body is not a call.
    pub async fn answer(&self, body: &[u8], clock: &impl Clock, rng: &impl Rng) -> Result<ObjectReply, S::Error> {
        let Ok(call) = crate::json::decode::<ObjectCall>(body) else {
            return Ok(ObjectReply { status: 400, body: "not a session object call".into() });
        };
        self.load().await?;
        let (answer, changed) = serve(&self.state, &call, clock, rng).await;
        if changed {
            self.store().await?;
        }
        Ok(ObjectReply { status: 200, body: serde_json::to_string(&answer).unwrap_or_default() })
    }

    /// The alarm: forget the state once the session's possible lifetime is over, or look again
    /// then if a later call moved that end.
    pub async fn alarm(&self, clock: &impl Clock) -> Result<(), S::Error> {
        self.load().await?;
        let keep_until_ms = self.state.borrow().keep_until_ms;
        if keep_until_ms > clock.now_millis() {
            return self.storage.set_alarm(keep_until_ms).await;
        }
        self.storage.delete_all().await?;
        *self.state.borrow_mut() = ObjectState::default();
        Ok(())
    }

    /// Read the stored state once per instance. The runtime's input gate holds other calls
    /// while storage is read; a call that finds it loaded meanwhile keeps what is there.
    async fn load(&self) -> Result<(), S::Error> {
        if self.loaded.get() {
            return Ok(());
        }
        let stored = self.storage.load_state().await?;
        if !self.loaded.replace(true) {
            let state = stored.and_then(|json| crate::json::decode(json.as_bytes()).ok()).unwrap_or_default();
            *self.state.borrow_mut() = state;
        }
        Ok(())
    }

    /// Store the state and schedule its deletion at the end of the session's possible lifetime.
    async fn store(&self) -> Result<(), S::Error> {
        let (json, keep_until_ms) = {
            let state = self.state.borrow();
            (serde_json::to_string(&*state).unwrap_or_default(), state.keep_until_ms)
        };
        self.storage.store_state(&json).await?;
        if keep_until_ms > 0 {
            self.storage.set_alarm(keep_until_ms).await?;
        }
        Ok(())
    }
}

/// An isolate's reading of its session object's reply (`status`, `body`).
pub fn read_reply(status: u16, body: &str) -> Result<ObjectAnswer, KvError> {
    if status != 200 {
        return Err(KvError(format!("session object: answered {status}")));
    }
    crate::json::decode(body.as_bytes()).map_err(|e| KvError(format!("session object: {e}")))
}

#[cfg(test)]
mod tests;
