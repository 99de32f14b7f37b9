#!/usr/bin/env bash
# Instructions per packet of the in-memory pipeline (seal on one node, open on the other), counted
# by callgrind: repeatable whatever else the machine does, so it catches per-packet regressions
# without timing. Two runs (N and 2N packets) cancel start-up cost: per packet = ΔIr / N.
#   scripts/callgrind-pipeline.sh [--check]
# --check compares with benches/callgrind-baseline.txt and fails on more than +10 %.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v valgrind >/dev/null || { echo "callgrind-pipeline: needs valgrind (apt-get install valgrind)" >&2; exit 1; }
cargo build --quiet --release --locked -p rovy-benches --bin pipeline-instructions
bin=target/release/pipeline-instructions
n=2000
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
ir() { # PACKETS SIZE -> total instructions
  valgrind --tool=callgrind --callgrind-out-file="$tmp/out" "$bin" "$1" "$2" 2>"$tmp/log" >/dev/null
  awk '/^summary:/ {print $2}' "$tmp/out"
}
status=0
for size in 64 1420; do
  one=$(ir "$n" "$size"); two=$(ir $((2 * n)) "$size")
  per=$(( (two - one) / n ))
  echo "pipeline seal+open, ${size} B: ${per} instructions per packet"
  if [ "${1:-}" = "--check" ]; then
    base=$(awk -v s="$size" '$1 == s {print $2}' benches/callgrind-baseline.txt)
    limit=$(( base + base / 10 ))
    if [ "$per" -gt "$limit" ]; then
      echo "  REGRESSION: baseline ${base}, limit ${limit}" >&2
      status=1
    fi
  fi
done
exit "$status"
