#!/usr/bin/env bash
# `rovy-fast tune` on an uplink whose settings the test controls: a veth pair in a namespace
# of its own. With GRO off on the uplink, tune names it with the ethtool command and exits 1;
# with GRO on, that finding is gone and no uplink finding is to fix. Needs root (ethtool is
# installed when missing); cleans up on exit.
#   sudo scripts/e2e-tune.sh [--no-build]
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=lib/apt.sh
source scripts/lib/apt.sh
rf_ensure_commands ethtool=ethtool ip=iproute2
[ "${1:-}" = --no-build ] || cargo build --quiet --release --locked -p rovy-control
bin=${ROVY_FAST_BIN:-$PWD/target/release/rovy-fast}
ns=rf-tune
cleanup() { ip netns del "$ns" 2>/dev/null || true; }
trap cleanup EXIT INT TERM
fail() { echo "FAIL tune: $*"; exit 1; }

cleanup
ip netns add "$ns"
ip -n "$ns" link add rf-tune0 type veth peer name rf-tune1
ip -n "$ns" link set rf-tune0 up
ip -n "$ns" link set rf-tune1 up
tune() { ip netns exec "$ns" timeout 10 "$bin" tune --interface rf-tune0 --cpus 0; }

ip netns exec "$ns" ethtool -K rf-tune0 gro off
status=0; out=$(tune) || status=$?
echo "$out" | sed 's/^/  /'
[ "$status" = 1 ] || fail "GRO off: exit $status, expected 1"
grep -E '^fix +uplink rf-tune0 +GRO off' <<<"$out" | grep -q 'ethtool -K rf-tune0 gro on' ||
  fail "GRO off is not named with its fix"

ip netns exec "$ns" ethtool -K rf-tune0 gro on
out=$(tune) || true
grep -Eq '^ok +uplink rf-tune0 +GRO on' <<<"$out" || fail "GRO on is not seen: $out"
if grep -Eq '^fix +uplink' <<<"$out"; then fail "an uplink finding is left to fix: $out"; fi
echo "PASS tune: GRO off found and named, GRO on seen"
