// A small hand-written identity provider that looks like Microsoft Entra ID from the gateway's side, for
// the Entra end-to-end tests: tenant paths (`/{tenant}/v2.0/...`, v1 `/{tenant}/oauth2/...`), the
// `{tenantid}` issuer template for `common`/`organizations`, v1 issuers `https://sts.windows.net/{tid}/`,
// RS256 keys with `kid` = `x5t`, `x5c` and an `issuer` member, ID tokens and `typ: JWT` access tokens with
// `tid`, `oid`, `scp`, `roles`, `ver`, `idtyp`, group overage, `expires_in` as a string (v1), consent errors
// and the admin-consent endpoint. The sign-in page is skipped: the authorize endpoint signs in whoever the
// test chose with setUser(). It also grants app tokens (client credentials at `/{tenant id}/oauth2/...token`,
// `roles: ['GroupMember.Read.All']`) and plays Microsoft Graph at `graphBase` (another origin of the same
// server): `GET /v1.0/{users|servicePrincipals}/{oid}/transitiveMemberOf`, paged with `@odata.nextLink`,
// answered only for an app token whose signature, audience (`graphBase`) and role check out.
//
//   const entra = await startEntra({ clientId, clientSecret, redirectUris });
//   entra.base, entra.setUser({ tid, oid, ... }), entra.requireConsent('once' | 'always' | null),
//   entra.mintAccessToken({ ver: '1.0', ... }), entra.mintGraphToken(), entra.authorizeRequests(),
//   entra.tokenRequests(), entra.setAdminConsent('grant' | 'deny'), await entra.close()
//   entra.graphBase, entra.setMemberships(oid, [groupIds]), entra.setGraphFailure(403 | null), entra.graphRequests()
//   entra.lastSid()  // each sign-in gets a session id (`sid` in its ID token), as Entra's do
//
//   const s = await startEntraStack({ routes, vars });  // the lookalike, an origin and the Worker with the preset

import crypto from 'node:crypto';
import http from 'node:http';
import { SignJWT, exportJWK, generateKeyPair, jwtVerify } from 'jose';
import { Browser } from './browser.mjs';
import { startOrigin } from './origin.mjs';
import { describeHops } from './stack.mjs';
import { freePort, startWorker } from './worker.mjs';

export const HOME_TENANT = '72f988bf-86f1-41af-91ab-2d7cd011db47';
export const PARTNER_TENANT = '5f1c7a2e-3b4d-4c5e-8f60-718293a4b5c6';
export const GRAPH_APP_ID = '00000003-0000-0000-c000-000000000000';
const MULTI = new Set(['common', 'organizations']);
const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
/** Group ids per Graph page (Graph's own maximum is 999; small, so paging is exercised). */
const GRAPH_PAGE_SIZE = 2;
/** The application permission the gateway's app token must carry for membership reads. */
export const GRAPH_PERMISSION = 'GroupMember.Read.All';

/** The default signed-in user: home tenant, one group, one app role. */
export function defaultUser(overrides = {}) {
  return {
    tid: HOME_TENANT,
    oid: '00000000-0000-0000-66f3-3332eca7ea81',
    sub: 'AAAAAAAAAAAAAAAAAAAAAIkzqFVrSaSaFHy782bbtaQ',
    name: 'Abe Lincoln',
    preferred_username: 'abe@contoso.example',
    email: 'abe@contoso.example',
    roles: ['Orders.Admin'],
    groups: ['1ba1e0b4-7f2f-4b1c-9f55-7f5d1b0f1a2c'],
    ...overrides,
  };
}

/**
 * @param {object} opts
 * @param {string} opts.clientId
 * @param {string} opts.clientSecret
 * @param {string[]} opts.redirectUris the gateway's callback (and admin-consent) URIs, matched exactly
 * @param {string} [opts.host] default localhost (the gateway is on 127.0.0.1: cross-site, as with Microsoft)
 * @param {string} [opts.apiAudience] `aud` of v2 access tokens for the API scopes (v1 uses `resource`)
 */
