// CPU per request of edgeguard builds inside workerd, without an HTTP client: one harness Worker
// imports the JS pass-through and one or two bundled builds (index.mjs + index.wasm, as
// build/worker/ holds them) and, per call of /run?v=NAME&n=N, sends N requests through that
// variant's `fetch`, each forwarded to an "origin" service in the same workerd (the harness's
// global outbound, as in the load bench) and its body read. workerd's CPU (schedstat, all
// threads) around each call, divided by N, is the variant's CPU per request; rounds alternate
// the variants, and "added" is the paired median over the pass-through. Less noise than the load
// bench on a busy machine (no client, no sockets), and an A/B of two builds in one process.
//
//   npx node bench/profile/workerd-micro.mjs --a build/worker [--b DIR] [--c DIR ...] [--mode public|bearer|session]
//                                            [--alg RS256|ES256] [--repeat] [--two-providers]
//                                            [--n 500] [--rounds 9] [--stub-fetch]
//                                            [--profile FILE.cpuprofile]
//
// --mode bearer: every request carries a new RFC 9068 token (minted here with jose, distinct per
// request and per round, so edgeguard's verified-token cache never hits), edgeguard on a bearer
// route beside bench/load/workers/webcrypto.mjs (raw crypto.subtle.verify); the origin service also
// answers edgeguard's discovery and JWKS fetches. --repeat: one token on every request instead
// (edgeguard's verified-token cache hits after the first). --two-providers: the bearer route
// takes the default provider and a second one (`partners`); the tokens stay the default's.
// --mode session: every request carries the cookie of one signed-in session (sealed here the way
// src/session seals it, under the harness's SESSION_SECRET; its record is served by the KV stub,
// read once, then warm), on a session route that forwards two ID token claims as headers.
// --n stays under workerd's 1000 subrequests per request. --stub-fetch replaces the global
// `fetch` with one answering 200 "ok" at once (no subrequest; the provider's discovery and JWKS
// still reach the origin service): what is left is the Worker's own work. To compare against
// main, copy build/worker/ of a main build to a directory and pass it as --b. A and B are
// copied to build/micro/.
import { spawn } from 'node:child_process';
import { cpSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const OUT = path.join(ROOT, 'build', 'micro');
const args = process.argv.slice(2);
const opt = (name, fallback) => {
  const at = args.indexOf(`--${name}`);
  return at >= 0 ? args[at + 1] : fallback;
};
const mode = opt('mode', 'public');
const n = Number(opt('n', 500));
const rounds = Number(opt('rounds', 9));
// Up to six builds: --a (default build/worker), --b ... --f; every one is compared with --b.
const builds = Object.fromEntries(['a', 'b', 'c', 'd', 'e', 'f'].map((k) => [k, opt(k, k === 'a' ? 'build/worker' : undefined)]));
const port = 18000 + (process.pid % 1000);
const stubFetch = args.includes('--stub-fetch');
const perfFile = opt('perf', undefined);
// --v8-flags a,b: V8 flags for workerd (diagnostics only: a deployed Worker cannot set them).
const v8Flags = [...(opt('v8-flags', '') || '').split(',').filter(Boolean), ...(perfFile ? ['--perf-basic-prof'] : [])];

rmSync(OUT, { recursive: true, force: true });
const variants = ['pass', 'xfwd'];
for (const [name, dir] of Object.entries(builds)) {
  if (!dir) continue;
  mkdirSync(path.join(OUT, name), { recursive: true });
  for (const f of ['index.mjs', 'index.wasm']) cpSync(path.resolve(ROOT, dir, f), path.join(OUT, name, f));
  variants.push(name);
}

const twoProviders = args.includes('--two-providers');
const repeat = args.includes('--repeat');
const ROUTES = {
  public: '[{"prefix":"/","auth":"public"}]',
  session: '[{"prefix":"/","auth":"session","headers":{"X-User-Name":"name","X-Groups":"groups"}}]',
  bearer: twoProviders ? '[{"prefix":"/","auth":"bearer","providers":["default","partners"]}]' : '[{"prefix":"/","auth":"bearer"}]',
};
const ISSUER = 'http://127.0.0.1:9/issuer';
const AUDIENCE = 'bench-api';
const bearer = mode === 'bearer';
const alg = opt('alg', 'RS256');
let jwks = { keys: [] };
if (bearer) {
  const jose = await import('jose');
  const { publicKey, privateKey } = await jose.generateKeyPair(alg, { modulusLength: 2048, extractable: true });
  const jwk = { ...(await jose.exportJWK(publicKey)), kid: `micro-${alg.toLowerCase()}`, alg, use: 'sig' };
  jwks = { keys: [jwk] };
  const now = Math.floor(Date.now() / 1000);
  const tokens = [];
  for (let i = 0; i < n * (rounds + 1); i++) {
    if (repeat && i > 0) {
      tokens.push(tokens[0]);
      continue;
    }
    tokens.push(await new jose.SignJWT({ scope: 'api.read', client_id: 'bench' })
      .setProtectedHeader({ alg, kid: jwk.kid, typ: 'at+jwt' })
      .setIssuer(ISSUER).setAudience(AUDIENCE).setSubject(`micro-user-${i}`)
      .setIssuedAt(now).setNotBefore(now - 5).setExpirationTime(now + 3600).setJti(`micro-${i}`)
      .sign(privateKey));
  }
  writeFileSync(path.join(OUT, 'tokens.txt'), tokens.join('\n'));
  for (const f of ['webcrypto.mjs', 'forward.mjs']) cpSync(path.join(ROOT, 'bench', 'load', 'workers', f), path.join(OUT, f));
  variants.splice(1, 1, 'webcrypto'); // the raw Web Crypto Worker instead of xfwd
} else {
  writeFileSync(path.join(OUT, 'tokens.txt'), '');
}
const SESSION_SECRET = 'bench-session-secret-0123456789-abcdefghijklmnop';
const session = mode === 'session' ? await signedInSession() : { cookie: '', storageKey: '', sealedRecord: '' };

/** A session as edgeguard stores it (src/session/keys.rs, record.rs): AES-256-GCM under HKDF-SHA256 keys. */
async function signedInSession() {
  const crypto = await import('node:crypto');
  const key = (label) => Buffer.from(crypto.hkdfSync('sha256', SESSION_SECRET, 'edgeguard', label, 32));
  const seal = (label, aad, plain) => {
    const nonce = crypto.randomBytes(12);
    const cipher = crypto.createCipheriv('aes-256-gcm', key(label), nonce);
    cipher.setAAD(Buffer.from(aad));
    return Buffer.concat([nonce, cipher.update(plain), cipher.final(), cipher.getAuthTag()]);
  };
  const now = Math.floor(Date.now() / 1000);
  const id = crypto.randomBytes(32);
  const storageKey = `session:v1:${crypto.createHash('sha256').update(id).digest('hex')}`;
  const b64 = (v) => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url');
  // The ID token of the pipeline bench (benches/pipeline.rs); never verified again after sign-in.
  const idToken = [b64({ alg: 'ES256', kid: 'bench-es256', typ: 'JWT' }), b64({
    iss: ISSUER, sub: 'bench-user-1', aud: 'bench', exp: now + 3600, iat: now - 10, auth_time: now - 10,
    nonce: 'n-0S6_WzA2Mj', at_hash: '77QmUPtjPfzWtF2AnpK9RQ', sid: '9b1e0c3f-2d4a', name: 'Bench User',
    email: 'bench.user@example.com', email_verified: true,
    groups: ['readers', 'writers', 'b1c3e5f7-0a2b-4c6d-8e9f-0a1b2c3d4e5f', 'ops', 'finance-emea'],
  }), Buffer.alloc(64, 7).toString('base64url')].join('.');
  const record = {
    identity: { sub: 'bench-user-1', email: 'bench.user@example.com', email_verified: true, name: 'Bench User' },
    access_token: 'bench-access-token', access_expires_at: null, access_issued_at: null, refresh_token: null,
    id_token: idToken, created_at: now, expires_at: now + 8 * 3600,
  };
  const plain = Buffer.alloc(48);
  id.copy(plain, 0);
  plain.writeBigUInt64BE(BigInt(now + 8 * 3600), 32);
  plain.writeBigUInt64BE(BigInt(now + 3600), 40);
  return {
    cookie: `__Host-edgeguard=${seal('edgeguard cookie sealing v1', '__Host-edgeguard', plain).toString('base64url')}`,
    storageKey,
    sealedRecord: seal('edgeguard kv encryption v1', storageKey, Buffer.from(JSON.stringify(record))).toString('base64'),
  };
}

// The origin request edgeguard sends on a public route, as the load bench's Worker makes it.
const withXfwd = variants.includes('xfwd');
if (withXfwd) cpSync(path.join(ROOT, 'bench', 'load', 'workers', 'passthrough-xfwd.mjs'), path.join(OUT, 'passthrough-xfwd.mjs'));
const harness = `
${variants.filter((v) => builds[v] !== undefined).map((v) => `import ${v} from "./${v}/index.mjs";`).join('\n')}
${bearer ? 'import webcrypto from "./webcrypto.mjs";' : ''}
${withXfwd ? 'import xfwd from "./passthrough-xfwd.mjs";' : ''}
import tokenText from "./tokens.txt";
const tokens = tokenText.split('\\n');
const pass = {
  fetch(request, env) {
    const url = new URL(request.url);
    const headers = new Headers(request.headers);
    headers.delete('authorization');
    return fetch(env.ORIGIN_URL + url.pathname + url.search, { method: request.method, headers, body: request.body });
  },
};
const variants = { ${variants.join(', ')} };
const originFetch = globalThis.fetch;
export default {
  async fetch(request, env) {
    const q = new URL(request.url).searchParams;
    const worker = variants[q.get('v')];
    const n = Number(q.get('n'));
    const offset = Number(q.get('offset') ?? 0);
    // The provider's discovery and JWKS still go to the origin service (bearer mode).
    const stub = (input, init) => (String(input.url ?? input).includes('/issuer/') ? originFetch(input, init) : Promise.resolve(new Response('ok')));
    if (${stubFetch}) globalThis.fetch = stub;
    try {
      let status = 0;
      for (let i = 0; i < n; i++) {
        const headers = { host: '127.0.0.1:8787', 'user-agent': 'wrk' };
        if (${bearer}) headers.authorization = 'Bearer ' + tokens[offset + i];
        if (${JSON.stringify(session.cookie)}) headers.cookie = ${JSON.stringify(session.cookie)};
        const r = new Request('http://127.0.0.1:8787/hello?x=1', { headers });
        const response = await worker.fetch(r, env, {});
        status = response.status;
        await response.text();
      }
      return new Response(String(status));
    } finally {
      globalThis.fetch = originFetch;
    }
  },
};
`;
writeFileSync(path.join(OUT, 'harness.mjs'), harness);
const q = (v) => JSON.stringify(String(v));
const text = {
  OIDC_ISSUER: ISSUER,
  ISSUER,
  AUDIENCE,
  JWKS: JSON.stringify(jwks),
  OIDC_CLIENT_ID: 'bench',
  OIDC_CLIENT_SECRET: 'bench-client-secret-not-used',
  PUBLIC_URL: 'http://127.0.0.1:8787',
  ORIGIN_URL: 'http://127.0.0.1:9401',
  SESSION_SECRET: 'bench-session-secret-0123456789-abcdefghijklmnop',
  ROUTES: ROUTES[mode],
  API_AUDIENCES: AUDIENCE,
  LOG_FORWARDED: 'false',
  ...(twoProviders ? {
    PROVIDERS: JSON.stringify([{ name: 'partners', issuer: 'http://127.0.0.1:9/partners', client_id: 'p', client_secret_name: 'PARTNERS_SECRET' }]),
    PARTNERS_SECRET: 'bench-partners-secret-not-used',
  } : {}),
};
const modules = [`(name = "harness.mjs", esModule = embed "harness.mjs")`, `(name = "tokens.txt", text = embed "tokens.txt")`];
if (bearer) modules.push(`(name = "webcrypto.mjs", esModule = embed "webcrypto.mjs")`, `(name = "forward.mjs", esModule = embed "forward.mjs")`);
if (withXfwd) modules.push(`(name = "passthrough-xfwd.mjs", esModule = embed "passthrough-xfwd.mjs")`);
for (const v of variants.filter((v) => builds[v] !== undefined)) {
  modules.push(`(name = "${v}/index.mjs", esModule = embed "${v}/index.mjs")`);
  modules.push(`(name = "${v}/index.wasm", wasm = embed "${v}/index.wasm")`);
}
const bindings = Object.entries(text).map(([k, v]) => `(name = ${q(k)}, text = ${q(v)})`);
bindings.push(`(name = "SESSIONS", kvNamespace = "kv")`);
writeFileSync(
  path.join(OUT, 'kv.mjs'),
  // KV reads arrive as GET https://fake-host/<encoded key>: the session's record, nothing else.
  `const record = Uint8Array.from(atob(${JSON.stringify(session.sealedRecord)}), (c) => c.charCodeAt(0));
export default { fetch(request) {
  const key = decodeURIComponent(new URL(request.url).pathname.slice(1));
  return key === ${JSON.stringify(session.storageKey)} && request.method === 'GET' ? new Response(record) : new Response(null, { status: 404 });
} };`,
);
// The origin; it also answers edgeguard's discovery and JWKS fetches (the harness's global outbound).
const discovery = { issuer: ISSUER, authorization_endpoint: `${ISSUER}/authorize`, token_endpoint: `${ISSUER}/token`, jwks_uri: `${ISSUER}/jwks`,
  response_types_supported: ['code'], subject_types_supported: ['public'], id_token_signing_alg_values_supported: ['RS256', 'ES256'] };
writeFileSync(path.join(OUT, 'origin.mjs'), `const json = (b) => new Response(JSON.stringify(b), { headers: { 'content-type': 'application/json', 'cache-control': 'max-age=3600' } });
export default { fetch(request) {
  const p = new URL(request.url).pathname;
  if (p === '/issuer/.well-known/openid-configuration') return json(${JSON.stringify(discovery)});
  if (p === '/issuer/jwks') return json(${JSON.stringify(jwks)});
  return new Response('ok');
} };`);
writeFileSync(
  path.join(OUT, 'micro.capnp'),
  `using Workerd = import "/workerd/workerd.capnp";
const config :Workerd.Config = (
  services = [
    (name = "kv", worker = (modules = [(name = "kv.mjs", esModule = embed "kv.mjs")], compatibilityDate = "2025-09-01")),
    (name = "origin", worker = (modules = [(name = "origin.mjs", esModule = embed "origin.mjs")], compatibilityDate = "2025-09-01")),
    (name = "harness", worker = (modules = [${modules.join(', ')}], compatibilityDate = "2025-09-01", bindings = [${bindings.join(', ')}], globalOutbound = "origin"))
  ],
  v8Flags = [${v8Flags.map((f) => JSON.stringify(f)).join(', ')}],
  sockets = [ (name = "http", address = "127.0.0.1:${port}", http = (), service = "harness") ]
);
`,
);

// --perf FILE: a native profile of workerd (Linux `perf record -e cpu-clock -g`, V8's JIT code
// named through --perf-basic-prof) over the measured rounds; with --only V those rounds run only
// the variant V, so two runs (e.g. --only pass, --only a) compare where workerd's CPU goes,
// runtime internals included, which the V8 profile cannot see.
// Read it with `perf report -i FILE --no-children --sort dso,sym`.
const only = opt('only', undefined);
// --profile FILE: a V8 CPU profile (50 µs sampling) of the measured rounds, through workerd's
// inspector, for bench/profile/aggregate.mjs. Profiling inflates the µs; read shares from it.
const profileFile = opt('profile', undefined);
const inspectorPort = port + 1;
const workerdArgs = ['serve', path.join(OUT, 'micro.capnp'), ...(profileFile ? [`--inspector-addr=127.0.0.1:${inspectorPort}`] : [])];
// With V8 flags (e.g. --trace-gc), workerd's stdout is line-buffered so nothing is lost at exit.
const workerd = path.join(ROOT, 'node_modules', '.bin', 'workerd');
const child = spawn(v8Flags.length ? 'stdbuf' : workerd, v8Flags.length ? ['-oL', workerd, ...workerdArgs] : workerdArgs, {
  cwd: OUT, // --perf-basic-prof leaves V8 log files in the working directory
  stdio: ['ignore', 'inherit', 'inherit'],
});
process.on('exit', () => child.kill('SIGKILL'));
const cpuNs = () => {
  let total = 0;
  for (const tid of readdirSync(`/proc/${child.pid}/task`)) {
    try {
      total += Number(readFileSync(`/proc/${child.pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
    } catch {
      // thread gone
    }
  }
  return total;
};
const get = (p) =>
  new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: p }, (res) => {
      let body = '';
      res.on('data', (c) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode, body }));
    });
    req.on('error', reject);
  });
for (let i = 0; ; i++) {
  try {
    await get('/run?v=pass&n=1');
    break;
  } catch (e) {
    if (i > 300) throw e;
    await new Promise((r) => setTimeout(r, 100));
  }
}
const median = (xs) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)];
async function measure(v, count, offset = 0) {
  const before = cpuNs();
  const res = await get(`/run?v=${v}&n=${count}&offset=${offset}`);
  const used = cpuNs() - before;
  if (res.body !== '200') throw new Error(`${v}: ${res.status} ${res.body}`);
  return used / 1000 / count;
}
// --warmup N: requests per variant before measuring (default n). V8 runs a wasm function in its
// baseline tier (Liftoff) until it has executed ~13 MB of its code (--wasm-tiering-budget), so a
// function run once per request is optimised only after 10^4..10^6 requests: a short warm-up
// measures a young isolate, a long one a long-lived isolate.
const warmup = Number(opt('warmup', n));
for (const v of variants) {
  for (let done = 0; done < warmup; done += n) await measure(v, Math.min(n, warmup - done), 0);
}
let inspector;
if (profileFile) {
  const targets = await (await fetch(`http://127.0.0.1:${inspectorPort}/json`)).json();
  const ws = new WebSocket(targets.find((t) => t.title?.includes('harness'))?.webSocketDebuggerUrl ?? targets[0].webSocketDebuggerUrl);
  await new Promise((resolve) => ws.addEventListener('open', resolve, { once: true }));
  let id = 0;
  const pending = new Map();
  ws.addEventListener('message', (e) => {
    const m = JSON.parse(e.data);
    if (pending.has(m.id)) pending.get(m.id)(m.result);
  });
  inspector = (method, params = {}) =>
    new Promise((resolve) => {
      pending.set(++id, resolve);
      ws.send(JSON.stringify({ id, method, params }));
    });
  await inspector('Profiler.enable');
  await inspector('Profiler.setSamplingInterval', { interval: 50 });
  await inspector('Profiler.start');
}
let perf;
if (perfFile) {
  perf = spawn('perf', ['record', '-e', 'cpu-clock', '-F', '4999', '-g', '-k', 'CLOCK_MONOTONIC', '-p', String(child.pid), '-o', perfFile], { stdio: 'ignore' });
  await new Promise((r) => setTimeout(r, 1000));
}
const measured = only ? [only] : variants;
const results = Object.fromEntries(variants.map((v) => [v, []]));
// With --perf, when each variant's calls ran (CLOCK_MONOTONIC ns, perf's clock here): perf-split.py
// assigns every sample to the variant running then, so one interleaved run compares them.
const intervals = [];
for (let r = 0; r < rounds; r++) {
  for (const v of r % 2 ? [...measured].reverse() : measured) {
    const start = process.hrtime.bigint();
    results[v].push(await measure(v, n, (r + 1) * n));
    intervals.push([v, String(start), String(process.hrtime.bigint())]);
  }
}
if (perf) {
  perf.kill('SIGINT');
  await new Promise((r) => perf.on('exit', r));
  writeFileSync(`${perfFile}.n`, String(n * rounds));
  writeFileSync(`${perfFile}.intervals.json`, JSON.stringify({ n, intervals }));
  console.log(`perf: ${perfFile}, ${n * rounds} requests of ${measured.join(', ')}`);
}
if (only) {
  console.log(`${only}: ${median(results[only]).toFixed(2)} µs/req (median of ${rounds} rounds)`);
  child.kill('SIGTERM');
  process.exit(0);
}
if (inspector) {
  const { profile } = await inspector('Profiler.stop');
  writeFileSync(profileFile, JSON.stringify(profile));
  writeFileSync(`${profileFile}.n`, String(n * rounds));
}
child.kill('SIGTERM');
// Quartiles of the paired differences say how far to trust a median; best − best (the least
// disturbed round of each) is the second estimate on a busy machine.
const quantile = (xs, q) => [...xs].sort((x, y) => x - y)[Math.floor((xs.length - 1) * q)];
const spread = (xs) => `[${quantile(xs, 0.25).toFixed(1)}, ${quantile(xs, 0.75).toFixed(1)}]`;
console.log(`workerd, mode ${mode}${bearer ? ` ${alg}, ${repeat ? 'one token repeated' : 'every token new'}` : ''}${twoProviders ? ', route of two providers' : ''}${stubFetch ? ', fetch stubbed' : ''}, ${n} requests x ${rounds} rounds; µs/req: median, added over pass (paired median, its quartiles), best − best`);
for (const v of variants) {
  const added = results[v].map((x, i) => x - results.pass[i]);
  const label = { pass: 'pass-through JS', xfwd: "pass-through JS, edgeguard's origin request", webcrypto: 'JS crypto.subtle.verify (webcrypto.mjs)' }[v] ?? `${v}: ${builds[v]}`;
  const best = Math.min(...results[v]) - Math.min(...results.pass);
  console.log(`${label.padEnd(44)} ${median(results[v]).toFixed(2).padStart(8)} ${median(added).toFixed(2).padStart(8)} ${spread(added).padStart(16)} ${best.toFixed(2).padStart(8)}`);
}
for (const v of variants.filter((v) => builds.b && v !== 'b' && builds[v] !== undefined)) {
  const diff = results[v].map((x, i) => x - results.b[i]);
  const best = Math.min(...results[v]) - Math.min(...results.b);
  console.log(`${v} − b: paired median ${median(diff).toFixed(2)} µs/req, quartiles ${spread(diff)}, best − best ${best.toFixed(2)}`);
}
process.exit(0);
