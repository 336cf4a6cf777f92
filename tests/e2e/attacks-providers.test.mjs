// Attacks on several providers in one deployment (PROVIDERS), as a black-box RP conformance suite would try them:
// an authorization response with its RFC 9207 `iss` stripped, `/auth/login?provider=` with hostile values, a
// session cookie of one provider renamed to the other's, and a token signed by one provider's key claiming the
// other's issuer. Every refusal is a 4xx with a reason in the log, and nothing reaches the origin.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Browser } from '../support/browser.mjs';
import {
  PARTNERS_COOKIE, SESSION_COOKIE, describeHops, shareStack, signInSession, skipReason, startStack, twoProviderRoutes,
} from '../support/stack.mjs';
import { callApi, expectInvalidToken, mint } from '../support/tokens.mjs';

const skip = skipReason();
const T = { timeout: 20_000, skip };
const ROUTES = twoProviderRoutes();

describe('attacks on several providers', () => {
  let s;
  shareStack({ vars: { ROUTES }, secondIdp: {} }, { skip, use: (started) => { s = started; } });

  const tokenRequests = () => s.idp.tokenRequests().length + s.idp2.tokenRequests().length;

  test('an authorization response without iss, from providers that advertise it, is refused before the code is exchanged (RFC 9207 §2.4)', T, async () => {
    for (const [path, idp] of [['/home', s.idp], ['/partners/x', s.idp2]]) {
      const b = new Browser();
      const before = tokenRequests();
      // eslint-disable-next-line no-await-in-loop
      const r = await b.signIn(`${s.gw}${path}`, { stopBeforeCallback: true });
      assert.ok(r.callbackUrl, describeHops(r.hops));
      const stripped = new URL(r.callbackUrl);
      assert.equal(stripped.searchParams.get('iss'), idp.issuer, 'the provider sends iss');
      stripped.searchParams.delete('iss');
      // eslint-disable-next-line no-await-in-loop
      const res = await b.request(stripped.href, { navigate: true, initiator: idp.issuer });
      assert.equal(res.status, 400, `${path}: ${res.text.slice(0, 300)}`);
      // eslint-disable-next-line no-await-in-loop
      await s.worker.waitForLog((e) => e.json?.reason === 'callback_issuer_missing');
      assert.equal(tokenRequests(), before, 'no code was exchanged');
      assert.equal(b.jar.get(SESSION_COOKIE), undefined);
      assert.equal(b.jar.get(PARTNERS_COOKIE), undefined);
    }
    assert.deepEqual(s.origin.requests(), []);
  });

  test('an error response of one provider sent into the other\'s flow (its iss) is refused as a mix-up, not shown or retried as the flow\'s own (RFC 9207 §2.4)', T, async () => {
    for (const error of ['access_denied', 'consent_required']) {
      const b = new Browser();
      // eslint-disable-next-line no-await-in-loop
      const r = await b.signIn(`${s.gw}/home`, { stopBeforeCallback: true });
      assert.ok(r.callbackUrl, describeHops(r.hops));
      const flow = new URL(r.callbackUrl);
      const mixed = new URL('/auth/callback', s.gw);
      mixed.search = new URLSearchParams({ error, state: flow.searchParams.get('state'), iss: s.idp2.issuer }).toString();
      // eslint-disable-next-line no-await-in-loop
      const res = await b.request(mixed.href, { navigate: true, initiator: s.idp2.issuer });
      assert.equal(res.status, 400, `${error}: ${res.status} ${res.location ?? ''} ${res.text.slice(0, 200)}`);
      assert.ok(!res.location, 'no consent retry');
      // eslint-disable-next-line no-await-in-loop
      await s.worker.waitForLog((e) => e.json?.reason === 'callback_issuer_mismatch' && e.json?.path === '/auth/callback');
    }
    // The flow's own provider saying the same is its answer: the user sees why.
    const b = new Browser();
    const r = await b.signIn(`${s.gw}/home`, { stopBeforeCallback: true });
    const own = new URL('/auth/callback', s.gw);
    own.search = new URLSearchParams({ error: 'access_denied', state: new URL(r.callbackUrl).searchParams.get('state'), iss: s.idp.issuer }).toString();
    const res = await b.request(own.href, { navigate: true, initiator: s.idp.issuer });
    assert.equal(res.status, 403);
    assert.deepEqual(s.origin.requests(), []);
  });

  test('/auth/login?provider= with an unknown, URL-shaped or CR/LF-laden name is a 400 with one JSON log line, never a redirect', T, async () => {
    const hostile = ['nobody', 'https://evil.example/', '//evil.example', 'default\r\n{"reason":"forwarded"}', 'Partners', ''];
    for (const name of hostile) {
      const b = new Browser();
      // eslint-disable-next-line no-await-in-loop
      const res = await b.request(`${s.gw}/auth/login?provider=${encodeURIComponent(name)}&rd=/home`, { navigate: true });
      assert.equal(res.status, 400, `${JSON.stringify(name)}: ${res.status} ${res.location ?? ''}`);
      assert.ok(!res.location, res.location);
      assert.deepEqual(b.jar.all(/^__Secure-edgeguard-tx-/), [], 'no login transaction');
    }
    await s.worker.waitForLog((e) => e.json?.reason === 'provider_unknown');
    // Nothing the client wrote became a line of its own in the log.
    assert.ok(!s.worker.logs().some((e) => e.line.trim().startsWith('{"reason":"forwarded"')), 'an injected log line');
    assert.deepEqual(s.origin.requests(), []);
  });

  test('the default provider\'s session cookie renamed to the partners cookie opens nothing on the partners routes', T, async () => {
    const b = new Browser();
    const r = await b.signIn(`${s.gw}/home`, { username: 'alice', password: 'alice' });
    assert.equal(r.final.status, 200, describeHops(r.hops));
    s.origin.reset();
    const value = b.jar.get(SESSION_COOKIE).value;
    const forged = await new Browser().get(`${s.gw}/partners/api`, { headers: { cookie: `${PARTNERS_COOKIE}=${value}` } });
    assert.equal(forged.status, 401, forged.text.slice(0, 200));
    await s.worker.waitForLog((e) => e.json?.reason === 'session_cookie_invalid' && e.json?.path === '/partners/api');
    assert.deepEqual(s.origin.requests(), []);
  });

  test('hostile values on the providers\' endpoints are each a 4xx with a reason, never a 5xx, never the origin', T, async () => {
    const enc = encodeURIComponent;
    const cases = [
      ['GET', `/auth/frontchannel-logout?iss=${enc(s.idp.issuer)}&sid=${'a'.repeat(5000)}`],
      ['GET', '/auth/frontchannel-logout?iss=%00%ff&sid=x'],
      ['GET', `/auth/frontchannel-logout?iss=${enc('https://evil.example')}&sid=x`],
      ['GET', '/auth/frontchannel-logout?sid=x'],
      ['POST', `/auth/frontchannel-logout?iss=${enc(s.idp.issuer)}&sid=x`],
      ['GET', '/auth/login?provider=%ff%fe'],
      ['GET', `/auth/login?provider=${'p'.repeat(5000)}`],
      ['GET', '/auth/me?provider=nobody'],
      ['GET', '/auth/me?provider=%00'],
      ['GET', `/auth/callback?code=c&state=s&iss=${enc(s.idp2.issuer)}`],
      ['GET', '/auth/callback?code=c&state=s&iss=%ff'],
      ['POST', '/auth/backchannel-logout', 'logout_token=not.a.token'],
      ['POST', '/auth/backchannel-logout', `logout_token=${enc(`${Buffer.from('{"alg":"RS256"}').toString('base64url')}.${Buffer.from(JSON.stringify({ iss: 'https://evil.example' })).toString('base64url')}.x`)}`],
    ];
    for (const [method, path, body] of cases) {
      // eslint-disable-next-line no-await-in-loop
      const res = await fetch(`${s.gw}${path}`, {
        method, redirect: 'manual', body,
        headers: { accept: 'text/html', ...(body ? { 'content-type': 'application/x-www-form-urlencoded' } : {}) },
      });
      // eslint-disable-next-line no-await-in-loop
      await res.arrayBuffer();
      assert.ok(res.status >= 400 && res.status < 500, `${method} ${path.slice(0, 80)}: ${res.status}`);
    }
    assert.deepEqual(s.origin.requests(), []);
    const lines = s.worker.jsonLogs().filter((j) => j.status >= 400);
    assert.ok(lines.length >= cases.length && lines.every((j) => typeof j.reason === 'string' && j.reason.length > 0), JSON.stringify(lines.slice(-3)));
  });

  test('a token signed with one provider\'s key but claiming the other\'s issuer is refused on every route', T, async () => {
    // Signed by the partners provider's own key, iss/aud of the default provider, and the reverse.
    const forgedAsDefault = await mint(s.idp2, { iss: s.idp.issuer, aud: s.idp.resource });
    const forgedAsPartners = await mint(s.idp, { iss: s.idp2.issuer, aud: s.idp2.resource });
    for (const [path, token] of [
      ['/api/a/x', forgedAsDefault], ['/api/both/x', forgedAsDefault], ['/api/b/x', forgedAsPartners], ['/api/both/x', forgedAsPartners],
    ]) {
      // eslint-disable-next-line no-await-in-loop
      const res = await callApi(`${s.gw}${path}`, { token });
      expectInvalidToken(res, { what: path });
    }
    assert.deepEqual(s.origin.requests(), []);
  });
});

