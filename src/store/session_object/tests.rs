//! The session object's instance over in-memory storage.

use super::*;
use crate::testkit::{FakeClock, FakeRng, block_on};
use std::rc::Rc;

/// An object's storage in memory; clones share it (a new instance of the same object).
#[derive(Clone, Default)]
struct Storage(Rc<Stored>);

#[derive(Default)]
struct Stored {
    state: RefCell<Option<String>>,
    alarm_ms: Cell<Option<u64>>,
    loads: Cell<usize>,
    writes: Cell<usize>,
}

impl ObjectStorage for Storage {
    type Error = String;

    async fn load_state(&self) -> Result<Option<String>, String> {
        self.0.loads.set(self.0.loads.get() + 1);
        Ok(self.0.state.borrow().clone())
    }

    async fn store_state(&self, json: &str) -> Result<(), String> {
        self.0.writes.set(self.0.writes.get() + 1);
        *self.0.state.borrow_mut() = Some(json.to_owned());
        Ok(())
    }

    async fn set_alarm(&self, at_ms: u64) -> Result<(), String> {
        self.0.alarm_ms.set(Some(at_ms));
        Ok(())
    }

    async fn delete_all(&self) -> Result<(), String> {
        *self.0.state.borrow_mut() = None;
        self.0.alarm_ms.set(None);
        Ok(())
    }
}

fn call(object: &ObjectInstance<Storage>, clock: &FakeClock, call: &ObjectCall) -> ObjectAnswer {
    let body = serde_json::to_vec(call).unwrap();
    let reply = block_on(object.answer(&body, clock, &FakeRng::new(1))).unwrap();
    read_reply(reply.status, &reply.body).unwrap()
}

#[test]
fn an_ended_session_is_stored_with_an_alarm_at_the_end_of_its_possible_lifetime() {
    let (storage, clock) = (Storage::default(), FakeClock::at_secs(1000));
    let object = ObjectInstance::new(storage.clone());
    assert_eq!(call(&object, &clock, &ObjectCall::End { keep_secs: 100 }), ObjectAnswer::Ended);
    assert_eq!(storage.0.alarm_ms.get(), Some(1_100_000));
    // Another instance of the same object (after an eviction) reads it back: still ended.
    let again = ObjectInstance::new(storage.clone());
    assert_eq!(call(&again, &clock, &ObjectCall::Check), ObjectAnswer::Ended);
}

#[test]
fn a_call_that_changes_nothing_writes_nothing_and_storage_is_read_once() {
    let (storage, clock) = (Storage::default(), FakeClock::at_secs(1000));
    let object = ObjectInstance::new(storage.clone());
    assert_eq!(call(&object, &clock, &ObjectCall::Check), ObjectAnswer::Live);
    assert_eq!(call(&object, &clock, &ObjectCall::Abandon { lease: "nobody's".into() }), ObjectAnswer::Live);
    assert_eq!((storage.0.loads.get(), storage.0.writes.get(), storage.0.alarm_ms.get()), (1, 0, None));
}

#[test]
fn a_body_that_is_not_a_call_is_refused_with_400_and_touches_no_storage() {
    let (storage, clock) = (Storage::default(), FakeClock::at_secs(1000));
    let object = ObjectInstance::new(storage.clone());
    let reply = block_on(object.answer(br#"{"revive":{}}"#, &clock, &FakeRng::new(1))).unwrap();
    assert_eq!(reply.status, 400);
    assert!(read_reply(reply.status, &reply.body).unwrap_err().0.contains("400"));
    assert_eq!(storage.0.loads.get(), 0);
}

#[test]
fn the_alarm_looks_again_while_the_session_may_live_and_forgets_it_after() {
    let (storage, clock) = (Storage::default(), FakeClock::at_secs(1000));
    let object = ObjectInstance::new(storage.clone());
    assert_eq!(call(&object, &clock, &ObjectCall::End { keep_secs: 100 }), ObjectAnswer::Ended);
    clock.advance_secs(50);
    block_on(object.alarm(&clock)).unwrap();
    assert_eq!(storage.0.alarm_ms.get(), Some(1_100_000), "not yet: the alarm is set again");
    assert!(storage.0.state.borrow().is_some());
    clock.advance_secs(50);
    block_on(object.alarm(&clock)).unwrap();
    assert!(storage.0.state.borrow().is_none(), "the state is deleted");
    assert_eq!(call(&object, &clock, &ObjectCall::Check), ObjectAnswer::Live, "and forgotten in memory");
}

#[test]
fn an_isolate_reads_only_a_200_with_an_answer() {
    assert_eq!(read_reply(200, r#""busy""#), Ok(ObjectAnswer::Busy));
    assert!(read_reply(503, r#""live""#).unwrap_err().0.contains("answered 503"));
    assert!(read_reply(200, "not json").is_err());
}
