//! Driving the core's async pipeline without a general executor on the hot path.
//!
//! `Gateway::handle` is an `async fn`, but on the hot paths it finishes without waiting on
//! anything (a public or warm-session request), or waits only on `crypto.subtle` (a bearer
//! token with cached keys). An executor (wasm-bindgen-futures on the Worker) would wrap every
//! request in a promise, a task queue and a wake-up per `.await` (the profile in
//! `bench/profile/` put that at a large share of the Worker's own CPU). A [`Driver`] polls the
//! future once, synchronously:
//! - ready: the answer goes back to the host at once ([`Polled::Ready`]);
//! - waiting on a [`HostAwait`] (something the host can await itself, a JS promise): the
//!   future is parked under an id ([`Polled::Parked`]) and the host calls [`Driver::resume`]
//!   with the settled value, which polls it again;
//! - waiting on anything else (KV, a provider fetch, a timer): the host's executor takes over
//!   for the rest of the request ([`Polled::Elsewhere`]), as before.
//!
//! Parked futures are bounded ([`MAX_PARKED`]): a request cancelled by its client while parked
//! never resumes, so the oldest parked futures are dropped rather than kept forever. A
//! `crypto.subtle` promise settles within the same turn of the event loop, so in practice a
//! parked future lives microseconds. Generic over the [`Host`], so host tests drive it with
//! plain values; `src/edge/trampoline.rs` is the Worker's host (promises).

use futures::task::AtomicWaker;
use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::thread::LocalKey;

/// Most futures parked at once per isolate.
pub const MAX_PARKED: usize = 256;

/// What the runtime gives the driver.
pub trait Host: Sized + 'static {
    /// Something the host can await and settle itself (a JS promise).
    type Awaitable: Unpin;
    /// What an awaitable settles with, fulfilled or rejected.
    type Value;
    /// What a request's work ends with.
    type Output;
    /// The same awaitable under the host's executor, when no driver is polling.
    type Fallback: Future<Output = Settled<Self>> + Unpin;

    fn fallback(awaitable: Self::Awaitable) -> Self::Fallback;

    /// The isolate's one driver (a thread-local), which [`HostAwait`]s park their future in.
    fn driver() -> &'static LocalKey<Driver<Self>>;
}

/// An awaitable's outcome: `Ok` fulfilled, `Err` rejected.
pub type Settled<H> = Result<<H as Host>::Value, <H as Host>::Value>;

/// A request's work.
pub type Task<H> = Pin<Box<dyn Future<Output = <H as Host>::Output>>>;

type Slot<H> = Rc<RefCell<Option<Settled<H>>>>;

/// What one poll of a task came to.
pub enum Polled<H: Host> {
    /// The work is done.
    Ready(H::Output),
    /// The work waits on `on`: the host awaits it, then calls [`Driver::resume`] with `id`.
    Parked { id: u32, on: H::Awaitable },
    /// The work waits on something else: the host's executor runs the rest.
    Elsewhere(Relayed<H>),
}

/// A future waiting for the host to settle its awaitable.
struct Parked<H: Host> {
    id: u32,
    task: Task<H>,
    relay: Arc<Relay>,
    slot: Slot<H>,
}

/// The parking table and the flag that says a driver is polling.
pub struct Driver<H: Host> {
    driving: Cell<bool>,
    /// The awaitable the task just parked on, for [`Driver::drive`] to hand to the host.
    parked_on: RefCell<Option<(H::Awaitable, Slot<H>)>>,
    parked: RefCell<VecDeque<Parked<H>>>,
    next_id: Cell<u32>,
}

impl<H: Host> Default for Driver<H> {
    fn default() -> Self {
        Self::new()
    }
}

impl<H: Host> Driver<H> {
    pub const fn new() -> Self {
        Self {
            driving: Cell::new(false),
            parked_on: RefCell::new(None),
            parked: RefCell::new(VecDeque::new()),
            next_id: Cell::new(1),
        }
    }

    /// Whether the current poll comes from [`Driver::drive`] (the request's own turn), not from
    /// the host's executor (which may run it in another request's turn, after a shared wake-up).
    pub fn driving(&self) -> bool {
        self.driving.get()
    }

