// Bearer-token helpers for the API-gateway suites (tests/e2e/bearer-*.test.mjs, routes-*.test.mjs):
// mint access tokens with the IdP's keys (or any other), hand-build JWS byte for byte, get real tokens
// from the IdP, serve the IdP's JWKS through a counting proxy, run an attacker server, send raw HTTP
// (repeated headers), and assert RFC 6750 answers.
//
//   const jwks = await startJwksProxy(s.idp, { extraKeys: await extraKeys() }); // before the first Worker request
//   const token = await mint(s.idp, { scp: 'api.read' }, { alg: 'ES256' });
//   const res = await callApi(`${s.gw}/api/echo`, { token });
//   expectInvalidToken(res); jwks.count()

import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import http from 'node:http';
import * as jose from 'jose';
import { TENANT_ID } from './idp.mjs';

export { TENANT_ID };

export const nowSecs = () => Math.floor(Date.now() / 1000);

/** base64url of a string, Buffer, or JSON value (objects are JSON-encoded). */
export function b64url(v) {
  if (Buffer.isBuffer(v) || v instanceof Uint8Array) return Buffer.from(v).toString('base64url');
  return Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url');
}

export function decodeJwt(jwt) {
  const [h, p, s] = String(jwt).split('.');
  return {
    header: JSON.parse(Buffer.from(h, 'base64url').toString()),
    payload: JSON.parse(Buffer.from(p, 'base64url').toString()),
    signature: Buffer.from(s ?? '', 'base64url'),
  };
}

export function publicJwk(jwk) {
  const { d, p, q, dp, dq, qi, ...pub } = jwk;
  return pub;
}

// ------------------------------------------------------------------------------------ signing

const HASH = { 256: 'sha256', 384: 'sha384', 512: 'sha512' };

/** A JOSE signature (raw r||s for ECDSA) over `input` with a private JWK, using node:crypto only. */
export function signInput(input, jwk, alg) {
  const data = Buffer.from(input);
  const key = crypto.createPrivateKey({ key: jwk, format: 'jwk' });
  const bits = alg.slice(2);
  if (alg.startsWith('RS')) return crypto.sign(HASH[bits], data, key);
  if (alg.startsWith('PS')) {
    return crypto.sign(HASH[bits], data, {
      key, padding: crypto.constants.RSA_PKCS1_PSS_PADDING, saltLength: Number(bits) / 8,
    });
  }
  if (alg.startsWith('ES')) return crypto.sign(HASH[bits], data, { key, dsaEncoding: 'ieee-p1363' });
  if (alg === 'EdDSA') return crypto.sign(null, data, key);
  throw new Error(`signInput: unsupported alg ${alg}`);
}

/**
 * A compact JWS built byte for byte. header/payload: an object (JSON-encoded) or a string (used as the
 * JSON text, e.g. with duplicate members). Signed over exactly the segments produced (so a token whose
 * only flaw is its encoding has a genuine signature). Options:
 *   jwk + alg: sign; signature: Buffer to use instead; encode(text) -> segment (default base64url).
 */
export function handJws(header, payload, { jwk, alg, signature, encode } = {}) {
  const enc = encode ?? ((text) => b64url(text));
  const h = enc(typeof header === 'string' ? header : JSON.stringify(header));
  const p = enc(typeof payload === 'string' ? payload : JSON.stringify(payload));
  const input = `${h}.${p}`;
  let sig = signature;
  if (!sig && jwk) sig = signInput(input, jwk, alg ?? jwk.alg);
  return `${input}.${sig ? b64url(sig) : ''}`;
}

/** The IdP's current private JWK for an algorithm (RS256 and ES256 are published). */
export function idpKey(idp, alg = 'RS256') {
  const k = idp.keys.find((key) => key.alg === alg);
  if (!k) throw new Error(`the IdP publishes no ${alg} key (has: ${idp.keys.map((x) => x.alg).join(', ')})`);
  return k;
}

const generated = new Map();
/**
 * A private JWK of the given kind, cached per name: 'RSA' (no alg), 'RS256', 'PS256', 'ES256', 'ES384',
 * 'EdDSA'. kid is `${name}-${label}`.
 */
