// 3. Every bad sign-in answer is refused with a 4xx page: no session cookie, nothing forwarded.
//    ID-token attacks go through the IdP's token hook (the ID token comes from the token endpoint,
//    never from the browser); callback attacks tamper with the redirect back to the gateway.
import { after, before, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import * as jose from 'jose';
import { Browser } from '../support/browser.mjs';
import {
  SESSION_COOKIE, TX_COOKIE_PREFIX, describeHops, sessionCookieSet, skipReason, startStack,
} from '../support/stack.mjs';

const skip = skipReason();
const T = { timeout: 10_000, skip };

describe('callback rejections', () => {
  let s;

  before(async () => {
    if (skip) return;
    s = await startStack();
  }, { timeout: 30_000 });

  after(async () => { await s?.close(); });

  beforeEach(() => {
    if (!s) return;
    s.idp.setTokenHook(null);
    s.origin.reset();
  });

  function assertRefused(hop, hops, { statuses = [400] } = {}) {
    assert.ok(hop, `no callback hop:\n${describeHops(hops)}`);
    assert.ok(statuses.includes(hop.status), `callback answered ${hop.status} (want ${statuses.join('/')}):\n${hop.text.slice(0, 400)}`);
    assert.match(hop.contentType, /text\/html/, 'a person should get a page, not raw data');
    assert.equal(sessionCookieSet(hops), null, `a ${SESSION_COOKIE} cookie was set`);
    assert.ok([300, 301, 302, 303, 307, 308].every((c) => c !== hop.status));
    assert.deepEqual(s.origin.requests().map((r) => r.url), [], 'the origin received a request');
  }

  test('control: an untouched sign-in succeeds (so the refusals below mean something)', T, async () => {
    const b = new Browser();
    const r = await b.signIn(`${s.gw}/control`);
    assert.equal(r.final.status, 200, describeHops(r.hops));
    assert.ok(sessionCookieSet(r.hops));
    assert.equal(s.origin.requests().length, 1);
  });

  // Each case rewrites the ID token in the /token answer; the code exchange itself succeeded.
  const idTokenCases = {
    'wrong nonce': (t, jwt) => t.resign(jwt, ({ payload }) => { payload.nonce = 'not-the-nonce-we-sent'; }),
    'nonce missing': (t, jwt) => t.resign(jwt, ({ payload }) => { delete payload.nonce; }),
    'wrong iss': (t, jwt) => t.resign(jwt, ({ payload }) => { payload.iss = 'https://evil.example'; }),
    'iss with trailing slash': (t, jwt) => t.resign(jwt, ({ payload }) => { payload.iss = `${payload.iss}/`; }),
    'wrong aud': (t, jwt) => t.resign(jwt, ({ payload }) => { payload.aud = 'someone-else'; }),
    'aud lists us but azp names another client': (t, jwt) => t.resign(jwt, ({ payload }) => {
      payload.aud = [payload.aud, 'someone-else']; payload.azp = 'someone-else';
    }),
    'missing sub': (t, jwt) => t.resign(jwt, ({ payload }) => { delete payload.sub; }),
    'missing iat': (t, jwt) => t.resign(jwt, ({ payload }) => { delete payload.iat; }),
    'missing exp': (t, jwt) => t.resign(jwt, ({ payload }) => { delete payload.exp; }),
    'expired (exp 5 minutes ago, beyond the 60 s skew)': (t, jwt) => t.resign(jwt, ({ payload }) => {
      payload.iat = t.now() - 900; payload.exp = t.now() - 300;
    }),
    'iat one hour in the future': (t, jwt) => t.resign(jwt, ({ payload }) => {
      payload.iat = t.now() + 3600; payload.exp = t.now() + 7200;
    }),
    'nbf one hour in the future': (t, jwt) => t.resign(jwt, ({ payload }) => { payload.nbf = t.now() + 3600; }),
    'bad signature': (t, jwt) => t.spoil(jwt),
    'payload changed, signature kept': (t, jwt) => t.tamper(jwt, ({ payload }) => { payload.sub = 'bob'; }),
    'alg none': (t, jwt) => t.resign(jwt, () => {}, { alg: 'none' }),
    'signed by an unknown key (kid not in JWKS)': (t, jwt) => t.resign(jwt, () => {}, { key: 'foreign' }),
    'unknown key reusing a published kid': async (t, jwt) => {
      const { header, payload } = t.decode(jwt);
      const { privateKey } = await jose.generateKeyPair('RS256');
      return new jose.SignJWT(payload).setProtectedHeader({ alg: 'RS256', kid: header.kid, typ: 'JWT' }).sign(privateKey);
    },
    'HS256 keyed with the RSA public key (alg confusion)': async (t, jwt) => {
      const { header, payload } = t.decode(jwt);
      const jwk = s.idp.publicJwks.keys.find((k) => k.kid === header.kid);
      const pem = crypto.createPublicKey({ key: jwk, format: 'jwk' }).export({ type: 'spki', format: 'pem' });
      return new jose.SignJWT(payload).setProtectedHeader({ alg: 'HS256', kid: header.kid }).sign(Buffer.from(pem));
    },
    'embedded jwk header with its own key': async (t, jwt) => {
      const { payload } = t.decode(jwt);
      const { privateKey, publicKey } = await jose.generateKeyPair('RS256', { extractable: true });
      const jwk = await jose.exportJWK(publicKey);
      return new jose.SignJWT(payload).setProtectedHeader({ alg: 'RS256', jwk }).sign(privateKey);
    },
    'id_token missing from the token answer': () => undefined,
  };
  // A token answer without an ID token is the provider misbehaving: 502 is as right as 400 there.
  const statusesFor = { 'id_token missing from the token answer': [400, 502] };

  for (const [name, forge] of Object.entries(idTokenCases)) {
    test(`ID token refused: ${name}`, T, async () => {
      let hookRan = 0;
      s.idp.setTokenHook(async (body, t, info) => {
        if (info.grantType !== 'authorization_code') return;
        hookRan += 1;
        const forged = await forge(t, body.id_token);
        if (forged === undefined) delete body.id_token;
        else body.id_token = forged;
      });
      const exchanges = s.idp.counts().authorization_code ?? 0;
      const b = new Browser();
      const { hops, callback } = await b.signIn(`${s.gw}/secret`);
      assert.equal(hookRan, 1, `the code exchange did not happen as expected:\n${describeHops(hops)}`);
      assert.equal(s.idp.counts().authorization_code, exchanges + 1);
      assertRefused(callback, hops, { statuses: statusesFor[name] ?? [400] });
      assert.equal(b.jar.get(SESSION_COOKIE), undefined);
    });
  }

  // Callback tampering: stop before the browser hits /auth/callback, then send our own version.
  async function pendingCallback(path = '/secret') {
    const b = new Browser();
    const r = await b.signIn(`${s.gw}${path}`, { stopBeforeCallback: true });
    assert.ok(r.callbackUrl, `never got redirected to the callback:\n${describeHops(r.hops)}`);
    return { b, url: new URL(r.callbackUrl) };
  }

  test('state mismatch (tampered state parameter) → 400', T, async () => {
    const { b, url } = await pendingCallback();
    url.searchParams.set('state', `${url.searchParams.get('state')}x`);
    const hop = await b.request(url, { navigate: true, initiator: s.idp.issuer });
    assertRefused(hop, [hop]);
  });

  test('state mismatch does not even redeem the code', T, async () => {
    const { b, url } = await pendingCallback();
    const requestsBefore = s.idp.tokenRequests().length;
    url.searchParams.set('state', crypto.randomBytes(16).toString('base64url'));
    const hop = await b.request(url, { navigate: true, initiator: s.idp.issuer });
    assertRefused(hop, [hop]);
    assert.equal(s.idp.tokenRequests().length, requestsBefore, 'the gateway called the token endpoint for a forged state');
  });

  test('callback without the transaction cookie → 400', T, async () => {
    const { b, url } = await pendingCallback();
    const tx = b.jar.all(new RegExp(`^${TX_COOKIE_PREFIX}`));
    assert.equal(tx.length, 1, 'expected exactly one transaction cookie');
    b.jar.delete(tx[0].name);
    const hop = await b.request(url, { navigate: true, initiator: s.idp.issuer });
    assertRefused(hop, [hop]);
  });

  test('callback answered in another browser (login CSRF) → 400', T, async () => {
    const { url } = await pendingCallback();
    const victim = new Browser();
    await victim.request(`${s.gw}/victim`, { navigate: true }); // the victim has a login of their own going
    const hop = await victim.request(url, { navigate: true, initiator: 'https://evil.example/' });
    assertRefused(hop, [hop]);
  });

  test('a transaction cookie planted by a sibling subdomain cannot be completed (login CSRF) → 400', T, async () => {
    // The attacker signs in as themselves, stops before the callback, and plants their transaction
    // cookie in the victim's browser (a sibling subdomain can set __Secure- cookies with Domain=; it
    // can never set the __Host- binding cookie).
    const { b: attacker, url } = await pendingCallback();
    const tx = attacker.jar.all(new RegExp(`^${TX_COOKIE_PREFIX}`));
    assert.equal(tx.length, 1);
    assert.equal(attacker.jar.all(/^__Host-edgeguard-bind-/).length, 1, 'the sign-in set a __Host- binding cookie');
    const victim = new Browser();
    await victim.request(`${s.gw}/victim`, { navigate: true }); // the victim has a binding of their own
    victim.jar.put({ ...tx[0] });
    const before = s.idp.tokenRequests().length;
    const hop = await victim.request(url, { navigate: true, initiator: s.idp.issuer });
    assertRefused(hop, [hop]);
    await s.worker.waitForLog((l) => l.json?.reason === 'login_binding_mismatch');
    assert.equal(s.idp.tokenRequests().length, before, "the attacker's code was redeemed");
    // The attacker's own browser still completes its own sign-in (the binding is what differs).
    const own = await attacker.request(url, { navigate: true, initiator: s.idp.issuer });
    assert.ok([302, 303].includes(own.status), `${own.status} ${own.text.slice(0, 200)}`);
  });

  test('a signed-out visit to a URL with a 3 KB query signs in and lands on its path', T, async () => {
    const b = new Browser();
    const r = await b.signIn(`${s.gw}/long/page?q=${'x'.repeat(3000)}`);
    assert.equal(r.callback?.status, 302, describeHops(r.hops));
    assert.equal(new URL(r.callback.location).pathname, '/long/page');
    assert.equal(r.final.status, 200, describeHops(r.hops));
    assert.ok(sessionCookieSet(r.hops));
  });

  test('replayed callback (same code twice) → 400, no second session', T, async () => {
    const { b, url } = await pendingCallback();
    const saved = b.jar.snapshot(); // the transaction cookie, as an attacker who copied it would have it
    const first = await b.request(url, { navigate: true, initiator: s.idp.issuer });
    assert.ok([302, 303].includes(first.status), `first use failed: ${first.status} ${first.text.slice(0, 300)}`);
    assert.ok(sessionCookieSet([first]));

    const replay = new Browser();
    replay.jar.restore(saved);
    const hop = await replay.request(url, { navigate: true, initiator: s.idp.issuer });
    assertRefused(hop, [hop]);

    // Same browser, same URL again (tx cookie already consumed): also refused.
    const again = await b.request(url, { navigate: true, initiator: s.idp.issuer });
    assert.ok(again.status >= 400 && again.status < 500, `second use in the same browser: ${again.status}`);
    assert.equal(sessionCookieSet([again]), null);
  });

  test('the provider says access_denied (user clicked Deny) → 403 or 400 page', T, async () => {
    const b = new Browser();
    const { hops, callback } = await b.signIn(`${s.gw}/secret`, { deny: true });
    assert.equal(new URL(callback.url).searchParams.get('error'), 'access_denied', describeHops(hops));
    assertRefused(callback, hops, { statuses: [400, 403] });
  });

  test('an authorization response naming another issuer (iss) → 400', T, async () => {
    const { b, url } = await pendingCallback();
    assert.ok(url.searchParams.get('iss'), 'the IdP sends iss (RFC 9207)');
    url.searchParams.set('iss', 'https://evil.example');
    const hop = await b.request(url, { navigate: true, initiator: s.idp.issuer });
    assertRefused(hop, [hop]);
  });

  const malformed = [
    '/auth/callback',
    '/auth/callback?code=abc',
    '/auth/callback?state=abc',
    '/auth/callback?code=&state=',
    `/auth/callback?code=${'A'.repeat(8000)}&state=${'B'.repeat(4000)}`,
    '/auth/callback?code=abc&state=abc&code=def',
    '/auth/callback?error=server_error',
    '/auth/callback?error=%00%ff<script>&error_description=%E2%80%AE',
    '/auth/callback?code=%zz&state=%',
  ];
  for (const path of malformed) {
    test(`malformed callback is a 4xx, never a 5xx: ${path.slice(0, 60)}`, T, async () => {
      const b = new Browser();
      await b.request(`${s.gw}/start`, { navigate: true }); // a login in progress (tx cookie present)
      const hop = await b.request(`${s.gw}${path}`, { navigate: true, initiator: s.idp.issuer });
      assert.ok(hop.status >= 400 && hop.status < 500, `${hop.status}: ${hop.text.slice(0, 200)}`);
      assert.equal(sessionCookieSet([hop]), null);
      assert.doesNotMatch(hop.text, /<script>/, 'provider-supplied text reflected unescaped');
      assert.deepEqual(s.origin.requests(), []);
    });
  }
});
