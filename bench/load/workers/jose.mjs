// (c) jose's jwtVerify with a local JWKS (createLocalJWKSet caches each imported CryptoKey), the
// common off-the-shelf choice in JS Workers; typ, iss, aud, exp, nbf checked by jose. Bundled
// from node_modules/jose with esbuild by bench/load/run.sh.
import { createLocalJWKSet, jwtVerify } from 'jose';
import { bearer, forward, unauthorized } from './forward.mjs';

let jwks = null;

export default {
  async fetch(request, env) {
    const token = bearer(request);
    if (!token) return unauthorized();
    jwks ??= createLocalJWKSet(JSON.parse(env.JWKS));
    let payload;
    try {
      ({ payload } = await jwtVerify(token, jwks, {
        issuer: env.ISSUER,
        audience: env.AUDIENCE,
        algorithms: ['RS256', 'ES256'],
        typ: 'at+jwt',
        clockTolerance: 60,
      }));
    } catch {
      return unauthorized();
    }
    return forward(request, env, payload.sub);
  },
};
