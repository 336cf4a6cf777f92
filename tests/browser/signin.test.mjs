// What a person sees in a real browser: Debian's Chromium, headless, driven by puppeteer-core (no
// browser download), against the wasm Worker in workerd, the real oidc-provider and the demo origin.
// The provider is on `localhost` and the gateway on `127.0.0.1`, so the sign-in round trip is
// cross-site as with a real provider (SameSite, __Host- cookies and CSP all apply for real).
// Skipped, with the reason, where Chromium is not installed (scripts/setup.sh --browser installs it).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { skipReason, startStack } from '../support/stack.mjs';
import { chromiumMissing, launchChromium } from '../support/chromium.mjs';

const skip = skipReason() ?? chromiumMissing() ?? false;
const T = { timeout: 30_000, skip };

describe('a person in Chromium', () => {
  let s;
  let browser;
  let page;
  let chromium;

  before(async () => {
    if (skip) return;
    s = await startStack();
    chromium = await launchChromium();
    ({ browser, page } = chromium);
  }, { timeout: 60_000 });

  after(async () => {
    await chromium?.close();
    await s?.close();
  });

  const shot = (name) => chromium.shot(name);

  test('signs in at the provider and lands on the page she asked for', T, async () => {
    await page.goto(`${s.gw}/private/page?from=browser`, { waitUntil: 'domcontentloaded' });
    assert.equal(new URL(page.url()).origin, s.idp.issuer.replace(/\/$/, ''), `not at the provider: ${page.url()}`);
    await page.type('#username', 'alice');
    await page.type('#password', 'alice');
    await Promise.all([page.waitForNavigation({ waitUntil: 'domcontentloaded' }), page.click('button[type=submit]')]);
    if (await page.$('form[action$="/confirm"]')) {
      await Promise.all([page.waitForNavigation({ waitUntil: 'domcontentloaded' }), page.click('form[action$="/confirm"] button')]);
    }
    await shot('signed-in');
    assert.equal(page.url(), `${s.gw}/private/page?from=browser`);
    const text = await page.evaluate(() => document.body.innerText);
    assert.match(text, /Hello from the origin/);
    assert.match(text, /alice/);
    const cookies = await browser.defaultBrowserContext().cookies(s.gw);
    const session = cookies.find((c) => c.name === '__Host-edgeguard');
    assert.ok(session, `no session cookie: ${cookies.map((c) => c.name).join(', ')}`);
    assert.equal(session.httpOnly, true);
  });

  test("the page's own fetch() calls go through with the session; scripts cannot read the cookie", T, async () => {
    const result = await page.evaluate(async () => {
      const me = await fetch('/auth/me');
      const api = await fetch('/api/echo?x=1');
      return { me: me.status, who: (await me.json()).sub, api: api.status, echo: await api.json(), cookie: document.cookie };
    });
    assert.equal(result.me, 200);
    assert.equal(result.who, 'alice');
    assert.equal(result.api, 200);
    assert.equal(result.echo.headers['x-forwarded-user'], 'alice');
    assert.match(result.echo.headers.authorization ?? '', /^Bearer /);
    assert.doesNotMatch(result.cookie, /edgeguard/, 'the session cookie is visible to scripts');
  });

  test('signs out, and the page is refused afterwards', T, async () => {
    await page.goto(`${s.gw}/auth/logout`, { waitUntil: 'domcontentloaded' });
    await Promise.all([page.waitForNavigation({ waitUntil: 'domcontentloaded' }), page.click('form button[type=submit]')]);
    await shot('signed-out');
    assert.match(await page.evaluate(() => document.body.innerText), /signed out/i);
    // (The gateway's own pages allow no scripts or fetches: its CSP is default-src 'none'.)
    const me = await page.goto(`${s.gw}/auth/me`, { waitUntil: 'domcontentloaded' });
    assert.equal(me.status(), 401);
    const response = await page.goto(`${s.gw}/private/page`, { waitUntil: 'domcontentloaded' });
    assert.notEqual(new URL(page.url()).origin, new URL(s.gw).origin, `still on the gateway: ${page.url()} (${response?.status()})`);
    const seen = s.origin.requests().filter((r) => r.path === '/private/page');
    assert.equal(seen.length, 1, 'the origin served the page again after sign-out');
  });
});
