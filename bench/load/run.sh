#!/usr/bin/env bash
# Load benchmark of edgeguard against JS baselines, all in one workerd process.
# See bench/load/bench.mjs for the method and the options; bench/RESULTS.md for the last results.
#
#   bash bench/load/run.sh [bench.mjs options...]
#
#   1. bash scripts/build-worker.sh          -> build/worker/index.mjs + index.wasm
#      (on failure, e.g. mid-edit, the last good build is used, with a warning;
#       BENCH_SKIP_BUILD=1 skips this step)
#   2. snapshot build/worker into build/bench/edgeguard/ (a rebuild during the run changes nothing)
#   3. esbuild bench/load/workers/*.mjs      -> build/bench/*.mjs (one bundle per JS service)
#   4. node bench/load/bench.mjs             -> one workerd, the checks, the rounds;
#                                               table on stdout, bench/RESULTS.md
#      (BENCH_OUT=path to write elsewhere, BENCH_OUT= to write nothing)
#
# Everything listens on 127.0.0.1 only; the run is bounded (fixed round counts and lengths, a
# time limit) and stops workerd and the servers it started, also on Ctrl-C.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=../../scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../../scripts/lib.sh"
cd "$EDGEGUARD_ROOT"
use_local_node

for arg in "$@"; do
  case "$arg" in
    -h | --help)
      sed -n '2,16p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
      echo
      exec node bench/load/bench.mjs --help
      ;;
  esac
done

if [ "${BENCH_SKIP_BUILD:-0}" != 1 ]; then
  if ! bash scripts/build-worker.sh; then
    [ -f build/worker/index.mjs ] || die "the Worker does not build and there is no earlier build"
    warn "scripts/build-worker.sh failed: benchmarking the last good build in build/worker/"
  fi
fi
if [ ! -f build/worker/index.mjs ] || [ ! -f build/worker/index.wasm ]; then
  die "build/worker/index.mjs or index.wasm is missing: run bash scripts/build-worker.sh"
fi

out=build/bench
mkdir -p "$out"
rm -rf "$out/edgeguard.tmp"
mkdir "$out/edgeguard.tmp"
cp build/worker/index.mjs build/worker/index.wasm "$out/edgeguard.tmp/"
[ -f build/size.txt ] && cp build/size.txt "$out/edgeguard.tmp/"
rm -rf "$out/edgeguard"
mv "$out/edgeguard.tmp" "$out/edgeguard"

log "esbuild bench/load/workers -> $out/"
for w in origin kv passthrough passthrough-log passthrough-xfwd webcrypto jose; do
  esbuild "bench/load/workers/$w.mjs" --bundle --format=esm --platform=browser --target=es2022 \
    --log-level=warning --outfile="$out/$w.mjs"
done

args=("$@")
if [ -n "${BENCH_OUT-bench/RESULTS.md}" ]; then
  args=(--out "${BENCH_OUT-bench/RESULTS.md}" "${args[@]}")
fi
BENCH_COMMAND="bash bench/load/run.sh${*:+ $*}" exec node bench/load/bench.mjs "${args[@]}"
