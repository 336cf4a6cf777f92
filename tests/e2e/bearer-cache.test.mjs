// The verified-token cache, end to end: a repeated bearer token is served every time (the cache holds it after
// the first request), a token that differs from a cached one in any byte is judged on its own, route policy is
// applied on every hit, and a cached token whose key the provider hard-rotates out is refused as soon as the
// gateway sees the new key set. On a route taking two providers, a hit skips the parse too, yet a cached token
// counts only where its own provider is taken. Each scenario gets its own Worker: the cache lives in the isolate.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { skipReason, startStack, twoProviderRoutes } from '../support/stack.mjs';
import {
  callApi, echoed, expectInsufficientScope, expectInvalidToken, mint, startJwksProxy,
} from '../support/tokens.mjs';

const skip = skipReason();
const T = { timeout: 15_000, skip };

const ROUTES = JSON.stringify([
  { prefix: '/api/admin/', auth: 'bearer', scopes: ['api.admin'] },
  { prefix: '/api/', auth: 'bearer' },
]);

async function gatewayStack() {
  const s = await startStack({ vars: { ROUTES } });
  const jwks = await startJwksProxy(s.idp);
  return { s, jwks, close: async () => { await jwks.close(); await s.close(); } };
}

/** The token with one character of its signature (or, with part 1, its payload) changed. */
function altered(token, part = 2) {
  const parts = token.split('.');
  const p = parts[part];
  const i = Math.floor(p.length / 2);
  parts[part] = p.slice(0, i) + (p[i] === 'A' ? 'B' : 'A') + p.slice(i + 1);
  return parts.join('.');
}

describe('verified-token cache: repeated tokens', () => {
  let g;
  before(async () => { if (!skip) g = await gatewayStack(); }, { timeout: 30_000 });
  after(async () => { await g?.close(); });

  test('the same token is served on every request, alone and concurrently, as its own subject', T, async () => {
    const { s } = g;
    const rs = await mint(s.idp, { sub: 'repeat-rs' });
    const es = await mint(s.idp, { sub: 'repeat-es' }, { alg: 'ES256' });
    s.origin.reset();
    for (let i = 0; i < 10; i++) {
      assert.equal(echoed(await callApi(`${s.gw}/api/echo`, { token: rs })).headers['x-forwarded-user'], 'repeat-rs');
      assert.equal(echoed(await callApi(`${s.gw}/api/echo`, { token: es })).headers['x-forwarded-user'], 'repeat-es');
    }
    const burst = await Promise.all(Array.from({ length: 10 }, () => callApi(`${s.gw}/api/echo`, { token: rs })));
    for (const res of burst) assert.equal(echoed(res).headers['x-forwarded-user'], 'repeat-rs');
    assert.equal(s.origin.requests().length, 30);
  });

  test('a token one byte away from a cached one is refused and never reaches the origin', T, async () => {
    const { s } = g;
    const token = await mint(s.idp, { sub: 'cached' });
    echoed(await callApi(`${s.gw}/api/echo`, { token }));
    echoed(await callApi(`${s.gw}/api/echo`, { token }));
    s.origin.reset();
    expectInvalidToken(await callApi(`${s.gw}/api/echo`, { token: altered(token, 2) }), { what: 'altered signature' });
    expectInvalidToken(await callApi(`${s.gw}/api/echo`, { token: altered(token, 1) }), { what: 'altered payload' });
    assert.deepEqual(s.origin.requests(), []);
    echoed(await callApi(`${s.gw}/api/echo`, { token }));
  });

  test('route policy is checked on every hit: a cached token still gets 403 where its scope is missing', T, async () => {
    const { s } = g;
    const reader = await mint(s.idp, { sub: 'reader', scope: 'api.read' });
    echoed(await callApi(`${s.gw}/api/echo`, { token: reader }));
    s.origin.reset();
    expectInsufficientScope(await callApi(`${s.gw}/api/admin/echo`, { token: reader }), { scope: 'api.admin' });
    assert.deepEqual(s.origin.requests(), []);
    echoed(await callApi(`${s.gw}/api/echo`, { token: reader }));
    const admin = await mint(s.idp, { sub: 'admin', scope: 'api.read api.admin', scp: 'api.read api.admin' });
    assert.equal(echoed(await callApi(`${s.gw}/api/admin/echo`, { token: admin })).headers['x-forwarded-user'], 'admin');
  });
});

