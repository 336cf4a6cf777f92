// Self-tests of the test IdP: a headless sign-in against it alone (no gateway), with a tiny relying
// party of our own doing the PKCE code exchange.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import http from 'node:http';
import * as jose from 'jose';
import { startIdp } from '../support/idp.mjs';
import { Browser } from '../support/browser.mjs';

const T = { timeout: 10_000 };

async function startRp() {
  const server = http.createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'text/html' });
    res.end(`<p>relying party got ${req.url.replace(/</g, '&lt;')}</p>`);
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    callback: `http://127.0.0.1:${server.address().port}/auth/callback`,
    close: () => new Promise((resolve) => { server.closeAllConnections(); server.close(resolve); }),
  };
}

function pkce() {
  const verifier = crypto.randomBytes(32).toString('base64url');
  return { verifier, challenge: crypto.createHash('sha256').update(verifier).digest('base64url') };
}

describe('test IdP', () => {
  let rp;
  let idp;
  let disco;

  before(async () => {
    rp = await startRp();
    idp = await startIdp({ host: 'localhost', redirectUris: [rp.callback], clientSecret: 'harness-secret', ttl: { AccessToken: 120 } });
    disco = await (await fetch(`${idp.issuer}/.well-known/openid-configuration`)).json();
  });
  after(async () => { await idp?.close(); await rp?.close(); });

  function authUrl(extra = {}) {
    const { verifier, challenge } = pkce();
    const u = new URL(disco.authorization_endpoint);
    u.search = new URLSearchParams({
      response_type: 'code', client_id: 'edgeguard', redirect_uri: rp.callback, scope: 'openid profile email offline_access',
      state: crypto.randomBytes(8).toString('hex'), nonce: 'n-1', code_challenge: challenge, code_challenge_method: 'S256',
      resource: idp.resource, ...extra,
    });
    return { url: u.href, verifier };
  }

  async function exchange(code, verifier, { resource = idp.resource, post = false } = {}) {
    const body = new URLSearchParams({ grant_type: 'authorization_code', code, redirect_uri: rp.callback, code_verifier: verifier });
    if (resource) body.set('resource', resource);
    const headers = {};
    if (post) { body.set('client_id', 'edgeguard'); body.set('client_secret', 'harness-secret'); } else {
      headers.authorization = `Basic ${Buffer.from('edgeguard:harness-secret').toString('base64')}`;
    }
    const res = await fetch(disco.token_endpoint, { method: 'POST', body, headers });
    return { status: res.status, json: await res.json() };
  }

  async function refresh(rt) {
    const res = await fetch(disco.token_endpoint, {
      method: 'POST',
      body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: rt, resource: idp.resource }),
      headers: { authorization: `Basic ${Buffer.from('edgeguard:harness-secret').toString('base64')}` },
    });
    return { status: res.status, json: await res.json() };
  }

  const codeOf = (r) => new URL(r.final.url).searchParams.get('code');

  test('discovery lists offline_access and the renamed cookies do not collide', T, () => {
    assert.ok(disco.scopes_supported.includes('offline_access'));
    assert.equal(disco.issuer, idp.issuer);
    assert.ok(disco.code_challenge_methods_supported.includes('S256'));
  });

  let signedIn;
  test('headless sign-in: 7 hops with login and consent, then a JWT access token for the resource', T, async () => {
    const b = new Browser();
    const { url, verifier } = authUrl();
    const r = await b.signIn(url, { username: 'alice', password: 'alice' });
    assert.equal(r.hops.length, 8, r.hops.map((h) => `${h.method} ${h.url} ${h.status}`).join('\n')); // 7 + the RP
    assert.equal(new URL(r.final.url).origin + new URL(r.final.url).pathname, rp.callback);
    assert.equal(new URL(r.final.url).searchParams.get('iss'), idp.issuer);
    assert.ok(b.jar.all().every((c) => c.name.startsWith('idp_')), b.jar.all().map((c) => c.name).join());
    const { status, json } = await exchange(codeOf(r), verifier);
    assert.equal(status, 200, JSON.stringify(json));
    assert.ok(json.refresh_token, 'refresh token issued like Azure AD');
    assert.equal(json.expires_in, 120);
    const jwks = jose.createLocalJWKSet(idp.publicJwks);
    const at = await jose.jwtVerify(json.access_token, jwks, { issuer: idp.issuer, audience: idp.resource });
    assert.equal(at.payload.sub, 'alice');
    assert.ok(at.payload.scope.includes('openid'));
    assert.equal(at.payload.scp, at.payload.scope);
    assert.ok(at.payload.tid && at.payload.oid);
    const id = await jose.jwtVerify(json.id_token, jwks, { issuer: idp.issuer, audience: 'edgeguard' });
    assert.equal(id.protectedHeader.alg, 'RS256');
    assert.equal(id.payload.nonce, 'n-1');
    assert.equal(id.payload.email, 'alice@example.com');
    assert.equal(id.payload.name, 'Alice Liddell');
    assert.equal(id.payload.email_verified, true);
    signedIn = { b, json };
  });

  test('second sign-in in the same browser: no login, no consent (2 hops + RP)', T, async () => {
    const { url, verifier } = authUrl();
    const r = await signedIn.b.signIn(url);
    assert.equal(r.hops.length, 2, r.hops.map((h) => `${h.method} ${h.url} ${h.status}`).join('\n'));
    assert.equal((await exchange(codeOf(r), verifier)).status, 200);
  });

  test('a code is single-use (reuse revokes its grant) and PKCE is checked', T, async () => {
    const { url, verifier } = authUrl();
    const r = await new Browser().signIn(url);
    const code = codeOf(r);
    assert.equal((await exchange(code, 'x'.repeat(43))).json.error, 'invalid_grant');
    // the failed attempt does not consume the code in oidc-provider; a correct one does
    assert.equal((await exchange(code, verifier)).status, 200);
    assert.equal((await exchange(code, verifier)).json.error, 'invalid_grant');
  });

  test('PKCE is required', T, async () => {
    const { url } = authUrl({ code_challenge: undefined });
    const u = new URL(url);
    u.searchParams.delete('code_challenge');
    u.searchParams.delete('code_challenge_method');
    const r = await new Browser().navigate(u.href);
    assert.match(r.final.url, /error=invalid_request/);
  });

  test('wrong password re-shows the form with an error; Deny answers access_denied', T, async () => {
    const b = new Browser();
    const r = await b.signIn(authUrl().url, { username: 'alice', password: 'wrong' });
    assert.equal(r.final.status, 200);
    assert.match(r.final.text, /Wrong username or password/);
    assert.match(r.final.text, /type="password"/);
    const d = await new Browser().signIn(authUrl().url, { username: 'bob', password: 'bob', deny: true });
    assert.equal(new URL(d.final.url).searchParams.get('error'), 'access_denied');
  });

  test('refresh tokens rotate; reusing an old one revokes the grant', T, async () => {
    const refreshes = idp.counts().refresh_token ?? 0;
    const first = await refresh(signedIn.json.refresh_token);
    assert.equal(first.status, 200);
    assert.notEqual(first.json.refresh_token, signedIn.json.refresh_token);
    assert.equal(idp.counts().refresh_token, refreshes + 1);
    assert.equal((await refresh(signedIn.json.refresh_token)).json.error, 'invalid_grant');
    assert.equal((await refresh(first.json.refresh_token)).json.error, 'invalid_grant');
    assert.equal(idp.counts().refresh_token, refreshes + 1);
  });

  test('token hook rewrites the answer with helpers; tokenRequests records the client auth', T, async () => {
    idp.setTokenHook(async (body, t) => {
      body.id_token = await t.resign(body.id_token, ({ payload }) => { payload.nonce = 'changed'; });
      body.extra = 1;
    });
    const { url, verifier } = authUrl();
    const r = await new Browser().signIn(url, { username: 'bob', password: 'bob' });
    const { json } = await exchange(codeOf(r), verifier, { post: true });
    idp.setTokenHook(null);
    assert.equal(json.extra, 1);
    const id = await jose.jwtVerify(json.id_token, jose.createLocalJWKSet(idp.publicJwks));
    assert.equal(id.payload.nonce, 'changed');
    assert.equal(idp.tokenRequests().at(-1).clientAuth, 'post');
  });

  test('graceful rotation keeps old keys published; hard rotation drops them; state survives', T, async () => {
    const old = idp.keys.map((k) => k.kid);
    await idp.rotateKeys({ graceful: true });
    let kids = (await (await fetch(disco.jwks_uri)).json()).keys.map((k) => k.kid);
    assert.equal(kids.length, 4);
    assert.deepEqual(kids.slice(2), old);
    // The IdP session from before the rotation still works (no login prompt).
    const { url, verifier } = authUrl();
    const r = await signedIn.b.signIn(url);
    assert.ok(!r.hops.some((h) => h.url.endsWith('/login')), r.hops.map((h) => `${h.method} ${h.url} ${h.status}`).join('\n'));
    const { json } = await exchange(codeOf(r), verifier);
    assert.equal(jose.decodeProtectedHeader(json.id_token).kid, kids[0]);
    await idp.rotateKeys({ graceful: false });
    kids = (await (await fetch(disco.jwks_uri)).json()).keys.map((k) => k.kid);
    assert.equal(kids.length, 2);
    assert.ok(!kids.some((k) => old.includes(k)));
  });

  test('faults: 500, garbage, down, hang; cleared with setFault(null)', T, async () => {
    idp.setFault({ jwks: '500' });
    assert.equal((await fetch(disco.jwks_uri)).status, 500);
    idp.setFault({ jwks: 'garbage' });
    await assert.rejects((await fetch(disco.jwks_uri)).json());
    idp.setFault({ token: 'down' });
    await assert.rejects(fetch(disco.token_endpoint, { method: 'POST' }));
    idp.setFault({ discovery: 'hang' });
    await assert.rejects(fetch(`${idp.issuer}/.well-known/openid-configuration`, { signal: AbortSignal.timeout(200) }));
    idp.setFault(null);
    assert.equal((await fetch(`${idp.issuer}/.well-known/openid-configuration`)).status, 200);
    assert.equal((await fetch(disco.jwks_uri)).status, 200);
  });

  test('revokeAllGrants wipes state: refresh answers invalid_grant, the IdP session is gone', T, async () => {
    const { url, verifier } = authUrl();
    const r = await signedIn.b.signIn(url);
    const { json } = await exchange(codeOf(r), verifier);
    idp.revokeAllGrants();
    assert.equal((await refresh(json.refresh_token)).json.error, 'invalid_grant');
    const again = await signedIn.b.navigate(authUrl().url);
    assert.match(new URL(again.final.url).pathname, /^\/interaction\//);
  });
});

