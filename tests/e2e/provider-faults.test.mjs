// When the provider misbehaves the gateway answers 502/504 (its fault, not the user's), sets no session
// and forwards nothing; once the provider is back, sign-in works again.
// Each suite has its own Worker: the first tests of each need an isolate that has not yet cached the
// discovery document (or the signing keys), and tests run in order.
import { after, before, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Browser } from '../support/browser.mjs';
import { describeHops, sessionCookieSet, skipReason, startStack } from '../support/stack.mjs';

const skip = skipReason();
const T = { timeout: 10_000, skip };

describe('provider faults: discovery', () => {
  let s;

  before(async () => {
    if (skip) return;
    s = await startStack();
  }, { timeout: 30_000 });

  after(async () => { await s?.close(); });
  beforeEach(() => {
    if (!s) return;
    s.idp.setFault(null);
    s.origin.reset();
  });

  for (const fault of ['down', '500', 'garbage']) {
    test(`discovery ${fault} → a navigation gets 502/504, not a redirect`, T, async () => {
      s.idp.setFault({ discovery: fault });
      const hop = await new Browser().request(`${s.gw}/page`, { navigate: true });
      assert.ok([502, 504].includes(hop.status), `${hop.status}: ${hop.text.slice(0, 300)}`);
      assert.equal(hop.location, null);
      assert.equal(sessionCookieSet([hop]), null);
      assert.deepEqual(s.origin.requests(), []);
    });
  }
});

describe('provider faults: keys and token endpoint', () => {
  let s;

  before(async () => {
    if (skip) return;
    s = await startStack();
  }, { timeout: 30_000 });

  after(async () => { await s?.close(); });
  beforeEach(() => {
    if (!s) return;
    s.idp.setFault(null);
    s.origin.reset();
  });

  test('JWKS answering 500 before any key is cached → 502/503/504, no session', T, async () => {
    s.idp.setFault({ jwks: '500' });
    const b = new Browser();
    const pending = await b.signIn(`${s.gw}/page`, { stopBeforeCallback: true });
    const start = pending.hops[0];
    // A gateway may fetch the keys when the login starts or at the callback; either must fail cleanly.
    const hop = start.status >= 500 ? start : await b.request(pending.callbackUrl, { navigate: true, initiator: s.idp.issuer });
    assert.ok([502, 503, 504].includes(hop.status), `${hop.status}: ${hop.text.slice(0, 300)}\n${describeHops(pending.hops)}`);
    assert.equal(sessionCookieSet([hop]), null);
    assert.deepEqual(s.origin.requests(), []);
  });

  for (const fault of ['500', 'garbage', 'down']) {
    test(`token endpoint ${fault} → the callback answers 502/504, no session`, T, async () => {
      const b = new Browser();
      const pending = await b.signIn(`${s.gw}/page`, { stopBeforeCallback: true });
      assert.ok(pending.callbackUrl, describeHops(pending.hops));
      s.idp.setFault({ token: fault });
      const hop = await b.request(pending.callbackUrl, { navigate: true, initiator: s.idp.issuer });
      assert.ok([502, 504].includes(hop.status), `${hop.status}: ${hop.text.slice(0, 300)}`);
      assert.match(hop.contentType, /text\/html/);
      assert.equal(sessionCookieSet([hop]), null);
      assert.deepEqual(s.origin.requests(), []);
    });
  }

  test('once the provider is back, sign-in works', T, async () => {
    const r = await new Browser().signIn(`${s.gw}/back`);
    assert.equal(r.final.status, 200, describeHops(r.hops));
    assert.equal(s.origin.requests().length, 1);
  });

  test('after a key rotation (new signing key first, old one still published) sign-in keeps working', T, async () => {
    const oldKid = s.idp.keys[0].kid;
    await s.idp.rotateKeys({ graceful: true });
    let kid;
    s.idp.setTokenHook((body, t) => { kid = t.decode(body.id_token).header.kid; });
    const r = await new Browser().signIn(`${s.gw}/rotated`);
    s.idp.setTokenHook(null);
    assert.notEqual(kid, oldKid, 'the ID token should be signed with the new key');
    assert.equal(r.final.status, 200, describeHops(r.hops));
  });
});
