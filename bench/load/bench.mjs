// Load benchmark: CPU per request of four ways to put JWT verification in front of an origin,
// all in ONE workerd process (the workerd binary, or one Miniflare 4 instance), side by side:
//
//   (a) passthrough  JS, no auth, forwards to the origin                (the baseline)
//   (b) webcrypto    JS, hand-written crypto.subtle.verify, key cached
//   (c) jose         JS, jose jwtVerify + createLocalJWKSet (keys cached)
//   (d) edgeguard    our Worker (build/worker/index.mjs + index.wasm), ROUTES bearer mode
//
// and two diagnostics, measured only when named in --services:
//   (a') passthrough-log   (a) plus one JSON console.log line per request, as edgeguard writes
//   (d') edgeguard-public  our Worker with ROUTES '[{"prefix":"/","auth":"public"}]': its cost
//                          without any token work
//
// and the modes of issue 10 (all with LOG_FORWARDED=false, as the JS baselines log nothing):
//   edgeguard-public-quiet  (e)  public route: the Worker's cost without any token work
//   edgeguard-quiet         (d'') bearer, the same token on every request (verified-token cache hit)
//   edgeguard-distinct      (f)  bearer, a new token on every request (cache miss), beside
//   webcrypto-distinct, jose-distinct  (b) and (c), unchanged, fed the same distinct tokens
//   edgeguard-session       (g)  a warm signed-in session: cookie -> origin (signed in once, before
//                                the warm-up, through the gateway's real /auth/callback)
// Distinct tokens come from a pool per alg (--distinct-pool, more than the cache holds) cycled in
// order, so no token is seen again while still cached; wrk sends them through a Lua script.
// For every round the harness counts KV reads/writes (the kv service), origin requests and
// provider fetches, so "0 KV reads and no subrequest but the origin" is measured, not assumed.
//
// plus (origin), a workerd service answering 200 "ok" that all of them reach with a plain
// fetch(ORIGIN_URL + path) (see --origin-via). Keys are generated here (jose); a small node http
// server on 127.0.0.1 serves the OIDC discovery document and the JWKS that (d) fetches (once; it
// caches them). (b) and (c) get the same JWKS inline, as a binding.
//
// CPU is the sum over workerd's threads of /proc/<pid>/task/*/schedstat (first field, ns on CPU),
// sampled before and after each round, divided by the requests the round made. Rounds visit every
// (service, alg) cell in turn, in serpentine order; each cell reports its best and median round,
// and "added" over the pass-through both as best − best and as the median of per-round differences.
//
// Run it through bench/load/run.sh (which builds the Worker and the JS services first):
//   bash bench/load/run.sh [--rounds 5] [--duration 3] [--concurrency 16] [--algs RS256,ES256]
//                          [--services passthrough,webcrypto,jose,edgeguard] [--out bench/RESULTS.md]
//                          [--measure-failing] [--time-limit 900] [--quiet-cores 0.2] [--quiet-wait 30]
//                          [--quiet-budget 180] [--client auto|wrk|node]
//                          [--requests 5000] [--warmup 1000] (the Node client's per-round counts)
//                          [--runtime workerd|miniflare] [--origin-via outbound|socket]
//                          [--distinct-pool 4096]
//
// The client: wrk (apt-get install wrk) when it is on PATH, for --duration s per round; else a
// Node http client sending --requests requests per round. Either way at --concurrency keep-alive
// connections.
//
// The machine may be shared: before each round the bench waits (up to --quiet-wait s, and
// --quiet-budget s over the whole run) until the rest of the machine uses less than
// --quiet-cores, and it records that "other load" per round.

import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { execFileSync, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, '..', '..');
const BUILD = path.join(ROOT, 'build', 'bench');

// ------------------------------------------------------------------------------------------------
// Options

const opts = {
  requests: 5000,
  concurrency: 16,
  rounds: 5,
  warmup: 1000,
  services: 'passthrough,webcrypto,jose,edgeguard',
  algs: 'RS256,ES256',
  out: '',
  measureFailing: false,
  timeLimit: 900, // seconds, for the whole run
  runtime: 'workerd', // workerd | miniflare
  originVia: 'outbound', // outbound | socket
  client: 'auto', // node | wrk | auto (wrk when on PATH)
  duration: 3, // seconds per round with wrk (it runs for a time, not a count)
  quietCores: 0.2, // before each round, wait for the rest of the machine to use less than this...
  quietWait: 30, // ...for at most this many seconds
  quietBudget: 180, // ...and for at most this many seconds in all
  distinctPool: 4096, // distinct tokens per alg, cycled (must exceed the verified-token cache)
};
for (let i = 2; i < process.argv.length; i++) {
  const a = process.argv[i];
  const next = () => {
    const v = process.argv[++i];
    if (v === undefined) die(`${a} needs a value`);
    return v;
  };
  switch (a) {
    case '--requests': opts.requests = posInt(next(), a); break;
    case '--concurrency': opts.concurrency = posInt(next(), a); break;
    case '--rounds': opts.rounds = posInt(next(), a); break;
    case '--warmup': opts.warmup = Number(next()); break;
    case '--services': opts.services = next(); break;
    case '--algs': opts.algs = next(); break;
    case '--out': opts.out = next(); break;
    case '--measure-failing': opts.measureFailing = true; break;
    case '--time-limit': opts.timeLimit = posInt(next(), a); break;
    case '--client': opts.client = next(); break;
    case '--runtime': opts.runtime = next(); break;
    case '--origin-via': opts.originVia = next(); break;
    case '--duration': opts.duration = posInt(next(), a); break;
    case '--quiet-cores': opts.quietCores = Number(next()); break;
    case '--quiet-wait': opts.quietWait = Number(next()); break;
    case '--quiet-budget': opts.quietBudget = Number(next()); break;
    case '--distinct-pool': opts.distinctPool = posInt(next(), a); break;
    case '-h': case '--help':
      process.stdout.write(fs.readFileSync(fileURLToPath(import.meta.url), 'utf8').split('\n').filter((l, i, all) => all.slice(0, i + 1).every((x) => x.startsWith('//'))).map((l) => l.replace(/^\/\/ ?/, '')).join('\n') + '\n');
      process.exit(0);
      break;
    default: die(`unknown option ${a}`);
  }
}
if (opts.requests > 100000 || opts.rounds > 20 || opts.concurrency > 256) die('refusing: keep --requests <= 100000, --rounds <= 20, --concurrency <= 256');

function posInt(v, name) {
  const n = Number(v);
  if (!Number.isInteger(n) || n <= 0) die(`${name} must be a positive integer`);
  return n;
}
function die(msg) {
  process.stderr.write(`error: ${msg}\n`);
  process.exit(2);
}
const log = (msg) => process.stderr.write(`==> ${msg}\n`);

