// Entra group overage resolved through Microsoft Graph (ENTRA_GROUPS_OVERAGE=graph), end to end: the built
// Worker, the Entra lookalike (tests/support/entra.mjs) granting the gateway an app token at the user's tenant
// and playing Graph (which checks the token's signature, audience and GroupMember.Read.All role, and pages its
// answers two groups at a time), and an origin. The refuse mode (the default) is covered in entra.test.mjs
// ("group overage: ... 403 groups_overage").
import { after, before, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Browser } from '../support/browser.mjs';
import { signInThenVisit, startEntraStack } from '../support/entra.mjs';
import { describeHops, skipReason } from '../support/stack.mjs';
import { startSpy } from '../support/tokens.mjs';

const skip = skipReason();
const T = { timeout: 20_000, skip };
const GROUP = '1ba1e0b4-7f2f-4b1c-9f55-7f5d1b0f1a2c';
const OTHER_GROUPS = ['0d1c2b3a-0000-4000-8000-000000000001', '0d1c2b3a-0000-4000-8000-000000000002', '0d1c2b3a-0000-4000-8000-000000000003'];
const ROUTES = [
  { prefix: '/', auth: 'session' },
  { prefix: '/admin/', auth: 'session', groups: [GROUP] },
  { prefix: '/api/team/', auth: 'bearer', groups: [GROUP] },
];
const bearer = (token) => ({ headers: { authorization: `Bearer ${token}` }, initiator: null });
let users = 0;
/** A fresh user id per test, so no test rides on another's cached groups. */
const newOid = () => `00000000-0000-4000-8000-${String(++users).padStart(12, '0')}`;

