// The Worker's entry module, bundled by scripts/build-worker.sh into build/worker/index.mjs.
//
// build/bindgen/index.js is wasm-bindgen's `--target module` output for the Rust crate: it
// imports build/worker/index.wasm (a WebAssembly.Module, as the CompiledWasm rule gives it) and
// instantiates it.
//
// Why the entry is ours and not workers-rs' `#[event(fetch)]`: that macro runs every request as
// a wasm-bindgen-futures task (a promise, a task queue, a wake-up per `.await`) and converts the
// whole request and response, which the profile in `bench/profile/` measured as more CPU than
// the signature check. Here only what must be awaited is awaited: `handleFetch`
// (src/edge/mod.rs) polls the pipeline once, synchronously (src/drive.rs), and answers with a
// *step* for this entry:
// - `[0, response]`: answer with this;
// - `[0, response, endedSessions]`: as above, and the storage keys of sessions this isolate just
//   ended, whose proxied WebSockets the relay closes;
// - `[1, originFetch, setCookies?, watch?, added?]`: the origin `fetch` promise, unawaited. The
//   origin's answer passes through, via `originResponse` only when it carries or gains a cookie
//   or gains a header (`added`: flat name/value pairs), and a rejected fetch becomes a 502 with
//   `originFailed`. With `watch`, a WebSocket upgrade on a `proxy` route: the relay
//   (scripts/ws-relay.mjs) holds the socket and closes it as `watch` says (`[session, tombstone,
//   closeAtMs, revalidateMs, closeCode]`, decided by the core);
// - `[2, promise, id]`: await `promise` (`crypto.subtle`), then call `resume(id, ...)`: a bearer
//   request resumes without a wasm-bindgen-futures task;
// - `[3, promise]`: the rest runs on wasm-bindgen-futures (KV, provider calls); the promise
//   resolves to `[0, response]`, the origin fetch awaited in Rust (that task may run in another
//   request's turn, whose promises this request's JS could not wait on).
// Public and signed-in requests thus return the origin's fetch promise without ever entering a
// Rust future. A request the client cancels stops with it: the origin fetch is the runtime's
// own, cancelled with the request, and a parked future is dropped (src/drive.rs). workers-rs
// stays the dependency for what it does well: bindings and types (`Env`, `Delay`).
//
// The glue is built with `--experimental-reset-state-function --force-enable-abort-handler`:
// after a Rust panic (panic = "abort") or any other trap, this entry answers 500, logs the
// reason, and resets the instance so the next request runs on a fresh one.
//
// Durable Object classes written in Rust are exported from here too (SessionObject, below).
import * as edge from "../build/bindgen/index.js";
import { endSessions, proxySocket } from "./ws-relay.mjs";

/** How many times the wasm instance was reset after a trap (see internalError). */
let resets = 0;

export default {
  fetch(request, env) {
    // One pass over the headers: every name (for the strip list) and the total size. Values
    // are read by name, in Rust, only for the headers a decision needs. `forEach`, not
    // `for...of`: the runtime's iterator object and an entry array per header cost ~5 µs more
    // per request (bench/RESULTS.md).
    let names = "";
    let size = 0;
    request.headers.forEach((value, name) => {
      names += name + "\n";
      size += name.length + value.length + 4;
    });
    const ctx = { request, env, names, size };
    return next(ctx, () => edge.handleFetch(request, env, names, size));
  },
};

/** Run one call into Rust and follow the step it answers with. */
function next(ctx, call) {
  let step;
  try {
    step = call();
  } catch (error) {
    return internalError(ctx, error);
  }
  if (step === undefined) return internalError(ctx, "the request's work was lost (instance reset)");
  switch (step[0]) {
    case 0:
      if (step[2] !== undefined) endSessions(step[2]);
      return step[1];
    case 1:
      // step[3]: a WebSocket upgrade on a proxy route, relayed and watched (scripts/ws-relay.mjs).
      if (step[3] !== undefined) {
        const passOn = (response) => originAnswer(ctx, step, response);
        return proxySocket(step[1], step[3], step[2], step[4], ctx.env, passOn).catch((error) => originFailed(ctx, error));
      }
      return step[1].then((response) => originAnswer(ctx, step, response), (error) => originFailed(ctx, error));
    case 2:
      return step[1].then(
        (value) => next(ctx, () => edge.resume(step[2], value, true)),
        (error) => next(ctx, () => edge.resume(step[2], error, false)),
      );
    default:
      return step[1].then((later) => next(ctx, () => later), (error) => internalError(ctx, error));
  }
}

/** The origin's answer to a step 1: as it is, unless it carries or gains a cookie, or gains a header (step[4]). */
function originAnswer(ctx, step, response) {
  return step[2] === undefined && step[4] === undefined && !response.headers.has("set-cookie")
    ? response
    : next(ctx, () => [0, edge.originResponse(response, step[2], step[4])]);
}

/** A rejected origin fetch: 502, logged by the core. */
function originFailed(ctx, error) {
  return next(ctx, () => [0, edge.originFailed(ctx.request, ctx.names, ctx.size, reason(error))]);
}

function reason(error) {
  return String(error?.message ?? error);
}

/** A 500 with a log line; after a trap, a fresh wasm instance for the next request. */
function internalError(ctx, error) {
  const trapped = error instanceof WebAssembly.RuntimeError;
  const url = new URL(ctx.request.url);
  console.log(JSON.stringify({
    event: "decision",
    reason: trapped ? "internal_panic" : "internal_error",
    status: 500,
    method: ctx.request.method,
    path: url.pathname.slice(0, 256),
    detail: reason(error).slice(0, 500),
  }));
  if (trapped) reset();
  return new Response("Internal error. The gateway logged the reason.", {
    status: 500,
    headers: { "content-type": "text/plain; charset=utf-8", "cache-control": "no-store" },
  });
}

/** A fresh wasm instance after a trap; objects made on the old one are remade on next use. */
function reset() {
  edge.__wbg_reset_state?.();
  resets += 1;
}

/**
 * The sessions' Durable Object (src/edge/session_object.rs), bound as SESSION_OBJECTS. A thin
 * wrapper around the Rust class: after a wasm reset the Rust object it holds would point into
 * the old instance, so it is made again (its state is reloaded from storage).
 */
export class SessionObject {
  constructor(state, env) {
    this.state = state;
    this.env = env;
  }

  fetch(request) {
    return this.call((object) => object.fetch(request));
  }

  alarm() {
    return this.call((object) => object.alarm());
  }

  async call(method) {
    if (this.object === undefined || this.made !== resets) {
      this.object = new edge.SessionObject(this.state, this.env);
      this.made = resets;
    }
    try {
      return await method(this.object);
    } catch (error) {
      if (error instanceof WebAssembly.RuntimeError) reset();
      throw error;
    }
  }
}
