// Cold start: what a fresh isolate costs before and during its first request, edgeguard against
// the JS pass-through. Run it through bench/load/run.sh's build (it reuses build/bench/):
//
//   npx node bench/load/coldstart.mjs [--runs 10]     (Node 22, as the rest of the tooling)
//
// Each measurement starts ONE fresh workerd process (so a fresh isolate: workerd creates a
// service's isolate, and compiles its wasm module, when it loads the config) holding the origin,
// the kv stand-in and one measured service; the variants alternate run by run:
//   passthrough        the JS pass-through (a)
//   edgeguard-public   edgeguard, public route: compile + instantiate + first request, no token work
//   edgeguard-bearer   edgeguard, bearer route, first request with a valid token: adds discovery,
//                      JWKS fetch and key import, which a real first API request pays
// Reported per variant, medians over the runs: spawn -> all sockets accept (workerd compiled and
// started the service), the first request's latency, spawn -> first answer, and workerd's CPU
// (schedstat, all threads) up to the first answer. "Cold start over the pass-through" is the
// difference of the spawn -> first answer medians.
//
// Separately, the wasm alone in this Node (the same V8): `new WebAssembly.Module` (compile) and
// instantiation with stub imports, fresh each time, to say what each KB of bundle costs.
//
// Limits: workerd cannot create a fresh isolate on demand inside one running process (the Worker
// Loader binding is not in this workerd), so "the same workerd run" is approximated by alternating
// fresh processes of the same binary and config shape, back to back.
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, '..', '..');
const BUILD = path.join(ROOT, 'build', 'bench');
const runsArg = process.argv.indexOf('--runs');
const RUNS = runsArg > 0 ? Number(process.argv[runsArg + 1]) : 10;
if (!Number.isInteger(RUNS) || RUNS < 1 || RUNS > 50) throw new Error('--runs is 1..50');
for (const f of ['origin.mjs', 'kv.mjs', 'passthrough.mjs', 'edgeguard/index.mjs', 'edgeguard/index.wasm']) {
  if (!fs.existsSync(path.join(BUILD, f))) throw new Error(`build/bench/${f} is missing: run bash bench/load/run.sh first`);
}

const jose = await import('jose');
const freePort = () => new Promise((resolve, reject) => {
  const srv = net.createServer();
  srv.once('error', reject);
  srv.listen(0, '127.0.0.1', () => { const { port } = srv.address(); srv.close(() => resolve(port)); });
});

// A provider for the bearer variant: discovery + JWKS, and one token.
const { publicKey, privateKey } = await jose.generateKeyPair('RS256', { modulusLength: 2048, extractable: true });
const jwk = { ...(await jose.exportJWK(publicKey)), kid: 'cold-rs256', alg: 'RS256', use: 'sig' };
const idpPort = await freePort();
const ISSUER = `http://127.0.0.1:${idpPort}`;
const AUDIENCE = 'https://api.bench.example';
const idp = http.createServer((req, res) => {
  const json = (body) => { res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'max-age=3600' }); res.end(JSON.stringify(body)); };
  if (req.url === '/.well-known/openid-configuration') {
    return json({ issuer: ISSUER, authorization_endpoint: `${ISSUER}/authorize`, token_endpoint: `${ISSUER}/token`, jwks_uri: `${ISSUER}/jwks`, response_types_supported: ['code'], subject_types_supported: ['public'], id_token_signing_alg_values_supported: ['RS256'] });
  }
  if (req.url === '/jwks') return json({ keys: [jwk] });
  res.writeHead(404).end();
});
await new Promise((r) => idp.listen(idpPort, '127.0.0.1', r));
const now = Math.floor(Date.now() / 1000);
const token = await new jose.SignJWT({ scope: 'api.read' })
  .setProtectedHeader({ alg: 'RS256', kid: jwk.kid, typ: 'at+jwt' })
  .setIssuer(ISSUER).setAudience(AUDIENCE).setSubject('cold-user').setIssuedAt(now).setExpirationTime(now + 3600)
  .sign(privateKey);

