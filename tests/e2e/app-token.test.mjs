// Routes whose origin is called with the gateway's own identity (client-credentials grant, `origin_token: app`):
// the token the origin receives verifies against the provider's keys for the configured audience and the gateway's
// client_id; many requests share one grant (isolate memory + coalescing); short-lived tokens are renewed; provider
// failures are 502 with a reason code.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as jose from 'jose';
import { signInSession, skipReason, startStack } from '../support/stack.mjs';

const skip = skipReason();
const T = { timeout: 30_000, skip };

describe('origin_token: app', () => {
  let s;
  let jwks;

  before(async () => {
    if (skip) return;
    s = await startStack({
      vars: ({ idp }) => ({
        ROUTES: JSON.stringify([
          { prefix: '/m2m/', auth: 'public', origin_token: 'app', token_target: { resource: idp.resource } },
          {
            prefix: '/app/', auth: 'session', origin_token: 'app',
            token_target: { resource: idp.resource, scope: 'api.read' },
          },
          { prefix: '/', auth: 'session' },
        ]),
      }),
    });
    jwks = jose.createRemoteJWKSet(new URL(`${s.idp.issuer}/jwks`));
  }, { timeout: 90_000 });
  after(async () => { await s?.close(); });

  const grants = () => s.idp.counts().client_credentials ?? 0;
  const ccRequests = () => s.idp.tokenRequests().filter((r) => r.grantType === 'client_credentials').length;
  const received = () => s.origin.last().headers.authorization?.replace(/^Bearer /, '');

  async function verifyAppToken(token) {
    const { payload, protectedHeader } = await jose.jwtVerify(token, jwks, {
      issuer: s.idp.issuer, audience: s.idp.resource, typ: 'at+jwt',
    });
    assert.equal(payload.client_id, s.idp.clientId, 'issued to the gateway');
    assert.equal(payload.sub, s.idp.clientId, 'an application token: no user');
    return { payload, protectedHeader };
  }

  test('an app-only route: the origin gets a provider-signed token; 10 sequential + 20 parallel requests, one grant', T, async () => {
    const before0 = grants();
    const tokens = new Set();
    for (let i = 0; i < 10; i += 1) {
      const res = await fetch(`${s.gw}/m2m/hook`, { method: 'POST', headers: { authorization: 'Bearer forged' }, body: '{}' });
      assert.equal(res.status, 200);
      tokens.add(received());
    }
    const parallel = await Promise.all(Array.from({ length: 20 }, () => fetch(`${s.gw}/m2m/hook`)));
    assert.deepEqual(parallel.map((r) => r.status), Array(20).fill(200));
    for (const r of s.origin.requests().slice(-20)) tokens.add(r.headers.authorization?.replace(/^Bearer /, ''));
    assert.equal(grants() - before0, 1, 'exactly one client-credentials grant for 30 requests');
    assert.equal(tokens.size, 1, 'every request got the same token');
    const [token] = tokens;
    assert.notEqual(token, 'forged', "the client's Authorization never reaches the origin");
    await verifyAppToken(token);
    assert.equal(s.origin.last().headers['x-forwarded-user'], undefined, 'no user on an app-only route');
  });

  test('a signed-in route with the app token: the origin sees the user and the app token', T, async () => {
    const anonymous = await fetch(`${s.gw}/app/x`, { headers: { accept: 'application/json' } });
    assert.equal(anonymous.status, 401, 'the route still requires a session');
    const { b, tokens: userTokens } = await signInSession(s);
    const res = await b.get(`${s.gw}/app/x`);
    assert.equal(res.status, 200);
    const token = received();
    assert.notEqual(token, userTokens.access_token, "not the user's token");
    const { payload } = await verifyAppToken(token);
    assert.equal(payload.scope, 'api.read');
    assert.equal(s.origin.last().headers['x-forwarded-user'], 'alice');
    const tokenRequest = s.idp.tokenRequests().findLast((r) => r.grantType === 'client_credentials');
    assert.equal(tokenRequest.params.resource, s.idp.resource);
    assert.equal(tokenRequest.params.scope, 'api.read');
    assert.equal(tokenRequest.clientAuth, 'basic');
  });

  test('a burst of 100 parallel requests on a cold isolate makes one token-endpoint call', T, async () => {
    await s.restartWorker();
    const before0 = ccRequests();
    const burst = await Promise.all(Array.from({ length: 100 }, () => fetch(`${s.gw}/m2m/burst`)));
    assert.deepEqual([...new Set(burst.map((r) => r.status))], [200]);
    const calls = ccRequests() - before0;
    console.log(`# burst of 100 requests on an app route: ${calls} token-endpoint call(s)`);
    assert.equal(calls, 1);
  });

  test('a short-lived app token is renewed once it expires, never forwarded expired', T, async () => {
    await s.restartWorker();
    s.idp.setAccessTokenTtl(2);
    try {
      const r1 = await fetch(`${s.gw}/m2m/a`);
      assert.equal(r1.status, 200);
      const first = received();
      const { payload } = await verifyAppToken(first);
      const wait = payload.exp * 1000 + 1100 - Date.now();
      if (wait > 0) await new Promise((resolve) => { setTimeout(resolve, wait); });
      const before0 = grants();
      const r2 = await fetch(`${s.gw}/m2m/b`);
      assert.equal(r2.status, 200);
      const second = received();
      assert.notEqual(second, first, 'a new token after expiry');
      assert.equal(grants() - before0, 1);
      await verifyAppToken(second);
    } finally {
      s.idp.setAccessTokenTtl(null);
    }
  });

  test('the provider failing with no token cached is a 502 with a reason code', T, async () => {
    await s.restartWorker();
    s.idp.setFault({ token: '500' });
    try {
      const res = await fetch(`${s.gw}/m2m/x`, { headers: { accept: 'application/json' } });
      assert.equal(res.status, 502);
      assert.equal((await res.json()).error, 'origin_token_unavailable');
      await s.worker.waitForLog((e) => e.json?.reason === 'origin_token_unavailable');
    } finally {
      s.idp.setFault(null);
    }
  });
});
