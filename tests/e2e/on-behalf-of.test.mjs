// origin_token: on_behalf_of end to end: the gateway exchanges the signed-in user's access token at the test IdP
// (extended with RFC 8693 token exchange and Entra-style on-behalf-of grants) and the origin receives a token for its
// own audience that still names the user and the acting client; one exchange per user token.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as jose from 'jose';
import { signInSession, skipReason, startStack } from '../support/stack.mjs';

const skip = skipReason();
const T = { timeout: 30_000, skip };
const INNER = 'https://inner.example.test';

describe('origin_token: on_behalf_of', () => {
  let s;
  let jwks;

  before(async () => {
    if (skip) return;
    s = await startStack({
      idp: { tokenExchange: true },
      vars: {
        ROUTES: JSON.stringify([
          { prefix: '/api/', origin_token: 'on_behalf_of', token_target: { audience: INNER } },
          { prefix: '/' },
        ]),
      },
    });
    jwks = jose.createRemoteJWKSet(new URL(`${s.idp.issuer}/jwks`));
  }, { timeout: 90_000 });
  after(async () => { await s?.close(); });

  const exchanges = () => s.idp.tokenRequests().filter((r) => r.grantType.startsWith('urn:ietf:params:oauth:grant-type:'));

  async function checkExchanged(b, userToken) {
    const res = await b.get(`${s.gw}/api/echo`);
    assert.equal(res.status, 200, res.text.slice(0, 300));
    const token = res.json.headers.authorization.replace(/^Bearer /, '');
    assert.notEqual(token, userToken, "not the user's own token");
    const { payload } = await jose.jwtVerify(token, jwks, { issuer: s.idp.issuer, audience: INNER });
    assert.equal(payload.sub, 'alice', 'still the user');
    assert.deepEqual(payload.act, { sub: s.idp.clientId }, 'acted on by the gateway');
    assert.equal(res.json.headers['x-forwarded-user'], 'alice');
    return token;
  }

  test('RFC 8693: the user token is exchanged once, the origin gets a token for its own audience', T, async () => {
    const { b, tokens } = await signInSession(s);
    const before0 = exchanges().length;
    const first = await checkExchanged(b, tokens.access_token);
    const second = await checkExchanged(b, tokens.access_token);
    assert.equal(second, first, 'cached for the session');
    const calls = exchanges().slice(before0);
    assert.equal(calls.length, 1);
    assert.equal(calls[0].grantType, 'urn:ietf:params:oauth:grant-type:token-exchange');
    assert.equal(calls[0].status, 200);
    assert.equal(calls[0].params.subject_token, tokens.access_token);
    assert.equal(calls[0].params.audience, INNER);
    assert.equal(calls[0].clientAuth, 'basic');
  });

  test('Entra on-behalf-of (ON_BEHALF_OF_GRANT=jwt_bearer)', T, async () => {
    await s.restartWorker({ vars: { ON_BEHALF_OF_GRANT: 'jwt_bearer' } });
    const { b, tokens } = await signInSession(s);
    const before0 = exchanges().length;
    await checkExchanged(b, tokens.access_token);
    const [call] = exchanges().slice(before0);
    assert.equal(call.grantType, 'urn:ietf:params:oauth:grant-type:jwt-bearer');
    assert.equal(call.params.assertion, tokens.access_token);
    assert.equal(call.params.requested_token_use, 'on_behalf_of');
  });

  test('a refused exchange is a 502 with a reason code, nothing reaches the origin', T, async () => {
    await s.restartWorker({ vars: { ON_BEHALF_OF_GRANT: undefined } });
    const { b } = await signInSession(s);
    s.origin.reset();
    s.idp.setFault({ token: '500' });
    try {
      const res = await b.get(`${s.gw}/api/echo`);
      assert.equal(res.status, 502);
      assert.equal(res.json.error, 'origin_token_unavailable');
      assert.deepEqual(s.origin.requests(), []);
    } finally {
      s.idp.setFault(null);
    }
  });
});
