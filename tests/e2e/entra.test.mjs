// Microsoft Entra ID end to end: the built Worker configured with the Entra preset (ENTRA_TENANT,
// ENTRA_AUTHORITY pointing at tests/support/entra.mjs, an Entra lookalike with tenant paths, the {tenantid}
// issuer template, v1/v2 tokens, consent errors and group overage). Multi-tenant sign-in from an allowed and
// a refused tenant, v1 and v2 access tokens on API routes, Graph tokens, app-only tokens, group overage, and
// the v1 endpoint with `resource` and string `expires_in`.
import { after, before, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Browser } from '../support/browser.mjs';
import { HOME_TENANT, PARTNER_TENANT, signInThenVisit, startEntraStack as startStack } from '../support/entra.mjs';
import { SESSION_COOKIE, describeHops, sessionCookieSet, skipReason } from '../support/stack.mjs';

const skip = skipReason();
const T = { timeout: 20_000, skip };
const GROUP = '1ba1e0b4-7f2f-4b1c-9f55-7f5d1b0f1a2c';
const ROUTES = [
  { prefix: '/', auth: 'session' },
  { prefix: '/admin/', auth: 'session', groups: [GROUP] },
  { prefix: '/reports/', auth: 'session', scopes: ['Orders.Read'] },
  { prefix: '/api/', auth: 'bearer', scopes: ['Orders.Read'], caller: 'user' },
  { prefix: '/api/jobs/', auth: 'bearer', roles: ['Orders.Write.All'], caller: 'app' },
  { prefix: '/api/team/', auth: 'bearer', groups: [GROUP] },
];

/** An Entra lookalike, an origin and the Worker with the preset; `vars` override the defaults. */
const startEntraStack = (vars = {}) => startStack({ routes: ROUTES, vars });

const bearer = (token) => ({ headers: { authorization: `Bearer ${token}` }, initiator: null });

