#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# Throughput of rovy-fast, boringtun-cli and wireguard-go through the same two namespaces, in
# one run: the same implementation at both ends of a veth pair, iperf3 client in A, server in B.
#
#   sudo scripts/bench-throughput.sh [--quick] [--only NAME,NAME…]
#
# Implementations: rovy-c1, rovy-c2 (rovy-fast --cores 1/2), boringtun-t1, boringtun-t2
# (boringtun-cli --threads 1/2), wireguard-go; and rovy-routed: three rovy-fast nodes in a
# chain (each --cores 1, pinned to CPUs 0, 1, 0), TCP between the ends' fc00 addresses through
# the middle node, end-to-end sessions inside the links (TCP only). A rovy row reads "not
# built" until target/release/rovy-fast exists (cargo build --release -p rovy-control).
# Measures:
#   TCP   iperf3 -c 10.202.0.2 -t 10, one stream, 3 runs: median and min–max Gbit/s received
#   UDP   paced capacity: offered 20/40/60/80/100/120/140/160/200/240 k pkt/s (-u -l SIZE -b RATE -w 4M -t 5)
#         at 64 and 1392 bytes; the figure is the highest offered rate with under 1 % loss
#         (the sweep stops at the first step with more)
#   CPU   utime+stime of both tunnel daemons from /proc/PID/stat, in % of one core, per run
# Placement: both nodes share this machine, and a peer's traffic runs on the same home worker
# index at both ends of a link, so rovy-fast nodes are pinned apart as two machines would be:
# A's worker i on CPU i, B's on CPU i+1 (mod the CPU count), via --cpus. boringtun and
# wireguard-go pin nothing; the scheduler spreads their threads.
# --quick: 1 TCP run and the steps 20/40/80/160 k pkt/s. Prints the raw runs as it goes and
# one markdown table at the end, with rovy-fast's ratio to each other implementation.
set -euo pipefail

RF_SCRIPTS="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=lib/netns.sh
source "$RF_SCRIPTS/lib/netns.sh"
# shellcheck source=lib/peers.sh
source "$RF_SCRIPTS/lib/peers.sh"
# shellcheck source=lib/pair.sh
source "$RF_SCRIPTS/lib/pair.sh"
# shellcheck source=lib/overlay_net.sh
source "$RF_SCRIPTS/lib/overlay_net.sh"

usage() {
  awk 'NR > 2 && /^#/ { sub(/^# ?/, ""); print; next } NR > 2 { exit }' "$0"
  exit 2
}

command_line="scripts/bench-throughput.sh${*:+ $*}"
all=(rovy-c1 rovy-c2 rovy-routed boringtun-t1 boringtun-t2 wireguard-go)
selected=("${all[@]}")
tcp_runs=3
rates=(20 40 60 80 100 120 140 160 200 240)
while [ $# -gt 0 ]; do
  case "$1" in
    --quick)
      tcp_runs=1
      rates=(20 40 80 160)
      shift
      ;;
    --only)
      [ $# -ge 2 ] || usage
      IFS=, read -r -a selected <<<"$2"
      shift 2
      ;;
    *) usage ;;
  esac
done
for name in "${selected[@]}"; do
  case " ${all[*]} " in
    *" $name "*) ;;
    *) echo "unknown implementation '$name' (known: ${all[*]})" >&2 && exit 2 ;;
  esac
done

command -v iperf3 >/dev/null || { echo "iperf3 missing: run scripts/install-peers.sh" >&2 && exit 1; }
rf_netns_setup
pair_init
results="$RF_TMP/results.tsv"
: >"$results"
clk_tck="$(getconf CLK_TCK)"
server_pid=""

# daemon_ticks: utime+stime of both running daemons, in clock ticks.
daemon_ticks() {
  echo $(($(rf_cpu_ticks "${NODE_PID[A]}") + $(rf_cpu_ticks "${NODE_PID[B]}")))
}

