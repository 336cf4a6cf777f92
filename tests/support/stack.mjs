// One gateway under test: a real IdP (oidc-provider) on `localhost`, the demo origin and the built Worker
// on 127.0.0.1 — so the sign-in round trip is cross-site, as with a real provider.
//
//   const s = await startStack({ vars: { OIDC_SCOPES: 'openid email' }, idp: { idTokenAlg: 'ES256' } });
//   s.gw, s.idp, s.origin, s.worker; await s.close();
//
//   const s = await startStack({ kvPersist: true, backchannelLogout: true });
//   await s.restartWorker({ secrets: { SESSION_SECRET: `${fresh},${s.secrets.SESSION_SECRET}` } }); // same port, same KV

import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, beforeEach } from 'node:test';
import { freePort, startWorker, workerBuildMissing } from './worker.mjs';

export { workerBuildMissing };

/** Why e2e suites must be skipped (printed by node:test), or false. */
export function skipReason() {
  return workerBuildMissing() ?? false;
}

export const SESSION_COOKIE = '__Host-edgeguard';
export const TX_COOKIE_PREFIX = '__Secure-edgeguard-tx-';
/** The session cookie of `startStack({ secondIdp })`'s provider `partners`. */
export const PARTNERS_COOKIE = `${SESSION_COOKIE}-partners`;

/**
 * ROUTES split between provider `default` and `partners`: a session route and a bearer route for each, a bearer
 * route taking both, then `extra` routes and the catch-all session route of `default`.
 */
export function twoProviderRoutes(...extra) {
  return JSON.stringify([
    { prefix: '/partners/', auth: 'session', provider: 'partners' },
    { prefix: '/api/a/', auth: 'bearer' },
    { prefix: '/api/b/', auth: 'bearer', provider: 'partners' },
    { prefix: '/api/both/', auth: 'bearer', providers: ['default', 'partners'] },
    ...extra,
    { prefix: '/', auth: 'session' },
  ]);
}

/**
 * @param {object} [opts]
 * @param {object} [opts.idp] options for startIdp (redirect URIs and secret are filled in)
 * @param {Record<string,string|undefined>|function} [opts.vars] Worker vars to add/override (undefined removes one),
 *   or ({ gw, idp, origin }) => such an object, for values that depend on the ports
 * @param {Record<string,string|undefined>} [opts.secrets] Worker secrets to add/override (undefined removes one)
 * @param {boolean} [opts.resource] set OIDC_RESOURCE (default true)
 * @param {string} [opts.idpHost] default 'localhost'
 * @param {boolean} [opts.kvPersist] keep KV in a temp folder (removed by close()), so restartWorker() keeps sessions
 * @param {object} [opts.worker] more startWorker options (assets, services, workers)
 * @param {boolean} [opts.backchannelLogout] register `${gw}/auth/backchannel-logout` as the client's
 *   backchannel_logout_uri at the IdP (ID tokens then carry `sid`)
 * @param {object|boolean} [opts.secondIdp] also start a second IdP (s.idp2, on `localhost` too) and add it to the
 *   Worker as the PROVIDERS entry `partners` (client `partners-client`, its secret in PARTNERS_CLIENT_SECRET,
 *   `resource` = its resource); an object gives it more startIdp options, and `name` another provider name
 */
