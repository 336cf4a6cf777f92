#!/usr/bin/env bash
# Builds the deployable Worker: build/worker/index.mjs (JavaScript glue, bundled) and
# build/worker/index.wasm (the Rust crate). wrangler.toml's [build] command runs this, so
# `wrangler dev` and `wrangler deploy` build first.
#
#   1. cargo build --release --target wasm32-unknown-unknown
#   2. wasm-bindgen --target module            -> build/bindgen/index.js + index_bg.wasm
#   3. patch `import source wasmModule` into a plain default import of ./index.wasm
#      (workerd's CompiledWasm modules default-export a WebAssembly.Module)
#   4. esbuild scripts/worker-entry.mjs        -> build/worker/index.mjs (+ index.wasm)
#   5. print the size, raw and gzip; write build/size.txt
#
# Usage: scripts/build-worker.sh [--check-size]
#   --check-size   fail when the gzip size of index.mjs + index.wasm exceeds the budget
#                  (EDGEGUARD_SIZE_BUDGET bytes, default 340000: today's ~333 000 with a little
#                  room, so that growth is noticed; the issue-10 target is 250 KB)
#
# Steps whose inputs did not change are skipped: a rebuild with nothing changed takes ~1 s.
set -euo pipefail

# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

check_size=0
for arg in "$@"; do
  case "$arg" in
    --check-size) check_size=1 ;;
    -h | --help)
      sed -n '2,18p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
      exit 0
      ;;
    *) die "unknown option '$arg' (try --help)" ;;
  esac
done
budget="${EDGEGUARD_SIZE_BUDGET:-340000}"

cd "$EDGEGUARD_ROOT"
started="$(now)"
use_cargo_bin

# Tools: install what is missing (a no-op when present). npm is only run when node_modules is
# absent, never to "refresh" it: this script may be running under wrangler from node_modules.
if ! rustup target list --installed 2>/dev/null | grep -qx 'wasm32-unknown-unknown' ||
  [ "$(wasm_bindgen_cli_version)" != "$(wasm_bindgen_lock_version)" ]; then
  bash scripts/setup.sh --rust
fi
if [ ! -x node_modules/.bin/esbuild ]; then
  bash scripts/setup.sh --node
fi
use_local_node

with_lock build

bindgen_flags=(--target module --out-name index --no-typescript
  --experimental-reset-state-function --force-enable-abort-handler)

# 1. Rust -> wasm. Cargo itself skips the work when nothing changed.
log "cargo build --release --target wasm32-unknown-unknown"
t="$(now)"
cargo build --release --target wasm32-unknown-unknown --lib
target_dir="${CARGO_TARGET_DIR:-target}"
wasm_in="$target_dir/wasm32-unknown-unknown/release/edgeguard.wasm"
[ -f "$wasm_in" ] || die "cargo built no $wasm_in; is Cargo.toml's crate-type [\"cdylib\", \"rlib\"]?"
note "cargo: $(since "$t")"

# 2 and 3. wasm-bindgen, unless its input, version and flags are those of the last run.
bindgen_dir=build/bindgen
stamp="$(sha256sum "$wasm_in" | cut -d' ' -f1) $(wasm_bindgen_cli_version) ${bindgen_flags[*]}"
if [ -f "$bindgen_dir/.stamp" ] && [ "$(cat "$bindgen_dir/.stamp")" = "$stamp" ] &&
  [ -f "$bindgen_dir/index.js" ] && [ -f "$bindgen_dir/index.wasm" ]; then
  log "wasm-bindgen: unchanged, skipped"
else
  log "wasm-bindgen ${bindgen_flags[*]}"
  # Its warning that the `target_features` section is missing (Cargo.toml's `strip = true`) is
  # harmless here: measured, keeping the section (strip = "debuginfo") and dropping the name
  # section instead (--remove-name-section) gives the same size within 1 %.
  t="$(now)"
  rm -rf "$bindgen_dir.tmp"
  wasm-bindgen "${bindgen_flags[@]}" --out-dir "$bindgen_dir.tmp" "$wasm_in"
  glue="$bindgen_dir.tmp/index.js"
  wanted='import source wasmModule from "./index_bg.wasm";'
  grep -qxF "$wanted" "$glue" ||
    die "wasm-bindgen output changed: '$glue' has no line '$wanted' to patch. Update scripts/build-worker.sh."
  sed -i 's#^import source wasmModule from "./index_bg.wasm";$#import wasmModule from "./index.wasm";#' "$glue"
  mv "$bindgen_dir.tmp/index_bg.wasm" "$bindgen_dir.tmp/index.wasm"
  printf '%s\n' "$stamp" >"$bindgen_dir.tmp/.stamp"
  rm -rf "$bindgen_dir"
  mv "$bindgen_dir.tmp" "$bindgen_dir"
  note "wasm-bindgen: $(since "$t")"
fi

# 4. Bundle the glue (and any wasm-bindgen snippets) into one module; the wasm stays a separate
# module file next to it. Files are replaced only when they changed, each by an atomic rename,
# so a running `wrangler dev` reloads once and never sees half a bundle.
log "esbuild scripts/worker-entry.mjs -> build/worker/index.mjs"
out=build/worker
mkdir -p "$out"
esbuild scripts/worker-entry.mjs --bundle --format=esm --platform=neutral --target=es2022 \
  --external:'*.wasm' --external:'cloudflare:*' --minify --legal-comments=none \
  --log-level=warning --outfile="$out/.index.mjs.tmp"
cp "$bindgen_dir/index.wasm" "$out/.index.wasm.tmp"
replace_if_changed() {
  if cmp -s "$1" "$2"; then rm -f "$1"; else mv -f "$1" "$2"; fi
}
replace_if_changed "$out/.index.wasm.tmp" "$out/index.wasm" # the wasm first: index.mjs imports it
replace_if_changed "$out/.index.mjs.tmp" "$out/index.mjs"

# 5. Sizes. Cloudflare's limit applies to the compressed upload (3 MB free, 10 MB paid); our own
# budget is much tighter, since the bundle size is also the cold-start cost.
gz() { gzip -c -9 "$1" | wc -c; }
kib() { awk -v b="$1" 'BEGIN { printf "%.1f KiB", b / 1024 }'; }
js_raw=$(wc -c <"$out/index.mjs")
js_gz=$(gz "$out/index.mjs")
wasm_raw=$(wc -c <"$out/index.wasm")
wasm_gz=$(gz "$out/index.wasm")
total_raw=$((js_raw + wasm_raw))
total_gz=$((js_gz + wasm_gz))
cat >build/size.txt <<EOF
# edgeguard bundle size in bytes (gzip -9), written by scripts/build-worker.sh
index.mjs_raw=$js_raw
index.mjs_gzip=$js_gz
index.wasm_raw=$wasm_raw
index.wasm_gzip=$wasm_gz
total_raw=$total_raw
total_gzip=$total_gz
budget_gzip=$budget
EOF
log "bundle: $(kib "$total_raw") raw, $(kib "$total_gz") gzip (budget $(kib "$budget") gzip)"
note "index.mjs  $(kib "$js_raw") raw, $(kib "$js_gz") gzip"
note "index.wasm $(kib "$wasm_raw") raw, $(kib "$wasm_gz") gzip"
if [ "$total_gz" -gt "$budget" ]; then
  if [ "$check_size" = 1 ]; then
    die "bundle is $(kib "$total_gz") gzip, over the $(kib "$budget") budget (see build/size.txt)"
  fi
  warn "bundle is over the $(kib "$budget") gzip budget"
fi
log "built build/worker/ in $(since "$started")"
