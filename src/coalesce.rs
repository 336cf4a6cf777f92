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

/// Work for one key: under way, or finished and kept only until every request that waited for
/// it has taken its copy. A result nobody waits for is never stored, so the map holds no more
/// than the work in flight and results (tokens, keys) do not outlive their readers.
enum Slot<V> {
    Running { generation: u64, waiters: usize },
    Done { generation: u64, value: V, unread: usize },
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
            && matches!(slots.get(self.key), Some(Slot::Running { generation, .. }) if *generation == self.generation)
        {
            slots.remove(self.key);
        }
    }
}

/// A waiting request's place in the count of readers; gives it up if the request is dropped
/// before reading, so a result is never kept for a reader that will not come.
struct WaitGuard<'a, V> {
    coalescer: &'a Coalescer<V>,
    key: &'a str,
    /// The generation this request is counted as a reader of.
    counted_in: Option<u64>,
}

impl<V> Drop for WaitGuard<'_, V> {
    fn drop(&mut self) {
        if let (Some(counted), Ok(mut slots)) = (self.counted_in, self.coalescer.slots.try_borrow_mut()) {
            release(&mut slots, self.key, counted);
        }
    }
}

/// One fewer reader for `generation` of `key`; a finished result nobody waits for is dropped.
fn release<V>(slots: &mut HashMap<String, Slot<V>>, key: &str, counted: u64) {
    match slots.get_mut(key) {
        Some(Slot::Running { generation, waiters }) if *generation == counted => {
            *waiters = waiters.saturating_sub(1);
        }
        Some(Slot::Done { generation, unread, .. }) if *generation == counted => {
            *unread = unread.saturating_sub(1);
            if *unread == 0 {
                slots.remove(key);
            }
        }
        _ => {}
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
        matches!(self.slots.borrow().get(key), Some(Slot::Running { .. }))
    }

    fn role(&self, key: &str, waited_for: Option<u64>, waiter: &mut WaitGuard<'_, V>) -> Role<V> {
        let mut slots = self.slots.borrow_mut();
        match slots.get_mut(key) {
            Some(Slot::Running { generation, waiters }) => {
                // Counted once per run; a count in an earlier run went with its slot.
                if waiter.counted_in != Some(*generation) {
                    *waiters = waiters.saturating_add(1);
                    waiter.counted_in = Some(*generation);
                }
                return Role::Wait(*generation);
            }
            Some(Slot::Done { generation, value, .. }) if waited_for.is_some_and(|w| *generation >= w) => {
                let (generation, value) = (*generation, value.clone());
                if waiter.counted_in == Some(generation) {
                    waiter.counted_in = None;
                    release(&mut slots, key, generation);
                }
                return Role::Done(value);
            }
            _ => {}
        }
        let generation = self.generation.get().wrapping_add(1);
        self.generation.set(generation);
        slots.insert(key.to_owned(), Slot::Running { generation, waiters: 0 });
        Role::Lead(generation)
    }

    /// Hand the leader's result to the requests that waited for it, if any (and if the slot is
    /// still this run's: a waiter that gave up on it may have taken over).
    fn finish(&self, key: &str, finished: u64, value: &V) {
        let mut slots = self.slots.borrow_mut();
        let waiters = match slots.get(key) {
            Some(Slot::Running { generation, waiters }) if *generation == finished => *waiters,
            _ => return,
        };
        if waiters == 0 {
            slots.remove(key);
        } else {
            slots.insert(key.to_owned(), Slot::Done { generation: finished, value: value.clone(), unread: waiters });
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
        let mut waiter = WaitGuard { coalescer: self, key, counted_in: None };
        loop {
            match self.role(key, waited_for, &mut waiter) {
                Role::Done(value) => return (value, false),
                Role::Wait(generation) if clock.now_millis() < started.saturating_add(MAX_WAIT_MILLIS) => {
                    waited_for = Some(generation);
                    clock.sleep(POLL_MILLIS).await;
                }
                Role::Wait(_) => {
                    // Waited long enough: take over (the other run is presumably stuck).
                    self.slots.borrow_mut().remove(key);
                    waiter.counted_in = None;
                    waited_for = None;
                }
                Role::Lead(generation) => {
                    let guard = LeadGuard { coalescer: self, key, generation };
                    let value = work().await;
                    self.finish(key, generation, &value);
                    drop(guard); // a no-op now: the slot holds the result or is gone
                    return (value, true);
                }
            }
        }
    }

    /// How many keys hold a run or an unread result (tests prove the bound with it).
    #[cfg(test)]
    pub fn slots(&self) -> usize {
        self.slots.borrow().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::{FakeClock, block_on, yield_once};
    use futures::future::join_all;
    use std::rc::Rc;

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
        assert_eq!(coalescer.slots(), 0);
    }

    /// Poll `fut` once, so it has taken its role (leader or counted waiter).
    fn poll_once<F: Future>(fut: &mut std::pin::Pin<Box<F>>) {
        let waker = futures::task::noop_waker();
        let _ = fut.as_mut().poll(&mut std::task::Context::from_waker(&waker));
    }

    #[test]
    fn results_are_dropped_once_every_waiter_has_read_them() {
        let coalescer: Coalescer<Rc<String>> = Coalescer::default();
        let clock = FakeClock::at_secs(0);
        let token = Rc::new("access-token".to_owned());
        let work = || async {
            yield_once().await;
            yield_once().await;
            Rc::clone(&token)
        };
        // Sessions one after another: no result is kept for anyone (it used to be one entry
        // per session, holding its tokens, for the life of the isolate).
        for i in 0..1000 {
            assert!(block_on(coalescer.run(&clock, &format!("session-{i}"), work)).1);
        }
        assert_eq!(coalescer.slots(), 0);
        // A burst on one session: the result is shared, then dropped after the last reader.
        let results = block_on(join_all((0..10).map(|_| coalescer.run(&clock, "k", work))));
        assert_eq!(results.iter().filter(|(_, led)| *led).count(), 1);
        assert_eq!(coalescer.slots(), 0);
        drop(results);
        assert_eq!(Rc::strong_count(&token), 1, "the coalescer keeps no copy of the tokens");
    }

    #[test]
    fn a_waiter_dropped_before_reading_does_not_keep_the_result_alive() {
        let coalescer: Coalescer<Rc<String>> = Coalescer::default();
        let clock = FakeClock::at_secs(0);
        let token = Rc::new("access-token".to_owned());
        let work = || async {
            yield_once().await;
            Rc::clone(&token)
        };
        let mut leader = Box::pin(coalescer.run(&clock, "k", work));
        let mut gone = Box::pin(coalescer.run(&clock, "k", work));
        let mut stays = Box::pin(coalescer.run(&clock, "k", work));
        poll_once(&mut leader);
        poll_once(&mut gone);
        poll_once(&mut stays);
        drop(gone); // e.g. the client disconnected while waiting
        let (value, led) = block_on(leader);
        assert!(led);
        assert_eq!(coalescer.slots(), 1, "kept for the one waiter still there");
        let (shared, led) = block_on(stays);
        assert!(!led && Rc::ptr_eq(&shared, &value));
        assert_eq!(coalescer.slots(), 0);
        drop((value, shared));
        assert_eq!(Rc::strong_count(&token), 1);

        // With every waiter gone before the leader finishes, nothing is stored at all.
        let mut leader = Box::pin(coalescer.run(&clock, "k", work));
        let mut gone = Box::pin(coalescer.run(&clock, "k", work));
        poll_once(&mut leader);
        poll_once(&mut gone);
        drop(gone);
        drop(block_on(leader));
        assert_eq!(coalescer.slots(), 0);
        assert_eq!(Rc::strong_count(&token), 1);
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
            poll_once(&mut leader);
            assert!(coalescer.is_running("k"));
        }
        assert!(!coalescer.is_running("k"));
        assert_eq!(block_on(coalescer.run(&clock, "k", || async { 2 })), (2, true));
    }
}
