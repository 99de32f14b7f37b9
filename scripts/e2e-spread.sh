#!/usr/bin/env bash
# Per-core scaling check: node A runs with --cores 2 and two peers (B and C, each in its own
# namespace behind its own veth); TCP to both at once must be carried by both of A's workers, as
# its per-core counters show. Each peer has a home worker (its receiver indices steer its data
# there, see dataplane/src/sys/steer.rs), so this holds every time, not by the luck of a hash.
# Needs root; cleans up its namespaces on exit.
#   sudo scripts/e2e-spread.sh [--no-build]
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=lib/node.sh
source scripts/lib/node.sh
[ "${1:-}" = "--no-build" ] || cargo build --quiet --release --locked -p rovy-control
bin=${ROVY_FAST_BIN:-$PWD/target/release/rovy-fast}
dir=$(mktemp -d)
ns=("rf-$$-sa" "rf-$$-sb" "rf-$$-sc")
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill -INT "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  for n in "${ns[@]}"; do ip netns del "$n" 2>/dev/null || true; done
  rm -rf "$dir"
}
trap cleanup EXIT INT TERM

for n in "${ns[@]}"; do ip netns add "$n"; ip -n "$n" link set lo up; done
for i in 1 2; do # veth i joins A (10.201.i.1) and peer i (10.201.i.2)
  ip link add "rfs$$a$i" type veth peer name "rfs$$p$i"
  ip link set "rfs$$a$i" netns "${ns[0]}"; ip link set "rfs$$p$i" netns "${ns[$i]}"
  ip -n "${ns[0]}" addr add "10.201.$i.1/24" dev "rfs$$a$i"
  ip -n "${ns[$i]}" addr add "10.201.$i.2/24" dev "rfs$$p$i"
  ip -n "${ns[0]}" link set "rfs$$a$i" up; ip -n "${ns[$i]}" link set "rfs$$p$i" up
done
(umask 077; for k in a b c; do "$bin" genkey > "$dir/$k.key"; done)
pub() { "$bin" pubkey < "$dir/$1.key"; }
peer() { printf '[[peer]]\npublic_key = "%s"\nendpoint = "%s:51820"\nallowed_ips = ["%s/32"]\n' "$@"; }
iface() { printf '[interface]\nname = "rf0"\nprivate_key_file = "%s"\nlisten_port = 51820\naddresses = ["%s/24"]\n' "$@"; }
{ iface "$dir/a.key" 10.202.0.1; peer "$(pub b)" 10.201.1.2 10.202.0.2; peer "$(pub c)" 10.201.2.2 10.202.0.3; } > "$dir/a.toml"
{ iface "$dir/b.key" 10.202.0.2; peer "$(pub a)" 10.201.1.1 10.202.0.1; } > "$dir/b.toml"
{ iface "$dir/c.key" 10.202.0.3; peer "$(pub a)" 10.201.2.1 10.202.0.1; } > "$dir/c.toml"

start() { # NS CORES NAME
  ip netns exec "$1" "$bin" --cores "$2" --socket "$dir/$3.sock" "$dir/$3.toml" 2> "$dir/$3.log" &
  pids+=("$!")
}
start "${ns[0]}" 2 a; start "${ns[1]}" 1 b; start "${ns[2]}" 1 c
names=(a b c)
for i in 0 1 2; do
  n=${names[$i]}
  rf_wait_ready "$dir/$n.log" "${pids[$i]}" 10 || { echo "FAIL spread: node $n did not start"; cat "$dir/$n.log"; exit 1; }
done
ip netns exec "${ns[1]}" timeout 30 iperf3 -s -1 -B 10.202.0.2 >/dev/null 2>&1 & pids+=("$!")
ip netns exec "${ns[2]}" timeout 30 iperf3 -s -1 -B 10.202.0.3 >/dev/null 2>&1 & pids+=("$!")
sleep 0.5
ip netns exec "${ns[0]}" timeout 20 iperf3 -c 10.202.0.2 -t 5 -P 2 > "$dir/b.iperf" 2>&1 & i1=$!
ip netns exec "${ns[0]}" timeout 20 iperf3 -c 10.202.0.3 -t 5 -P 2 > "$dir/c.iperf" 2>&1 & i2=$!
if ! wait "$i1" || ! wait "$i2"; then
  echo "FAIL spread: iperf3 failed"; cat "$dir/"*.iperf; exit 1
fi
"$bin" status --json --socket "$dir/a.sock" > "$dir/status.json"
python3 - "$dir/status.json" <<'PY'
import json, sys
status = json.load(open(sys.argv[1]))
tx = [w["tx_packets"] for w in status["workers"]]
total = sum(tx)
print("  A's workers sent " + ", ".join(f"core {i}: {n}" for i, n in enumerate(tx)) + " datagrams")
if len(tx) != 2 or total == 0 or min(tx) < total // 10:
    print("FAIL spread: both workers must carry at least 10 % of the datagrams")
    sys.exit(1)
print("PASS spread: both workers carry traffic to two peers")
PY
