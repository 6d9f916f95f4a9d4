#!/usr/bin/env bash
# Compares two compiled builds of agentwatch by instructions executed on the same workload
# (bench/instructions.ts explains why and what the count misses). Needs valgrind.
#
#   bash bench/compare-instructions.sh <dist A> <dist B> [floor|ingest|full] [records] [rounds]
#
# Build a tree to compare with `npx tsc -p tsconfig.json --outDir /tmp/agentwatch-a/dist` (from a
# checkout of the other commit; give it a node_modules, e.g. a symlink to this one's). Each
# measurement takes one to two minutes; the two builds run side by side.
set -euo pipefail

if [[ $# -lt 2 ]]; then
  echo "usage: bash bench/compare-instructions.sh <dist A> <dist B> [floor|ingest|full] [records=10000] [rounds=2]" >&2
  exit 2
fi
if ! command -v valgrind >/dev/null; then
  echo "compare-instructions: valgrind is not installed" >&2
  exit 2
fi

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
workload="$here/dist/bench/instructions.js"
if [[ ! -f "$workload" ]]; then
  echo "compare-instructions: $workload is missing; run npm run build first" >&2
  exit 2
fi
a="$1"; b="$2"; mode="${3:-full}"; records="${4:-10000}"; rounds="${5:-2}"
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT

count() {
  # --single-threaded: GC and compilation run on the main thread, so their work is counted too.
  valgrind --tool=callgrind --callgrind-out-file=/dev/null --smc-check=all-non-file \
    node --single-threaded --max-semi-space-size=64 "$workload" "$1" "$mode" "$records" "$rounds" >"$out/$2.out" 2>"$out/$2.err"
  grep -o 'refs: *[0-9,]*' "$out/$2.err" | tr -d ', ' | cut -d: -f2 >"$out/$2.count"
}

count "$a" A & pa=$!
count "$b" B & pb=$!
wait "$pa" "$pb"
for side in A B; do
  if [[ ! -s "$out/$side.count" ]]; then
    echo "compare-instructions: build $side failed:" >&2
    cat "$out/$side.err" >&2
    exit 1
  fi
done
ia="$(cat "$out/A.count")"; ib="$(cat "$out/B.count")"
echo "A: $(cat "$out/A.out")"
echo "B: $(cat "$out/B.out")"
# Setup (generating the stream, loading rules) is in both counts; the difference is the builds'.
awk -v a="$ia" -v b="$ib" -v mode="$mode" 'BEGIN { printf "%s instructions: A %.3fG  B %.3fG  B-A %+.0fM (%+.2f%% of A)\n", mode, a / 1e9, b / 1e9, (b - a) / 1e6, (b - a) / a * 100 }'
