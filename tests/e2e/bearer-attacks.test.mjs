// Bearer routes under attack (RFC 8725, RFC 7515, RFC 9068, RFC 6750): every forged, malformed,
// mis-targeted or stale token gets 401 `error="invalid_token"` with a Bearer challenge and a JSON body,
// nothing reaches the origin, the answer is never a 5xx, key URLs in the token are never fetched, and
// each refusal is logged with a reason. Each case uses its own path so its log line can be found.
import { after, before, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import * as jose from 'jose';
import { Browser } from '../support/browser.mjs';
import { skipReason, startStack } from '../support/stack.mjs';
import {
  accessClaims, attackerCert, b64url, callApi, decodeJwt, echoed, expectInvalidToken, expectNoTokenChallenge,
  expectNot5xx, generatedKey, handJws, idpKey, mint, nowSecs, publicJwk, rawHttp, signInput, startSpy,
} from '../support/tokens.mjs';

const skip = skipReason();
const T = { timeout: 10_000, skip };

const ROUTES = JSON.stringify([
  { prefix: '/api/', auth: 'bearer' },
  { prefix: '/', auth: 'session' },
]);

// P-256 group order n: r or s equal to n (or 0) is out of range (SEC 1 §4.1.4 step 1).
const P256_N = Buffer.from('ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551', 'hex');

/** Re-encode a JOSE ECDSA signature (r||s) as DER, the mistake/attack RFC 7518 §3.4 forbids. */
function toDer(sig) {
  const int = (b) => {
    let i = 0;
    while (i < b.length - 1 && b[i] === 0) i += 1;
    let v = b.subarray(i);
    if (v[0] & 0x80) v = Buffer.concat([Buffer.from([0]), v]);
    return Buffer.concat([Buffer.from([0x02, v.length]), v]);
  };
  const body = Buffer.concat([int(sig.subarray(0, 32)), int(sig.subarray(32))]);
  return Buffer.concat([Buffer.from([0x30, body.length]), body]);
}

/** Replace the signature segment of a compact JWS. */
const withSignature = (jwt, sig) => `${jwt.split('.').slice(0, 2).join('.')}.${b64url(sig)}`;

describe('bearer: attacks → 401 invalid_token, nothing forwarded, never 5xx', () => {
  let s;
  let spy;
  let attacker;
  let idToken;
  let caseNo = 0;

  before(async () => {
    if (skip) return;
    s = await startStack({ vars: { ROUTES } });
    spy = await startSpy();
    attacker = await generatedKey('ES256', 'attacker');
    spy.setBody({ keys: [publicJwk(attacker)] });
    // A real ID token, from a real sign-in.
    s.idp.setTokenHook((body) => { if (body.id_token) idToken = body.id_token; });
    const r = await new Browser().signIn(`${s.gw}/app/page`);
    assert.equal(r.final.status, 200, r.final.text.slice(0, 300));
    s.idp.setTokenHook(null);
    assert.ok(idToken, 'no ID token captured');
  }, { timeout: 30_000 });

  after(async () => { await spy?.close(); await s?.close(); });
  beforeEach(() => { s?.origin.reset(); });

  /**
   * Sends the token (or exact Authorization values) to a path of its own, then checks the answer, that the
   * origin saw nothing, and that the refusal was logged with a reason.
   */
  async function refused(name, { token, authorization, headers, expect = expectInvalidToken } = {}) {
    caseNo += 1;
    const path = `/api/case-${caseNo}`;
    const list = [...(headers ?? [])];
    const res = await callApi(`${s.gw}${path}`, { token, authorization, headers: list });
    expectNot5xx(res, name);
    expect(res, { what: name });
    assert.deepEqual(s.origin.requests(), [], `${name}: the origin got a request`);
    const entry = await s.worker.waitForLog((e) => e.json?.path === path);
    assert.equal(entry.json.status, res.status, `${name}: ${entry.line}`);
    assert.ok(typeof entry.json.reason === 'string' && entry.json.reason.length > 0, `${name}: ${entry.line}`);
    return { res, reason: entry.json.reason };
  }

  test('sanity: a correctly minted token passes', T, async () => {
    echoed(await callApi(`${s.gw}/api/echo`, { token: await mint(s.idp) }));
  });

  // ---------------------------------------------------------------- algorithm confusion
  test('alg "none" (any capitalisation), with and without a signature', T, async () => {
    const claims = accessClaims(s.idp);
    for (const alg of ['none', 'None', 'NONE', 'nOnE']) {
      await refused(`alg ${alg}`, { token: handJws({ alg, typ: 'at+jwt' }, claims) });
      await refused(`alg ${alg} + kid`, { token: handJws({ alg, typ: 'at+jwt', kid: idpKey(s.idp).kid }, claims) });
      const signed = await mint(s.idp);
      const [, p, sig] = signed.split('.');
      await refused(`alg ${alg} with a real signature`, { token: `${b64url({ alg, typ: 'at+jwt' })}.${p}.${sig}` });
    }
  });

  test('HS256/384/512 signed with the RSA public key (PEM SPKI, PEM PKCS#1, JWK JSON, DER) as the HMAC secret', T, async () => {
    const rsa = idpKey(s.idp, 'RS256');
    const pub = crypto.createPublicKey({ key: publicJwk(rsa), format: 'jwk' });
    const secrets = {
      'PEM SPKI': pub.export({ type: 'spki', format: 'pem' }),
      'PEM PKCS#1': pub.export({ type: 'pkcs1', format: 'pem' }),
      'JWK JSON': JSON.stringify(publicJwk(rsa)),
      'DER SPKI': pub.export({ type: 'spki', format: 'der' }),
      'n bytes': Buffer.from(rsa.n, 'base64url'),
    };
    const ec = idpKey(s.idp, 'ES256');
    secrets['EC PEM SPKI'] = crypto.createPublicKey({ key: publicJwk(ec), format: 'jwk' }).export({ type: 'spki', format: 'pem' });
    for (const [label, secret] of Object.entries(secrets)) {
      for (const alg of ['HS256', 'HS384', 'HS512']) {
        const header = { alg, typ: 'at+jwt', kid: label.startsWith('EC') ? ec.kid : rsa.kid };
        const input = `${b64url(header)}.${b64url(accessClaims(s.idp))}`;
        const mac = crypto.createHmac(`sha${alg.slice(2)}`, secret).update(input).digest();
        await refused(`${alg} with ${label}`, { token: `${input}.${b64url(mac)}` });
      }
    }
  });

  test('PS256 with the IdP key that declares alg RS256 (RFC 8725 §3.1: one key, one algorithm)', T, async () => {
    const rsa = idpKey(s.idp, 'RS256');
    const token = handJws({ alg: 'PS256', typ: 'at+jwt', kid: rsa.kid }, accessClaims(s.idp), { jwk: rsa, alg: 'PS256' });
    await refused('PS256 with an RS256 key', { token });
  });

  test('unknown or non-string alg values', T, async () => {
    const rsa = idpKey(s.idp, 'RS256');
    for (const alg of ['RS1', 'ES256K', 'rs256', 'RS256 ', '', null, 256, ['RS256']]) {
      const header = { alg, typ: 'at+jwt', kid: rsa.kid };
      const input = `${b64url(header)}.${b64url(accessClaims(s.idp))}`;
      await refused(`alg ${JSON.stringify(alg)}`, { token: `${input}.${b64url(signInput(input, rsa, 'RS256'))}` });
    }
  });

  // ---------------------------------------------------------------- keys named by the token
  test('embedded "jwk" header with the attacker\'s key (own kid, and the IdP\'s kid)', T, async () => {
    for (const kid of [attacker.kid, idpKey(s.idp, 'ES256').kid]) {
      const token = handJws({ alg: 'ES256', typ: 'at+jwt', kid, jwk: publicJwk(attacker) }, accessClaims(s.idp), { jwk: attacker, alg: 'ES256' });
      await refused(`jwk header, kid ${kid}`, { token });
    }
  });

  test('"jku" and "x5u" pointing at an attacker server: refused, and the server never hears from the gateway', T, async () => {
    const claims = accessClaims(s.idp);
    const cases = [
      { jku: `${spy.url}/jwks.json`, kid: attacker.kid },
      { jku: `${spy.url}/jwks.json`, kid: idpKey(s.idp, 'ES256').kid },
      { x5u: `${spy.url}/cert.pem`, kid: attacker.kid },
      { x5u: `${spy.url}/cert.pem` },
    ];
    for (const extra of cases) {
      const token = handJws({ alg: 'ES256', typ: 'at+jwt', ...extra }, claims, { jwk: attacker, alg: 'ES256' });
      await refused(`header ${JSON.stringify(extra)}`, { token });
    }
    assert.deepEqual(spy.requests(), [], 'the gateway fetched an attacker-named URL');
  });

  test('"x5c" with an attacker certificate and its key', T, async () => {
    const { jwk, x5c } = attackerCert();
    for (const kid of [undefined, idpKey(s.idp, 'ES256').kid]) {
      const header = { alg: 'ES256', typ: 'at+jwt', x5c: [x5c], ...(kid ? { kid } : {}) };
      await refused(`x5c, kid ${kid}`, { token: handJws(header, accessClaims(s.idp), { jwk, alg: 'ES256' }) });
    }
    assert.deepEqual(spy.requests(), []);
  });

  test('wrong kid (valid signature by the IdP key, kid not in the JWKS)', T, async () => {
    for (const kid of ['no-such-kid', '', '../../../../etc/passwd', 'x'.repeat(300)]) {
      await refused(`kid ${kid.slice(0, 20)}`, { token: await mint(s.idp, {}, { header: { kid } }) });
    }
  });

  test('signature by another key with the IdP\'s kid (RSA and EC)', T, async () => {
    const fRsa = await generatedKey('RS256', 'foreign');
    const fEc = await generatedKey('ES256', 'foreign');
    await refused('foreign RSA key, IdP kid', { token: await mint(s.idp, {}, { key: fRsa, alg: 'RS256', header: { kid: idpKey(s.idp, 'RS256').kid } }) });
    await refused('foreign EC key, IdP kid', { token: await mint(s.idp, {}, { key: fEc, alg: 'ES256', header: { kid: idpKey(s.idp, 'ES256').kid } }) });
    await refused('foreign RSA key, no kid', { token: await mint(s.idp, {}, { key: fRsa, alg: 'RS256', header: { kid: undefined } }) });
  });

  test('kid of the IdP\'s EC key on an RS256 token, and of the RSA key on an ES256 token', T, async () => {
    await refused('EC kid, RS256', { token: await mint(s.idp, {}, { header: { kid: idpKey(s.idp, 'ES256').kid } }) });
    await refused('RSA kid, ES256', { token: await mint(s.idp, {}, { alg: 'ES256', header: { kid: idpKey(s.idp, 'RS256').kid } }) });
  });

  test('payload changed after signing (sub → admin), signature kept', T, async () => {
    const token = await mint(s.idp, { sub: 'alice' });
    const [h, , sig] = token.split('.');
    const forged = `${h}.${b64url(accessClaims(s.idp, { sub: 'admin' }))}.${sig}`;
    await refused('tampered payload', { token: forged });
  });

  // ---------------------------------------------------------------- ECDSA signature encoding
  test('ECDSA: r = 0, s = 0, both 0 (CVE-2022-21449), r = n, s = n, wrong lengths, DER encoding', T, async () => {
    const token = await mint(s.idp, {}, { alg: 'ES256' });
    const sig = decodeJwt(token).signature;
    assert.equal(sig.length, 64);
    const r = sig.subarray(0, 32);
    const sv = sig.subarray(32);
    const zero = Buffer.alloc(32);
    const cases = {
      'r = 0': Buffer.concat([zero, sv]),
      's = 0': Buffer.concat([r, zero]),
      'r = s = 0': Buffer.alloc(64),
      'r = n': Buffer.concat([P256_N, sv]),
      's = n': Buffer.concat([r, P256_N]),
      '63 bytes': sig.subarray(0, 63),
      '65 bytes': Buffer.concat([sig, Buffer.from([0])]),
      '96 bytes (ES384 length)': Buffer.concat([sig, Buffer.alloc(32)]),
      DER: toDer(sig),
      'empty signature': Buffer.alloc(0),
    };
    for (const [name, bad] of Object.entries(cases)) {
      await refused(`ES256 ${name}`, { token: withSignature(token, bad) });
    }
  });

  test('RSA: truncated, empty, and all-zero signatures', T, async () => {
    const token = await mint(s.idp);
    const sig = decodeJwt(token).signature;
    for (const [name, bad] of Object.entries({
      truncated: sig.subarray(0, sig.length - 1), zeros: Buffer.alloc(sig.length), empty: Buffer.alloc(0),
      'all 0xff (a value above the modulus)': Buffer.alloc(sig.length, 0xff), one: Buffer.concat([Buffer.alloc(sig.length - 1), Buffer.from([1])]),
      'one extra byte': Buffer.concat([Buffer.from([0]), sig]),
    })) {
      await refused(`RS256 ${name}`, { token: withSignature(token, bad) });
    }
  });

  // ---------------------------------------------------------------- header extensions and formats
  test('unknown "crit" extensions (validly signed)', T, async () => {
    const rsa = idpKey(s.idp, 'RS256');
    const headers = [
      { crit: ['urn:example:ext'], 'urn:example:ext': true },
      { crit: ['exp'] },
      { crit: [] },
      { crit: ['b64'], b64: true },
    ];
    for (const extra of headers) {
      const token = handJws({ alg: 'RS256', typ: 'at+jwt', kid: rsa.kid, ...extra }, accessClaims(s.idp), { jwk: rsa });
      await refused(`crit ${JSON.stringify(extra.crit)}`, { token });
    }
  });

  test('b64: false (RFC 7797) and nested JWT (cty: JWT), validly signed', T, async () => {
    const rsa = idpKey(s.idp, 'RS256');
    const claims = accessClaims(s.idp);
    await refused('b64 false', { token: handJws({ alg: 'RS256', typ: 'at+jwt', kid: rsa.kid, b64: false }, claims, { jwk: rsa }) });
    const inner = await mint(s.idp);
    await refused('cty JWT', { token: handJws({ alg: 'RS256', typ: 'at+jwt', kid: rsa.kid, cty: 'JWT' }, inner, { jwk: rsa }) });
  });

  test('JWE (5 segments), encrypted to the IdP\'s RSA key', T, async () => {
    const rsa = idpKey(s.idp, 'RS256');
    const key = await jose.importJWK({ ...publicJwk(rsa), alg: 'RSA-OAEP-256' }, 'RSA-OAEP-256');
    const jwe = await new jose.CompactEncrypt(new TextEncoder().encode(JSON.stringify(accessClaims(s.idp))))
      .setProtectedHeader({ alg: 'RSA-OAEP-256', enc: 'A256GCM', typ: 'at+jwt', kid: rsa.kid })
      .encrypt(key);
    assert.equal(jwe.split('.').length, 5);
    await refused('JWE', { token: jwe });
    const three = jwe.split('.');
    await refused('JWE header in 3 segments', { token: `${three[0]}.${three[3]}.${three[4]}` });
  });

  test('malformed base64url, each validly signed over the exact bytes: "=" padding, "+" and "/", whitespace', T, async () => {
    const rsa = idpKey(s.idp, 'RS256');
    const header = JSON.stringify({ alg: 'RS256', typ: 'at+jwt', kid: rsa.kid });
    // Padding: a header whose base64 needs it.
    let padded = header;
    while (Buffer.from(padded).length % 3 === 0) padded = `${padded.slice(0, -1)} }`;
    const padEnc = (t) => Buffer.from(t).toString('base64url') + '='.repeat((3 - (Buffer.from(t).length % 3)) % 3);
    await refused('"=" padding', { token: handJws(padded, accessClaims(s.idp), { jwk: rsa, encode: padEnc }) });
    // Standard alphabet: find claims whose base64 contains '+' and '/'.
    for (const ch of ['+', '/']) {
      let claims;
      for (let i = 0; ; i += 1) {
        claims = JSON.stringify(accessClaims(s.idp, { n: `?~>${'?'.repeat(i % 7)}~${i}` }));
        const std = Buffer.from(claims).toString('base64').replace(/=+$/, '');
        if (std.includes(ch)) break;
      }
      const stdEnc = (t) => Buffer.from(t).toString('base64').replace(/=+$/, '');
      await refused(`"${ch}" in a segment`, { token: handJws(header, claims, { jwk: rsa, encode: stdEnc }) });
    }
    const good = await mint(s.idp);
    const [h, p, sig] = good.split('.');
    await refused('space inside the payload segment', { token: `${h}.${p.slice(0, 10)} ${p.slice(10)}.${sig}` });
    await refused('"%" escape in the header segment', { token: `${h.slice(0, 4)}%41${h.slice(4)}.${p}.${sig}` });
  });

  test('segments: 2, 4, 6, empty header, empty payload, not a JWT at all', T, async () => {
    const good = await mint(s.idp);
    const [h, p, sig] = good.split('.');
    for (const [name, token] of Object.entries({
      '2 segments': `${h}.${p}`, '4 segments': `${h}.${p}.${sig}.${sig}`, '6 segments': `${good}.a.b.c`,
      'empty header': `.${p}.${sig}`, 'empty payload': `${h}..${sig}`, opaque: 'a1b2c3d4e5f6', dots: '..',
    })) {
      await refused(name, { token });
    }
  });

  test('non-JSON header and payload, JSON that is not an object (validly signed)', T, async () => {
    const rsa = idpKey(s.idp, 'RS256');
    const claims = accessClaims(s.idp);
    await refused('header not JSON', { token: handJws('{alg: RS256}', claims, { jwk: rsa }) });
    await refused('header a JSON array', { token: handJws('["RS256"]', claims, { jwk: rsa }) });
    await refused('header with trailing garbage', { token: handJws(`${JSON.stringify({ alg: 'RS256', typ: 'at+jwt', kid: rsa.kid })}x`, claims, { jwk: rsa }) });
    await refused('payload not JSON', { token: handJws({ alg: 'RS256', typ: 'at+jwt', kid: rsa.kid }, 'sub=admin', { jwk: rsa }) });
    await refused('payload a JSON string', { token: handJws({ alg: 'RS256', typ: 'at+jwt', kid: rsa.kid }, JSON.stringify(JSON.stringify(claims)), { jwk: rsa }) });
  });

  test('duplicate JSON member names, validly signed: two "alg" in the header, two "sub"/"aud"/"exp" in the payload', T, async () => {
    const rsa = idpKey(s.idp, 'RS256');
    const claimsJson = JSON.stringify(accessClaims(s.idp, { sub: 'alice' }));
    const hdr = `{"alg":"HS256","typ":"at+jwt","kid":"${rsa.kid}","alg":"RS256"}`;
    await refused('two alg (last wins would be RS256)', { token: handJws(hdr, claimsJson, { jwk: rsa }) });
    const hdr2 = `{"alg":"RS256","typ":"at+jwt","kid":"${rsa.kid}","kid":"other"}`;
    await refused('two kid', { token: handJws(hdr2, claimsJson, { jwk: rsa }) });
    const cleanHdr = { alg: 'RS256', typ: 'at+jwt', kid: rsa.kid };
    const dupSub = `${claimsJson.slice(0, -1)},"sub":"admin"}`;
    await refused('two sub (last wins would be admin)', { token: handJws(cleanHdr, dupSub, { jwk: rsa }) });
    const dupAud = `${claimsJson.slice(0, -1)},"aud":"https://other.example"}`;
    await refused('two aud', { token: handJws(cleanHdr, dupAud, { jwk: rsa }) });
    const dupExp = `{"exp":${nowSecs() - 3600},${claimsJson.slice(1)}`;
    await refused('two exp (first expired)', { token: handJws(cleanHdr, dupExp, { jwk: rsa }) });
    const escaped = `${claimsJson.slice(0, -1)},"s\\u0075b":"admin"}`;
    await refused('two sub, one spelled with a \\u escape', { token: handJws(cleanHdr, escaped, { jwk: rsa }) });
  });

  test('token over 16 KiB (validly signed)', T, async () => {
    const token = await mint(s.idp, { pad: 'x'.repeat(17 * 1024) });
    assert.ok(token.length > 16 * 1024);
    await refused('17 KiB token', { token });
  });

  // ---------------------------------------------------------------- claims
  test('expired, nbf in the future, iat in the future (beyond the 60 s skew)', T, async () => {
    const now = nowSecs();
    for (const [name, claims] of Object.entries({
      'expired an hour ago': { iat: now - 7200, nbf: now - 7200, exp: now - 3600 },
      'expired 90 s ago': { iat: now - 700, nbf: now - 700, exp: now - 90 },
      'nbf in an hour': { nbf: now + 3600, exp: now + 7200 },
      'nbf in 90 s': { nbf: now + 90, exp: now + 600 },
      'iat in an hour': { iat: now + 3600, nbf: undefined, exp: now + 7200 },
      'iat in 90 s': { iat: now + 90, nbf: undefined, exp: now + 600 },
    })) {
      await refused(name, { token: await mint(s.idp, claims) });
    }
  });

  test('missing exp; exp, nbf or iat of the wrong type', T, async () => {
    const now = nowSecs();
    for (const [name, claims] of Object.entries({
      'no exp': { exp: undefined },
      'exp a string': { exp: String(now + 600) },
      'exp null': { exp: null },
      'exp negative': { exp: -1 },
      'nbf a string': { nbf: String(now) },
      'iat an object': { iat: { t: now } },
    })) {
      await refused(name, { token: await mint(s.idp, claims) });
    }
  });

  test('wrong iss: another issuer, trailing slash, 127.0.0.1 for localhost, case, missing, not a string', T, async () => {
    const iss = s.idp.issuer;
    const variants = {
      other: 'https://evil.example', slash: `${iss}/`, ip: iss.replace('localhost', '127.0.0.1'),
      upper: iss.toUpperCase(), missing: undefined, array: [iss],
    };
    for (const [name, v] of Object.entries(variants)) {
      await refused(`iss ${name}`, { token: await mint(s.idp, { iss: v }) });
    }
  });

  test('wrong aud: another API, the client id, missing, empty, a prefix of the resource', T, async () => {
    for (const [name, aud] of Object.entries({
      other: 'https://other.example', 'client id': s.idp.clientId, missing: undefined, empty: '', 'empty array': [],
      'trailing slash': `${s.idp.resource}/`, 'array of others': ['https://a.example', s.idp.clientId], number: 1,
    })) {
      await refused(`aud ${name}`, { token: await mint(s.idp, { aud }) });
    }
  });

  test('an ID token used as an access token (the real one from sign-in, and a freshly minted one)', T, async () => {
    const { payload } = decodeJwt(idToken);
    assert.equal(payload.aud, s.idp.clientId);
    assert.ok(payload.exp > nowSecs(), 'the captured ID token is still valid');
    await refused('real ID token', { token: idToken });
    const minted = await mint(s.idp, {
      aud: s.idp.clientId, azp: s.idp.clientId, nonce: 'n-0S6_WzA2Mj', auth_time: nowSecs(), scp: undefined, scope: undefined,
    }, { header: { typ: 'JWT' } });
    await refused('minted ID token', { token: minted });
  });

  test('typ not accepted: missing, id_token+jwt, dpop+jwt, logout+jwt, secevent+jwt, JOSE, not a string', T, async () => {
    for (const typ of [undefined, 'id_token+jwt', 'dpop+jwt', 'logout+jwt', 'application/secevent+jwt', 'JOSE', 'at+jwt ', 1]) {
      await refused(`typ ${JSON.stringify(typ)}`, { token: await mint(s.idp, {}, { header: { typ } }) });
    }
  });

  test('no sub claim, or an empty one', T, async () => {
    await refused('no sub', { token: await mint(s.idp, { sub: undefined }) });
    await refused('empty sub', { token: await mint(s.idp, { sub: '' }) });
  });

  // ---------------------------------------------------------------- the Authorization header itself
  test('"Bearer" with an empty token → 401 invalid_token (the client did try the Bearer scheme)', T, async () => {
    // On the wire "Bearer " usually arrives as "Bearer" (proxies drop trailing whitespace, RFC 9110 §5.5),
    // so both spellings must be judged alike: a bearer attempt without a token, not "no credentials".
    for (const authorization of ['Bearer ', 'Bearer', 'Bearer    ', 'Bearer\t', 'bearer']) {
      await refused(`Authorization: ${JSON.stringify(authorization)}`, { authorization });
    }
  });

  test('Basic credentials instead of Bearer → 401 Bearer challenge (no credentials for this API), not forwarded', T, async () => {
    const basic = `Basic ${Buffer.from('alice:alice').toString('base64')}`;
    const { res } = await refused('Basic', { authorization: basic, expect: expectNoTokenChallenge });
    assert.ok(!res.text.includes('alice:alice'));
    // A JWT in another scheme is no bearer token either.
    await refused('JWT under scheme "Token"', { authorization: `Token ${await mint(s.idp)}`, expect: expectNoTokenChallenge });
    await refused('JWT under scheme "Bearerx"', { authorization: `Bearerx ${await mint(s.idp)}`, expect: expectNoTokenChallenge });
  });

  test('two Authorization headers (valid + garbage, garbage + valid, valid + valid) → 400/401, never forwarded', T, async () => {
    const good = await mint(s.idp);
    const other = await mint(s.idp, { sub: 'mallory' });
    const either = (res, o) => {
      expectNot5xx(res, o.what);
      assert.ok([400, 401].includes(res.status), `${o.what}: ${res.status} ${res.text}`);
      // Basic first: the request carries no bearer credential in its first scheme; a bare challenge is fine.
      if (res.status === 401 && o.what.startsWith('Basic')) assert.match(res.www ?? '', /^Bearer realm="127\.0\.0\.1"/, o.what);
      else if (res.status === 401) expectInvalidToken(res, o);
      if (res.status === 400) assert.match(res.www ?? '', /error="invalid_request"/, `${o.what}: 400 without error="invalid_request": ${res.www}`);
    };
    for (const [name, pair] of Object.entries({
      'valid + garbage': [`Bearer ${good}`, 'Bearer garbage'],
      'garbage + valid': ['Bearer garbage', `Bearer ${good}`],
      'valid + valid (other sub)': [`Bearer ${good}`, `Bearer ${other}`],
      'Basic + valid': ['Basic YWxpY2U6YWxpY2U=', `Bearer ${good}`],
    })) {
      await refused(name, { headers: pair.map((v) => ['authorization', v]), expect: either });
    }
  });

  test('a token in the query string or form body is not accepted (RFC 6750 §2.2/2.3 are not offered)', T, async () => {
    const token = await mint(s.idp);
    caseNo += 1;
    const res = await callApi(`${s.gw}/api/case-${caseNo}?access_token=${token}`);
    expectNoTokenChallenge(res);
    const form = await callApi(`${s.gw}/api/case-${caseNo}-form`, {
      method: 'POST', body: `access_token=${token}`, headers: [['content-type', 'application/x-www-form-urlencoded']],
    });
    assert.equal(form.status, 401, form.text);
    assert.deepEqual(s.origin.requests(), []);
  });

  test('answers to browsers (Accept: text/html) keep the challenge and still forward nothing', T, async () => {
    const res = await rawHttp(`${s.gw}/api/html-case`, {
      headers: [['accept', 'text/html'], ['authorization', 'Bearer x.y.z']],
    });
    expectNot5xx(res);
    assert.equal(res.status, 401);
    assert.match(res.www ?? '', /^Bearer realm="127\.0\.0\.1", error="invalid_token"/);
    assert.deepEqual(s.origin.requests(), []);
  });

  test('after all that, the JWKS was never fetched from anywhere but the IdP and valid tokens still pass', T, async () => {
    assert.deepEqual(spy.requests(), []);
    echoed(await callApi(`${s.gw}/api/echo`, { token: await mint(s.idp, {}, { alg: 'ES256' }) }));
  });
});
