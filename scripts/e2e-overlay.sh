#!/usr/bin/env bash
# Routes the nodes find themselves, across real processes: N nodes, each in its own namespace and
# peered only with its neighbours (kind = "rovy", no allowed_ips), must converge so that every
# node has a route to every other, with the true hop count (BFS over the topology) as metric and
# a label of that many slots. Topologies: `chain` of N (default 5), whose middle node then stops
# and the first node must lose the nodes behind it; `mesh` of 8, a ring with two chords. Runs on
# the given worker backend (default uring). Needs root; cleans up on exit.
#   sudo scripts/e2e-overlay.sh [--backend uring|epoll] [--topology chain|mesh] [--nodes N] [--no-build]
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=lib/node.sh
source scripts/lib/node.sh

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
# The links, as pairs of node numbers.
links=()
case "$topology" in
  chain) for i in $(seq 1 $((nodes - 1))); do links+=("$i $((i + 1))"); done ;;
  mesh)
    nodes=8
    for i in $(seq 1 8); do links+=("$i $((i % 8 + 1))"); done
    links+=("1 5" "3 7")
    ;;
  *) echo "unknown topology $topology" >&2; exit 2 ;;
esac
[ "$build" = 0 ] || cargo build --quiet --release --locked -p rovy-control
bin=${ROVY_FAST_BIN:-$PWD/target/release/rovy-fast}
dir=$(mktemp -d)
label="overlay[$backend,$topology-$nodes]"
ns=(); pids=()
for i in $(seq 1 "$nodes"); do ns+=("rf-$$-ov$i"); done
cleanup() {
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  for n in "${ns[@]}"; do ip netns del "$n" 2>/dev/null || true; done
  rm -rf "$dir"
}
trap cleanup EXIT INT TERM
fail() {
  echo "FAIL $label: $*"
  for f in "$dir"/*.log; do [ -e "$f" ] && sed "s|^|  $(basename "$f" .log): |" "$f" | tail -5; done
  exit 1
}

for n in "${ns[@]}"; do ip netns add "$n"; ip -n "$n" link set lo up; done
# Link k joins node a (10.210.k.1) and node b (10.210.k.2).
k=0
declare -A endpoint_of
for pair in "${links[@]}"; do
  k=$((k + 1))
  read -r a b <<<"$pair"
  ip link add "rfo$$l${k}a" type veth peer name "rfo$$l${k}b"
  ip link set "rfo$$l${k}a" netns "${ns[$((a - 1))]}"; ip link set "rfo$$l${k}b" netns "${ns[$((b - 1))]}"
  ip -n "${ns[$((a - 1))]}" addr add "10.210.$k.1/24" dev "rfo$$l${k}a"
  ip -n "${ns[$((b - 1))]}" addr add "10.210.$k.2/24" dev "rfo$$l${k}b"
  ip -n "${ns[$((a - 1))]}" link set "rfo$$l${k}a" up; ip -n "${ns[$((b - 1))]}" link set "rfo$$l${k}b" up
  endpoint_of["$a $b"]="10.210.$k.2"
  endpoint_of["$b $a"]="10.210.$k.1"
done

(umask 077; for i in $(seq 1 "$nodes"); do "$bin" genkey >"$dir/$i.key"; done)
pub() { "$bin" pubkey <"$dir/$1.key"; }
for i in $(seq 1 "$nodes"); do
  {
    printf '[interface]\nname = "rovy0"\nprivate_key_file = "%s"\nlisten_port = 1312\n' "$dir/$i.key"
    for j in $(seq 1 "$nodes"); do
      [ -n "${endpoint_of["$i $j"]:-}" ] || continue
      printf '\n[[peer]]\npublic_key = "%s"\nendpoint = "%s:1312"\n' "$(pub "$j")" "${endpoint_of["$i $j"]}"
    done
  } >"$dir/$i.toml"
  chmod 600 "$dir/$i.toml"
done
printf '%s\n' "${links[@]}" >"$dir/links"
for i in $(seq 1 "$nodes"); do
  ip netns exec "${ns[$((i - 1))]}" "$bin" --backend "$backend" --cores 1 \
    --socket "$dir/$i.sock" "$dir/$i.toml" 2>"$dir/$i.log" &
  pids+=("$!")
done
for i in $(seq 1 "$nodes"); do
  rf_wait_ready "$dir/$i.log" "${pids[$((i - 1))]}" 20 || fail "node $i did not start"
done

# check_routes I: node I's route list must hold every other node at its hop distance.
check_routes() {
  local i="$1" json
  json=$("$bin" route list --json --socket "$dir/$i.sock") || return 1
  python3 - "$i" "$nodes" "$json" "$dir" "$bin" <<'PY'
import collections, json, subprocess, sys
i, nodes, routes, d, binary = int(sys.argv[1]), int(sys.argv[2]), json.loads(sys.argv[3]), sys.argv[4], sys.argv[5]
graph = collections.defaultdict(set)
for line in open(f"{d}/links"):
    a, b = map(int, line.split())
    graph[a].add(b); graph[b].add(a)
hops, queue = {i: 0}, collections.deque([i])
while queue:
    n = queue.popleft()
    for m in graph[n]:
        if m not in hops:
            hops[m] = hops[n] + 1; queue.append(m)
by_key = {r["public_key"]: r for r in routes["routes"]}
for j in range(1, nodes + 1):
    if j == i:
        continue
    key = subprocess.run([binary, "pubkey"], stdin=open(f"{d}/{j}.key"), capture_output=True, text=True).stdout.strip()
    r = by_key.get(key)
    if r is None or r["metric"] != hops[j] or len(r["label"].split(".")) != hops[j]:
        sys.exit(1)
PY
}

start=$SECONDS
converged=0
while [ $((SECONDS - start)) -lt 40 ]; do
  ok=1
  for i in $(seq 1 "$nodes"); do check_routes "$i" || { ok=0; break; }; done
  if [ "$ok" = 1 ]; then converged=1; break; fi
  sleep 0.5
done
[ "$converged" = 1 ] || { for i in 1 "$nodes"; do echo "node $i:"; "$bin" route list --socket "$dir/$i.sock" || true; done; fail "routes did not converge within 40 s"; }
echo "  converged in $((SECONDS - start)) s; node 1's routes:"
"$bin" route list --socket "$dir/1.sock" | sed 's/^/    /'
"$bin" status --socket "$dir/1.sock" | grep -E '^(links|routes)|^  slot' | sed 's/^/    /'

# Traffic end to end: node 1 pings every other node's fc00 address through the overlay (an
# upper session to each, over as many hops as the route has).
addr_of() { "$bin" id "$dir/$1.key" | awk '/^address:/ {print $2}'; }
for j in $(seq 2 "$nodes"); do
  out=$(ip netns exec "${ns[0]}" ping -6 -c 3 -i 0.2 -W 5 "$(addr_of "$j")" 2>&1) ||
    { echo "$out"; "$bin" status --socket "$dir/1.sock" | tail -12; fail "node 1 gets no ping replies from node $j"; }
  echo "  ping node 1 -> node $j: $(echo "$out" | grep -E 'packets transmitted')"
done

# A checksummed TCP transfer from node 1 to the last node, across every hop.
last_addr=$(addr_of "$nodes")
head -c $((50 << 20)) /dev/urandom >"$dir/data"
ip netns exec "${ns[$((nodes - 1))]}" timeout 70 python3 scripts/lib/transfer.py recv \
  --bind "$last_addr" --port 5301 --out "$dir/result" --ready "$dir/ready" --timeout 60 \
  >"$dir/recv.out" 2>&1 &
recv_pid=$!
for _ in $(seq 100); do [ -s "$dir/ready" ] && break; sleep 0.1; done
start=$SECONDS
ip netns exec "${ns[0]}" timeout 70 python3 scripts/lib/transfer.py send \
  --host "$last_addr" --port 5301 --file "$dir/data" --timeout 60 >"$dir/send.out" 2>&1 ||
  fail "transfer to node $nodes failed: $(cat "$dir/send.out")"
wait "$recv_pid" || fail "transfer receiver failed: $(cat "$dir/recv.out")"
expected="$(sha256sum "$dir/data" | cut -d' ' -f1) $((50 << 20))"
[ "$(cat "$dir/result")" = "$expected" ] || fail "transfer arrived as $(cat "$dir/result"), sent $expected"
echo "  50 MB from node 1 to node $nodes over the overlay: sha256 matches ($((SECONDS - start)) s)"

[ "$topology" = chain ] || { echo "PASS $label"; exit 0; }
# The middle node stops: the nodes beyond it must go from the ends' tables.
middle=$(((nodes + 1) / 2))
kill -TERM "${pids[$((middle - 1))]}"
wait "${pids[$((middle - 1))]}" 2>/dev/null || true
start=$SECONDS
gone=0
while [ $((SECONDS - start)) -lt 15 ]; do
  count=$("$bin" route list --json --socket "$dir/1.sock" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["routes"]))')
  if [ "$count" -eq $((middle - 2)) ]; then gone=1; break; fi
  sleep 0.5
done
[ "$gone" = 1 ] || fail "node 1 still routes past the stopped node $middle (has $count routes)"
echo "  node $middle stopped: node 1 kept $((middle - 2)) route(s) within $((SECONDS - start)) s"
echo "PASS $label"
