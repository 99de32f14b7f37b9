#!/usr/bin/env bash
# Failover on a real overlay: 5 nodes with two disjoint paths from node 1 to node 4, the short
# one through node 2 (1-2-4) and a longer one through nodes 3 and 5 (1-3-5-4). A 10 ms ping
# stream runs from node 1 to node 4 while
#   node:  node 2 is killed with SIGKILL, then started again;
#   link:  the link 2-4 is cut (ip link set down on both ends), then restored.
# Each time the pings must resume within 10 s over the long path (the script prints the gap,
# the longest silence between two replies, and the packets lost), traceroute6 must show the
# long path, and once node 2 or the link is back, the short path again. Then a checksummed TCP
# transfer from node 1 to node 4 crosses a node failure. With --runs N the two failovers repeat
# N times and a summary gives the median and range of the gaps. Needs root; cleans up on exit.
#   sudo scripts/e2e-failover.sh [--backend uring|epoll] [--runs N] [--no-build]
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=lib/node.sh
source scripts/lib/node.sh
# shellcheck source=lib/overlay_net.sh
source scripts/lib/overlay_net.sh
# shellcheck source=lib/apt.sh
source scripts/lib/apt.sh
rf_ensure_commands ping=iputils-ping traceroute6=traceroute

backend=uring; runs=1; build=1
while [ $# -gt 0 ]; do
  case "$1" in
    --backend) backend="$2"; shift 2 ;;
    --runs) runs="$2"; shift 2 ;;
    --no-build) build=0; shift ;;
    *) echo "usage: $0 [--backend uring|epoll] [--runs N] [--no-build]" >&2; exit 2 ;;
  esac
