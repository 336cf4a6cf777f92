//! The core's [`Driver`](crate::drive) on the Worker: the awaitables are JS promises, which the
//! JS entry awaits (`[2, promise, id]`, then [`resume`]), and the executor that takes over for
//! other waits is wasm-bindgen-futures (`[3, promise]`).

use crate::drive::{Driver, Host, HostAwait, Polled, Task};
use js_sys::{Array, Promise};
use std::thread::LocalKey;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;

/// The Worker as the driver's host.
pub struct Js;

thread_local! {
    static DRIVER: Driver<Js> = const { Driver::new() };
}

impl Host for Js {
    type Awaitable = Promise;
    type Value = JsValue;
    /// A step for the JS entry (see `scripts/worker-entry.mjs`), or an error it turns into a 500.
    type Output = Result<JsValue, JsValue>;
    type Fallback = JsFuture;

    fn fallback(promise: Promise) -> JsFuture {
        JsFuture::from(promise)
    }

    fn driver() -> &'static LocalKey<Driver<Js>> {
        &DRIVER
    }
}

/// `.await` on a promise, parked for the JS entry when the driver polls.
pub type JsAwait = HostAwait<Js>;

/// Whether the current poll comes from [`drive`] (the request's own JS turn).
pub fn driving() -> bool {
    DRIVER.with(Driver::driving)
}

/// Poll `task` once: its result, or the step that says how it goes on.
pub fn drive(task: Task<Js>) -> Result<JsValue, JsValue> {
    step(DRIVER.with(|driver| driver.drive(task)))
}

fn step(polled: Polled<Js>) -> Result<JsValue, JsValue> {
    match polled {
        Polled::Ready(result) => result,
        Polled::Parked { id, on } => Ok(Array::of3(&2.into(), &on, &id.into()).into()),
        Polled::Elsewhere(rest) => Ok(Array::of2(&3.into(), &wasm_bindgen_futures::future_to_promise(rest)).into()),
    }
}

/// Continue the future parked under `id` with its promise's outcome. `undefined` if it is
/// gone (dropped by the bound, or the instance was reset after a panic).
#[wasm_bindgen]
pub fn resume(id: u32, value: JsValue, ok: bool) -> Result<JsValue, JsValue> {
    let settled = if ok { Ok(value) } else { Err(value) };
    DRIVER.with(|driver| driver.resume(id, settled)).map_or(Ok(JsValue::UNDEFINED), step)
}
