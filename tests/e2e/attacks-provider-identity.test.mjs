// With several providers, a route that accepts the tokens of two providers must tell the origin which provider
// vouched: `sub` (and email) are unique only per issuer (OIDC Core §2, §5.7), so a partner provider (or anyone
// controlling it) could issue a token with a staff user's `sub`. The gateway sends X-Forwarded-Provider (never
// a client's copy) and keys route limits by provider too.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { shareStack, skipReason } from '../support/stack.mjs';
import { callApi, echoed, mint } from '../support/tokens.mjs';

const skip = skipReason();
const T = { timeout: 20_000, skip };

const ROUTES = JSON.stringify([
  { prefix: '/api/both/', auth: 'bearer', providers: ['default', 'partners'] },
  { prefix: '/', auth: 'session' },
]);

/** What the origin was told about the caller: identity headers, and the assertion's claims without its own ids and times. */
function identitySeen(res) {
  const { headers } = echoed(res);
  const told = Object.fromEntries(Object.entries(headers).filter(([k]) => k.startsWith('x-forwarded-') && !['x-forwarded-host', 'x-forwarded-proto', 'x-forwarded-for'].includes(k)));
  const assertion = headers['x-edgeguard-assertion'];
  if (assertion) {
    const claims = JSON.parse(Buffer.from(assertion.split('.')[1], 'base64url').toString('utf8'));
    for (const k of ['jti', 'iat', 'exp', 'nbf']) delete claims[k];
    told.assertion = claims;
  }
  return told;
}

describe('provider identity at the origin', () => {
  let s;
  shareStack({ vars: { ROUTES }, secondIdp: {} }, { skip, use: (started) => { s = started; } });

  test('a partners token with a staff user\'s sub and email is not presented to the origin as that staff user', T, async () => {
    const same = { sub: 'alice', email: 'alice@example.com', email_verified: true };
    const staff = await callApi(`${s.gw}/api/both/x`, { token: await mint(s.idp, same) });
    const partner = await callApi(`${s.gw}/api/both/x`, { token: await mint(s.idp2, same) });
    assert.equal(staff.status, 200);
    assert.equal(partner.status, 200);
    assert.notDeepEqual(identitySeen(partner), identitySeen(staff), 'the origin cannot tell the partner from the staff user');
    assert.equal(echoed(staff).headers['x-forwarded-provider'], 'default');
    assert.equal(echoed(partner).headers['x-forwarded-provider'], 'partners');
  });

  test('a client\'s own X-Forwarded-Provider, in any spelling, never reaches the origin', T, async () => {
    const token = await mint(s.idp2, { sub: 'bob' });
    for (const name of ['X-Forwarded-Provider', 'x_forwarded_provider']) {
      const res = await callApi(`${s.gw}/api/both/x`, { token, headers: [[name, 'default']] });
      assert.equal(res.status, 200);
      const { headers } = echoed(res);
      assert.equal(headers['x-forwarded-provider'], 'partners', name);
      assert.ok(!('x_forwarded_provider' in headers), name);
    }
  });
});
