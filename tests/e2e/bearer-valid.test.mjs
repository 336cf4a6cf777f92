// Bearer routes, the good path: access tokens from the real IdP (client_credentials, a user's sign-in)
// and tokens minted with its keys (and with extra keys served next to them) for every algorithm of the
// contract are verified at the edge and forwarded with the same Authorization header plus the caller's
// identity; spoofed identity headers never reach the origin. Also the API_* settings.
import { after, before, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Browser } from '../support/browser.mjs';
import { skipReason, startStack } from '../support/stack.mjs';
import {
  callApi, clientCredentialsToken, decodeJwt, echoed, expectInvalidToken, expectNoTokenChallenge, extraKeys,
  generatedKey, mint, nowSecs, startJwksProxy,
} from '../support/tokens.mjs';

const skip = skipReason();
const T = { timeout: 10_000, skip };

const ROUTES = JSON.stringify([
  { prefix: '/api/', auth: 'bearer' },
  { prefix: '/', auth: 'session' },
]);

describe('bearer: valid tokens are forwarded', () => {
  let s;
  let jwks;
  let extra;

  before(async () => {
    if (skip) return;
    s = await startStack({ vars: { ROUTES } });
    extra = await extraKeys();
    jwks = await startJwksProxy(s.idp, { extraKeys: extra });
  }, { timeout: 30_000 });

  after(async () => { await jwks?.close(); await s?.close(); });
  beforeEach(() => { s?.origin.reset(); });

  const forwarded = async (token, path = '/api/echo', opts = {}) => {
    const res = await callApi(`${s.gw}${path}`, { token, ...opts });
    const echo = echoed(res);
    const seen = s.origin.requests();
    assert.equal(seen.length, 1, 'the origin got exactly one request');
    assert.equal(seen[0].headers.authorization, `Bearer ${token}`, 'the origin sees the same Authorization header');
    return echo;
  };

  test('a real RS256 access token (client_credentials, resource = OIDC_RESOURCE) is forwarded with X-Forwarded-User = sub', T, async () => {
    const token = await clientCredentialsToken(s.idp);
    const { header, payload } = decodeJwt(token);
    assert.equal(header.alg, 'RS256');
    assert.equal(payload.aud, s.idp.resource);
    const echo = await forwarded(token);
    assert.equal(echo.headers['x-forwarded-user'], payload.sub);
    assert.equal(echo.headers['x-forwarded-email'], undefined, 'the token has no email');
    assert.equal(echo.path, '/api/echo');
  });

  test('a real user access token (the one the origin saw after a sign-in) works as a bearer token', T, async () => {
    const b = new Browser();
    const r = await b.signIn(`${s.gw}/app/page`);
    assert.equal(r.final.status, 200, r.final.text.slice(0, 300));
    const seen = s.origin.requests().find((q) => q.path === '/app/page');
    assert.ok(seen?.headers.authorization?.startsWith('Bearer '), 'the session route forwards the access token');
    const token = seen.headers.authorization.slice('Bearer '.length);
    assert.equal(decodeJwt(token).payload.sub, 'alice');
    s.origin.reset();
    const echo = await forwarded(token);
    assert.equal(echo.headers['x-forwarded-user'], 'alice');
  });

  const algs = [
    ['RS256', (idp) => ({ alg: 'RS256' })],
    ['ES256', (idp) => ({ alg: 'ES256' })],
    ['RS384', () => ({ alg: 'RS384', key: extra.rsa })],
    ['RS512', () => ({ alg: 'RS512', key: extra.rsa })],
    ['PS256', () => ({ alg: 'PS256', key: extra.rsa })],
    ['PS384', () => ({ alg: 'PS384', key: extra.rsa })],
    ['PS512', () => ({ alg: 'PS512', key: extra.rsa })],
    ['ES384', () => ({ alg: 'ES384', key: extra.es384 })],
    ['EdDSA (Ed25519)', () => ({ alg: 'EdDSA', key: extra.eddsa })],
  ];
  for (const [name, opts] of algs) {
    test(`a ${name} token from a published key is verified and forwarded`, T, async () => {
      const token = await mint(s.idp, { sub: `user-${name}` }, opts(s.idp));
      const echo = await forwarded(token);
      assert.equal(echo.headers['x-forwarded-user'], `user-${name}`);
    });
  }

  test('a verified email claim is forwarded as X-Forwarded-Email', T, async () => {
    const token = await mint(s.idp, { sub: 'bob', email: 'bob@example.com', email_verified: true });
    const echo = await forwarded(token);
    assert.equal(echo.headers['x-forwarded-user'], 'bob');
    assert.equal(echo.headers['x-forwarded-email'], 'bob@example.com');
  });

  test('an email stated unverified, or not stated verified, is never forwarded', T, async () => {
    for (const claims of [{ email_verified: false }, { email_verified: 'false' }, {}]) {
      s.origin.reset();
      const echo = await forwarded(await mint(s.idp, { sub: 'mallory', email: 'victim@example.com', ...claims }));
      assert.equal(echo.headers['x-forwarded-user'], 'mallory');
      assert.equal(echo.headers['x-forwarded-email'], undefined, JSON.stringify(claims));
    }
    // Entra ID's answer to the missing claim: xms_edov (the email domain's owner is verified).
    s.origin.reset();
    const echo = await forwarded(await mint(s.idp, { sub: 'erin', email: 'erin@example.com', xms_edov: true }));
    assert.equal(echo.headers['x-forwarded-email'], 'erin@example.com');
  });

  test('spoofed identity headers are stripped; the token decides who the caller is', T, async () => {
    const token = await mint(s.idp, { sub: 'alice' });
    const spoofed = [
      ['x-forwarded-user', 'admin'], ['x-forwarded-email', 'admin@example.com'], ['x_forwarded_user', 'admin'],
      ['x-auth-request-user', 'admin'], ['remote-user', 'admin'], ['x-edgeguard-user', 'admin'],
    ];
    const echo = await forwarded(token, '/api/echo', { headers: spoofed });
    assert.equal(echo.headers['x-forwarded-user'], 'alice');
    assert.equal(echo.headers['x-forwarded-email'], undefined);
    for (const name of ['x_forwarded_user', 'x-auth-request-user', 'remote-user', 'x-edgeguard-user']) {
      assert.equal(echo.headers[name], undefined, `${name} reached the origin`);
    }
    assert.ok(!JSON.stringify(s.origin.requests()[0].rawHeaders).includes('admin'), 'a spoofed value reached the origin');
  });

  test('a sub that cannot travel as a header value is refused or forwarded exactly, never forwarded without an identity', T, async () => {
    // OIDC Core §2: sub is at most 255 ASCII characters. A gateway that drops X-Forwarded-User (or trims it)
    // for other subs hands the origin an authenticated request without (or with another) identity.
    for (const sub of ['älice', 'ａdmin', 'alice\r\nx-admin: 1', 'alice\u0000', ' alice ', 'a'.repeat(4000)]) {
      s.origin.reset();
      const res = await callApi(`${s.gw}/api/echo`, { token: await mint(s.idp, { sub }) });
      const label = JSON.stringify(sub).slice(0, 24);
      assert.ok(res.status < 500, `${label}: ${res.status}`);
      if (res.status === 200) {
        assert.equal(res.json.headers['x-forwarded-user'], sub, `${label} was forwarded with X-Forwarded-User ${JSON.stringify(res.json.headers['x-forwarded-user'])?.slice(0, 40)}`);
      } else {
        expectInvalidToken(res, { what: label });
        assert.deepEqual(s.origin.requests(), []);
      }
    }
  });

  test('method, path, query and body reach the origin unchanged', T, async () => {
    const token = await mint(s.idp);
    const res = await callApi(`${s.gw}/api/items/42?x=1&y=%20z`, {
      token, method: 'POST', body: '{"a":1}', headers: [['content-type', 'application/json']],
    });
    const echo = echoed(res);
    assert.equal(echo.method, 'POST');
    assert.equal(echo.path, '/api/items/42');
    assert.equal(echo.query, '?x=1&y=%20z');
    assert.equal(echo.body, '{"a":1}');
  });

  for (const typ of ['at+jwt', 'JWT', 'application/at+jwt', 'AT+JWT', 'jwt']) {
    test(`typ ${JSON.stringify(typ)} is accepted (default API_TOKEN_TYPES)`, T, async () => {
      await forwarded(await mint(s.idp, {}, { header: { typ } }));
    });
  }

  test('the auth scheme is case-insensitive (RFC 9110 §11.1): "bearer" and "BEARER"', T, async () => {
    const token = await mint(s.idp);
    for (const scheme of ['bearer', 'BEARER']) {
      s.origin.reset();
      const res = await callApi(`${s.gw}/api/echo`, { authorization: `${scheme} ${token}` });
      echoed(res);
    }
  });

  test('clock skew: 60 s are tolerated on exp, nbf and iat', T, async () => {
    const now = nowSecs();
    await forwarded(await mint(s.idp, { iat: now - 600, nbf: now - 600, exp: now - 20 }));
    s.origin.reset();
    await forwarded(await mint(s.idp, { nbf: now + 20, iat: now + 20, exp: now + 600 }));
  });

  test('aud may be an array naming the API among others', T, async () => {
    await forwarded(await mint(s.idp, { aud: ['https://other.example', s.idp.resource] }));
  });

  test('scopes as an array (scp: [..]) and scope-only (RFC 9068) tokens pass a route without requirements', T, async () => {
    await forwarded(await mint(s.idp, { scp: ['api.read'], scope: undefined }));
    s.origin.reset();
    await forwarded(await mint(s.idp, { scp: undefined, scope: 'api.read' }));
  });

  test('a token of ~8 KiB (many groups) is accepted', T, async () => {
    const groups = Array.from({ length: 180 }, (_, i) => `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`);
    const token = await mint(s.idp, { groups });
    assert.ok(token.length > 7000 && token.length < 12_000, `${token.length}`);
    await forwarded(token);
  });

  test('each decision is logged as one JSON line with a reason and the subject (no token in the log)', T, async () => {
    const token = await mint(s.idp, { sub: 'log-check' });
    await forwarded(token, '/api/log-check');
    const ok = await s.worker.waitForLog((e) => e.json?.path === '/api/log-check');
    assert.equal(typeof ok.json.reason, 'string');
    assert.equal(ok.json.sub, 'log-check');
    await callApi(`${s.gw}/api/log-check-refused`, { token: `${token}x` });
    const refused = await s.worker.waitForLog((e) => e.json?.path === '/api/log-check-refused');
    assert.equal(refused.json.status, 401);
    assert.ok(refused.json.reason && refused.json.reason !== ok.json.reason, refused.line);
    const sig = token.split('.')[2];
    assert.ok(!s.worker.logs().some((e) => e.line.includes(sig)), 'a token signature appears in the log');
  });

  test('no Authorization header → 401 with a bare Bearer challenge, nothing forwarded', T, async () => {
    expectNoTokenChallenge(await callApi(`${s.gw}/api/echo`));
    assert.deepEqual(s.origin.requests(), []);
  });
});

