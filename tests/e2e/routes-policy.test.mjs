// ROUTES: longest-prefix routing, deny by default (404 for unrouted paths), per-route origins, public
// routes, CORS preflights, session_or_bearer, and the per-route requirements (scopes: all; roles, groups,
// tenants: any one) answered with RFC 6750 403 insufficient_scope. Plus ROUTES/API_AUDIENCES config errors.
import { after, before, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Browser } from '../support/browser.mjs';
import { startOrigin } from '../support/origin.mjs';
import { SESSION_COOKIE, sessionCookieSet, skipReason, startStack } from '../support/stack.mjs';
import {
  TENANT_ID, callApi, echoed, expectInsufficientScope, expectInvalidToken, expectJsonError, expectNoTokenChallenge,
  expectNot5xx, mint, rawHttp,
} from '../support/tokens.mjs';

const skip = skipReason();
const T = { timeout: 10_000, skip };

const OTHER_TENANT = '11111111-2222-4333-8444-555555555555';
/** The same scopes in `scp` (Entra) and `scope` (RFC 9068); the gateway reads `scope` first when both exist. */
const scopes = (list) => ({ scp: list, scope: list });

describe('routes: requirements, routing and auth modes', () => {
  let s;
  let second;
  let session; // a signed-in Browser

  before(async () => {
    if (skip) return;
    second = await startOrigin();
    const routes = [
      { prefix: '/api/read', auth: 'bearer', scopes: ['api.read'] },
      { prefix: '/api/read/admin', auth: 'bearer', scopes: ['api.read'], roles: ['Admin'] },
      { prefix: '/api/write', auth: 'bearer', scopes: ['api.write', 'api.read'] },
      { prefix: '/api/roles', auth: 'bearer', roles: ['Admin', 'Owner'] },
      { prefix: '/api/groups', auth: 'bearer', groups: ['g-eng', 'g-ops'] },
      { prefix: '/api/tenant', auth: 'bearer', tenants: [TENANT_ID] },
      { prefix: '/api/other-tenant', auth: 'bearer', tenants: [OTHER_TENANT] },
      { prefix: '/api/cors', auth: 'bearer', cors_preflight: true },
      { prefix: '/api/nocors', auth: 'bearer' },
      { prefix: '/api/mixed', auth: 'session_or_bearer' },
      { prefix: '/api/elsewhere', auth: 'bearer', origin: second.url },
      { prefix: '/api/public', auth: 'public' },
      { prefix: '/public', auth: 'public' },
      { prefix: '/app', auth: 'session' },
      { prefix: '/default' },
    ];
    s = await startStack({ vars: { ROUTES: JSON.stringify(routes) } });
    session = new Browser();
    const r = await session.signIn(`${s.gw}/app/home`);
    assert.equal(r.final.status, 200, r.final.text.slice(0, 300));
    assert.ok(sessionCookieSet(r.hops), 'no session cookie after sign-in');
  }, { timeout: 30_000 });

  after(async () => { await s?.close(); await second?.close(); });
  beforeEach(() => { s?.origin.reset(); second?.reset(); });

  const api = (path, opts) => callApi(`${s.gw}${path}`, opts);
  const nothingForwarded = () => {
    assert.deepEqual(s.origin.requests(), [], 'the origin got a request');
    assert.deepEqual(second.requests(), [], 'the second origin got a request');
  };

  // ---------------------------------------------------------------- scopes
  test('scope present → forwarded; scope missing → 403 insufficient_scope with scope="api.read"', T, async () => {
    echoed(await api('/api/read/items', { token: await mint(s.idp, scopes('api.read profile')) }));
    s.origin.reset();
    expectInsufficientScope(await api('/api/read/items', { token: await mint(s.idp, scopes('profile')) }), { scope: 'api.read' });
    nothingForwarded();
  });

  test('all listed scopes are required; the challenge names every required scope', T, async () => {
    echoed(await api('/api/write', { token: await mint(s.idp, scopes('api.read api.write')) }));
    s.origin.reset();
    const res = await api('/api/write', { token: await mint(s.idp, scopes('api.read')) });
    expectInsufficientScope(res, { scope: 'api.write api.read' });
    nothingForwarded();
  });

  test('scopes from `scope` (RFC 9068) or `scp`, as a string or an array', T, async () => {
    for (const claims of [
      { scp: undefined, scope: 'api.read' },
      { scp: ['api.read', 'x'], scope: undefined },
      { scp: 'x api.read', scope: undefined },
    ]) {
      echoed(await api('/api/read', { token: await mint(s.idp, claims) }));
    }
  });

  test('no scope by substring, prefix, case or other claims', T, async () => {
    for (const [name, claims] of Object.entries({
      'api.readx': { scp: 'api.readx', scope: undefined },
      'api.rea': { scp: 'api.rea', scope: undefined },
      'API.READ': { scp: 'API.READ', scope: undefined },
      'comma list': { scp: 'profile,api.read', scope: undefined },
      'in roles': { scp: undefined, scope: undefined, roles: ['api.read'] },
      'scp empty': { scp: '', scope: undefined },
      'scp a number': { scp: 7, scope: undefined },
    })) {
      const res = await api('/api/read', { token: await mint(s.idp, claims) });
      expectNot5xx(res, name);
      assert.ok([401, 403].includes(res.status), `${name}: ${res.status} ${res.text}`);
      if (res.status === 403) expectInsufficientScope(res, { scope: 'api.read', what: name });
    }
    nothingForwarded();
  });

  test('longest prefix wins: /api/read/admin also needs the Admin role', T, async () => {
    const reader = await mint(s.idp, scopes('api.read'));
    expectInsufficientScope(await api('/api/read/admin/x', { token: reader }));
    nothingForwarded();
    echoed(await api('/api/read/admin/x', { token: await mint(s.idp, { ...scopes('api.read'), roles: ['Admin'] }) }));
    s.origin.reset();
    echoed(await api('/api/read/administrator', { token: reader }));
  });

  // ---------------------------------------------------------------- roles, groups, tenants
  test('roles: any one of the listed roles', T, async () => {
    for (const roles of [['Admin'], ['Reader', 'Owner']]) {
      echoed(await api('/api/roles', { token: await mint(s.idp, { roles }) }));
    }
    s.origin.reset();
    for (const [name, roles] of Object.entries({ other: ['Reader'], missing: undefined, empty: [], lowercase: ['admin'] })) {
      expectInsufficientScope(await api('/api/roles', { token: await mint(s.idp, { roles }) }), { what: `roles ${name}` });
    }
    nothingForwarded();
  });

  test('groups: any one of the listed groups', T, async () => {
    echoed(await api('/api/groups', { token: await mint(s.idp, { groups: ['g-x', 'g-ops'] }) }));
    s.origin.reset();
    for (const groups of [['g-x'], undefined, []]) {
      expectInsufficientScope(await api('/api/groups', { token: await mint(s.idp, { groups }) }), { what: `groups ${JSON.stringify(groups)}` });
    }
    nothingForwarded();
  });

  test('tenants: tid must be one of the listed tenants', T, async () => {
    echoed(await api('/api/tenant', { token: await mint(s.idp, { tid: TENANT_ID }) }));
    s.origin.reset();
    for (const tid of [OTHER_TENANT, undefined, TENANT_ID.toUpperCase(), [TENANT_ID]]) {
      const res = await api('/api/tenant', { token: await mint(s.idp, { tid }) });
      expectNot5xx(res);
      assert.ok([401, 403].includes(res.status), `tid ${JSON.stringify(tid)}: ${res.status}`);
      if (res.status === 403) expectInsufficientScope(res, { what: `tid ${JSON.stringify(tid)}` });
    }
    expectInsufficientScope(await api('/api/other-tenant', { token: await mint(s.idp) }));
    nothingForwarded();
  });

  test('a real IdP token for another route\'s scope: the gateway\'s own session token lacks api.write', T, async () => {
    // The access token the session route forwarded carries what the user consented to.
    const hop = await session.get(`${s.gw}/app/x`);
    assert.equal(hop.status, 200);
    const token = s.origin.requests().at(-1).headers.authorization.slice('Bearer '.length);
    s.origin.reset();
    expectInsufficientScope(await api('/api/write', { token }), { scope: 'api.write api.read' });
    nothingForwarded();
  });

  test('requirements are checked only after the token is valid: an expired token with every scope is 401, not 403', T, async () => {
    const res = await api('/api/write', { token: await mint(s.idp, { ...scopes('api.write api.read'), exp: 1_000_000 }) });
    expectInvalidToken(res);
    nothingForwarded();
  });

  // ---------------------------------------------------------------- routing
  test('a path no route matches → 404 route_not_found, nothing forwarded, with or without a token', T, async () => {
    const token = await mint(s.idp, { ...scopes('api.write api.read'), roles: ['Admin'] });
    for (const path of ['/', '/nothing', '/api', '/api/', '/api/unknown', '/apx/read', '/publicity', '/appendix']) {
      for (const opts of [{}, { token }]) {
        const res = await api(path, opts);
        assert.equal(res.status, 404, `${path}: ${res.status} ${res.text.slice(0, 200)}`);
        expectJsonError(res, path);
      }
    }
    nothingForwarded();
    const entry = await s.worker.waitForLog((e) => e.json?.path === '/nothing');
    assert.equal(entry.json.reason, 'route_not_found');
  });

  test('a navigation to an unrouted path is a 404 too, not a sign-in redirect', T, async () => {
    const hop = await new Browser().request(`${s.gw}/nowhere`, { navigate: true });
    assert.equal(hop.status, 404, hop.text.slice(0, 200));
    assert.equal(hop.location, null);
    nothingForwarded();
  });

  test('prefixes match on segment boundaries and after decoding unreserved escapes', T, async () => {
    // /%61pi/read is /api/read: it must be protected like it.
    expectNoTokenChallenge(await api('/%61pi/read'));
    expectNoTokenChallenge(await api('/api/%72ead/x'));
    nothingForwarded();
  });

  test('dot segments and encoded slashes cannot escape a public prefix into a protected one', T, async () => {
    for (const path of ['/public/../api/read', '/public/%2e%2e/api/read', '/public/.%2E/api/read', '/public/..%2fapi/read',
      '/public%2f..%2fapi/read', '/public/..\\api/read', '/public/%5c../api/read']) {
      const res = await rawHttp(`${s.gw}${path}`, { headers: [['accept', 'application/json']] });
      expectNot5xx(res, path);
      const reached = s.origin.requests().map((r) => r.path);
      assert.ok(!reached.some((p) => p.startsWith('/api/read')), `${path} reached the origin as ${reached.join(', ')} (${res.status})`);
      assert.ok(res.status !== 200 || !/\/api\/read/.test(JSON.stringify(res.json?.path ?? '')), `${path}: ${res.status}`);
      s.origin.reset();
    }
  });

  test('paths origins read differently (;, //, dot segments, case) get 400 and never reach an origin', T, async () => {
    // Tomcat/Jetty/Spring drop `;` parameters before resolving `..`: /public/..;/api/read is /api/read to them.
    for (const [path, reason] of [
      ['/public/..;/api/read', 'path_parameter'], ['/public/x;jsessionid=1', 'path_parameter'],
      ['/api/read;x/items', 'path_parameter'], ['/public/%3b/x', 'path_parameter'],
      ['/public//api/read', 'path_empty_segment'], ['/PUBLIC/x', 'path_case_ambiguous'],
      ['/API/read/admin', 'path_case_ambiguous'],
    ]) {
      const res = await rawHttp(`${s.gw}${path}`, { headers: [['accept', 'application/json']] });
      assert.equal(res.status, 400, `${path}: ${res.status} ${res.text.slice(0, 200)}`);
      await s.worker.waitForLog((l) => l.json?.reason === reason && l.json?.path === path);
      nothingForwarded();
    }
  });

  test('the origin receives exactly the canonical path the route was chosen on', T, async () => {
    const res = await rawHttp(`${s.gw}/%70ublic/a%7eb%20c?q=%2F`, { headers: [['accept', 'application/json']] });
    assert.equal(res.status, 200, res.text.slice(0, 200));
    assert.deepEqual(s.origin.requests().map((r) => r.url), ['/public/a~b%20c?q=%2F']);
  });

  test('a route without auth defaults to "session"', T, async () => {
    const res = await api('/default/x');
    assert.equal(res.status, 401);
    nothingForwarded();
    const hop = await session.get(`${s.gw}/default/x`);
    assert.equal(hop.status, 200, hop.text.slice(0, 200));
  });

  test('a route\'s own origin gets its requests; the default origin gets none of them', T, async () => {
    const res = await api('/api/elsewhere/x?q=1', { token: await mint(s.idp, { sub: 'eve' }) });
    assert.equal(res.status, 200, res.text.slice(0, 200));
    assert.deepEqual(s.origin.requests(), []);
    const got = second.requests();
    assert.equal(got.length, 1);
    assert.equal(got[0].url, '/api/elsewhere/x?q=1');
    assert.equal(got[0].headers['x-forwarded-user'], 'eve');
  });

  // ---------------------------------------------------------------- public
  test('a public route passes with no token, and identity headers are still stripped', T, async () => {
    const res = await api('/public/page', { headers: [['x-forwarded-user', 'admin'], ['x-forwarded-email', 'a@b.c'], ['remote-user', 'admin']] });
    assert.equal(res.status, 200, res.text.slice(0, 200));
    const seen = s.origin.requests();
    assert.equal(seen.length, 1);
    for (const h of ['x-forwarded-user', 'x-forwarded-email', 'remote-user']) assert.equal(seen[0].headers[h], undefined, h);
    echoed(await api('/api/public/echo'));
  });

  test('a public route sets no identity even for a valid token', T, async () => {
    echoed(await api('/api/public/echo', { token: await mint(s.idp, { sub: 'alice' }) }));
    assert.equal(s.origin.requests()[0].headers['x-forwarded-user'], undefined);
  });

  // ---------------------------------------------------------------- CORS preflight
  const preflight = (path, extra = []) => rawHttp(`${s.gw}${path}`, {
    method: 'OPTIONS',
    headers: [['origin', 'https://spa.example'], ['access-control-request-method', 'POST'],
      ['access-control-request-headers', 'authorization, content-type'], ...extra],
  });

  test('cors_preflight: true → an OPTIONS preflight reaches the origin without credentials', T, async () => {
    const res = await preflight('/api/cors/items');
    assert.equal(res.status, 200, `${res.status} ${res.www} ${res.text.slice(0, 200)}`);
    const seen = s.origin.requests();
    assert.equal(seen.length, 1);
    assert.equal(seen[0].method, 'OPTIONS');
    assert.equal(seen[0].headers['access-control-request-method'], 'POST');
    assert.equal(seen[0].headers['x-forwarded-user'], undefined);
  });

  test('cors_preflight: true does not open anything else: GET, or OPTIONS without the preflight headers → 401', T, async () => {
    expectNoTokenChallenge(await api('/api/cors/items'));
    expectNoTokenChallenge(await api('/api/cors/items', { method: 'POST', headers: [['origin', 'https://spa.example']] }));
    expectNoTokenChallenge(await rawHttp(`${s.gw}/api/cors/items`, { method: 'OPTIONS', headers: [['accept', 'application/json']] }));
    expectNoTokenChallenge(await rawHttp(`${s.gw}/api/cors/items`, { method: 'OPTIONS', headers: [['accept', 'application/json'], ['origin', 'https://spa.example']] }));
    expectNoTokenChallenge(await rawHttp(`${s.gw}/api/cors/items`, { method: 'OPTIONS', headers: [['accept', 'application/json'], ['access-control-request-method', 'GET']] }));
    nothingForwarded();
  });

  test('without cors_preflight a preflight is refused with 401', T, async () => {
    const res = await preflight('/api/nocors/items', [['accept', 'application/json']]);
    expectNoTokenChallenge(res);
    nothingForwarded();
  });

  test('a spoofed identity on a preflight is stripped', T, async () => {
    await preflight('/api/cors/x', [['x-forwarded-user', 'admin'], ['authorization', 'Bearer forged']]);
    const seen = s.origin.requests();
    assert.equal(seen.length, 1);
    assert.equal(seen[0].headers['x-forwarded-user'], undefined);
  });

  // ---------------------------------------------------------------- session_or_bearer
  test('session_or_bearer: a bearer token works (no cookie)', T, async () => {
    const echo = echoed(await api('/api/mixed/x', { token: await mint(s.idp, { sub: 'bob' }) }));
    assert.equal(echo.headers['x-forwarded-user'], 'bob');
  });

  test('session_or_bearer: the session cookie works (no Authorization)', T, async () => {
    const hop = await session.get(`${s.gw}/api/mixed/x`);
    assert.equal(hop.status, 200, hop.text.slice(0, 200));
    assert.equal(s.origin.requests().at(-1).headers['x-forwarded-user'], 'alice');
  });

  test('session_or_bearer: an invalid bearer token is 401 even with a valid session cookie (no fallback)', T, async () => {
    for (const authorization of [`Bearer ${await mint(s.idp, { exp: 1_000_000 })}`, 'Bearer garbage', 'Bearer', 'Bearer ']) {
      const hop = await session.get(`${s.gw}/api/mixed/x`, { headers: { authorization } });
      assert.equal(hop.status, 401, `${JSON.stringify(authorization)}: ${hop.status} ${hop.text.slice(0, 200)}`);
      assert.match(hop.headers.get('www-authenticate') ?? '', /error="invalid_token"/, JSON.stringify(authorization));
    }
    nothingForwarded();
  });

  test('session_or_bearer: no cookie and no token → 401 Bearer challenge, nothing forwarded', T, async () => {
    expectNoTokenChallenge(await api('/api/mixed/x'));
    nothingForwarded();
  });

  test('session_or_bearer: the bearer token\'s identity wins over the cookie\'s', T, async () => {
    const token = await mint(s.idp, { sub: 'bob' });
    const hop = await session.get(`${s.gw}/api/mixed/x`, { headers: { authorization: `Bearer ${token}` } });
    assert.equal(hop.status, 200);
    const seen = s.origin.requests().at(-1);
    assert.equal(seen.headers['x-forwarded-user'], 'bob');
    assert.equal(seen.headers.authorization, `Bearer ${token}`);
    assert.ok(!(seen.headers.cookie ?? '').includes(SESSION_COOKIE), 'the session cookie reached the origin');
  });

  test('a session route does not take bearer tokens', T, async () => {
    const res = await api('/app/x', { token: await mint(s.idp) });
    assert.equal(res.status, 401, res.text.slice(0, 200));
    nothingForwarded();
  });

  test('a bearer route does not take the session cookie', T, async () => {
    const hop = await session.get(`${s.gw}/api/read/x`);
    assert.equal(hop.status, 401, hop.text.slice(0, 200));
    assert.doesNotMatch(hop.headers.get('www-authenticate') ?? '', /error=/);
    nothingForwarded();
  });
});

