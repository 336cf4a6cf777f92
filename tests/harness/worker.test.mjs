// Self-test of the Miniflare harness with a throwaway probe Worker written to a temp dir (not the
// edgeguard Worker): a .wasm module loads as CompiledWasm, the Worker can fetch() loopback servers
// (origin on 127.0.0.1, IdP on localhost), KV SESSIONS works, and console output is captured.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startWorker, freePort } from '../support/worker.mjs';
import { startOrigin } from '../support/origin.mjs';
import { startIdp } from '../support/idp.mjs';
import { Browser } from '../support/browser.mjs';

const T = { timeout: 10_000 };

// (module (func (export "add") (param i32 i32) (result i32) local.get 0 local.get 1 i32.add))
const ADD_WASM = Buffer.from('0061736d0100000001070160027f7f017f030201000707010361646400000a09010700200020016a0b', 'hex');

const PROBE = `
import addModule from './add.wasm';
const { exports: { add } } = new WebAssembly.Instance(addModule);
export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    if (url.pathname === '/probe') {
      const target = url.searchParams.get('t');
      try {
        const r = await fetch(target, { method: 'POST', body: 'ping', headers: { 'x-probe': '1' } });
        console.log(JSON.stringify({ reason: 'probe_ok', status: r.status }));
        return new Response(await r.text(), { status: 200 });
      } catch (e) {
        console.log(JSON.stringify({ reason: 'probe_failed', error: String(e) }));
        return new Response(String(e), { status: 502 });
      }
    }
    if (url.pathname === '/kv') {
      await env.SESSIONS.put('k', 'v1', { expirationTtl: 60 });
      return new Response(await env.SESSIONS.get('k'));
    }
    console.log(JSON.stringify({ reason: 'hello', path: url.pathname }));
    console.error('a plain stderr line');
    return Response.json({ url: request.url, add: add(2, 3), vars: { A: env.A, S: env.S } });
  },
};`;

describe('Miniflare harness (probe Worker)', () => {
  let dir;
  let origin;
  let idp;
  let worker;
  let port;

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'edgeguard-probe-'));
    fs.writeFileSync(path.join(dir, 'index.mjs'), PROBE);
    fs.writeFileSync(path.join(dir, 'add.wasm'), ADD_WASM);
    origin = await startOrigin();
    idp = await startIdp({ host: 'localhost' });
    port = await freePort();
    worker = await startWorker({ port, vars: { A: 'var-a' }, secrets: { S: 'secret-s' }, scriptPath: path.join(dir, 'index.mjs') });
  }, { timeout: 30_000 });

  after(async () => {
    await Promise.allSettled([worker?.close(), idp?.close(), origin?.close()]);
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  test('listens on 127.0.0.1:<port>, binds vars and secrets, loads wasm', T, async () => {
    assert.equal(worker.url, `http://127.0.0.1:${port}`);
    const res = await new Browser().get(`${worker.url}/hello?x=1`);
    assert.equal(res.status, 200);
    assert.deepEqual(res.json, { url: `${worker.url}/hello?x=1`, add: 5, vars: { A: 'var-a', S: 'secret-s' } });
  });

  test('the Worker can fetch the origin on 127.0.0.1 and the IdP on localhost', T, async () => {
    const b = new Browser();
    let res = await b.get(`${worker.url}/probe?t=${encodeURIComponent(`${origin.url}/api/echo?q=1`)}`);
    assert.equal(res.status, 200, res.text);
    assert.equal(res.json.body, 'ping');
    assert.equal(origin.last().headers['x-probe'], '1');
    res = await b.get(`${worker.url}/probe?t=${encodeURIComponent(`${idp.issuer}/.well-known/openid-configuration`)}`);
    // POST to discovery: the provider answers, whatever the status; what matters is that it was reached.
    assert.equal(res.status, 200, res.text);
    assert.ok(res.text.length > 0);
  });

  test('KV namespace SESSIONS is bound', T, async () => {
    const res = await new Browser().get(`${worker.url}/kv`);
    assert.equal(res.text, 'v1');
  });

  test('console output is captured: JSON lines parsed, reasons listed, plain lines kept', T, async () => {
    await new Browser().get(`${worker.url}/logme`);
    const hit = await worker.waitForLog((e) => e.json?.path === '/logme');
    assert.equal(hit.json.reason, 'hello');
    assert.ok(worker.reasons().includes('probe_ok'));
    await worker.waitForLog((e) => e.line.includes('a plain stderr line'));
    await assert.rejects(worker.waitForLog((e) => e.json?.reason === 'never', { timeoutMs: 100 }));
  });

  test('dispatchFetch reaches the Worker without a socket', T, async () => {
    const res = await worker.dispatchFetch(`${worker.url}/dispatched`);
    assert.equal(res.status, 200);
    assert.equal((await res.json()).add, 5);
  });
});
