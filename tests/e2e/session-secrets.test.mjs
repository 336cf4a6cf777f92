// SESSION_SECRET rotation: with "new,old" the cookies and KV records made under "old" still open, new ones
// are made under "new"; once "old" is dropped its sessions are refused. Each step restarts the Worker (a
// new workerd, nothing cached in memory) on the same port with the same KV folder.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { Browser } from '../support/browser.mjs';
import { signInSession, skipReason, startStack, waitUntilExpired } from '../support/stack.mjs';

const skip = skipReason();
const T = { timeout: 20_000, skip };

describe('SESSION_SECRET rotation', () => {
  let s;
  let discovery;
  const A = crypto.randomBytes(32).toString('base64url');
  const B = crypto.randomBytes(32).toString('base64url');

  before(async () => {
    if (skip) return;
    s = await startStack({ kvPersist: true, secrets: { SESSION_SECRET: A } });
    discovery = await (await fetch(`${s.idp.issuer}/.well-known/openid-configuration`)).json();
  }, { timeout: 30_000 });

  after(async () => { await s?.close(); });

  async function status(cookie, { navigate = false } = {}) {
    const b = new Browser();
    b.jar.put(cookie);
    if (navigate) return b.request(`${s.gw}/page`, { navigate: true });
    return b.get(`${s.gw}/api/echo`);
  }

  test('sessions survive a restart with the same secret (KV persisted)', T, async () => {
    const a = await signInSession(s);
    await s.restartWorker();
    const res = await status(a.cookie);
    assert.equal(res.status, 200, 'the harness must keep KV across restarts');
  });

  test('A → "B,A" → "B" → "A": old sessions open while A is listed, new ones are made with B', T, async () => {
    const old = await signInSession(s);
    assert.equal((await status(old.cookie)).status, 200);

    await s.restartWorker({ secrets: { SESSION_SECRET: `${B},${A}` } });
    const kept = await status(old.cookie);
    assert.equal(kept.status, 200, `a session made under A, with SESSION_SECRET="B,A": ${kept.status} ${kept.text.slice(0, 200)}`);
    assert.equal(kept.json.headers.authorization, `Bearer ${old.tokens.access_token}`, 'its KV record opened too');
    assert.equal(kept.json.headers['x-forwarded-user'], 'alice');
    const fresh = await signInSession(s, { user: 'bob' });
    assert.equal((await status(fresh.cookie)).status, 200);

    await s.restartWorker({ secrets: { SESSION_SECRET: B } });
    const refused = await status(old.cookie);
    assert.equal(refused.status, 401, `a session made under A once A is gone: ${refused.status}`);
    const nav = await status(old.cookie, { navigate: true });
    assert.equal(nav.status, 302);
    assert.ok(nav.location.startsWith(discovery.authorization_endpoint), nav.location);
    const newOne = await status(fresh.cookie);
    assert.equal(newOne.status, 200, 'the session made under "B,A" is sealed with B');
    assert.equal(newOne.json.headers['x-forwarded-user'], 'bob');

    await s.restartWorker({ secrets: { SESSION_SECRET: A } });
    assert.equal((await status(fresh.cookie)).status, 401, 'the session made under "B,A" must not open with A alone');
  });

  test('a session used under "B,A" (e.g. refreshed) still opens under "B,A" afterwards', T, async () => {
    await s.restartWorker({ secrets: { SESSION_SECRET: A } });
    s.idp.setAccessTokenTtl(1);
    const old = await signInSession(s);
    s.idp.setAccessTokenTtl(null);
    await waitUntilExpired(old.tokens.access_token); // the next request refreshes
    await s.restartWorker({ secrets: { SESSION_SECRET: `${B},${A}` } });
    const r1 = await status(old.cookie); // refreshes: the record is rewritten under the new key
    assert.equal(r1.status, 200, `${r1.status} ${r1.text.slice(0, 200)}`);
    const rotated = s.idp.issuedTokens().at(-1);
    assert.equal(rotated.grantType, 'refresh_token');
    assert.equal(r1.json.headers.authorization, `Bearer ${rotated.access_token}`);
    await s.restartWorker();
    const r2 = await status(old.cookie);
    assert.equal(r2.status, 200);
    assert.equal(r2.json.headers.authorization, `Bearer ${rotated.access_token}`, 'the rewritten record holds the new tokens');
  });
});
