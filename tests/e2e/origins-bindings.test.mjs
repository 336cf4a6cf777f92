// Origins that are bindings (issue 11, item 1): a static site from the Worker's own assets and an
// internal API behind a service binding, both protected exactly like an HTTP origin.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { Browser } from '../support/browser.mjs';
import { REPO_ROOT, startProviderlessWorker } from '../support/worker.mjs';
import { describeHops, signInSession, skipReason, startStack } from '../support/stack.mjs';

const skip = skipReason();
const T = { timeout: 10_000, skip };
const ASSETS = path.join(REPO_ROOT, 'public');
const ROUTES = JSON.stringify([
  { prefix: '/', auth: 'session', origin: 'binding:ASSETS' },
  { prefix: '/api/', auth: 'session' },
  { prefix: '/internal/', auth: 'session_or_bearer', origin: 'binding:INTERNAL_API' },
]);

// The internal API: a second Worker, reachable only through the gateway's service binding. It
// answers with what it received.
const INTERNAL_API = `export default {
  async fetch(request) {
    return Response.json({ internal: true, url: request.url, headers: Object.fromEntries(request.headers) });
  },
};`;

const WORKER = {
  assets: { directory: ASSETS, binding: 'ASSETS' },
  services: { INTERNAL_API: 'internal-api' },
  workers: [{ name: 'internal-api', script: INTERNAL_API }],
};

describe('origins that are bindings: assets and a service binding', () => {
  let s;
  let alice;

  before(async () => {
    if (skip) return;
    s = await startStack({ vars: { ROUTES }, worker: WORKER });
    alice = await signInSession(s, { path: '/' });
  }, { timeout: 30_000 });

  after(async () => { await s?.close(); });

  test('a signed-out navigation to an asset is sent to sign in, and gets no file', T, async () => {
    for (const file of ['/', '/index.html', '/app.js']) {
      const res = await new Browser().request(`${s.gw}${file}`, { navigate: true });
      assert.equal(res.status, 302, `${file}: ${res.text.slice(0, 300)}`);
      assert.ok(res.location.startsWith(s.idp.issuer), res.location);
      assert.doesNotMatch(res.text, /protected static page/);
    }
  });

  test('a signed-out fetch() of an asset is a 401, never the file', T, async () => {
    for (const file of ['/index.html', '/app.js', '/']) {
      const res = await new Browser().get(`${s.gw}${file}`);
      assert.equal(res.status, 401, `${file}: ${res.text.slice(0, 300)}`);
      assert.doesNotMatch(res.text, /protected static page|auth\/me/, file);
    }
    const stale = await new Browser().get(`${s.gw}/app.js`, { headers: { cookie: '__Host-edgeguard=forged' } });
    assert.equal(stale.status, 401, 'a forged cookie gets no asset');
  });

  test('signed in, the asset is served from the Worker\'s own assets, / as index.html', T, async () => {
    const page = await alice.b.request(`${s.gw}/index.html`, { navigate: true });
    assert.equal(page.status, 307, 'the assets binding sends /index.html to /, as Cloudflare does');
    assert.equal(new URL(page.location, s.gw).pathname, '/');
    const script = await alice.b.get(`${s.gw}/app.js`);
    assert.equal(script.status, 200);
    assert.match(script.text, /fetch\(url/);
    const root = await alice.b.request(`${s.gw}/`, { navigate: true });
    assert.equal(root.status, 200, describeHops([root]));
    assert.match(root.text, /A protected static page/);
    const api = await alice.b.get(`${s.gw}/api/hello`);
    assert.equal(api.status, 200, 'the JSON API still goes to the HTTP origin');
    assert.equal(JSON.parse(api.text).headers['x-forwarded-user'], 'alice');
  });

  test('the service binding gets the bearer token and identity, never the client\'s spoofed ones', T, async () => {
    const res = await alice.b.get(`${s.gw}/internal/orders?id=7`, {
      headers: { 'x-forwarded-user': 'mallory', 'x-forwarded-email': 'mallory@evil.test' },
    });
    assert.equal(res.status, 200, res.text.slice(0, 300));
    const seen = JSON.parse(res.text);
    assert.equal(seen.internal, true);
    assert.equal(new URL(seen.url).pathname + new URL(seen.url).search, '/internal/orders?id=7');
    assert.equal(seen.headers.authorization, `Bearer ${alice.tokens.access_token}`);
    assert.equal(seen.headers['x-forwarded-user'], 'alice');
    assert.equal(seen.headers['x-forwarded-email'], 'alice@example.com');
    assert.doesNotMatch(seen.headers.cookie ?? '', /edgeguard/, 'the session cookie reached the binding');
    assert.equal(s.origin.requests().filter((r) => r.path.startsWith('/internal/')).length, 0);
  });

  test('a bearer caller reaches the service binding with its own token; a bad token does not', T, async () => {
    const token = alice.tokens.access_token;
    const res = await fetch(`${s.gw}/internal/x`, { headers: { authorization: `Bearer ${token}`, 'x-forwarded-user': 'mallory' } });
    assert.equal(res.status, 200);
    const seen = await res.json();
    assert.equal(seen.headers.authorization, `Bearer ${token}`);
    assert.equal(seen.headers['x-forwarded-user'], 'alice');
    const bad = await fetch(`${s.gw}/internal/x`, { headers: { authorization: 'Bearer junk' } });
    assert.equal(bad.status, 401);
    assert.equal((await bad.text()).includes('internal'), false);
  });
});

async function gatewayWith(routes, worker) {
  return startProviderlessWorker({ vars: { ROUTES: JSON.stringify(routes) }, ...worker });
}

describe('bindings at start-up, and why run_worker_first', () => {
  test('a route naming a binding the Worker lacks is a 500 naming ROUTES and the binding', T, async () => {
    const w = await gatewayWith([{ prefix: '/', origin: 'binding:ASSETS' }, { prefix: '/x/', origin: 'binding:NOPE' }], {});
    try {
      const res = await fetch(`${w.url}/auth/health`);
      const text = await res.text();
      assert.equal(res.status, 500, text.slice(0, 300));
      assert.match(text, /ROUTES/);
      assert.match(text, /binding:ASSETS/);
      assert.match(text, /binding:NOPE/);
      assert.match(text, /\[assets\]|\[\[services\]\]/);
    } finally {
      await w.close();
    }
  });

  test('without run_worker_first the runtime serves assets without running the gateway: the page leaks', T, async () => {
    const w = await gatewayWith([{ prefix: '/', origin: 'binding:ASSETS' }], {
      assets: { directory: ASSETS, binding: 'ASSETS', runWorkerFirst: false },
    });
    try {
      const leaked = await fetch(`${w.url}/`, { redirect: 'manual' });
      assert.equal(leaked.status, 200, 'the file is served to a signed-out client');
      assert.match(await leaked.text(), /A protected static page/);
      assert.deepEqual(w.reasons(), [], 'the gateway never ran');
    } finally {
      await w.close();
    }
  });
});