export async function generatedKey(kind, label = 'gen') {
  const id = `${kind}:${label}`;
  if (!generated.has(id)) {
    const genAlg = kind === 'RSA' ? 'RS256' : kind;
    const opts = { extractable: true, ...(kind === 'EdDSA' ? { crv: 'Ed25519' } : {}) };
    const { privateKey } = await jose.generateKeyPair(genAlg, opts);
    const jwk = await jose.exportJWK(privateKey);
    jwk.kid = `${kind.toLowerCase()}-${label}-${crypto.randomBytes(3).toString('hex')}`;
    if (kind !== 'RSA') jwk.alg = kind;
    jwk.use = 'sig';
    generated.set(id, jwk);
  }
  return { ...generated.get(id) };
}

/**
 * Keys the IdP itself does not publish, served next to its keys by startJwksProxy so every algorithm of
 * the contract can be exercised: an RSA key without `alg` (RS384/RS512/PS256/PS384/PS512), ES384, EdDSA.
 */
export async function extraKeys() {
  return {
    rsa: await generatedKey('RSA', 'extra'),
    es384: await generatedKey('ES384', 'extra'),
    eddsa: await generatedKey('EdDSA', 'extra'),
  };
}

/** Claims of an RFC 9068 access token for the IdP's API, with overrides (undefined removes a claim). */
export function accessClaims(idp, overrides = {}) {
  const now = nowSecs();
  const claims = {
    iss: idp.issuer,
    sub: 'alice',
    aud: idp.resource,
    client_id: idp.clientId,
    iat: now,
    nbf: now,
    exp: now + 300,
    jti: crypto.randomBytes(8).toString('hex'),
    scp: 'api.read',
    scope: 'api.read',
    tid: TENANT_ID,
    ...overrides,
  };
  for (const [k, v] of Object.entries(claims)) if (v === undefined) delete claims[k];
  return claims;
}

/**
 * A signed access token. options: alg (default RS256), key (private JWK; default the IdP's key for alg),
 * header (merged over { typ: 'at+jwt', alg, kid }; a value of undefined removes the parameter).
 */
export async function mint(idp, overrides = {}, { alg = 'RS256', key, header = {} } = {}) {
  const jwk = key ?? idpKey(idp, alg);
  const h = { typ: 'at+jwt', alg, kid: jwk.kid, ...header };
  for (const [k, v] of Object.entries(h)) if (v === undefined) delete h[k];
  return handJws(h, accessClaims(idp, overrides), { jwk, alg });
}

/** A real access token from the IdP's token endpoint (client_credentials, resource = the API). */
export async function clientCredentialsToken(idp, { scope = 'api.read', resource = idp.resource } = {}) {
  const discovery = await (await fetch(`${idp.issuer}/.well-known/openid-configuration`)).json();
  const body = new URLSearchParams({ grant_type: 'client_credentials', resource });
  if (scope) body.set('scope', scope);
  const res = await fetch(discovery.token_endpoint, {
    method: 'POST',
    headers: {
      authorization: `Basic ${Buffer.from(`${encodeURIComponent(idp.clientId)}:${encodeURIComponent(idp.clientSecret)}`).toString('base64')}`,
      'content-type': 'application/x-www-form-urlencoded',
    },
    body,
  });
  const json = await res.json();
  if (res.status !== 200 || !json.access_token) throw new Error(`client_credentials failed: ${res.status} ${JSON.stringify(json)}`);
  return json.access_token;
}

// ------------------------------------------------------------------------------------ servers

function listen(server) {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve(server.address().port));
  });
}

async function closeServer(server) {
  server.closeAllConnections?.();
  await new Promise((resolve) => server.close(() => resolve()));
}

/**
 * A counting JWKS endpoint in front of the IdP's: GET /jwks fetches `${idp.issuer}/jwks` on every request
 * (so idp.rotateKeys() and idp.setFault({ jwks }) show through: a connection failure upstream drops the
 * connection, another status is passed on) and appends the public parts of `extraKeys`. Installs a
 * discovery hook on the IdP pointing `jwks_uri` here, so call it before the Worker's first request.
 * idp.mjs has no JWKS request counter of its own; this is it.
 */
