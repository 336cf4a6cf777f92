// A real OpenID provider (oidc-provider) on loopback, configured like Azure AD where it matters,
// with test controls: rewrite the /token answer, rotate keys, inject faults, wipe state.
//
//   const idp = await startIdp({ clientSecret, redirectUris: [`${gw}/auth/callback`] });
//   idp.issuer, idp.url, idp.clientId, idp.clientSecret, idp.keys
//   idp.setTokenHook(async (body, t, info) => { body.id_token = await t.resign(body.id_token, ({ payload }) => { payload.nonce = 'x'; }); });
//   idp.counts() -> { authorization_code: 1, refresh_token: 0, ... }
//   idp.rotateKeys({ graceful: true }); idp.setFault({ jwks: '500' }); idp.revokeAllGrants(); await idp.close();
//   idp.setAccessTokenTtl(1); idp.issuedTokens(); idp.revocations();
//   await idp.backchannelLogout({ sub, sid }); idp.backchannelLogouts(); idp.outgoing()
//
// Everything runs in the test's own Node process.

import http from 'node:http';
import crypto from 'node:crypto';
import Provider, { errors as oidcErrors } from 'oidc-provider';
import * as jose from 'jose';
import { track, untrack } from './leftovers.mjs';

export const DEFAULT_RESOURCE = 'https://api.example.test';
export const TOKEN_EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange';
export const JWT_BEARER = 'urn:ietf:params:oauth:grant-type:jwt-bearer';
export const TENANT_ID = '7d3e1b2a-4c5f-4e6a-9b8c-0d1e2f3a4b5c';

export const USERS = {
  alice: {
    password: 'alice',
    claims: {
      sub: 'alice',
      email: 'alice@example.com',
      email_verified: true,
      name: 'Alice Liddell',
      given_name: 'Alice',
      family_name: 'Liddell',
      preferred_username: 'alice',
    },
  },
  bob: {
    password: 'bob',
    claims: {
      sub: 'bob',
      email: 'bob@example.com',
      email_verified: true,
      name: 'Bob Builder',
      given_name: 'Bob',
      family_name: 'Builder',
      preferred_username: 'bob',
    },
  },
};

const debug = () => Boolean(process.env.DEBUG);
const log = (...args) => { if (debug()) console.error('[idp]', ...args); };

// ---------------------------------------------------------------------------------------------
// Storage: a Map with per-entry expiry. The built-in memory adapter is an LRU of 1000 entries and
// belongs to one Provider instance; this one outlives provider rebuilds (key rotation).

class TtlStore {
  #map = new Map();

  get(key) {
    const e = this.#map.get(key);
    if (!e) return undefined;
    if (e.exp !== undefined && e.exp <= Date.now()) {
      this.#map.delete(key);
      return undefined;
    }
    return e.value;
  }

  set(key, value, ttlSeconds) {
    const exp = typeof ttlSeconds === 'number' && ttlSeconds > 0 ? Date.now() + ttlSeconds * 1000 : undefined;
    this.#map.set(key, { value, exp });
  }

