// Runs the built edgeguard Worker (build/worker/index.mjs + its .wasm) in workerd through Miniflare 4,
// listening on 127.0.0.1 so a real HTTP client can talk to it, and captures the Worker's console output
// (one JSON line per decision, with a "reason" field).
//
//   const worker = await startWorker({ vars, secrets, port });
//   worker.url, await worker.dispatchFetch(url, init), worker.logs(), worker.reasons(),
//   await worker.waitForLog((e) => e.json?.reason === 'state_mismatch'), await worker.close()
//   await worker.sessionKeys()  // KV keys of the stored sessions (session:v1:...)
//
// With kvPersist: '/some/dir' the KV namespace lives on disk, so a second Worker started with the same
// folder (after close(), e.g. with another SESSION_SECRET) sees the sessions of the first.

import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import { track, untrack } from './leftovers.mjs';

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
// EDGEGUARD_WORKER_SCRIPT points the suites at another build of the Worker (its folder is the modules root).
export const WORKER_SCRIPT = process.env.EDGEGUARD_WORKER_SCRIPT
  ? path.resolve(process.env.EDGEGUARD_WORKER_SCRIPT)
  : path.join(REPO_ROOT, 'build', 'worker', 'index.mjs');
export const WORKER_DIR = path.dirname(WORKER_SCRIPT);

/** How long workerd may take to start before startWorker gives up (a busy 2-core machine: seconds). */
const READY_TIMEOUT_MS = 60_000;

/** Why the built Worker cannot be run, or null when it can. */
export function workerBuildMissing(scriptPath = WORKER_SCRIPT) {
  if (fs.existsSync(scriptPath)) return null;
  return `${path.relative(REPO_ROOT, scriptPath)} is missing: build the Worker first with \`bash scripts/build-worker.sh\``;
}

/** A TCP port that was free a moment ago on 127.0.0.1. */
export async function freePort(host = '127.0.0.1') {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.once('error', reject);
    srv.listen(0, host, () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/**
 * A Worker with valid settings whose provider and origin are unreachable (127.0.0.1:9): for start-up checks and the
 * gateway's own endpoints, which need no provider. `vars` and `secrets` add to or override the base (undefined
 * removes one); the other options go to startWorker.
 */
export async function startProviderlessWorker({ vars = {}, secrets = {}, ...options } = {}) {
  const port = await freePort();
  const defined = (o) => Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined));
  return startWorker({
    port,
    vars: defined({
      OIDC_ISSUER: 'http://127.0.0.1:9',
      OIDC_CLIENT_ID: 'edgeguard',
      PUBLIC_URL: `http://127.0.0.1:${port}`,
      ORIGIN_URL: 'http://127.0.0.1:9',
      ...vars,
    }),
    secrets: defined({
      OIDC_CLIENT_SECRET: 'client-secret-value-123',
      SESSION_SECRET: crypto.randomBytes(32).toString('hex'),
      ...secrets,
    }),
    ...options,
  });
}

/**
 * @param {object} options
 * @param {Record<string,string>} [options.vars] Worker vars
 * @param {Record<string,string>} [options.secrets] Worker secrets (bound the same way as vars)
 * @param {number} [options.port] default: a free port
 * @param {string} [options.host] default 127.0.0.1
 * @param {string} [options.scriptPath] default build/worker/index.mjs
 * @param {string} [options.modulesRoot] default the script's folder
 * @param {string} [options.compatibilityDate] default 2025-09-01
 * @param {string[]} [options.compatibilityFlags]
 * @param {boolean} [options.echo] also print the Worker's output to stderr (default: when DEBUG is set)
 * @param {string} [options.kvPersist] folder for the KV data (default: in memory, gone with the Worker)
 * @param {{ directory: string, binding?: string, runWorkerFirst?: boolean }} [options.assets] Workers Static
 *   Assets from `directory`, bound as `binding` (wrangler.toml's [assets]); `runWorkerFirst` (default true)
 *   is `run_worker_first`: false lets the runtime serve matching files without running the Worker
 * @param {Record<string,string>} [options.services] service bindings: binding name -> name of a worker in
 *   `workers` (wrangler.toml's [[services]])
 * @param {Record<string,{ namespace_id: string, simple: { limit: number, period: number } }>} [options.ratelimits] Workers
 *   rate-limiting bindings (wrangler.toml's [[ratelimits]]), e.g. { AUTH_RATE_LIMIT: { namespace_id: "1001", simple: { limit: 3, period: 60 } } }
 * @param {{ name: string, script: string }[]} [options.workers] more Workers (ES module source), run beside
 *   this one in the same workerd
 * @param {Record<string,string>} [options.durableObjects] Durable Object bindings: binding name -> class name
 *   exported by the Worker (wrangler.toml's [[durable_objects.bindings]]; SQLite-backed, as new_sqlite_classes)
 * @param {number} [options.replicas] more copies of the Worker (separate isolates: own memory, own wasm
 *   instance), each on its own port, sharing KV and the Durable Objects of this one; their URLs are in
 *   `replicaUrls`
 */
