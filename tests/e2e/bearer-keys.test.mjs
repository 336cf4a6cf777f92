// Bearer routes and the IdP's signing keys: rotation without a restart (graceful and hard), a JWKS outage
// with keys cached (nothing changes) and without (502/503/504, never blamed on the token), and a flood of
// unknown kids (at most one refetch per cooldown). JWKS requests are counted by a proxy in front of the
// IdP's JWKS (tokens.mjs startJwksProxy; idp.mjs has no counter of its own). Each scenario gets its own
// Worker, since the key cache lives in the isolate and the refetch cooldown is 10 s.
import { after, before, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { skipReason, startStack } from '../support/stack.mjs';
import {
  callApi, echoed, expectInvalidToken, expectNot5xx, generatedKey, idpKey, mint, startJwksProxy,
} from '../support/tokens.mjs';

const skip = skipReason();
const T = { timeout: 10_000, skip };

const ROUTES = JSON.stringify([{ prefix: '/api/', auth: 'bearer' }]);

async function gatewayStack() {
  const s = await startStack({ vars: { ROUTES } });
  const jwks = await startJwksProxy(s.idp);
  return { s, jwks, close: async () => { await jwks.close(); await s.close(); } };
}

describe('keys: graceful rotation (new key published first)', () => {
  let g;
  before(async () => { if (!skip) g = await gatewayStack(); }, { timeout: 30_000 });
  after(async () => { await g?.close(); });

  test('old tokens keep working, tokens from the new key work at once, one extra JWKS fetch', T, async () => {
    const { s, jwks } = g;
    const oldToken = await mint(s.idp, { sub: 'old' });
    echoed(await callApi(`${s.gw}/api/echo`, { token: oldToken }));
    assert.equal(jwks.count(), 1, 'the first token fetches the JWKS once');
    const oldKid = idpKey(s.idp).kid;

    await s.idp.rotateKeys({ graceful: true });
    assert.notEqual(idpKey(s.idp).kid, oldKid);
    assert.ok(s.idp.keys.some((k) => k.kid === oldKid), 'graceful keeps the old key published');

    const newRs = await mint(s.idp, { sub: 'new-rs' });
    const newEs = await mint(s.idp, { sub: 'new-es' }, { alg: 'ES256' });
    assert.equal(echoed(await callApi(`${s.gw}/api/echo`, { token: newRs })).headers['x-forwarded-user'], 'new-rs');
    assert.equal(echoed(await callApi(`${s.gw}/api/echo`, { token: newEs })).headers['x-forwarded-user'], 'new-es');
    assert.equal(echoed(await callApi(`${s.gw}/api/echo`, { token: oldToken })).headers['x-forwarded-user'], 'old');
    assert.equal(jwks.count(), 2, 'an unknown kid causes one refetch, which finds both new keys');
  });
});

describe('keys: a burst of tokens from a just-rotated key', () => {
  let g;
  before(async () => { if (!skip) g = await gatewayStack(); }, { timeout: 30_000 });
  after(async () => { await g?.close(); });

  test('10 concurrent requests with the new kid share one refetch and all pass', T, async () => {
    const { s, jwks } = g;
    echoed(await callApi(`${s.gw}/api/echo`, { token: await mint(s.idp) }));
    await s.idp.rotateKeys({ graceful: true });
    const tokens = await Promise.all(Array.from({ length: 10 }, (_, i) => mint(s.idp, { sub: `n${i}` })));
    const answers = await Promise.all(tokens.map((token) => callApi(`${s.gw}/api/echo`, { token })));
    const statuses = answers.map((r) => r.status).join(',');
    for (const res of answers) { expectNot5xx(res, `rotation burst (statuses ${statuses})`); echoed(res); }
    assert.equal(jwks.count(), 2);
  });
});

describe('keys: hard rotation (old key dropped)', () => {
  let g;
  before(async () => { if (!skip) g = await gatewayStack(); }, { timeout: 30_000 });
  after(async () => { await g?.close(); });

  test('the new key works at once; once the set is refetched, the old key\'s tokens get 401', T, async () => {
    const { s, jwks } = g;
    const oldToken = await mint(s.idp, { sub: 'old' });
    const oldEs = await mint(s.idp, { sub: 'old-es' }, { alg: 'ES256' });
    echoed(await callApi(`${s.gw}/api/echo`, { token: oldToken }));

    await s.idp.rotateKeys({ graceful: false });
    const newToken = await mint(s.idp, { sub: 'new' });
    assert.equal(echoed(await callApi(`${s.gw}/api/echo`, { token: newToken })).headers['x-forwarded-user'], 'new');
    s.origin.reset();

    expectInvalidToken(await callApi(`${s.gw}/api/echo`, { token: oldToken }), { what: 'old RS256 key' });
    expectInvalidToken(await callApi(`${s.gw}/api/echo`, { token: oldEs }), { what: 'old ES256 key' });
    assert.deepEqual(s.origin.requests(), []);
    assert.equal(jwks.count(), 2);
    echoed(await callApi(`${s.gw}/api/echo`, { token: await mint(s.idp, {}, { alg: 'ES256' }) }));
  });
});

// One Worker per fault: after a failed refresh the cache backs off for 10 s, so a second fault in the same
// isolate would not be tried at all.
for (const [name, breakIt] of [
  ['connection dropped', (x) => x.jwks.setDown(true)],
  ['HTTP 500', (x) => x.s.idp.setFault({ jwks: '500' })],
  ['garbage', (x) => x.s.idp.setFault({ jwks: 'garbage' })],
  ['an empty key set', (x) => x.s.idp.setFault({ jwks: 'empty-jwks' })],
]) {
  describe(`keys: JWKS outage (${name}) after the keys are cached`, () => {
    let g;
    before(async () => { if (!skip) g = await gatewayStack(); }, { timeout: 30_000 });
    after(async () => { await g?.close(); });

    test('valid tokens still pass; an unknown kid (which tries a refetch) is 401, not 5xx', T, async () => {
      const { s, jwks } = g;
      echoed(await callApi(`${s.gw}/api/echo`, { token: await mint(s.idp) }));
      breakIt(g);
      echoed(await callApi(`${s.gw}/api/echo`, { token: await mint(s.idp, { sub: 'during-outage' }) }));
      s.origin.reset();
      const stranger = await mint(s.idp, {}, { header: { kid: `unknown-${crypto.randomUUID()}` } });
      expectInvalidToken(await callApi(`${s.gw}/api/echo`, { token: stranger }), { what: 'unknown kid during outage' });
      assert.deepEqual(s.origin.requests(), []);
      assert.equal(jwks.count(), 2, 'the unknown kid should have tried one refetch');
      echoed(await callApi(`${s.gw}/api/echo`, { token: await mint(s.idp) }));
      echoed(await callApi(`${s.gw}/api/echo`, { token: await mint(s.idp, {}, { alg: 'ES256' }) }));
    });
  });
}

describe('keys: JWKS unavailable before anything is cached', () => {
  let g;
  before(async () => { if (!skip) g = await gatewayStack(); }, { timeout: 30_000 });
  after(async () => { await g?.close(); });
  beforeEach(() => { g?.s.idp.setFault(null); g?.jwks.setDown(false); g?.s.origin.reset(); });

  for (const [name, breakIt] of [
    ['connection dropped', (x) => x.jwks.setDown(true)],
    ['HTTP 500', (x) => x.s.idp.setFault({ jwks: '500' })],
    ['garbage', (x) => x.s.idp.setFault({ jwks: 'garbage' })],
    ['an empty key set', (x) => x.s.idp.setFault({ jwks: 'empty-jwks' })],
  ]) {
    test(`JWKS ${name} → 502/503/504 (the provider's fault, not invalid_token), nothing forwarded`, T, async () => {
      const { s } = g;
      breakIt(g);
      const res = await callApi(`${s.gw}/api/echo`, { token: await mint(s.idp) });
      assert.ok([502, 503, 504].includes(res.status), `${res.status} ${res.www} ${res.text.slice(0, 200)}`);
      assert.doesNotMatch(res.www ?? '', /invalid_token/, 'a provider outage must not blame the token');
      assert.deepEqual(s.origin.requests(), []);
    });
  }

  test('a bad token is still a 401 while the JWKS is down (no key is needed to refuse it)', T, async () => {
    const { s } = g;
    g.jwks.setDown(true);
    for (const token of ['x.y.z', 'not-a-jwt', `${Buffer.from('{"alg":"none"}').toString('base64url')}.e30.`]) {
      const res = await callApi(`${s.gw}/api/echo`, { token });
      expectInvalidToken(res, { what: token });
    }
  });

  test('once the JWKS is back, the next request succeeds (no waiting out a timer)', T, async () => {
    const { s } = g;
    echoed(await callApi(`${s.gw}/api/echo`, { token: await mint(s.idp) }));
  });
});

describe('keys: discovery unavailable before anything is cached', () => {
  let g;
  before(async () => { if (!skip) g = await gatewayStack(); }, { timeout: 30_000 });
  after(async () => { await g?.close(); });

  for (const fault of ['down', '500', 'garbage']) {
    test(`discovery ${fault} → 502/503/504 for a valid token, nothing forwarded; 401 stays 401 for a bad one`, T, async () => {
      const { s } = g;
      s.idp.setFault({ discovery: fault });
      try {
        const res = await callApi(`${s.gw}/api/echo`, { token: await mint(s.idp) });
        assert.ok([502, 503, 504].includes(res.status), `${res.status} ${res.www} ${res.text.slice(0, 200)}`);
        assert.doesNotMatch(res.www ?? '', /invalid_token/);
        expectInvalidToken(await callApi(`${s.gw}/api/echo`, { token: 'a.b.c' }));
        assert.deepEqual(s.origin.requests(), []);
      } finally {
        s.idp.setFault(null);
      }
    });
  }

  test('discovery back → the next request is forwarded', T, async () => {
    echoed(await callApi(`${g.s.gw}/api/echo`, { token: await mint(g.s.idp) }));
  });
});

async function floodTokens(idp, n) {
  const foreign = await generatedKey('RS256', 'flood');
  const tokens = [];
  for (let i = 0; i < n; i += 1) {
    const kid = crypto.randomBytes(12).toString('base64url');
    // Half signed by the IdP's key, half by a stranger's: neither may reach the origin.
    tokens.push(i % 2 ? await mint(idp, {}, { header: { kid } }) : await mint(idp, {}, { key: foreign, header: { kid } }));
  }
  return tokens;
}

describe('keys: kid flood', () => {
  let g;
  before(async () => { if (!skip) g = await gatewayStack(); }, { timeout: 30_000 });
  after(async () => { await g?.close(); });

  test('50 tokens with random unknown kids, one after the other, cost at most one refetch; valid tokens keep working', T, async () => {
    const { s, jwks } = g;
    echoed(await callApi(`${s.gw}/api/echo`, { token: await mint(s.idp) }));
    assert.equal(jwks.count(), 1);
    s.origin.reset();
    for (const token of await floodTokens(s.idp, 50)) {
      expectInvalidToken(await callApi(`${s.gw}/api/echo`, { token }), { what: 'flood' });
    }
    assert.deepEqual(s.origin.requests(), []);
    assert.ok(jwks.count() <= 2, `${jwks.count()} JWKS fetches for 50 unknown kids`);
    echoed(await callApi(`${s.gw}/api/echo`, { token: await mint(s.idp, { sub: 'after-flood' }) }));
    assert.ok(jwks.count() <= 2, `${jwks.count()} JWKS fetches`);
  });
});

describe('keys: concurrent requests share one JWKS fetch (and each still gets its own answer)', () => {
  test('a burst of 25 unknown kids at once: all 401 (never 5xx), at most one refetch', T, async () => {
    const g = await gatewayStack();
    try {
      const { s, jwks } = g;
      echoed(await callApi(`${s.gw}/api/echo`, { token: await mint(s.idp) }));
      s.origin.reset();
      const tokens = await floodTokens(s.idp, 25);
      const burst = await Promise.all(tokens.map((token) => callApi(`${s.gw}/api/echo`, { token })));
      const statuses = burst.map((r) => r.status).join(',');
      for (const res of burst) expectInvalidToken(res, { what: `flood burst (statuses ${statuses})` });
      assert.deepEqual(s.origin.requests(), []);
      assert.ok(jwks.count() <= 2, `${jwks.count()} JWKS fetches`);
    } finally {
      await g.close();
    }
  });

  test('a burst of 20 valid tokens on a cold isolate: all forwarded, one JWKS fetch', T, async () => {
    const g = await gatewayStack();
    try {
      const tokens = await Promise.all(Array.from({ length: 20 }, (_, i) => mint(g.s.idp, { sub: `u${i}` }, { alg: i % 2 ? 'ES256' : 'RS256' })));
      const answers = await Promise.all(tokens.map((token) => callApi(`${g.s.gw}/api/echo`, { token })));
      const statuses = answers.map((r) => r.status).join(',');
      for (const res of answers) { expectNot5xx(res, `cold burst (statuses ${statuses})`); echoed(res); }
      assert.equal(g.jwks.count(), 1, `${g.jwks.count()} JWKS fetches for one cold burst`);
    } finally {
      await g.close();
    }
  });
});