if (opts.client === 'auto') {
  try {
    execFileSync('wrk', ['--version'], { stdio: 'ignore' });
    opts.client = 'wrk';
  } catch (err) {
    // wrk --version exits 1 after printing its version; only a missing binary is ENOENT.
    opts.client = err.code === 'ENOENT' ? 'node' : 'wrk';
  }
}
if (opts.client !== 'node' && opts.client !== 'wrk') die('--client is node, wrk or auto');
if (opts.runtime !== 'workerd' && opts.runtime !== 'miniflare') die('--runtime is workerd or miniflare');
if (opts.originVia !== 'outbound' && opts.originVia !== 'socket') die('--origin-via is outbound or socket');
if (opts.duration > 60) die('refusing: keep --duration <= 60');

const SERVICE_INFO = {
  passthrough: { label: '(a) pass-through JS', script: path.join(BUILD, 'passthrough.mjs') },
  webcrypto: { label: '(b) JS crypto.subtle.verify', script: path.join(BUILD, 'webcrypto.mjs') },
  jose: { label: '(c) JS jose jwtVerify', script: path.join(BUILD, 'jose.mjs') },
  edgeguard: { label: '(d) edgeguard (Rust/wasm)', script: path.join(BUILD, 'edgeguard', 'index.mjs') },
  // Diagnostics, not in the default set: where edgeguard's cost goes.
  'passthrough-log': { label: "(a') pass-through JS + 1 JSON log line", script: path.join(BUILD, 'passthrough-log.mjs'), open: true },
  'passthrough-xfwd': { label: "(a'') pass-through JS, origin request as edgeguard's (Host dropped, X-Forwarded-Host/-Proto, redirect manual)", script: path.join(BUILD, 'passthrough-xfwd.mjs'), open: true },
  'edgeguard-public': { label: "(d') edgeguard, ROUTES auth public", script: path.join(BUILD, 'edgeguard', 'index.mjs'), open: true },
  // Like (d), with LOG_FORWARDED=false: no log line per valid request, as the JS baselines.
  'edgeguard-quiet': { label: "(d'') edgeguard, LOG_FORWARDED=false (repeated token)", script: path.join(BUILD, 'edgeguard', 'index.mjs') },
  // The modes of issue 10, all with LOG_FORWARDED=false.
  'edgeguard-public-quiet': { label: '(e) edgeguard public route, LOG_FORWARDED=false', script: path.join(BUILD, 'edgeguard', 'index.mjs'), open: true },
  'edgeguard-distinct': { label: '(f) edgeguard, every token new, LOG_FORWARDED=false', script: path.join(BUILD, 'edgeguard', 'index.mjs'), mode: 'distinct' },
  'webcrypto-distinct': { label: '(b) JS crypto.subtle.verify, every token new', script: path.join(BUILD, 'webcrypto.mjs'), mode: 'distinct' },
  'jose-distinct': { label: '(c) JS jose jwtVerify, every token new', script: path.join(BUILD, 'jose.mjs'), mode: 'distinct' },
  'edgeguard-session': { label: '(g) edgeguard warm session (cookie), LOG_FORWARDED=false', script: path.join(BUILD, 'edgeguard', 'index.mjs'), mode: 'session' },
};
const OURS = {
  edgeguard: { routes: 'bearer' },
  'edgeguard-public': { routes: 'public' },
  'edgeguard-quiet': { routes: 'bearer', quiet: true },
  'edgeguard-public-quiet': { routes: 'public', quiet: true },
  'edgeguard-distinct': { routes: 'bearer', quiet: true },
  'edgeguard-session': { routes: 'session', quiet: true },
};
// A/B of two builds in one run: every edgeguard service again as `<name>-b`, running
// build/bench/edgeguard-b/ (index.mjs + index.wasm of another build, copied there by hand).
for (const name of Object.keys(OURS)) {
  const script = path.join(BUILD, 'edgeguard-b', 'index.mjs');
  SERVICE_INFO[`${name}-b`] = { ...SERVICE_INFO[name], label: `${SERVICE_INFO[name].label} [build B]`, script };
  OURS[`${name}-b`] = OURS[name];
}
const modeOf = (s) => SERVICE_INFO[s].mode ?? 'repeated';
SERVICE_INFO.passthrough.open = true;
const services = opts.services.split(',').map((s) => s.trim()).filter(Boolean);
for (const s of services) if (!SERVICE_INFO[s]) die(`unknown service ${s} (known: ${Object.keys(SERVICE_INFO).join(', ')})`);
const algs = opts.algs.split(',').map((s) => s.trim()).filter(Boolean);
for (const a of algs) if (a !== 'RS256' && a !== 'ES256') die(`unknown alg ${a}`);
for (const s of services) {
  if (!fs.existsSync(SERVICE_INFO[s].script)) die(`${path.relative(ROOT, SERVICE_INFO[s].script)} is missing: run bash bench/load/run.sh`);
}

// Everything stops after the time limit, whatever happens.
const cleanups = [];
async function cleanup() {
  while (cleanups.length) {
    try {
      await cleanups.pop()();
    } catch {
      // keep going
    }
  }
}
const deadline = setTimeout(async () => {
  process.stderr.write(`error: time limit of ${opts.timeLimit} s reached, stopping\n`);
  await cleanup();
  process.exit(3);
}, opts.timeLimit * 1000);
deadline.unref();
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, async () => {
    await cleanup();
    process.exit(130);
  });
}

// ------------------------------------------------------------------------------------------------
// Keys, tokens, and the discovery + JWKS server

async function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

const jose = await import('jose');
const AUDIENCE = 'https://api.bench.example';
const CLIENT_ID = 'edgeguard-bench';

const keys = {};
for (const alg of ['RS256', 'ES256']) {
  const { publicKey, privateKey } = await jose.generateKeyPair(alg, { modulusLength: 2048, extractable: true });
  const jwk = { ...(await jose.exportJWK(publicKey)), kid: `bench-${alg.toLowerCase()}`, alg, use: 'sig' };
  keys[alg] = { privateKey, jwk };
}
const JWKS = { keys: [keys.RS256.jwk, keys.ES256.jwk] };

