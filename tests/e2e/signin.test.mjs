// 1. The happy path: a person signs in and the origin gets a verified identity — and only that.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Browser } from '../support/browser.mjs';
import {
  SESSION_COOKIE, TX_COOKIE_PREFIX, describeHops, jwtPayload, sessionCookieSet, skipReason, startStack,
} from '../support/stack.mjs';

const skip = skipReason();
const T = { timeout: 10_000, skip };

describe('sign-in happy path', () => {
  let s;
  let b;
  let signIn;

  before(async () => {
    if (skip) return;
    s = await startStack();
    b = new Browser();
    signIn = await b.signIn(`${s.gw}/private/page?x=1&y=two%20words`, { username: 'alice', password: 'alice' });
  }, { timeout: 30_000 });

  after(async () => { await s?.close(); });

  test('alice signs in and lands on the page she asked for, served by the origin', T, () => {
    const { final, hops, callback } = signIn;
    assert.equal(final.status, 200, describeHops(hops));
    assert.equal(final.url, `${s.gw}/private/page?x=1&y=two%20words`, describeHops(hops));
    assert.match(final.text, /Hello from the origin/);
    assert.match(final.text, /X-Forwarded-User<\/th><td><code>alice</);

    assert.ok(callback, `no hop reached /auth/callback:\n${describeHops(hops)}`);
    assert.ok([302, 303].includes(callback.status), `callback answered ${callback.status}: ${callback.text.slice(0, 300)}`);
    assert.equal(callback.location, `${s.gw}/private/page?x=1&y=two%20words`);
    // The IdP's login and consent pages were really used.
    assert.ok(hops.some((h) => /\/interaction\/[^/]+\/login$/.test(new URL(h.url).pathname)), 'no login form posted');
  });

  test('GET /auth/me tells the page who is signed in, with no token; signed out it is a 401 JSON', T, async () => {
    const res = await b.get(`${s.gw}/auth/me`);
    assert.equal(res.status, 200, res.text.slice(0, 300));
    const me = JSON.parse(res.text);
    assert.equal(me.sub, 'alice');
    assert.equal(me.email, 'alice@example.com');
    assert.equal(me.name, 'Alice Liddell');
    assert.equal(me.provider, s.idp.issuer);
    assert.ok(me.session_expires_at > Date.now() / 1000, res.text);
    assert.ok(me.access_token_expires_at > Date.now() / 1000, res.text);
    assert.equal(me.access_token, undefined);
    assert.doesNotMatch(res.text, /eyJ/, 'a token reached the browser');
    const anonymous = await new Browser().get(`${s.gw}/auth/me`);
    assert.equal(anonymous.status, 401);
    assert.equal(JSON.parse(anonymous.text).error, 'session_missing');
    assert.deepEqual(s.origin.requests().filter((r) => r.path === '/auth/me'), [], '/auth/me reached the origin');
  });

  test('the session cookie is __Host-edgeguard, HttpOnly, Secure, SameSite=Lax, Path=/', T, () => {
    const cookie = sessionCookieSet(signIn.hops);
    assert.ok(cookie, `no ${SESSION_COOKIE} cookie stored:\n${signIn.callback?.setCookie.join('\n')}`);
    assert.equal(cookie.path, '/');
    assert.equal(cookie.hostOnly, true);
    assert.equal(cookie.secure, true);
    assert.equal(cookie.httpOnly, true);
    assert.equal(cookie.attrs.samesite?.toLowerCase(), 'lax');
    // The login transaction cookie is done with.
    assert.deepEqual(b.jar.all(new RegExp(`^${TX_COOKIE_PREFIX}`)).map((c) => c.name), [],
      'transaction cookie still present after the callback');
  });

  test('the origin got the access token (JWT for the API) and the identity headers', T, () => {
    const seen = s.origin.requests().filter((r) => r.path === '/private/page');
    assert.equal(seen.length, 1, `origin saw: ${s.origin.requests().map((r) => r.url).join(', ')}`);
    const [r] = seen;
    assert.equal(r.method, 'GET');
    assert.equal(r.query, '?x=1&y=two%20words');
    const m = /^Bearer (\S+)$/.exec(r.headers.authorization ?? '');
    assert.ok(m, `Authorization header: ${r.headers.authorization}`);
    const payload = jwtPayload(m[1]);
    const aud = [payload.aud].flat();
    assert.ok(aud.includes(s.idp.resource), `aud ${JSON.stringify(payload.aud)}`);
    assert.equal(payload.sub, 'alice');
    assert.equal(payload.iss, s.idp.issuer);
    assert.equal(r.headers['x-forwarded-user'], 'alice');
    assert.equal(r.headers['x-forwarded-email'], 'alice@example.com');
    assert.doesNotMatch(r.headers.cookie ?? '', /edgeguard/i, 'gateway cookie forwarded to the origin');
  });

  test('the code exchange used PKCE, the client secret (basic) and the resource', T, () => {
    const reqs = s.idp.tokenRequests().filter((r) => r.grantType === 'authorization_code');
    assert.equal(reqs.length, 1);
    const [r] = reqs;
    assert.equal(r.status, 200);
    assert.equal(r.clientAuth, 'basic');
    assert.match(r.params.code_verifier ?? '', /^[A-Za-z0-9._~-]{43,128}$/);
    assert.equal(r.params.resource, s.idp.resource);
    assert.equal(r.params.redirect_uri, `${s.gw}/auth/callback`);
  });

  test('the session works for a second page', T, async () => {
    s.origin.reset();
    const { final, hops } = await b.navigate(`${s.gw}/second`);
    assert.equal(final.status, 200, describeHops(hops));
    assert.equal(hops.length, 1, `expected no redirect:\n${describeHops(hops)}`);
    const [r] = s.origin.requests();
    assert.equal(r.path, '/second');
    assert.equal(r.headers['x-forwarded-user'], 'alice');
    assert.match(r.headers.authorization ?? '', /^Bearer ./);
    assert.equal(s.idp.counts().authorization_code, 1, 'a second code exchange happened');
  });

  test('an API call with the session cookie is forwarded (JSON echo)', T, async () => {
    s.origin.reset();
    const res = await b.get(`${s.gw}/api/echo?a=1&b=%2F`);
    assert.equal(res.status, 200, res.text.slice(0, 300));
    const echo = res.json;
    assert.equal(echo.method, 'GET');
    assert.equal(echo.path, '/api/echo');
    assert.equal(echo.query, '?a=1&b=%2F');
    assert.equal(echo.headers['x-forwarded-user'], 'alice');
  });

  test('POST, PUT and DELETE bodies reach the origin intact', T, async () => {
    s.origin.reset();
    const json = { hello: 'wörld ✓', n: 1, nested: { list: [1, 2, 3] } };
    let res = await b.fetch(`${s.gw}/api/echo?k=v`, { method: 'POST', body: json });
    assert.equal(res.status, 200, res.text.slice(0, 300));
    let echo = res.json;
    assert.equal(echo.method, 'POST');
    assert.equal(echo.query, '?k=v');
    assert.equal(echo.body, JSON.stringify(json));
    assert.match(echo.headers['content-type'], /^application\/json/);
    assert.equal(echo.headers['x-forwarded-user'], 'alice');

    const big = 'x'.repeat(200_000) + '\n' + 'é'.repeat(1000);
    res = await b.fetch(`${s.gw}/api/upload`, { method: 'PUT', body: big, headers: { 'content-type': 'text/plain; charset=utf-8' } });
    assert.equal(res.status, 200);
    echo = res.json;
    assert.equal(echo.method, 'PUT');
    assert.equal(echo.body.length, big.length);
    assert.equal(echo.body, big);

    const form = new URLSearchParams({ a: '1', b: 'two & three' });
    res = await b.fetch(`${s.gw}/api/form`, { method: 'POST', body: form });
    assert.equal(res.json.body, form.toString());

    res = await b.fetch(`${s.gw}/api/thing/42`, { method: 'DELETE' });
    assert.equal(res.status, 200);
    assert.equal(res.json.method, 'DELETE');
    assert.equal(res.json.path, '/api/thing/42');
  });

  test('identity headers sent by the client are replaced or removed', T, async () => {
    s.origin.reset();
    const spoof = {
      'x-forwarded-user': 'mallory',
      'x-forwarded-email': 'mallory@evil.example',
      x_forwarded_user: 'mallory',
      x_forwarded_email: 'mallory@evil.example',
      'remote-user': 'mallory',
      remote_user: 'mallory',
      'x-auth-request-user': 'mallory',
      'x-auth-request-email': 'mallory@evil.example',
      'x-auth-request-access-token': 'forged',
      'cf-access-authenticated-user-email': 'mallory@evil.example',
      'cf-access-jwt-assertion': 'forged.jwt.value',
      authorization: 'Bearer forged-by-client',
    };
    const res = await b.get(`${s.gw}/api/echo`, { headers: spoof });
    assert.equal(res.status, 200, res.text.slice(0, 300));
    const h = res.json.headers;
    assert.equal(h['x-forwarded-user'], 'alice');
    assert.equal(h['x-forwarded-email'], 'alice@example.com');
    assert.notEqual(h.authorization, 'Bearer forged-by-client');
    assert.match(h.authorization ?? '', /^Bearer [^.]+\.[^.]+\.[^.]+$/);
    for (const name of Object.keys(spoof)) {
      if (['x-forwarded-user', 'x-forwarded-email', 'authorization'].includes(name)) continue;
      assert.equal(h[name], undefined, `${name} reached the origin: ${h[name]}`);
    }
    const leaked = Object.entries(h).filter(([, v]) => /mallory|forged/.test(String(v)));
    assert.deepEqual(leaked, [], 'spoofed values reached the origin');
  });

  test("other cookies pass to the origin, the gateway's own do not", T, async () => {
    s.origin.reset();
    b.jar.put({ name: 'theme', value: 'dark', domain: '127.0.0.1', path: '/' });
    const res = await b.get(`${s.gw}/api/echo`);
    assert.equal(res.status, 200);
    const sent = res.json.headers.cookie ?? '';
    assert.match(sent, /(^|;\s*)theme=dark(;|$)/, `cookie header at origin: ${sent}`);
    assert.doesNotMatch(sent, /__Host-edgeguard|__Secure-edgeguard/, `cookie header at origin: ${sent}`);
    b.jar.delete('theme');
  });

  test('the Worker logs one JSON decision line with a reason per request', T, async () => {
    await s.worker.waitForLog((e) => e.json?.reason !== undefined);
    const reasons = s.worker.reasons();
    assert.ok(reasons.length >= 5, `reasons: ${reasons.join(', ')}`);
    assert.ok(reasons.every((r) => typeof r === 'string' && r.length > 0));
  });
});