const q = (v) => JSON.stringify(String(v));
function config(variant, ports) {
  const text = (b) => Object.entries(b).map(([k, v]) => `(name = ${q(k)}, text = ${q(v)})`).join(', ');
  const svc = [
    `(name = "net", network = (allow = ["public", "local"]))`,
    `(name = "kv", worker = (modules = [(name = "kv.mjs", esModule = embed "kv.mjs")], compatibilityDate = "2025-09-01"))`,
    `(name = "origin", worker = (modules = [(name = "origin.mjs", esModule = embed "origin.mjs")], compatibilityDate = "2025-09-01", bindings = [${text({ IDP_HOST: `127.0.0.1:${idpPort}` })}], globalOutbound = "net"))`,
  ];
  const ORIGIN_URL = `http://127.0.0.1:${ports.origin}`;
  if (variant === 'passthrough') {
    svc.push(`(name = "measured", worker = (modules = [(name = "passthrough.mjs", esModule = embed "passthrough.mjs")], compatibilityDate = "2025-09-01", bindings = [${text({ ORIGIN_URL })}], globalOutbound = "origin"))`);
  } else {
    const routes = variant === 'edgeguard-public' ? '[{"prefix":"/","auth":"public"}]' : '[{"prefix":"/","auth":"bearer"}]';
    const vars = {
      OIDC_ISSUER: ISSUER, OIDC_CLIENT_ID: 'edgeguard-bench', OIDC_CLIENT_SECRET: 'bench-client-secret-not-used',
      PUBLIC_URL: `http://127.0.0.1:${ports.measured}`, ORIGIN_URL, SESSION_SECRET: 'bench-session-secret-0123456789-abcdefghijklmnop',
      ROUTES: routes, API_AUDIENCES: AUDIENCE, LOG_FORWARDED: 'false',
    };
    svc.push(`(name = "measured", worker = (modules = [(name = "index.mjs", esModule = embed "edgeguard/index.mjs"), (name = "index.wasm", wasm = embed "edgeguard/index.wasm")], compatibilityDate = "2025-09-01", bindings = [${text(vars)}, (name = "SESSIONS", kvNamespace = "kv")], globalOutbound = "origin"))`);
  }
  const sockets = ['origin', 'kv', 'measured'].map((s) => `(name = ${q(s)}, address = ${q(`127.0.0.1:${ports[s]}`)}, http = (), service = ${q(s)})`);
  return `using Workerd = import "/workerd/workerd.capnp";\nconst config :Workerd.Config = (\n  services = [${svc.join(',\n')}],\n  sockets = [${sockets.join(',\n')}]\n);\n`;
}

const cpuNs = (pid) => {
  let total = 0n;
  for (const tid of fs.readdirSync(`/proc/${pid}/task`)) {
    try { total += BigInt(fs.readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]); } catch { /* gone */ }
  }
  return total;
};
const accepts = (port) => new Promise((resolve) => {
  const c = net.connect(port, '127.0.0.1');
  c.once('connect', () => { c.destroy(); resolve(true); });
  c.once('error', () => resolve(false));
});
const get = (port, headers) => new Promise((resolve, reject) => {
  const req = http.request({ host: '127.0.0.1', port, path: '/api/items?x=1', headers, agent: false }, (res) => {
    let body = '';
    res.on('data', (c) => { body += c; });
    res.on('end', () => resolve({ status: res.statusCode, body }));
  });
  req.setTimeout(10000, () => req.destroy(new Error('timeout')));
  req.on('error', reject);
  req.end();
});
const ms = (a, b) => Number(b - a) / 1e6;