const idpPort = await freePort();
const ISSUER = `http://127.0.0.1:${idpPort}`;
const idpHits = new Map();
const idp = http.createServer((req, res) => {
  idpHits.set(req.url, (idpHits.get(req.url) ?? 0) + 1);
  const json = (body, cacheControl = 'public, max-age=3600') => {
    res.writeHead(200, { 'content-type': 'application/json', 'cache-control': cacheControl });
    res.end(JSON.stringify(body));
  };
  if (req.url === '/.well-known/openid-configuration') {
    return json({
      issuer: ISSUER,
      authorization_endpoint: `${ISSUER}/authorize`,
      token_endpoint: `${ISSUER}/token`,
      jwks_uri: `${ISSUER}/jwks`,
      response_types_supported: ['code'],
      subject_types_supported: ['public'],
      id_token_signing_alg_values_supported: ['RS256', 'ES256'],
      code_challenge_methods_supported: ['S256'],
      token_endpoint_auth_methods_supported: ['client_secret_basic', 'client_secret_post'],
      scopes_supported: ['openid', 'profile', 'email'],
    });
  }
  if (req.url === '/jwks') return json(JWKS);
  if (req.method === 'POST' && req.url === '/token') {
    // The code exchange of the one sign-in the session mode needs (nothing checks the code).
    return idToken(signIn.nonce).then((id_token) => json({
      access_token: tokens.RS256, token_type: 'Bearer', expires_in: 7200, refresh_token: 'bench-refresh-token', id_token,
    }, 'no-store'));
  }
  res.writeHead(404).end();
});
// What the session mode's sign-in saw in the authorize redirect (the IdP puts it in the ID token).
const signIn = { nonce: '' };
function idToken(nonce) {
  const t = Math.floor(Date.now() / 1000);
  return new jose.SignJWT({ nonce, name: 'Bench User' })
    .setProtectedHeader({ alg: 'RS256', kid: keys.RS256.jwk.kid })
    .setIssuer(ISSUER).setAudience(CLIENT_ID).setSubject('bench-user-1')
    .setIssuedAt(t).setExpirationTime(t + 600)
    .sign(keys.RS256.privateKey);
}
await new Promise((resolve) => idp.listen(idpPort, '127.0.0.1', resolve));
cleanups.push(() => new Promise((resolve) => idp.close(resolve)));

// RFC 9068 JWT access tokens, valid for the whole run.
const now = Math.floor(Date.now() / 1000);
const tokens = {};
const badTokens = {};
for (const alg of ['RS256', 'ES256']) {
  tokens[alg] = await new jose.SignJWT({ scope: 'api.read', client_id: CLIENT_ID, name: 'Bench User' })
    .setProtectedHeader({ alg, kid: keys[alg].jwk.kid, typ: 'at+jwt' })
    .setIssuer(ISSUER)
    .setAudience(AUDIENCE)
    .setSubject('bench-user-1')
    .setIssuedAt(now)
    .setNotBefore(now - 5)
    .setExpirationTime(now + 2 * 3600)
    .setJti(`bench-${alg}`)
    .sign(keys[alg].privateKey);
  // Same token, one signature byte flipped: every verifying service must answer 401.
  const [h, p, s] = tokens[alg].split('.');
  const sig = Buffer.from(s, 'base64url');
  sig[sig.length >> 1] ^= 0x01;
  badTokens[alg] = `${h}.${p}.${sig.toString('base64url')}`;
}

// Pools of distinct tokens (jti and sub differ), for the "every token new" services.
const pools = {};
const poolFiles = {};
if (services.some((s) => modeOf(s) === 'distinct')) {
  fs.mkdirSync(BUILD, { recursive: true });
  for (const alg of algs) {
    pools[alg] = [];
    for (let i = 0; i < opts.distinctPool; i++) {
      pools[alg].push(await new jose.SignJWT({ scope: 'api.read', client_id: CLIENT_ID })
        .setProtectedHeader({ alg, kid: keys[alg].jwk.kid, typ: 'at+jwt' })
        .setIssuer(ISSUER).setAudience(AUDIENCE).setSubject(`bench-user-${i}`)
        .setIssuedAt(now).setNotBefore(now - 5).setExpirationTime(now + 2 * 3600)
        .setJti(`bench-${alg}-${i}`)
        .sign(keys[alg].privateKey));
    }
    poolFiles[alg] = path.join(BUILD, `tokens-${alg}.txt`);
    fs.writeFileSync(poolFiles[alg], pools[alg].join('\n') + '\n');
  }
  fs.writeFileSync(path.join(BUILD, 'distinct.lua'), `-- Generated by bench/load/bench.mjs: a new bearer token per request, cycled from a file.
local tokens = {}
for line in io.lines(os.getenv("BENCH_TOKENS")) do tokens[#tokens + 1] = line end
local i = 0
request = function()
  i = i % #tokens + 1
  return wrk.format(nil, nil, { ["Host"] = wrk.headers["Host"], ["authorization"] = "Bearer " .. tokens[i] })
end
`);
}
let poolNext = 0;

// ------------------------------------------------------------------------------------------------
// One workerd process runs every service, each on its own socket on 127.0.0.1:
//   --runtime workerd (default): the workerd binary from node_modules with a generated capnp
//     config (build/bench/workerd.capnp): nothing but the services below.
//   --runtime miniflare: one Miniflare 4 instance (`workers: [...]`, a direct socket per worker).
//     Miniflare routes every outgoing fetch through its own JS "outbound" worker, which adds a
//     constant ~100+ µs per request to every service.
// --origin-via outbound (default): each service's global outbound is the origin service, so
//   fetch(ORIGIN_URL) reaches it without a TCP hop (the origin passes fetches for the provider on
//   to the network); --origin-via socket: the services fetch the origin's socket over loopback.

const ports = {};
for (const name of ['origin', 'kv', ...services]) ports[name] = await freePort();
const ORIGIN_URL = `http://127.0.0.1:${ports.origin}`;
const IDP_HOST = `127.0.0.1:${idpPort}`;
const runtimeLines = { stdout: 0, stderr: 0, tail: [] };
function drain(stream, name) {
  let buf = '';
  stream.setEncoding('utf8');
  stream.on('data', (chunk) => {
    buf += chunk;
    let nl;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      runtimeLines[name]++;
      runtimeLines.tail.push(`[${name}] ${line}`);
      if (runtimeLines.tail.length > 30) runtimeLines.tail.shift();
      if (process.env.DEBUG) process.stderr.write(`[workerd ${name}] ${line}\n`);
    }
  });
}

const COMPAT_DATE = '2025-09-01';
const jsBindings = { ORIGIN_URL, ISSUER, AUDIENCE, JWKS: JSON.stringify(JWKS) };
const isOurs = (s) => OURS[s] !== undefined;
const ROUTES_BY_KIND = {
  public: '[{"prefix":"/","auth":"public"}]',
  bearer: '[{"prefix":"/","auth":"bearer"}]',
  session: '[{"prefix":"/","auth":"session"}]',
};
const oursBindings = (s) => ({
  OIDC_ISSUER: ISSUER,
  OIDC_CLIENT_ID: CLIENT_ID,
  OIDC_CLIENT_SECRET: 'bench-client-secret-not-used',
  PUBLIC_URL: `http://127.0.0.1:${ports[s]}`,
  ORIGIN_URL,
  SESSION_SECRET: 'bench-session-secret-0123456789-abcdefghijklmnop',
  ROUTES: ROUTES_BY_KIND[OURS[s].routes],
  API_AUDIENCES: AUDIENCE,
  ...(OURS[s].quiet ? { LOG_FORWARDED: 'false' } : {}),
});
const bindingsOf = (s) => (isOurs(s) ? oursBindings(s) : jsBindings);