describe('test IdP options', () => {
  test('ES256 ID tokens and client_secret_post', T, async () => {
    const rp = await startRp();
    const idp = await startIdp({ redirectUris: [rp.callback], clientSecret: 's', idTokenAlg: 'ES256', tokenEndpointAuthMethod: 'client_secret_post' });
    try {
      const disco = await (await fetch(`${idp.issuer}/.well-known/openid-configuration`)).json();
      const { verifier, challenge } = pkce();
      const u = new URL(disco.authorization_endpoint);
      u.search = new URLSearchParams({
        response_type: 'code', client_id: 'edgeguard', redirect_uri: rp.callback, scope: 'openid email',
        state: 's', nonce: 'n', code_challenge: challenge, code_challenge_method: 'S256',
      });
      const r = await new Browser().signIn(u.href, { username: 'bob', password: 'bob' });
      const code = new URL(r.final.url).searchParams.get('code');
      const res = await fetch(disco.token_endpoint, {
        method: 'POST',
        body: new URLSearchParams({
          grant_type: 'authorization_code', code, redirect_uri: rp.callback, code_verifier: verifier, client_id: 'edgeguard', client_secret: 's',
        }),
      });
      const json = await res.json();
      assert.equal(res.status, 200, JSON.stringify(json));
      assert.equal(jose.decodeProtectedHeader(json.id_token).alg, 'ES256');
      assert.equal(json.access_token.split('.').length, 1, 'no resource: opaque access token');
      assert.equal(jose.decodeJwt(json.id_token).email, 'bob@example.com');
      // oidc-provider accepts basic and post alike; tokenRequests() says which one a client used.
      assert.equal(idp.tokenRequests().at(-1).clientAuth, 'post');
    } finally {
      await idp.close();
      await rp.close();
    }
  });
});
