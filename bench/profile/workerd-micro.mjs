// CPU per request of edgeguard builds inside workerd, without an HTTP client: one harness Worker
// imports the JS pass-through and one or two bundled builds (index.mjs + index.wasm, as
// build/worker/ holds them) and, per call of /run?v=NAME&n=N, sends N requests through that
// variant's `fetch`, each forwarded to an "origin" service in the same workerd (the harness's
// global outbound, as in the load bench) and its body read. workerd's CPU (schedstat, all
// threads) around each call, divided by N, is the variant's CPU per request; rounds alternate
// the variants, and "added" is the paired median over the pass-through. Less noise than the load
// bench on a busy machine (no client, no sockets), and an A/B of two builds in one process.
//
//   npx node bench/profile/workerd-micro.mjs --a build/worker [--b DIR] [--mode public|session]
//                                            [--n 500] [--rounds 9] [--stub-fetch]
//                                            [--profile FILE.cpuprofile]
//
// --n stays under workerd's 1000 subrequests per request. --stub-fetch replaces the global
// `fetch` with one answering 200 "ok" at once (no subrequest): what is left is the Worker's own
// work. To compare against main, copy build/worker/ of a main build to a directory and pass it
// as --b. A and B are copied to build/micro/.
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
const builds = { a: opt('a', 'build/worker'), b: opt('b', undefined) };
const port = 18000 + (process.pid % 1000);
const stubFetch = args.includes('--stub-fetch');

rmSync(OUT, { recursive: true, force: true });
const variants = ['pass', 'xfwd'];
for (const [name, dir] of Object.entries(builds)) {
  if (!dir) continue;
  mkdirSync(path.join(OUT, name), { recursive: true });
  for (const f of ['index.mjs', 'index.wasm']) cpSync(path.resolve(ROOT, dir, f), path.join(OUT, name, f));
  variants.push(name);
}

const ROUTES = { public: '[{"prefix":"/","auth":"public"}]', session: '[{"prefix":"/","auth":"session"}]' };
const harness = `
${variants.filter((v) => builds[v] !== undefined).map((v) => `import ${v} from "./${v}/index.mjs";`).join('\n')}
const pass = {
  fetch(request, env) {
    const url = new URL(request.url);
    const headers = new Headers(request.headers);
    headers.delete('authorization');
    return fetch(env.ORIGIN_URL + url.pathname + url.search, { method: request.method, headers, body: request.body });
  },
};
// bench/load/workers/passthrough-xfwd.mjs: the origin request edgeguard sends on a public route.
const xfwd = {
  fetch(request, env) {
    const url = new URL(request.url);
    const headers = new Headers(request.headers);
    headers.delete('authorization');
    headers.delete('host');
    headers.set('x-forwarded-host', url.host);
    headers.set('x-forwarded-proto', url.protocol.slice(0, -1));
    return fetch(env.ORIGIN_URL + url.pathname + url.search, { method: request.method, headers, body: request.body, redirect: 'manual' });
  },
};
const variants = { ${variants.join(', ')} };
const originFetch = globalThis.fetch;
export default {
  async fetch(request, env) {
    const q = new URL(request.url).searchParams;
    const worker = variants[q.get('v')];
    const n = Number(q.get('n'));
    if (${stubFetch}) globalThis.fetch = () => Promise.resolve(new Response('ok'));
    try {
      let status = 0;
      for (let i = 0; i < n; i++) {
        const r = new Request('http://127.0.0.1:8787/hello?x=1', { headers: { host: '127.0.0.1:8787', 'user-agent': 'wrk' } });
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
  OIDC_ISSUER: 'http://127.0.0.1:9/issuer',
  OIDC_CLIENT_ID: 'bench',
  OIDC_CLIENT_SECRET: 'bench-client-secret-not-used',
  PUBLIC_URL: 'http://127.0.0.1:8787',
  ORIGIN_URL: 'http://127.0.0.1:9401',
  SESSION_SECRET: 'bench-session-secret-0123456789-abcdefghijklmnop',
  ROUTES: ROUTES[mode],
  API_AUDIENCES: 'bench-api',
  LOG_FORWARDED: 'false',
};
const modules = [`(name = "harness.mjs", esModule = embed "harness.mjs")`];
for (const v of variants.filter((v) => builds[v] !== undefined)) {
  modules.push(`(name = "${v}/index.mjs", esModule = embed "${v}/index.mjs")`);
  modules.push(`(name = "${v}/index.wasm", wasm = embed "${v}/index.wasm")`);
}
const bindings = Object.entries(text).map(([k, v]) => `(name = ${q(k)}, text = ${q(v)})`);
bindings.push(`(name = "SESSIONS", kvNamespace = "kv")`);
writeFileSync(
  path.join(OUT, 'kv.mjs'),
  `export default { fetch() { return new Response(null, { status: 404 }); } };`,
);
writeFileSync(path.join(OUT, 'origin.mjs'), `export default { fetch() { return new Response('ok'); } };`);
writeFileSync(
  path.join(OUT, 'micro.capnp'),
  `using Workerd = import "/workerd/workerd.capnp";