describe('Entra ID: group overage resolved through Microsoft Graph', () => {
  let s;
  before(async () => {
    if (skip) return;
    s = await startEntraStack({ routes: ROUTES, vars: (entra) => ({ ENTRA_GROUPS_OVERAGE: 'graph', ENTRA_GRAPH_URL: entra.graphBase }) });
  }, { timeout: 30_000 });
  after(async () => { await s?.close(); });
  beforeEach(() => { s?.origin.reset(); s?.entra.setGraphFailure(null); });

  test('a session whose groups were cut off is let in when Graph lists the group, asking Graph once per session', T, async () => {
    const oid = newOid();
    s.entra.setUser({ oid, overage: 'claim_names' });
    s.entra.setMemberships(oid, [...OTHER_GROUPS, GROUP]); // the group is on the second page
    const b = new Browser();
    const { final, hops } = await b.navigate(`${s.gw}/admin/users`);
    assert.equal(final.status, 200, describeHops(hops));
    assert.equal(s.origin.last().url, '/admin/users');
    const walk = s.entra.graphRequests().filter((g) => g.path === `/v1.0/users/${oid}/transitiveMemberOf`);
    assert.equal(walk.length, 2, 'both pages were read');
    assert.equal(walk[0].query.$select, 'id');
    const grant = s.entra.tokenRequests().find((t) => t.params.grant_type === 'client_credentials');
    assert.equal(grant.params.scope, `${s.entra.graphBase}/.default`);
    // Another page of the same session: no Graph call.
    assert.equal((await b.navigate(`${s.gw}/admin/settings`)).final.status, 200);
    assert.equal(s.entra.graphRequests().filter((g) => g.path.includes(oid)).length, 2);
  });

  test('a session whose groups were cut off and who is not in the group gets 403, and the origin nothing', T, async () => {
    const oid = newOid();
    s.entra.setUser({ oid, overage: 'hasgroups' });
    s.entra.setMemberships(oid, OTHER_GROUPS);
    const { visit: admin } = await signInThenVisit(s, '/admin/users');
    assert.equal(admin.final.status, 403);
    assert.deepEqual(s.origin.requests(), []);
    await s.worker.waitForLog((e) => e.json?.reason === 'group_missing' && e.json?.path === '/admin/users');
  });

  test('a bearer token with hasgroups: 200 for a member, 403 for a non-member', T, async () => {
    const member = newOid();
    const stranger = newOid();
    s.entra.setMemberships(member, [GROUP]);
    s.entra.setMemberships(stranger, OTHER_GROUPS);
    const b = new Browser();
    const ok = await b.get(`${s.gw}/api/team/x`, bearer(await s.entra.mintAccessToken({ oid: member, scp: 'Orders.Read', hasgroups: true })));
    assert.equal(ok.status, 200, ok.text);
    assert.equal(ok.json.headers['x-forwarded-object-id'], member);
    const no = await b.get(`${s.gw}/api/team/x`, bearer(await s.entra.mintAccessToken({ oid: stranger, scp: 'Orders.Read', hasgroups: true })));
    assert.equal(no.status, 403);
    assert.match(no.headers.get('www-authenticate'), /error="insufficient_scope"/);
    assert.equal(s.origin.requests().length, 1, 'only the member reached the origin');
  });

  test('Graph refusing the gateway is 403 groups_overage_unresolved, never a 5xx, and nothing reaches the origin', T, async () => {
    const oid = newOid();
    s.entra.setMemberships(oid, [GROUP]);
    s.entra.setGraphFailure(503);
    const token = await s.entra.mintAccessToken({ oid, scp: 'Orders.Read', _claim_names: { groups: 'src1' } });
    const b = new Browser();
    const r = await b.get(`${s.gw}/api/team/x`, bearer(token));
    assert.equal(r.status, 403, r.text);
    assert.match(r.json.error_description, /Microsoft Graph/);
    await s.worker.waitForLog((e) => e.json?.reason === 'groups_overage_unresolved' && /HTTP 503/.test(e.json?.detail));
    assert.deepEqual(s.origin.requests(), []);
    // Graph is back. This user failed a moment ago, so for a few seconds the gateway does not ask again for
    // them (a throttled Graph is not asked on every request); another user is let in at once.
    s.entra.setGraphFailure(null);
    const asked = s.entra.graphRequests().length;
    assert.equal((await b.get(`${s.gw}/api/team/x`, bearer(token))).status, 403);
    assert.equal(s.entra.graphRequests().length, asked, 'no Graph call while the failure stands');
    const other = newOid();
    s.entra.setMemberships(other, [GROUP]);
    const fresh = await s.entra.mintAccessToken({ oid: other, scp: 'Orders.Read', hasgroups: true });
    assert.equal((await b.get(`${s.gw}/api/team/x`, bearer(fresh))).status, 200);
  });

  test('a token whose _claim_sources names an attacker\'s endpoint: that URL is never fetched, Graph alone decides', T, async () => {
    const spy = await startSpy({ body: { value: [GROUP] } });
    try {
      const stranger = newOid();
      const member = newOid();
      s.entra.setMemberships(stranger, OTHER_GROUPS);
      s.entra.setMemberships(member, [GROUP]);
      const sources = (oid) => ({
        _claim_names: { groups: 'src1' },
        _claim_sources: { src1: { endpoint: `${spy.url}/v1.0/users/${oid}/getMemberObjects`, access_token: 'x' } },
      });
      const b = new Browser();
      const no = await b.get(`${s.gw}/api/team/x`, bearer(await s.entra.mintAccessToken({ oid: stranger, scp: 'Orders.Read', ...sources(stranger) })));
      assert.equal(no.status, 403, no.text);
      const ok = await b.get(`${s.gw}/api/team/x`, bearer(await s.entra.mintAccessToken({ oid: member, scp: 'Orders.Read', ...sources(member) })));
      assert.equal(ok.status, 200, ok.text);
      assert.deepEqual(spy.requests(), [], 'the gateway fetched a URL taken from a token');
      assert.equal(s.origin.requests().length, 1, 'only the member reached the origin');
      assert.ok(s.entra.graphRequests().some((g) => g.path === `/v1.0/users/${stranger}/transitiveMemberOf`), 'Graph was asked instead');
    } finally {
      await spy.close();
    }
  });
});