async function startMiniflare() {
  const { Miniflare, Log, LogLevel } = await import('miniflare');
  const direct = (name) => ({ unsafeDirectSockets: [{ host: '127.0.0.1', port: ports[name] }] });
  const outbound = opts.originVia === 'outbound' ? { outboundService: 'origin' } : {};
  const workers = [
    {
      name: 'origin',
      modules: true,
      compatibilityDate: COMPAT_DATE,
      scriptPath: path.join(BUILD, 'origin.mjs'),
      bindings: { IDP_HOST },
      ...direct('origin'),
    },
  ];
  for (const s of services) {
    const w = { name: s, modules: true, compatibilityDate: COMPAT_DATE, scriptPath: SERVICE_INFO[s].script, bindings: bindingsOf(s), ...outbound, ...direct(s) };
    if (isOurs(s)) {
      Object.assign(w, {
        modulesRoot: path.dirname(SERVICE_INFO[s].script),
        modulesRules: [{ type: 'CompiledWasm', include: ['**/*.wasm'] }],
        kvNamespaces: ['SESSIONS'],
      });
    }
    workers.push(w);
  }
  const mf = new Miniflare({
    host: '127.0.0.1',
    port: 0,
    cf: false,
    log: new Log(LogLevel.WARN),
    handleRuntimeStdio(stdout, stderr) {
      drain(stdout, 'stdout');
      drain(stderr, 'stderr');
    },
    workers,
  });
  cleanups.push(() => mf.dispose());
  try {
    await mf.ready;
  } catch (err) {
    await cleanup();
    die(`Miniflare did not start: ${err.stack ?? err}`);
  }
  return workerdChildPid();
}

// A capnp text config for workerd: every service, its bindings, one socket each.
function capnpConfig() {
  const q = (v) => JSON.stringify(String(v)); // capnp text strings take JSON's escapes
  const rel = (p) => q(path.relative(BUILD, p));
  const textBindings = (b) => Object.entries(b).map(([k, v]) => `(name = ${q(k)}, text = ${q(v)})`);
  const outbound = opts.originVia === 'outbound' ? 'origin' : 'net';
  const svc = [
    `(name = "net", network = (allow = ["public", "local"]))`,
    `(name = "kv", worker = (modules = [(name = "kv.mjs", esModule = embed "kv.mjs")], compatibilityDate = ${q(COMPAT_DATE)}))`,
    `(name = "origin", worker = (modules = [(name = "origin.mjs", esModule = embed "origin.mjs")], compatibilityDate = ${q(COMPAT_DATE)}, bindings = [${textBindings({ IDP_HOST }).join(', ')}], globalOutbound = "net"))`,
  ];
  for (const s of services) {
    const script = SERVICE_INFO[s].script;
    const modules = [`(name = ${q(path.basename(script))}, esModule = embed ${rel(script)})`];
    const bindings = textBindings(bindingsOf(s));
    if (isOurs(s)) {
      modules.push(`(name = "index.wasm", wasm = embed ${rel(path.join(path.dirname(script), 'index.wasm'))})`);
      bindings.push(`(name = "SESSIONS", kvNamespace = "kv")`);
    }
    svc.push(`(name = ${q(s)}, worker = (modules = [${modules.join(', ')}], compatibilityDate = ${q(COMPAT_DATE)}, bindings = [${bindings.join(', ')}], globalOutbound = ${q(outbound)}))`);
  }
  const sockets = ['origin', 'kv', ...services].map((s) => `(name = ${q(`s-${s}`)}, address = ${q(`127.0.0.1:${ports[s]}`)}, http = (), service = ${q(s)})`);
  return `# Generated by bench/load/bench.mjs for one run; not a source file.
using Workerd = import "/workerd/workerd.capnp";
const config :Workerd.Config = (
  services = [
    ${svc.join(',\n    ')}
  ],
  sockets = [
    ${sockets.join(',\n    ')}
  ]
);
`;
}

async function startWorkerd() {
  const file = path.join(BUILD, 'workerd.capnp');
  fs.writeFileSync(file, capnpConfig());
  const bin = path.join(ROOT, 'node_modules', '.bin', 'workerd');
  const child = spawn(bin, ['serve', file], { stdio: ['ignore', 'pipe', 'pipe'] });
  drain(child.stdout, 'stdout');
  drain(child.stderr, 'stderr');
  const exited = new Promise((resolve) => child.once('exit', (code, sig) => resolve(`${code ?? sig}`)));
  cleanups.push(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 3000);
      await exited;
      clearTimeout(t);
    }
  });
  // Ready when every socket accepts a connection (within 20 s).
  const deadlineAt = Date.now() + 20000;
  for (const s of ['origin', ...services]) {
    for (;;) {
      const ok = await new Promise((resolve) => {
        const c = net.connect(ports[s], '127.0.0.1');
        c.once('connect', () => { c.destroy(); resolve(true); });
        c.once('error', () => resolve(false));
      });
      if (ok) break;
      if (child.exitCode !== null || Date.now() > deadlineAt) {
        await cleanup();
        die(`workerd did not start (exit ${child.exitCode}):\n${runtimeLines.tail.join('\n')}`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  return child.pid;
}

// Miniflare's workerd is a child process of this node process.
function workerdChildPid() {
  const kids = [];
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${entry}/stat`, 'utf8');
      const close = stat.lastIndexOf(')');
      const comm = stat.slice(stat.indexOf('(') + 1, close);
      const ppid = Number(stat.slice(close + 2).split(' ')[1]);
      if (ppid === process.pid) kids.push({ pid: Number(entry), comm });
    } catch {
      // gone
    }
  }
  const w = kids.filter((k) => k.comm.startsWith('workerd'));
  if (w.length !== 1) throw new Error(`expected one workerd child, found ${JSON.stringify(kids)}`);
  return w[0].pid;
}

log(`starting one workerd (${opts.runtime}, origin via ${opts.originVia}) with origin, ${services.join(', ')}`);
const PID = opts.runtime === 'miniflare' ? await startMiniflare() : await startWorkerd();

function cpuNs() {
  let total = 0n;
  for (const tid of fs.readdirSync(`/proc/${PID}/task`)) {
    try {
      total += BigInt(fs.readFileSync(`/proc/${PID}/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
    } catch {
      // thread exited between readdir and read
    }
  }
  return total;
}
const threadCount = () => fs.readdirSync(`/proc/${PID}/task`).length;

// Other load on the machine (a compiler run by someone else skews CPU per request: caches,
// migrations, SMT): all busy CPU time minus workerd's and this process's, in cores.
const TICK_NS = 1e7; // USER_HZ = 100 on Linux
function loadSample() {
  const f = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  const total = f.reduce((a, b) => a + b, 0);
  const idle = f[3] + (f[4] ?? 0);
  const st = fs.readFileSync('/proc/self/stat', 'utf8');
  const self = st.slice(st.lastIndexOf(')') + 2).split(' ');
  return { busyNs: (total - idle) * TICK_NS, selfNs: (Number(self[11]) + Number(self[12])) * TICK_NS, workerdNs: Number(cpuNs()), at: process.hrtime.bigint() };
}
function otherCores(a, b) {
  const wall = Number(b.at - a.at);
  const other = b.busyNs - a.busyNs - (b.selfNs - a.selfNs) - (b.workerdNs - a.workerdNs);
  return Math.max(0, other / wall);
}
// Wait (up to opts.quietWait s) until the rest of the machine uses less than opts.quietCores.
let quietBudgetMs = opts.quietBudget * 1000; // all waits together, so the run stays bounded
async function waitQuiet() {
  const started = Date.now();
  if (quietBudgetMs <= 0) return { waitedS: 0, other: 0 };
  for (;;) {
    const a = loadSample();
    await new Promise((r) => setTimeout(r, 500));
    const other = otherCores(a, loadSample());
    const waited = Date.now() - started;
    if (other <= opts.quietCores) {
      if (waited > 600) quietBudgetMs -= waited;
      return { waitedS: waited / 1000, other };
    }
    if (waited > opts.quietWait * 1000 || waited > quietBudgetMs) {
      quietBudgetMs -= waited;
      return { waitedS: waited / 1000, other, gaveUp: true };
    }
  }
}

// ------------------------------------------------------------------------------------------------
// The client: fixed request count, fixed concurrency, keep-alive.

const agents = {};
for (const s of services) agents[s] = new http.Agent({ keepAlive: true, maxSockets: opts.concurrency });
cleanups.push(async () => {
  for (const a of Object.values(agents)) a.destroy();
});

// What a request to `service` carries: its mode decides (the session cookie, the next token of the
// distinct pool, or the one token of the alg); `token` overrides it (null: no credential).
function credentialHeaders(service, alg, token) {
  if (token !== undefined) return token ? { authorization: `Bearer ${token}` } : {};
  switch (modeOf(service)) {
    case 'session': return { cookie: sessionCookie };
    case 'distinct': return { authorization: `Bearer ${pools[alg][poolNext++ % pools[alg].length]}` };
    default: return { authorization: `Bearer ${tokens[alg]}` };
  }
}

function request(service, alg, token, extraHeaders = {}) {
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: '127.0.0.1',
        port: ports[service],
        path: '/api/items?x=1',
        method: 'GET',
        agent: agents[service],
        headers: { ...credentialHeaders(service, alg, token), ...extraHeaders },
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c) => { body += c; });
        res.on('end', () => resolve({ status: res.statusCode, body, headers: res.headers }));
        res.on('error', reject);
      },
    );
    req.setTimeout(10000, () => req.destroy(new Error('request timed out after 10 s')));
    req.on('error', reject);
    req.end();
  });
}

