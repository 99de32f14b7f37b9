#!/usr/bin/env bash
# The overlay across real processes: N nodes, each in its own namespace and peered only with its
# neighbours (kind = "rovy", no allowed_ips), must converge so that every node has a route to
# every other, with the true hop count (BFS over the topology) as metric and a label of that
# many slots; then node 1 pings every other node's fc00 address and sends it a checksummed TCP
# transfer, through upper sessions over as many hops as the route has. Topologies: `chain` of N
# (default 5), in which `traceroute6 -n` from node 1 lists every other node in hop order and
# whose middle node then stops and node 1 must lose the nodes behind it; `mesh` of
# 8, a ring with two chords, in which every node then pings every other. Runs on the given
# worker backend (default uring).
# --interop (chain only): the chain's middle node, which forwards the transfer, also has two
# plain WireGuard peers (kind = "wireguard"), boringtun-cli and wireguard-go, each in a
# namespace of its own; pings cross both WireGuard links (boringtun initiating to the node,
# the node to wireguard-go), and while the overlay transfer runs, paced, a checksummed
# transfer crosses each WireGuard link too (boringtun to the node, the node to wireguard-go)
# with pings on all three paths. Needs root; cleans up on exit.
#   sudo scripts/e2e-overlay.sh [--backend uring|epoll] [--topology chain|mesh] [--nodes N] [--interop] [--no-build]
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=lib/netns.sh
source scripts/lib/netns.sh
# shellcheck source=lib/peers.sh
source scripts/lib/peers.sh
# shellcheck source=lib/overlay_net.sh
source scripts/lib/overlay_net.sh
# shellcheck source=lib/apt.sh
source scripts/lib/apt.sh
rf_ensure_commands ping=iputils-ping traceroute6=traceroute

backend=uring; topology=chain; nodes=5; build=1; interop=0
usage="usage: $0 [--backend uring|epoll] [--topology chain|mesh] [--nodes N] [--interop] [--no-build]"
while [ $# -gt 0 ]; do
  case "$1" in
    --backend) backend="$2"; shift 2 ;;
    --topology) topology="$2"; shift 2 ;;
    --nodes) nodes="$2"; shift 2 ;;
    --interop) interop=1; shift ;;
    --no-build) build=0; shift ;;
    *) echo "$usage" >&2; exit 2 ;;
  esac
done
case "$topology" in
  chain) ov_chain "$nodes" ;;
  mesh) ov_mesh8 ;;
  *) echo "unknown topology $topology" >&2; exit 2 ;;
esac
[ "$interop" = 0 ] || [ "$topology" = chain ] || { echo "--interop needs --topology chain" >&2; exit 2; }
nodes=$OV_NODES
middle=$(((nodes + 1) / 2))
[ "$build" = 0 ] || cargo build --quiet --release --locked -p rovy-control
if [ "$interop" = 1 ] && { [ ! -x "$BORINGTUN_BIN" ] || ! command -v wireguard-go >/dev/null; }; then
  scripts/install-peers.sh