# measure OUTFILE IPERF3-ARGS…: one iperf3 client run from A (JSON in OUTFILE, its stderr in
# OUTFILE.err); prints the daemons' CPU time during the run in % of one core.
measure() {
  local out="$1"
  shift
  local ticks0 ticks1 t0 t1
  ticks0="$(daemon_ticks)"
  t0="$(date +%s.%N)"
  run_in "$RF_NS_A" timeout 40 iperf3 -c "${PAIR_IN4[B]}" -J "$@" >"$out" 2>"$out.err" || true
  t1="$(date +%s.%N)"
  ticks1="$(daemon_ticks)"
  awk -v d="$((ticks1 - ticks0))" -v hz="$clk_tck" -v t0="$t0" -v t1="$t1" \
    'BEGIN { printf "%.0f\n", 100 * d / hz / (t1 - t0) }'
}

# cpu_list FIRST COUNT: COUNT CPU ids from FIRST upwards, wrapping at the CPU count (1,0).
cpu_list() {
  local n i ids=()
  n="$(nproc)"
  for ((i = 0; i < $2; i++)); do ids+=($((($1 + i) % n))); done
  local IFS=,
  echo "${ids[*]}"
}

# tcp_listening NS PORT: something listens on TCP PORT in NS.
tcp_listening() {
  run_in "$1" ss -Hltn "sport = :$2" | grep -q .
}

# routed_args I: node I of the routed chain runs one worker, the ends on CPU 0, the middle on 1.
routed_args() {
  echo "--cores 1 --cpus $(( $1 == 2 ? 1 : 0 ))"
}

# bench_routed: a chain of three rovy-fast nodes, TCP from the first to the last through the
# middle one, over the overlay; appends its TCP runs to results.
bench_routed() {
  if [ ! -x "$ROVY_FAST_BIN" ]; then
    printf 'rovy-routed\tstatus\tnot built\n' >>"$results"
    return 0
  fi
  OV_BIN="$ROVY_FAST_BIN" OV_DIR="$RF_TMP/routed"
  mkdir -p "$OV_DIR"
  ov_chain 3
  ov_setup
  RF_NAMESPACES+=("${OV_NS[@]}")
  if ! ov_start routed_args || ! ov_wait_converged 30; then
    printf 'rovy-routed\tstatus\tno routes\n' >>"$results"
    ov_cleanup
    return 0
  fi
  local far pid run json cpu tcp t0 t1 ticks0 ticks1
  far="$(ov_addr 3)"
  start_bg "${OV_NS[2]}" "$RF_TMP/iperf3-server-routed.log" iperf3 -s -B "$far"
  server_pid="$RF_LAST_PID"
  if ! wait_for 10 tcp_listening "${OV_NS[2]}" 5201 ||
    ! wait_for 10 run_in "${OV_NS[0]}" ping -6 -c1 -W1 "$far"; then
    printf 'rovy-routed\tstatus\tno path\n' >>"$results"
    ov_cleanup
    return 0
  fi
  for run in $(seq 1 "$tcp_runs"); do
    json="$RF_TMP/rovy-routed-tcp-$run.json"
    ticks0=0; for pid in "${OV_PIDS[@]}"; do ticks0=$((ticks0 + $(rf_cpu_ticks "$pid"))); done
    t0="$(date +%s.%N)"
    run_in "${OV_NS[0]}" timeout 40 iperf3 -c "$far" -J -t 10 >"$json" 2>"$json.err" || true
    t1="$(date +%s.%N)"
    ticks1=0; for pid in "${OV_PIDS[@]}"; do ticks1=$((ticks1 + $(rf_cpu_ticks "$pid"))); done
    cpu="$(awk -v d="$((ticks1 - ticks0))" -v hz="$clk_tck" -v t0="$t0" -v t1="$t1" \
      'BEGIN { printf "%.0f\n", 100 * d / hz / (t1 - t0) }')"
    if tcp="$(python3 "$RF_LIB/json_report.py" tcp "$json")"; then
      rf_log "rovy-routed TCP run $run: Gbit/s, retransmits: $tcp; daemons' CPU $cpu %"
      printf 'rovy-routed\ttcp\t%s %s\n' "$tcp" "$cpu" | tr ' ' '\t' >>"$results"
    else
      rf_log "rovy-routed TCP run $run failed: $(head -c 300 "$json")"
    fi
    sleep 1
  done
  stop_pid "$server_pid" || true
  server_pid=""
  ov_cleanup
}

