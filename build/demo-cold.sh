#!/usr/bin/env bash
# demo-cold.sh measures demo_cold_s (docs/performance.md, "The quick loop"):
# the wall time from `git clone` of this repository's current commit into an
# empty temporary folder to the end of `make demo` there, as a newcomer's first
# run on this machine would take it:
#
#   - npm downloads every package (an empty npm cache of its own);
#   - Go compiles every package (an empty build cache of its own, GOCACHE);
#   - the Go module cache is the machine's (go env GOMODCACHE): the modules
#     and the Go 1.27.3 toolchain the Makefile asks for are not downloaded
#     again (the only downloads left out).
#
# Usage: build/demo-cold.sh [DEMO=uc|workspace]   (arguments go to make demo)
# Prints "demo_cold_s <seconds>"; make demo's output is in the printed log
# file, which is kept.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
rev=$(git -C "$repo" rev-parse HEAD)
if [ -n "$(git -C "$repo" status --porcelain --untracked-files=no)" ]; then
  echo "demo-cold: measuring commit $rev; uncommitted changes are not in it" >&2
fi
work=$(mktemp -d "${TMPDIR:-/tmp}/brickferry-demo-cold.XXXXXX")
log="$work.log"
cleanup() { chmod -R u+w "$work" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
export npm_config_cache="$work/npm-cache"
export GOCACHE="$work/go-build"

start=$(date +%s.%N)
git clone --quiet --no-local --no-checkout "$repo" "$work/brickferry"
git -C "$work/brickferry" checkout --quiet "$rev"
# Each line of make's output is stamped with the time it appeared (the log
# shows where the time goes: npm ci, the builds, the demo itself).
stamp() { while IFS= read -r line; do printf '%(%T)T %s\n' -1 "$line"; done; }
status=0
make -C "$work/brickferry" demo "$@" 2>&1 | stamp >"$log" || status=$?
if [ "$status" -ne 0 ]; then
  echo "demo-cold: make demo failed (log: $log)" >&2
  tail -n 40 "$log" >&2
  exit 1
fi
end=$(date +%s.%N)
awk -v s="$start" -v e="$end" 'BEGIN { printf "demo_cold_s %.1f\n", e - s }'
echo "commit $rev, log $log, load average $(cut -d' ' -f1-3 /proc/loadavg)"
