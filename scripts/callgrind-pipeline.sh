#!/usr/bin/env bash
# Instructions per packet, counted by callgrind: repeatable whatever else the machine does, so
# it catches per-packet regressions without timing. Two runs (N and 2N packets) cancel start-up
# cost: per packet = ΔIr / N.
# - the pipeline: seal on one node, open on the other (pipeline-instructions);
# - the forwarder: a routed frame opened, switched and re-sealed at the middle node, less the
#   source's seal (forward-instructions, which also fails if the forwarder allocates).
#   scripts/callgrind-pipeline.sh [--check]
# --check compares with benches/callgrind-baseline.txt and fails on more than +10 %.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v valgrind >/dev/null || { echo "callgrind-pipeline: needs valgrind (apt-get install valgrind)" >&2; exit 1; }
cargo build --quiet --release --locked -p rovy-benches --bin pipeline-instructions --bin forward-instructions
n=2000
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
ir() { # BINARY ARGS... -> total instructions
  valgrind --tool=callgrind --callgrind-out-file="$tmp/out" "$@" 2>"$tmp/log" >/dev/null
  awk '/^summary:/ {print $2}' "$tmp/out"
}
per_packet() { # BINARY ARGS-BEFORE-COUNT... -- ARGS-AFTER-COUNT...
  local one two
  one=$(ir "$@" "$n" "$size"); two=$(ir "$@" $((2 * n)) "$size")
  echo $(( (two - one) / n ))
}
status=0
check() { # NAME PER
  [ "${mode:-}" = "--check" ] || return 0
  local base limit
  base=$(awk -v s="$1" '$1 == s {print $2}' benches/callgrind-baseline.txt)
  limit=$(( base + base / 10 ))
  if [ "$2" -gt "$limit" ]; then
    echo "  REGRESSION: baseline ${base}, limit ${limit}" >&2
    status=1
  fi
}
mode="${1:-}"
for size in 64 1420; do
  per=$(per_packet target/release/pipeline-instructions)
  echo "pipeline seal+open, ${size} B: ${per} instructions per packet"
  check "$size" "$per"
done
for size in 64 1420; do
  both=$(per_packet target/release/forward-instructions forward)
  seal=$(per_packet target/release/forward-instructions seal)
  per=$(( both - seal ))
  echo "forwarder open+switch+re-seal, ${size} B frame: ${per} instructions per frame"
  check "forward-$size" "$per"
done
exit "$status"