export async function startStack(opts = {}) {
  // Loaded on first use so that skipped suites stay fast.
  const [{ startIdp }, { startOrigin }] = await Promise.all([import('./idp.mjs'), import('./origin.mjs')]);
  const started = [];
  const kvDir = opts.kvPersist ? fs.mkdtempSync(path.join(os.tmpdir(), 'edgeguard-kv-')) : undefined;
  const removeKvDir = () => { if (kvDir) fs.rmSync(kvDir, { recursive: true, force: true }); };
  try {
    const port = await freePort();
    const gw = `http://127.0.0.1:${port}`;
    const origin = await startOrigin({ gateway: gw });
    started.push(origin);
    const clientSecret = `secret-${crypto.randomBytes(12).toString('hex')}`;
    const idp = await startIdp({
      host: opts.idpHost ?? 'localhost',
      clientSecret,
      redirectUris: [`${gw}/auth/callback`],
      postLogoutRedirectUris: [gw, `${gw}/`, `${gw}/auth/logout`],
      ...(opts.backchannelLogout ? { backchannelLogoutUri: `${gw}/auth/backchannel-logout` } : {}),
      ...(opts.idp ?? {}),
    });
    started.push(idp);
    const idp2 = opts.secondIdp ? await startSecondIdp(gw, opts) : undefined;
    if (idp2) started.push(idp2);
    const vars = {
      OIDC_ISSUER: idp.issuer,
      OIDC_CLIENT_ID: idp.clientId,
      PUBLIC_URL: gw,
      ORIGIN_URL: origin.url,
      API_PATH_PREFIXES: '/api/',
      ...(opts.resource === false ? {} : { OIDC_RESOURCE: idp.resource }),
      ...(idp2 ? { PROVIDERS: JSON.stringify([idp2.providerEntry]) } : {}),
      ...((typeof opts.vars === 'function' ? opts.vars({ gw, idp, idp2, origin }) : opts.vars) ?? {}),
    };
    const secrets = {
      ...(idp2 ? { PARTNERS_CLIENT_SECRET: idp2.clientSecret } : {}),
      OIDC_CLIENT_SECRET: clientSecret,
      SESSION_SECRET: crypto.randomBytes(32).toString('base64url'),
      ...(opts.secrets ?? {}),
    };
    for (const o of [vars, secrets]) {
      for (const [k, v] of Object.entries(o)) if (v === undefined) delete o[k];
    }
    const worker = await startWorker({ ...opts.worker, port, vars, secrets, kvPersist: kvDir });
    started.push(worker);
    const stack = {
      gw,
      origin,
      idp,
      idp2,
      worker,
      vars,
      secrets,
      kvDir,
      /**
       * Stops the Worker and starts a fresh one (new isolate, nothing cached in memory) on the same port,
       * with vars/secrets merged over the current ones (undefined removes one). KV survives only with kvPersist.
       */
      async restartWorker({ vars: v = {}, secrets: sec = {} } = {}) {
        await stack.worker.close();
        const nextVars = { ...stack.vars, ...v };
        const nextSecrets = { ...stack.secrets, ...sec };
        for (const o of [nextVars, nextSecrets]) {
          for (const [k, val] of Object.entries(o)) if (val === undefined) delete o[k];
        }
        stack.worker = await startWorker({ ...opts.worker, port, vars: nextVars, secrets: nextSecrets, kvPersist: kvDir });
        stack.vars = nextVars;
        stack.secrets = nextSecrets;
        return stack.worker;
      },
      async close() {
        await Promise.allSettled([stack.worker.close(), idp.close(), origin.close(), idp2?.close()]);
        removeKvDir();
      },
    };
    return stack;
  } catch (err) {
    await Promise.allSettled(started.map((s) => s.close()));
    removeKvDir();
    throw err;
  }
}

/**
 * One stack for the tests of the enclosing `describe`: started before the first (not when the suite is `skip`ped)
 * and handed to `use` (the tests' `s`), closed after the last, and the origin's record cleared before each test.
 */
export function shareStack(opts, { skip, use }) {
  let stack;
  before(async () => {
    if (skip) return;
    stack = await startStack(opts);
    use(stack);
  }, { timeout: 60_000 });
  after(async () => { await stack?.close(); });
  beforeEach(() => { stack?.origin.reset(); });
}

/** Puts `s` back as the next test expects it: no IdP fault, the IdP's own access token lifetime, no origin requests. */
export function resetStack(s) {
  s.idp.setFault(null);
  s.idp.setAccessTokenTtl(null);
  s.origin.reset();
}

/** The refresh_token grants `idp` has been asked for. */
export function refreshGrants(idp) {
  return idp.tokenRequests().filter((r) => r.grantType === 'refresh_token');
}

