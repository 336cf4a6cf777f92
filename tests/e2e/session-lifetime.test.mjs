// Session lifetime settings: SESSION_TTL (absolute) and SESSION_IDLE_TIMEOUT (a session unused for longer
// ends). Waiting out an idle timeout takes more than a minute of real time (60 s is the smallest setting),
// so the black-box tests check that the settings are validated, that the cookie is not re-set on every
// request (nor by a refresh) and that it never outlives SESSION_TTL. The last suite is white-box: knowing
// SESSION_SECRET, it opens the sealed cookie and re-seals it with moved deadlines (layout from
// src/session/record.rs and src/session/keys.rs), so idle expiry and the idle-deadline re-set are tested
// without waiting.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Browser } from '../support/browser.mjs';
import { SESSION_COOKIE, signInSession, skipReason, startStack, waitUntilExpired } from '../support/stack.mjs';
import { startProviderlessWorker } from '../support/worker.mjs';
import { openCookie, sealCookie } from '../support/session-cookie.mjs';

const skip = skipReason();
const T = { timeout: 15_000, skip };

const sessionSetCookies = (hops) => hops.flatMap((h) => h.setCookie.filter((c) => c.startsWith(`${SESSION_COOKIE}=`)));

describe('session lifetime: SESSION_IDLE_TIMEOUT=60s, SESSION_TTL=1h', () => {
  let s;

  before(async () => {
    if (skip) return;
    s = await startStack({ vars: { SESSION_IDLE_TIMEOUT: '60s', SESSION_TTL: '1h' } });
  }, { timeout: 30_000 });

  after(async () => { await s?.close(); });

  test('the session cookie is not re-set on every request', T, async () => {
    const { b, cookie } = await signInSession(s);
    const hops = [];
    for (let i = 0; i < 10; i += 1) {
      // eslint-disable-next-line no-await-in-loop
      const hop = i % 2 ? await b.get(`${s.gw}/api/echo?i=${i}`) : await b.request(`${s.gw}/page?i=${i}`, { navigate: true });
      assert.equal(hop.status, 200, `request ${i}: ${hop.status} ${hop.location ?? ''}`);
      hops.push(hop);
    }
    assert.deepEqual(sessionSetCookies(hops), [],
      'ten requests within seconds of the sign-in must not re-set the cookie (at most once per a fraction of the idle timeout)');
    assert.equal(b.jar.get(SESSION_COOKIE).value, cookie.value);
  });

  test('the cookie never outlives SESSION_TTL and keeps its attributes', T, async () => {
    const { cookie } = await signInSession(s);
    const maxAge = Number(cookie.attrs['max-age']);
    assert.ok(Number.isInteger(maxAge) && maxAge > 0 && maxAge <= 3600, `Max-Age=${cookie.attrs['max-age']}`);
    assert.ok(cookie.secure && cookie.httpOnly && cookie.path === '/' && cookie.hostOnly);
    assert.equal(cookie.sameSite, 'lax');
  });

  test('a refresh does not re-set the cookie either', T, async () => {
    s.idp.setAccessTokenTtl(1);
    const { b, tokens } = await signInSession(s);
    s.idp.setAccessTokenTtl(null);
    await waitUntilExpired(tokens.access_token); // the next request refreshes
    const hop = await b.get(`${s.gw}/api/echo`);
    assert.equal(hop.status, 200);
    assert.equal(s.idp.issuedTokens().at(-1).grantType, 'refresh_token', 'the request refreshed the session');
    assert.deepEqual(sessionSetCookies([hop]), []);
  });
});

describe('session lifetime: SESSION_TTL=60s', () => {
  let s;

  before(async () => {
    if (skip) return;
    s = await startStack({ vars: { SESSION_TTL: '60s' } });
  }, { timeout: 30_000 });

  after(async () => { await s?.close(); });

  test('the cookie’s Max-Age is at most 60 s', T, async () => {
    const { cookie } = await signInSession(s);
    const maxAge = Number(cookie.attrs['max-age']);
    assert.ok(maxAge > 0 && maxAge <= 60, `Max-Age=${cookie.attrs['max-age']}`);
  });
});

