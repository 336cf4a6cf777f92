// The demo's static site in a real browser (issue 11, item 6): Debian's Chromium signs in, lands on
// the page served from the Worker's own assets (binding:ASSETS, run_worker_first), sees the page's
// own fetch('/api/...') and fetch('/auth/me') succeed with the session, signs out, and is refused.
// Skipped, with the reason, where Chromium is not installed (scripts/setup.sh --browser installs it).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { REPO_ROOT } from '../support/worker.mjs';
import { skipReason, startStack } from '../support/stack.mjs';
import { chromiumMissing, launchChromium } from '../support/chromium.mjs';

const skip = skipReason() ?? chromiumMissing() ?? false;
const T = { timeout: 30_000, skip };
// As wrangler.toml's demo: the page from the assets, the JSON API on the demo origin.
const ROUTES = JSON.stringify([
  { prefix: '/', auth: 'session', origin: 'binding:ASSETS' },
  { prefix: '/api/', auth: 'session' },
]);

describe('the static demo site in Chromium', () => {
  let s;
  let browser;
  let page;
  let chromium;

  before(async () => {
    if (skip) return;
    s = await startStack({
      vars: { ROUTES },
      worker: { assets: { directory: path.join(REPO_ROOT, 'public'), binding: 'ASSETS' } },
    });
    s.idp.setAccessTokenTtl(6); // short-lived, so the page shows a refresh within seconds
    chromium = await launchChromium();
    ({ browser, page } = chromium);
  }, { timeout: 60_000 });

  after(async () => {
    await chromium?.close();
    await s?.close();
  });

  const shot = (name) => chromium.shot(name);
  const shown = (id) => page.$eval(`#${id}`, (e) => e.textContent);

  test('signs in and lands on the static page; its fetch() calls succeed with the session', T, async () => {
    await page.goto(`${s.gw}/`, { waitUntil: 'domcontentloaded' });
    assert.equal(new URL(page.url()).origin, s.idp.issuer.replace(/\/$/, ''), `not at the provider: ${page.url()}`);
    await page.type('#username', 'alice');
    await page.type('#password', 'alice');
    await Promise.all([page.waitForNavigation({ waitUntil: 'domcontentloaded' }), page.click('button[type=submit]')]);
    if (await page.$('form[action$="/confirm"]')) {
      await Promise.all([page.waitForNavigation({ waitUntil: 'domcontentloaded' }), page.click('form[action$="/confirm"] button')]);
    }
    assert.equal(page.url(), `${s.gw}/`);
    await page.waitForSelector('#api[data-done="true"]');
    await page.waitForSelector('#me[data-done="true"]');
    await shot('static-site-signed-in');
    assert.match(await page.evaluate(() => document.body.innerText), /A protected static page/);
    const api = await shown('api');
    assert.match(api, /^200\n/, api);
    const echo = JSON.parse(api.slice(api.indexOf('\n') + 1));
    assert.equal(echo.headers['x-forwarded-user'], 'alice');
    assert.match(echo.headers.authorization ?? '', /^Bearer /);
    const me = await shown('me');
    assert.match(me, /^200\n/, me);
    assert.equal(JSON.parse(me.slice(me.indexOf('\n') + 1)).sub, 'alice');
    const who = await shown('who');
    assert.match(who, /^Signed in as Alice Liddell <alice@example\.com>, sub alice; provider http/, who);
    assert.match(who, /session ends at .+ \(in \d+ h \d+ min\)/, who);
    const token = await shown('token');
    assert.match(token, /^Access token expires at .+ \(in \d+/, token);
    assert.ok(s.origin.requests().some((r) => r.path === '/api/hello'), 'the API call did not reach the origin');
  });

  test('the page shows when the access token was refreshed, through /auth/me', T, async () => {
    const before = JSON.parse((await shown('me')).replace(/^\d+\n/, '')).access_token_expires_at;
    await page.waitForFunction(() => /Refreshed 1×/.test(document.getElementById('token').textContent), { timeout: 25_000 });
    await shot('static-site-refreshed');
    const after = JSON.parse((await shown('me')).replace(/^\d+\n/, '')).access_token_expires_at;
    assert.ok(after > before, `expiry ${before} → ${after}`);
    assert.match(await shown('token'), new RegExp(`expires at .+ \\(in \\d+ s\\)`));
    assert.ok(s.idp.counts().refresh_token >= 1, JSON.stringify(s.idp.counts()));
  });

  test('signs out, and the static page is refused afterwards', T, async () => {
    await page.goto(`${s.gw}/auth/logout`, { waitUntil: 'domcontentloaded' });
    await Promise.all([page.waitForNavigation({ waitUntil: 'domcontentloaded' }), page.click('form button[type=submit]')]);
    assert.match(await page.evaluate(() => document.body.innerText), /signed out/i);
    const statuses = [];
    page.on('response', (r) => { if (new URL(r.url()).origin === s.gw) statuses.push([new URL(r.url()).pathname, r.status()]); });
    await page.goto(`${s.gw}/index.html`, { waitUntil: 'domcontentloaded' });
    await shot('static-site-signed-out');
    assert.deepEqual(statuses[0], ['/index.html', 302], JSON.stringify(statuses));
    assert.notEqual(new URL(page.url()).origin, s.gw, `still on the gateway: ${page.url()}`);
    assert.doesNotMatch(await page.evaluate(() => document.body.innerText), /A protected static page/);
  });
});