describe('routes: configuration errors', () => {
  const cases = [
    ['ROUTES that is not JSON', { vars: { ROUTES: '[{prefix: "/api/"}]' } }, 'ROUTES'],
    ['ROUTES with a prefix without a leading slash', { vars: { ROUTES: '[{"prefix":"api/","auth":"bearer"}]' } }, 'ROUTES'],
    ['ROUTES with an unknown auth mode', { vars: { ROUTES: '[{"prefix":"/api/","auth":"jwt"}]' } }, 'ROUTES'],
    ['ROUTES with a misspelt requirement', { vars: { ROUTES: '[{"prefix":"/api/","auth":"bearer","scope":["a"]}]' } }, 'ROUTES'],
    ['a bearer route with no audience (no OIDC_RESOURCE, no API_AUDIENCES)', { resource: false, vars: { ROUTES: '[{"prefix":"/api/","auth":"bearer"}]' } }, 'API_AUDIENCES'],
    ['a session_or_bearer route with no audience', { resource: false, vars: { ROUTES: '[{"prefix":"/","auth":"session_or_bearer"}]' } }, 'API_AUDIENCES'],
    ['JWKS_REFETCH_COOLDOWN that is not a duration', { vars: { JWKS_REFETCH_COOLDOWN: 'soon' } }, 'JWKS_REFETCH_COOLDOWN'],
  ];
  for (const [name, opts, setting] of cases) {
    test(`${name} → /auth/health 500 naming ${setting}; requests are refused, never forwarded`, { ...T, timeout: 30_000 }, async () => {
      const s = await startStack(opts);
      try {
        const health = await fetch(`${s.gw}/auth/health`);
        const text = await health.text();
        assert.equal(health.status, 500, text.slice(0, 300));
        assert.ok(text.includes(setting), `the error page does not name ${setting}: ${text.slice(0, 400)}`);
        const res = await callApi(`${s.gw}/api/x`, { token: await mint(s.idp) });
        assert.equal(res.status, 500);
        assert.deepEqual(s.origin.requests(), []);
      } finally {
        await s.close();
      }
    });
  }

  test('a route table without bearer routes needs no audience', { ...T, timeout: 30_000 }, async () => {
    const s = await startStack({ resource: false, vars: { ROUTES: '[{"prefix":"/","auth":"session"},{"prefix":"/pub","auth":"public"}]' } });
    try {
      assert.equal((await fetch(`${s.gw}/auth/health`)).status, 200);
      assert.equal((await callApi(`${s.gw}/pub/x`)).status, 200);
    } finally {
      await s.close();
    }
  });
});