export async function startWorker({
  vars = {},
  secrets = {},
  port,
  host = '127.0.0.1',
  scriptPath = WORKER_SCRIPT,
  modulesRoot,
  compatibilityDate = '2025-09-01',
  compatibilityFlags = [],
  echo = Boolean(process.env.DEBUG),
  kvPersist,
  assets,
  services,
  ratelimits,
  workers = [],
  durableObjects,
  replicas = 0,
} = {}) {
  const missing = workerBuildMissing(scriptPath);
  if (missing) throw new Error(missing);

  const entries = [];
  const waiters = new Set();
  const onLine = (stream, line) => {
    if (!line.trim()) return;
    let json = null;
    const brace = line.indexOf('{');
    if (brace >= 0) {
      try {
        json = JSON.parse(line.slice(brace));
      } catch {
        json = null;
      }
    }
    const entry = { stream, line, json, at: Date.now() };
    entries.push(entry);
    if (echo) process.stderr.write(`[worker ${stream}] ${line}\n`);
    for (const w of waiters) {
      if (w.pred(entry)) {
        waiters.delete(w);
        w.resolve(entry);
      }
    }
  };

  // Imported here, not at the top: loading Miniflare takes about a second, wasted when suites skip.
  const { Miniflare, Log, LogLevel } = await import('miniflare');
  const gateway = {
    name: 'edgeguard',
    modules: true,
    modulesRoot: modulesRoot ?? path.dirname(scriptPath),
    scriptPath,
    modulesRules: [{ type: 'CompiledWasm', include: ['**/*.wasm'] }],
    compatibilityDate,
    compatibilityFlags,
    bindings: { ...vars, ...secrets },
    kvNamespaces: ['SESSIONS'],
    ...(assets ? {
      assets: {
        directory: assets.directory,
        binding: assets.binding ?? 'ASSETS',
        routerConfig: { invoke_user_worker_ahead_of_assets: assets.runWorkerFirst ?? true, has_user_worker: true },
      },
    } : {}),
    ...(services ? { serviceBindings: services } : {}),
    ...(ratelimits ? { ratelimits } : {}),
    ...(durableObjects ? {
      durableObjects: Object.fromEntries(Object.entries(durableObjects)
        .map(([binding, className]) => [binding, { className, useSQLite: true }])),
    } : {}),
  };
  const others = workers.map(({ name, script }) => ({ name, modules: true, script, compatibilityDate }));
  const copiesAt = (replicaPorts) => replicaPorts.map((p, i) => ({
    ...gateway,
    name: `edgeguard-replica-${i + 1}`,
    unsafeDirectSockets: [{ host, port: p }],
    ...(durableObjects ? {
      durableObjects: Object.fromEntries(Object.entries(durableObjects)
        .map(([binding, className]) => [binding, { className, scriptName: gateway.name, useSQLite: true }])),
    } : {}),
  }));
  const launch = (listenPort, replicaPorts) => new Miniflare({
    host,
    port: listenPort,
    workers: [gateway, ...others, ...copiesAt(replicaPorts)],
    ...(kvPersist ? { kvPersist } : {}),
    cf: false, // no network: don't fetch the Request.cf cache
    log: echo ? new Log(LogLevel.DEBUG) : new Log(LogLevel.WARN),
    handleRuntimeStdio(stdout, stderr) {
      readline.createInterface({ input: stdout, crlfDelay: Infinity }).on('line', (l) => onLine('stdout', l));
      readline.createInterface({ input: stderr, crlfDelay: Infinity }).on('line', (l) => onLine('stderr', l));
    },
  });
  // A free port can be taken by another process between freePort() and workerd's bind (other
  // suites, other test runs on the machine): then start again on fresh ports, a few times.
  let mf;
  let handle;
  let listenPort;
  let replicaPorts;
  let readyUrl;
  for (let attempt = 1; ; attempt += 1) {
    // eslint-disable-next-line no-await-in-loop
    listenPort = port ?? await freePort(host);
    // eslint-disable-next-line no-await-in-loop
    replicaPorts = await Promise.all(Array.from({ length: replicas }, () => freePort(host)));
    const started = launch(listenPort, replicaPorts);
    mf = started;
    // Until close(), the file's root `after` disposes of it (see leftovers.mjs), also while starting.
    handle = track({ close: () => started.dispose() });
    let timer;
    try {
      const timeout = new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`workerd did not start within ${READY_TIMEOUT_MS} ms`)), READY_TIMEOUT_MS);
      });
      // eslint-disable-next-line no-await-in-loop
      readyUrl = await Promise.race([started.ready, timeout]);
      break;
    } catch (err) {
      untrack(handle);
      // eslint-disable-next-line no-await-in-loop
      await started.dispose().catch(() => {});
      const portTaken = err?.code === 'ERR_ADDRESS_IN_USE' || /Address already in use/.test(String(err?.message));
      if (!portTaken || port !== undefined || attempt >= 3) throw err;
    } finally {
      clearTimeout(timer);
    }
  }
  const url = `http://${host}:${readyUrl.port || listenPort}`;

  return {
    url,
    port: Number(readyUrl.port || listenPort),
    /** The replicas' base URLs (`replicas`), in order. */
    replicaUrls: replicaPorts.map((p) => `http://${host}:${p}`),
    mf,
    /** Miniflare's in-process dispatch (bypasses the socket; the Worker still sees the given URL). */
    dispatchFetch: (input, init) => mf.dispatchFetch(input, init),
    /** Everything the Worker printed: [{ stream, line, json (parsed JSON object or null), at }]. */
    logs() { return entries.slice(); },
    /** The parsed JSON log lines only. */
    jsonLogs() { return entries.filter((e) => e.json).map((e) => e.json); },
    /** The "reason" field of every JSON log line, in order. */
    reasons() { return entries.map((e) => e.json?.reason).filter((r) => r !== undefined); },
    clearLogs() { entries.length = 0; },
    /**
     * Resolves with the first log entry (already printed or yet to come) for which pred(entry) is true;
     * rejects after timeoutMs. Output arrives through a pipe, a few ms after the HTTP answer.
     */
    waitForLog(pred, { timeoutMs = 2000 } = {}) {
      const hit = entries.find(pred);
      if (hit) return Promise.resolve(hit);
      return new Promise((resolve, reject) => {
        const w = { pred, resolve };
        const t = setTimeout(() => {
          waiters.delete(w);
          reject(new Error(`no matching Worker log line within ${timeoutMs} ms; got:\n${entries.map((e) => e.line).join('\n')}`));
        }, timeoutMs);
        w.resolve = (e) => { clearTimeout(t); resolve(e); };
        waiters.add(w);
      });
    },
    /** The SESSIONS KV namespace, from outside the Worker (get/put/list/delete). */
    kv() { return mf.getKVNamespace('SESSIONS'); },
    /** Names of the KV keys under `prefix` (default the session records, session:v1:). */
    async sessionKeys(prefix = 'session:v1:') {
      const ns = await mf.getKVNamespace('SESSIONS');
      const names = [];
      let cursor;
      do {
        // eslint-disable-next-line no-await-in-loop
        const page = await ns.list({ prefix, cursor });
        names.push(...page.keys.map((k) => k.name));
        cursor = page.list_complete ? undefined : page.cursor;
      } while (cursor);
      return names;
    },
    async close() {
      untrack(handle);
      await mf.dispose();
    },
  };
}
