// Rate limits on the gateway's own endpoints (issue 11, item 4): with the Workers rate-limiting
// binding AUTH_RATE_LIMIT bound, each client IP (CF-Connecting-IP) gets a budget on /auth/login,
// /auth/callback and /auth/backchannel-logout; over it, 429 + Retry-After and a log line. Without
// the binding nothing changes. And per-route limits: a route's `rate_limit` names a binding and a
// key (sub, client_id or ip), counted after authentication.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startProviderlessWorker } from '../support/worker.mjs';
import { skipReason, startStack } from '../support/stack.mjs';
import { mint } from '../support/tokens.mjs';

const skip = skipReason();
const T = { timeout: 10_000, skip };
const LIMIT = 3;

// No provider needed: a login that cannot reach one answers 502, which still counts.
const gateway = (options) => startProviderlessWorker(options);

const from = (ip) => ({ 'cf-connecting-ip': ip, accept: 'application/json' });

describe('rate limits on the gateway endpoints', () => {
  let limited;
  let unlimited;

  before(async () => {
    if (skip) return;
    limited = await gateway({ ratelimits: { AUTH_RATE_LIMIT: { namespace_id: '1001', simple: { limit: LIMIT, period: 60 } } } });
    unlimited = await gateway({});
  }, { timeout: 30_000 });

  after(async () => { await Promise.allSettled([limited?.close(), unlimited?.close()]); });

  test('one client over its budget on /auth/login gets 429 + Retry-After and a log reason', T, async () => {
    const statuses = [];
    for (let i = 0; i < LIMIT + 2; i += 1) {
      // eslint-disable-next-line no-await-in-loop
      const res = await fetch(`${limited.url}/auth/login?rd=/`, { headers: from('203.0.113.7'), redirect: 'manual' });
      statuses.push(res.status);
      if (res.status === 429) {
        assert.equal(res.headers.get('retry-after'), '60');
        assert.equal(JSON.parse(await res.text()).error, 'rate_limited');
      } else await res.arrayBuffer();
    }
    assert.deepEqual(statuses.slice(LIMIT), [429, 429], String(statuses));
    assert.ok(statuses.slice(0, LIMIT).every((s) => s !== 429), String(statuses));
    await limited.waitForLog((e) => e.json?.reason === 'rate_limited' && e.json?.status === 429);
  });

  test('the callback and back-channel logout count too (also spelt with escapes); other paths never do', T, async () => {
    const ip = '203.0.113.8';
    for (let i = 0; i < LIMIT; i += 1) {
      // eslint-disable-next-line no-await-in-loop
      await (await fetch(`${limited.url}/auth/callback?code=a&state=b`, { headers: from(ip), redirect: 'manual' })).arrayBuffer();
    }
    const escaped = await fetch(`${limited.url}/auth/%63allback?code=a&state=b`, { headers: from(ip), redirect: 'manual' });
    assert.equal(escaped.status, 429);
    const logout = await fetch(`${limited.url}/auth/backchannel-logout`, {
      method: 'POST', headers: { ...from(ip), 'content-type': 'application/x-www-form-urlencoded' }, body: 'logout_token=x',
    });
    assert.equal(logout.status, 429);
    for (const path of ['/auth/health', '/auth/me']) {
      // eslint-disable-next-line no-await-in-loop
      const res = await fetch(`${limited.url}${path}`, { headers: from(ip) });
      assert.notEqual(res.status, 429, path);
      await res.arrayBuffer();
    }
  });

  test('another client IP keeps its own budget', T, async () => {
    const res = await fetch(`${limited.url}/auth/login?rd=/`, { headers: from('198.51.100.9'), redirect: 'manual' });
    assert.notEqual(res.status, 429);
  });

  test('without the binding nothing is limited', T, async () => {
    for (let i = 0; i < LIMIT + 3; i += 1) {
      // eslint-disable-next-line no-await-in-loop
      const res = await fetch(`${unlimited.url}/auth/login?rd=/`, { headers: from('203.0.113.7'), redirect: 'manual' });
      assert.notEqual(res.status, 429);
      await res.arrayBuffer();
    }
    assert.ok(!unlimited.reasons().includes('rate_limited'));
  });
});

