// A small demo origin behind the gateway. It shows (HTML) or echoes (JSON, under /api/) every request it
// gets, and records them so tests can assert what reached it — or that nothing did. Given the gateway's URL it
// verifies the signed user assertion (X-Edgeguard-Assertion) the way an origin should, against the gateway's
// /.well-known/jwks.json, and shows "verified ✓ / ✗". It accepts WebSocket upgrades on any path and
// echoes each message back as `echo:<message>`; the upgrade request is recorded like any other (with
// `upgrade: true`) and each socket's end in `origin.sockets()`.
//
//   const origin = await startOrigin({ gateway: 'http://127.0.0.1:8787' });
//   origin.url, origin.requests(), origin.last().assertion, origin.reset(), await origin.close()
//   origin.sockets()  // [{ path, closed: null | { code, reason } }]

import http from 'node:http';
import { WebSocketServer } from 'ws';
import { track, untrack } from './leftovers.mjs';
import * as jose from 'jose';

export const ASSERTION_HEADER = 'x-edgeguard-assertion';

/** An origin's check of the gateway's assertion: { verified, claims } or { verified: false, error }. */
export function assertionVerifier(gateway, audience) {
  const jwks = jose.createRemoteJWKSet(new URL('/.well-known/jwks.json', gateway));
  return async (jwt) => {
    try {
      const { payload } = await jose.jwtVerify(jwt, jwks, { issuer: gateway, audience, algorithms: ['ES256', 'RS256', 'PS256'] });
      return { verified: true, claims: payload };
    } catch (err) {
      return { verified: false, error: err.code ?? err.message };
    }
  };
}

const esc = (s) => String(s ?? '').replace(/[&<>"']/g, (c) => ({
  '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;',
}[c]));

function htmlPage(r) {
  const row = (k, v) => `<tr><th>${esc(k)}</th><td><code>${esc(v ?? '(none)')}</code></td></tr>`;
  return `<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>Demo origin</title>
<style>body{font-family:system-ui,sans-serif;margin:2rem}th{text-align:left;padding-right:1rem}code{word-break:break-all}</style>
</head>
<body>
<h1>Hello from the origin</h1>
<p>This page is served by the demo origin behind edgeguard. It shows the request it received.</p>
<table>
${row('Method', r.method)}
${row('Path', r.path)}
${row('Query', r.query)}
${row('X-Forwarded-User', r.headers['x-forwarded-user'])}
${row('X-Forwarded-Email', r.headers['x-forwarded-email'])}
${row('Authorization', r.headers.authorization)}
${row('Cookie', r.headers.cookie)}
${row('Assertion', !r.assertion ? undefined
    : r.assertion.verified ? `verified ✓ (sub ${r.assertion.claims.sub})` : `✗ ${r.assertion.error}`)}
</table>
</body>
</html>`;
}

/**
 * @param {object} [opts]
 * @param {number} [opts.port]
 * @param {string} [opts.host] default 127.0.0.1
 * @param {string} [opts.gateway] the gateway's PUBLIC_URL: verify assertions against its JWKS
 */
export async function startOrigin(opts = {}) {
  const received = [];
  let verifyAssertion = null;
  const server = http.createServer(async (req, res) => {
    const chunks = [];
    for await (const c of req) chunks.push(c);
    const body = Buffer.concat(chunks).toString('utf8');
    const u = new URL(req.url, 'http://origin.invalid');
    const record = {
      method: req.method,
      path: u.pathname,
      query: u.search,
      url: req.url,
      headers: { ...req.headers },
      rawHeaders: req.rawHeaders.slice(),
      body,
      at: Date.now(),
    };
    const assertion = req.headers[ASSERTION_HEADER];
    if (assertion && verifyAssertion) record.assertion = await verifyAssertion(assertion);
    received.push(record);

    if (u.pathname === '/api' || u.pathname.startsWith('/api/')) {
      const payload = JSON.stringify({
        method: record.method,
        path: record.path,
        query: record.query,
        headers: record.headers,
        body: record.body,
        assertion: record.assertion,
      });
      res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' });
      res.end(payload);
      return;
    }
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
    res.end(req.method === 'HEAD' ? undefined : htmlPage(record));
  });
  server.keepAliveTimeout = 1000;
  const sockets = [];
  const wss = new WebSocketServer({ noServer: true, handleProtocols: (protocols) => [...protocols][0] ?? false });
  server.on('upgrade', (req, socket, head) => {
    const u = new URL(req.url, 'http://origin.invalid');
    received.push({
      method: req.method, path: u.pathname, query: u.search, url: req.url, headers: { ...req.headers },
      rawHeaders: req.rawHeaders.slice(), body: '', at: Date.now(), upgrade: true,
    });
    wss.handleUpgrade(req, socket, head, (ws) => {
      const entry = { path: u.pathname, closed: null };
      sockets.push(entry);
      ws.on('message', (data) => ws.send(`echo:${data}`));
      ws.on('close', (code, reason) => { entry.closed = { code, reason: String(reason) }; });
    });
  });
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, opts.host ?? '127.0.0.1', resolve);
  });
  const { port } = server.address();
  const url = `http://${opts.host ?? '127.0.0.1'}:${port}`;
  if (opts.gateway) verifyAssertion = assertionVerifier(opts.gateway, url);
  const origin = {
    url,
    port,
    /** Every request received so far (copies), oldest first. */
    requests() { return received.map((r) => ({ ...r, headers: { ...r.headers } })); },
    /** The newest request, or undefined. */
    last() { return received.length ? { ...received[received.length - 1] } : undefined; },
    reset() { received.length = 0; },
    /** Every WebSocket accepted so far: its path and, once it ended, its close code and reason. */
    sockets() { return sockets.map((entry) => ({ ...entry })); },
    async close() {
      untrack(origin);
      for (const ws of wss.clients) ws.terminate();
      server.closeAllConnections?.();
      await new Promise((resolve) => server.close(() => resolve()));
    },
  };
  return track(origin);
}
