// Exits 0 when node_modules matches package.json and package-lock.json, 1 (with the reason on
// stderr) when `npm ci` should run. Works with any Node >= 18, so setup can run it before the
// Node 22 from node_modules exists.
//
// npm writes node_modules/.package-lock.json (its "hidden lockfile") after every install; we
// compare it with package-lock.json entry by entry, and package.json's dependencies with the
// lockfile's root entry (a dependency added to package.json without `npm install`).
import { readFileSync } from "node:fs";
import { join } from "node:path";

const root = new URL("..", import.meta.url).pathname;
const read = (path) => JSON.parse(readFileSync(join(root, path), "utf8"));

function stale(reason) {
  process.stderr.write(`node_modules is stale: ${reason}\n`);
  process.exit(1);
}

let manifest, lock, installed;
try {
  manifest = read("package.json");
  lock = read("package-lock.json");
} catch (error) {
  stale(`cannot read package.json or package-lock.json (${error.message})`);
}
try {
  installed = read("node_modules/.package-lock.json");
} catch {
  stale("node_modules is missing or was not installed by npm");
}

const rootEntry = lock.packages?.[""] ?? {};
for (const field of ["dependencies", "devDependencies", "optionalDependencies"]) {
  const want = manifest[field] ?? {};
  const have = rootEntry[field] ?? {};
  const names = new Set([...Object.keys(want), ...Object.keys(have)]);
  for (const name of names) {
    if (want[name] !== have[name]) {
      stale(`package.json ${field}.${name} is ${want[name] ?? "absent"} but package-lock.json has ${have[name] ?? "nothing"}`);
    }
  }
}

for (const [path, entry] of Object.entries(lock.packages ?? {})) {
  if (path === "") continue;
  const got = installed.packages?.[path];
  // Optional packages for other platforms (esbuild, workerd, sharp builds) are never installed.
  if (!got) {
    if (entry.optional) continue;
    stale(`${path} is not installed`);
  }
  if (got.version !== entry.version) stale(`${path} is ${got.version}, the lockfile wants ${entry.version}`);
}
for (const path of Object.keys(installed.packages ?? {})) {
  if (!lock.packages?.[path]) stale(`${path} is installed but not in package-lock.json`);
}
