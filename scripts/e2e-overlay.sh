#!/usr/bin/env bash
# Routes the nodes find themselves, across real processes: a chain of N nodes (default 5), each
# in its own namespace and peered only with its neighbours (kind = "rovy", no allowed_ips), must
# converge so that every node has a route to every other, with the true hop count as metric and
# a label of that many slots; then the middle node stops, and the ends must lose the nodes behind
# it. Runs on the given worker backend (default uring). Needs root; cleans up on exit.
#   sudo scripts/e2e-overlay.sh [--backend uring|epoll] [--nodes N] [--no-build]
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=lib/node.sh
source scripts/lib/node.sh

backend=uring; nodes=5; build=1
while [ $# -gt 0 ]; do
  case "$1" in
    --backend) backend="$2"; shift 2 ;;
    --nodes) nodes="$2"; shift 2 ;;
    --no-build) build=0; shift ;;
    *) echo "usage: $0 [--backend uring|epoll] [--nodes N] [--no-build]" >&2; exit 2 ;;
  esac
done
[ "$build" = 0 ] || cargo build --quiet --release --locked -p rovy-control
bin=${ROVY_FAST_BIN:-$PWD/target/release/rovy-fast}
dir=$(mktemp -d)
label="overlay[$backend,chain-$nodes]"
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
# Link i joins node i (10.210.i.1) and node i+1 (10.210.i.2).
for i in $(seq 1 $((nodes - 1))); do
  a=${ns[$((i - 1))]}; b=${ns[$i]}
  ip link add "rfo$$l${i}a" type veth peer name "rfo$$l${i}b"
  ip link set "rfo$$l${i}a" netns "$a"; ip link set "rfo$$l${i}b" netns "$b"
  ip -n "$a" addr add "10.210.$i.1/24" dev "rfo$$l${i}a"
  ip -n "$b" addr add "10.210.$i.2/24" dev "rfo$$l${i}b"
  ip -n "$a" link set "rfo$$l${i}a" up; ip -n "$b" link set "rfo$$l${i}b" up
done

(umask 077; for i in $(seq 1 "$nodes"); do "$bin" genkey >"$dir/$i.key"; done)
pub() { "$bin" pubkey <"$dir/$1.key"; }
for i in $(seq 1 "$nodes"); do
  {
    printf '[interface]\nname = "rovy0"\nprivate_key_file = "%s"\nlisten_port = 1312\n' "$dir/$i.key"
    if [ "$i" -gt 1 ]; then
      printf '\n[[peer]]\npublic_key = "%s"\nendpoint = "10.210.%s.1:1312"\n' "$(pub $((i - 1)))" $((i - 1))
    fi
    if [ "$i" -lt "$nodes" ]; then
      printf '\n[[peer]]\npublic_key = "%s"\nendpoint = "10.210.%s.2:1312"\n' "$(pub $((i + 1)))" "$i"
    fi
  } >"$dir/$i.toml"
  chmod 600 "$dir/$i.toml"
done
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
import json, subprocess, sys
i, nodes, routes, d, binary = int(sys.argv[1]), int(sys.argv[2]), json.loads(sys.argv[3]), sys.argv[4], sys.argv[5]
by_key = {r["public_key"]: r for r in routes["routes"]}
for j in range(1, nodes + 1):
    if j == i:
        continue
    key = subprocess.run([binary, "pubkey"], stdin=open(f"{d}/{j}.key"), capture_output=True, text=True).stdout.strip()
    r = by_key.get(key)
    if r is None or r["metric"] != abs(i - j) or len(r["label"].split(".")) != abs(i - j):
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
