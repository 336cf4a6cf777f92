// Client authentication with private_key_jwt (RFC 7523) end to end: the IdP has the client registered with
// token_endpoint_auth_method=private_key_jwt and only its public JWK (no secret is configured in the Worker), and
// accepts every call of a whole session — code exchange, refresh, client credentials, revocation — signed with
// crypto.subtle in workerd.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { parseForms } from '../support/browser.mjs';
import { signInSession, skipReason, startStack, jwtPayload, waitUntilExpired } from '../support/stack.mjs';

const skip = skipReason();
const T = { timeout: 60_000, skip };

/** A key pair as an operator makes it: PKCS#8 PEM for the Worker secret, the public JWK for the provider. */
function keyPair(kind) {
  const { privateKey, publicKey } = kind === 'ES256'
    ? crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' })
    : crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  return {
    pem: privateKey.export({ type: 'pkcs8', format: 'pem' }),
    jwk: { ...publicKey.export({ format: 'jwk' }), use: 'sig' },
  };
}

async function postLogout(s, b) {
  const confirm = await b.request(`${s.gw}/auth/logout`, { navigate: true });
  const form = parseForms(confirm.text, confirm.url).find((f) => f.method === 'post');
  return b.request(form.action, { method: 'POST', body: new URLSearchParams(form.fields), navigate: true, initiator: confirm.url });
}

for (const alg of ['RS256', 'PS256', 'ES256']) {
  describe(`private_key_jwt with ${alg}`, () => {
    let s;
    const key = keyPair(alg === 'ES256' ? 'ES256' : 'RSA');
    const sha1 = crypto.randomBytes(20).toString('hex').toUpperCase().match(/../g).join(':');

    before(async () => {
      if (skip) return;
      s = await startStack({
        idp: { tokenEndpointAuthMethod: 'private_key_jwt', clientJwks: [key.jwk] },
        vars: ({ idp }) => ({
          ROUTES: JSON.stringify([
            { prefix: '/app/', origin_token: 'app', token_target: { resource: idp.resource } },
            { prefix: '/' },
          ]),
          OIDC_CLIENT_AUTH_METHOD: 'private_key_jwt',
          OIDC_CLIENT_CERT_THUMBPRINT_SHA1: sha1,
          ...(alg === 'PS256' ? { OIDC_CLIENT_ASSERTION_ALG: 'PS256' } : {}),
        }),
        secrets: { OIDC_CLIENT_SECRET: undefined, OIDC_CLIENT_PRIVATE_KEY: key.pem },
      });
    }, { timeout: 90_000 });
    after(async () => { await s?.close(); });

    test('the provider accepts the code exchange, a refresh, client credentials and the revocation, each with a fresh assertion', T, async () => {
      s.idp.setAccessTokenTtl(1); // the first API call after it expires refreshes
      const { b, tokens } = await signInSession(s);
      s.idp.setAccessTokenTtl(null);
      await waitUntilExpired(tokens.access_token);
      const api = await b.get(`${s.gw}/api/echo`);
      assert.equal(api.status, 200, api.text.slice(0, 300));
      const app = await b.get(`${s.gw}/app/x`);
      assert.equal(app.status, 200, app.text.slice(0, 300));
      assert.equal(s.origin.last().headers.authorization, `Bearer ${s.idp.issuedTokens().at(-1).access_token}`);
      const logout = await postLogout(s, b);
      assert.equal(logout.status, 200);

      const calls = s.idp.tokenRequests();
      assert.deepEqual(calls.map((r) => [r.grantType, r.status, r.clientAuth]), [
        ['authorization_code', 200, 'private_key_jwt'],
        ['refresh_token', 200, 'private_key_jwt'],
        ['client_credentials', 200, 'private_key_jwt'],
      ]);
      const revocations = s.idp.revocations();
      assert.deepEqual(revocations.map((r) => [r.status, r.clientAuth]), [[200, 'private_key_jwt']]);
      assert.deepEqual(s.idp.errors(), []);

      const tokenEndpoint = `${s.idp.issuer}/token`;
      const assertions = calls.map((r) => r.params.client_assertion);
      const jtis = new Set();
      for (const jwt of assertions) {
        const [h] = jwt.split('.');
        const header = JSON.parse(Buffer.from(h, 'base64url').toString());
        const claims = jwtPayload(jwt);
        assert.equal(header.alg, alg);
        assert.equal(header.x5t, Buffer.from(sha1.replaceAll(':', ''), 'hex').toString('base64url'));
        assert.equal(claims.iss, s.idp.clientId);
        assert.equal(claims.sub, s.idp.clientId);
        assert.equal(claims.aud, tokenEndpoint);
        assert.ok(claims.exp - claims.iat <= 300, 'at most five minutes');
        jtis.add(claims.jti);
      }
      assert.equal(jtis.size, assertions.length, 'a fresh jti per call');
    });
  });
}

describe('private_key_jwt misconfigured', () => {
  test('a key that is not PKCS#8 is named with its fix on every request, including /auth/health', T, async () => {
    const s = await startStack({
      vars: { OIDC_CLIENT_AUTH_METHOD: 'private_key_jwt', OIDC_CLIENT_CERT_THUMBPRINT_SHA256: 'AB:CD' },
      secrets: {
        OIDC_CLIENT_SECRET: undefined,
        OIDC_CLIENT_PRIVATE_KEY: '-----BEGIN RSA PRIVATE KEY-----\nMIIB\n-----END RSA PRIVATE KEY-----',
      },
    });
    try {
      const res = await fetch(`${s.gw}/auth/health`);
      assert.equal(res.status, 500);
      const text = await res.text();
      assert.match(text, /OIDC_CLIENT_PRIVATE_KEY: is a PKCS#1\/SEC1 key, not PKCS#8/);
      assert.match(text, /openssl pkcs8 -topk8/);
      assert.match(text, /OIDC_CLIENT_CERT_THUMBPRINT_SHA256: has 4 hex digits; this digest has 64/);
      assert.doesNotMatch(text, /MIIB/, 'the key never appears');
    } finally {
      await s.close();
    }
  });
});
