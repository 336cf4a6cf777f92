#!/usr/bin/env bash
# Runs the local demo: edgeguard under `wrangler dev` on http://localhost:8787, in front of a
# demo origin, signing in at a demo OpenID provider (users alice/alice and bob/bob).
#
#   1. scripts/setup.sh          install what is missing (the first run takes ~10 min)
#   2. scripts/build-worker.sh   build the Worker
#   3. .dev.vars                 created from .dev.vars.example with fresh random secrets
#   4. scripts/dev.mjs           start the provider, the origin and wrangler dev; wait until
#                                /auth/health answers; print the URL. Ctrl-C stops everything.
#
# Usage: scripts/dev.sh [--https] [--check]
#   --https   serve on https://localhost:8787 with a self-signed certificate (Safari refuses
#             __Host- cookies over plain http, even on localhost)
#   --check   start everything, check /auth/health, then stop (exit 0 when healthy)
set -euo pipefail

# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

for arg in "$@"; do
  case "$arg" in
    --https | --check) ;;
    -h | --help)
      sed -n '2,15p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
      exit 0
      ;;
    *) die "unknown option '$arg' (try --help)" ;;
  esac
done

cd "$EDGEGUARD_ROOT"
bash scripts/setup.sh
bash scripts/build-worker.sh
use_cargo_bin # wrangler's build step runs scripts/build-worker.sh again (a no-op), and needs cargo
use_local_node

if [ ! -f .dev.vars ]; then
  log "creating .dev.vars (local secrets) from .dev.vars.example"
  (
    umask 077
    while IFS= read -r line || [ -n "$line" ]; do
      if [[ "$line" == *__RANDOM__* ]]; then
        random="$(head -c 32 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')"
        line="${line//__RANDOM__/$random}"
      fi
      printf '%s\n' "$line"
    done <.dev.vars.example >.dev.vars.tmp
  )
  mv .dev.vars.tmp .dev.vars
fi

export WRANGLER_SEND_METRICS=false CLOUDFLARE_CF_FETCH_ENABLED=false
exec node scripts/dev.mjs "$@"