  delete(key) { this.#map.delete(key); }

  clear() { this.#map.clear(); }

  get size() { return this.#map.size; }
}

const GRANTABLE = new Set([
  'AccessToken', 'AuthorizationCode', 'RefreshToken', 'DeviceCode',
  'BackchannelAuthenticationRequest', 'ClientCredentials',
]);

function adapterFactory(store) {
  return class TtlAdapter {
    constructor(model) { this.model = model; }

    key(id) { return `${this.model}:${id}`; }

    async upsert(id, payload, expiresIn) {
      const key = this.key(id);
      store.set(key, structuredClone(payload), expiresIn);
      if (this.model === 'Session' && payload.uid) store.set(`sessionUid:${payload.uid}`, id, expiresIn);
      if (payload.userCode) store.set(`userCode:${payload.userCode}`, id, expiresIn);
      if (GRANTABLE.has(this.model) && payload.grantId) {
        const gk = `grant:${payload.grantId}`;
        const members = store.get(gk) ?? new Set();
        members.add(key);
        store.set(gk, members); // members may outlive their tokens; harmless
      }
    }

    async find(id) {
      const v = store.get(this.key(id));
      return v === undefined ? undefined : structuredClone(v);
    }

    async findByUid(uid) {
      const id = store.get(`sessionUid:${uid}`);
      return id === undefined ? undefined : this.find(id);
    }

    async findByUserCode(userCode) {
      const id = store.get(`userCode:${userCode}`);
      return id === undefined ? undefined : this.find(id);
    }

    async consume(id) {
      const key = this.key(id);
      const v = store.get(key);
      if (v) v.consumed = Math.floor(Date.now() / 1000);
    }

    async destroy(id) { store.delete(this.key(id)); }

    async revokeByGrantId(grantId) {
      const gk = `grant:${grantId}`;
      for (const key of store.get(gk) ?? []) store.delete(key);
      store.delete(gk);
    }
  };
}

// ---------------------------------------------------------------------------------------------
// Keys

let kidCounter = 0;
async function generateKey(alg) {
  const { privateKey } = await jose.generateKeyPair(alg, { extractable: true });
  const jwk = await jose.exportJWK(privateKey);
  kidCounter += 1;
  jwk.kid = `${alg.toLowerCase()}-${kidCounter}-${crypto.randomBytes(4).toString('hex')}`;
  jwk.alg = alg;
  jwk.use = 'sig';
  return jwk;
}

async function generateKeySet() {
  return [await generateKey('RS256'), await generateKey('ES256')];
}

function publicJwk(jwk) {
  const { d, p, q, dp, dq, qi, ...pub } = jwk;
  return pub;
}

const b64url = (v) => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url');

function decodeJwt(jwt) {
  const [h, p, s] = String(jwt).split('.');
  return {
    header: JSON.parse(Buffer.from(h, 'base64url').toString()),
    payload: JSON.parse(Buffer.from(p, 'base64url').toString()),
    signature: s,
  };
}

// ---------------------------------------------------------------------------------------------
// HTML pages

const esc = (s) => String(s ?? '').replace(/[&<>"']/g, (c) => ({
  '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;',
}[c]));

function page(title, body) {
  return `<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>${esc(title)}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>body{font-family:system-ui,sans-serif;max-width:26rem;margin:3rem auto;padding:0 1rem}
label,input,button{display:block;width:100%;margin:.3rem 0}input{padding:.4rem}button{padding:.5rem}
.error{color:#b00020}</style></head>
<body><h1>${esc(title)}</h1>
${body}
</body></html>`;
}

/** How a token or revocation request authenticated the client. */
function clientAuthOf(authz, params) {
  if (authz) return authz.split(' ')[0].toLowerCase();
  if (params.client_assertion) return 'private_key_jwt';
  return params.client_secret ? 'post' : 'none';
}

function loginPage(uid, { error, username, clientId } = {}) {
  return page('Sign in', `
<p>Sign in to continue to <strong>${esc(clientId)}</strong>.</p>
${error ? `<p class="error" role="alert">${esc(error)}</p>` : ''}
<form method="post" action="/interaction/${esc(uid)}/login" autocomplete="off">
  <label for="username">Username</label>
  <input id="username" name="username" required autofocus value="${esc(username)}">
  <label for="password">Password</label>
  <input id="password" name="password" type="password" required>
  <button type="submit">Sign in</button>
</form>
<form method="post" action="/interaction/${esc(uid)}/abort"><button type="submit">Cancel</button></form>`);
}

function consentPage(uid, { clientId, scopes, claims, resources }) {
  const items = [
    ...scopes.map((s) => `<li>scope <code>${esc(s)}</code></li>`),
    ...claims.map((c) => `<li>claim <code>${esc(c)}</code></li>`),
    ...resources.map(([r, s]) => `<li>API <code>${esc(r)}</code>: ${esc(s.join(' '))}</li>`),
  ];
  return page('Allow access?', `
<p><strong>${esc(clientId)}</strong> asks for:</p>
<ul>${items.join('') || '<li>nothing new</li>'}</ul>
<form method="post" action="/interaction/${esc(uid)}/confirm"><button type="submit">Allow</button></form>
<form method="post" action="/interaction/${esc(uid)}/abort"><button type="submit">Deny</button></form>`);
}

async function readForm(req) {
  const chunks = [];
  let size = 0;
  for await (const c of req) {
    size += c.length;
    if (size > 64 * 1024) throw new Error('form too large');
    chunks.push(c);
  }
  return Object.fromEntries(new URLSearchParams(Buffer.concat(chunks).toString()));
}

// ---------------------------------------------------------------------------------------------

const PROVIDER_EVENTS_WITH_ERRORS = [
  'authorization.error', 'backchannel.error', 'jwks.error', 'discovery.error', 'end_session.error',
  'grant.error', 'introspection.error', 'revocation.error', 'userinfo.error', 'pushed_authorization_request.error',
  'server_error',
];

/**
 * @param {object} [opts]
 * @param {number} [opts.port] fixed port (default: a free one)
 * @param {string} [opts.host] host name used in the issuer: '127.0.0.1' (default) or 'localhost'
 * @param {string} [opts.clientId] default 'edgeguard'
 * @param {string} [opts.clientSecret] default a random one
 * @param {'client_secret_basic'|'client_secret_post'|'private_key_jwt'} [opts.tokenEndpointAuthMethod] registered method
 *   (oidc-provider accepts either secret method at the token endpoint; tokenRequests() records which one was used:
 *   'basic', 'post', 'private_key_jwt' or 'none'). private_key_jwt accepts only assertions signed by a key in clientJwks.
 * @param {object[]} [opts.clientJwks] the client's public JWKs (its registered `jwks`), for private_key_jwt
 * @param {string[]} [opts.redirectUris]
 * @param {string[]} [opts.postLogoutRedirectUris]
 * @param {string} [opts.idTokenAlg] 'RS256' (default) or 'ES256'
 * @param {string} [opts.accessTokenAlg] alg of the JWT access tokens for the resource, default 'RS256'
 * @param {string} [opts.resource] resource indicator of the API, default https://api.example.test
 * @param {string} [opts.resourceScope] scopes the API knows, default 'openid profile email offline_access api.read'
 * @param {boolean} [opts.useGrantedResource] token request without `resource` still gets the JWT for the
 *   resource granted at the authorization step (default false: the token request must carry it)
 * @param {object} [opts.ttl] seconds: AccessToken, IdToken, RefreshToken, Session, Grant, Interaction, AuthorizationCode
 * @param {boolean} [opts.strictRefreshTokens] oidc-provider's own policy (refresh token only with offline_access
 *   and prompt=consent) instead of Azure AD's (always, when the client may use refresh_token)
 * @param {number} [opts.clockTolerance] seconds, default 0
 * @param {object} [opts.users] extra/replacement demo users, shaped like USERS
 * @param {object[]} [opts.extraClients] more client metadata objects
 * @param {string} [opts.backchannelLogoutUri] the client's backchannel_logout_uri (OpenID Connect Back-Channel
 *   Logout 1.0); ID tokens then carry `sid`, and ending the IdP session POSTs a logout token there
 * @param {boolean} [opts.backchannelLogoutSessionRequired] default true (the logout token carries `sid`)
 * @param {boolean} [opts.tokenExchange] accept RFC 8693 token exchange and Entra-style on-behalf-of (JWT bearer with
 *   requested_token_use=on_behalf_of) at the token endpoint, for access tokens this provider issued
 */
export async function startIdp(opts = {}) {
  const host = opts.host ?? '127.0.0.1';
  const clientId = opts.clientId ?? 'edgeguard';
  const clientSecret = opts.clientSecret ?? crypto.randomBytes(24).toString('base64url');
  const resource = opts.resource ?? DEFAULT_RESOURCE;
  const resourceScope = opts.resourceScope ?? 'openid profile email offline_access api.read';
  const users = { ...USERS, ...(opts.users ?? {}) };
  const ttlOpts = opts.ttl ?? {};
  // Changeable at run time (setAccessTokenTtl): applies to tokens issued afterwards.
  let accessTokenTTL = ttlOpts.AccessToken ?? 600;

  const store = new TtlStore();
  const Adapter = adapterFactory(store);
  const cookieKeys = [crypto.randomBytes(32).toString('base64url')];
  let keys = await generateKeySet(); // private JWKs, newest first
  const counts = {};
  const tokenRequests = [];
  const errorLog = [];
  const issued = [];
  const revocationLog = [];
  const backchannelLog = [];
  const outgoingLog = [];
  let tokenHook = null;
  let discoveryHook = null;
  const faults = { discovery: null, jwks: null, token: null, revocation: null };
  const hanging = new Set();

  // The HTTP server comes first: the issuer needs the port.
  let handler = (req, res) => { res.statusCode = 503; res.end(); };
  const server = http.createServer((req, res) => {
    const fault = faultFor(req);
    if (fault) return applyFault(fault, req, res);
    return handler(req, res);
  });
  server.keepAliveTimeout = 1000;
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, '127.0.0.1', resolve);
  });
  const { port } = server.address();
  const issuer = `http://${host}:${port}`;
  // `localhost` may resolve to ::1 first: answer there too when the machine has IPv6 loopback.
  let server6 = null;
  if (host === 'localhost') {
    server6 = http.createServer((req, res) => server.emit('request', req, res));
    server6.keepAliveTimeout = 1000;
    await new Promise((resolve) => {
      server6.once('error', () => { server6 = null; resolve(); });
      server6.listen(port, '::1', resolve);
    });
  }

  function faultFor(req) {
    const path = new URL(req.url, issuer).pathname;
    if (path === '/.well-known/openid-configuration') return faults.discovery;
    if (path === '/jwks') return faults.jwks;
    if (path === '/token') return faults.token;
    if (path === '/token/revocation') return faults.revocation;
    return null;
  }

  function applyFault(fault, req, res) {
    req.resume();
    switch (fault) {
      case 'down':
        req.socket.destroy();
        return undefined;
      case '500':
        res.writeHead(500, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ error: 'server_error', error_description: 'injected fault' }));
        return undefined;
      case 'garbage':
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end('<html>this is not json {{{');
        return undefined;
      // Refusals that say nothing about the grant itself (RFC 6749 §5.2 / RFC 6585): a refresh must survive them.
      case '429':
        res.writeHead(429, { 'content-type': 'application/json', 'retry-after': '30' });
        res.end(JSON.stringify({ error: 'temporarily_unavailable', error_description: 'too many requests' }));
        return undefined;
      case 'temporarily_unavailable':
        res.writeHead(400, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ error: 'temporarily_unavailable', error_description: 'injected fault' }));
        return undefined;
      case 'invalid_client':
        res.writeHead(401, { 'content-type': 'application/json', 'www-authenticate': 'Basic realm="idp"' });
        res.end(JSON.stringify({ error: 'invalid_client', error_description: 'client authentication failed' }));
        return undefined;
      case 'empty-jwks':
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end('{"keys":[]}');
        return undefined;
      case 'hang':
        hanging.add(req.socket);
        req.socket.once('close', () => hanging.delete(req.socket));
        return undefined;
      default:
        throw new Error(`unknown fault ${fault}`);
    }
  }

  function findAccount(_ctx, id) {
    const user = users[id];
    if (!user) return undefined;
    return {
      accountId: id,
      async claims() { return { ...user.claims, sub: id }; },
    };
  }

  const oid = (sub) => {
    const h = crypto.createHash('sha256').update(`oid:${sub}`).digest('hex');
    return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-a${h.slice(17, 20)}-${h.slice(20, 32)}`;
  };

  function configuration() {
    const client = {
      client_id: clientId,
      client_secret: clientSecret,
      redirect_uris: opts.redirectUris?.length ? opts.redirectUris : ['http://127.0.0.1/auth/callback'],
      post_logout_redirect_uris: opts.postLogoutRedirectUris ?? [],
      grant_types: ['authorization_code', 'refresh_token', 'client_credentials',
        ...(opts.tokenExchange ? [TOKEN_EXCHANGE, JWT_BEARER] : [])],
      response_types: ['code'],
      token_endpoint_auth_method: opts.tokenEndpointAuthMethod ?? 'client_secret_basic',
      ...(opts.clientJwks ? { jwks: { keys: opts.clientJwks } } : {}),
      id_token_signed_response_alg: opts.idTokenAlg ?? 'RS256',
      ...(opts.backchannelLogoutUri ? {
        backchannel_logout_uri: opts.backchannelLogoutUri,
        backchannel_logout_session_required: opts.backchannelLogoutSessionRequired ?? true,
      } : {}),
    };
    const ttl = {
      AccessToken: () => accessTokenTTL,
      ClientCredentials: () => ttlOpts.ClientCredentials ?? accessTokenTTL,
      AuthorizationCode: ttlOpts.AuthorizationCode ?? 60,
      IdToken: ttlOpts.IdToken ?? 600,
      RefreshToken: ttlOpts.RefreshToken ?? 24 * 3600,
      Session: ttlOpts.Session ?? 24 * 3600,
      Grant: ttlOpts.Grant ?? 24 * 3600,
      Interaction: ttlOpts.Interaction ?? 600,
    };
    return {
      adapter: Adapter,
      clients: [client, ...(opts.extraClients ?? [])],
      jwks: { keys },
      findAccount,
      claims: {
        openid: ['sub'],
        email: ['email', 'email_verified'],
        profile: ['name', 'given_name', 'family_name', 'preferred_username'],
      },
      scopes: ['openid', 'profile', 'email', 'offline_access'],
      // Put the scope's claims in the ID token, as Azure AD does (no userinfo call needed).
      conformIdTokenClaims: false,
      clockTolerance: opts.clockTolerance ?? 0,
      cookies: {
        keys: cookieKeys,
        names: {
          session: 'idp_session',
          interaction: 'idp_interaction',
          resume: 'idp_interaction_resume',
        },
      },
      clientBasedCORS: () => false,
      pkce: { required: () => true },
      features: {
        devInteractions: { enabled: false },
        clientCredentials: { enabled: true },
        introspection: { enabled: true },
        revocation: {
          enabled: true,
          // A client may revoke only its own tokens (the default policy, without its start-up notice).
          allowedPolicy: (_ctx, client, token) => {
            if (token.clientId === client.clientId) return true;
            if (client.clientAuthMethod === 'none') return false;
            throw new oidcErrors.InvalidRequest('client is not authorized to revoke the presented token');
          },
        },
        rpInitiatedLogout: {
          enabled: true,
          logoutSource: async (ctx, form) => {
            // The provider's form holds the xsrf field; the buttons refer to it (form="op.logoutForm").
            ctx.body = page('Sign out?', `<p>Do you want to sign out of ${esc(ctx.host)}?</p>
${form}
<button autofocus type="submit" form="op.logoutForm" value="yes" name="logout">Yes, sign me out</button>
<button type="submit" form="op.logoutForm">No, stay signed in</button>`);
          },
          postLogoutSuccessSource: async (ctx) => {
            ctx.body = page('Signed out', '<p>You are signed out.</p>');
          },
        },
        backchannelLogout: { enabled: true },
        resourceIndicators: {
          enabled: true,
          defaultResource: (_ctx, _client, oneOf) => oneOf ?? undefined,
          useGrantedResource: () => Boolean(opts.useGrantedResource),
          getResourceServerInfo: (_ctx, indicator) => {
            if (indicator !== resource) throw new oidcErrors.InvalidTarget(`unknown resource ${indicator}`);
            return {
              scope: resourceScope,
              audience: resource,
              accessTokenTTL, // read per request: setAccessTokenTtl() applies at once
              accessTokenFormat: 'jwt',
              jwt: { sign: { alg: opts.accessTokenAlg ?? 'RS256' } },
            };
          },
        },
      },
      extraTokenClaims: (_ctx, token) => {
        if (token.kind !== 'AccessToken' && token.kind !== 'ClientCredentials') return undefined;
        const extra = { tid: TENANT_ID, scp: token.scope ?? '' };
        if (token.accountId) extra.oid = oid(token.accountId);
        return extra;
      },
      ...(opts.strictRefreshTokens ? {} : {
        issueRefreshToken: (_ctx, c) => c.grantTypeAllowed('refresh_token'),
        expiresWithSession: () => false,
      }),
      rotateRefreshToken: true,
      ttl,
      // oidc-provider refuses outgoing requests (back-channel logout) to loopback and private addresses;
      // this provider and its relying party both live on loopback.
      fetch: async (url, options) => {
        const { dispatcher, ...rest } = options;
        const entry = { url: String(url), method: rest.method ?? 'GET', body: rest.body ? String(rest.body) : undefined, at: Date.now() };
        outgoingLog.push(entry);
        try {
          const res = await globalThis.fetch(url, rest);
          entry.status = res.status;
          return res;
        } catch (err) {
          entry.error = String(err?.cause ?? err);
          throw err;
        }
      },
      renderError: (ctx, out) => {
        ctx.type = 'html';
        ctx.body = page('Sign-in error', Object.entries(out)
          .map(([k, v]) => `<p><strong>${esc(k)}</strong>: ${esc(v)}</p>`).join('\n'));
      },
    };
  }

  // RFC 8693 token exchange and Entra's on-behalf-of flow as custom grants. The subject token must be a JWT access
  // token this provider issued (checked with its own keys); the new token names the same user, is for the requested
  // audience, and records the exchanging client in `act` (RFC 8693 §4.1).
  function registerExchangeGrants(provider) {
    const exchange = async (ctx) => {
      const { params, client } = ctx.oidc;
      if (params.grant_type === JWT_BEARER && params.requested_token_use !== 'on_behalf_of') {
        throw new oidcErrors.InvalidRequest('requested_token_use must be on_behalf_of');
      }
      let claims;
      try {
        const jwks = jose.createLocalJWKSet({ keys: keys.map(publicJwk) });
        ({ payload: claims } = await jose.jwtVerify(params.subject_token ?? params.assertion, jwks, { issuer }));
      } catch (err) {
        throw new oidcErrors.InvalidGrant(`subject token rejected: ${err.code ?? err.message}`);
      }
      const audience = params.audience ?? params.resource ?? params.scope;
      if (!audience) throw new oidcErrors.InvalidTarget('name the audience, resource or scope');
      const now = tools.now();
      const payload = {
        iss: issuer, sub: claims.sub, aud: audience, client_id: client.clientId, act: { sub: client.clientId },
        ...(params.scope ? { scope: params.scope } : {}), iat: now, exp: now + accessTokenTTL, jti: crypto.randomUUID(),
      };
      ctx.body = {
        access_token: await tools.sign(payload, { header: { typ: 'at+jwt' }, alg: 'RS256' }),
        issued_token_type: 'urn:ietf:params:oauth:token-type:access_token',
        token_type: 'Bearer',
        expires_in: accessTokenTTL,
      };
    };
    provider.registerGrantType(TOKEN_EXCHANGE, exchange,
      ['subject_token', 'subject_token_type', 'requested_token_type', 'audience', 'scope']);
    provider.registerGrantType(JWT_BEARER, exchange, ['assertion', 'requested_token_use', 'scope', 'audience']);
  }

  function build() {
    const provider = new Provider(issuer, configuration());
    provider.proxy = false;
    if (opts.tokenExchange) registerExchangeGrants(provider);

    for (const ev of PROVIDER_EVENTS_WITH_ERRORS) {
      provider.on(ev, (ctx, err) => {
        const e = err ?? ctx; // server_error is (ctx, err)
        const entry = {
          event: ev,
          path: ctx?.path,
          error: e?.error ?? e?.name,
          error_description: e?.error_description ?? e?.message,
          error_detail: e?.error_detail,
        };
        errorLog.push(entry);
        log(ev, JSON.stringify(entry));
        if (ev === 'server_error' && debug()) console.error(e);
      });
    }
    provider.on('backchannel.success', (_ctx, client, accountId, sid) => {
      backchannelLog.push({ ok: true, clientId: client.clientId, sub: accountId, sid, at: Date.now() });
    });
    provider.on('backchannel.error', (_ctx, err, client, accountId, sid) => {
      backchannelLog.push({ ok: false, clientId: client?.clientId, sub: accountId, sid, error: String(err?.message ?? err), at: Date.now() });
    });

    // Discovery and token route post-processing: count successful grants, let a test rewrite answers.
    provider.use(async (ctx, next) => {
      await next();
      if (ctx.path === '/.well-known/openid-configuration' && discoveryHook && ctx.status === 200 && ctx.body) {
        const body = structuredClone(ctx.body);
        const out = await discoveryHook(body);
        ctx.body = out === undefined ? body : out;
        return;
      }
      if (ctx.path === '/token/revocation' && ctx.method === 'POST') {
        const params = { ...(ctx.oidc?.params ?? {}) };
        const authz = ctx.get('authorization');
        revocationLog.push({
          status: ctx.status,
          token: params.token,
          tokenTypeHint: params.token_type_hint,
          clientAuth: clientAuthOf(authz, params),
          error: ctx.body?.error,
          at: Date.now(),
        });
        return;
      }
      if (ctx.path !== '/token' || ctx.method !== 'POST') return;
      const params = { ...(ctx.oidc?.params ?? {}) };
      const grantType = params.grant_type;
      const authz = ctx.get('authorization');
      tokenRequests.push({
        grantType,
        status: ctx.status,
        params,
        clientAuth: clientAuthOf(authz, params),
        error: ctx.body?.error,
      });
      if (ctx.status !== 200 || !ctx.body || typeof ctx.body !== 'object' || !ctx.body.access_token) return;
      counts[grantType] = (counts[grantType] ?? 0) + 1;
      if (tokenHook) {
        const body = { ...ctx.body };
        const out = await tokenHook(body, tools, { grantType, params, ctx });
        ctx.body = out === undefined ? body : out;
      }
      const sent = ctx.body ?? {};
      issued.push({
        grantType,
        access_token: sent.access_token,
        refresh_token: sent.refresh_token,
        id_token: sent.id_token,
        expires_in: sent.expires_in,
        scope: sent.scope,
        at: Date.now(),
      });
    });

    // Our own login and consent pages.
    provider.use(async (ctx, next) => {
      const m = /^\/interaction\/([^/]+)(?:\/(login|confirm|abort))?$/.exec(ctx.path);
      if (!m) return next();
      const [, uid, action] = m;
      ctx.set('cache-control', 'no-store');
      let details;
      try {
        details = await provider.interactionDetails(ctx.req, ctx.res);
      } catch (err) {
        log('interaction lookup failed', err.message);
        ctx.status = 400;
        ctx.type = 'html';
        ctx.body = page('Sign-in error', `<p>${esc(err.message)}</p>`);
        return undefined;
      }
      if (details.uid !== uid) {
        ctx.status = 400;
        ctx.type = 'html';
        ctx.body = page('Sign-in error', '<p>interaction mismatch</p>');
        return undefined;
      }
      const { prompt, params } = details;

      if (!action && ctx.method === 'GET') {
        ctx.type = 'html';
        if (prompt.name === 'login') {
          ctx.body = loginPage(uid, { clientId: params.client_id });
        } else {
          const d = prompt.details ?? {};
          ctx.body = consentPage(uid, {
            clientId: params.client_id,
            scopes: d.missingOIDCScope ?? [],
            claims: d.missingOIDCClaims ?? [],
            resources: Object.entries(d.missingResourceScopes ?? {}),
          });
        }
        return undefined;
      }
      if (!action || ctx.method !== 'POST') {
        ctx.status = 405;
        return undefined;
      }

      let result;
      if (action === 'login') {
        const form = await readForm(ctx.req);
        const user = users[form.username];
        if (!user || typeof form.password !== 'string'
          || !crypto.timingSafeEqual(
            crypto.createHash('sha256').update(form.password).digest(),
            crypto.createHash('sha256').update(user.password).digest(),
          )) {
          ctx.status = 200;
          ctx.type = 'html';
          ctx.body = loginPage(uid, {
            clientId: params.client_id, username: form.username, error: 'Wrong username or password.',
          });
          return undefined;
        }
        result = { login: { accountId: form.username, amr: ['pwd'] } };
      } else if (action === 'confirm') {
        await readForm(ctx.req);
        const { grantId: existing, accountId } = details;
        const grant = existing
          ? await provider.Grant.find(existing)
          : new provider.Grant({ accountId: accountId ?? details.session?.accountId, clientId: params.client_id });
        const d = prompt.details ?? {};
        if (d.missingOIDCScope) grant.addOIDCScope(d.missingOIDCScope.join(' '));
        if (d.missingOIDCClaims) grant.addOIDCClaims(d.missingOIDCClaims);
        for (const [indicator, scopes] of Object.entries(d.missingResourceScopes ?? {})) {
          grant.addResourceScope(indicator, scopes.join(' '));
        }
        const grantId = await grant.save();
        result = { consent: { grantId } };
      } else {
        await readForm(ctx.req);
        result = { error: 'access_denied', error_description: 'End-User aborted interaction' };
      }
      const returnTo = await provider.interactionResult(ctx.req, ctx.res, result, { mergeWithLastSubmission: false });
      ctx.status = 303;
      ctx.redirect(returnTo);
      return undefined;
    });

    return provider;
  }

  let provider = build();
  handler = provider.callback();

  // ------------------------------------------------------------------ token hook tools
  const foreignKeys = {};
  async function keyFor(alg, keyOpt, kid) {
    if (keyOpt && typeof keyOpt === 'object') return keyOpt;
    if (keyOpt === 'foreign') {
      foreignKeys[alg] ??= await generateKey(alg);
      const k = { ...foreignKeys[alg] };
      k.kid = `foreign-${k.kid}`;
      return k;
    }
    const byKid = kid && keys.find((k) => k.kid === kid && k.alg === alg);
    return byKid ?? keys.find((k) => k.alg === alg);
  }

  const tools = {
    /** { header, payload, signature } of a compact JWS, without verifying it. */
    decode: decodeJwt,
    now: () => Math.floor(Date.now() / 1000),
    /**
     * Signs a payload. options: header (merged), alg (default RS256, or 'none'),
     * key: undefined = the provider's current key for alg | 'foreign' = a key not in the JWKS | a private JWK.
     */
    async sign(payload, { header = {}, alg, key } = {}) {
      const a = alg ?? header.alg ?? 'RS256';
      if (a === 'none') {
        const h = { ...header, alg: 'none' };
        delete h.kid;
        return `${b64url(h)}.${b64url(payload)}.`;
      }
      const jwk = await keyFor(a, key, header.kid);
      const h = { typ: 'JWT', ...header, alg: a, kid: jwk.kid };
      const k = await jose.importJWK(jwk, a);
      return new jose.CompactSign(new TextEncoder().encode(JSON.stringify(payload)))
        .setProtectedHeader(h).sign(k);
    },
    /**
     * Decodes a JWS, lets `mutate({ header, payload })` change it in place, signs it again
     * (same alg and kid unless changed, options as for sign()).
     */
    async resign(jwt, mutate = () => {}, options = {}) {
      const { header, payload } = decodeJwt(jwt);
      await mutate({ header, payload });
      return tools.sign(payload, { header, alg: options.alg ?? header.alg, key: options.key });
    },
    /** Same header and payload, signature bytes changed. */
    spoil(jwt) {
      const [h, p, s] = String(jwt).split('.');
      const sig = Buffer.from(s, 'base64url');
      sig[Math.floor(sig.length / 2)] ^= 0x5a;
      return `${h}.${p}.${sig.toString('base64url')}`;
    },
    /** Payload changed, original signature kept (so it no longer verifies). */
    tamper(jwt, mutate) {
      const { header, payload, signature } = decodeJwt(jwt);
      mutate({ header, payload });
      return `${b64url(header)}.${b64url(payload)}.${signature}`;
    },
  };

  // ------------------------------------------------------------------ controls
  const idp = {
    issuer,
    url: issuer,
    port,
    clientId,
    clientSecret,
    resource,
    users,
    /** The published private JWKs, newest first. */
    get keys() { return keys.map((k) => ({ ...k })); },
    get publicJwks() { return { keys: keys.map(publicJwk) }; },
    get provider() { return provider; },
    tools,
    /** fn(body, tools, { grantType, params, ctx }) may mutate body or return a new one; null removes it. */
    setTokenHook(fn) { tokenHook = fn ?? null; },
    /** fn(discoveryDocument) may mutate it or return a new one; null removes it. */
    setDiscoveryHook(fn) { discoveryHook = fn ?? null; },
    /** Successful token-endpoint grants by grant_type. */
    counts() { return { ...counts }; },
    /** Every token request seen: { grantType, status, params, clientAuth ('basic'|'post'|'none'), error }. */
    tokenRequests() { return tokenRequests.map((r) => ({ ...r, params: { ...r.params } })); },
    /** Errors the provider reported (with error_detail). */
    errors() { return errorLog.slice(); },
    /**
     * Every successful token answer as sent (after the token hook), oldest first:
     * { grantType, access_token, refresh_token, id_token, expires_in, scope, at }.
     */
    issuedTokens() { return issued.map((t) => ({ ...t })); },
    /** Every revocation request (POST /token/revocation): { status, token, tokenTypeHint, clientAuth, error, at }. */
    revocations() { return revocationLog.map((r) => ({ ...r })); },
    /** Back-channel logout deliveries the provider made: { ok, clientId, sub, sid, error?, at }. */
    backchannelLogouts() { return backchannelLog.map((r) => ({ ...r })); },
    /** Outgoing HTTP requests the provider made (back-channel logout): { url, method, body, status?, error?, at }. */
    outgoing() { return outgoingLog.map((r) => ({ ...r })); },
    /** Seconds of life for access tokens issued from now on (the resource's JWTs and opaque ones). */
    setAccessTokenTtl(seconds) { accessTokenTTL = seconds ?? ttlOpts.AccessToken ?? 600; },
    /**
     * Sends a back-channel logout token for (sub, sid) to the client's backchannel_logout_uri, as the provider
     * does when its session ends. Resolves when the RP answered 200/204; rejects otherwise (error.response).
     */
    async backchannelLogout({ sub, sid, clientId: cid = clientId }) {
      const client = await provider.Client.find(cid);
      if (!client?.backchannelLogoutUri) throw new Error(`client ${cid} has no backchannel_logout_uri`);
      try {
        await client.backchannelLogout(sub, sid);
        backchannelLog.push({ ok: true, clientId: cid, sub, sid, at: Date.now(), manual: true });
      } catch (err) {
        backchannelLog.push({ ok: false, clientId: cid, sub, sid, error: String(err?.message ?? err), at: Date.now(), manual: true });
        throw err;
      }
    },
    resetCounts() {
      for (const k of Object.keys(counts)) delete counts[k];
      tokenRequests.length = 0;
      errorLog.length = 0;
      issued.length = 0;
      revocationLog.length = 0;
      backchannelLog.length = 0;
      outgoingLog.length = 0;
    },
    /**
     * graceful: new keys first, old keys still published (tokens already issued still verify).
     * hard: only the new keys are published. State (sessions, grants, tokens) survives either way.
     */
    async rotateKeys({ graceful = true } = {}) {
      const fresh = await generateKeySet();
      keys = graceful ? [...fresh, ...keys] : fresh;
      provider = build();
      handler = provider.callback();
      return idp.keys;
    },
    /**
     * { discovery|jwks|token|revocation: 'down'|'500'|'garbage'|'hang'|'empty-jwks'|'429'|'temporarily_unavailable'|
     * 'invalid_client'|null } (merged); no argument clears all.
     */
    setFault(f) {
      if (!f) {
        for (const k of Object.keys(faults)) faults[k] = null;
      } else {
        for (const [k, v] of Object.entries(f)) {
          if (!(k in faults)) throw new Error(`unknown fault target ${k}`);
          faults[k] = v ?? null;
        }
      }
      if (!Object.values(faults).includes('hang')) {
        for (const s of hanging) s.destroy();
        hanging.clear();
      }
    },
    /** Wipes all provider state: sessions, grants, codes, refresh tokens (refresh then answers invalid_grant). */
    revokeAllGrants() { store.clear(); },
    wipe() { store.clear(); },
    async close() {
      untrack(idp);
      for (const s of hanging) s.destroy();
      hanging.clear();
      for (const srv of [server, server6]) srv?.closeAllConnections?.();
      await Promise.all([server, server6].filter(Boolean)
        .map((srv) => new Promise((resolve) => srv.close(() => resolve()))));
    },
  };
  return track(idp);
}
