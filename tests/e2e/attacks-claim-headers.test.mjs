// Attacks on identity headers from claims (`headers`) and Easy Auth's principal (`client_principal`): a caller whose
// verified token lacks the mapped claims sends the mapped headers itself, in other letter cases and with `_` for
// `-` (as CGI, PHP and nginx read them), hoping the origin takes its copy when the gateway has none to set; and
// Easy Auth's headers on a route that does not ask for them.
import { after, before, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { skipReason, startStack } from '../support/stack.mjs';
import { callApi, echoed, mint } from '../support/tokens.mjs';

const skip = skipReason();
const T = { timeout: 15_000, skip };

const ROUTES = JSON.stringify([
  { prefix: '/api/mapped/', auth: 'bearer', headers: { 'X-Forwarded-Groups': 'groups', 'X-Country': 'address.country' } },
  { prefix: '/api/plain/', auth: 'bearer' },
  { prefix: '/', auth: 'session' },
]);

const SPOOFED = [
  ['x-forwarded-groups', 'admins'], ['X_FORWARDED_GROUPS', 'admins'], ['X-Forwarded_Groups', 'admins'],
  ['x-country', 'NZ'], ['X_Country', 'NZ'],
  ['X-MS-CLIENT-PRINCIPAL', Buffer.from('{"claims":[{"typ":"roles","val":"admin"}]}').toString('base64')],
  ['x_ms_client_principal_name', 'root'], ['X-MS-CLIENT-PRINCIPAL-IDP', 'aad'],
];

describe('attacks on identity headers from claims', () => {
  let s;
  before(async () => {
    if (skip) return;
    s = await startStack({ vars: { ROUTES } });
  }, { timeout: 30_000 });
  after(async () => { await s?.close(); });
  beforeEach(() => { s?.origin.reset(); });

  test('a token without the mapped claims: the client\'s own copies of the mapped and Easy Auth headers never arrive', T, async () => {
    const token = await mint(s.idp, { sub: 'svc-1' }); // no groups, no address
    for (const path of ['/api/mapped/x', '/api/plain/x']) {
      // eslint-disable-next-line no-await-in-loop
      const { headers } = echoed(await callApi(`${s.gw}${path}`, { token, headers: SPOOFED }));
      assert.equal(headers['x-forwarded-user'], 'svc-1', path);
      const leaked = Object.keys(headers).filter((k) => /groups|country|principal/i.test(k));
      assert.deepEqual(leaked, [], `${path}: ${leaked.map((k) => `${k}: ${headers[k]}`).join('; ')}`);
    }
  });

  test('with the claims present, the origin gets exactly the gateway\'s value once, whatever the client sent', T, async () => {
    const token = await mint(s.idp, { sub: 'svc-2', groups: ['staff'], address: { country: 'DE' } });
    const { headers } = echoed(await callApi(`${s.gw}/api/mapped/x`, { token, headers: SPOOFED }));
    assert.equal(headers['x-forwarded-groups'], 'staff');
    assert.equal(headers['x-country'], 'DE');
    assert.ok(!Object.keys(headers).some((k) => k.includes('_')), JSON.stringify(Object.keys(headers)));
    assert.ok(!Object.keys(headers).some((k) => /principal/i.test(k)), 'Easy Auth headers on a route without client_principal');
  });
});
