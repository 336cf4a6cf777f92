// The local demo, started by scripts/dev.sh (run it through that, not directly): the demo OpenID
// provider (tests/support/idp.mjs), the demo origin (tests/support/origin.mjs) and `wrangler dev`
// with the Worker, on the fixed ports that wrangler.toml's [vars] name. Ctrl-C stops all three.
//
//   node scripts/dev.mjs [--https] [--check]
//     --https   serve the Worker on https://localhost:8787 (needed for Safari; see README)
//     --check   start everything, check /auth/health, stop, and exit 0 or 1 (used by the tests)
//
// One source of truth: OIDC_ISSUER, OIDC_CLIENT_ID, OIDC_RESOURCE, ORIGIN_URL and PUBLIC_URL come
// from wrangler.toml, OIDC_CLIENT_SECRET from .dev.vars; the provider and origin are started to
// match them.
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import http from "node:http";
import https from "node:https";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const args = new Set(process.argv.slice(2));
const useHttps = args.has("--https");
const checkOnly = args.has("--check");
for (const arg of args) {
  if (!["--https", "--check"].includes(arg)) fail(`unknown option ${arg}`);
}

const say = (line) => console.log(`==> ${line}`);
function fail(message) {
  console.error(`error: ${message}`);
  process.exit(1);
}

// ------------------------------------------------------------------ settings

/** The string values of one table of a simple TOML file (`KEY = "value"` lines). */
function tomlTable(text, table) {
  const values = {};
  let current = null;
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    const header = line.match(/^\[([^\]]+)\]$/);
    if (header) {
      current = header[1].trim();
      continue;
    }
    const pair = line.match(/^([A-Za-z0-9_]+)\s*=\s*"((?:[^"\\]|\\.)*)"\s*(#.*)?$/);
    if (current === table && pair) values[pair[1]] = JSON.parse(`"${pair[2]}"`);
  }
  return values;
}

/** KEY=value lines of a .dev.vars (dotenv) file. */
function dotenv(text) {
  const values = {};
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (!line || line.startsWith("#")) continue;
    const eq = line.indexOf("=");
    if (eq < 0) continue;
    let value = line.slice(eq + 1).trim();
    if (/^(["']).*\1$/.test(value)) value = value.slice(1, -1);
    values[line.slice(0, eq).trim()] = value;
  }
  return values;
}

const vars = tomlTable(readFileSync(join(root, "wrangler.toml"), "utf8"), "vars");
const secrets = dotenv(readFileSync(join(root, ".dev.vars"), "utf8"));
for (const name of ["OIDC_ISSUER", "OIDC_CLIENT_ID", "ORIGIN_URL", "PUBLIC_URL"]) {
  if (!vars[name]) fail(`wrangler.toml [vars] has no ${name}`);
}
const issuer = new URL(vars.OIDC_ISSUER);
const origin = new URL(vars.ORIGIN_URL);
const publicUrl = new URL(vars.PUBLIC_URL);
if (useHttps) publicUrl.protocol = "https:";
const publicBase = publicUrl.origin;
for (const [name, url] of [["OIDC_ISSUER", issuer], ["ORIGIN_URL", origin]]) {
  if (url.protocol !== "http:" || !["127.0.0.1", "localhost"].includes(url.hostname) || !url.port) {
    fail(`the local demo needs ${name} = "http://127.0.0.1:<port>" in wrangler.toml, not ${url}`);
  }
}

// ------------------------------------------------------------------ processes

const stoppers = [];
let wrangler = null;
let stopping = false;

async function stopAll(code) {
  if (stopping) return;
  stopping = true;
  if (wrangler && wrangler.exitCode === null && wrangler.signalCode === null) {
    const exited = new Promise((resolve) => wrangler.once("exit", resolve));
    // wrangler stops its workerd itself on SIGINT; its whole process group gets SIGKILL only if
    // it has not exited after 5 s.
    wrangler.kill("SIGINT");
    const timer = setTimeout(() => {
      try {
        process.kill(-wrangler.pid, "SIGKILL");
      } catch {
        // already gone
      }
    }, 5000);
    await exited;
    clearTimeout(timer);
  }
  for (const stop of stoppers.reverse()) await stop().catch(() => {});
  process.exit(code);
}

process.on("SIGINT", () => {
  console.log("\n==> stopping");
  stopAll(130);
});
process.on("SIGTERM", () => stopAll(143));

async function startProvider() {
  const { startIdp } = await import(pathToFileURL(join(root, "tests/support/idp.mjs")).href);
  const idp = await startIdp({
    host: issuer.hostname,
    port: Number(issuer.port),
    clientId: vars.OIDC_CLIENT_ID,
    clientSecret: secrets.OIDC_CLIENT_SECRET,
    ...(vars.OIDC_RESOURCE ? { resource: vars.OIDC_RESOURCE } : {}),
    redirectUris: [`${publicBase}/auth/callback`],
    postLogoutRedirectUris: [`${publicBase}/`],
  });
  stoppers.push(() => idp.close());
  if (idp.issuer !== vars.OIDC_ISSUER) {
    fail(`the demo provider's issuer is ${idp.issuer}, but wrangler.toml says OIDC_ISSUER = "${vars.OIDC_ISSUER}"`);
  }
  return idp;
}

async function startDemoOrigin() {
  const { startOrigin } = await import(pathToFileURL(join(root, "tests/support/origin.mjs")).href);
  const server = await startOrigin({ host: origin.hostname, port: Number(origin.port) });
  stoppers.push(() => server.close());
}

function startWrangler() {
  const bin = join(root, "node_modules/.bin/wrangler");
  const wranglerArgs = ["dev", "--show-interactive-dev-session=false"];
  if (useHttps) {
    wranglerArgs.push("--local-protocol", "https", "--var", `PUBLIC_URL:${publicBase}`);
  }
  wrangler = spawn(bin, wranglerArgs, {
    cwd: root,
    stdio: ["ignore", "inherit", "inherit"],
    // Its own process group: a Ctrl-C in the terminal reaches only this script, which then
    // stops wrangler, the provider and the origin in order.
    detached: true,
    env: { ...process.env, WRANGLER_SEND_METRICS: "false", CLOUDFLARE_CF_FETCH_ENABLED: "false" },
  });
  wrangler.once("exit", (code, signal) => {
    if (!stopping) {
      console.error(`error: wrangler dev exited (${signal ?? `code ${code}`})`);
      stopAll(1);
    }
  });
}

/** GET a URL; resolves { status, body }, or null when nothing answers. Accepts wrangler's self-signed certificate. */
function get(url) {
  const client = url.startsWith("https:") ? https : http;
  return new Promise((resolve) => {
    const req = client.get(url, { rejectUnauthorized: false, timeout: 5000 }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (chunk) => (body += chunk));
      res.on("end", () => resolve({ status: res.statusCode, body }));
    });
    req.on("timeout", () => req.destroy());
    req.on("error", () => resolve(null));
  });
}