// Plain GET with headers, for the sign-in and the counters.
function get(port, pathAndQuery, headers = {}) {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path: pathAndQuery, method: 'GET', headers }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c) => { body += c; });
      res.on('end', () => resolve({ status: res.statusCode, body, headers: res.headers }));
      res.on('error', reject);
    });
    req.setTimeout(10000, () => req.destroy(new Error('request timed out after 10 s')));
    req.on('error', reject);
    req.end();
  });
}
const cookiePairs = (res) => (res.headers['set-cookie'] ?? []).filter((c) => !/max-age=0/i.test(c)).map((c) => c.split(';')[0]);

// The one sign-in of the session mode, through the gateway as a browser would do it: the route
// redirects to the provider; the provider's answer (code + state) goes to /auth/callback with the
// transaction cookies; the gateway exchanges the code at the bench IdP's /token.
let sessionCookie = '';
async function signInOnce(service) {
  const nav = { 'sec-fetch-mode': 'navigate', 'sec-fetch-site': 'none', accept: 'text/html' };
  const start = await get(ports[service], '/api/items?x=1', nav);
  const location = start.headers.location ?? '';
  if (start.status !== 302 || !location.startsWith(`${ISSUER}/authorize`)) throw new Error(`sign-in did not redirect to the provider: ${start.status} ${location}`);
  const authorize = new URL(location);
  signIn.nonce = authorize.searchParams.get('nonce') ?? '';
  const state = authorize.searchParams.get('state') ?? '';
  const back = await get(ports[service], `/auth/callback?code=bench-code&state=${encodeURIComponent(state)}`, { ...nav, 'sec-fetch-site': 'cross-site', cookie: cookiePairs(start).join('; ') });
  const session = cookiePairs(back).filter((c) => c.startsWith('__Host-edgeguard='));
  if (back.status !== 302 || session.length !== 1) throw new Error(`callback did not sign in: ${back.status} ${back.body.slice(0, 300)}`);
  sessionCookie = session[0];
}

// The counters of the kv and origin services (workerd runtime only) and of the bench IdP.
async function counters() {
  const provider = [...idpHits.values()].reduce((a, b) => a + b, 0);
  if (opts.runtime !== 'workerd') return { provider };
  const kv = JSON.parse((await get(ports.kv, '/__bench/stats')).body);
  const origin = JSON.parse((await get(ports.origin, '/__bench/stats')).body);
  return { provider, kvReads: kv.reads, kvWrites: kv.writes + kv.deletes, origin: origin.origin };
}

// wrk: one thread, `concurrency` keep-alive connections, for opts.duration seconds.
function wrkRound(service, alg) {
  return new Promise((resolve, reject) => {
    const args = ['-t1', `-c${opts.concurrency}`, `-d${opts.duration}s`, '--timeout', '10s'];
    const env = { ...process.env };
    switch (modeOf(service)) {
      case 'session': args.push('-H', `cookie: ${sessionCookie}`); break;
      case 'distinct': args.push('-s', path.join(BUILD, 'distinct.lua')); env.BENCH_TOKENS = poolFiles[alg]; break;
      default: args.push('-H', `authorization: Bearer ${tokens[alg]}`);
    }
    args.push(`http://127.0.0.1:${ports[service]}/api/items?x=1`);
    const child = spawn('wrk', args, { stdio: ['ignore', 'pipe', 'inherit'], env });
    cleanups.push(async () => child.kill());
    let out = '';
    child.stdout.on('data', (c) => { out += c; });
    child.on('error', reject);
    child.on('close', (code) => {
      const m = out.match(/(\d+) requests in ([\d.]+)(m?s)/);
      if (code !== 0 || !m) return reject(new Error(`wrk failed (${code}): ${out}`));
      const non2xx = Number((out.match(/Non-2xx or 3xx responses: (\d+)/) ?? [0, 0])[1]);
      const errors = out.match(/Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/);
      const socketErrors = errors ? errors.slice(1).reduce((a, b) => a + Number(b), 0) : 0;
      resolve({ n: Number(m[1]), non2xx, socketErrors });
    });
  });
}

async function round(service, alg, n) {
  const c0 = await counters();
  const res = await measureRound(service, alg, n);
  const c1 = await counters();
  res.counts = Object.fromEntries(Object.keys(c1).map((k) => [k, c1[k] - c0[k]]));
  return res;
}

