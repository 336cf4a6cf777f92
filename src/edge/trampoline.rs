//! Driving the core's async pipeline without wasm-bindgen-futures on the hot path.
//!
//! `Gateway::handle` is an `async fn`, but on the hot paths it finishes without waiting on
//! anything (a public or warm-session request), or waits only on `crypto.subtle` (a bearer
//! token with cached keys). wasm-bindgen-futures would wrap every request in a promise, a task
//! queue and a wake-up per `.await` (the profile in `bench/profile/` put that at a large share
//! of the Worker's own CPU). Here the entry polls the future once, synchronously:
//! - ready: the answer goes back to JS at once;
//! - waiting on a [`JsAwait`] (a promise the JS entry can await itself): the future is parked
//!   under an id and JS calls [`resume`] with the settled value, which polls it again;
//! - waiting on anything else (KV, a provider fetch, a timer): wasm-bindgen-futures takes over
//!   for the rest of this request, as before.
//!
//! Parked futures are bounded ([`MAX_PARKED`]): a request cancelled by its client while parked
//! never resumes, so the oldest parked futures are dropped rather than kept forever. A
//! `crypto.subtle` promise settles within the same turn of the event loop, so in practice a
//! parked future lives microseconds.

use futures::task::AtomicWaker;
use js_sys::Promise;
use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;

/// The request's work: a step for the JS entry (see `super::step`), or an error it turns into a 500.
pub type Task = Pin<Box<dyn Future<Output = Result<JsValue, JsValue>>>>;

type Slot = Rc<RefCell<Option<Result<JsValue, JsValue>>>>;

/// A future waiting for the JS entry to settle its promise.
struct Parked {
    id: u32,
    task: Task,
    relay: Arc<Relay>,
    slot: Slot,
}

/// Most futures parked at once per isolate.
const MAX_PARKED: usize = 256;

thread_local! {
    /// Whether [`drive`] is polling (only then can a [`JsAwait`] park its future).
    static DRIVING: Cell<bool> = const { Cell::new(false) };
    /// The promise the future just parked on, for [`drive`] to hand to JS.
    static PARKED_ON: RefCell<Option<(Promise, Slot)>> = const { RefCell::new(None) };
    static PARKED: RefCell<VecDeque<Parked>> = const { RefCell::new(VecDeque::new()) };
    static NEXT_ID: Cell<u32> = const { Cell::new(1) };
}

/// Whether the current poll comes from [`drive`] (the request's own JS turn), not from
/// wasm-bindgen-futures (which may run it in another request's turn, after a shared wake-up).
pub fn driving() -> bool {
    DRIVING.with(Cell::get)
}

/// `.await` on a JS promise that the JS entry awaits for us when [`drive`] is polling, and
/// wasm-bindgen-futures otherwise. Only for awaits that are not raced against others.
pub enum JsAwait {
    Start(Option<Promise>, Slot),
    Parked(Slot),
    Fallback(JsFuture),
}

impl JsAwait {
    pub fn new(promise: Promise) -> Self {
        JsAwait::Start(Some(promise), Rc::new(RefCell::new(None)))
    }
}

impl Future for JsAwait {
    type Output = Result<JsValue, JsValue>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        loop {
            match this {
                JsAwait::Start(promise, slot) => {
                    let promise = promise.take().unwrap_or_else(|| Promise::resolve(&JsValue::UNDEFINED));
                    if DRIVING.with(Cell::get) {
                        PARKED_ON.with(|p| *p.borrow_mut() = Some((promise, Rc::clone(slot))));
                        *this = JsAwait::Parked(Rc::clone(slot));
                        return Poll::Pending;
                    }
                    *this = JsAwait::Fallback(JsFuture::from(promise));
                }
                JsAwait::Parked(slot) => {
                    return match slot.borrow_mut().take() {
                        Some(result) => Poll::Ready(result),
                        None => Poll::Pending,
                    };
                }
                JsAwait::Fallback(future) => return Pin::new(future).poll(cx),
            }
        }
    }
}

/// Forwards wake-ups to whoever polls the task next. The first polls happen outside any
/// executor, but futures inside may keep the waker they first saw (workers-rs' `Delay` does):
/// with a no-op waker their wake-up would be lost once wasm-bindgen-futures takes over.
#[derive(Default)]
struct Relay(AtomicWaker);

impl Wake for Relay {
    fn wake(self: Arc<Self>) {
        self.0.wake();
    }
}

/// A task handed to wasm-bindgen-futures: its executor's waker receives the relay's wake-ups.
struct Relayed(Task, Arc<Relay>);

impl Future for Relayed {
    type Output = Result<JsValue, JsValue>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.1.0.register(cx.waker());
        self.0.as_mut().poll(cx)
    }
}

/// Poll `task` once: its result, `[2, promise, id]` when it parked on a promise, or
/// `[3, promise]` when wasm-bindgen-futures runs the rest.
pub fn drive(task: Task) -> Result<JsValue, JsValue> {
    poll_once(task, Arc::new(Relay::default()))
}

fn poll_once(mut task: Task, relay: Arc<Relay>) -> Result<JsValue, JsValue> {
    let waker = Waker::from(Arc::clone(&relay));
    DRIVING.with(|d| d.set(true));
    let polled = task.as_mut().poll(&mut Context::from_waker(&waker));
    DRIVING.with(|d| d.set(false));
    if let Poll::Ready(result) = polled {
        return result;
    }
    let Some((promise, slot)) = PARKED_ON.with(|p| p.borrow_mut().take()) else {
        let rest = wasm_bindgen_futures::future_to_promise(Relayed(task, relay));
        return Ok(js_sys::Array::of2(&JsValue::from(3), &rest).into());
    };
    let id = NEXT_ID.with(|n| {
        let id = n.get();
        n.set(id.wrapping_add(1));
        id
    });
    PARKED.with(|parked| {
        let mut parked = parked.borrow_mut();
        if parked.len() >= MAX_PARKED {
            parked.pop_front();
        }
        parked.push_back(Parked { id, task, relay, slot });
    });
    Ok(js_sys::Array::of3(&JsValue::from(2), &promise, &JsValue::from(id)).into())
}

/// Continue the future parked under `id` with its promise's outcome. `undefined` if it is
/// gone (dropped by the bound, or the instance was reset after a panic).
#[wasm_bindgen]
pub fn resume(id: u32, value: JsValue, ok: bool) -> Result<JsValue, JsValue> {
    let found = PARKED.with(|parked| {
        let mut parked = parked.borrow_mut();
        let at = parked.iter().position(|p| p.id == id)?;
        parked.remove(at)
    });
    let Some(Parked { task, relay, slot, .. }) = found else {
        return Ok(JsValue::UNDEFINED);
    };
    *slot.borrow_mut() = Some(if ok { Ok(value) } else { Err(value) });
    poll_once(task, relay)
}