// ------------------------------------------------------------------ main

function portInUse(port) {
  return new Promise((resolve) => {
    const probe = http.createServer();
    probe.once("error", () => resolve(true));
    probe.listen(port, "127.0.0.1", () => probe.close(() => resolve(false)));
  });
}

const gatewayPort = Number(publicUrl.port || 8787);
for (const [what, port] of [["the demo provider", Number(issuer.port)], ["the demo origin", Number(origin.port)], ["wrangler dev", gatewayPort]]) {
  if (await portInUse(port)) fail(`port ${port} (for ${what}) is in use; is another ./scripts/dev.sh running?`);
}

const started = Date.now();
await startProvider();
say(`demo OpenID provider on ${vars.OIDC_ISSUER}`);
await startDemoOrigin();
say(`demo origin on ${vars.ORIGIN_URL}`);
say("starting wrangler dev");
startWrangler();

const health = `${publicBase}/auth/health`;
let answer = null;
const deadline = Date.now() + 180_000;
while (!stopping && Date.now() < deadline) {
  answer = await get(health);
  if (answer) break;
  await new Promise((resolve) => setTimeout(resolve, 250));
}
if (stopping) await new Promise(() => {}); // exiting
if (!answer) {
  console.error(`error: ${health} did not answer within 3 minutes`);
  await stopAll(1);
}
if (answer.status !== 200) {
  console.error(`\nerror: ${health} answered ${answer.status}; the Worker's settings need fixing:\n`);
  console.error(answer.body.trim());
  console.error("\n(settings: [vars] in wrangler.toml, secrets in .dev.vars; README \"Settings\" describes each)");
  await stopAll(1);
}

const seconds = ((Date.now() - started) / 1000).toFixed(1);
if (checkOnly) {
  say(`${health} answered 200 after ${seconds} s: the demo works`);
  await stopAll(0);
}
const users = ["alice", "bob"].map((u) => `${u} / ${u}`).join(", ");
console.log(`
==> edgeguard is ready after ${seconds} s

    Open      ${publicBase}/  (a static page from the Worker's assets, public/, behind sign-in)
    Sign in   ${users}   (the demo provider at ${vars.OIDC_ISSUER})
    API       ${publicBase}${(vars.API_PATH_PREFIXES || "/api/").split(/[\s,]+/)[0]}  (401 without a session or bearer token)
    Sign out  ${publicBase}/auth/logout

    Edits under src/ rebuild and reload the Worker. Ctrl-C stops everything.
`);
