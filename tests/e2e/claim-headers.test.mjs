// Identity headers from claims and Easy Auth's X-MS-CLIENT-PRINCIPAL, against the wasm Worker in workerd: what
// the origin (tests/support/origin.mjs, which echoes every header it got) receives from a session's ID token and
// a bearer caller's access token, and that no client can send those headers itself, on any route.
import { after, before, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { signInSession, skipReason, startStack } from '../support/stack.mjs';
import { freePort, startWorker } from '../support/worker.mjs';
import { callApi, echoed, mint } from '../support/tokens.mjs';

const skip = skipReason();
const T = { timeout: 30_000, skip };

const ROUTES = [
  { prefix: '/pub/', auth: 'public' },
  {
    prefix: '/api/', auth: 'bearer', client_principal: true,
    headers: {
      'X-Forwarded-Groups': { claim: 'groups', format: 'comma' },
      'X-Groups-Json': { claim: 'groups', format: 'json' },
      'X-Small': { claim: 'groups', max_bytes: 16 },
      'X-Note': 'note',
      'X-Country': 'address.country',
    },
  },
  { prefix: '/', auth: 'session', client_principal: true, headers: { 'X-Forwarded-Groups': 'groups', 'X-User-Name': 'name' } },
];
const SPOOFED = [
  ['X-Forwarded-Groups', 'admins'], ['X_Forwarded_Groups', 'admins'], ['x-groups-json', '["admins"]'],
  ['X-User-Name', 'root'], ['X-MS-CLIENT-PRINCIPAL', Buffer.from('{"claims":[]}').toString('base64')],
  ['X-MS-CLIENT-PRINCIPAL-NAME', 'root'], ['X-MS-CLIENT-PRINCIPAL-ID', 'root'],
];

const principal = (headers) => JSON.parse(Buffer.from(headers['x-ms-client-principal'], 'base64').toString('utf8'));
const vals = (doc, typ) => doc.claims.filter((c) => c.typ === typ).map((c) => c.val);

describe('identity headers from claims', () => {
  let s;
  before(async () => {
    if (skip) return;
    s = await startStack({ vars: { ROUTES: JSON.stringify(ROUTES) } });
  }, { timeout: 90_000 });
  after(async () => { await s?.close(); });
  beforeEach(() => { s?.origin.reset(); });

  test('a bearer caller\'s groups arrive as a comma list and as JSON, with the Easy Auth principal', T, async () => {
    const token = await mint(s.idp, { sub: 'svc-1', oid: 'oid-1', groups: ['admins', 'staff'], address: { country: 'NZ' } });
    const { headers } = echoed(await callApi(`${s.gw}/api/orders`, { token, headers: SPOOFED }));
    assert.equal(headers['x-forwarded-groups'], 'admins,staff');
    assert.equal(headers['x-groups-json'], '["admins","staff"]');
    assert.equal(headers['x-country'], 'NZ');
    assert.equal(headers['x-forwarded-user'], 'svc-1');
    assert.ok(!('x_forwarded_groups' in headers), 'the underscore spelling is removed too');
    assert.ok(!('x-user-name' in headers), 'a header another route maps is never taken from the client');
    const doc = principal(headers);
    assert.equal(doc.auth_typ, 'oidc');
    assert.equal(doc.role_typ, 'roles');
    assert.deepEqual(vals(doc, 'groups'), ['admins', 'staff']);
    assert.deepEqual(vals(doc, 'sub'), ['svc-1']);
    assert.equal(headers['x-ms-client-principal-id'], 'oid-1');
    assert.equal(headers['x-ms-client-principal-name'], 'svc-1');
    assert.equal(headers['x-ms-client-principal-idp'], 'oidc');
  });

  test('an over-size claim and a claim with CR/LF are left out and logged; the request still goes through', T, async () => {
    const groups = ['a-rather-long-group-name', 'another-one'];
    const token = await mint(s.idp, { groups, note: 'ok\r\nX-Forwarded-User: admin' });
    const { headers } = echoed(await callApi(`${s.gw}/api/orders`, { token, headers: [['X-Small', 'forged'], ['X-Note', 'forged']] }));
    assert.ok(!('x-small' in headers), 'over its 16-byte cap: not sent, not cut, and the client copy gone');
    assert.ok(!('x-note' in headers), 'CR/LF in the claim: not sent');
    assert.equal(headers['x-forwarded-user'], 'alice', 'no header injected');
    assert.equal(headers['x-forwarded-groups'], groups.join(','));
    const line = await s.worker.waitForLog((l) => l.json?.reason === 'bearer_forwarded' && l.json.notes?.length);
    assert.deepEqual([...line.json.notes].sort(), ['claim_header_too_large', 'claim_header_unsafe']);
  });

  test('a public route never passes a client\'s copy of a mapped or Easy Auth header', T, async () => {
    const res = await callApi(`${s.gw}/pub/x`, { headers: SPOOFED });
    assert.equal(res.status, 200);
    const { headers } = s.origin.last();
    for (const [name] of SPOOFED) assert.ok(!(name.toLowerCase() in headers), `${name} reached the origin`);
  });

  test('a session maps its ID token\'s claims, groups included', T, async () => {
    s.idp.setTokenHook(async (body, t) => {
      if (body.id_token) body.id_token = await t.resign(body.id_token, ({ payload }) => { payload.groups = ['readers', 'writers']; });
    });
    try {
      const { b } = await signInSession(s);
      const res = await b.request(`${s.gw}/home`, { headers: Object.fromEntries(SPOOFED) });
      assert.equal(res.status, 200);
      const seen = s.origin.last();
      assert.equal(seen.headers['x-forwarded-groups'], 'readers,writers');
      assert.equal(seen.headers['x-user-name'], 'Alice Liddell');
      const doc = principal(seen.headers);
      assert.deepEqual(vals(doc, 'groups'), ['readers', 'writers']);
      assert.deepEqual(vals(doc, 'email'), ['alice@example.com']);
      assert.equal(seen.headers['x-ms-client-principal-name'], 'alice');
      // Later requests of the warm session (its claims parsed once, then reused) map the same values.
      for (let i = 0; i < 3; i++) {
        assert.equal((await b.request(`${s.gw}/home/${i}`, { headers: Object.fromEntries(SPOOFED) })).status, 200);
        const again = s.origin.last().headers;
        assert.equal(again['x-forwarded-groups'], 'readers,writers', `request ${i + 2}`);
        assert.equal(again['x-user-name'], 'Alice Liddell');
        assert.deepEqual(vals(principal(again), 'groups'), ['readers', 'writers']);
      }
    } finally {
      s.idp.setTokenHook(null);
    }
  });
});

describe('header mappings are checked at start-up', () => {
  test('a reserved or malformed header name, a public route that maps claims and a bad DPoP flag are all named', T, async () => {
    if (skip) return;
    const port = await freePort();
    const routes = [
      { prefix: '/', auth: 'session', headers: { Authorization: 'sub', X_Groups: 'groups' } },
      { prefix: '/pub/', auth: 'public', client_principal: true },
    ];
    const w = await startWorker({
      port,
      vars: {
        OIDC_ISSUER: 'http://127.0.0.1:9', OIDC_CLIENT_ID: 'edgeguard', PUBLIC_URL: `http://127.0.0.1:${port}`,
        ORIGIN_URL: 'http://127.0.0.1:9', ROUTES: JSON.stringify(routes), DPOP_NONCE: 'yes',
      },
      secrets: { OIDC_CLIENT_SECRET: 'client-secret-value-123', SESSION_SECRET: crypto.randomBytes(32).toString('hex') },
    });
    try {
      const res = await fetch(`${w.url}/auth/health`);
      assert.equal(res.status, 500);
      const text = (await res.json()).error_description;
      assert.match(text, /ROUTES: route 0: header "Authorization" is set by the gateway/);
      assert.match(text, /header "X_Groups" contains _/);
      assert.match(text, /route 1: headers and client_principal need a caller/);
      assert.match(text, /DPOP_NONCE: "yes" is not true or false/);
    } finally {
      await w.close();
    }
  });
});