const config :Workerd.Config = (
  services = [
    (name = "kv", worker = (modules = [(name = "kv.mjs", esModule = embed "kv.mjs")], compatibilityDate = "2025-09-01")),
    (name = "origin", worker = (modules = [(name = "origin.mjs", esModule = embed "origin.mjs")], compatibilityDate = "2025-09-01")),
    (name = "harness", worker = (modules = [${modules.join(', ')}], compatibilityDate = "2025-09-01", bindings = [${bindings.join(', ')}], globalOutbound = "origin"))
  ],
  sockets = [ (name = "http", address = "127.0.0.1:${port}", http = (), service = "harness") ]
);
`,
);

// --profile FILE: a V8 CPU profile (50 µs sampling) of the measured rounds, through workerd's
// inspector, for bench/profile/aggregate.mjs. Profiling inflates the µs; read shares from it.
const profileFile = opt('profile', undefined);
const inspectorPort = port + 1;
const workerdArgs = ['serve', path.join(OUT, 'micro.capnp'), ...(profileFile ? [`--inspector-addr=127.0.0.1:${inspectorPort}`] : [])];
const child = spawn(path.join(ROOT, 'node_modules', '.bin', 'workerd'), workerdArgs, {
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
    if (i > 100) throw e;
    await new Promise((r) => setTimeout(r, 100));
  }
}
async function measure(v, count) {
  const before = cpuNs();
  const res = await get(`/run?v=${v}&n=${count}`);
  const used = cpuNs() - before;
  if (res.body !== '200') throw new Error(`${v}: ${res.status} ${res.body}`);
  return used / 1000 / count;
}
for (const v of variants) await measure(v, Math.min(n, 2000));
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
const results = Object.fromEntries(variants.map((v) => [v, []]));
for (let r = 0; r < rounds; r++) {
  for (const v of r % 2 ? [...variants].reverse() : variants) results[v].push(await measure(v, n));
}
if (inspector) {
  const { profile } = await inspector('Profiler.stop');
  writeFileSync(profileFile, JSON.stringify(profile));
  writeFileSync(`${profileFile}.n`, String(n * rounds));
}
child.kill('SIGTERM');
const median = (xs) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)];
console.log(`workerd, mode ${mode}${stubFetch ? ', fetch stubbed' : ''}, ${n} requests x ${rounds} rounds; µs/req: median, added over pass (paired median)`);
for (const v of variants) {
  const added = results[v].map((x, i) => x - results.pass[i]);
  const label = { pass: 'pass-through JS', xfwd: "pass-through JS, edgeguard's origin request" }[v] ?? `${v}: ${builds[v]}`;
  console.log(`${label.padEnd(44)} ${median(results[v]).toFixed(2).padStart(8)} ${median(added).toFixed(2).padStart(8)}`);
}
if (builds.b) {
  const diff = results.a.map((x, i) => x - results.b[i]);
  console.log(`a − b (paired median): ${median(diff).toFixed(2)} µs/req; per round: ${diff.map((d) => d.toFixed(1)).join(' ')}`);
}
process.exit(0);