async function measureRound(service, alg, n) {
  if (opts.client === 'wrk') {
    const load0 = loadSample();
    const cpu0 = cpuNs();
    const t0 = process.hrtime.bigint();
    const w = await wrkRound(service, alg);
    const t1 = process.hrtime.bigint();
    const cpu1 = cpuNs();
    const other = otherCores(load0, loadSample());
    const wallS = Number(t1 - t0) / 1e9;
    const failures = {};
    if (w.non2xx) failures['non-2xx'] = w.non2xx;
    if (w.socketErrors) failures['socket errors'] = w.socketErrors;
    return {
      n: w.n,
      ok: w.n - w.non2xx,
      failures,
      cpuUsPerReq: Number(cpu1 - cpu0) / 1e3 / w.n,
      reqPerS: w.n / wallS,
      wallS,
      otherCores: other,
    };
  }
  let issued = 0;
  let ok = 0;
  const failures = new Map();
  const worker = async () => {
    while (issued < n) {
      issued++;
      try {
        const r = await request(service, alg);
        if (r.status === 200 && r.body === 'ok') ok++;
        else failures.set(r.status, (failures.get(r.status) ?? 0) + 1);
      } catch (err) {
        failures.set(err.code ?? err.message, (failures.get(err.code ?? err.message) ?? 0) + 1);
      }
    }
  };
  const load0 = loadSample();
  const cpu0 = cpuNs();
  const t0 = process.hrtime.bigint();
  await Promise.all(Array.from({ length: Math.min(opts.concurrency, n) }, worker));
  const t1 = process.hrtime.bigint();
  const cpu1 = cpuNs();
  const other = otherCores(load0, loadSample());
  const wallS = Number(t1 - t0) / 1e9;
  return {
    n,
    ok,
    failures: Object.fromEntries(failures),
    cpuUsPerReq: Number(cpu1 - cpu0) / 1e3 / n,
    reqPerS: n / wallS,
    wallS,
    otherCores: other,
  };
}

// ------------------------------------------------------------------------------------------------
// Sanity: a valid token gets the origin's "ok"; a tampered one gets 401 (not for pass-through).

const sanity = {};
let problems = 0;
for (const s of services) {
  if (modeOf(s) === 'session') {
    try {
      await signInOnce(s);
    } catch (err) {
      log(`sign-in for ${s} failed: ${err.message}`);
    }
  }
}
for (const s of services) {
  sanity[s] = {};
  for (const alg of algs) {
    const session = modeOf(s) === 'session';
    const good = await request(s, alg);
    // A session's "tampered" credential is its cookie with the last character changed.
    const bad = session
      ? await request(s, alg, undefined, { cookie: sessionCookie.slice(0, -1) + (sessionCookie.endsWith('A') ? 'B' : 'A') })
      : await request(s, alg, badTokens[alg]);
    const none = session ? await request(s, alg, undefined, { cookie: '' }) : await request(s, alg, null);
    const goodOk = good.status === 200 && good.body === 'ok';
    const refused = (r) => r.status === 401 || (session && r.status === 302);
    const rejects = SERVICE_INFO[s].open || (refused(bad) && refused(none));
    sanity[s][alg] = { good: good.status, tampered: bad.status, none: none.status, ok: goodOk && rejects };
    const line = `${s} ${alg}: valid -> ${good.status}${good.status === 200 ? ` "${good.body.slice(0, 20)}"` : good.headers.location ? ` (location ${good.headers.location})` : ''}, tampered -> ${bad.status}, no ${session ? 'cookie' : 'token'} -> ${none.status}`;
    if (!sanity[s][alg].ok) {
      problems++;
      log(`CHECK FAILED: ${line}`);
    } else {
      log(`check ok: ${line}`);
    }
  }
}
const measured = services.filter((s) => opts.measureFailing || algs.every((a) => sanity[s][a].ok));
const skipped = services.filter((s) => !measured.includes(s));
if (skipped.length) log(`not measured (failed the check; --measure-failing measures anyway): ${skipped.join(', ')}`);

// ------------------------------------------------------------------------------------------------
// Warm-up, then interleaved rounds.

const results = {}; // service -> alg -> [round]
for (const s of measured) {
  results[s] = {};
  for (const alg of algs) results[s][alg] = [];
}
const idleCpu0 = cpuNs();
await new Promise((r) => setTimeout(r, 1000));
const idleCpuUsPerS = Number(cpuNs() - idleCpu0) / 1e3;

if (opts.warmup > 0) {
  log(opts.client === 'wrk' ? 'warm-up: 1 s of wrk per service and alg' : `warm-up: ${opts.warmup} requests per service and alg`);
  const saved = opts.duration;
  opts.duration = 1;
  for (const s of measured) for (const alg of algs) await round(s, alg, opts.warmup);
  opts.duration = saved;
}
const startedAt = Date.now();
// Every cell (service, alg) once per round; the order reverses every other round, so a slow
// drift in the machine's speed hits early and late cells alike.
const cells = measured.flatMap((s) => algs.map((alg) => [s, alg]));
for (let r = 1; r <= opts.rounds; r++) {
  for (const [s, alg] of r % 2 ? cells : [...cells].reverse()) {
    const q = await waitQuiet();
    if (q.waitedS > 1) log(`waited ${q.waitedS.toFixed(0)} s for other load to drop (now ${q.other.toFixed(2)} cores${q.gaveUp ? ', gave up' : ''})`);
    const res = await round(s, alg, opts.requests);
    results[s][alg].push(res);
    const fail = Object.keys(res.failures).length ? ` FAILURES ${JSON.stringify(res.failures)}` : '';
    log(`round ${r}/${opts.rounds} ${s.padEnd(16)} ${alg}: ${res.cpuUsPerReq.toFixed(1)} µs CPU/req, ${res.reqPerS.toFixed(0)} req/s, other load ${res.otherCores.toFixed(2)} cores${fail}`);
  }
}
const elapsedS = (Date.now() - startedAt) / 1000;

// ------------------------------------------------------------------------------------------------
// Report

const best = (s, alg) => Math.min(...results[s][alg].map((x) => x.cpuUsPerReq));
const median = (s, alg) => {
  const v = results[s][alg].map((x) => x.cpuUsPerReq).sort((a, b) => a - b);
  return v[v.length >> 1];
};
// "Added" two ways: best minus best; and the median over rounds of (this round's cell minus this
// round's pass-through), which cancels the machine's slower drifts.
const pairedAdded = (s, alg, base = 'passthrough') => {
  const v = results[s][alg].map((x, i) => x.cpuUsPerReq - results[base][alg][i].cpuUsPerReq).sort((a, b) => a - b);
  return v.length % 2 ? v[v.length >> 1] : (v[v.length / 2 - 1] + v[v.length / 2]) / 2;
};
const bestRate = (s, alg) => Math.max(...results[s][alg].map((x) => x.reqPerS));
const anyFailures = measured.some((s) => algs.some((a) => results[s][a].some((x) => x.ok !== x.n)));
const fmt = (v, d = 1) => (v === undefined || Number.isNaN(v) ? 'n/a' : v.toFixed(d));