/** The second provider of `startStack({ secondIdp })`, with the PROVIDERS entry that names it. */
async function startSecondIdp(gw, opts) {
  const { startIdp } = await import('./idp.mjs');
  const { name = 'partners', ...idpOpts } = opts.secondIdp === true ? {} : opts.secondIdp;
  const idp2 = await startIdp({
    host: opts.idpHost ?? 'localhost',
    clientId: 'partners-client',
    clientSecret: `partners-${crypto.randomBytes(12).toString('hex')}`,
    redirectUris: [`${gw}/auth/callback`],
    postLogoutRedirectUris: [gw, `${gw}/`, `${gw}/auth/logout`],
    ...idpOpts,
  });
  idp2.providerEntry = {
    name,
    issuer: idp2.issuer,
    client_id: idp2.clientId,
    client_secret_name: 'PARTNERS_CLIENT_SECRET',
    resource: idp2.resource,
  };
  return idp2;
}

/** The session cookie if any hop stored one (not a deletion). */
export function sessionCookieSet(hops) {
  for (const h of hops) {
    for (const r of h.cookieResults ?? []) {
      if (r.stored && r.cookie?.name === SESSION_COOKIE) return r.cookie;
    }
  }
  return null;
}

/** Payload of a compact JWS, unverified. */
export function jwtPayload(jwt) {
  const [, p] = String(jwt).split('.');
  return JSON.parse(Buffer.from(p, 'base64url').toString());
}

/** One line per hop, for assertion messages. */
export function describeHops(hops) {
  return hops.map((h) => `${h.method} ${h.url} -> ${h.status}${h.location ? ` ${h.location}` : ''}`).join('\n');
}

/**
 * Signs `user` in through the gateway in a fresh Browser (or `browser`), stopping at the callback's redirect:
 * the landing page is not requested, so the session has not been used yet. Returns what a session test needs:
 * { b, cookie (the __Host- cookie, to replay), kvKey (the session's KV key: the one that appeared), tokens (the
 * IdP's answer to the code exchange), idClaims (its ID token's payload), callback (the callback hop), hops }.
 */
export async function signInSession(s, { user = 'alice', path = '/home', browser } = {}) {
  const { Browser } = await import('./browser.mjs');
  const b = browser ?? new Browser();
  const keysBefore = new Set(await s.worker.sessionKeys());
  const issuedBefore = s.idp.issuedTokens().length;
  const r = await b.signIn(`${s.gw}${path}`, { username: user, password: user, stopBeforeCallback: true });
  if (!r.callbackUrl) throw new Error(`sign-in as ${user} did not reach the callback:\n${describeHops(r.hops)}`);
  const callback = await b.request(r.callbackUrl, { navigate: true, initiator: s.idp.issuer });
  const hops = [...r.hops, callback];
  if (callback.status !== 302) throw new Error(`callback answered ${callback.status}: ${callback.text.slice(0, 300)}`);
  const cookie = b.jar.get(SESSION_COOKIE);
  if (!cookie) throw new Error(`no ${SESSION_COOKIE} cookie after sign-in:\n${describeHops(hops)}`);
  const added = (await s.worker.sessionKeys()).filter((k) => !keysBefore.has(k));
  if (added.length !== 1) throw new Error(`expected one new KV session record, got ${added.length}: ${added.join(', ')}`);
  const tokens = s.idp.issuedTokens().slice(issuedBefore).find((t) => t.grantType === 'authorization_code');
  if (!tokens) throw new Error('the IdP issued no tokens for this sign-in');
  return { b, cookie, kvKey: added[0], tokens, idClaims: jwtPayload(tokens.id_token), callback, hops };
}

/** Resolves once `jwt`'s `exp` has passed by `marginMs` (default 2.1 s: the gateway counts whole seconds from its own clock). */
export async function waitUntilExpired(jwt, marginMs = 2100) {
  const { exp } = jwtPayload(jwt);
  const ms = exp * 1000 + marginMs - Date.now();
  if (ms > 0) await new Promise((resolve) => { setTimeout(resolve, ms); });
}
