// 2. Without a session: browsers are sent to the provider with a complete, PKCE-protected authorization
//    request; anything that is not a navigation gets a 401 it can act on; nothing reaches the origin.
import { after, before, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Browser } from '../support/browser.mjs';
import { TX_COOKIE_PREFIX, describeHops, skipReason, startStack } from '../support/stack.mjs';

const skip = skipReason();
const T = { timeout: 10_000, skip };

describe('unauthenticated requests', () => {
  let s;
  let discovery;

  before(async () => {
    if (skip) return;
    s = await startStack();
    discovery = await (await fetch(`${s.idp.issuer}/.well-known/openid-configuration`)).json();
  }, { timeout: 30_000 });

  after(async () => { await s?.close(); });
  beforeEach(() => { s?.origin.reset(); });

  const txCookies = (hop) => hop.cookieResults.filter((r) => r.stored && r.cookie.name.startsWith(TX_COOKIE_PREFIX));

  test('a navigation is redirected (302) to the authorization endpoint with every required parameter', T, async () => {
    const b = new Browser();
    const hop = await b.request(`${s.gw}/reports/2024?sort=desc`, { navigate: true });
    assert.equal(hop.status, 302, hop.text.slice(0, 300));
    const loc = new URL(hop.location);
    assert.equal(`${loc.origin}${loc.pathname}`, discovery.authorization_endpoint);
    const q = loc.searchParams;
    for (const name of ['response_type', 'client_id', 'redirect_uri', 'scope', 'state', 'nonce', 'code_challenge', 'code_challenge_method', 'resource']) {
      assert.equal(q.getAll(name).length, 1, `${name} must appear exactly once in ${loc.search}`);
    }
    assert.equal(q.get('response_type'), 'code');
    assert.equal(q.get('client_id'), s.idp.clientId);
    assert.equal(q.get('redirect_uri'), `${s.gw}/auth/callback`);
    const scopes = q.get('scope').split(' ');
    for (const sc of ['openid', 'profile', 'email', 'offline_access']) assert.ok(scopes.includes(sc), `scope ${q.get('scope')} lacks ${sc}`);
    assert.ok(q.get('state').length >= 16, 'state too short to be unguessable');
    assert.ok(q.get('nonce').length >= 16, 'nonce too short to be unguessable');
    assert.match(q.get('code_challenge'), /^[A-Za-z0-9_-]{43}$/);
    assert.equal(q.get('code_challenge_method'), 'S256');
    assert.equal(q.get('resource'), s.idp.resource);
    assert.deepEqual(s.origin.requests(), []);
  });

  test('the redirect sets a transaction cookie scoped to /auth/callback', T, async () => {
    const b = new Browser();
    const hop = await b.request(`${s.gw}/x`, { navigate: true });
    assert.equal(hop.status, 302);
    const tx = txCookies(hop);
    assert.equal(tx.length, 1, `Set-Cookie: ${hop.setCookie.join(' | ')}`);
    const { cookie } = tx[0];
    assert.ok(cookie.name.length > TX_COOKIE_PREFIX.length, 'the tx cookie name needs a per-login suffix');
    assert.equal(cookie.path, '/auth/callback');
    assert.equal(cookie.httpOnly, true);
    assert.equal(cookie.secure, true);
    assert.equal(cookie.attrs.samesite?.toLowerCase(), 'lax');
    const maxAge = Number(cookie.attrs['max-age']);
    assert.ok(maxAge >= 300 && maxAge <= 900, `Max-Age ${cookie.attrs['max-age']} (≈600 expected)`);
    assert.ok(!hop.setCookie.some((h) => h.startsWith('__Host-edgeguard=') && !/max-age=0/i.test(h)), 'a session cookie was set');
  });

  test('Accept: text/html without Sec-Fetch-Mode also counts as a navigation', T, async () => {
    const b = new Browser();
    const hop = await b.request(`${s.gw}/page`, {
      headers: { accept: 'text/html,application/xhtml+xml', 'sec-fetch-mode': null, 'sec-fetch-dest': null, 'sec-fetch-site': null },
    });
    assert.equal(hop.status, 302, hop.text.slice(0, 200));
    assert.ok(hop.location.startsWith(discovery.authorization_endpoint));
  });

  test('every login gets its own state, nonce and PKCE challenge', T, async () => {
    const b = new Browser();
    const a = new URL((await b.request(`${s.gw}/a`, { navigate: true })).location).searchParams;
    const c = new URL((await b.request(`${s.gw}/a`, { navigate: true })).location).searchParams;
    for (const p of ['state', 'nonce', 'code_challenge']) assert.notEqual(a.get(p), c.get(p), p);
  });

  test('the authorization request is one the real provider accepts', T, async () => {
    const b = new Browser();
    const hop = await b.request(`${s.gw}/ok`, { navigate: true });
    const idpHop = await b.request(hop.location, { navigate: true, initiator: `${s.gw}/ok` });
    assert.equal(idpHop.status, 303, `provider refused the request: ${idpHop.text.slice(0, 400)}`);
    assert.match(new URL(idpHop.location).pathname, /^\/interaction\//);
  });

  const apiCases = [
    ['fetch() with Accept: application/json', '/dashboard', { accept: 'application/json' }],
    ['fetch() with Accept: */*', '/dashboard', { accept: '*/*' }],
    ['a path under API_PATH_PREFIXES even when navigated to', '/api/echo?x=1', {
      accept: 'text/html,application/xhtml+xml', 'sec-fetch-mode': 'navigate', 'sec-fetch-dest': 'document',
    }],
  ];
  for (const [name, path, headers] of apiCases) {
    test(`API-style request → 401 + WWW-Authenticate, no redirect: ${name}`, T, async () => {
      const b = new Browser();
      const hop = await b.request(`${s.gw}${path}`, { headers });
      assert.equal(hop.status, 401, hop.text.slice(0, 300));
      assert.equal(hop.location, null);
      const challenge = hop.headers.get('www-authenticate') ?? '';
      assert.match(challenge, /^Bearer\b/i);
      assert.match(challenge, /realm=/i);
      assert.equal(txCookies(hop).length, 0, 'an API 401 should not start a login');
      assert.deepEqual(s.origin.requests(), []);
    });
  }

  test('a POST without a session gets a 401, never a 302, and nothing is forwarded', T, async () => {
    const b = new Browser();
    for (const path of ['/api/echo', '/form']) {
      const hop = await b.request(`${s.gw}${path}`, {
        method: 'POST', body: new URLSearchParams({ a: '1' }), headers: { accept: 'text/html' },
      });
      assert.equal(hop.status, 401, `${path}: ${hop.status} ${hop.text.slice(0, 200)}`);
      assert.equal(hop.location, null);
    }
    assert.deepEqual(s.origin.requests(), []);
  });

  test('a forged session cookie is treated as no session', T, async () => {
    const b = new Browser();
    b.jar.put({ name: '__Host-edgeguard', value: 'Zm9yZ2Vk.bm90LWEtc2Vzc2lvbg', domain: '127.0.0.1', path: '/', secure: true });
    const api = await b.get(`${s.gw}/api/echo`);
    assert.equal(api.status, 401, api.text.slice(0, 200));
    const nav = await b.request(`${s.gw}/page`, { navigate: true });
    assert.equal(nav.status, 302);
    assert.deepEqual(s.origin.requests(), []);
  });

  test('/auth/health answers 200 JSON when the configuration is valid', T, async () => {
    const res = await fetch(`${s.gw}/auth/health`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /json/);
    const body = await res.json();
    assert.equal(typeof body, 'object');
    assert.deepEqual(s.origin.requests(), []);
  });

  test('each refusal is logged with a reason', T, async () => {
    const b = new Browser();
    s.worker.clearLogs();
    await b.get(`${s.gw}/api/echo`);
    const entry = await s.worker.waitForLog((e) => typeof e.json?.reason === 'string');
    assert.ok(entry.json.reason.length > 0, entry.line);
  });

  test('sanity: a whole sign-in from here works', T, async () => {
    const b = new Browser();
    const r = await b.signIn(`${s.gw}/after`, { username: 'bob', password: 'bob' });
    assert.equal(r.final.status, 200, describeHops(r.hops));
    assert.equal(s.origin.last().headers['x-forwarded-email'], 'bob@example.com');
  });
});
