#!/usr/bin/env bash
# What the control plane costs a node with 1 000 peers, and whether it stalls the data path:
# node A has 999 made-up WireGuard peers (100 allowed IPs each, from scripts/lib/many_peers.py)
# and one real one, node B. Prints
#   - the time a SIGHUP reload takes (signal to the "reloaded" log line), median of 10, each
#     reload adding or removing a peer;
#   - the time a /metrics scrape takes over HTTP, median of 20;
#   - iperf3 TCP throughput from B to A for 8 s each: alone, during a reload every 0.5 s, and
#     during back-to-back scrapes (same run, so compare the three).
# Needs root; cleans up on exit. A measurement, not a test: it asserts nothing about speed.
#   sudo scripts/bench-control.sh [--no-build]
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=lib/netns.sh
source scripts/lib/netns.sh
# shellcheck source=lib/apt.sh
source scripts/lib/apt.sh
rf_ensure_commands iperf3=iperf3 ping=iputils-ping
[ "${1:-}" = --no-build ] || cargo build --quiet --release --locked -p rovy-control
bin=${ROVY_FAST_BIN:-$PWD/target/release/rovy-fast}
rf_netns_setup

for side in a b; do (umask 077; "$bin" genkey >"$RF_TMP/$side.key"); done
conf() { # conf SIDE PEER_SIDE PEER_UNDERLAY INNER PEER_INNER [METRICS]
  {
    printf '[interface]\nname = "rfc%s"\nprivate_key_file = "%s"\nlisten_port = 1312\naddresses = ["%s/24"]\n' "$1" "$RF_TMP/$1.key" "$4"
    [ -z "${6:-}" ] || printf 'metrics = "%s"\n' "$6"
    printf '\n[[peer]]\npublic_key = "%s"\nkind = "wireguard"\nendpoint = "%s:1312"\nallowed_ips = ["%s/32"]\n' \
      "$("$bin" pubkey <"$RF_TMP/$2.key")" "$3" "$5"
  } >"$RF_TMP/$1.toml"
  chmod 600 "$RF_TMP/$1.toml"
}
conf a b "$RF_UNDERLAY_B4" 10.204.0.1 10.204.0.2 127.0.0.1:9586
conf b a "$RF_UNDERLAY_A4" 10.204.0.2 10.204.0.1
python3 scripts/lib/many_peers.py "$RF_TMP/a.toml" 1000 100 172.31.0.0 >/dev/null
cp "$RF_TMP/a.toml" "$RF_TMP/a-1000.toml"
start_bg "$RF_NS_A" "$RF_TMP/a.log" "$bin" --cores 1 --cpus 0 --socket "$RF_TMP/a.sock" "$RF_TMP/a.toml"
a_pid=$RF_LAST_PID
start_bg "$RF_NS_B" "$RF_TMP/b.log" "$bin" --cores 1 --cpus 1 --socket "$RF_TMP/b.sock" "$RF_TMP/b.toml"
b_pid=$RF_LAST_PID
rf_wait_ready "$RF_TMP/a.log" "$a_pid" 30 || { tail "$RF_TMP/a.log"; exit 1; }
rf_wait_ready "$RF_TMP/b.log" "$b_pid" 30 || exit 1
wait_for 10 run_in "$RF_NS_B" ping -c1 -W1 10.204.0.1 || { echo "no tunnel"; exit 1; }

# reload_once: a SIGHUP and the time until A logs it applied, in ms.
reload_once() {
  local before start
  before=$(grep -c '^rovy-fast: reloaded ' "$RF_TMP/a.log" || true)
  start=$(date +%s%N)
  kill -HUP "$a_pid"
  until [ "$(grep -c '^rovy-fast: reloaded ' "$RF_TMP/a.log" || true)" -gt "$before" ]; do sleep 0.002; done
  echo $((($(date +%s%N) - start) / 1000000))
}
# The config alternates between 1000 peers and 999 (the first made-up peer removed).
python3 - "$RF_TMP/a-1000.toml" "$RF_TMP/a-999.toml" <<'PY'
import sys
text = open(sys.argv[1]).read()
head, first, rest = text.split("\n[[peer]]\n", 2)
open(sys.argv[2], "w").write(head + "\n[[peer]]\n" + rest)
PY
chmod 600 "$RF_TMP"/a-*.toml
reloads=()
for i in $(seq 10); do
  if [ $((i % 2)) = 1 ]; then cp "$RF_TMP/a-999.toml" "$RF_TMP/a.toml"; else cp "$RF_TMP/a-1000.toml" "$RF_TMP/a.toml"; fi
  reloads+=("$(reload_once)")
done
scrapes=$(ip netns exec "$RF_NS_A" python3 - <<'PY'
import statistics, time, urllib.request
times = []
for _ in range(20):
    start = time.perf_counter()
    body = urllib.request.urlopen("http://127.0.0.1:9586/metrics", timeout=5).read()
    times.append((time.perf_counter() - start) * 1000)
print(f"{statistics.median(times):.1f} ms (min {min(times):.1f}, max {max(times):.1f}), {len(body)} bytes")
PY
)
median() { python3 -c 'import statistics, sys; print(statistics.median(map(int, sys.argv[1:])))' "$@"; }
echo "reload with 1000 peers (one added or removed): median $(median "${reloads[@]}") ms over 10 (${reloads[*]})"
echo "scrape of /metrics with 1000 peers over HTTP: $scrapes"

start_bg "$RF_NS_A" "$RF_TMP/iperf.log" iperf3 -s -B 10.204.0.1
sleep 0.5
throughput() { # the TCP throughput B to A over 8 s, Gbit/s
  ip netns exec "$RF_NS_B" iperf3 -c 10.204.0.1 -t 8 -J | python3 -c 'import json, sys; print(round(json.load(sys.stdin)["end"]["sum_received"]["bits_per_second"] / 1e9, 3))'
}
alone=$(throughput)
( while :; do cp "$RF_TMP/a-999.toml" "$RF_TMP/a.toml"; kill -HUP "$a_pid"; sleep 0.25; cp "$RF_TMP/a-1000.toml" "$RF_TMP/a.toml"; kill -HUP "$a_pid"; sleep 0.25; done ) &
loop=$!
during_reload=$(throughput)
kill "$loop"; wait "$loop" 2>/dev/null || true
ip netns exec "$RF_NS_A" python3 -c '
import time, urllib.request
end = time.time() + 9
while time.time() < end:
    urllib.request.urlopen("http://127.0.0.1:9586/metrics", timeout=5).read()
' &
loop=$!
during_scrape=$(throughput)
wait "$loop" || true
echo "TCP B -> A, Gbit/s: alone $alone; during a reload every 0.5 s $during_reload; during back-to-back scrapes $during_scrape"
