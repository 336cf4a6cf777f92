// The Worker's entry module, bundled by scripts/build-worker.sh into build/worker/index.mjs.
//
// build/bindgen/index.js is wasm-bindgen's `--target module` output for the Rust crate: it
// imports build/worker/index.wasm (a WebAssembly.Module, as the CompiledWasm rule gives it),
// instantiates it, and exports the `fetch` that `#[event(fetch)]` generates. It is built with
// `--experimental-reset-state-function --force-enable-abort-handler`, as worker-build does, so
// after a Rust panic (panic = "abort") the next call gets a fresh wasm instance instead of a
// poisoned one.
//
// Export any Durable Object classes written in Rust here too, e.g.
// `export { SessionObject } from "../build/bindgen/index.js";`.
import * as edge from "../build/bindgen/index.js";

export default {
  fetch(request, env, ctx) {
    return edge.fetch(request, env, ctx);
  },
};