export async function startJwksProxy(idp, { extraKeys: extra = [] } = {}) {
  let extras = Array.isArray(extra) ? extra : Object.values(extra);
  const requests = [];
  let down = false;
  const server = http.createServer(async (req, res) => {
    requests.push({ method: req.method, url: req.url, at: Date.now() });
    req.resume();
    if (down) {
      req.socket.destroy();
      return;
    }
    let upstream;
    try {
      upstream = await fetch(`${idp.issuer}/jwks`, { headers: { accept: 'application/json' } });
    } catch {
      req.socket.destroy();
      return;
    }
    const text = await upstream.text();
    let out = text;
    if (upstream.status === 200) {
      try {
        const doc = JSON.parse(text);
        if (Array.isArray(doc.keys)) {
          doc.keys = [...doc.keys, ...extras.map(publicJwk)];
          out = JSON.stringify(doc);
        }
      } catch { /* garbage passes through as garbage */ }
    }
    const headers = { 'content-type': upstream.headers.get('content-type') ?? 'application/json' };
    const cc = upstream.headers.get('cache-control');
    if (cc) headers['cache-control'] = cc;
    res.writeHead(upstream.status, headers);
    res.end(out);
  });
  server.keepAliveTimeout = 1000;
  const port = await listen(server);
  const url = `http://127.0.0.1:${port}/jwks`;
  idp.setDiscoveryHook((doc) => { doc.jwks_uri = url; });
  return {
    url,
    /** How many JWKS requests the Worker made so far. */
    count: () => requests.length,
    requests: () => requests.slice(),
    reset() { requests.length = 0; },
    /** Replace the extra keys (private JWKs; only their public parts are served). */
    setExtraKeys(keys) { extras = Array.isArray(keys) ? keys : Object.values(keys); },
    /** true: every request has its connection dropped (independent of the IdP's own faults). */
    setDown(v) { down = Boolean(v); },
    async close() { idp.setDiscoveryHook(null); await closeServer(server); },
  };
}

/** An attacker-controlled server: answers 200 with `body` (default: a JWKS) and records every request. */
export async function startSpy({ body = '{"keys":[]}', contentType = 'application/json' } = {}) {
  const requests = [];
  let answer = body;
  const server = http.createServer((req, res) => {
    requests.push({ method: req.method, url: req.url, headers: { ...req.headers } });
    req.resume();
    res.writeHead(200, { 'content-type': contentType });
    res.end(typeof answer === 'string' ? answer : JSON.stringify(answer));
  });
  const port = await listen(server);
  return {
    url: `http://127.0.0.1:${port}`,
    requests: () => requests.slice(),
    setBody(b) { answer = b; },
    close: () => closeServer(server),
  };
}

// ------------------------------------------------------------------------------------ HTTP

/**
 * One HTTP exchange with exactly these headers, repeats allowed: headers is [[name, value], ...].
 * Resolves { status, headers: Headers, text, json (parsed or null), www (WWW-Authenticate or null) }.
 */
export function rawHttp(url, { method = 'GET', headers = [], body, timeoutMs = 10_000 } = {}) {
  const u = new URL(url);
  // Node adds no Host header when headers is an array (setHost is ignored then).
  const flat = headers.some(([k]) => k.toLowerCase() === 'host') ? [] : ['host', u.host];
  for (const [k, v] of headers) flat.push(k, v);
  const payload = body === undefined ? null : Buffer.from(body);
  if (payload) flat.push('content-length', String(payload.length));
  return new Promise((resolve, reject) => {
    const req = http.request({
      hostname: u.hostname,
      port: u.port,
      method,
      path: `${u.pathname}${u.search}`,
      headers: flat,
      agent: false,
    }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('error', reject);
      res.on('end', () => {
        clearTimeout(timer);
        const h = new Headers();
        for (let i = 0; i < res.rawHeaders.length; i += 2) h.append(res.rawHeaders[i], res.rawHeaders[i + 1]);
        const text = Buffer.concat(chunks).toString('utf8');
        let json = null;
        try { json = JSON.parse(text); } catch { json = null; }
        resolve({ status: res.statusCode, headers: h, text, json, www: h.get('www-authenticate') });
      });
    });
    const timer = setTimeout(() => req.destroy(new Error(`timeout after ${timeoutMs} ms: ${method} ${u.href}`)), timeoutMs);
    req.on('error', (err) => { clearTimeout(timer); reject(err); });
    req.end(payload ?? undefined);
  });
}

/**
 * An API client call (Accept: application/json). token → `Authorization: Bearer <token>`;
 * authorization → that exact Authorization value; headers: extra [name, value] pairs or an object.
 */
