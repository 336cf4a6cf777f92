// 5. Signing out ends the session for real: the old cookie no longer opens anything.
import { after, before, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Browser, parseForms } from '../support/browser.mjs';
import { SESSION_COOKIE, describeHops, sessionCookieSet, skipReason, startStack } from '../support/stack.mjs';

const skip = skipReason();
const T = { timeout: 10_000, skip };

describe('logout', () => {
  let s;
  let discovery;

  before(async () => {
    if (skip) return;
    s = await startStack();
    discovery = await (await fetch(`${s.idp.issuer}/.well-known/openid-configuration`)).json();
  }, { timeout: 30_000 });

  after(async () => { await s?.close(); });
  beforeEach(() => { s?.origin.reset(); });

  async function signedIn(user = 'alice') {
    const b = new Browser();
    const r = await b.signIn(`${s.gw}/home`, { username: user, password: user });
    assert.equal(r.final.status, 200, describeHops(r.hops));
    const cookie = b.jar.get(SESSION_COOKIE);
    assert.ok(cookie, 'no session cookie after sign-in');
    return { b, cookie };
  }

  test('GET /auth/logout shows a confirmation page and does not sign out', T, async () => {
    const { b } = await signedIn();
    const page = await b.request(`${s.gw}/auth/logout`, { navigate: true });
    assert.equal(page.status, 200, page.text.slice(0, 300));
    assert.match(page.contentType, /text\/html/);
    const forms = parseForms(page.text, page.url);
    assert.ok(forms.some((f) => f.method === 'post' && new URL(f.action).pathname === '/auth/logout'),
      'the page should have a form that POSTs to /auth/logout');
    assert.equal(sessionCookieSet([page]), null);
    assert.ok(!page.setCookie.some((h) => h.startsWith(`${SESSION_COOKIE}=`)), 'GET must not touch the session cookie');
    s.origin.reset();
    const still = await b.get(`${s.gw}/api/echo`);
    assert.equal(still.status, 200, 'the session should still work after GET /auth/logout');
  });

  test('POST /auth/logout clears the cookie, and the old cookie is refused afterwards', T, async () => {
    const { b, cookie } = await signedIn();
    const confirm = await b.request(`${s.gw}/auth/logout`, { navigate: true });
    const form = parseForms(confirm.text, confirm.url).find((f) => f.method === 'post');
    // One hop only: if the answer redirects, following it may start a new (silent) sign-in at the IdP.
    const hop = await b.request(form.action, {
      method: 'POST', body: new URLSearchParams(form.fields), navigate: true, initiator: confirm.url,
    });
    assert.ok([200, 302, 303].includes(hop.status), `POST /auth/logout answered ${hop.status}: ${hop.text.slice(0, 300)}`);
    const cleared = hop.setCookie.find((h) => h.startsWith(`${SESSION_COOKIE}=`));
    assert.ok(cleared, `no Set-Cookie for ${SESSION_COOKIE}: ${hop.setCookie.join(' | ')}`);
    assert.equal(b.jar.get(SESSION_COOKIE), undefined, 'the browser still holds the session cookie');

    // Replay the cookie from before the logout (as if copied): the session is gone server-side.
    s.origin.reset();
    const replay = new Browser();
    replay.jar.put(cookie);
    const api = await replay.get(`${s.gw}/api/echo`);
    assert.equal(api.status, 401, `old cookie on an API call: ${api.status} ${api.text.slice(0, 200)}`);
    const nav = await replay.request(`${s.gw}/home`, { navigate: true });
    assert.equal(nav.status, 302);
    assert.ok(nav.location.startsWith(discovery.authorization_endpoint), `redirected to ${nav.location}`);
    assert.deepEqual(s.origin.requests(), [], 'a request with the old cookie reached the origin');
  });

  test('logging out one session leaves another user’s session alone', T, async () => {
    const a = await signedIn('alice');
    const bob = await signedIn('bob');
    const out = await a.b.request(`${s.gw}/auth/logout`, { method: 'POST', navigate: true, initiator: `${s.gw}/auth/logout` });
    assert.ok(out.status < 400, `${out.status}: ${out.text.slice(0, 200)}`);
    s.origin.reset();
    const res = await bob.b.get(`${s.gw}/api/echo`);
    assert.equal(res.status, 200);
    assert.equal(res.json.headers['x-forwarded-user'], 'bob');
  });

  test('POST /auth/logout without a session does not fail', T, async () => {
    const b = new Browser();
    const hop = await b.request(`${s.gw}/auth/logout`, { method: 'POST', navigate: true, initiator: `${s.gw}/auth/logout` });
    assert.ok(hop.status < 500, `${hop.status}: ${hop.text.slice(0, 200)}`);
    assert.deepEqual(s.origin.requests(), []);
  });
});
