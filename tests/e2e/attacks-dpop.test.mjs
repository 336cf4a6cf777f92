// Attacks on DPoP server nonces (DPOP_NONCE) and proofs: values the gateway minted for other purposes (the
// sign-in's state and OIDC nonce, a DPoP-Nonce with one character changed) offered as the DPoP nonce, and a
// proof with a valid nonce made for the same path on another origin (host, scheme, port). Each is a 401 with
// a DPoP challenge and a reason in the log, and the origin never sees the request.
import { after, before, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import * as jose from 'jose';
import { skipReason, startStack } from '../support/stack.mjs';
import { callApi, echoed, expectNot5xx, mint, parseChallenge } from '../support/tokens.mjs';

const skip = skipReason();
const T = { timeout: 15_000, skip };

const ath = (token) => crypto.createHash('sha256').update(token).digest('base64url');

async function clientKey() {
  const { privateKey, publicKey } = await jose.generateKeyPair('ES256', { extractable: true });
  const jwk = await jose.exportJWK(publicKey);
  return { privateKey, jwk, jkt: await jose.calculateJwkThumbprint(jwk, 'sha256') };
}

function proof(key, htu, token, nonce) {
  const claims = { jti: crypto.randomUUID(), htm: 'GET', htu, iat: Math.floor(Date.now() / 1000), ath: ath(token) };
  if (nonce !== undefined) claims.nonce = nonce;
  return new jose.SignJWT(claims).setProtectedHeader({ typ: 'dpop+jwt', alg: 'ES256', jwk: key.jwk }).sign(key.privateKey);
}

describe('attacks on DPoP nonces and proofs', () => {
  let s;
  before(async () => {
    if (skip) return;
    s = await startStack({ vars: { ROUTES: JSON.stringify([{ prefix: '/api/', auth: 'bearer' }, { prefix: '/', auth: 'session' }]), DPOP_NONCE: 'true' } });
  }, { timeout: 30_000 });
  after(async () => { await s?.close(); });
  beforeEach(() => { s?.origin.reset(); });

  const target = () => `${s.gw}/api/orders`;
  const call = (token, dpop) => callApi(target(), { authorization: `DPoP ${token}`, headers: [['dpop', dpop]] });

  async function refused(res, error, reason) {
    expectNot5xx(res, reason);
    assert.equal(res.status, 401, `${reason}: ${res.status} ${res.text.slice(0, 200)}`);
    const c = parseChallenge(res.www);
    assert.equal(c?.scheme.toLowerCase(), 'dpop', res.www);
    assert.equal(c.params.error, error, res.www);
    await s.worker.waitForLog((l) => l.json?.reason === reason);
  }

  /** The server's current nonce, as a client learns it. */
  async function serverNonce(key, token) {
    const res = await call(token, await proof(key, target(), token));
    await refused(res, 'use_dpop_nonce', 'dpop_nonce_missing');
    return res.headers.get('dpop-nonce');
  }

  test('a sign-in\'s state or OIDC nonce, or a DPoP-Nonce one character off, is never accepted as the DPoP nonce', T, async () => {
    const key = await clientKey();
    const token = await mint(s.idp, { cnf: { jkt: key.jkt } });
    const nonce = await serverNonce(key, token);
    const login = await fetch(`${s.gw}/auth/login?rd=/home`, { redirect: 'manual' });
    const authorize = new URL(login.headers.get('location'));
    const flipped = `${nonce.slice(0, -1)}${nonce.endsWith('A') ? 'B' : 'A'}`;
    const others = [authorize.searchParams.get('state'), authorize.searchParams.get('nonce'), authorize.searchParams.get('code_challenge'), flipped];
    for (const other of others) {
      assert.ok(other && other !== nonce);
      // eslint-disable-next-line no-await-in-loop
      const res = await call(token, await proof(key, target(), token, other));
      // eslint-disable-next-line no-await-in-loop
      await refused(res, 'use_dpop_nonce', 'dpop_nonce_invalid');
      assert.equal(res.headers.get('dpop-nonce'), nonce, 'the answer hands out the real nonce');
    }
    assert.deepEqual(s.origin.requests(), [], 'a request with a foreign nonce reached the origin');
    echoed(await call(token, await proof(key, target(), token, nonce)));
  });

  test('a proof with a valid nonce for the same path on another origin is refused (htu)', T, async () => {
    const key = await clientKey();
    const token = await mint(s.idp, { cnf: { jkt: key.jkt } });
    const nonce = await serverNonce(key, token);
    const here = new URL(target());
    const elsewhere = [
      `http://localhost:${here.port}${here.pathname}`,
      `https://${here.host}${here.pathname}`,
      `http://${here.hostname}:${Number(here.port) + 1}${here.pathname}`,
      `http://user@${here.host}${here.pathname}`,
    ];
    for (const htu of elsewhere) {
      // eslint-disable-next-line no-await-in-loop
      const res = await call(token, await proof(key, htu, token, nonce));
      // eslint-disable-next-line no-await-in-loop
      await refused(res, 'invalid_dpop_proof', 'dpop_htu_mismatch');
    }
    assert.deepEqual(s.origin.requests(), []);
  });
});