export function callApi(url, { token, authorization, headers = [], method = 'GET', body } = {}) {
  const list = [['accept', 'application/json'], ['user-agent', 'edgeguard-e2e-api/1']];
  if (token !== undefined) list.push(['authorization', `Bearer ${token}`]);
  if (authorization !== undefined) list.push(['authorization', authorization]);
  list.push(...(Array.isArray(headers) ? headers : Object.entries(headers)));
  return rawHttp(url, { method, headers: list, body });
}

// ------------------------------------------------------------------------------------ RFC 6750

/**
 * Parses one challenge, `Bearer realm="x", error="y"`, into { scheme, params, dups, malformed }
 * (RFC 9110 §11.2: token or quoted-string values; names lower-cased).
 */
export function parseChallenge(header) {
  if (!header) return null;
  const s = String(header);
  const tok = /[A-Za-z0-9!#$%&'*+.^_`|~-]+/y;
  let i = 0;
  const ws = () => { while (i < s.length && (s[i] === ' ' || s[i] === '\t')) i += 1; };
  const word = () => {
    tok.lastIndex = i;
    const m = tok.exec(s);
    if (!m) return null;
    i = tok.lastIndex;
    return m[0];
  };
  ws();
  const scheme = word();
  if (!scheme) return null;
  const params = {};
  const dups = [];
  const bad = () => ({ scheme, params, dups, malformed: true });
  for (;;) {
    ws();
    if (i >= s.length) break;
    const name = word();
    if (!name) return bad();
    ws();
    if (s[i] !== '=') return bad();
    i += 1;
    ws();
    let value = '';
    if (s[i] === '"') {
      i += 1;
      while (i < s.length && s[i] !== '"') {
        if (s[i] === '\\') i += 1;
        value += s[i] ?? '';
        i += 1;
      }
      if (s[i] !== '"') return bad();
      i += 1;
    } else {
      value = word();
      if (value === null) return bad();
    }
    const key = name.toLowerCase();
    if (key in params) dups.push(key);
    params[key] = value;
    ws();
    if (i < s.length) {
      if (s[i] !== ',') return bad();
      i += 1;
    }
  }
  return { scheme, params, dups, malformed: false };
}

function describe(res) {
  return `${res.status} www-authenticate=${JSON.stringify(res.www)} body=${res.text.slice(0, 300)}`;
}

/** No 5xx, ever, for anything the client sent. */
export function expectNot5xx(res, what = '') {
  assert.ok(res.status < 500, `${what} answered ${describe(res)}`);
}

/** 401, `Bearer realm="<realm>", error="invalid_token", error_description="..."`, JSON {error, error_description}. */
export function expectInvalidToken(res, { realm = '127.0.0.1', what = '' } = {}) {
  expectNot5xx(res, what);
  assert.equal(res.status, 401, `${what}: ${describe(res)}`);
  const c = parseChallenge(res.www);
  assert.ok(c, `${what}: no WWW-Authenticate: ${describe(res)}`);
  assert.ok(!c.malformed && c.dups.length === 0, `${what}: malformed challenge ${res.www}`);
  assert.equal(c.scheme.toLowerCase(), 'bearer', `${what}: ${res.www}`);
  assert.equal(c.params.realm, realm, `${what}: ${res.www}`);
  assert.equal(c.params.error, 'invalid_token', `${what}: ${res.www}`);
  assert.ok(typeof c.params.error_description === 'string' && c.params.error_description.length > 0, `${what}: ${res.www}`);
  expectJsonError(res, what);
  return c;
}

/** 401 with a bare `Bearer realm="..."` challenge (no credentials presented, RFC 6750 §3.1). */
export function expectNoTokenChallenge(res, { realm = '127.0.0.1', what = '' } = {}) {
  expectNot5xx(res, what);
  assert.equal(res.status, 401, `${what}: ${describe(res)}`);
  const c = parseChallenge(res.www);
  assert.ok(c, `${what}: no WWW-Authenticate: ${describe(res)}`);
  assert.ok(!c.malformed && c.dups.length === 0, `${what}: malformed challenge ${res.www}`);
  assert.equal(c.scheme.toLowerCase(), 'bearer', `${what}: ${res.www}`);
  assert.equal(c.params.realm, realm, `${what}: ${res.www}`);
  assert.equal(c.params.error, undefined, `${what}: no error code expected without credentials: ${res.www}`);
  expectJsonError(res, what);
  return c;
}

/** 403 with `error="insufficient_scope"` and, when given, `scope="<scope>"`. */
export function expectInsufficientScope(res, { scope, realm = '127.0.0.1', what = '' } = {}) {
  expectNot5xx(res, what);
  assert.equal(res.status, 403, `${what}: ${describe(res)}`);
  const c = parseChallenge(res.www);
  assert.ok(c, `${what}: no WWW-Authenticate: ${describe(res)}`);
  assert.ok(!c.malformed && c.dups.length === 0, `${what}: malformed challenge ${res.www}`);
  assert.equal(c.scheme.toLowerCase(), 'bearer', `${what}: ${res.www}`);
  assert.equal(c.params.realm, realm, `${what}: ${res.www}`);
  assert.equal(c.params.error, 'insufficient_scope', `${what}: ${res.www}`);
  if (scope !== undefined) assert.equal(c.params.scope, scope, `${what}: ${res.www}`);
  expectJsonError(res, what);
  return c;
}

/** A JSON body with string `error` and `error_description`. */
export function expectJsonError(res, what = '') {
  assert.match(res.headers.get('content-type') ?? '', /application\/json/, `${what}: ${describe(res)}`);
  assert.ok(res.json && typeof res.json.error === 'string' && typeof res.json.error_description === 'string',
    `${what}: body is not {error, error_description}: ${res.text.slice(0, 300)}`);
}

/** The echo the demo origin returns for /api/* (what it received). */
export function echoed(res) {
  assert.equal(res.status, 200, describe(res));
  assert.ok(res.json && res.json.headers, `not an origin echo: ${res.text.slice(0, 300)}`);
  return res.json;
}

// ------------------------------------------------------------------------------------ attacker material

/** A self-signed attacker certificate (CN=attacker.example) and its P-256 key, for `x5c`. */
export const ATTACKER_CERT_PEM = `-----BEGIN CERTIFICATE-----
MIIBjTCCATOgAwIBAgIUM+y/j3PKm48BWO+3mjr7CLwBMGcwCgYIKoZIzj0EAwIw
GzEZMBcGA1UEAwwQYXR0YWNrZXIuZXhhbXBsZTAgFw0yNjExMjQwMTEwNTdaGA8y
MTI2MTAzMTAxMTA1N1owGzEZMBcGA1UEAwwQYXR0YWNrZXIuZXhhbXBsZTBZMBMG
ByqGSM49AgEGCCqGSM49AwEHA0IABPyn0e6ivYlOZJ8lwlEeUqeQXmC/GWCXcwB4
4wR7pZHZco9ZyMOZLptg/tTHvrAb10l4gMo2QQBTxbtCNyo2MOmjUzBRMB0GA1Ud
DgQWBBSK55FSD1/dGgLTGDRvqDKKlSU2WDAfBgNVHSMEGDAWgBSK55FSD1/dGgLT
GDRvqDKKlSU2WDAPBgNVHRMBAf8EBTADAQH/MAoGCCqGSM49BAMCA0gAMEUCIGQ7
8zqkIt+VWQON5VrH5mRgD3hSi+NHoB214UxVZ05rAiEA1Dp4eGFvYU5y3sEZiigM
Yy6+hg67+vEvx6FOTIwZ30Y=
-----END CERTIFICATE-----
`;
export const ATTACKER_CERT_KEY_PEM = `-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgGjx+jioazqhfyBP+
BF0u5ncoMxF5WwKmbtovxICzsRWhRANCAAT8p9Huor2JTmSfJcJRHlKnkF5gvxlg
l3MAeOMEe6WR2XKPWcjDmS6bYP7Ux76wG9dJeIDKNkEAU8W7QjcqNjDp
-----END PRIVATE KEY-----
`;

/** The attacker certificate's key as a private JWK, and the DER cert in base64 (an `x5c` entry). */
export function attackerCert() {
  const jwk = crypto.createPrivateKey(ATTACKER_CERT_KEY_PEM).export({ format: 'jwk' });
  const der = new crypto.X509Certificate(ATTACKER_CERT_PEM).raw;
  return { jwk: { ...jwk, alg: 'ES256' }, x5c: der.toString('base64') };
}