done
[ "$build" = 0 ] || cargo build --quiet --release --locked -p rovy-control
OV_BIN=${ROVY_FAST_BIN:-$PWD/target/release/rovy-fast}
OV_DIR=$(mktemp -d)
dir=$OV_DIR bin=$OV_BIN
label="failover[$backend]"
cleanup() {
  ov_cleanup
  rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
fail() {
  echo "FAIL $label: $*"
  for f in "$dir"/*.log; do [ -e "$f" ] && sed "s|^|  $(basename "$f" .log): |" "$f" | tail -4; done
  exit 1
}
node_args() { echo "--backend $backend --cores 1"; }

ov_two_paths
ov_setup
ov_start node_args || fail "a node did not start"
ov_wait_converged 40 || fail "routes did not converge within 40 s"
b_addr=$(ov_addr 4)
short_path="$(ov_addr 2) $b_addr"
long_path="$(ov_addr 3) $(ov_addr 5) $b_addr"

# hops: the addresses traceroute6 lists from node 1 to node 4, space-separated.
hops() {
  ip netns exec "${OV_NS[0]}" timeout 30 traceroute6 -n -q 1 -w 2 -m 6 "$b_addr" 2>/dev/null |
    awk 'NR > 1 { print $2 }' | paste -sd' '
}

# wait_path PATH SECONDS: until traceroute6 shows PATH.
wait_path() {
  local deadline=$((SECONDS + $2)) seen=""
  while [ "$SECONDS" -lt "$deadline" ]; do
    seen=$(hops)
    [ "$seen" = "$1" ] && return 0
    sleep 1
  done
  echo "traceroute6 shows [$seen]" >&2
  return 1
}

wait_path "$short_path" 20 || fail "node 1 does not start on the short path through node 2"
echo "  converged; traceroute6 1 -> 4 goes through node 2: $short_path"

# stream_start SECONDS: a 10 ms ping stream from node 1 to node 4, replies timestamped.
stream_start() {
  ip netns exec "${OV_NS[0]}" ping -6 -D -i 0.01 -W 1 -w "$1" "$b_addr" >"$dir/stream" 2>&1 &
  stream_pid=$!
}

# stream_wait: waits for the stream to end (in this shell: a subshell cannot wait for it).
stream_wait() {
  wait "$stream_pid" || true
  stream_ended=$EPOCHREALTIME
}

# stream_report: after stream_wait, prints "GAP_MS LOST ERRORS": the longest silence between
# two replies or after the last one (until ping ended), the requests that silence stands for
# at 10 ms apiece (ping's own loss count is lower: it slows down while nothing comes back), and
# the ICMPv6 errors ping got (it ends at the first one, as `-w` makes it).
stream_report() {
  python3 - "$dir/stream" "$stream_ended" <<'PY'
import re, sys
times, sent, got, errors = [], 0, 0, 0
for line in open(sys.argv[1]):
    m = re.match(r"\[(\d+\.\d+)\] \d+ bytes from", line)
    if m:
        times.append(float(m.group(1)))
    m = re.search(r"(\d+) packets transmitted, (\d+) received(?:, \+(\d+) errors)?", line)
    if m:
        sent, got, errors = int(m.group(1)), int(m.group(2)), int(m.group(3) or 0)
ended = float(sys.argv[2])
gap = max((b - a for a, b in zip(times, times[1:] + [ended])), default=float("inf"))
print(f"{gap * 1000:.0f} {max(sent - got, round(gap * 100) - 1)} {errors}")
PY
}

# stream_errors: the ICMPv6 errors ping printed, for a failure message.
stream_errors() {
  grep -m3 "^\[.*\] From " "$dir/stream" | tr '\n' ' '
}

gaps_node=() gaps_link=()
for run in $(seq 1 "$runs"); do
  # A node on the path dies.
  stream_start 16
  sleep 3
  ov_kill 2
  sleep 12
  stream_wait
  read -r gap lost errors < <(stream_report)
  [ "$errors" = 0 ] || fail "run $run: after node 2 died, pings got $errors ICMPv6 errors: $(stream_errors)"
  [ "$gap" != inf ] && [ "$gap" -lt 10000 ] || fail "run $run: after node 2 died, pings did not resume within 10 s (gap $gap ms)"
  tail -4 "$dir/stream" | grep -q " 0 received" && fail "run $run: no replies at all"
  grep -q "bytes from" <(tail -20 "$dir/stream") || fail "run $run: the stream did not end with replies"
  wait_path "$long_path" 10 || fail "run $run: traceroute6 does not show the long path after node 2 died"
  echo "  run $run, node 2 killed: pings resumed after a gap of $gap ms, $lost lost; now through $long_path"
  gaps_node+=("$gap")
  ov_start_one 2 $(node_args) || fail "node 2 did not restart"
  wait_path "$short_path" 40 || fail "run $run: the short path did not come back after node 2 restarted"
  echo "  run $run, node 2 restarted: back on the short path"

  # A link on the path is cut.
  stream_start 16
  sleep 3
  ov_link_set 2 4 down
  sleep 12
  stream_wait
  read -r gap lost errors < <(stream_report)
  [ "$errors" = 0 ] || fail "run $run: after link 2-4 was cut, pings got $errors ICMPv6 errors: $(stream_errors)"
  [ "$gap" != inf ] && [ "$gap" -lt 10000 ] || fail "run $run: after link 2-4 was cut, pings did not resume within 10 s (gap $gap ms)"
  wait_path "$long_path" 10 || fail "run $run: traceroute6 does not show the long path after link 2-4 was cut"
  echo "  run $run, link 2-4 cut: pings resumed after a gap of $gap ms, $lost lost; now through $long_path"
  gaps_link+=("$gap")
  ov_link_set 2 4 up
  wait_path "$short_path" 40 || fail "run $run: the short path did not come back after link 2-4 was restored"
  echo "  run $run, link 2-4 restored: back on the short path"
done

# A checksummed TCP transfer across a node failure.
head -c $((30 << 20)) /dev/urandom >"$dir/data"
ip netns exec "${OV_NS[3]}" timeout 90 python3 scripts/lib/transfer.py recv \
  --bind "$b_addr" --port 5401 --out "$dir/result" --ready "$dir/ready" --timeout 80 >"$dir/recv.out" 2>&1 &
recv_pid=$!
for _ in $(seq 100); do [ -s "$dir/ready" ] && break; sleep 0.1; done
ip netns exec "${OV_NS[0]}" timeout 90 python3 scripts/lib/transfer.py send \
  --host "$b_addr" --port 5401 --file "$dir/data" --rate 3 --timeout 80 >"$dir/send.out" 2>&1 &
send_pid=$!
sleep 3
ov_kill 2
wait "$send_pid" || fail "the transfer across the failover failed: $(cat "$dir/send.out")"
wait "$recv_pid" || fail "the receiver failed: $(cat "$dir/recv.out")"
expected="$(sha256sum "$dir/data" | cut -d' ' -f1) $((30 << 20))"
[ "$(cat "$dir/result")" = "$expected" ] || fail "the transfer arrived as $(cat "$dir/result"), sent $expected"
echo "  30 MB from node 1 to node 4 while node 2 died: sha256 matches"

summary() { # summary NAME GAPS…
  local name="$1"
  shift
  python3 -c 'import statistics, sys; g = sorted(map(int, sys.argv[2:])); print(f"  {sys.argv[1]}: median {statistics.median(g):.0f} ms, min {g[0]} ms, max {g[-1]} ms over {len(g)} run(s)")' "$name" "$@"
}
summary "failover gap, node killed" "${gaps_node[@]}"
summary "failover gap, link cut" "${gaps_link[@]}"
echo "PASS $label"
