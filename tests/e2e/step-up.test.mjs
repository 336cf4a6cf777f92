// Step-up (OIDC Core acr_values / max_age, RFC 9470) and sign-in hints, against the wasm Worker
// and the real oidc-provider. The provider's answer is made stronger with the token hook (it has
// no second factor of its own), which is also how a provider that ignores acr_values is played.
import { after, before, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Browser } from '../support/browser.mjs';
import { describeHops, skipReason, startStack } from '../support/stack.mjs';
import { parseChallenge } from '../support/tokens.mjs';

const skip = skipReason();
const T = { timeout: 15_000, skip };

describe('step-up and authorization parameters', () => {
  let s;
  before(async () => {
    if (skip) return;
    const routes = [
      { prefix: '/', auth: 'session' },
      { prefix: '/admin/', auth: 'session', acr_values: ['mfa'] },
    ];
    s = await startStack({ vars: { ROUTES: JSON.stringify(routes), OIDC_AUTH_PARAMS: 'ui_locales=en' } });
  }, { timeout: 30_000 });
  after(async () => { await s?.close(); });
  beforeEach(() => { s?.idp.setTokenHook(null); s?.origin.reset(); });

  const strongerIdToken = (acr) => async (body, t, info) => {
    if (info.grantType !== 'authorization_code') return;
    body.id_token = await t.resign(body.id_token, ({ payload }) => { payload.acr = acr; });
  };
  const authorizeParams = (hops) => {
    const hop = hops.find((h) => h.url.startsWith(`${s.idp.issuer}/auth?`));
    assert.ok(hop, describeHops(hops));
    return new URL(hop.url).searchParams;
  };

  test('a password session is sent to step up for an mfa route, and the stronger session gets in', T, async () => {
    const b = new Browser();
    assert.equal((await b.signIn(`${s.gw}/home`)).final.status, 200);
    s.idp.setTokenHook(strongerIdToken('mfa'));
    const r = await b.signIn(`${s.gw}/admin/users`);
    assert.equal(authorizeParams(r.hops).get('acr_values'), 'mfa');
    assert.equal(r.final.status, 200, describeHops(r.hops));
    assert.equal(r.final.url, `${s.gw}/admin/users`);
    await s.worker.waitForLog((l) => l.json?.reason === 'step_up_redirect');
    assert.deepEqual(s.origin.requests().map((q) => q.url), ['/home', '/admin/users']);
  });

  test('a provider that ignores acr_values gets a 403 page at the callback, not a redirect loop', T, async () => {
    const b = new Browser();
    await b.signIn(`${s.gw}/home`);
    s.origin.reset();
    const r = await b.signIn(`${s.gw}/admin/users`);
    assert.equal(r.callback?.status, 403, describeHops(r.hops));
    await s.worker.waitForLog((l) => l.json?.reason === 'step_up_not_satisfied');
    assert.deepEqual(s.origin.requests(), []);
  });

  test('an API call from a weaker session gets 401 insufficient_user_authentication (RFC 9470)', T, async () => {
    const b = new Browser();
    await b.signIn(`${s.gw}/home`);
    const res = await b.get(`${s.gw}/admin/users`);
    assert.equal(res.status, 401);
    const c = parseChallenge(res.headers.get('www-authenticate'));
    assert.equal(c.params.error, 'insufficient_user_authentication');
    assert.equal(c.params.acr_values, 'mfa');
  });

  test('/auth/login passes login_hint and prompt on; OIDC_AUTH_PARAMS ride on every sign-in', T, async () => {
    const b = new Browser();
    const r = await b.navigate(`${s.gw}/auth/login?rd=/x&login_hint=alice%40example.com&prompt=login&client_id=evil`, { follow: false });
    const q = new URL(r.final.location).searchParams;
    assert.equal(q.get('login_hint'), 'alice@example.com');
    assert.equal(q.get('prompt'), 'login');
    assert.equal(q.get('ui_locales'), 'en');
    assert.equal(q.get('client_id'), s.idp.clientId);
  });
});