describe('verified-token cache: hard key rotation', () => {
  let g;
  before(async () => { if (!skip) g = await gatewayStack(); }, { timeout: 30_000 });
  after(async () => { await g?.close(); });

  test('a cached token is refused once the provider drops its key and the gateway sees the new set', T, async () => {
    const { s, jwks } = g;
    const oldRs = await mint(s.idp, { sub: 'old-rs', exp: Math.floor(Date.now() / 1000) + 3600 });
    const oldEs = await mint(s.idp, { sub: 'old-es' }, { alg: 'ES256' });
    for (let i = 0; i < 3; i++) {
      echoed(await callApi(`${s.gw}/api/echo`, { token: oldRs }));
      echoed(await callApi(`${s.gw}/api/echo`, { token: oldEs }));
    }
    assert.equal(jwks.count(), 1);

    await s.idp.rotateKeys({ graceful: false });
    // A token from the new key makes the gateway refetch the set, which no longer has the old keys.
    assert.equal(echoed(await callApi(`${s.gw}/api/echo`, { token: await mint(s.idp, { sub: 'new' }) }))
      .headers['x-forwarded-user'], 'new');
    assert.equal(jwks.count(), 2);
    s.origin.reset();
    expectInvalidToken(await callApi(`${s.gw}/api/echo`, { token: oldRs }), { what: 'cached token, RS256 key gone' });
    expectInvalidToken(await callApi(`${s.gw}/api/echo`, { token: oldEs }), { what: 'cached token, ES256 key gone' });
    expectInvalidToken(await callApi(`${s.gw}/api/echo`, { token: oldRs }), { what: 'and again' });
    assert.deepEqual(s.origin.requests(), []);
  });
});

describe('verified-token cache: a route of two providers', () => {
  let s;
  before(async () => { if (!skip) s = await startStack({ vars: { ROUTES: twoProviderRoutes() }, secondIdp: true }); }, { timeout: 60_000 });
  after(async () => { await s?.close(); });

  test('a partners token cached on the route of both reaches the origin as partners\' there, and only there', T, async () => {
    const token = await mint(s.idp2, { sub: 'partner-svc' });
    for (let i = 0; i < 3; i++) {
      const seen = echoed(await callApi(`${s.gw}/api/both/x`, { token })).headers;
      assert.equal(seen['x-forwarded-provider'], 'partners', `request ${i}`);
      assert.equal(seen['x-forwarded-user'], 'partner-svc');
    }
    s.origin.reset();
    expectInvalidToken(await callApi(`${s.gw}/api/a/x`, { token }), { what: 'cached partners token, default route' });
    assert.deepEqual(s.origin.requests(), []);
    await s.worker.waitForLog((e) => e.json?.reason === 'issuer_unknown');
    assert.equal(echoed(await callApi(`${s.gw}/api/b/x`, { token })).headers['x-forwarded-provider'], 'partners');
    assert.equal(echoed(await callApi(`${s.gw}/api/both/x`, { token })).headers['x-forwarded-provider'], 'partners');
  });

  test('a cached partners token whose key the partners provider drops is refused on the route of both', T, async () => {
    const old = await mint(s.idp2, { sub: 'old-key' });
    for (let i = 0; i < 2; i++) echoed(await callApi(`${s.gw}/api/both/x`, { token: old }));
    await s.idp2.rotateKeys({ graceful: false });
    // A token from the new key makes the gateway refetch the partners set, which no longer has the old key.
    const fresh = await mint(s.idp2, { sub: 'new-key' });
    assert.equal(echoed(await callApi(`${s.gw}/api/both/x`, { token: fresh })).headers['x-forwarded-user'], 'new-key');
    s.origin.reset();
    expectInvalidToken(await callApi(`${s.gw}/api/both/x`, { token: old }), { what: 'cached token, key gone' });
    expectInvalidToken(await callApi(`${s.gw}/api/b/x`, { token: old }), { what: 'and on the partners route' });
    assert.deepEqual(s.origin.requests(), []);
  });
});