    /// Poll `task` once.
    pub fn drive(&self, task: Task<H>) -> Polled<H> {
        self.poll_once(task, Arc::new(Relay::default()))
    }

    /// Continue the task parked under `id` with its awaitable's outcome. `None` if it is gone
    /// (dropped by the bound, or never parked here).
    pub fn resume(&self, id: u32, settled: Settled<H>) -> Option<Polled<H>> {
        let found = {
            let mut parked = self.parked.borrow_mut();
            let at = parked.iter().position(|p| p.id == id)?;
            parked.remove(at)
        };
        let Parked { task, relay, slot, .. } = found?;
        *slot.borrow_mut() = Some(settled);
        Some(self.poll_once(task, relay))
    }

    fn poll_once(&self, mut task: Task<H>, relay: Arc<Relay>) -> Polled<H> {
        let waker = Waker::from(Arc::clone(&relay));
        self.driving.set(true);
        let polled = task.as_mut().poll(&mut Context::from_waker(&waker));
        self.driving.set(false);
        if let Poll::Ready(output) = polled {
            return Polled::Ready(output);
        }
        let Some((on, slot)) = self.parked_on.borrow_mut().take() else {
            return Polled::Elsewhere(Relayed(task, relay));
        };
        let id = self.next_id.get();
        self.next_id.set(id.wrapping_add(1));
        let mut parked = self.parked.borrow_mut();
        if parked.len() >= MAX_PARKED {
            parked.pop_front();
        }
        parked.push_back(Parked { id, task, relay, slot });
        Polled::Parked { id, on }
    }

    /// Park the polling task on `on` when a driver is polling; `on` back otherwise.
    fn park_on(&self, on: H::Awaitable) -> Result<Slot<H>, H::Awaitable> {
        if !self.driving.get() {
            return Err(on);
        }
        let slot = Rc::new(RefCell::new(None));
        *self.parked_on.borrow_mut() = Some((on, Rc::clone(&slot)));
        Ok(slot)
    }
}

/// `.await` on an awaitable that the host awaits for us when a [`Driver`] is polling, and its
/// executor otherwise. Only for awaits that are not raced against others.
pub struct HostAwait<H: Host>(State<H>);

enum State<H: Host> {
    Start(H::Awaitable),
    Parked(Slot<H>),
    Fallback(H::Fallback),
    Done,
}

impl<H: Host> HostAwait<H> {
    pub fn new(on: H::Awaitable) -> Self {
        HostAwait(State::Start(on))
    }
}

impl<H: Host> Future for HostAwait<H> {
    type Output = Settled<H>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Settled<H>> {
        loop {
            match std::mem::replace(&mut self.0, State::Done) {
                State::Start(on) => match H::driver().with(|driver| driver.park_on(on)) {
                    Ok(slot) => {
                        self.0 = State::Parked(slot);
                        return Poll::Pending;
                    }
                    Err(on) => self.0 = State::Fallback(H::fallback(on)),
                },
                State::Parked(slot) => {
                    let settled = slot.borrow_mut().take();
                    return match settled {
                        Some(settled) => Poll::Ready(settled),
                        None => {
                            self.0 = State::Parked(slot);
                            Poll::Pending
                        }
                    };
                }
                State::Fallback(mut future) => {
                    let polled = Pin::new(&mut future).poll(cx);
                    if polled.is_pending() {
                        self.0 = State::Fallback(future);
                    }
                    return polled;
                }
                State::Done => return Poll::Pending,
            }
        }
    }
}

/// Forwards wake-ups to whoever polls the task next. The first polls happen outside any
/// executor, but futures inside may keep the waker they first saw (workers-rs' `Delay` does):
/// with a no-op waker their wake-up would be lost once the executor takes over.
#[derive(Default)]
struct Relay(AtomicWaker);

impl Wake for Relay {
    fn wake(self: Arc<Self>) {
        self.0.wake();
    }
}

/// A task handed to the host's executor: its executor's waker receives the relay's wake-ups.
pub struct Relayed<H: Host>(Task<H>, Arc<Relay>);

impl<H: Host> Future for Relayed<H> {
    type Output = H::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<H::Output> {
        self.1.0.register(cx.waker());
        self.0.as_mut().poll(cx)
    }
}

#[cfg(test)]
mod tests;
