// Several identity providers in one deployment (PROVIDERS): two real oidc-provider instances side by side, the
// flat OIDC_* settings as provider `default` and s.idp2 as `partners`. Each route's provider signs users in; a
// session of one is no session on the other's routes; a bearer token's `iss` picks the keys that verify it and a
// token of one provider is refused on the other's routes; a flow state of one provider is never finished with the
// other's answer.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Browser } from '../support/browser.mjs';
import {
  PARTNERS_COOKIE, SESSION_COOKIE, describeHops, jwtPayload, shareStack, skipReason, twoProviderRoutes,
} from '../support/stack.mjs';
import { callApi, clientCredentialsToken, expectInvalidToken, mint } from '../support/tokens.mjs';

const skip = skipReason();
const T = { timeout: 20_000, skip };
const ROUTES = twoProviderRoutes({
  prefix: '/obo/', auth: 'bearer', providers: ['default', 'partners'], origin_token: 'on_behalf_of',
  token_target: { audience: 'https://inner.example.test' },
});

describe('several providers in one deployment', () => {
  let s;
  const opts = { vars: { ROUTES }, idp: { tokenExchange: true }, secondIdp: { tokenExchange: true } };
  shareStack(opts, { skip, use: (started) => { s = started; } });

  /** The access token the origin received with the last request, decoded. */
  const originToken = () => {
    const seen = s.origin.requests();
    assert.ok(seen.length > 0, 'the origin got the request');
    return jwtPayload(seen.at(-1).headers.authorization.replace(/^Bearer /, ''));
  };

  /** Signs in through the route at `path` in `b`; asserts which provider was asked and returns the hops. */
  const signInAt = async (b, path, idp, user = 'alice') => {
    const r = await b.signIn(`${s.gw}${path}`, { username: user, password: user });
    assert.ok(r.hops.some((h) => h.url.startsWith(`${idp.issuer}/`)), `signed in at ${idp.issuer}:\n${describeHops(r.hops)}`);
    assert.equal(r.final.status, 200, `${describeHops(r.hops)}\n${r.final.text.slice(0, 300)}`);
    return r;
  };

  test('each route signs in with its provider; one provider\'s session is no session on the other\'s routes', T, async () => {
    const b = new Browser();
    await signInAt(b, '/home', s.idp);
    assert.ok(b.jar.get(SESSION_COOKIE), 'the default provider keeps the classic cookie');
    assert.equal(originToken().iss, s.idp.issuer);

    // On the partners route the default session does not count: the browser is sent to the partners provider.
    const first = await b.request(`${s.gw}/partners/page`, { navigate: true });
    assert.equal(first.status, 302);
    assert.ok(first.location.startsWith(`${s.idp2.issuer}/`), first.location);
    assert.equal(new URL(first.location).searchParams.get('client_id'), 'partners-client');
    await signInAt(b, '/partners/page', s.idp2, 'bob');
    assert.ok(b.jar.get(PARTNERS_COOKIE), `a ${PARTNERS_COOKIE} cookie`);
    assert.ok(b.jar.get(SESSION_COOKIE), 'the default session was kept');
    assert.equal(originToken().iss, s.idp2.issuer, 'the partners route forwards the partners access token');

    // Both sessions live side by side, each on its own routes.
    s.origin.reset();
    assert.equal((await b.request(`${s.gw}/home`, { navigate: true })).status, 200);
    assert.equal(originToken().iss, s.idp.issuer);
    const me = await b.get(`${s.gw}/auth/me?provider=partners`);
    assert.equal(me.status, 200, me.text);
    assert.equal(JSON.parse(me.text).provider_name, 'partners');

    // A browser with only a partners session is sent to the default provider on the main site.
    const partnersOnly = new Browser();
    await signInAt(partnersOnly, '/partners/x', s.idp2);
    const main = await partnersOnly.request(`${s.gw}/home`, { navigate: true });
    assert.equal(main.status, 302);
    assert.ok(main.location.startsWith(`${s.idp.issuer}/`), main.location);
    // Its cookie value under the default cookie's name opens nothing (the name is sealed in).
    const forged = new Browser();
    const value = partnersOnly.jar.get(PARTNERS_COOKIE).value;
    const res = await forged.get(`${s.gw}/api/x`, { headers: { cookie: `${SESSION_COOKIE}=${value}` } });
    assert.equal(res.status, 401);
    await s.worker.waitForLog((e) => e.json?.reason === 'session_cookie_invalid');
  });

  test('a flow state of one provider replayed at the callback with the other provider\'s iss is refused', T, async () => {
    const b = new Browser();
    const tokenRequestsBefore = s.idp2.tokenRequests().length + s.idp.tokenRequests().length;
    const r = await b.signIn(`${s.gw}/home`, { stopBeforeCallback: true });
    assert.ok(r.callbackUrl, describeHops(r.hops));
    const replay = new URL(r.callbackUrl);
    assert.equal(replay.searchParams.get('iss'), s.idp.issuer, 'the IdP sends RFC 9207 iss');
    replay.searchParams.set('iss', s.idp2.issuer);
    const res = await b.request(replay.href, { navigate: true, initiator: s.idp2.issuer });
    assert.equal(res.status, 400, res.text.slice(0, 300));
    await s.worker.waitForLog((e) => e.json?.reason === 'callback_issuer_mismatch');
    assert.equal(s.idp2.tokenRequests().length + s.idp.tokenRequests().length, tokenRequestsBefore, 'no code was exchanged');
    assert.equal(b.jar.get(SESSION_COOKIE), undefined);
    assert.equal(b.jar.get(PARTNERS_COOKIE), undefined);
  });

  test('a token of one provider is refused on the other\'s routes; a route of both accepts each', T, async () => {
    const fromDefault = await clientCredentialsToken(s.idp);
    const fromPartners = await clientCredentialsToken(s.idp2);
    for (const [token, path] of [[fromDefault, '/api/a/x'], [fromPartners, '/api/b/x'], [fromDefault, '/api/both/x'], [fromPartners, '/api/both/x']]) {
      s.origin.reset();
      const res = await callApi(`${s.gw}${path}`, { token });
      assert.equal(res.status, 200, `${path}: ${res.status} ${res.body}`);
      assert.equal(originToken().iss, jwtPayload(token).iss);
    }
    s.origin.reset();
    expectInvalidToken(await callApi(`${s.gw}/api/b/x`, { token: fromDefault }), { what: 'default token on partners route' });
    expectInvalidToken(await callApi(`${s.gw}/api/a/x`, { token: fromPartners }), { what: 'partners token on default route' });
    assert.equal(s.origin.requests().length, 0, 'nothing reached the origin');
    await s.worker.waitForLog((e) => e.json?.reason === 'issuer_unknown');
    // Claiming the default provider's issuer but signed with the partners provider's key: the default keys alone
    // are tried, and refuse it.
    const confused = await mint(s.idp2, { iss: s.idp.issuer, aud: s.idp.resource });
    expectInvalidToken(await callApi(`${s.gw}/api/both/x`, { token: confused }), { what: 'cross-issuer key' });
  });

  test('an on-behalf-of exchange goes to the provider that issued the caller\'s token, never the other', T, async () => {
    const exchanges = (idp) => idp.tokenRequests().filter((r) => r.grantType.startsWith('urn:ietf:params:oauth:grant-type:'));
    const before = [exchanges(s.idp).length, exchanges(s.idp2).length];
    const token = await clientCredentialsToken(s.idp2);
    const res = await callApi(`${s.gw}/obo/x`, { token });
    assert.equal(res.status, 200, res.body);
    const exchanged = originToken();
    assert.equal(exchanged.iss, s.idp2.issuer);
    assert.equal(exchanged.aud, 'https://inner.example.test');
    assert.deepEqual([exchanges(s.idp).length, exchanges(s.idp2).length], [before[0], before[1] + 1]);
    assert.equal(exchanges(s.idp2).at(-1).params.subject_token, token);
  });

  test('a token naming an unknown issuer is refused before anything is fetched', T, async () => {
    await s.restartWorker(); // a cold isolate: no discovery or keys cached
    let discovery = 0;
    for (const idp of [s.idp, s.idp2]) idp.setDiscoveryHook(() => { discovery += 1; });
    try {
      const token = await mint(s.idp2, { iss: 'https://unknown.example' });
      expectInvalidToken(await callApi(`${s.gw}/api/both/x`, { token }), { what: 'unknown issuer' });
      await s.worker.waitForLog((e) => e.json?.reason === 'issuer_unknown');
      assert.equal(discovery, 0, 'no discovery (and so no JWKS) fetched');
    } finally {
      for (const idp of [s.idp, s.idp2]) idp.setDiscoveryHook(null);
    }
  });

  test('/auth/logout ends the sessions of every provider', T, async () => {
    const b = new Browser();
    await signInAt(b, '/home', s.idp);
    await signInAt(b, '/partners/x', s.idp2);
    const confirm = await b.request(`${s.gw}/auth/logout`, { navigate: true });
    const res = await b.request(`${s.gw}/auth/logout`, { method: 'POST', navigate: true, initiator: confirm.url });
    assert.equal(res.status, 200, res.text.slice(0, 200));
    assert.equal(b.jar.get(SESSION_COOKIE), undefined);
    assert.equal(b.jar.get(PARTNERS_COOKIE), undefined);
    assert.ok(s.idp.revocations().length > 0 && s.idp2.revocations().length > 0, 'each refresh token revoked at its provider');
  });
});