describe('bearer: a real ES256 access token from the IdP', () => {
  let s;

  before(async () => {
    if (skip) return;
    s = await startStack({ vars: { ROUTES }, idp: { accessTokenAlg: 'ES256' } });
  }, { timeout: 30_000 });

  after(async () => { await s?.close(); });

  test('client_credentials with ES256 → forwarded', T, async () => {
    const token = await clientCredentialsToken(s.idp);
    assert.equal(decodeJwt(token).header.alg, 'ES256');
    const res = await callApi(`${s.gw}/api/echo`, { token });
    const echo = echoed(res);
    assert.equal(echo.headers.authorization, `Bearer ${token}`);
    assert.equal(echo.headers['x-forwarded-user'], decodeJwt(token).payload.sub);
  });
});

describe('bearer: API_AUDIENCES and API_TOKEN_TYPES', () => {
  let s;

  before(async () => {
    if (skip) return;
    s = await startStack({
      vars: { ROUTES, API_AUDIENCES: 'api://orders, https://orders.example.test', API_TOKEN_TYPES: 'at+jwt' },
    });
  }, { timeout: 30_000 });

  after(async () => { await s?.close(); });
  beforeEach(() => { s?.origin.reset(); });

  test('every listed audience is accepted', T, async () => {
    for (const aud of ['api://orders', 'https://orders.example.test']) {
      echoed(await callApi(`${s.gw}/api/echo`, { token: await mint(s.idp, { aud }) }));
    }
  });

  test('API_AUDIENCES replaces the OIDC_RESOURCE default', T, async () => {
    expectInvalidToken(await callApi(`${s.gw}/api/echo`, { token: await mint(s.idp, { aud: s.idp.resource }) }));
    assert.deepEqual(s.origin.requests(), []);
  });

  test('API_TOKEN_TYPES=at+jwt refuses typ JWT and accepts application/at+jwt', T, async () => {
    expectInvalidToken(await callApi(`${s.gw}/api/echo`, {
      token: await mint(s.idp, { aud: 'api://orders' }, { header: { typ: 'JWT' } }),
    }));
    assert.deepEqual(s.origin.requests(), []);
    echoed(await callApi(`${s.gw}/api/echo`, {
      token: await mint(s.idp, { aud: 'api://orders' }, { header: { typ: 'application/at+jwt' } }),
    }));
  });
});

describe('bearer: OIDC_ALLOWED_ALGS limits the algorithms', () => {
  let s;
  let jwks;
  let extra;

  before(async () => {
    if (skip) return;
    s = await startStack({ vars: { ROUTES, OIDC_ALLOWED_ALGS: 'RS256' } });
    extra = { eddsa: await generatedKey('EdDSA', 'allowed-algs') };
    jwks = await startJwksProxy(s.idp, { extraKeys: extra });
  }, { timeout: 30_000 });

  after(async () => { await jwks?.close(); await s?.close(); });

  test('RS256 passes; ES256 and EdDSA from published keys are refused with 401', T, async () => {
    echoed(await callApi(`${s.gw}/api/echo`, { token: await mint(s.idp) }));
    s.origin.reset();
    expectInvalidToken(await callApi(`${s.gw}/api/echo`, { token: await mint(s.idp, {}, { alg: 'ES256' }) }));
    expectInvalidToken(await callApi(`${s.gw}/api/echo`, { token: await mint(s.idp, {}, { alg: 'EdDSA', key: extra.eddsa }) }));
    assert.deepEqual(s.origin.requests(), []);
  });
});
