// The signed user assertion end to end: the origin (tests/support/origin.mjs) verifies X-Edgeguard-Assertion
// against the gateway's /.well-known/jwks.json as any origin would (jose), so a real assertion shows "verified ✓"
// there, and a forged, expired or wrong-audience one fails there; the client's own header never gets through.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import * as jose from 'jose';
import { assertionVerifier } from '../support/origin.mjs';
import { signInSession, skipReason, startStack } from '../support/stack.mjs';
import { mint } from '../support/tokens.mjs';

const skip = skipReason();
const T = { timeout: 30_000, skip };

function ecKey() {
  const { privateKey } = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return { key: privateKey, pem: privateKey.export({ type: 'pkcs8', format: 'pem' }) };
}

describe('signed user assertion', () => {
  let s;
  const current = ecKey();
  const previous = ecKey();

  before(async () => {
    if (skip) return;
    s = await startStack({
      vars: {
        API_AUDIENCES: undefined,
        ROUTES: JSON.stringify([
          { prefix: '/api/', auth: 'session_or_bearer', assertion: true },
          { prefix: '/', auth: 'session', assertion: true },
        ]),
      },
      secrets: { ASSERTION_SIGNING_KEY: current.pem, ASSERTION_PREVIOUS_SIGNING_KEY: previous.pem },
    });
  }, { timeout: 90_000 });
  after(async () => { await s?.close(); });

  test('a signed-in request reaches the origin with an assertion it verifies; the demo page shows verified ✓', T, async () => {
    const { b } = await signInSession(s);
    const res = await b.request(`${s.gw}/page`, {
      navigate: true, headers: { 'x-edgeguard-assertion': 'forged', 'X_Edgeguard_Assertion': 'forged' },
    });
    assert.equal(res.status, 200);
    assert.match(res.text, /verified ✓ \(sub alice\)/);
    const seen = s.origin.last();
    assert.equal(seen.assertion.verified, true, JSON.stringify(seen.assertion));
    const { claims } = seen.assertion;
    assert.equal(claims.iss, s.gw);
    assert.equal(claims.aud, s.origin.url);
    assert.equal(claims.sub, 'alice');
    assert.equal(claims.email, 'alice@example.com');
    assert.equal(claims.name, 'Alice Liddell');
    assert.ok(claims.exp - claims.iat <= 300 && claims.exp > claims.iat);
    assert.ok(claims.jti);
    const header = jose.decodeProtectedHeader(seen.headers['x-edgeguard-assertion']);
    assert.equal(header.alg, 'ES256');
    assert.ok(!('x_edgeguard_assertion' in seen.headers), "the client's spelling is removed too");
  });

  test('a bearer caller is asserted too, with its scp and tid', T, async () => {
    const token = await mint(s.idp, { scp: 'api.read', tid: 'tenant-x' });
    const res = await fetch(`${s.gw}/api/echo`, { headers: { authorization: `Bearer ${token}` } });
    assert.equal(res.status, 200);
    const { assertion } = await res.json();
    assert.equal(assertion.verified, true, JSON.stringify(assertion));
    assert.equal(assertion.claims.scp, 'api.read');
    assert.equal(assertion.claims.tid, 'tenant-x');
  });

  test('the JWKS is public and cacheable, with both keys of a rotation and no private parts', T, async () => {
    const res = await fetch(`${s.gw}/.well-known/jwks.json`);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('cache-control'), 'public, max-age=300');
    const { keys } = await res.json();
    assert.equal(keys.length, 2);
    const thumbprints = await Promise.all([current, previous].map(async ({ key }) => {
      const jwk = crypto.createPublicKey(key).export({ format: 'jwk' });
      return jose.calculateJwkThumbprint(jwk);
    }));
    assert.deepEqual(keys.map((k) => k.kid), thumbprints, 'kid = RFC 7638 thumbprint, new key first');
    assert.ok(keys.every((k) => !('d' in k) && k.alg === 'ES256' && k.use === 'sig'));
  });

  test('forged, expired and wrong-audience assertions fail at the origin', T, async () => {
    const verify = assertionVerifier(s.gw, s.origin.url);
    const kid = (await (await fetch(`${s.gw}/.well-known/jwks.json`)).json()).keys[0].kid;
    const now = Math.floor(Date.now() / 1000);
    const claims = { iss: s.gw, aud: s.origin.url, sub: 'mallory', iat: now, exp: now + 60, jti: 'x' };
    const sign = (key, c) => new jose.SignJWT(c).setProtectedHeader({ alg: 'ES256', kid }).sign(key);
    const good = await verify(await sign(current.key, claims));
    assert.equal(good.verified, true, 'the test signs like the gateway');
    const forged = await verify(await sign(ecKey().key, claims));
    assert.deepEqual([forged.verified, forged.error], [false, 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED']);
    const expired = await verify(await sign(current.key, { ...claims, iat: now - 600, exp: now - 300 }));
    assert.deepEqual([expired.verified, expired.error], [false, 'ERR_JWT_EXPIRED']);
    const wrongAud = await verify(await sign(current.key, { ...claims, aud: 'https://other.example' }));
    assert.deepEqual([wrongAud.verified, wrongAud.error], [false, 'ERR_JWT_CLAIM_VALIDATION_FAILED']);
    const direct = await fetch(`${s.origin.url}/api/echo`, { headers: { 'x-edgeguard-assertion': await sign(ecKey().key, claims) } });
    assert.equal((await direct.json()).assertion.verified, false, 'the demo origin says ✗ for a forgery');
  });
});