describe('Entra ID: multi-tenant sign-in, issuers, API tokens', () => {
  let s;
  before(async () => { if (!skip) s = await startEntraStack(); }, { timeout: 30_000 });
  after(async () => { await s?.close(); });
  beforeEach(() => { s?.origin.reset(); s?.entra.setUser({}); s?.entra.requireConsent(null); });

  test('a user of an allowed tenant signs in through the tenant-path authority and reaches the origin with oid and tid', T, async () => {
    const b = new Browser();
    const { final, hops } = await b.navigate(`${s.gw}/home`);
    assert.equal(final.status, 200, describeHops(hops));
    const authorize = s.entra.authorizeRequests().at(-1);
    assert.equal(authorize.tenant, 'organizations');
    assert.equal(authorize.ver, '2.0', 'the v2 authorize endpoint');
    assert.match(authorize.scope, /\boffline_access\b/);
    assert.match(authorize.scope, /api:\/\/orders\/Orders\.Read/);
    assert.equal(authorize.resource, undefined, 'v2 sends scope, never resource');
    const seen = s.origin.last();
    assert.equal(seen.headers['x-forwarded-object-id'], '00000000-0000-0000-66f3-3332eca7ea81');
    assert.equal(seen.headers['x-forwarded-tenant-id'], HOME_TENANT);
    assert.ok(seen.headers.authorization?.startsWith('Bearer '), 'the session access token is attached');
    assert.ok(b.jar.get(SESSION_COOKIE));
    // Entra grants `api://orders/Orders.Read`; routes name the scope as `scp` does: `Orders.Read`.
    assert.equal((await b.navigate(`${s.gw}/reports/q3`)).final.status, 200);
  });

  test('a user of a tenant not on ENTRA_ALLOWED_TENANTS gets no session and never reaches the origin', T, async () => {
    s.entra.setUser({ tid: PARTNER_TENANT, oid: '11111111-0000-4000-8000-000000000001' });
    const b = new Browser();
    const { final, hops } = await b.navigate(`${s.gw}/home`);
    assert.equal(final.status, 400, describeHops(hops));
    assert.equal(sessionCookieSet(hops), null);
    assert.deepEqual(s.origin.requests(), []);
    await s.worker.waitForLog((e) => e.json?.reason === 'issuer_tenant_not_allowed');
  });

  test('v1 and v2 access tokens of an allowed tenant pass an API route; other tenants do not', T, async () => {
    const b = new Browser();
    for (const ver of ['1.0', '2.0']) {
      const token = await s.entra.mintAccessToken({ ver, scp: 'Orders.Read', idtyp: 'user' });
      const r = await b.get(`${s.gw}/api/orders`, bearer(token));
      assert.equal(r.status, 200, `${ver}: ${r.text}`);
      assert.equal(r.json.headers['x-forwarded-tenant-id'], HOME_TENANT);
    }
    const foreign = await s.entra.mintAccessToken({ ver: '1.0', scp: 'Orders.Read', tid: PARTNER_TENANT });
    const r = await b.get(`${s.gw}/api/orders`, bearer(foreign));
    assert.equal(r.status, 401);
    assert.match(r.headers.get('www-authenticate'), /error="invalid_token"/);
    await s.worker.waitForLog((e) => e.json?.reason === 'issuer_tenant_not_allowed');
    // iss of one tenant with tid of another.
    const mixed = await s.entra.mintAccessToken({ scp: 'Orders.Read', tid: HOME_TENANT, iss: s.entra.issuerFor('2.0', PARTNER_TENANT) });
    assert.equal((await b.get(`${s.gw}/api/orders`, bearer(mixed))).status, 401);
    await s.worker.waitForLog((e) => e.json?.reason === 'issuer_mismatch');
  });

  test('a Microsoft Graph token is refused with graph_token_not_for_this_api', T, async () => {
    const r = await new Browser().get(`${s.gw}/api/orders`, bearer(await s.entra.mintGraphToken()));
    assert.equal(r.status, 401);
    assert.match(r.headers.get('www-authenticate'), /Microsoft Graph/);
    await s.worker.waitForLog((e) => e.json?.reason === 'graph_token_not_for_this_api');
    assert.deepEqual(s.origin.requests(), []);
  });

  test('app-only routes take app tokens and refuse user tokens, and the reverse', T, async () => {
    const b = new Browser();
    const app = await s.entra.mintAccessToken({ roles: ['Orders.Write.All'], idtyp: 'app', oid: 'a0a0a0a0-0000-4000-8000-000000000001' });
    const user = await s.entra.mintAccessToken({ scp: 'Orders.Read', roles: ['Orders.Write.All'] });
    assert.equal((await b.get(`${s.gw}/api/jobs/run`, bearer(app))).status, 200);
    const refused = await b.get(`${s.gw}/api/jobs/run`, bearer(user));
    assert.equal(refused.status, 403);
    await s.worker.waitForLog((e) => e.json?.reason === 'app_token_required');
    assert.equal((await b.get(`${s.gw}/api/orders`, bearer(app))).status, 403);
    await s.worker.waitForLog((e) => e.json?.reason === 'user_token_required');
  });

  test('group overage: a session or token whose groups were cut off gets 403 groups_overage with advice', T, async () => {
    s.entra.setUser({ overage: 'claim_names' });
    const { b, visit: admin } = await signInThenVisit(s, '/admin/users');
    assert.equal(admin.final.status, 403);
    assert.match(admin.final.text, /group overage/);
    assert.match(admin.final.text, /app role/);
    await s.worker.waitForLog((e) => e.json?.reason === 'groups_overage');
    const token = await s.entra.mintAccessToken({ scp: 'Orders.Read', hasgroups: true });
    assert.equal((await b.get(`${s.gw}/api/team/x`, bearer(token))).status, 403);
    assert.deepEqual(s.origin.requests(), []);
    // The same user with the group listed is let in.
    s.entra.setUser({});
    const listed = new Browser();
    await listed.navigate(`${s.gw}/home`);
    assert.equal((await listed.navigate(`${s.gw}/admin/users`)).final.status, 200);
  });

  test('front-channel logout: Entra\'s sid-only request, with no cookie, ends the session its sid names', T, async () => {
    const b = new Browser();
    assert.equal((await b.navigate(`${s.gw}/home`)).final.status, 200);
    const sid = s.entra.lastSid();
    const other = new Browser();
    assert.equal((await other.navigate(`${s.gw}/home`)).final.status, 200, 'a second session, with its own sid');
    // What Entra's iframe loads in this browser: no iss, and (cross-site, SameSite=Lax) no session cookie.
    const r = await b.get(`${s.gw}/auth/frontchannel-logout?sid=${encodeURIComponent(sid)}`, { initiator: `${s.entra.base}/` });
    assert.equal(r.status, 200);
    assert.equal(r.headers.get('cache-control'), 'no-store');
    await s.worker.waitForLog((e) => e.json?.reason === 'frontchannel_logout' && e.json?.detail === '1 session(s) ended');
    s.origin.reset();
    const after = await b.get(`${s.gw}/home`, { headers: { accept: 'application/json' }, initiator: null });
    assert.equal(after.status, 401, 'the session is over');
    assert.deepEqual(s.origin.requests(), []);
    assert.equal((await other.navigate(`${s.gw}/home`)).final.status, 200, 'the other sid\'s session is untouched');
  });

  test('front-channel logout naming another tenant\'s issuer ends nothing', T, async () => {
    const b = new Browser();
    assert.equal((await b.navigate(`${s.gw}/home`)).final.status, 200);
    const sid = encodeURIComponent(s.entra.lastSid());
    const iss = encodeURIComponent(s.entra.issuerFor('2.0', PARTNER_TENANT));
    const r = await new Browser().get(`${s.gw}/auth/frontchannel-logout?iss=${iss}&sid=${sid}`, { initiator: null });
    assert.equal(r.status, 400);
    await s.worker.waitForLog((e) => e.json?.reason === 'frontchannel_logout_issuer_mismatch');
    assert.equal((await b.navigate(`${s.gw}/home`)).final.status, 200, 'still signed in');
    // The home tenant's issuer with the same sid does end it.
    const home = encodeURIComponent(s.entra.issuerFor('2.0', HOME_TENANT));
    assert.equal((await new Browser().get(`${s.gw}/auth/frontchannel-logout?iss=${home}&sid=${sid}`, { initiator: null })).status, 200);
    const after = await b.get(`${s.gw}/home`, { headers: { accept: 'application/json' }, initiator: null });
    assert.equal(after.status, 401);
  });

  test('consent_required at the callback is retried once with prompt=consent, and the sign-in completes', T, async () => {
    s.entra.requireConsent('once');
    const before = s.entra.authorizeRequests().length;
    const b = new Browser();
    const { final, hops } = await b.navigate(`${s.gw}/orders?page=2`);
    assert.equal(final.status, 200, describeHops(hops));
    assert.equal(s.origin.last().url, '/orders?page=2', 'back where the user was going');
    const asked = s.entra.authorizeRequests().slice(before);
    assert.deepEqual(asked.map((a) => a.prompt), [undefined, 'consent']);
    await s.worker.waitForLog((e) => e.json?.reason === 'consent_retry');
  });

  test('a second consent refusal ends at a page pointing at admin consent, not in a loop', T, async () => {
    s.entra.requireConsent('always');
    const before = s.entra.authorizeRequests().length;
    const b = new Browser();
    const { final, hops } = await b.navigate(`${s.gw}/home`);
    assert.equal(final.status, 403, describeHops(hops));
    assert.match(final.text, /\/auth\/admin-consent/);
    assert.equal(s.entra.authorizeRequests().length - before, 2, 'exactly one retry');
    assert.equal(sessionCookieSet(hops), null);
    assert.deepEqual(s.origin.requests(), []);
    await s.worker.waitForLog((e) => e.json?.reason === 'consent_required');
  });

  test('/auth/admin-consent sends an administrator to the tenant adminconsent endpoint and reports the answer', T, async () => {
    const b = new Browser();
    const granted = await b.navigate(`${s.gw}/auth/admin-consent`);
    assert.equal(granted.final.status, 200, describeHops(granted.hops));
    assert.match(granted.final.text, new RegExp(`Consent was granted for tenant <code>${HOME_TENANT}</code>`));
    const asked = s.entra.authorizeRequests().at(-1);
    assert.equal(asked.adminconsent, true);
    assert.equal(asked.tenant, 'organizations');
    assert.equal(asked.redirect_uri, `${s.gw}/auth/admin-consent`);
    s.entra.setAdminConsent('deny');
    try {
      const denied = await new Browser().navigate(`${s.gw}/auth/admin-consent`);
      assert.equal(denied.final.status, 403);
      assert.match(denied.final.text, /access_denied/);
    } finally {
      s.entra.setAdminConsent('grant');
    }
    // An answer that this browser did not ask for claims nothing.
    const forged = await new Browser().navigate(`${s.gw}/auth/admin-consent?admin_consent=True&tenant=${HOME_TENANT}&state=x`);
    assert.equal(forged.final.status, 400);
  });
});

