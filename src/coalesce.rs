//! One piece of work per key in flight per isolate, shared by every request that needs it
//! meanwhile (a JWKS fetch, a session refresh).
//!
//! Waiters poll with their own timer instead of awaiting a promise the leading request will
//! settle: workerd cancels a request whose only pending work belongs to another request ("the
//! Worker's code had hung"), so cross-request wake-ups are not an option at the edge.

use crate::ports::Clock;
use std::cell::{Cell, RefCell};
use std::collections::HashMap;

/// How often a waiter looks for the leader's result.
const POLL_MILLIS: u64 = 5;
/// How long a waiter waits before doing the work itself.
const MAX_WAIT_MILLIS: u64 = 30_000;

enum Slot<V> {
    Running(u64),
    Done(u64, V),
}

/// Work in flight, by key.
pub struct Coalescer<V> {
    slots: RefCell<HashMap<String, Slot<V>>>,
    generation: Cell<u64>,
}

impl<V> Default for Coalescer<V> {
    fn default() -> Self {
        Self { slots: RefCell::new(HashMap::new()), generation: Cell::new(0) }
    }
}

/// Clears the running marker if the leading request is dropped mid-work, so waiters take over.
struct LeadGuard<'a, V> {
    coalescer: &'a Coalescer<V>,
    key: &'a str,
    generation: u64,
}

impl<V> Drop for LeadGuard<'_, V> {
    fn drop(&mut self) {
        if let Ok(mut slots) = self.coalescer.slots.try_borrow_mut()
            && matches!(slots.get(self.key), Some(Slot::Running(g)) if *g == self.generation)
        {
            slots.remove(self.key);
        }
    }
}

enum Role<V> {
    Lead(u64),
    Wait(u64),
    Done(V),
}

impl<V: Clone> Coalescer<V> {
    /// Whether work for `key` is under way.
    pub fn is_running(&self, key: &str) -> bool {
        matches!(self.slots.borrow().get(key), Some(Slot::Running(_)))
    }

    fn role(&self, key: &str, waited_for: Option<u64>) -> Role<V> {
        let mut slots = self.slots.borrow_mut();
        match (slots.get(key), waited_for) {
            (Some(Slot::Running(g)), _) => Role::Wait(*g),
            (Some(Slot::Done(g, value)), Some(w)) if *g >= w => Role::Done(value.clone()),
            _ => {
                let generation = self.generation.get().wrapping_add(1);
                self.generation.set(generation);
                slots.insert(key.to_owned(), Slot::Running(generation));
                Role::Lead(generation)
            }
        }
    }

    /// Run `work` for `key`, or wait for the run already under way. Returns the value and
    /// whether this caller did the work.
    pub async fn run<F, Fut>(&self, clock: &impl Clock, key: &str, work: F) -> (V, bool)
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = V>,
    {
        let started = clock.now_millis();
        let mut waited_for = None;
        loop {
            match self.role(key, waited_for) {
                Role::Done(value) => return (value, false),
                Role::Wait(generation) if clock.now_millis() < started.saturating_add(MAX_WAIT_MILLIS) => {
                    waited_for = Some(generation);
                    clock.sleep(POLL_MILLIS).await;
                }
                Role::Wait(_) => {
                    // Waited long enough: take over (the other run is presumably stuck).
                    self.slots.borrow_mut().remove(key);
                    waited_for = None;
                }
                Role::Lead(generation) => {
                    let guard = LeadGuard { coalescer: self, key, generation };
                    let value = work().await;
                    self.slots.borrow_mut().insert(key.to_owned(), Slot::Done(generation, value.clone()));
                    drop(guard); // a no-op now: the slot holds the result
                    return (value, true);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::{FakeClock, block_on, yield_once};
    use futures::future::join_all;

    #[test]
    fn concurrent_callers_share_one_run() {
        let coalescer = Coalescer::default();
        let clock = FakeClock::at_secs(0);
        let runs = Cell::new(0);
        let work = || async {
            runs.set(runs.get() + 1);
            yield_once().await;
            yield_once().await;
            runs.get()
        };
        let results = block_on(join_all((0..5).map(|_| coalescer.run(&clock, "k", work))));
        assert_eq!(runs.get(), 1);
        assert_eq!(results.iter().filter(|(_, led)| *led).count(), 1);
        assert!(results.iter().all(|(v, _)| *v == 1));
        // Later callers run again rather than reuse an old result.
        assert_eq!(block_on(coalescer.run(&clock, "k", work)), (2, true));
        assert!(!coalescer.is_running("k"));
    }

    #[test]
    fn a_cancelled_leader_hands_over_to_a_waiter() {
        let coalescer: Coalescer<u32> = Coalescer::default();
        let clock = FakeClock::at_secs(0);
        {
            let mut leader = Box::pin(coalescer.run(&clock, "k", || async {
                yield_once().await;
                1
            }));
            let waker = futures::task::noop_waker();
            let _ = leader.as_mut().poll(&mut std::task::Context::from_waker(&waker));
            assert!(coalescer.is_running("k"));
        }
        assert!(!coalescer.is_running("k"));
        assert_eq!(block_on(coalescer.run(&clock, "k", || async { 2 })), (2, true));
    }
}