# bench_one NAME: starts the pair for NAME, runs TCP and the UDP sweeps, appends to results.
bench_one() {
  if [ "$1" = rovy-routed ]; then
    bench_routed
    return 0
  fi
  local name="$1" impl args=() args_b=()
  case "$name" in
    rovy-c*)
      impl=rovy
      args=(--cores "${name#rovy-c}" --cpus "$(cpu_list 0 "${name#rovy-c}")")
      args_b=(--cores "${name#rovy-c}" --cpus "$(cpu_list 1 "${name#rovy-c}")")
      ;;
    boringtun-t*) impl=boringtun args=(--threads "${name#boringtun-t}") ;;
    wireguard-go) impl=wireguard-go ;;
  esac
  if [ "$impl" = rovy ] && [ ! -x "$ROVY_FAST_BIN" ]; then
    printf '%s\tstatus\tnot built\n' "$name" >>"$results"
    return 0
  fi
  pair_set "$impl" "$impl"
  [ "${#args_b[@]}" -gt 0 ] || args_b=("${args[@]}")
  if ! node_start A "${args[@]}" || ! node_start B "${args_b[@]}"; then
    printf '%s\tstatus\tfailed to start\n' "$name" >>"$results"
    return 0
  fi
  if ! wait_for 10 run_in "$RF_NS_A" ping -c1 -W1 "${PAIR_IN4[B]}"; then
    printf '%s\tstatus\tno handshake\n' "$name" >>"$results"
    return 0
  fi
  start_bg "$RF_NS_B" "$RF_TMP/iperf3-server-$name.log" iperf3 -s -B "${PAIR_IN4[B]}"
  server_pid="$RF_LAST_PID"
  if ! wait_for 10 tcp_listening "$RF_NS_B" 5201; then
    printf '%s\tstatus\tiperf3 server did not start\n' "$name" >>"$results"
    return 0
  fi
  local run cpu tcp json
  for run in $(seq 1 "$tcp_runs"); do
    json="$RF_TMP/$name-tcp-$run.json"
    cpu="$(measure "$json" -t 10)"
    if tcp="$(python3 "$RF_LIB/json_report.py" tcp "$json")"; then
      rf_log "$name TCP run $run: Gbit/s, retransmits: $tcp; daemon CPU $cpu %"
      printf '%s\ttcp\t%s %s\n' "$name" "$tcp" "$cpu" | tr ' ' '\t' >>"$results"
    else
      rf_log "$name TCP run $run failed: $(head -c 300 "$json")"
    fi
    sleep 1
  done
  local size rate bps udp loss
  for size in 64 1392; do
    for rate in "${rates[@]}"; do
      bps=$((rate * 1000 * size * 8))
      json="$RF_TMP/$name-udp$size-$rate.json"
      cpu="$(measure "$json" -u -l "$size" -b "$bps" -w 4M -t 5)"
      if ! udp="$(python3 "$RF_LIB/json_report.py" udp "$json")"; then
        rf_log "$name UDP $size B at $rate k pkt/s failed: $(head -c 300 "$json")"
        break
      fi
      rf_log "$name UDP $size B offered $rate k pkt/s: loss %, received pkt/s, sent: $udp; daemon CPU $cpu %"
      printf '%s\tudp%s\t%s %s %s\n' "$name" "$size" "$rate" "$udp" "$cpu" | tr ' ' '\t' >>"$results"
      loss="${udp%% *}"
      awk -v l="$loss" 'BEGIN { exit !(l < 1) }' || break
      sleep 1
    done
  done
}

echo "command: $command_line"
echo "date: $(date -u '+%Y-%m-%d %H:%M UTC'), kernel $(uname -r), $(nproc) CPUs"
for name in "${selected[@]}"; do
  rf_log "== $name"
  bench_one "$name"
  if [ -n "$server_pid" ]; then
    stop_pid "$server_pid" || true
    server_pid=""
  fi
  nodes_stop_all
  sleep 1
done
python3 "$RF_LIB/bench_table.py" "$results"