describe('Entra ID: the v1 endpoint', () => {
  let s;
  before(async () => {
    if (skip) return;
    s = await startEntraStack({
      ENTRA_TENANT: HOME_TENANT, ENTRA_VERSION: 'v1', ENTRA_ALLOWED_TENANTS: undefined,
      OIDC_RESOURCE: 'api://orders', OIDC_SCOPES: undefined,
    });
  }, { timeout: 30_000 });
  after(async () => { await s?.close(); });

  test('signs in with resource=, a sts.windows.net issuer and expires_in as a string', T, async () => {
    const b = new Browser();
    const { final, hops } = await b.navigate(`${s.gw}/home`);
    assert.equal(final.status, 200, describeHops(hops));
    const authorize = s.entra.authorizeRequests().at(-1);
    assert.equal(authorize.tenant, HOME_TENANT);
    assert.equal(authorize.ver, '1.0');
    assert.equal(authorize.resource, 'api://orders');
    const exchange = s.entra.tokenRequests().find((t) => t.params.grant_type === 'authorization_code');
    assert.equal(exchange.params.resource, 'api://orders');
    // The session works (its access token was not taken as expired for want of a numeric expires_in).
    s.origin.reset();
    assert.equal((await b.navigate(`${s.gw}/other`)).final.status, 200);
    assert.equal(s.entra.tokenRequests().filter((t) => t.params.grant_type === 'refresh_token').length, 0);
  });
});