async function measure(variant) {
  const ports = { origin: await freePort(), kv: await freePort(), measured: await freePort() };
  const file = path.join(BUILD, `coldstart-${variant}.capnp`);
  fs.writeFileSync(file, config(variant, ports));
  const t0 = process.hrtime.bigint();
  const child = spawn(path.join(ROOT, 'node_modules', '.bin', 'workerd'), ['serve', file], { stdio: 'ignore' });
  try {
    for (const s of ['origin', 'kv', 'measured']) {
      while (!(await accepts(ports[s]))) {
        if (child.exitCode !== null || ms(t0, process.hrtime.bigint()) > 20000) throw new Error(`workerd did not start for ${variant}`);
        await new Promise((r) => setTimeout(r, 2));
      }
    }
    const ready = process.hrtime.bigint();
    const cpuReady = cpuNs(child.pid);
    const res = await get(ports.measured, variant === 'edgeguard-bearer' ? { authorization: `Bearer ${token}` } : {});
    const answered = process.hrtime.bigint();
    const cpuAnswered = cpuNs(child.pid);
    if (res.status !== 200 || res.body !== 'ok') throw new Error(`${variant}: first request answered ${res.status} ${res.body.slice(0, 200)}`);
    return { ready: ms(t0, ready), first: ms(ready, answered), total: ms(t0, answered), cpuReady: Number(cpuReady) / 1e6, cpuTotal: Number(cpuAnswered) / 1e6 };
  } finally {
    child.kill('SIGKILL');
    await new Promise((r) => (child.exitCode !== null || child.signalCode !== null ? r() : child.once('exit', r)));
  }
}

const variants = ['passthrough', 'edgeguard-public', 'edgeguard-bearer'];
const results = Object.fromEntries(variants.map((v) => [v, []]));
await measure('passthrough'); // the page cache holds the binary after this
for (let r = 0; r < RUNS; r++) {
  for (const v of r % 2 ? [...variants].reverse() : variants) results[v].push(await measure(v));
}
idp.close();

const median = (xs) => { const v = [...xs].sort((a, b) => a - b); return v.length % 2 ? v[v.length >> 1] : (v[v.length / 2 - 1] + v[v.length / 2]) / 2; };
const col = (v, k) => median(results[v].map((x) => x[k]));
const lines = ['| variant | spawn → ready ms | first request ms | spawn → first answer ms | over pass-through ms | workerd CPU to ready ms | workerd CPU to first answer ms |', '|---|---:|---:|---:|---:|---:|---:|'];
for (const v of variants) {
  lines.push(`| ${v} | ${col(v, 'ready').toFixed(1)} | ${col(v, 'first').toFixed(1)} | ${col(v, 'total').toFixed(1)} | ${v === 'passthrough' ? '—' : (col(v, 'total') - col('passthrough', 'total')).toFixed(1)} | ${col(v, 'cpuReady').toFixed(1)} | ${col(v, 'cpuTotal').toFixed(1)} |`);
}

// The wasm alone: compile and instantiate (stub imports) in this V8, fresh each time.
const bytes = fs.readFileSync(path.join(BUILD, 'edgeguard', 'index.wasm'));
const compiles = [];
const instantiates = [];
for (let i = 0; i < 15; i++) {
  const a = process.hrtime.bigint();
  const mod = new WebAssembly.Module(bytes);
  const b = process.hrtime.bigint();
  const imports = {};
  for (const imp of WebAssembly.Module.imports(mod)) {
    imports[imp.module] ??= {};
    if (imp.kind === 'function') imports[imp.module][imp.name] = () => {};
    if (imp.kind === 'tag') imports[imp.module][imp.name] = new WebAssembly.Tag({ parameters: ['externref'] });
  }
  new WebAssembly.Instance(mod, imports);
  const c = process.hrtime.bigint();
  compiles.push(ms(a, b));
  instantiates.push(ms(b, c));
}
const gz = (await import('node:zlib')).gzipSync(bytes, { level: 9 }).length;
const wasmLine = `index.wasm ${(bytes.length / 1024).toFixed(1)} KiB raw, ${(gz / 1024).toFixed(1)} KiB gzip: compile ${median(compiles).toFixed(2)} ms, instantiate ${median(instantiates).toFixed(2)} ms (medians of 15, Node ${process.version}); compile per 10 KiB raw: ${(median(compiles) / (bytes.length / 10240)).toFixed(3)} ms`;
process.stdout.write(`\n${lines.join('\n')}\n\n${wasmLine}\n\n(medians over ${RUNS} runs per variant, alternating)\n`);
