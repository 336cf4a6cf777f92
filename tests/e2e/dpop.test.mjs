// DPoP (RFC 9449) on bearer routes, against the wasm Worker in workerd: proofs made with jose
// exactly as a public client would, tokens bound with cnf.jkt.
import { after, before, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import * as jose from 'jose';
import { skipReason, startStack } from '../support/stack.mjs';
import { callApi, echoed, expectNot5xx, mint, parseChallenge } from '../support/tokens.mjs';

const skip = skipReason();
const T = { timeout: 10_000, skip };

const ath = (token) => crypto.createHash('sha256').update(token).digest('base64url');

/** A client key pair and its thumbprint. */
async function clientKey(alg = 'ES256') {
  const { privateKey, publicKey } = await jose.generateKeyPair(alg, { extractable: true });
  const jwk = await jose.exportJWK(publicKey);
  return { alg, privateKey, jwk, jkt: await jose.calculateJwkThumbprint(jwk, 'sha256') };
}

/** A DPoP proof for `htm htu` and `token`; `edit` may change header or claims. */
async function proof(key, htm, htu, token, edit = () => {}) {
  const header = { typ: 'dpop+jwt', alg: key.alg, jwk: key.jwk };
  const claims = { jti: crypto.randomUUID(), htm, htu, iat: Math.floor(Date.now() / 1000), ath: ath(token) };
  edit(header, claims);
  return new jose.SignJWT(claims).setProtectedHeader(header).sign(key.signWith ?? key.privateKey);
}

describe('DPoP-bound tokens', () => {
  let s;
  before(async () => {
    if (skip) return;
    const routes = [
      { prefix: '/api/', auth: 'bearer' },
      { prefix: '/api/dpop-only/', auth: 'bearer', dpop: 'required' },
    ];
    s = await startStack({ vars: { ROUTES: JSON.stringify(routes) } });
  }, { timeout: 30_000 });
  after(async () => { await s?.close(); });
  beforeEach(() => { s?.origin.reset(); });

  const url = (path) => `${s.gw}${path}`;
  const dpopCall = (path, token, dpop, method = 'GET') => callApi(url(path), {
    method, authorization: `DPoP ${token}`, headers: dpop === undefined ? [] : [['dpop', dpop]],
  });
  const refused = async (res, reason, { scheme = 'dpop', error = 'invalid_dpop_proof' } = {}) => {
    expectNot5xx(res, reason);
    assert.equal(res.status, 401, `${reason}: ${res.status} ${res.text.slice(0, 200)}`);
    const c = parseChallenge(res.www);
    assert.equal(c?.scheme.toLowerCase(), scheme, res.www);
    if (error) assert.equal(c.params.error, error, res.www);
    if (scheme === 'dpop') assert.match(c.params.algs ?? '', /ES256/, res.www);
    await s.worker.waitForLog((l) => l.json?.reason === reason);
    assert.deepEqual(s.origin.requests(), [], 'the origin got a request');
  };

  test('a bound token with a valid proof reaches the origin with the confirmed thumbprint', T, async () => {
    for (const alg of ['ES256', 'RS256', 'EdDSA']) {
      s.origin.reset();
      const key = await clientKey(alg);
      const token = await mint(s.idp, { sub: `dpop-${alg}`, cnf: { jkt: key.jkt } });
      const res = await dpopCall('/api/orders', token, await proof(key, 'GET', url('/api/orders'), token));
      const echo = echoed(res);
      assert.equal(echo.headers.authorization, `DPoP ${token}`);
      assert.equal(echo.headers['x-edgeguard-dpop-jkt'], key.jkt);
      assert.equal(echo.headers['x-forwarded-user'], `dpop-${alg}`);
      assert.equal(res.headers.get('dpop-nonce'), null, 'no nonce without DPOP_NONCE');
    }
  });

  test('POST with a body works too, and htu ignores the query', T, async () => {
    const key = await clientKey();
    const token = await mint(s.idp, { cnf: { jkt: key.jkt } });
    const res = await callApi(url('/api/orders?page=2'), {
      method: 'POST', body: '{"a":1}', authorization: `DPoP ${token}`,
      headers: [['dpop', await proof(key, 'POST', url('/api/orders'), token)], ['content-type', 'application/json']],
    });
    assert.equal(echoed(res).body, '{"a":1}');
  });

  test('wrong htm, wrong htu, old iat, wrong ath → invalid_dpop_proof', T, async () => {
    const key = await clientKey();
    const token = await mint(s.idp, { cnf: { jkt: key.jkt } });
    await refused(await dpopCall('/api/orders', token, await proof(key, 'POST', url('/api/orders'), token)), 'dpop_htm_mismatch');
    await refused(await dpopCall('/api/orders', token, await proof(key, 'GET', url('/api/other'), token)), 'dpop_htu_mismatch');
    await refused(await dpopCall('/api/orders', token, await proof(key, 'GET', 'https://evil.example/api/orders', token)), 'dpop_htu_mismatch');
    await refused(await dpopCall('/api/orders', token, await proof(key, 'GET', url('/api/orders'), token, (h, c) => { c.iat -= 600; })), 'dpop_iat_out_of_window');
    await refused(await dpopCall('/api/orders', token, await proof(key, 'GET', url('/api/orders'), 'another-token')), 'dpop_ath_mismatch');
    await refused(await dpopCall('/api/orders', token, undefined), 'dpop_proof_missing');
  });

  test('a replayed proof (same jti) is refused', T, async () => {
    const key = await clientKey();
    const token = await mint(s.idp, { cnf: { jkt: key.jkt } });
    const p = await proof(key, 'GET', url('/api/orders'), token);
    echoed(await dpopCall('/api/orders', token, p));
    s.origin.reset();
    await refused(await dpopCall('/api/orders', token, p), 'dpop_proof_replayed');
  });

  test('a proof by another key than the token is bound to → invalid_token', T, async () => {
    const key = await clientKey();
    const thief = await clientKey();
    const token = await mint(s.idp, { cnf: { jkt: key.jkt } });
    const res = await dpopCall('/api/orders', token, await proof(thief, 'GET', url('/api/orders'), token));
    await refused(res, 'dpop_key_mismatch', { error: 'invalid_token' });
  });

  test('proofs with a symmetric key, a private key or a key they were not signed with are refused', T, async () => {
    const key = await clientKey();
    const token = await mint(s.idp, { cnf: { jkt: key.jkt } });
    const secret = crypto.randomBytes(32);
    const hs = { alg: 'HS256', jwk: { kty: 'oct', k: secret.toString('base64url') }, signWith: secret };
    await refused(await dpopCall('/api/orders', token, await proof(hs, 'GET', url('/api/orders'), token)), 'dpop_proof_malformed');
    const leaky = { ...key, jwk: await jose.exportJWK(key.privateKey) };
    await refused(await dpopCall('/api/orders', token, await proof(leaky, 'GET', url('/api/orders'), token)), 'dpop_key_not_public');
    const other = await clientKey();
    const swapped = { ...other, jwk: key.jwk }; // claims key's public key, signed by another
    await refused(await dpopCall('/api/orders', token, await proof(swapped, 'GET', url('/api/orders'), token)), 'dpop_signature_invalid');
    const typ = await proof(key, 'GET', url('/api/orders'), token, (h) => { h.typ = 'JWT'; });
    await refused(await dpopCall('/api/orders', token, typ), 'dpop_proof_wrong_type');
  });

  test('a DPoP-bound token presented as Bearer is refused', T, async () => {
    const key = await clientKey();
    const token = await mint(s.idp, { cnf: { jkt: key.jkt } });
    await refused(await callApi(url('/api/orders'), { token }), 'dpop_bound_token_as_bearer', { scheme: 'bearer', error: 'invalid_token' });
  });

  test('a route with dpop = "required" refuses Bearer tokens and challenges with DPoP', T, async () => {
    const unbound = await mint(s.idp, {});
    await refused(await callApi(url('/api/dpop-only/x'), { token: unbound }), 'dpop_required', { error: 'invalid_request' });
    await refused(await callApi(url('/api/dpop-only/x')), 'token_missing', { error: null });
    const key = await clientKey();
    const token = await mint(s.idp, { cnf: { jkt: key.jkt } });
    echoed(await dpopCall('/api/dpop-only/x', token, await proof(key, 'GET', url('/api/dpop-only/x'), token)));
  });
});

describe('DPoP nonces (DPOP_NONCE) and the KV replay guard (DPOP_REPLAY_KV)', () => {
  let s;
  before(async () => {
    if (skip) return;
    s = await startStack({
      kvPersist: true,
      vars: { ROUTES: JSON.stringify([{ prefix: '/api/', auth: 'bearer' }]), DPOP_NONCE: 'true', DPOP_REPLAY_KV: 'true' },
    });
  }, { timeout: 30_000 });
  after(async () => { await s?.close(); });
  beforeEach(() => { s?.origin.reset(); });

  const url = (path) => `${s.gw}${path}`;
  const dpopCall = (token, dpop) => callApi(url('/api/orders'), { authorization: `DPoP ${token}`, headers: [['dpop', dpop]] });
  const withNonce = (nonce) => (h, c) => { if (nonce !== undefined) c.nonce = nonce; };

  /** A nonce as a client gets one: from the 401 of a proof without it. */
  async function nonceChallenge(key, token) {
    const res = await dpopCall(token, await proof(key, 'GET', url('/api/orders'), token));
    expectNot5xx(res, 'nonce challenge');
    assert.equal(res.status, 401, res.text);
    const c = parseChallenge(res.www);
    assert.equal(c.scheme.toLowerCase(), 'dpop', res.www);
    assert.equal(c.params.error, 'use_dpop_nonce', res.www);
    const nonce = res.headers.get('dpop-nonce');
    assert.match(nonce ?? '', /^[A-Za-z0-9_-]{43}$/, `DPoP-Nonce: ${nonce}`);
    return nonce;
  }

  test('a proof without the server nonce gets use_dpop_nonce and a DPoP-Nonce; with it, the request goes through', T, async () => {
    const key = await clientKey();
    const token = await mint(s.idp, { cnf: { jkt: key.jkt } });
    const nonce = await nonceChallenge(key, token);
    await s.worker.waitForLog((l) => l.json?.reason === 'dpop_nonce_missing');
    assert.deepEqual(s.origin.requests(), [], 'refused before the origin');
    const stale = await dpopCall(token, await proof(key, 'GET', url('/api/orders'), token, withNonce('not-a-nonce-we-made')));
    assert.equal(stale.status, 401);
    assert.equal(parseChallenge(stale.www).params.error, 'use_dpop_nonce');
    assert.equal(stale.headers.get('dpop-nonce'), nonce);
    const res = await dpopCall(token, await proof(key, 'GET', url('/api/orders'), token, withNonce(nonce)));
    assert.equal(echoed(res).headers['x-edgeguard-dpop-jkt'], key.jkt);
    assert.equal(res.headers.get('dpop-nonce'), nonce, 'a successful answer carries the current nonce (RFC 9449 §8.2)');
  });

  test('a proof replayed to a fresh isolate (same KV) is refused; the KV record is keyed by a hash', T, async () => {
    const key = await clientKey();
    const token = await mint(s.idp, { cnf: { jkt: key.jkt } });
    const nonce = await nonceChallenge(key, token);
    const p = await proof(key, 'GET', url('/api/orders'), token, (h, c) => { c.nonce = nonce; c.jti = 'replay-me-elsewhere'; });
    echoed(await dpopCall(token, p));
    const keys = await s.worker.sessionKeys('dpop-jti:v1:');
    const expected = `dpop-jti:v1:${crypto.createHash('sha256').update(`${key.jkt}.replay-me-elsewhere`).digest('hex')}`;
    assert.ok(keys.includes(expected), `${expected} not in ${keys.join(', ')}`);
    assert.ok(keys.every((k) => /^dpop-jti:v1:[0-9a-f]{64}$/.test(k)), 'neither jti nor thumbprint in KV');
    await s.restartWorker(); // a new isolate: its own replay memory is empty, KV is not
    s.origin.reset();
    const res = await dpopCall(token, p);
    expectNot5xx(res, 'replay');
    assert.equal(res.status, 401, res.text);
    assert.equal(parseChallenge(res.www).params.error, 'invalid_dpop_proof');
    await s.worker.waitForLog((l) => l.json?.reason === 'dpop_proof_replayed');
    assert.deepEqual(s.origin.requests(), [], 'the replay never reached the origin');
    const fresh = await proof(key, 'GET', url('/api/orders'), token, withNonce(nonce));
    echoed(await dpopCall(token, fresh)); // the nonce survived the restart too: it is stateless
  });
});
