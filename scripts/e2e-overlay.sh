#!/usr/bin/env bash
# The overlay across real processes: N nodes, each in its own namespace and peered only with its
# neighbours (kind = "rovy", no allowed_ips), must converge so that every node has a route to
# every other, with the true hop count (BFS over the topology) as metric and a label of that
# many slots; then node 1 pings every other node's fc00 address and sends it a checksummed TCP
# transfer, through upper sessions over as many hops as the route has. Topologies: `chain` of N
# (default 5), in which `traceroute6 -n` from node 1 lists every other node in hop order and
# whose middle node then stops and node 1 must lose the nodes behind it; `mesh` of
# 8, a ring with two chords, in which every node then pings every other. Runs on the given
# worker backend (default uring). Needs root;
# cleans up on exit.
#   sudo scripts/e2e-overlay.sh [--backend uring|epoll] [--topology chain|mesh] [--nodes N] [--no-build]
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=lib/node.sh
source scripts/lib/node.sh
# shellcheck source=lib/overlay_net.sh
source scripts/lib/overlay_net.sh
# shellcheck source=lib/apt.sh
source scripts/lib/apt.sh
rf_ensure_commands ping=iputils-ping traceroute6=traceroute

backend=uring; topology=chain; nodes=5; build=1
while [ $# -gt 0 ]; do
  case "$1" in
    --backend) backend="$2"; shift 2 ;;
    --topology) topology="$2"; shift 2 ;;
    --nodes) nodes="$2"; shift 2 ;;
    --no-build) build=0; shift ;;
    *) echo "usage: $0 [--backend uring|epoll] [--topology chain|mesh] [--nodes N] [--no-build]" >&2; exit 2 ;;
  esac
done
case "$topology" in
  chain) ov_chain "$nodes" ;;
  mesh) ov_mesh8 ;;
  *) echo "unknown topology $topology" >&2; exit 2 ;;
