// Each deployment shape README describes is a wrangler config that deploys as written: what
// `wrangler deploy --dry-run` would upload carries the static assets (the demo's wrangler.toml),
// the service binding and rate limits (deploy/api-gateway.toml), and in both the session KV and
// the Durable Object class exported by the Worker. Offline: a dry run needs no account.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { skipReason } from '../support/stack.mjs';

const root = path.resolve(import.meta.dirname, '../..');
const bin = path.join(root, 'node_modules/.bin');
const skip = skipReason();
// The dry run runs the [build] command (an incremental, already-built Worker: seconds).
const T = { timeout: 240_000, skip };

/** The binding lines of a dry run of `config`, e.g. `env.ASSETS  Assets`. */
async function dryRun(config) {
  const outdir = fs.mkdtempSync(path.join(os.tmpdir(), 'edgeguard-dry-run-'));
  try {
    const { stdout } = await promisify(execFile)(
      path.join(bin, 'wrangler'),
      ['deploy', '--dry-run', '--config', config, '--outdir', outdir],
      // node_modules/.bin first, as the scripts do: its `node` is the Node 22 wrangler needs.
      { cwd: root, env: { ...process.env, PATH: `${bin}:${process.env.PATH}`, WRANGLER_SEND_METRICS: 'false', NO_COLOR: '1' }, maxBuffer: 16 << 20 },
    );
    const exported = fs.readFileSync(path.join(outdir, 'index.mjs'), 'utf8');
    return { bindings: stdout.split('\n').filter((line) => line.startsWith('env.')), exported };
  } finally {
    fs.rmSync(outdir, { recursive: true, force: true });
  }
}

const has = (bindings, name, kind) =>
  assert.ok(bindings.some((l) => l.startsWith(`env.${name}`) && l.trimEnd().endsWith(kind)), `${name} (${kind}) in\n${bindings.join('\n')}`);

describe('deployment shapes', () => {
  test('static site (wrangler.toml): assets served through the gateway, KV sessions, a Durable Object per session', T, async () => {
    const { bindings, exported } = await dryRun('wrangler.toml');
    has(bindings, 'ASSETS', 'Assets');
    has(bindings, 'SESSIONS', 'KV Namespace');
    has(bindings, 'SESSION_OBJECTS (SessionObject)', 'Durable Object');
    assert.match(exported, /export\s*\{[^}]*SessionObject/, 'the Worker exports the Durable Object class');
    const toml = fs.readFileSync(path.join(root, 'wrangler.toml'), 'utf8');
    assert.match(toml, /^run_worker_first = true$/m, 'assets never bypass the gateway');
  });

  test('API gateway (deploy/api-gateway.toml): an internal API behind a service binding, rate limits, KV and the Durable Object', T, async () => {
    const { bindings } = await dryRun('deploy/api-gateway.toml');
    has(bindings, 'ORDERS_API (orders-api)', 'Worker');
    has(bindings, 'API_RATE_LIMIT', 'Rate Limit');
    has(bindings, 'AUTH_RATE_LIMIT', 'Rate Limit');
    has(bindings, 'SESSIONS', 'KV Namespace');
    has(bindings, 'SESSION_OBJECTS (SessionObject)', 'Durable Object');
    assert.ok(!bindings.some((l) => l.startsWith('env.ASSETS')), 'no static site in this shape');
  });
});