fi
OV_BIN=${ROVY_FAST_BIN:-$PWD/target/release/rovy-fast}
OV_DIR=$(mktemp -d)
dir=$OV_DIR bin=$OV_BIN
label="overlay[$backend,$topology-$nodes$([ "$interop" = 0 ] || echo ",interop")]"
cleanup() {
  stop_all_started
  ov_cleanup
  rm -rf "$dir"
}
trap cleanup EXIT
# An interrupt ends the script (and so runs the cleanup once) rather than resuming it.
trap 'exit 130' INT
trap 'exit 143' TERM
fail() {
  echo "FAIL $label: $*"
  for f in "$dir"/*.log; do [ -e "$f" ] && sed "s|^|  $(basename "$f" .log): |" "$f" | tail -5; done
  exit 1
}
node_args() { echo "--backend $backend --cores 1"; }

# The middle node's plain WireGuard peers: name, implementation, interface, inner address, and
# who initiates: boringtun (the node has no endpoint for it) or the node (wireguard-go has
# none for the node).
WG_PEERS=("bt boringtun rf-bt0 10.231.0.2 peer" "wgo wireguard-go rf-wgo0 10.231.0.3 node")
declare -A WG_NS=() WG_NODE_IP=() WG_FIRST=()
[ "$interop" = 0 ] || OV_ADDRESSES[$middle]='"10.231.0.1/24"'
ov_setup
if [ "$interop" = 1 ]; then
  for spec in "${WG_PEERS[@]}"; do
    read -r name impl ifname inner first <<<"$spec"
    ov_attach "$name" "$middle"
    WG_NS[$name]=$OV_ATTACH_NS WG_NODE_IP[$name]=$OV_ATTACH_NODE_IP WG_FIRST[$name]=$first
    rf_genkey "$dir/$name.key"
    endpoint=""
    [ "$first" = peer ] || endpoint="${OV_ATTACH_NODE_IP%.1}.2:51820"
    ov_add_peer "$middle" "$(rf_pubkey "$dir/$name.key")" wireguard "\"$inner/32\"" "$endpoint"
  done
fi
ov_start node_args || fail "a node did not start"
start=$SECONDS
if ! ov_wait_converged 40; then
  for i in 1 "$nodes"; do echo "node $i:"; "$bin" route list --socket "$dir/$i.sock" || true; done
  fail "routes did not converge within 40 s"
fi
echo "  converged in $((SECONDS - start)) s; node 1's routes:"
"$bin" route list --socket "$dir/1.sock" | sed 's/^/    /'
"$bin" status --socket "$dir/1.sock" | grep -E '^(links|routes)|^  slot' | sed 's/^/    /'

# The mesh at rest: what routing (HELLOs, full tables) and WireGuard cost per link while no
# traffic flows, from the underlay veths' counters over 10 s (each direction counted once).
if [ "$topology" = mesh ]; then
  link_tx_bytes() {
    local total=0 n f
    for n in "${OV_NS[@]}"; do
      for f in $(ip netns exec "$n" sh -c 'ls -d /sys/class/net/rfo*/statistics 2>/dev/null'); do
        total=$((total + $(ip netns exec "$n" cat "$f/tx_bytes")))
      done
    done
    echo "$total"
  }
  sleep 2
  before=$(link_tx_bytes)
  sleep 10
  after=$(link_tx_bytes)
  links=${#OV_LINKS[@]}
  echo "  idle: $(((after - before) / 10 / links)) bytes/s per link (both directions, UDP/IP headers included) over $links links"
fi

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

# The middle node's WireGuard peers come up and answer pings over their links, beside the
# overlay the node forwards.
mid_ns=${OV_NS[$((middle - 1))]}
if [ "$interop" = 1 ]; then
  for spec in "${WG_PEERS[@]}"; do
    read -r name impl ifname inner first <<<"$spec"
    start_wg_userspace "$impl" "${WG_NS[$name]}" "$ifname" "$dir/$name.log" || fail "$impl did not start"
    endpoint=""
    [ "$first" = node ] || endpoint="${WG_NODE_IP[$name]}:1312"
    wg_configure "${WG_NS[$name]}" "$ifname" "$dir/$name.key" 51820 "$(rf_pubkey "$dir/$middle.key")" \
      "$endpoint" 10.231.0.1/32 0 "$inner/24" || fail "configuring $impl failed"
    if [ "$first" = peer ]; then
      wait_for 10 ip netns exec "${WG_NS[$name]}" ping -c1 -W1 10.231.0.1 || fail "$impl gets no reply from node $middle"
    else
      wait_for 10 ip netns exec "$mid_ns" ping -c1 -W1 "$inner" || fail "node $middle gets no reply from $impl"
    fi
    ip netns exec "${WG_NS[$name]}" ping -c 3 -i 0.2 -W 5 -q 10.231.0.1 >/dev/null || fail "$impl -> node $middle lost pings"
    ip netns exec "$mid_ns" ping -c 3 -i 0.2 -W 5 -q "$inner" >/dev/null || fail "node $middle -> $impl lost pings"
    echo "  $impl <-> node $middle over WireGuard ($([ "$first" = peer ] && echo "$impl" || echo "the node") initiating): pings answered both ways"
  done
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

# transfer_bg TAG FROM_NS TO_NS ADDR PORT MB RATE: a TCP transfer of MB random megabytes to
# ADDR:PORT, sender in FROM_NS and receiver in TO_NS, in the background, paced at RATE MB/s
# (0: as fast as it goes).
declare -A XFER_SEND=() XFER_RECV=()
transfer_bg() {
  local tag="$1" from="$2" to="$3" addr="$4" port="$5" mb="$6" rate="$7"
  head -c $((mb << 20)) /dev/urandom >"$dir/$tag.data"
  start_bg "$to" "$dir/$tag.recv.out" timeout 70 python3 scripts/lib/transfer.py recv \
    --bind "$addr" --port "$port" --out "$dir/$tag.result" --ready "$dir/$tag.ready" --timeout 60
  XFER_RECV[$tag]=$RF_LAST_PID
  wait_for 10 test -s "$dir/$tag.ready" || fail "$tag: the receiver did not listen: $(cat "$dir/$tag.recv.out")"
  start_bg "$from" "$dir/$tag.send.out" timeout 70 python3 scripts/lib/transfer.py send \
    --host "$addr" --port "$port" --file "$dir/$tag.data" --rate "$rate" --timeout 60
  XFER_SEND[$tag]=$RF_LAST_PID
}

# transfer_done TAG WHAT: waits for transfer TAG; what arrived must hash as what was sent.
transfer_done() {
  local tag="$1" expected
  wait_pid "${XFER_SEND[$tag]}" 75 || fail "$2: the sender failed: $(cat "$dir/$tag.send.out")"
  wait_pid "${XFER_RECV[$tag]}" 15 || fail "$2: the receiver failed: $(cat "$dir/$tag.recv.out")"
  expected="$(sha256sum "$dir/$tag.data" | cut -d' ' -f1) $(stat -c %s "$dir/$tag.data")"
  [ "$(cat "$dir/$tag.result")" = "$expected" ] || fail "$2 arrived as $(cat "$dir/$tag.result"), sent $expected"
  echo "  $2: sha256 matches"
}

# A checksummed TCP transfer from node 1 to the last node, across every hop. With --interop it
# is paced to last a few seconds, and one transfer crosses each WireGuard link meanwhile, with
# pings on all three paths.
last_addr=$(ov_addr "$nodes")
start=$SECONDS
transfer_bg ov "${OV_NS[0]}" "${OV_NS[$((nodes - 1))]}" "$last_addr" 5301 50 "$([ "$interop" = 1 ] && echo 10 || echo 0)"
if [ "$interop" = 1 ]; then
  transfer_bg bt "${WG_NS[bt]}" "$mid_ns" 10.231.0.1 5302 20 4
  transfer_bg wgo "$mid_ns" "${WG_NS[wgo]}" 10.231.0.3 5303 20 4
  for tag in ov bt wgo; do rf_alive "${XFER_SEND[$tag]}" || fail "the $tag transfer ended before the others began"; done
  ping_bg() { start_bg "$1" "$dir/ping-$2.out" ping -c 10 -i 0.3 -w 10 -q "${@:3}"; PINGS+=("$RF_LAST_PID $2"); }
  PINGS=()
  ping_bg "${OV_NS[0]}" overlay -6 "$last_addr"
  ping_bg "${WG_NS[bt]}" boringtun 10.231.0.1
  ping_bg "$mid_ns" wireguard-go 10.231.0.3
  for entry in "${PINGS[@]}"; do
    read -r pid what <<<"$entry"
    wait_pid "$pid" 15 && grep -q ' 10 received' "$dir/ping-$what.out" ||
      fail "pings on the $what path were lost during the transfers: $(tail -2 "$dir/ping-$what.out")"
  done
  echo "  during the transfers: 10 of 10 pings answered on the overlay, boringtun and wireguard-go paths"
  transfer_done bt "20 MB from boringtun to node $middle over WireGuard"
  transfer_done wgo "20 MB from node $middle to wireguard-go over WireGuard"
fi
transfer_done ov "50 MB from node 1 to node $nodes over the overlay"
echo "  transfers took $((SECONDS - start)) s"

# Node 1's Prometheus metrics: its routes, and the transfer's bytes on its link.
metrics=$(ip netns exec "${OV_NS[0]}" python3 -c 'import urllib.request; print(urllib.request.urlopen("http://127.0.0.1:9586/metrics", timeout=5).read().decode())') ||
  fail "no answer on node 1's metrics port"
grep -qx "rovy_routes $((nodes - 1))" <<<"$metrics" || fail "metrics do not show $((nodes - 1)) routes"
sent=$(awk '/^rovy_peer_tx_bytes_total/ { if ($2 > max) max = $2 } END { print max + 0 }' <<<"$metrics")
[ "$sent" -ge $((50 << 20)) ] || fail "metrics show $sent bytes sent to node 2, fewer than the transfer"
echo "  metrics: rovy_routes $((nodes - 1)), $sent bytes sent on the link to node 2"

[ "$topology" = chain ] || { echo "PASS $label"; exit 0; }
# The middle node stops: the nodes beyond it must go from node 1's table.
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