esac
nodes=$OV_NODES
[ "$build" = 0 ] || cargo build --quiet --release --locked -p rovy-control
OV_BIN=${ROVY_FAST_BIN:-$PWD/target/release/rovy-fast}
OV_DIR=$(mktemp -d)
dir=$OV_DIR bin=$OV_BIN
label="overlay[$backend,$topology-$nodes]"
cleanup() {
  ov_cleanup
  rm -rf "$dir"
}
trap cleanup EXIT INT TERM
fail() {
  echo "FAIL $label: $*"
  for f in "$dir"/*.log; do [ -e "$f" ] && sed "s|^|  $(basename "$f" .log): |" "$f" | tail -5; done
  exit 1
}
node_args() { echo "--backend $backend --cores 1"; }

ov_setup
ov_start node_args || fail "a node did not start"
start=$SECONDS
if ! ov_wait_converged 40; then
  for i in 1 "$nodes"; do echo "node $i:"; "$bin" route list --socket "$dir/$i.sock" || true; done
  fail "routes did not converge within 40 s"
fi
echo "  converged in $((SECONDS - start)) s; node 1's routes:"
"$bin" route list --socket "$dir/1.sock" | sed 's/^/    /'
"$bin" status --socket "$dir/1.sock" | grep -E '^(links|routes)|^  slot' | sed 's/^/    /'

# Traffic end to end: node 1 pings every other node's fc00 address through the overlay (an
# upper session to each, over as many hops as the route has).
for j in $(seq 2 "$nodes"); do
  out=$(ip netns exec "${OV_NS[0]}" ping -6 -c 3 -i 0.2 -W 5 "$(ov_addr "$j")" 2>&1) ||
    { echo "$out"; "$bin" status --socket "$dir/1.sock" | tail -12; fail "node 1 gets no ping replies from node $j"; }
  echo "  ping node 1 -> node $j: $(echo "$out" | grep -E 'packets transmitted')"
done

# traceroute6 along the chain: each hop's Time Exceeded comes from the node where the probe's
# hop limit ran out (a PING along that much of the label, answered by a PONG), the last line
# from the destination itself.
if [ "$topology" = chain ]; then
  out=$(ip netns exec "${OV_NS[0]}" timeout 40 traceroute6 -n -q 1 -w 3 -m $((nodes + 2)) "$(ov_addr "$nodes")" 2>&1) ||
    fail "traceroute6 failed: $out"
  hops=$(awk 'NR > 1 { print $2 }' <<<"$out" | paste -sd' ')
  want=$(for j in $(seq 2 "$nodes"); do ov_addr "$j"; done | paste -sd' ')
  [ "$hops" = "$want" ] || { echo "$out"; fail "traceroute6 listed [$hops], expected [$want]"; }
  echo "  traceroute6 node 1 -> node $nodes: $((nodes - 1)) hops in order"
  sed 's/^/    /' <<<"$out"
fi

# In the mesh, every node reaches every other: one ping from each to each, a source at a time.
if [ "$topology" = mesh ]; then
  for i in $(seq 1 "$nodes"); do
    pings=()
    for j in $(seq 1 "$nodes"); do
      [ "$i" = "$j" ] && continue
      ip netns exec "${OV_NS[$((i - 1))]}" ping -6 -c 1 -W 5 "$(ov_addr "$j")" >"$dir/ping-$i-$j" 2>&1 &
      pings+=("$!")
    done
    for pid in "${pings[@]}"; do wait "$pid" || true; done
    for j in $(seq 1 "$nodes"); do
      [ "$i" = "$j" ] || grep -q " 1 received" "$dir/ping-$i-$j" || fail "node $i gets no reply from node $j"
    done
  done
  echo "  every node pinged every other: $((nodes * (nodes - 1))) replies"
fi

# An fc00 address nothing routes: the node itself answers Destination Unreachable.
out=$(ip netns exec "${OV_NS[0]}" ping -6 -c 1 -W 2 fc12:3456::1 2>&1 || true)
grep -q "Destination unreachable" <<<"$out" || fail "no Destination Unreachable for an unrouted fc00 address: $out"
echo "  ping an unrouted fc00 address: $(grep -m1 'Destination unreachable' <<<"$out")"

# A checksummed TCP transfer from node 1 to the last node, across every hop.
last_addr=$(ov_addr "$nodes")
head -c $((50 << 20)) /dev/urandom >"$dir/data"
ip netns exec "${OV_NS[$((nodes - 1))]}" timeout 70 python3 scripts/lib/transfer.py recv \
  --bind "$last_addr" --port 5301 --out "$dir/result" --ready "$dir/ready" --timeout 60 \
  >"$dir/recv.out" 2>&1 &
recv_pid=$!
for _ in $(seq 100); do [ -s "$dir/ready" ] && break; sleep 0.1; done
start=$SECONDS
ip netns exec "${OV_NS[0]}" timeout 70 python3 scripts/lib/transfer.py send \
  --host "$last_addr" --port 5301 --file "$dir/data" --timeout 60 >"$dir/send.out" 2>&1 ||
  fail "transfer to node $nodes failed: $(cat "$dir/send.out")"
wait "$recv_pid" || fail "transfer receiver failed: $(cat "$dir/recv.out")"
expected="$(sha256sum "$dir/data" | cut -d' ' -f1) $((50 << 20))"
[ "$(cat "$dir/result")" = "$expected" ] || fail "transfer arrived as $(cat "$dir/result"), sent $expected"
echo "  50 MB from node 1 to node $nodes over the overlay: sha256 matches ($((SECONDS - start)) s)"

# Node 1's Prometheus metrics: its routes, and the transfer's bytes on its link.
metrics=$(ip netns exec "${OV_NS[0]}" python3 -c 'import urllib.request; print(urllib.request.urlopen("http://127.0.0.1:9586/metrics", timeout=5).read().decode())') ||
  fail "no answer on node 1's metrics port"
grep -qx "rovy_routes $((nodes - 1))" <<<"$metrics" || fail "metrics do not show $((nodes - 1)) routes"
sent=$(awk '/^rovy_peer_tx_bytes_total/ { if ($2 > max) max = $2 } END { print max + 0 }' <<<"$metrics")
[ "$sent" -ge $((50 << 20)) ] || fail "metrics show $sent bytes sent to node 2, fewer than the transfer"
echo "  metrics: rovy_routes $((nodes - 1)), $sent bytes sent on the link to node 2"

[ "$topology" = chain ] || { echo "PASS $label"; exit 0; }
# The middle node stops: the nodes beyond it must go from node 1's table.
middle=$(((nodes + 1) / 2))
ov_stop "$middle"
start=$SECONDS
count=-1
while [ $((SECONDS - start)) -lt 15 ]; do
  count=$("$bin" route list --json --socket "$dir/1.sock" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["routes"]))')
  [ "$count" -eq $((middle - 2)) ] && break
  sleep 0.5
done
[ "$count" -eq $((middle - 2)) ] || fail "node 1 still routes past the stopped node $middle (has $count routes)"
echo "  node $middle stopped: node 1 kept $((middle - 2)) route(s) within $((SECONDS - start)) s"
echo "PASS $label"