export async function startEntra({ clientId, clientSecret, redirectUris, host = 'localhost', apiAudience = 'api://orders' }) {
  const { publicKey, privateKey } = await generateKeyPair('RS256', { modulusLength: 2048 });
  const kid = crypto.randomBytes(20).toString('base64url'); // Entra's kid is the certificate's x5t
  const jwk = { ...(await exportJWK(publicKey)), kid, x5t: kid, use: 'sig', kty: 'RSA' };
  // Never read by the gateway (it chooses keys by kid); shaped like Entra's single-certificate chain.
  jwk.x5c = [crypto.randomBytes(600).toString('base64')];
  const state = {
    user: defaultUser(),
    consent: null,
    consentGiven: false,
    adminConsent: 'grant',
    codes: new Map(),
    refreshTokens: new Map(),
    authorize: [],
    token: [],
    memberships: new Map(),
    sids: [],
    graphFailure: null,
    graph: [],
  };
  let base;
  let graphBase;

  const issuerFor = (ver, tid) => (ver === '1.0' ? `https://sts.windows.net/${tid}/` : `${base}/${tid}/v2.0`);
  const templateIssuer = (ver, tenant) => (MULTI.has(tenant) ? issuerFor(ver, '{tenantid}') : issuerFor(ver, tenant));

  async function sign(header, claims) {
    return new SignJWT(claims).setProtectedHeader({ alg: 'RS256', typ: 'JWT', kid, ...header }).sign(privateKey);
  }

  /** An access token as Entra mints it for a custom API (`typ: JWT`; v1 or v2 by `ver`). */
  async function mintAccessToken(claims = {}, header = {}) {
    const now = Math.floor(Date.now() / 1000);
    const ver = claims.ver ?? '2.0';
    const tid = claims.tid ?? HOME_TENANT;
    return sign(header, {
      aud: apiAudience,
      iss: issuerFor(ver, tid),
      iat: now - 5,
      nbf: now - 5,
      exp: now + 3600,
      ver,
      tid,
      oid: state.user.oid,
      sub: state.user.sub,
      ...(ver === '1.0' ? { appid: clientId } : { azp: clientId }),
      ...claims,
    });
  }

  /** A Microsoft Graph access token: a `nonce` in the JOSE header, audience Graph. */
  async function mintGraphToken() {
    return mintAccessToken(
      { aud: GRAPH_APP_ID, ver: '1.0', scp: 'openid profile User.Read email', idtyp: 'user' },
      { nonce: crypto.randomBytes(24).toString('base64url') },
    );
  }

  async function idToken(ver, nonce, user, sid) {
    const now = Math.floor(Date.now() / 1000);
    const { groups, overage, ...rest } = user;
    const groupClaims = overage === 'claim_names'
      ? { _claim_names: { groups: 'src1' }, _claim_sources: { src1: { endpoint: `https://graph.microsoft.com/v1.0/users/${user.oid}/getMemberObjects` } } }
      : overage === 'hasgroups' ? { hasgroups: true } : { groups };
    return sign({}, {
      ver, iss: issuerFor(ver, user.tid), aud: clientId, iat: now, nbf: now, exp: now + 3600, nonce, sid, ...rest, ...groupClaims,
    });
  }

  function discovery(tenant, ver) {
    const v2 = ver === '2.0';
    const root = `${base}/${tenant}`;
    return {
      issuer: templateIssuer(ver, tenant),
      authorization_endpoint: v2 ? `${root}/oauth2/v2.0/authorize` : `${root}/oauth2/authorize`,
      token_endpoint: v2 ? `${root}/oauth2/v2.0/token` : `${root}/oauth2/token`,
      jwks_uri: v2 ? `${root}/discovery/v2.0/keys` : `${root}/discovery/keys`,
      end_session_endpoint: v2 ? `${root}/oauth2/v2.0/logout` : `${root}/oauth2/logout`,
      response_types_supported: ['code', 'id_token', 'code id_token', 'id_token token'],
      subject_types_supported: ['pairwise'],
      id_token_signing_alg_values_supported: ['RS256'],
      token_endpoint_auth_methods_supported: ['client_secret_post', 'private_key_jwt', 'client_secret_basic'],
      scopes_supported: v2 ? ['openid', 'profile', 'email', 'offline_access'] : ['openid'],
      frontchannel_logout_supported: true,
      http_logout_supported: true,
      ...(v2 ? { tenant_region_scope: 'EU' } : { microsoft_multi_refresh_token: true }),
      cloud_instance_name: 'microsoftonline.com',
      msgraph_host: 'graph.microsoft.com',
    };
  }

  function redirect(res, target, params) {
    const u = new URL(target);
    for (const [k, v] of Object.entries(params)) if (v !== undefined) u.searchParams.set(k, v);
    res.writeHead(302, { location: u.href });
    res.end();
  }

  function json(res, status, body) {
    res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' });
    res.end(JSON.stringify(body));
  }

  function authorize(res, tenant, ver, q) {
    state.authorize.push({ tenant, ver, ...Object.fromEntries(q) });
    const redirectUri = q.get('redirect_uri');
    if (q.get('client_id') !== clientId || !redirectUris.includes(redirectUri)) {
      return json(res, 400, { error: 'invalid_request', error_description: 'AADSTS50011: redirect URI mismatch' });
    }
    if (state.consent && (state.consent === 'always' || (q.get('prompt') !== 'consent' && !state.consentGiven))) {
      return redirect(res, redirectUri, {
        error: 'consent_required',
        error_description: 'AADSTS65001: The user or administrator has not consented to use the application.',
        state: q.get('state'),
      });
    }
    if (q.get('prompt') === 'consent') state.consentGiven = true;
    if (!MULTI.has(tenant) && tenant !== state.user.tid && GUID.test(tenant)) {
      return redirect(res, redirectUri, { error: 'access_denied', error_description: 'AADSTS50020', state: q.get('state') });
    }
    const code = crypto.randomBytes(24).toString('base64url');
    // Entra's session id, the `sid` of the ID token and of its front-channel logout request.
    const sid = crypto.randomUUID();
    state.sids.push(sid);
    state.codes.set(code, {
      sid,
      ver, nonce: q.get('nonce'), challenge: q.get('code_challenge'), redirectUri, user: { ...state.user },
      scope: q.get('scope') ?? '', resource: q.get('resource') ?? undefined,
    });
    return redirect(res, redirectUri, { code, state: q.get('state'), session_state: crypto.randomUUID() });
  }

  function clientAuthenticated(req, form) {
    const basic = /^Basic (.+)$/i.exec(req.headers.authorization ?? '');
    if (basic) {
      const [id, secret] = Buffer.from(basic[1], 'base64').toString().split(':').map(decodeURIComponent);
      return id === clientId && secret === clientSecret;
    }
    return form.get('client_id') === clientId && form.get('client_secret') === clientSecret;
  }

  async function tokens(ver, grant) {
    const apiScopes = grant.scope.split(' ').filter((s) => s.includes('/')).map((s) => s.split('/').pop());
    const accessToken = await mintAccessToken({
      ver,
      tid: grant.user.tid,
      oid: grant.user.oid,
      sub: grant.user.sub,
      ...(ver === '1.0' ? { aud: grant.resource ?? apiAudience, scp: 'user_impersonation' } : { scp: apiScopes.join(' ') || 'User.Read' }),
    });
    const refresh = crypto.randomBytes(32).toString('base64url');
    state.refreshTokens.set(refresh, grant);
    return {
      token_type: 'Bearer',
      scope: ver === '1.0' ? 'user_impersonation' : grant.scope,
      // v1 writes its numbers as strings.
      expires_in: ver === '1.0' ? '3599' : 3599,
      ext_expires_in: ver === '1.0' ? '3599' : 3599,
      ...(ver === '1.0' ? { expires_on: String(Math.floor(Date.now() / 1000) + 3599), resource: grant.resource } : {}),
      access_token: accessToken,
      refresh_token: refresh,
      id_token: await idToken(ver, grant.nonce, grant.user, grant.sid),
    };
  }

  /** An app-only token for the scope's (v2 `<resource>/.default`) or resource's (v1) audience. */
  async function appToken(ver, form, tenant) {
    const aud = ver === '1.0' ? form.get('resource') : (form.get('scope') ?? '').replace(/\/\.default$/, '');
    const accessToken = await mintAccessToken({
      ver, tid: tenant, aud, oid: 'a0a0a0a0-0000-4000-8000-0000000000aa', sub: 'a0a0a0a0-0000-4000-8000-0000000000aa',
      idtyp: 'app', roles: [GRAPH_PERMISSION],
    });
    return { token_type: 'Bearer', expires_in: ver === '1.0' ? '3599' : 3599, access_token: accessToken };
  }

  /** Microsoft Graph's transitiveMemberOf, for an app token meant for it. */
  async function graph(req, res, u) {
    const [, version, collection, oid, relation] = u.pathname.split('/');
    state.graph.push({ path: u.pathname, query: Object.fromEntries(u.searchParams), authorization: req.headers.authorization });
    const bearer = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1];
    let claims;
    try {
      ({ payload: claims } = await jwtVerify(bearer ?? '', publicKey, { audience: graphBase }));
    } catch (err) {
      return json(res, 401, { error: { code: 'InvalidAuthenticationToken', message: String(err) } });
    }
    if (!claims.roles?.includes(GRAPH_PERMISSION)) {
      return json(res, 403, { error: { code: 'Authorization_RequestDenied', message: 'Insufficient privileges' } });
    }
    if (state.graphFailure) return json(res, state.graphFailure, { error: { code: 'ServiceUnavailable' } });
    if (version !== 'v1.0' || !['users', 'servicePrincipals'].includes(collection) || relation !== 'transitiveMemberOf') {
      return json(res, 400, { error: { code: 'BadRequest' } });
    }
    const groups = state.memberships.get(oid) ?? [];
    const skip = Number(u.searchParams.get('$skiptoken') ?? 0);
    const value = groups.slice(skip, skip + GRAPH_PAGE_SIZE).map((id) => ({ '@odata.type': '#microsoft.graph.group', id }));
    // Directory roles come back too (no OData cast): the gateway must drop them.
    if (skip === 0) value.push({ '@odata.type': '#microsoft.graph.directoryRole', id: 'f2ef992c-3afb-46b9-b7cf-a126ee74c451' });
    const body = { '@odata.context': `${graphBase}/v1.0/$metadata#directoryObjects(id)`, value };
    if (skip + GRAPH_PAGE_SIZE < groups.length) {
      const next = new URL(u.pathname, graphBase);
      next.searchParams.set('$select', 'id');
      next.searchParams.set('$skiptoken', String(skip + GRAPH_PAGE_SIZE));
      body['@odata.nextLink'] = next.href;
    }
    return json(res, 200, body);
  }

  async function token(req, res, ver, body, tenant) {
    const form = new URLSearchParams(body);
    state.token.push({ ver, params: Object.fromEntries(form), authorization: req.headers.authorization });
    if (!clientAuthenticated(req, form)) return json(res, 401, { error: 'invalid_client', error_description: 'AADSTS7000215' });
    if (form.get('grant_type') === 'authorization_code') {
      const grant = state.codes.get(form.get('code'));
      state.codes.delete(form.get('code'));
      const verifier = form.get('code_verifier') ?? '';
      const challenge = crypto.createHash('sha256').update(verifier).digest('base64url');
      if (!grant || grant.redirectUri !== form.get('redirect_uri') || grant.challenge !== challenge) {
        return json(res, 400, { error: 'invalid_grant', error_description: 'AADSTS70008' });
      }
      return json(res, 200, await tokens(ver, grant));
    }
    if (form.get('grant_type') === 'client_credentials') {
      // Entra issues app tokens only from a tenant's own endpoint, never /common or /organizations.
      if (!GUID.test(tenant)) return json(res, 400, { error: 'invalid_request', error_description: 'AADSTS900023' });
      return json(res, 200, await appToken(ver, form, tenant));
    }
    if (form.get('grant_type') === 'refresh_token') {
      const grant = state.refreshTokens.get(form.get('refresh_token'));
      if (!grant) return json(res, 400, { error: 'invalid_grant', error_description: 'AADSTS700082' });
      state.refreshTokens.delete(form.get('refresh_token'));
      return json(res, 200, await tokens(ver, grant));
    }
    return json(res, 400, { error: 'unsupported_grant_type' });
  }

  function adminConsent(res, tenant, q) {
    state.authorize.push({ tenant, adminconsent: true, ...Object.fromEntries(q) });
    const redirectUri = q.get('redirect_uri');
    if (q.get('client_id') !== clientId || !redirectUris.includes(redirectUri)) {
      return json(res, 400, { error: 'invalid_request', error_description: 'AADSTS50011' });
    }
    if (state.adminConsent === 'deny') {
      return redirect(res, redirectUri, {
        error: 'access_denied', error_description: 'AADSTS65004: User declined to consent.', state: q.get('state'),
      });
    }
    return redirect(res, redirectUri, {
      admin_consent: 'True', tenant: state.user.tid, scope: q.get('scope') ?? '', state: q.get('state'),
    });
  }

  const server = http.createServer(async (req, res) => {
    const chunks = [];
    for await (const c of req) chunks.push(c);
    const body = Buffer.concat(chunks).toString('utf8');
    const u = new URL(req.url, base);
    const [, tenant, ...rest] = u.pathname.split('/');
    const path = `/${rest.join('/')}`;
    try {
      if (tenant === 'v1.0') return await graph(req, res, u);
      switch (path) {
        case '/v2.0/.well-known/openid-configuration': return json(res, 200, discovery(tenant, '2.0'));
        case '/.well-known/openid-configuration': return json(res, 200, discovery(tenant, '1.0'));
        case '/discovery/v2.0/keys':
        case '/discovery/keys':
          return json(res, 200, { keys: [{ ...jwk, issuer: templateIssuer(path.includes('v2.0') ? '2.0' : '1.0', tenant) }] });
        case '/oauth2/v2.0/authorize': return authorize(res, tenant, '2.0', u.searchParams);
        case '/oauth2/authorize': return authorize(res, tenant, '1.0', u.searchParams);
        case '/oauth2/v2.0/token': return await token(req, res, '2.0', body, tenant);
        case '/oauth2/token': return await token(req, res, '1.0', body, tenant);
        case '/v2.0/adminconsent': return adminConsent(res, tenant, u.searchParams);
        default: return json(res, 404, { error: 'not_found' });
      }
    } catch (err) {
      return json(res, 500, { error: 'server_error', error_description: String(err) });
    }
  });
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const { port } = server.address();
  base = `http://${host}:${port}`;
  graphBase = `http://127.0.0.1:${port}`;
  // `localhost` may resolve to ::1 first: answer there too when the machine has IPv6 loopback.
  let server6 = null;
  if (host === 'localhost') {
    server6 = http.createServer((req, res) => server.emit('request', req, res));
    await new Promise((resolve) => {
      server6.once('error', () => { server6 = null; resolve(); });
      server6.listen(port, '::1', resolve);
    });
  }

  return {
    get base() { return base; },
    clientId,
    /** The user the next sign-in is for (merged over defaultUser()); overage: 'claim_names' | 'hasgroups'. */
    setUser(overrides) { state.user = defaultUser(overrides); },
    /** 'once': consent_required until a request with prompt=consent; 'always': every time; null: never. */
    requireConsent(mode) { state.consent = mode; state.consentGiven = false; },
    setAdminConsent(answer) { state.adminConsent = answer; },
    mintAccessToken,
    mintGraphToken,
    issuerFor,
    authorizeRequests() { return state.authorize.map((a) => ({ ...a })); },
    /** Microsoft Graph's origin here (not the authority's): what ENTRA_GRAPH_URL names. */
    get graphBase() { return graphBase; },
    /** The groups Graph lists for an object id (user or service principal). */
    setMemberships(oid, groups) { state.memberships.set(oid, [...groups]); },
    /** Answer every authorised Graph request with this HTTP status (null: answer normally). */
    setGraphFailure(status) { state.graphFailure = status; },
    graphRequests() { return state.graph.map((g) => ({ ...g })); },
    /** The `sid` of the latest sign-in (what Entra's front-channel logout request carries). */
    lastSid() { return state.sids.at(-1); },
    tokenRequests() { return state.token.map((t) => ({ ...t })); },
    async close() {
      for (const srv of [server, server6].filter(Boolean)) {
        srv.closeAllConnections?.();
        await new Promise((resolve) => srv.close(() => resolve()));
      }
    },
  };
}