describe('attacks on several providers: logout of one provider never ends another\'s session', () => {
  let s;
  const EVENT = 'http://schemas.openid.net/event/backchannel-logout';

  before(async () => {
    if (skip) return;
    s = await startStack({ vars: { ROUTES }, secondIdp: {}, backchannelLogout: true });
  }, { timeout: 60_000 });

  after(async () => { await s?.close(); });

  /** A logout token signed with `idp`'s own key, with these claims over valid ones for `idp`. */
  const logoutToken = (idp, claims) => mint(idp, {
    aud: idp.clientId, events: { [EVENT]: {} }, scp: undefined, scope: undefined, client_id: undefined, tid: undefined, ...claims,
  }, { header: { typ: 'logout+jwt' } });

  const postLogout = (token) => fetch(`${s.gw}/auth/backchannel-logout`, {
    method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ logout_token: token }),
  });

  const alive = async (a) => (await a.b.get(`${s.gw}/api/echo`)).status === 200;

  test('front- and back-channel logouts of the partners provider naming a default session\'s sid end nothing', T, async () => {
    const a = await signInSession(s);
    const { sid, sub } = a.idClaims;
    assert.ok(sid, 'the default provider puts sid in its ID tokens');
    assert.ok(await alive(a));

    const front = await fetch(`${s.gw}/auth/frontchannel-logout?iss=${encodeURIComponent(s.idp2.issuer)}&sid=${encodeURIComponent(sid)}`);
    assert.equal(front.status, 200);
    await s.worker.waitForLog((e) => e.json?.reason === 'frontchannel_logout' && /^0 session/.test(e.json?.detail ?? ''));
    assert.ok(await alive(a), 'a partners front-channel logout ended a default session');

    // The partners provider's own valid logout token, naming the default session's sid and sub.
    const theirs = await postLogout(await logoutToken(s.idp2, { sub, sid }));
    assert.ok(theirs.status < 500, `status ${theirs.status}`);
    assert.ok(await alive(a), 'a partners back-channel logout ended a default session');

    // Signed with the partners key but claiming the default provider's issuer and audience.
    const forged = await postLogout(await logoutToken(s.idp2, { iss: s.idp.issuer, aud: s.idp.clientId, sub, sid }));
    assert.equal(forged.status, 400);
    assert.ok(await alive(a), 'a forged logout token ended the session');
    assert.deepEqual(await s.worker.sessionKeys().then((k) => k.includes(a.kvKey)), true);
  });
});