// Per-route limits (the `rate_limit` route field): counted per caller after authentication, by the
// binding the route names.
describe('per-route rate limits', () => {
  const ROUTE_LIMIT = 3;
  let s;

  before(async () => {
    if (skip) return;
    s = await startStack({
      vars: {
        ROUTES: JSON.stringify([
          { prefix: '/', auth: 'session' },
          { prefix: '/api/', auth: 'bearer', rate_limit: { binding: 'API_RATE_LIMIT', key: 'client_id' } },
          { prefix: '/free/', auth: 'bearer' },
          { prefix: '/hooks/', auth: 'public', rate_limit: { binding: 'API_RATE_LIMIT', key: 'ip' } },
        ]),
      },
      worker: { ratelimits: { API_RATE_LIMIT: { namespace_id: '1002', simple: { limit: ROUTE_LIMIT, period: 60 } } } },
    });
  }, { timeout: 30_000 });

  after(async () => { await s?.close(); });

  const call = async (path, token) => {
    const res = await fetch(`${s.gw}${path}`, { headers: { authorization: `Bearer ${token}`, accept: 'application/json' } });
    return { status: res.status, retryAfter: res.headers.get('retry-after'), body: await res.text() };
  };

  test('one client application over its budget gets 429 + Retry-After; the origin never sees those requests', T, async () => {
    const appA = await mint(s.idp, { sub: 'user-1', client_id: 'app-a' });
    const appAOtherUser = await mint(s.idp, { sub: 'user-2', client_id: 'app-a' });
    s.origin.reset();
    const statuses = [];
    for (let i = 0; i < ROUTE_LIMIT + 1; i += 1) {
      // eslint-disable-next-line no-await-in-loop
      statuses.push((await call(`/api/orders?i=${i}`, i % 2 ? appAOtherUser : appA)).status);
    }
    assert.deepEqual(statuses, [200, 200, 200, 429], 'counted by client_id, whichever user');
    const limited = await call('/api/orders', appA);
    assert.equal(limited.status, 429);
    assert.equal(limited.retryAfter, '60');
    assert.equal(JSON.parse(limited.body).error, 'rate_limited');
    assert.equal(s.origin.requests().length, ROUTE_LIMIT);
    await s.worker.waitForLog((e) => e.json?.reason === 'rate_limited' && e.json?.path === '/api/orders');

    const appB = await mint(s.idp, { sub: 'user-1', client_id: 'app-b' });
    assert.equal((await call('/api/orders', appB)).status, 200, 'another client keeps its own budget');
    assert.equal((await call('/free/x', appA)).status, 200, 'a route without rate_limit is never counted');
  });

  test('a public route keyed by ip counts each client address on its own', T, async () => {
    const hook = (ip) => fetch(`${s.gw}/hooks/event`, { method: 'POST', headers: from(ip), body: '{}' }).then((r) => r.status);
    const statuses = [];
    // eslint-disable-next-line no-await-in-loop
    for (let i = 0; i < ROUTE_LIMIT + 1; i += 1) statuses.push(await hook('192.0.2.10'));
    assert.deepEqual(statuses, [200, 200, 200, 429]);
    assert.equal(await hook('192.0.2.11'), 200, 'another address keeps its own budget');
  });

  test('a request that fails authentication is refused as before, not counted', T, async () => {
    const res = await fetch(`${s.gw}/api/orders`, { headers: { authorization: 'Bearer not-a-jwt' } });
    assert.equal(res.status, 401);
  });

  test('a route naming a binding the Worker lacks is a configuration error naming it', T, async () => {
    const broken = await gateway({
      vars: {
        ROUTES: JSON.stringify([{ prefix: '/', rate_limit: { binding: 'MISSING_LIMIT', key: 'sub' } }]),
      },
    });
    try {
      const res = await fetch(`${broken.url}/auth/health`);
      assert.equal(res.status, 500);
      const text = await res.text();
      assert.match(text, /ROUTES/);
      assert.match(text, /MISSING_LIMIT/);
    } finally {
      await broken.close();
    }
  });
});
