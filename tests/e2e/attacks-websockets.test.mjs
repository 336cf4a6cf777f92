// Attacks on WebSocket upgrades through the gateway: a client that lists the gateway's identity headers (and
// Authorization) in its own `Connection` so that a hop-by-hop-aware hop would drop them, identity headers spoofed
// in other spellings on the handshake, and an unauthenticated upgrade dressed as a browser navigation (it cannot
// follow a redirect: 401, never 302). Handshakes are sent by hand so that every header is exactly the attacker's.
import { after, before, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import crypto from 'node:crypto';
import { WebSocket } from 'ws';
import { SESSION_COOKIE, signInSession, skipReason, startStack } from '../support/stack.mjs';
import { mint, nowSecs } from '../support/tokens.mjs';

const skip = skipReason();
const T = { timeout: 15_000, skip };

const ROUTES = JSON.stringify([
  { prefix: '/', auth: 'session' },
  { prefix: '/ws/pass/', auth: 'session', websocket: 'pass' },
  { prefix: '/ws/proxy/', auth: 'session', websocket: 'proxy' },
  { prefix: '/ws/api/', auth: 'bearer', websocket: 'proxy' },
]);

/** A WebSocket handshake with exactly `headers` added: resolves { status, headers } (101 or the refusal). */
function handshake(url, headers) {
  const u = new URL(url);
  const flat = ['host', u.host, 'upgrade', 'websocket', 'sec-websocket-version', '13',
    'sec-websocket-key', crypto.randomBytes(16).toString('base64')];
  for (const [k, v] of headers) flat.push(k, v);
  return new Promise((resolve, reject) => {
    const req = http.request({ hostname: u.hostname, port: u.port, path: u.pathname, headers: flat, agent: false });
    const timer = setTimeout(() => req.destroy(new Error('handshake timed out')), 10_000);
    req.on('upgrade', (res, socket) => { clearTimeout(timer); socket.destroy(); resolve({ status: res.statusCode, headers: res.headers }); });
    req.on('response', (res) => {
      res.resume();
      res.on('end', () => { clearTimeout(timer); resolve({ status: res.statusCode, headers: res.headers }); });
    });
    req.on('error', (err) => { clearTimeout(timer); reject(err); });
    req.end();
  });
}

describe('attacks on WebSocket upgrades', () => {
  let s;
  let cookie;

  before(async () => {
    if (skip) return;
    s = await startStack({ vars: { ROUTES } });
    const alice = await signInSession(s);
    cookie = `${SESSION_COOKIE}=${alice.cookie.value}`;
  }, { timeout: 30_000 });

  after(async () => { await s?.close(); });
  beforeEach(() => { s?.origin.reset(); });

  test('Connection naming the identity headers and Authorization drops none of them; spoofed spellings never arrive', T, async () => {
    for (const path of ['/ws/pass/room', '/ws/proxy/room']) {
      s.origin.reset();
      // eslint-disable-next-line no-await-in-loop
      const res = await handshake(`${s.gw.replace(/^http/, 'ws')}${path}`, [
        ['connection', 'Upgrade, X-Forwarded-User, X-Forwarded-Email, Authorization, Cookie'],
        ['cookie', cookie],
        ['X_Forwarded_User', 'mallory'],
        ['X-FORWARDED-EMAIL', 'mallory@evil.example'],
        ['Remote_User', 'root'],
      ]);
      assert.equal(res.status, 101, path);
      const seen = s.origin.requests().find((r) => r.upgrade);
      assert.ok(seen, `${path}: the origin got the upgrade`);
      assert.equal(seen.headers['x-forwarded-user'], 'alice', path);
      assert.notEqual(seen.headers['x-forwarded-email'], 'mallory@evil.example', path);
      assert.match(seen.headers.authorization ?? '', /^Bearer /, `${path}: the gateway's Authorization arrived`);
      assert.equal(seen.headers.remote_user, undefined);
      assert.equal(seen.headers['remote-user'], undefined);
      assert.equal(seen.headers.x_forwarded_user, undefined);
      assert.doesNotMatch(seen.headers.connection ?? '', /forwarded|authorization/i, `${path}: ${seen.headers.connection}`);
    }
  });

  test('a socket proxied for a bearer token is closed (4401) when the token expires, not left open', T, async () => {
    const token = await mint(s.idp, { sub: 'svc-client', exp: nowSecs() + 2 });
    const ws = new WebSocket(`${s.gw.replace(/^http/, 'ws')}/ws/api/feed`, { headers: { authorization: `Bearer ${token}` } });
    const closed = new Promise((done) => ws.on('close', (code) => done(code)));
    await new Promise((resolve, reject) => { ws.on('open', resolve); ws.on('error', reject); });
    const echoed = new Promise((done) => ws.once('message', (m) => done(String(m))));
    ws.send('tick');
    assert.equal(await echoed, 'echo:tick');
    const code = await Promise.race([closed, new Promise((done) => setTimeout(() => done('still open'), 8_000))]);
    assert.equal(code, 4401, 'the socket outlived the token it was opened with');
    const origin = s.origin.sockets().find((x) => x.path === '/ws/api/feed');
    assert.ok(origin, 'the origin had the socket');
  });

  test('a signed-out upgrade that looks like a navigation is 401 on every route, never a redirect to sign in', T, async () => {
    for (const path of ['/ws/pass/room', '/ws/proxy/room', '/chat']) {
      // eslint-disable-next-line no-await-in-loop
      const res = await handshake(`${s.gw.replace(/^http/, 'ws')}${path}`, [
        ['connection', 'Upgrade'], ['sec-fetch-mode', 'navigate'], ['sec-fetch-dest', 'document'], ['accept', 'text/html'],
      ]);
      assert.equal(res.status, 401, `${path}: ${res.status} ${res.headers.location ?? ''}`);
      assert.equal(res.headers.location, undefined);
      assert.equal(res.headers.upgrade, undefined);
    }
    assert.deepEqual(s.origin.requests(), []);
    await s.worker.waitForLog((e) => e.json?.reason === 'session_missing' && e.json?.path === '/chat');
  });
});
