// Sign-in with other provider set-ups: client_secret_post + ES256 ID tokens, and no API resource
// (the origin then gets the provider's opaque access token).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Browser } from '../support/browser.mjs';
import { describeHops, jwtPayload, sessionCookieSet, skipReason, startStack } from '../support/stack.mjs';

const skip = skipReason();
const T = { timeout: 10_000, skip };

describe('client_secret_post and ES256-signed ID tokens', () => {
  let s;
  before(async () => {
    if (skip) return;
    s = await startStack({
      idp: { tokenEndpointAuthMethod: 'client_secret_post', idTokenAlg: 'ES256' },
      vars: { OIDC_CLIENT_AUTH_METHOD: 'client_secret_post' },
    });
  }, { timeout: 30_000 });
  after(async () => { await s?.close(); });

  test('bob signs in; the secret went in the form body; the ES256 ID token was accepted', T, async () => {
    let idTokenAlg;
    s.idp.setTokenHook((body, t) => { idTokenAlg = t.decode(body.id_token).header.alg; });
    const b = new Browser();
    const r = await b.signIn(`${s.gw}/p`, { username: 'bob', password: 'bob' });
    assert.equal(r.final.status, 200, describeHops(r.hops));
    assert.equal(idTokenAlg, 'ES256');
    const [req] = s.idp.tokenRequests();
    assert.equal(req.clientAuth, 'post');
    assert.equal(req.status, 200);
    assert.equal(s.origin.last().headers['x-forwarded-user'], 'bob');
    assert.equal(s.origin.last().headers['x-forwarded-email'], 'bob@example.com');
  });

  test('an ID token stating email_verified: false signs in, but its address never reaches the origin', T, async () => {
    s.idp.setTokenHook(async (body, t, info) => {
      if (info.grantType !== 'authorization_code') return;
      body.id_token = await t.resign(body.id_token, ({ payload }) => {
        payload.email = 'victim@example.com';
        payload.email_verified = false;
      });
    });
    try {
      const b = new Browser();
      const r = await b.signIn(`${s.gw}/unverified`, { username: 'bob', password: 'bob' });
      assert.equal(r.final.status, 200, describeHops(r.hops));
      const seen = s.origin.last();
      assert.equal(seen.headers['x-forwarded-user'], 'bob');
      assert.equal(seen.headers['x-forwarded-email'], undefined);
    } finally {
      s.idp.setTokenHook(null);
    }
  });
});

describe('without OIDC_RESOURCE', () => {
  let s;
  before(async () => {
    if (skip) return;
    s = await startStack({ resource: false, vars: { OIDC_SCOPES: 'openid email' } });
  }, { timeout: 30_000 });
  after(async () => { await s?.close(); });

  test('sign-in works and the origin gets the opaque access token and the identity', T, async () => {
    const b = new Browser();
    const r = await b.signIn(`${s.gw}/q?z=1`);
    assert.equal(r.final.status, 200, describeHops(r.hops));
    assert.ok(sessionCookieSet(r.hops));
    const authRequest = new URL(r.hops.find((h) => h.url.startsWith(`${s.idp.issuer}/auth?`)).url).searchParams;
    assert.equal(authRequest.get('resource'), null);
    assert.deepEqual(authRequest.get('scope').split(' ').sort(), ['email', 'offline_access', 'openid']);
    const seen = s.origin.last();
    const m = /^Bearer (\S+)$/.exec(seen.headers.authorization ?? '');
    assert.ok(m, seen.headers.authorization);
    assert.equal(m[1].split('.').length, 1, 'the provider issues opaque access tokens without a resource');
    assert.equal(seen.headers['x-forwarded-user'], 'alice');
    assert.equal(seen.headers['x-forwarded-email'], 'alice@example.com');
    assert.equal(s.idp.tokenRequests()[0].params.resource, undefined);
  });
});

describe('a provider that does not advertise offline_access', () => {
  let s;
  before(async () => {
    if (skip) return;
    // Same provider, but its discovery document leaves offline_access out of scopes_supported.
    s = await startStack();
    s.idp.setDiscoveryHook((doc) => {
      doc.scopes_supported = doc.scopes_supported.filter((x) => x !== 'offline_access');
    });
  }, { timeout: 30_000 });
  after(async () => { await s?.close(); });

  test('offline_access is not requested', T, async () => {
    const hop = await new Browser().request(`${s.gw}/`, { navigate: true });
    assert.equal(hop.status, 302);
    const scope = new URL(hop.location).searchParams.get('scope').split(' ');
    assert.ok(scope.includes('openid'));
    assert.ok(!scope.includes('offline_access'), `scope: ${scope.join(' ')}`);
  });
});

describe('ID token claims beyond the basics', () => {
  let s;
  before(async () => {
    if (skip) return;
    s = await startStack();
  }, { timeout: 30_000 });
  after(async () => { await s?.close(); });

  test('an ID token within the 60 s clock skew is accepted (exp 30 s ago)', T, async () => {
    s.idp.setTokenHook(async (body, t) => {
      body.id_token = await t.resign(body.id_token, ({ payload }) => {
        payload.iat = t.now() - 600; payload.exp = t.now() - 30;
      });
    });
    const r = await new Browser().signIn(`${s.gw}/skew`);
    s.idp.setTokenHook(null);
    assert.equal(r.final.status, 200, describeHops(r.hops));
  });

  test('the access token the origin gets is the JWT for the API, not the ID token', T, async () => {
    s.origin.reset();
    let issued;
    s.idp.setTokenHook((body) => { issued = body; });
    const r = await new Browser().signIn(`${s.gw}/which-token`);
    s.idp.setTokenHook(null);
    assert.equal(r.final.status, 200, describeHops(r.hops));
    const auth = s.origin.last().headers.authorization;
    assert.equal(auth, `Bearer ${issued.access_token}`);
    assert.notEqual(auth, `Bearer ${issued.id_token}`);
    assert.equal(jwtPayload(issued.access_token).aud, s.idp.resource);
  });
});
