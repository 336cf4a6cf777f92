// OpenID Connect Back-Channel Logout 1.0: the provider POSTs a logout token to /auth/backchannel-logout
// when its session ends, and the gateway ends every matching session (by `sid`, or all of `sub`'s).
// The IdP registers `${gw}/auth/backchannel-logout` (backchannel_logout_session_required), so its ID
// tokens carry `sid`. Forged and malformed logout tokens are refused with 400 and change nothing.
import { after, before, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import * as jose from 'jose';
import { Browser, parseForms } from '../support/browser.mjs';
import {
  SESSION_COOKIE, describeHops, sessionCookieSet, signInSession, skipReason, startStack, waitUntilExpired,
} from '../support/stack.mjs';

const skip = skipReason();
const T = { timeout: 15_000, skip };
const EVENT = 'http://schemas.openid.net/event/backchannel-logout';

describe('back-channel logout', () => {
  let s;
  let discovery;

  before(async () => {
    if (skip) return;
    s = await startStack({ backchannelLogout: true });
    discovery = await (await fetch(`${s.idp.issuer}/.well-known/openid-configuration`)).json();
  }, { timeout: 30_000 });

  after(async () => { await s?.close(); });
  beforeEach(() => { s?.origin.reset(); });

  const now = () => Math.floor(Date.now() / 1000);

  /** Claims of a valid logout token for `sub`/`sid` (either may be undefined to leave it out). */
  function claims({ sub, sid } = {}) {
    const c = {
      iss: s.idp.issuer,
      aud: s.idp.clientId,
      iat: now(),
      exp: now() + 120,
      jti: crypto.randomBytes(16).toString('base64url'),
      events: { [EVENT]: {} },
    };
    if (sub !== undefined) c.sub = sub;
    if (sid !== undefined) c.sid = sid;
    return c;
  }

  const mint = (payload, { header = { typ: 'logout+jwt' }, ...opts } = {}) => s.idp.tools.sign(payload, { header, ...opts });

  /** Signed with the IdP's current RS256 key and exactly this protected header (plus alg and kid). */
  async function mintRaw(payload, header = {}) {
    const jwk = s.idp.keys.find((k) => k.alg === 'RS256');
    return new jose.CompactSign(new TextEncoder().encode(JSON.stringify(payload)))
      .setProtectedHeader({ ...header, alg: 'RS256', kid: jwk.kid })
      .sign(await jose.importJWK(jwk, 'RS256'));
  }

  async function postLogoutToken(token, { raw } = {}) {
    const res = await fetch(`${s.gw}/auth/backchannel-logout`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: raw ?? new URLSearchParams({ logout_token: token }),
    });
    const text = await res.text();
    let json = null;
    try { json = JSON.parse(text); } catch { json = null; }
    return { status: res.status, headers: res.headers, text, json };
  }

  async function alive(session) {
    const r = await session.b.get(`${s.gw}/api/echo`);
    return r.status === 200;
  }

  async function assertEnded(session) {
    assert.ok(!(await s.worker.sessionKeys()).includes(session.kvKey), 'the KV record must be deleted');
    const replay = new Browser();
    replay.jar.put(session.cookie);
    const apiRes = await replay.get(`${s.gw}/api/echo`);
    assert.equal(apiRes.status, 401, `API call on an ended session: ${apiRes.status}`);
    const nav = await replay.request(`${s.gw}/page`, { navigate: true });
    assert.equal(nav.status, 302);
    assert.ok(nav.location.startsWith(discovery.authorization_endpoint), nav.location);
  }

  test('the IdP advertises back-channel logout and its ID tokens carry sid', T, async () => {
    assert.equal(discovery.backchannel_logout_supported, true);
    const a = await signInSession(s);
    assert.ok(a.idClaims.sid, 'no sid in the ID token');
  });

  test('RP-initiated logout at the IdP → the IdP posts a logout token → the gateway session ends', T, async () => {
    const a = await signInSession(s, { user: 'alice' });
    const bob = await signInSession(s, { user: 'bob' });
    const deliveries0 = s.idp.backchannelLogouts().length;

    // The user signs out at the provider itself (its end_session page), not at the gateway.
    const page = await a.b.navigate(`${discovery.end_session_endpoint}?client_id=${s.idp.clientId}`);
    assert.equal(page.final.status, 200, describeHops(page.hops));
    const form = parseForms(page.final.text, page.final.url).find((f) => f.method === 'post');
    assert.ok(form, page.final.text.slice(0, 300));
    const done = await a.b.submit(form, { logout: 'yes' }, { from: page.final.url });
    assert.ok(done.final.status < 400, describeHops(done.hops));

    const deliveries = s.idp.backchannelLogouts().slice(deliveries0);
    assert.equal(deliveries.length, 1, JSON.stringify(deliveries));
    assert.equal(deliveries[0].ok, true, `the gateway refused the IdP's logout token: ${deliveries[0].error}`);
    assert.equal(deliveries[0].sid, a.idClaims.sid);
    await assertEnded(a);
    assert.ok(await alive(bob), 'another user’s session must survive');
  });

  test('a logout token for one sid ends that session only', T, async () => {
    const one = await signInSession(s);
    const two = await signInSession(s); // another browser: another IdP session, another sid
    assert.notEqual(one.idClaims.sid, two.idClaims.sid);
    await s.idp.backchannelLogout({ sub: 'alice', sid: one.idClaims.sid }); // rejects unless 200/204
    await assertEnded(one);
    assert.ok(await alive(two), 'the same user’s other session (other sid) must survive');
  });

  test('a logout token with sub and no sid ends all of that user’s sessions; answers 200 + no-store', T, async () => {
    const one = await signInSession(s, { user: 'alice' });
    const two = await signInSession(s, { user: 'alice' });
    const bob = await signInSession(s, { user: 'bob' });
    const res = await postLogoutToken(await mint(claims({ sub: 'alice' })));
    assert.equal(res.status, 200, `${res.status} ${res.text.slice(0, 200)}`);
    assert.match(res.headers.get('cache-control') ?? '', /no-store/);
    await assertEnded(one);
    await assertEnded(two);
    assert.ok(await alive(bob));
  });

  /**
   * `n` sign-ins whose callbacks reach the gateway at the same moment, each in `browsers[i]`.
   * Returns [{ cookie, kvKey, idClaims }] (cookies taken from each callback's answer).
   */
  async function concurrentSignIns(browsers) {
    const keysBefore = new Set(await s.worker.sessionKeys());
    const issued0 = s.idp.issuedTokens().length;
    const pending = await Promise.all(browsers.map((b) => b.signIn(`${s.gw}/home`, { stopBeforeCallback: true })));
    for (const p of pending) assert.ok(p.callbackUrl, describeHops(p.hops));
    const callbacks = await Promise.all(browsers.map((b, i) => b.request(pending[i].callbackUrl, { navigate: true, initiator: s.idp.issuer })));
    assert.deepEqual(callbacks.map((c) => c.status), callbacks.map(() => 302));
    const added = (await s.worker.sessionKeys()).filter((k) => !keysBefore.has(k));
    assert.equal(added.length, browsers.length, 'one KV record per sign-in');
    const codes = s.idp.issuedTokens().slice(issued0).filter((t) => t.grantType === 'authorization_code');
    return {
      cookies: callbacks.map((c) => sessionCookieSet([c])),
      sids: new Set(codes.map((t) => JSON.parse(Buffer.from(t.id_token.split('.')[1], 'base64url')).sid)),
    };
  }

  async function statusWith(cookie) {
    const b = new Browser();
    b.jar.put(cookie);
    return (await b.get(`${s.gw}/api/echo`)).status;
  }

  test('sign-ins that complete at the same moment are all ended by a sub logout (no lost index update)', T, async () => {
    const { cookies } = await concurrentSignIns(Array.from({ length: 5 }, () => new Browser()));
    assert.deepEqual(await Promise.all(cookies.map(statusWith)), [200, 200, 200, 200, 200]);
    const res = await postLogoutToken(await mint(claims({ sub: 'alice' })));
    assert.equal(res.status, 200);
    const after1 = await Promise.all(cookies.map(statusWith));
    assert.deepEqual(after1, [401, 401, 401, 401, 401], `statuses after the sub logout: ${after1.join(',')} (200 = survived)`);
  });

  test('tabs of one browser signing in at the same moment share a sid; a sid logout ends them all', T, async () => {
    const b = new Browser();
    await signInSession(s, { browser: b }); // the IdP session: later sign-ins in b are silent, same sid
    b.jar.delete(SESSION_COOKIE); // as if the tabs had no gateway session yet
    const { cookies, sids } = await concurrentSignIns([b, b, b, b]);
    assert.equal(sids.size, 1, 'one IdP session, one sid');
    const [sid] = sids;
    await s.idp.backchannelLogout({ sub: 'alice', sid });
    const after1 = await Promise.all(cookies.map(statusWith));
    assert.deepEqual(after1, [401, 401, 401, 401], `statuses after the sid logout: ${after1.join(',')} (200 = survived)`);
  });

  test('a refresh still in flight when the back-channel logout arrives does not bring the session back', T, async () => {
    s.idp.setAccessTokenTtl(1);
    const a = await signInSession(s);
    s.idp.setAccessTokenTtl(null);
    await waitUntilExpired(a.tokens.access_token); // the next request refreshes
    let entered;
    const inRefresh = new Promise((resolve) => { entered = resolve; });
    let release;
    const gate = new Promise((resolve) => { release = resolve; });
    s.idp.setTokenHook(async (_body, _t, { grantType }) => {
      if (grantType === 'refresh_token') { entered(); await gate; }
    });
    try {
      const pending = a.b.get(`${s.gw}/api/echo`);
      await inRefresh;
      await s.idp.backchannelLogout({ sub: 'alice', sid: a.idClaims.sid });
      assert.ok(!(await s.worker.sessionKeys()).includes(a.kvKey), 'the back-channel logout deleted the record');
      release();
      await pending;
    } finally {
      release();
      s.idp.setTokenHook(null);
    }
    await assertEnded(a);
  });

  test('a logout token without typ is accepted; a replayed jti is refused with 400', T, async () => {
    const a = await signInSession(s);
    const noTyp = await mintRaw(claims({ sub: 'alice', sid: a.idClaims.sid }));
    assert.equal(JSON.parse(Buffer.from(noTyp.split('.')[0], 'base64url')).typ, undefined);
    const first = await postLogoutToken(noTyp);
    assert.equal(first.status, 200, `${first.status} ${first.text.slice(0, 200)}`);
    await assertEnded(a);

    const b2 = await signInSession(s);
    const replay = await postLogoutToken(noTyp);
    assert.equal(replay.status, 400, `replayed logout token: ${replay.status}`);
    assert.equal(replay.json?.error, 'invalid_request', replay.text.slice(0, 200));
    assert.ok(await alive(b2));
  });

  test('aud as an array holding the client id is accepted', T, async () => {
    const a = await signInSession(s);
    const c = claims({ sub: 'alice', sid: a.idClaims.sid });
    c.aud = [s.idp.clientId];
    const res = await postLogoutToken(await mint(c));
    assert.equal(res.status, 200, `${res.status} ${res.text.slice(0, 200)}`);
    await assertEnded(a);
  });

  test('a valid logout token that matches no session still answers 200', T, async () => {
    const res = await postLogoutToken(await mint(claims({ sub: 'nobody', sid: crypto.randomBytes(16).toString('base64url') })));
    assert.equal(res.status, 200, `${res.status} ${res.text.slice(0, 200)}`);
  });

  test('the IdP’s own logout token, replayed, is refused with 400', T, async () => {
    const a = await signInSession(s);
    const out0 = s.idp.outgoing().length;
    await s.idp.backchannelLogout({ sub: 'alice', sid: a.idClaims.sid });
    const sent = s.idp.outgoing().slice(out0).find((o) => o.url === `${s.gw}/auth/backchannel-logout`);
    assert.ok(sent, 'the IdP sent nothing');
    const replay = await postLogoutToken(null, { raw: sent.body });
    assert.equal(replay.status, 400);
    assert.equal(replay.json?.error, 'invalid_request', replay.text.slice(0, 200));
  });

  describe('refused logout tokens: 400 {"error":"invalid_request"}, the session lives on', () => {
    let victim;
    before(async () => {
      if (skip) return;
      victim = await signInSession(s, { user: 'alice' });
    });

    const cases = [
      ['no events claim', async (c) => { delete c.events; return mint(c); }],
      ['events without the back-channel logout event', async (c) => { c.events = { 'http://example.com/other': {} }; return mint(c); }],
      ['events as a string', async (c) => { c.events = EVENT; return mint(c); }],
      ['with a nonce', async (c) => { c.nonce = 'n-0S6_WzA2Mj'; return mint(c); }],
      ['wrong aud', async (c) => { c.aud = 'another-client'; return mint(c); }],
      ['wrong iss', async (c) => { c.iss = 'https://idp.example.com'; return mint(c); }],
      ['iat 10 minutes old', async (c) => { c.iat = now() - 600; return mint(c); }],
      ['iat in the future', async (c) => { c.iat = now() + 600; c.exp = now() + 900; return mint(c); }],
      ['expired (exp in the past)', async (c) => { c.iat = now() - 120; c.exp = now() - 60; return mint(c); }],
      ['no jti', async (c) => { delete c.jti; return mint(c); }],
      ['neither sid nor sub', async (c) => { delete c.sid; delete c.sub; return mint(c); }],
      ['typ at+jwt (an access token)', async (c) => mint(c, { header: { typ: 'at+jwt' } })],
      ['signed with a key not in the JWKS', async (c) => mint(c, { key: 'foreign' })],
      ['signature spoiled', async (c) => s.idp.tools.spoil(await mint(c))],
      ['payload tampered after signing', async (c) => s.idp.tools.tamper(await mint({ ...c, sid: 'x' }), ({ payload }) => { payload.sid = c.sid; })],
      ['alg none', async (c) => mint(c, { alg: 'none' })],
      ['not a JWT', async () => 'this.is-not.a-jwt'],
    ];

    for (const [name, make] of cases) {
      test(name, T, async () => {
        const token = await make(claims({ sub: 'alice', sid: victim.idClaims.sid }));
        const res = await postLogoutToken(token);
        assert.equal(res.status, 400, `${res.status} ${res.text.slice(0, 200)}`);
        assert.equal(res.json?.error, 'invalid_request', res.text.slice(0, 200));
        assert.ok((await s.worker.sessionKeys()).includes(victim.kvKey), 'the session record must survive');
        assert.ok(await alive(victim), 'the session must still work');
      });
    }

    test('no logout_token parameter', T, async () => {
      const res = await postLogoutToken(null, { raw: new URLSearchParams({ token: 'x' }) });
      assert.equal(res.status, 400);
      assert.equal(res.json?.error, 'invalid_request', res.text.slice(0, 200));
      assert.ok(await alive(victim));
    });
  });
});
