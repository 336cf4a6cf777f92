// 6. A misconfigured gateway refuses everything with a 500 page that names every bad setting — and
//    never shows a secret.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startOrigin } from '../support/origin.mjs';
import { startProviderlessWorker } from '../support/worker.mjs';
import { skipReason } from '../support/stack.mjs';

const skip = skipReason();
const T = { timeout: 10_000, skip };

function misconfigured(vars, secrets) {
  return startProviderlessWorker({ vars: { API_PATH_PREFIXES: '/api/', ...vars }, secrets });
}

describe('invalid configuration', () => {
  let origin;
  let w1;
  let w2;
  let w3;
  let w4;

  before(async () => {
    if (skip) return;
    origin = await startOrigin();
    // Missing OIDC_CLIENT_ID and a plain-http issuer on a non-loopback host.
    w1 = await misconfigured({ OIDC_CLIENT_ID: undefined, OIDC_ISSUER: 'http://idp.example.com', ORIGIN_URL: origin.url });
    // A too-short session secret, a second bad one in the list, and a PUBLIC_URL that is not a URL.
    w2 = await misconfigured(
      { PUBLIC_URL: 'not a url', ORIGIN_URL: origin.url },
      { SESSION_SECRET: `${'k'.repeat(40)},short-secret-value` },
    );
    // The client id as an API audience (ID tokens would pass as access tokens) and a plain-http
    // origin on a public host (tokens in clear text).
    w3 = await misconfigured({ API_AUDIENCES: 'api://orders,edgeguard', ORIGIN_URL: 'http://origin.example.com' });
    // Valid settings whose routes name an origin binding and a rate-limiting binding the Worker lacks.
    w4 = await misconfigured({
      ORIGIN_URL: origin.url,
      ROUTES: JSON.stringify([
        { prefix: '/', auth: 'public', origin: 'binding:STATIC_SITE', rate_limit: { binding: 'SITE_LIMIT', key: 'ip' } },
      ]),
    });
  }, { timeout: 30_000 });

  after(async () => {
    await Promise.allSettled([w1?.close(), w2?.close(), w3?.close(), w4?.close(), origin?.close()]);
  });

  for (const [path, headers] of [
    ['/auth/health', { accept: 'application/json' }],
    ['/', { accept: 'text/html', 'sec-fetch-mode': 'navigate' }],
    ['/api/echo', { accept: 'application/json' }],
    ['/auth/callback?code=a&state=b', { accept: 'text/html', 'sec-fetch-mode': 'navigate' }],
    ['/auth/login?rd=/', { accept: 'text/html', 'sec-fetch-mode': 'navigate' }],
  ]) {
    test(`missing OIDC_CLIENT_ID + http issuer on a public host: ${path} → 500 naming both`, T, async () => {
      const res = await fetch(`${w1.url}${path}`, { headers, redirect: 'manual' });
      const text = await res.text();
      assert.equal(res.status, 500, text.slice(0, 300));
      assert.match(text, /OIDC_CLIENT_ID/);
      assert.match(text, /OIDC_ISSUER/);
      assert.equal(res.headers.get('location'), null);
      assert.ok(!res.headers.getSetCookie().length, 'no cookie should be set by a misconfigured gateway');
    });
  }

  test('bad SESSION_SECRET and PUBLIC_URL are both named; no secret is shown', T, async () => {
    const res = await fetch(`${w2.url}/auth/health`);
    const text = await res.text();
    assert.equal(res.status, 500, text.slice(0, 300));
    assert.match(text, /SESSION_SECRET/);
    assert.match(text, /PUBLIC_URL/);
    assert.doesNotMatch(text, /short-secret-value|kkkkkkkk|client-secret-value-123/, 'the page shows a secret');
  });

  test('the client id as an API audience and a plain-http public origin are both refused, with the fix', T, async () => {
    const res = await fetch(`${w3.url}/auth/health`);
    const text = await res.text();
    assert.equal(res.status, 500, text.slice(0, 300));
    assert.match(text, /API_AUDIENCES/);
    assert.match(text, /ID tokens/);
    assert.match(text, /ORIGIN_URL/);
    assert.match(text, /plain http/);
  });

  test('bindings the routes name but the Worker lacks are refused at start-up, each with its fix', T, async () => {
    const res = await fetch(`${w4.url}/anything`);
    const text = await res.text();
    assert.equal(res.status, 500, text.slice(0, 300));
    assert.match(text, /binding:STATIC_SITE, but the Worker has no binding STATIC_SITE with fetch/);
    assert.match(text, /no rate-limiting binding SITE_LIMIT/);
    assert.match(text, /\[\[ratelimits\]\]/);
  });

  test('nothing reached the origin and the Worker logged the refusals', T, async () => {
    assert.deepEqual(origin.requests(), []);
    const entry = await w1.waitForLog((e) => typeof e.json?.reason === 'string');
    assert.ok(entry.json.reason);
  });
});