/**
 * Signs the lookalike's current user in at `/home` in a fresh Browser, clears the origin's record, then opens `path`:
 * what a route's group check does to a signed-in user. Returns the browser and `path`'s navigation.
 */
export async function signInThenVisit(s, path) {
  const b = new Browser();
  const { final, hops } = await b.navigate(`${s.gw}/home`);
  if (final.status !== 200) throw new Error(`sign-in at /home answered ${final.status}:\n${describeHops(hops)}`);
  s.origin.reset();
  return { b, visit: await b.navigate(`${s.gw}${path}`) };
}

/**
 * The lookalike, an origin and the built Worker with the Entra preset pointing at it (multi-tenant
 * `organizations`, the home tenant allowed); `vars` (or `vars(entra)`, for settings naming the lookalike)
 * override the defaults (undefined removes one).
 */
export async function startEntraStack({ routes, vars = {}, clientId = '6731de76-14a6-49ae-97bc-6eba6914391e' }) {
  const port = await freePort();
  const gw = `http://127.0.0.1:${port}`;
  const clientSecret = `secret-${crypto.randomBytes(12).toString('hex')}`;
  const origin = await startOrigin();
  const entra = await startEntra({ clientId, clientSecret, redirectUris: [`${gw}/auth/callback`, `${gw}/auth/admin-consent`] });
  const allVars = {
    ENTRA_TENANT: 'organizations',
    ENTRA_ALLOWED_TENANTS: HOME_TENANT,
    ENTRA_AUTHORITY: entra.base,
    OIDC_CLIENT_ID: clientId,
    OIDC_SCOPES: 'openid profile email api://orders/Orders.Read',
    PUBLIC_URL: gw,
    ORIGIN_URL: origin.url,
    API_AUDIENCES: 'api://orders',
    ROUTES: JSON.stringify(routes),
    ...(typeof vars === 'function' ? vars(entra) : vars),
  };
  for (const [k, v] of Object.entries(allVars)) if (v === undefined) delete allVars[k];
  const worker = await startWorker({
    port,
    vars: allVars,
    secrets: { OIDC_CLIENT_SECRET: clientSecret, SESSION_SECRET: crypto.randomBytes(32).toString('base64url') },
  });
  return {
    gw, entra, origin, worker,
    async close() { await Promise.allSettled([worker.close(), entra.close(), origin.close()]); },
  };
}
