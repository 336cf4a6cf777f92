// 4. /auth/login?rd=… returns to a path on this gateway and never anywhere else; two logins started
//    in parallel in one browser (two tabs) both complete.
import { after, before, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Browser } from '../support/browser.mjs';
import {
  TX_COOKIE_PREFIX, describeHops, sessionCookieSet, skipReason, startStack,
} from '../support/stack.mjs';

const skip = skipReason();
const T = { timeout: 10_000, skip };

describe('return paths and parallel logins', () => {
  let s;

  before(async () => {
    if (skip) return;
    s = await startStack();
  }, { timeout: 30_000 });

  after(async () => { await s?.close(); });
  beforeEach(() => { s?.origin.reset(); });

  test('/auth/login?rd=/some/path signs in and returns to /some/path (query kept)', T, async () => {
    const b = new Browser();
    const rd = '/some/path?tab=2&q=a%20b';
    const r = await b.signIn(`${s.gw}/auth/login?rd=${encodeURIComponent(rd)}`);
    assert.equal(r.final.status, 200, describeHops(r.hops));
    assert.equal(r.final.url, `${s.gw}${rd}`);
    const seen = s.origin.requests();
    assert.equal(seen.length, 1);
    assert.equal(seen[0].path, '/some/path');
    assert.equal(seen[0].query, '?tab=2&q=a%20b');
  });

  const attacks = [
    '//evil.example',
    '//evil.example/path',
    'https://evil.example',
    'https://evil.example/auth/callback',
    'http://evil.example',
    'HTTPS://evil.example',
    '/\\evil.example',
    '\\\\evil.example',
    '/\\/evil.example',
    '\\/evil.example',
    '/%5Cevil.example',
    '/%2F/evil.example',
    '%2F%2Fevil.example',
    '///evil.example',
    '/\t/evil.example',
    ' //evil.example',
    'https:evil.example',
    'https:/evil.example',
    'javascript:alert(1)',
    'data:text/html,<script>alert(1)</script>',
    '@evil.example',
    'evil.example',
    `http://127.0.0.1.evil.example/`,
  ];

  /** Where a browser would go for this Location, resolved like Chromium would (backslash = slash). */
  function browserTarget(raw, base) {
    return new URL(raw.replace(/\\/g, '/'), base);
  }

  for (const rd of attacks) {
    test(`open redirect refused: rd=${JSON.stringify(rd)}`, T, async () => {
      const b = new Browser();
      const start = await b.request(`${s.gw}/auth/login?rd=${encodeURIComponent(rd)}`, { navigate: true });
      assert.ok(start.status < 500, `${start.status}: ${start.text.slice(0, 200)}`);
      if (start.status >= 400) return; // refused outright: fine
      assert.ok([302, 303].includes(start.status), `unexpected ${start.status}`);
      const first = browserTarget(start.rawLocation, start.url);
      assert.ok(first.origin === new URL(s.idp.issuer).origin || first.origin === s.gw,
        `/auth/login sent the browser to ${first.href}`);

      const r = await new Browser().signIn(`${s.gw}/auth/login?rd=${encodeURIComponent(rd)}`);
      const { callback } = r;
      assert.ok(callback, describeHops(r.hops));
      if (callback.status >= 400 && callback.status < 500) return; // refused at the callback: fine
      assert.ok([302, 303].includes(callback.status), `callback ${callback.status}: ${callback.text.slice(0, 200)}`);
      const raw = callback.rawLocation;
      assert.doesNotMatch(raw, /^\s*[/\\]{2}/, `protocol-relative Location: ${raw}`);
      if (/^\s*[a-z][a-z0-9+.-]*:/i.test(raw)) {
        assert.ok(raw.startsWith(`${s.gw}/`), `absolute Location to another origin: ${raw}`);
      }
      const target = browserTarget(raw, callback.url);
      assert.equal(target.origin, s.gw, `the browser would go to ${target.href}`);
      // …and every later hop stays on the gateway as well.
      for (const h of r.hops.slice(r.hops.indexOf(callback))) {
        assert.equal(new URL(h.url).origin, s.gw, describeHops(r.hops));
      }
      assert.ok(sessionCookieSet(r.hops), 'sign-in itself should still work');
    });
  }

  test('a sign-in the provider initiates (OIDC Core §4: iss, login_hint, target_link_uri) lands on the target on the gateway', T, async () => {
    const b = new Browser();
    const target = `${s.gw}/reports/q3?view=full`;
    const start = await b.request(`${s.gw}/auth/login?${new URLSearchParams({
      iss: s.idp.issuer, login_hint: 'alice', target_link_uri: target,
    })}`, { navigate: true, initiator: s.idp.issuer });
    assert.equal(start.status, 302, start.text.slice(0, 200));
    const authorize = new URL(start.location);
    assert.equal(authorize.origin, new URL(s.idp.issuer).origin);
    assert.equal(authorize.searchParams.get('login_hint'), 'alice');
    const r = await b.signIn(start.location);
    assert.equal(r.final.status, 200, describeHops(r.hops));
    assert.equal(r.final.url, target);
    assert.equal(s.origin.last().path, '/reports/q3');
  });

  test('a provider-initiated sign-in with a foreign target_link_uri returns to /, and an unknown iss starts nothing', T, async () => {
    const r = await new Browser().signIn(`${s.gw}/auth/login?${new URLSearchParams({
      iss: s.idp.issuer, target_link_uri: 'https://evil.example/phish',
    })}`);
    assert.ok(r.callback, describeHops(r.hops));
    assert.equal(browserTarget(r.callback.rawLocation, r.callback.url).href, `${s.gw}/`);
    const b = new Browser();
    const res = await b.request(`${s.gw}/auth/login?${new URLSearchParams({ iss: 'https://evil.example' })}`, { navigate: true });
    assert.equal(res.status, 400);
    assert.ok(!res.location);
    assert.deepEqual(b.jar.all(new RegExp(`^${TX_COOKIE_PREFIX}`)), [], 'no login transaction');
    await s.worker.waitForLog((e) => e.json?.reason === 'login_issuer_unknown');
  });

  test('an open-redirect attempt via the originally requested path is impossible too', T, async () => {
    const b = new Browser();
    const r = await b.signIn(`${s.gw}//evil.example/x`);
    const { callback } = r;
    // `//` is an empty path segment: refused before any sign-in starts.
    assert.equal(r.hops[0].status, 400, describeHops(r.hops));
    assert.equal(callback, undefined, describeHops(r.hops));
    const viaQuery = await b.signIn(`${s.gw}/x?next=//evil.example/x`);
    assert.ok(viaQuery.callback, describeHops(viaQuery.hops));
    const target = browserTarget(viaQuery.callback.rawLocation, viaQuery.callback.url);
    assert.equal(target.origin, s.gw, `the browser would go to ${target.href}`);
  });

  test('the return path after sign-in is never another site', T, async () => {
    const b = new Browser();
    const r = await b.signIn(`${s.gw}/%2F%2Fevil.example/x`);
    const { callback } = r;
    if (!callback) {
      assert.equal(r.hops[0].status, 400, describeHops(r.hops));
      return;
    }
    if (callback.status >= 400) return;
    const target = browserTarget(callback.rawLocation, callback.url);
    assert.equal(target.origin, s.gw, `the browser would go to ${target.href}`);
  });

  test('two logins started in parallel in one browser both complete', T, async () => {
    const b = new Browser();
    const one = await b.signIn(`${s.gw}/tab/one?n=1`, { stopBeforeCallback: true });
    const two = await b.signIn(`${s.gw}/tab/two?n=2`, { stopBeforeCallback: true });
    assert.ok(one.callbackUrl && two.callbackUrl, 'both logins should reach the callback');
    const tx = b.jar.all(new RegExp(`^${TX_COOKIE_PREFIX}`));
    assert.equal(tx.length, 2, `two transaction cookies expected, got ${tx.map((c) => c.name).join(', ')}`);

    // Finish them in reverse order, as tabs do.
    const r2 = await b.navigate(two.callbackUrl, { initiator: s.idp.issuer });
    assert.equal(r2.final.status, 200, describeHops(r2.hops));
    assert.equal(r2.final.url, `${s.gw}/tab/two?n=2`);
    const r1 = await b.navigate(one.callbackUrl, { initiator: s.idp.issuer });
    assert.equal(r1.final.status, 200, describeHops(r1.hops));
    assert.equal(r1.final.url, `${s.gw}/tab/one?n=1`);
    assert.deepEqual(s.origin.requests().map((q) => q.url), ['/tab/two?n=2', '/tab/one?n=1']);
    assert.equal(b.jar.all(new RegExp(`^${TX_COOKIE_PREFIX}`)).length, 0, 'transaction cookies left behind');
  });
});