const lines = [];
lines.push('| service | alg | CPU µs/req (best) | median | added over (a): best − best | added: paired median | req/s (best) |');
lines.push('|---|---|---:|---:|---:|---:|---:|');
for (const s of measured) {
  for (const alg of algs) {
    const added = measured.includes('passthrough') ? best(s, alg) - best('passthrough', alg) : undefined;
    const paired = measured.includes('passthrough') ? pairedAdded(s, alg) : undefined;
    lines.push(`| ${SERVICE_INFO[s].label} | ${alg} | ${fmt(best(s, alg))} | ${fmt(median(s, alg))} | ${s === 'passthrough' ? '—' : fmt(added)} | ${s === 'passthrough' ? '—' : fmt(paired)} | ${fmt(bestRate(s, alg), 0)} |`);
  }
}
for (const s of skipped) {
  for (const alg of algs) {
    const c = sanity[s][alg];
    lines.push(`| ${SERVICE_INFO[s].label} | ${alg} | not measured: valid token -> ${c.good}, tampered -> ${c.tampered}, none -> ${c.none} | | | | |`);
  }
}
const ratioLines = [];
if (measured.includes('passthrough') && measured.includes('edgeguard')) {
  ratioLines.push('| ours | alg | "added" from | ours added µs | raw webcrypto added µs | jose added µs | ours / webcrypto (target ≤ 1.3) | ours / jose (target ≤ 0.6) |');
  ratioLines.push('|---|---|---|---:|---:|---:|---:|---:|');
  const ourVariants = ['edgeguard', 'edgeguard-quiet'].filter((s) => measured.includes(s));
  for (const variant of ourVariants) for (const alg of algs) {
    for (const [how, added] of [
      ['best − best', (s) => best(s, alg) - best('passthrough', alg)],
      ['paired median', (s) => pairedAdded(s, alg)],
    ]) {
      const ours = added(variant);
      const wc = measured.includes('webcrypto') ? added('webcrypto') : undefined;
      const jo = measured.includes('jose') ? added('jose') : undefined;
      const r1 = wc === undefined ? undefined : ours / wc;
      const r2 = jo === undefined ? undefined : ours / jo;
      const mark = (r, t) => (r === undefined ? '' : r <= t ? ' ✓' : ' ✗');
      ratioLines.push(`| ${SERVICE_INFO[variant].label} | ${alg} | ${how} | ${fmt(ours)} | ${fmt(wc)} | ${fmt(jo)} | ${fmt(r1, 2)}${mark(r1, 1.3)} | ${fmt(r2, 2)}${mark(r2, 0.6)} |`);
    }
  }
} else if (measured.includes('passthrough')) {
  if (services.includes('edgeguard')) ratioLines.push('Ratios need (d) edgeguard measured; it was not (see the checks).');
  if (measured.includes('webcrypto') && measured.includes('jose')) {
    ratioLines.push('');
    ratioLines.push('| alg | raw webcrypto added µs (paired median) | jose added µs (paired median) | jose / webcrypto |');
    ratioLines.push('|---|---:|---:|---:|');
    for (const alg of algs) {
      const wc = pairedAdded('webcrypto', alg);
      const jo = pairedAdded('jose', alg);
      ratioLines.push(`| ${alg} | ${fmt(wc)} | ${fmt(jo)} | ${fmt(jo / wc, 2)} |`);
    }
  }
}

// Where edgeguard's added CPU goes, when the diagnostic services ran.
const splitLines = [];
if (['passthrough', 'edgeguard', 'edgeguard-public'].every((s) => measured.includes(s))) {
  const hasLog = measured.includes('passthrough-log');
  splitLines.push(`| alg | edgeguard added µs | of which: Worker without auth (d') − (a) | of which: bearer verification (d) − (d')${hasLog ? " | for scale: one JSON log line (a') − (a)" : ''} |`);
  splitLines.push(`|---|---:|---:|---:|${hasLog ? '---:|' : ''}`);
  for (const alg of algs) {
    const d = pairedAdded('edgeguard', alg);
    const dp = pairedAdded('edgeguard-public', alg);
    splitLines.push(`| ${alg} | ${fmt(d)} | ${fmt(dp)} | ${fmt(pairedAdded('edgeguard', alg, 'edgeguard-public'))}${hasLog ? ` | ${fmt(pairedAdded('passthrough-log', alg))}` : ''} |`);
  }
  splitLines.push('');
  splitLines.push('(paired medians: each the median over rounds of the difference within a round)');
}

// The targets of issue 10, when their services ran: ratios of paired medians in this run.
const targetLines = [];
const has = (...names) => names.every((n) => measured.includes(n));
const total = (s, alg, key) => results[s][alg].reduce((a, x) => a + (x.counts?.[key] ?? NaN), 0);
const requestsOf = (s, alg) => results[s][alg].reduce((a, x) => a + x.n, 0);
if (has('passthrough')) {
  const targets = [
    ['public route', 'edgeguard-public-quiet', 'webcrypto', 0.25],
    ['bearer, every token new (cache miss)', 'edgeguard-distinct', 'webcrypto-distinct', 1.15],
    ['bearer, every token new (cache miss)', 'edgeguard-distinct', 'jose-distinct', 0.9],
    ['bearer, repeated token (cache hit)', 'edgeguard-quiet', 'webcrypto', 0.4],
    ['warm signed-in session', 'edgeguard-session', 'webcrypto', 0.3],
  ];
  targetLines.push('| target | alg | ours | ours added µs | baseline | baseline added µs | ratio | target |');
  targetLines.push('|---|---|---|---:|---|---:|---:|---|');
  for (const [what, ours, base, limit] of targets) {
    if (!has(ours, base)) continue;
    for (const alg of algs) {
      const o = pairedAdded(ours, alg);
      const b = pairedAdded(base, alg);
      const r = o / b;
      targetLines.push(`| ${what} | ${alg} | ${SERVICE_INFO[ours].label} | ${fmt(o)} | ${SERVICE_INFO[base].label} | ${fmt(b)} | ${fmt(r, 2)} | ≤ ${limit} ${r <= limit ? '✓' : '✗'} |`);
    }
  }
}
// What each edgeguard cell did besides answering, over its measured rounds (the counters).
const countLines = [];
if (opts.runtime === 'workerd') {
  countLines.push('| service | alg | requests | origin requests per request | KV reads | KV writes | provider fetches |');
  countLines.push('|---|---|---:|---:|---:|---:|---:|');
  for (const s of measured.filter(isOurs)) {
    for (const alg of algs) {
      const n = requestsOf(s, alg);
      countLines.push(`| ${SERVICE_INFO[s].label} | ${alg} | ${n} | ${fmt(total(s, alg, 'origin') / n, 3)} | ${total(s, alg, 'kvReads')} | ${total(s, alg, 'kvWrites')} | ${total(s, alg, 'provider')} |`);
    }
  }
}

process.stdout.write(`\n${lines.join('\n')}\n\n${ratioLines.join('\n')}\n\n${splitLines.length ? `${splitLines.join('\n')}\n\n` : ''}${targetLines.length ? `${targetLines.join('\n')}\n\n` : ''}${countLines.length ? `${countLines.join('\n')}\n\n` : ''}`);

