// (b) Hand-written verification with raw crypto.subtle.verify: split, base64url-decode, JSON.parse
// header and payload, pick the key by kid (imported once per isolate and cached), verify the
// signature over `header.payload`, check typ, iss, aud, exp, nbf; then forward. The least JS one
// can reasonably run per request to verify a JWT properly.
import { bearer, forward, unauthorized } from './forward.mjs';

const ALGS = {
  RS256: { kty: 'RSA', importParams: { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' }, verifyParams: { name: 'RSASSA-PKCS1-v1_5' } },
  ES256: { kty: 'EC', importParams: { name: 'ECDSA', namedCurve: 'P-256' }, verifyParams: { name: 'ECDSA', hash: 'SHA-256' } },
};
const LEEWAY = 60;
const utf8 = new TextDecoder();
const ascii = new TextEncoder();
let jwksByKid = null;
const imported = new Map(); // `${kid} ${alg}` -> Promise<CryptoKey>

function b64u(s) {
  const bin = atob(s.replace(/-/g, '+').replace(/_/g, '/'));
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

function key(env, kid, alg) {
  if (jwksByKid === null) {
    jwksByKid = new Map(JSON.parse(env.JWKS).keys.map((k) => [k.kid, k]));
  }
  const slot = `${kid} ${alg}`;
  let p = imported.get(slot);
  if (p === undefined) {
    const jwk = jwksByKid.get(kid);
    if (!jwk || jwk.kty !== ALGS[alg].kty || (jwk.alg && jwk.alg !== alg)) return null;
    p = crypto.subtle.importKey('jwk', jwk, ALGS[alg].importParams, false, ['verify']);
    imported.set(slot, p);
  }
  return p;
}

async function verify(token, env) {
  const parts = token.split('.');
  if (parts.length !== 3) return null;
  let header, claims;
  try {
    header = JSON.parse(utf8.decode(b64u(parts[0])));
    claims = JSON.parse(utf8.decode(b64u(parts[1])));
  } catch {
    return null;
  }
  const alg = ALGS[header.alg];
  if (!alg || typeof header.kid !== 'string' || header.crit !== undefined) return null;
  if (header.typ !== undefined && header.typ.toLowerCase().replace(/^application\//, '') !== 'at+jwt') return null;
  const k = await key(env, header.kid, header.alg);
  if (!k) return null;
  let sig;
  try {
    sig = b64u(parts[2]);
  } catch {
    return null;
  }
  const input = ascii.encode(token.slice(0, parts[0].length + 1 + parts[1].length));
  if (!(await crypto.subtle.verify(alg.verifyParams, k, sig, input))) return null;
  const now = Math.floor(Date.now() / 1000);
  if (claims.iss !== env.ISSUER) return null;
  const aud = Array.isArray(claims.aud) ? claims.aud : [claims.aud];
  if (!aud.includes(env.AUDIENCE)) return null;
  if (typeof claims.exp !== 'number' || now >= claims.exp + LEEWAY) return null;
  if (claims.nbf !== undefined && (typeof claims.nbf !== 'number' || claims.nbf > now + LEEWAY)) return null;
  return claims;
}

export default {
  async fetch(request, env) {
    const token = bearer(request);
    const claims = token && (await verify(token, env));
    if (!claims) return unauthorized();
    return forward(request, env, claims.sub);
  },
};
