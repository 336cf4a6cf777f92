// The Worker's own entry (scripts/worker-entry.mjs): a Rust panic answers 500 with a log line and the
// next request runs on a fresh wasm instance.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { rawRequest } from '../support/browser.mjs';
import { skipReason, startStack } from '../support/stack.mjs';
import { WORKER_DIR, startWorker } from '../support/worker.mjs';

const skip = skipReason();
const T = { timeout: 15_000, skip };

// The built Worker behind a wrapper that, on request, re-enters it while it is still building its
// state (reading its settings on an isolate's first request): the inner call hits a RefCell that
// is already borrowed, a real Rust panic inside the real wasm. No test hook in the Worker itself.
const WRAPPER = `
import worker from "./index.mjs";
export default {
  fetch(request, env, ctx) {
    if (!request.headers.has("x-test-reenter")) return worker.fetch(request, env, ctx);
    let inner;
    const reentrant = new Proxy(env, {
      get(target, prop, receiver) {
        if (inner === undefined && typeof prop === "string") inner = worker.fetch(new Request(request.url), env, ctx);
        return Reflect.get(target, prop, receiver);
      },
    });
    return Promise.resolve(worker.fetch(request, reentrant, ctx)).then(() => inner);
  },
};
`;

describe('own entry: panics', () => {
  let s;
  let worker;
  let dir;

  before(async () => {
    if (skip) return;
    s = await startStack({ vars: { ROUTES: JSON.stringify([{ prefix: '/', auth: 'public' }]) } });
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'edgeguard-entry-'));
    for (const f of ['index.mjs', 'index.wasm']) fs.copyFileSync(path.join(WORKER_DIR, f), path.join(dir, f));
    fs.writeFileSync(path.join(dir, 'wrapper.mjs'), WRAPPER);
    worker = await startWorker({ vars: s.vars, secrets: s.secrets, scriptPath: path.join(dir, 'wrapper.mjs') });
  }, { timeout: 30_000 });

  after(async () => {
    await worker?.close();
    await s?.close();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  test('a panic answers 500 with a log line, and the next request works on a fresh instance', T, async () => {
    const panicked = await rawRequest(`${worker.url}/page`, { headers: new Headers([['x-test-reenter', '1']]) });
    assert.equal(panicked.status, 500, panicked.body.toString());
    const line = await worker.waitForLog((e) => e.json?.reason === 'internal_panic');
    assert.equal(line.json.status, 500);
    assert.ok(worker.logs().some((e) => /Rust panic/.test(e.line)), 'the panic message is logged');

    s.origin.reset();
    const next = await rawRequest(`${worker.url}/page`);
    assert.equal(next.status, 200, next.body.toString());
    assert.equal(s.origin.last()?.path, '/page');
  });
});
