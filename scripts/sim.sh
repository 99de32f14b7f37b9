#!/usr/bin/env bash
# The routing simulator's table (README "Routing at scale"): every topology at each size,
# lossless, then random and internet graphs with 2 % loss on every link.
#
#   scripts/sim.sh [--seed S] [--timeout SECS] [SIZE…]      (default sizes: 10 100 1000 10000)
#
# One rovy-sim process per graph, so the peak memory printed is that graph's, each bounded by
# the timeout (default 3 h; a graph that runs out is listed as such). A graph whose route
# tables alone would need more than 12 GB is listed as not run, with the size it needs.
# Prints a markdown table; exits 1 if any run found an installed route that looped.
set -euo pipefail

repo="$(cd "$(dirname "$0")/.." && pwd)"
cd "$repo"

seed=1
limit=10800
sizes=()
while [ $# -gt 0 ]; do
  case "$1" in
    --seed) seed="$2"; shift 2 ;;
    --timeout) limit="$2"; shift 2 ;;
    -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
    -*) echo "sim.sh: unknown option $1" >&2; exit 2 ;;
    *) sizes+=("$1"); shift ;;
  esac
done
[ ${#sizes[@]} -gt 0 ] || sizes=(10 100 1000 10000)

cargo build --release --quiet -p rovy-benches --bin rovy-sim
sim=target/release/rovy-sim

status=0
header=()
# One graph: its row, or a row saying it ran out of time.
run() {
  local n="$1" topology="$2"
  shift 2
  local rc=0
  timeout "$limit" "$sim" --seed "$seed" --nodes "$n" --topologies "$topology" \
    "${header[@]}" "$@" || rc=$?
  header=(--no-header)
  case "$rc" in
    0) ;;
    124) echo "| $topology | $n | timed out after $limit s |" ;;
    *) status=1 ;;
  esac
}

for n in "${sizes[@]}"; do
  for topology in chain ring grid random internet; do
    run "$n" "$topology"
  done
done
echo
echo "With 2 % loss on every link:"
echo
header=()
for n in "${sizes[@]}"; do
  [ "$n" -le 1000 ] || continue
  for topology in random internet; do
    run "$n" "$topology" --loss 0.02
  done
done
exit "$status"
