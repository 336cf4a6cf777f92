// KV + Durable Object deployment shape: SESSION_OBJECTS bound to the Worker's own SessionObject class, and two
// separate Worker instances (two isolates, each with its own memory and wasm instance) running the same script,
// sharing KV and the Durable Object namespace (the replica binds the class through `scriptName`).
//
// - 20 parallel requests split over both instances on one session whose access token has expired: exactly one
//   refresh grant at the provider, everyone forwarded with the one new token.
// - Logout through one instance, or a back-channel logout the provider posts to it: the other refuses the session
//   at its next revalidation (SESSION_REVALIDATE=5s here), even where KV has not caught up (the test puts back the
//   record and removes the tombstone, as another location's KV would still show them): the object is what says
//   "ended".
import { after, before, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Browser } from '../support/browser.mjs';
import { USERS } from '../support/idp.mjs';
import {
  refreshGrants, resetStack, signInSession, skipReason, startStack, waitUntilExpired,
} from '../support/stack.mjs';

const skip = skipReason();
const T = { timeout: 40_000, skip };
const REVALIDATE_SECS = 5;

describe('sessions with a Durable Object per session (two Worker instances)', () => {
  let s;
  let replica;
  // The provider's account for alice, which a test edits between sign-in and refresh.
  const alice = { password: 'alice', claims: { ...USERS.alice.claims } };

  before(async () => {
    if (skip) return;
    s = await startStack({
      backchannelLogout: true,
      idp: { users: { alice } },
      vars: { SESSION_REVALIDATE: `${REVALIDATE_SECS}s`, SESSION_IDLE_TIMEOUT: '8h' },
      worker: { durableObjects: { SESSION_OBJECTS: 'SessionObject' }, replicas: 1 },
    });
    [replica] = s.worker.replicaUrls;
  }, { timeout: 60_000 });

  after(async () => { await s?.close(); });
  beforeEach(() => {
    if (s) resetStack(s);
    alice.claims = { ...USERS.alice.claims };
  });

  const refreshRequests = () => refreshGrants(s.idp);

  /** Signs in and warms the session on the replica; returns what `endedOnReplica` needs. */
  async function signedInOnBoth() {
    const session = await signInSession(s);
    const kv = await s.worker.kv();
    const record = await kv.get(session.kvKey, 'arrayBuffer');
    const onReplica = new Browser();
    onReplica.jar.put(session.cookie);
    const warm = await onReplica.get(`${replica}/api/echo?warm`);
    assert.equal(warm.status, 200, `replica before logout: ${warm.status}`);
    return { ...session, kv, record, onReplica, warmedAt: Date.now() };
  }

  /**
   * After the session was ended through the main instance: KV as another location would still show it (record back,
   * no tombstone); the replica's warm copy is trusted until its revalidation, then the session is refused there.
   */
  async function endedOnReplica({ kv, kvKey, record, onReplica, warmedAt }) {
    await kv.put(kvKey, record, { expirationTtl: 3600 });
    const tombstones = (await kv.list({ prefix: 'session-ended:' })).keys.map((k) => k.name);
    assert.ok(tombstones.length >= 1, 'the logout left a KV tombstone');
    await Promise.all(tombstones.map((name) => kv.delete(name)));

    const stillWarm = await onReplica.get(`${replica}/api/echo?still`);
    assert.ok(Date.now() - warmedAt < REVALIDATE_SECS * 1000, 'the machine was too slow to observe the warm window');
    assert.equal(stillWarm.status, 200, 'the replica is a separate isolate whose warm copy lasts SESSION_REVALIDATE');

    const wait = warmedAt + REVALIDATE_SECS * 1000 + 1100 - Date.now();
    if (wait > 0) await new Promise((resolve) => { setTimeout(resolve, wait); });
    s.origin.reset();
    const refused = await onReplica.get(`${replica}/api/echo?after`);
    assert.equal(refused.status, 401, `replica after its revalidation: ${refused.status} ${refused.text.slice(0, 200)}`);
    assert.deepEqual(s.origin.requests(), [], 'nothing reached the origin');
    const nav = await onReplica.request(`${replica}/page`, { navigate: true });
    assert.equal(nav.status, 302, 'a navigation is sent to sign in again');
  }

  test('20 parallel requests on an expired session, over two instances: exactly one refresh grant', T, async () => {
    // 8 s: long enough to warm both instances on a busy machine (refreshed only in its last 2 s).
    s.idp.setAccessTokenTtl(8);
    const reqs0 = refreshRequests().length;
    const { b, tokens } = await signInSession(s);
    s.idp.setAccessTokenTtl(600);
    // Both instances hold the session before the token expires (each has its own warm copy).
    for (const base of [s.gw, replica]) {
      const warm = await b.get(`${base}/api/echo?warm`);
      assert.equal(warm.status, 200, `${base}: ${warm.status} ${warm.text.slice(0, 200)}`);
      assert.equal(warm.json.headers.authorization, `Bearer ${tokens.access_token}`, 'warmed up with the first token');
    }
    assert.equal(refreshRequests().length, reqs0, 'no refresh while warming up');
    await waitUntilExpired(tokens.access_token);

    const answers = await Promise.all(Array.from({ length: 20 }, (_, i) => b.get(`${i % 2 ? replica : s.gw}/api/echo?i=${i}`)));
    assert.deepEqual(answers.map((a) => a.status), Array(20).fill(200), answers.map((a) => a.text.slice(0, 120)).join('\n'));
    const attempts = refreshRequests().slice(reqs0);
    assert.equal(attempts.length, 1,
      `expected exactly one refresh request at the IdP, got ${attempts.length}: ${attempts.map((r) => `${r.status} ${r.error ?? ''}`).join('; ')}`);
    const fresh = s.idp.issuedTokens().at(-1);
    assert.equal(fresh.grantType, 'refresh_token');
    const forwarded = new Set(answers.map((a) => a.json.headers.authorization));
    assert.deepEqual([...forwarded], [`Bearer ${fresh.access_token}`], 'all 20, on both instances, forwarded with the one new token');
    assert.deepEqual(s.idp.errors().filter((e) => e.error === 'invalid_grant'), [], 'no refresh token was presented twice');

    // The session lives on with the rotated refresh token, on both instances.
    for (const base of [s.gw, replica]) {
      const again = await b.get(`${base}/api/echo?again`);
      assert.equal(again.status, 200);
      assert.equal(again.json.headers.authorization, `Bearer ${fresh.access_token}`);
    }
    assert.equal(refreshRequests().length - reqs0, 1);
  });

  test('logout through one instance: the other refuses the session at its next revalidation, whatever KV says', T, async () => {
    const session = await signedInOnBoth();
    const confirm = await session.b.request(`${s.gw}/auth/logout`, { navigate: true });
    const out = await session.b.request(`${s.gw}/auth/logout`, {
      method: 'POST', body: new URLSearchParams({}), navigate: true, initiator: confirm.url,
    });
    assert.equal(out.status, 200, `logout: ${out.status} ${out.text.slice(0, 200)}`);
    await endedOnReplica(session);
  });

  test('back-channel logout received by one instance: the other refuses the session at its next revalidation', T, async () => {
    const session = await signedInOnBoth();
    await s.idp.backchannelLogout({ sub: 'alice', sid: session.idClaims.sid }); // rejects unless 200/204
    await endedOnReplica(session);
  });

  test('a refresh\'s new ID token reaches the other instance through the object, whatever KV says', T, async () => {
    s.idp.setAccessTokenTtl(4);
    const session = await signedInOnBoth();
    s.idp.setAccessTokenTtl(600);
    const { onReplica, kv, kvKey, record, tokens } = session;
    alice.claims = { ...alice.claims, email: 'alice.cooper@example.com' };
    await waitUntilExpired(tokens.access_token, Math.max(2100, REVALIDATE_SECS * 1000));
    const grants0 = refreshRequests().length;
    const r1 = await session.b.get(`${s.gw}/api/echo`);
    assert.equal(r1.status, 200, r1.text.slice(0, 300));
    assert.equal(r1.json.headers['x-forwarded-email'], 'alice.cooper@example.com', 'the new ID token\'s e-mail');
    // Where the replica runs, KV still shows the record from sign-in (old tokens, old ID token).
    await kv.put(kvKey, record, { expirationTtl: 3600 });
    const r2 = await onReplica.get(`${replica}/api/echo`);
    assert.equal(r2.status, 200, r2.text.slice(0, 300));
    assert.equal(r2.json.headers['x-forwarded-email'], 'alice.cooper@example.com', 'the object handed over the new claims');
    assert.equal(r2.json.headers.authorization, r1.json.headers.authorization);
    assert.equal(refreshRequests().length - grants0, 1, 'one refresh grant');
  });
});
