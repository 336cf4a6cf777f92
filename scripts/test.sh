#!/usr/bin/env bash
# Runs every check CI runs, in order, and prints a summary. Exits non-zero if any failed.
#
#   setup                  scripts/setup.sh (installs what is missing)
#   format                 cargo fmt --check
#   clippy (host)          cargo clippy --all-targets -- -D warnings
#   clippy (wasm32)        cargo clippy --target wasm32-unknown-unknown --lib -- -D warnings
#   unit tests             cargo test
#   worker build + size    scripts/build-worker.sh --check-size (gzip budget 340 000 bytes)
#   demo smoke             scripts/dev.sh --check: wrangler dev with the demo settings answers
#                          /auth/health with 200
#   test harness           node --test tests/harness/*.test.mjs (self-tests of tests/support)
#   end-to-end             node --test tests/e2e/*.test.mjs (the built Worker in Miniflare, with
#                          the demo provider and origin)
#   browser                node --test tests/browser/*.test.mjs: a person in Debian's Chromium
#                          (scripts/setup.sh --browser installs it; skipped, saying so, without it)
#   fuzz                   scripts/fuzz.sh: builds the fuzz targets (fuzz/, cargo fuzz) and runs
#                          each for 20 s; fails on any crash (about 3 min, or 6 on a cold build)
#
# A failing check does not stop the later ones, except that the demo, harness and end-to-end
# tests need the worker build. On a warm machine the whole run takes under a minute plus the
# 2 min of fuzzing; a fresh machine first spends 3-10 min compiling the wasm-bindgen CLI and
# about 3 min compiling cargo-fuzz (see scripts/setup.sh).
#
# Usage: scripts/test.sh
set -euo pipefail

# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

case "${1:-}" in
  "") ;;
  -h | --help)
    sed -n '2,25p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
    exit 0
    ;;
  *) die "unknown option '$1' (try --help)" ;;
esac

cd "$EDGEGUARD_ROOT"
started="$(now)"
results=()
failed=0

# step NAME COMMAND...: runs COMMAND, records ok/FAIL and its duration. Returns its status.
step() {
  local name="$1" t rc=0
  shift
  printf '\n==> [%s] %s\n' "$name" "$*" >&2
  t="$(now)"
  "$@" || rc=$?
  if [ "$rc" -eq 0 ]; then
    results+=("$(printf 'ok     %-22s %8s' "$name" "$(since "$t")")")
  else
    results+=("$(printf 'FAIL   %-22s %8s   (exit %d: %s)' "$name" "$(since "$t")" "$rc" "$*")")
    failed=1
  fi
  return "$rc"
}
skip() {
  results+=("$(printf 'skip   %-22s %8s   (%s)' "$1" "" "$2")")
}
# shellcheck disable=SC2317 # called by the EXIT trap
summary() {
  printf '\n==> summary (%s)\n' "$(since "$started")" >&2
  printf '    %s\n' "${results[@]}" >&2
  if [ "$failed" -ne 0 ]; then
    printf '\nFAILED\n' >&2
  else
    printf '\nall checks passed\n' >&2
  fi
}
trap summary EXIT

if ! step "setup" bash scripts/setup.sh; then
  exit 1
fi
use_cargo_bin
use_local_node
note "$(rustc --version), $(cargo --version)"
note "wasm-bindgen $(wasm_bindgen_cli_version), node $(node --version), wrangler $(wrangler --version 2>/dev/null | tail -1)"

step "format" cargo fmt --check || true
step "clippy (host)" cargo clippy --all-targets -- -D warnings || true
step "clippy (wasm32)" cargo clippy --target wasm32-unknown-unknown --lib -- -D warnings || true
step "unit tests" cargo test || true

if step "worker build + size" bash scripts/build-worker.sh --check-size; then
  export WRANGLER_SEND_METRICS=false CLOUDFLARE_CF_FETCH_ENABLED=false
  if [ "${CI:-}" != "true" ] && (: </dev/tcp/127.0.0.1/8787) 2>/dev/null; then
    skip "demo smoke" "port 8787 is busy: is ./scripts/dev.sh running?"
  else
    step "demo smoke" timeout 300 bash scripts/dev.sh --check || true
  fi

  shopt -s nullglob globstar
  harness=(tests/harness/**/*.test.mjs)
  e2e=(tests/e2e/**/*.test.mjs)
  browser=(tests/browser/**/*.test.mjs)
  shopt -u nullglob globstar
  if [ "${#harness[@]}" -gt 0 ]; then
    step "test harness" timeout 600 node --test --test-concurrency=1 "${harness[@]}" || true
  else
    skip "test harness" "no tests/harness/*.test.mjs"
  fi
  if [ "${#e2e[@]}" -gt 0 ]; then
    step "end-to-end" timeout 900 node --test --test-concurrency=1 "${e2e[@]}" || true
  else
    skip "end-to-end" "no tests/e2e/*.test.mjs"
  fi
  if [ "${#browser[@]}" -gt 0 ]; then
    bash scripts/setup.sh --browser || true
    step "browser" timeout 600 node --test --test-concurrency=1 "${browser[@]}" || true
  fi
else
  skip "demo smoke" "needs the worker build"
  skip "test harness" "needs the worker build"
  skip "end-to-end" "needs the worker build"
  skip "browser" "needs the worker build"
fi

step "fuzz" timeout 900 bash scripts/fuzz.sh --time 20 || true

exit "$failed"