if (opts.out) {
  const cpuModel = (fs.readFileSync('/proc/cpuinfo', 'utf8').match(/^model name\s*:\s*(.*)$/m) ?? [])[1] ?? 'unknown';
  let workerdVersion = 'unknown';
  try {
    workerdVersion = execFileSync(path.join(ROOT, 'node_modules', '.bin', 'workerd'), ['--version'], { encoding: 'utf8' }).trim();
  } catch {
    // leave unknown
  }
  let gitRev = 'unknown';
  try {
    gitRev = execFileSync('git', ['-C', ROOT, 'rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).trim();
    const dirty = execFileSync('git', ['-C', ROOT, 'status', '--porcelain', '--', 'src', 'Cargo.toml', 'Cargo.lock'], { encoding: 'utf8' }).trim();
    if (dirty) gitRev += ' (with uncommitted changes under src/)';
  } catch {
    // leave unknown
  }
  const mfVersion = JSON.parse(fs.readFileSync(path.join(ROOT, 'node_modules', 'miniflare', 'package.json'), 'utf8')).version;
  const joseVersion = JSON.parse(fs.readFileSync(path.join(ROOT, 'node_modules', 'jose', 'package.json'), 'utf8')).version;
  const size = fs.existsSync(path.join(BUILD, 'edgeguard', 'size.txt')) ? fs.readFileSync(path.join(BUILD, 'edgeguard', 'size.txt'), 'utf8').trim() : '';
  const raw = [];
  raw.push('| service | alg | round | requests | ok | CPU µs/req | req/s | wall s | other load (cores) | failures |');
  raw.push('|---|---|---:|---:|---:|---:|---:|---:|---:|---|');
  for (const s of measured) {
    for (const alg of algs) {
      results[s][alg].forEach((x, i) => {
        raw.push(`| ${s} | ${alg} | ${i + 1} | ${x.n} | ${x.ok} | ${x.cpuUsPerReq.toFixed(2)} | ${x.reqPerS.toFixed(0)} | ${x.wallS.toFixed(2)} | ${x.otherCores.toFixed(2)} | ${Object.keys(x.failures).length ? JSON.stringify(x.failures) : ''} |`);
      });
    }
  }
  const md = `# edgeguard benchmarks

## Load benchmark: CPU per request in workerd

- Date: ${new Date().toISOString()}
- Machine: ${os.cpus().length} CPUs (nproc ${execFileSync('nproc', { encoding: 'utf8' }).trim()}), ${cpuModel}, ${os.type()} ${os.release()}, ${Math.round(os.totalmem() / 2 ** 30)} GiB RAM
- Software: Node ${process.version}, ${workerdVersion}, miniflare ${mfVersion}, jose ${joseVersion}; edgeguard at ${gitRev}
- Command: \`${process.env.BENCH_COMMAND ?? `node ${path.relative(ROOT, fileURLToPath(import.meta.url))} ${process.argv.slice(2).join(' ')}`}\`
- Parameters: ${opts.client === 'wrk' ? `wrk (1 thread, ${opts.concurrency} keep-alive connections) for ${opts.duration} s per round, warm-up 1 s per cell` : `${opts.requests} requests per round from one Node http client (keep-alive, concurrency ${opts.concurrency}), warm-up ${opts.warmup} requests per cell`}, ${opts.rounds} rounds (interleaved: every service and alg in turn); before each round the bench waited (up to ${opts.quietWait} s) for the rest of the machine to use < ${opts.quietCores} cores; the client runs on the same machine
- Method: one workerd process (${opts.runtime === 'miniflare' ? 'one Miniflare 4 instance, a direct socket per worker' : 'the workerd binary with a generated capnp config'}) runs all services side by side, each on its own socket on 127.0.0.1, all forwarding with a plain \`fetch(ORIGIN_URL + path)\` to an "origin" service (200 "ok") in the same workerd (${opts.originVia === 'outbound' ? "as every service's global outbound: no TCP hop" : 'over a loopback TCP connection to its socket'}). CPU = sum over workerd's threads of \`/proc/<pid>/task/*/schedstat\` field 1 (ns on CPU), before/after each round, divided by the requests. Each cell's best (lowest) and median round are shown; "added" is given two ways: the cell's best minus the pass-through's best for the same alg, and the median over rounds of (cell − pass-through in the same round), which cancels slow drifts in the machine's speed. Rounds visit the cells in a serpentine order (reversed every other round). workerd idle CPU (measured for 1 s before the warm-up): ${idleCpuUsPerS.toFixed(0)} µs/s.
- Tokens: RFC 9068 access tokens (typ at+jwt, iss, aud, sub, exp, nbf, iat, jti, scope, client_id), RS256 (2048-bit) and ES256 (P-256), keys generated per run with jose. (b) and (c) get the JWKS inline; (d) fetches discovery + JWKS from a node http server on 127.0.0.1 (hits during the run: ${JSON.stringify(Object.fromEntries(idpHits))}).
${anyFailures ? '\n**Some rounds had non-200 answers: see the raw numbers.**\n' : ''}
### CPU per request

${lines.join('\n')}

### Added CPU, edgeguard against the JS baselines

${ratioLines.join('\n')}

${targetLines.length ? `### Targets (issue 10): ratios of paired medians in this run, logging off as for the baselines\n\n${targetLines.join('\n')}\n\n` : ''}${countLines.length ? `### What edgeguard did besides answering (counted by the harness over the measured rounds)\n\n${countLines.join('\n')}\n\n` : ''}${splitLines.length ? `### Where edgeguard's added CPU goes (diagnostic services)\n\n${splitLines.join('\n')}\n\n` : ''}### Checks before measuring

| service | alg | valid token | tampered signature | no token |
|---|---|---:|---:|---:|
${services.flatMap((s) => algs.map((a) => `| ${s} | ${a} | ${sanity[s][a].good} | ${sanity[s][a].tampered} | ${sanity[s][a].none} |`)).join('\n')}

### Raw numbers

${raw.join('\n')}
${size ? `\nedgeguard bundle measured (build/size.txt):\n\n\`\`\`\n${size}\n\`\`\`\n` : ''}`;
  const outPath = path.resolve(ROOT, opts.out);
  fs.mkdirSync(path.dirname(outPath), { recursive: true });
  // Keep a native micro-benchmark section written by hand (everything from "## Native" on).
  let tail = '';
  if (fs.existsSync(outPath)) {
    const old = fs.readFileSync(outPath, 'utf8');
    const at = old.indexOf('\n## Native');
    if (at >= 0) tail = old.slice(at);
  }
  fs.writeFileSync(outPath, md + tail);
  log(`wrote ${path.relative(ROOT, outPath)}`);
}

log(`discovery/JWKS server hits: ${JSON.stringify(Object.fromEntries(idpHits))}`);
log(`measured in ${elapsedS.toFixed(0)} s; workerd pid ${PID}, ${threadCount()} threads; workerd printed ${runtimeLines.stdout} stdout and ${runtimeLines.stderr} stderr lines`);
if (problems && process.env.DEBUG) process.stderr.write(runtimeLines.tail.join('\n') + '\n');
clearTimeout(deadline);
await cleanup();
process.exit(anyFailures ? 1 : 0);
