#!/usr/bin/env bash
# Builds the fuzz targets in fuzz/ (cargo fuzz, libFuzzer) and runs each for a bounded time.
# Exits non-zero if any target crashes (a panic is a failed invariant) or fails to build.
#
#   scripts/fuzz.sh                      every target, 20 s each (what CI runs)
#   scripts/fuzz.sh --time 600 cookies   one target for 10 minutes
#   scripts/fuzz.sh --build              build only
#
# Each target reads the committed seeds in fuzz/seeds/TARGET/ and grows its own corpus in
# fuzz/corpus/TARGET/ (git-ignored, kept between runs). A crashing input is written to
# fuzz/artifacts/TARGET/crash-<sha1>; reproduce it with
#   RUSTC_BOOTSTRAP=1 RUSTFLAGS=-Coverflow-checks=on cargo fuzz run -O TARGET fuzz/artifacts/TARGET/crash-<sha1>
# The full libFuzzer output of the last run of each target is in fuzz/artifacts/TARGET/last-run.log.
#
# Stable Rust only: cargo fuzz builds with AddressSanitizer (`-Zsanitizer=address`), a nightly
# flag that stable rustc accepts with RUSTC_BOOTSTRAP=1 (its ASan runtime ships with the stable
# standard library). EDGEGUARD_FUZZ_SANITIZER=none builds without it and needs no
# RUSTC_BOOTSTRAP (faster, but no memory-error checks for the `unsafe` code in dependencies).
# Integer overflow panics (-Coverflow-checks=on).
set -euo pipefail

# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

secs=20
build_only=0
targets=()
while [ $# -gt 0 ]; do
  case "$1" in
    --time)
      [ $# -ge 2 ] || die "--time needs a number of seconds"
      secs="$2"
      shift
      ;;
    --build) build_only=1 ;;
    -h | --help)
      sed -n '2,19p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
      exit 0
      ;;
    -*) die "unknown option '$1' (try --help)" ;;
    *) targets+=("$1") ;;
  esac
  shift
done

cd "$EDGEGUARD_ROOT"
use_cargo_bin
command -v cargo-fuzz >/dev/null 2>&1 || die "cargo-fuzz not found: run scripts/setup.sh --rust"
sanitizer="${EDGEGUARD_FUZZ_SANITIZER:-address}"
if [ "$sanitizer" != none ]; then
  export RUSTC_BOOTSTRAP=1
fi
# Overflow checks, not debug assertions (cargo fuzz's default unless -O): those also switch on
# dependencies' debug_assert!s, which production builds never run (idna_adapter 1.0.0 asserts
# on hosts that mix upper-case ASCII with other characters, a URL the release build refuses as
# invalid all the same).
export RUSTFLAGS="${RUSTFLAGS:-} -Coverflow-checks=on"
fuzz=(cargo fuzz)
flags=(--sanitizer "$sanitizer" --release)

if [ "${#targets[@]}" -eq 0 ]; then
  mapfile -t targets < <("${fuzz[@]}" list)
fi
t="$(now)"
"${fuzz[@]}" build "${flags[@]}"
log "fuzz targets built in $(since "$t") (sanitizer: $sanitizer)"
[ "$build_only" = 1 ] && exit 0

failed=()
for target in "${targets[@]}"; do
  [ -d "fuzz/seeds/$target" ] || die "no seeds for '$target' (fuzz/seeds/$target/); targets: $("${fuzz[@]}" list | xargs)"
  mkdir -p "fuzz/corpus/$target" "fuzz/artifacts/$target"
  out="fuzz/artifacts/$target/last-run.log"
  rc=0
  # -timeout: one input taking over 10 s is a finding too (a hang on the request path).
  "${fuzz[@]}" run "${flags[@]}" "$target" "fuzz/corpus/$target" "fuzz/seeds/$target" -- \
    -max_total_time="$secs" -timeout=10 -print_final_stats=1 >"$out" 2>&1 || rc=$?
  stats="$(awk -F': *' '
    /^stat::number_of_executed_units/ { runs = $NF }
    /^stat::average_exec_per_sec/ { rate = $NF }
    /DONE|INITED/ { for (i = 1; i <= NF; i++) { if ($i ~ /cov$/) cov = $(i + 1); if ($i ~ /ft$/) ft = $(i + 1) } }
    END { split(cov, c, " "); split(ft, f, " "); printf "%s runs, %s exec/s, cov %s, ft %s", runs, rate, c[1], f[1] }
  ' "$out")"
  if [ "$rc" -eq 0 ]; then
    log "$target: ok in ${secs} s: $stats"
  else
    failed+=("$target")
    warn "$target: FAILED (exit $rc): $stats"
    grep -E "panicked at|^  left|^ right|assertion|ERROR: libFuzzer|Test unit written" "$out" | head -n 20 >&2 || true
    note "full output: $out"
  fi
done

if [ "${#failed[@]}" -gt 0 ]; then
  die "fuzz targets failed: ${failed[*]} (crashing inputs in fuzz/artifacts/<target>/)"
fi
