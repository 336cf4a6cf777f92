// Self-tests of the headless browser's cookie jar and form parsing (no network).
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { CookieJar, parseForms } from '../support/browser.mjs';

const GW = 'http://127.0.0.1:8787';

describe('CookieJar', () => {
  test('host-only cookies ignore ports but not hosts', () => {
    const jar = new CookieJar();
    jar.setCookie('a=1; Path=/', `${GW}/x`);
    assert.equal(jar.cookieHeader('http://127.0.0.1:9999/'), 'a=1');
    assert.equal(jar.cookieHeader('http://localhost:8787/'), '');
  });

  test('Domain must match; a matching Domain covers subdomains', () => {
    const jar = new CookieJar();
    assert.equal(jar.setCookie('a=1; Domain=evil.example', 'http://app.example.test/').stored, false);
    assert.equal(jar.setCookie('b=2; Domain=example.test', 'http://app.example.test/').stored, true);
    assert.equal(jar.cookieHeader('http://other.example.test/'), 'b=2');
    assert.equal(jar.cookieHeader('http://example.test.evil/'), '');
  });

  test('Path scoping and default path', () => {
    const jar = new CookieJar();
    jar.setCookie('tx=1; Path=/auth/callback', `${GW}/start`);
    jar.setCookie('d=1', `${GW}/a/b/c`);
    assert.equal(jar.cookieHeader(`${GW}/auth/callback?code=1`), 'tx=1');
    assert.equal(jar.cookieHeader(`${GW}/auth/callbackx`), '');
    assert.equal(jar.cookieHeader(`${GW}/auth`), '');
    assert.equal(jar.cookieHeader(`${GW}/a/b/zzz`), 'd=1');
    assert.equal(jar.cookieHeader(`${GW}/a/bz`), '');
  });

  test('Secure cookies: accepted and sent on loopback http, refused elsewhere on http', () => {
    const jar = new CookieJar();
    assert.equal(jar.setCookie('s=1; Secure; Path=/', `${GW}/`).stored, true);
    assert.equal(jar.cookieHeader(`${GW}/`), 's=1');
    assert.equal(jar.setCookie('s=1; Secure', 'http://app.example.test/').stored, false);
    jar.setCookie('h=1; Secure; Path=/', 'https://app.example.test/');
    assert.equal(jar.cookieHeader('http://app.example.test/'), '');
    assert.equal(jar.cookieHeader('https://app.example.test/'), 'h=1');
  });

  test('__Host- and __Secure- prefixes are enforced', () => {
    const jar = new CookieJar();
    assert.equal(jar.setCookie('__Host-a=1; Secure; Path=/', `${GW}/`).stored, true);
    assert.equal(jar.setCookie('__Host-b=1; Path=/', `${GW}/`).stored, false);
    assert.equal(jar.setCookie('__Host-c=1; Secure; Path=/x', `${GW}/`).stored, false);
    assert.equal(jar.setCookie('__Host-d=1; Secure; Path=/; Domain=127.0.0.1', `${GW}/`).stored, false);
    assert.equal(jar.setCookie('__Secure-e=1; Path=/', `${GW}/`).stored, false);
    assert.equal(jar.setCookie('__Secure-f=1; Secure; Path=/auth/callback', `${GW}/`).stored, true);
  });

  test('Max-Age=0 and past Expires delete; Max-Age wins over Expires', () => {
    const jar = new CookieJar();
    jar.setCookie('a=1; Path=/', `${GW}/`);
    jar.setCookie('b=1; Path=/', `${GW}/`);
    jar.setCookie('c=1; Path=/; Max-Age=60; Expires=Thu, 01 Jan 1970 00:00:00 GMT', `${GW}/`);
    assert.equal(jar.setCookie('a=; Path=/; Max-Age=0', `${GW}/`).deleted, true);
    assert.equal(jar.setCookie('b=; Path=/; Expires=Thu, 01 Jan 1970 00:00:00 GMT', `${GW}/`).deleted, true);
    assert.equal(jar.cookieHeader(`${GW}/`), 'c=1');
  });

  test('deletion must name the same path', () => {
    const jar = new CookieJar();
    jar.setCookie('t=1; Path=/auth/callback', `${GW}/`);
    jar.setCookie('t=; Path=/; Max-Age=0', `${GW}/`);
    assert.equal(jar.cookieHeader(`${GW}/auth/callback`), 't=1');
  });

  test('SameSite: Lax is sent on cross-site top-level GET navigations only; Strict never cross-site', () => {
    const jar = new CookieJar();
    jar.setCookie('lax=1; Path=/; SameSite=Lax', `${GW}/`);
    jar.setCookie('strict=1; Path=/; SameSite=Strict', `${GW}/`);
    jar.setCookie('none=1; Path=/; SameSite=None; Secure', `${GW}/`);
    const names = (ctx) => jar.cookiesFor(`${GW}/`, ctx).map((c) => c.name).sort().join(',');
    assert.equal(names({ crossSite: false }), 'lax,none,strict');
    assert.equal(names({ crossSite: true, method: 'GET', topLevelNavigation: true }), 'lax,none');
    assert.equal(names({ crossSite: true, method: 'POST', topLevelNavigation: true }), 'none');
    assert.equal(names({ crossSite: true, method: 'GET', topLevelNavigation: false }), 'none');
  });

  test('longer paths first in the Cookie header', () => {
    const jar = new CookieJar();
    jar.setCookie('a=root; Path=/', `${GW}/`);
    jar.setCookie('a=deep; Path=/auth/callback', `${GW}/`);
    assert.equal(jar.cookieHeader(`${GW}/auth/callback`), 'a=deep; a=root');
  });
});

describe('parseForms', () => {
  test('finds method, absolute action and fields', () => {
    const forms = parseForms(`
      <form method="post" action="/interaction/abc/login"><input name="username" value="a&amp;b">
      <input type="password" name="password"><input type="hidden" name="x" value='1'><button type="submit">Go</button></form>
      <form action="?q=1"><input name="z"></form>`, 'http://localhost:9400/interaction/abc');
    assert.equal(forms.length, 2);
    assert.equal(forms[0].method, 'post');
    assert.equal(forms[0].action, 'http://localhost:9400/interaction/abc/login');
    assert.deepEqual(forms[0].fields, { username: 'a&b', password: '', x: '1' });
    assert.equal(forms[1].method, 'get');
    assert.equal(forms[1].action, 'http://localhost:9400/interaction/abc?q=1');
  });
});