describe('idle timeout and absolute expiry (white-box: the cookie re-sealed with moved deadlines)', () => {
  let s;
  let discovery;
  let secret;
  const IDLE = 60;

  before(async () => {
    if (skip) return;
    s = await startStack({ vars: { SESSION_IDLE_TIMEOUT: `${IDLE}s`, SESSION_TTL: '1h' } });
    [secret] = s.secrets.SESSION_SECRET.split(',');
    discovery = await (await fetch(`${s.idp.issuer}/.well-known/openid-configuration`)).json();
  }, { timeout: 30_000 });

  after(async () => { await s?.close(); });

  const now = () => Math.floor(Date.now() / 1000);

  /** A browser holding the session's cookie with its deadlines changed by `change(opened)`. */
  async function withDeadlines(change) {
    const a = await signInSession(s);
    const opened = openCookie(a.cookie.value, secret);
    const forged = { ...opened, ...change(opened) };
    a.b.jar.put({ ...a.cookie, value: sealCookie(forged, secret) });
    return { ...a, opened, forged };
  }

  test('a fresh cookie: idle deadline = now + SESSION_IDLE_TIMEOUT, absolute = now + SESSION_TTL', T, async () => {
    const t0 = now();
    const a = await signInSession(s);
    const c = openCookie(a.cookie.value, secret);
    assert.ok(Math.abs(c.idleUntil - (t0 + IDLE)) <= 2, `idle_until - now = ${c.idleUntil - t0}`);
    assert.ok(Math.abs(c.expiresAt - (t0 + 3600)) <= 2, `expires_at - now = ${c.expiresAt - t0}`);
  });

  test('a session unused for longer than the idle timeout ends: navigation → sign in, API → 401', T, async () => {
    const a = await withDeadlines(() => ({ idleUntil: now() - 1 }));
    const api = await a.b.get(`${s.gw}/api/echo`);
    assert.equal(api.status, 401, `${api.status} ${api.text.slice(0, 200)}`);
    a.b.jar.put({ ...a.cookie, value: sealCookie(a.forged, secret) }); // the 401 may have cleared it
    const nav = await a.b.request(`${s.gw}/page`, { navigate: true });
    assert.equal(nav.status, 302);
    assert.ok(nav.location.startsWith(discovery.authorization_endpoint), nav.location);
    assert.ok(nav.setCookie.some((h) => h.startsWith(`${SESSION_COOKIE}=`)), 'the dead cookie is cleared');
    // The same session with the idle deadline intact still works: only the idle deadline ended it.
    const ok = new Browser();
    ok.jar.put(a.cookie);
    assert.equal((await ok.get(`${s.gw}/api/echo`)).status, 200);
  });

  test('past half the idle timeout the cookie is re-set once, with a new idle deadline and the same absolute one', T, async () => {
    const a = await withDeadlines(() => ({ idleUntil: now() + IDLE / 2 - 5 }));
    const t0 = now();
    const first = await a.b.get(`${s.gw}/api/echo`);
    assert.equal(first.status, 200);
    const reset = first.setCookie.filter((h) => h.startsWith(`${SESSION_COOKIE}=`));
    assert.equal(reset.length, 1, 'the idle deadline should have been extended');
    const c = openCookie(a.b.jar.get(SESSION_COOKIE).value, secret);
    assert.ok(c.idleUntil >= t0 + IDLE - 2 && c.idleUntil <= t0 + IDLE + 2, `idle_until - now = ${c.idleUntil - t0}`);
    assert.equal(c.expiresAt, a.opened.expiresAt, 'the absolute deadline must not move');
    assert.ok(c.id.equals(a.opened.id), 'same session');
    const maxAge = Number(a.b.jar.get(SESSION_COOKIE).attrs['max-age']);
    assert.ok(maxAge <= a.opened.expiresAt - t0 + 1, `Max-Age ${maxAge} outlives SESSION_TTL`);
    const second = await a.b.get(`${s.gw}/api/echo`);
    assert.equal(second.status, 200);
    assert.deepEqual(second.setCookie.filter((h) => h.startsWith(`${SESSION_COOKIE}=`)), [], 'not re-set again right away');
  });

  test('the idle deadline is never moved past the absolute one', T, async () => {
    const a = await withDeadlines(() => ({ expiresAt: now() + 20, idleUntil: now() + 10 }));
    const res = await a.b.get(`${s.gw}/api/echo`);
    assert.equal(res.status, 200);
    const cookie = a.b.jar.get(SESSION_COOKIE);
    const c = openCookie(cookie.value, secret);
    assert.ok(c.idleUntil <= a.forged.expiresAt, `idle_until ${c.idleUntil} > expires_at ${a.forged.expiresAt}`);
    assert.ok(Number(cookie.attrs['max-age']) <= 21);
  });

  test('past SESSION_TTL the session ends even if it was just used', T, async () => {
    const a = await withDeadlines(() => ({ expiresAt: now() - 1, idleUntil: now() + IDLE }));
    const api = await a.b.get(`${s.gw}/api/echo`);
    assert.equal(api.status, 401);
  });
});

describe('session lifetime defaults: SESSION_TTL 8h, SESSION_IDLE_TIMEOUT 1h', () => {
  let s;

  before(async () => {
    if (skip) return;
    s = await startStack({ vars: { SESSION_TTL: undefined, SESSION_IDLE_TIMEOUT: undefined } });
  }, { timeout: 30_000 });

  after(async () => { await s?.close(); });

  test('the cookie lives 8 h at most; its idle deadline is 1 h away (white-box)', T, async () => {
    const t0 = Math.floor(Date.now() / 1000);
    const { cookie } = await signInSession(s);
    const maxAge = Number(cookie.attrs['max-age']);
    assert.ok(maxAge > 8 * 3600 - 10 && maxAge <= 8 * 3600, `Max-Age=${cookie.attrs['max-age']}`);
    const c = openCookie(cookie.value, s.secrets.SESSION_SECRET.split(',')[0]);
    assert.ok(Math.abs(c.idleUntil - (t0 + 3600)) <= 2, `idle_until - now = ${c.idleUntil - t0}`);
    assert.ok(Math.abs(c.expiresAt - (t0 + 8 * 3600)) <= 2, `expires_at - now = ${c.expiresAt - t0}`);
  });
});

describe('session lifetime settings are validated', () => {
  const workers = [];

  after(async () => { await Promise.allSettled(workers.map((w) => w.close())); });

  async function health(vars) {
    const w = await startProviderlessWorker({ vars });
    workers.push(w);
    const res = await fetch(`${w.url}/auth/health`, { headers: { accept: 'application/json' } });
    return { status: res.status, text: await res.text() };
  }

  for (const value of ['59s', '0', 'soon', '-5m']) {
    test(`SESSION_IDLE_TIMEOUT=${value} is refused, naming the setting`, T, async () => {
      const r = await health({ SESSION_IDLE_TIMEOUT: value });
      assert.equal(r.status, 500, r.text.slice(0, 300));
      assert.match(r.text, /SESSION_IDLE_TIMEOUT/);
    });
  }

  for (const value of ['60s', '15m', '1h']) {
    test(`SESSION_IDLE_TIMEOUT=${value} is accepted`, T, async () => {
      const r = await health({ SESSION_IDLE_TIMEOUT: value });
      assert.equal(r.status, 200, r.text.slice(0, 300));
    });
  }
});
