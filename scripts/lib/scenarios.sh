# shellcheck shell=bash
# shellcheck disable=SC2034 # the globals here are read by the scripts that source this file
# The end-to-end scenarios run by e2e.sh, and the checks they are made of. Source netns.sh,
# peers.sh and pair.sh first.
#
# A scenario is a function that returns 0 when it passed; on failure it sets FAIL_REASON and
# returns 1. Scenarios run in an `if`, where bash ignores `set -e`, so every step that matters
# is checked explicitly (`need DESCRIPTION COMMAND…`).

PASSED=0
FAILED=0
FAIL_REASON=""
TRANSFER_PORT=5001
TRANSFER_SEQ=0
BUDGET_START=0
# Set once the remaining scenarios cannot run; each is then reported as failed with this reason.
NOT_RUN_REASON=""

info() {
  echo "  $*"
}

# need DESCRIPTION CMD…: runs CMD; on failure records DESCRIPTION as the reason and returns 1.
need() {
  local description="$1"
  shift
  if "$@"; then
    return 0
  fi
  FAIL_REASON="$description"
  return 1
}

# budget_start: starts the time budget of one suite (one backend, or the self-check).
budget_start() {
  BUDGET_START=$SECONDS
  if [ "$NOT_RUN_REASON" = "the time budget of $BUDGET s was used up" ]; then
    NOT_RUN_REASON=""
  fi
}

# run_scenario NAME FUNCTION ARGS…: runs one scenario, prints PASS/FAIL, then stops both
# nodes and everything else it started and puts the underlay back, whatever happened.
run_scenario() {
  local name="$1"
  shift
  if [ $((SECONDS - BUDGET_START)) -ge "$BUDGET" ]; then
    NOT_RUN_REASON="the time budget of $BUDGET s was used up"
  fi
  if [ -n "$NOT_RUN_REASON" ]; then
    echo "FAIL $name: not run, $NOT_RUN_REASON"
    FAILED=$((FAILED + 1))
    return 0
  fi
  FAIL_REASON=""
  local started=$SECONDS
  if "$@" && nodes_still_alive; then
    info "took $((SECONDS - started)) s"
    echo "PASS $name"
    PASSED=$((PASSED + 1))
  else
    echo "FAIL $name: ${FAIL_REASON:-no reason recorded}"
    FAILED=$((FAILED + 1))
    local side
    for side in A B; do
      if [ -n "${NODE_LOG[$side]:-}" ]; then
        rf_log_tail "${NODE_LOG[$side]}"
      fi
    done
  fi
  nodes_stop_all
  # Helpers a failed scenario left behind (a transfer, the attacker) would hold ports.
  stop_all_started
  NODE_LOG=()
  if ! rf_restore_underlay_b4; then
    echo "FAIL $name: could not restore B's underlay address"
    FAILED=$((FAILED + 1))
    NOT_RUN_REASON="B's underlay address could not be restored"
  fi
}

# nodes_still_alive: both nodes of the scenario still run (a crash fails the scenario).
nodes_still_alive() {
  local side
  for side in A B; do
    if [ -n "${NODE_PID[$side]:-}" ] && ! node_alive "$side"; then
      FAIL_REASON="the ${NODE_IMPL[$side]} node on side $side died"
      return 1
    fi
  done
}

# make_data FILE MEGABYTES: random test data and its "<sha256> <size>" in FILE.sum.
make_data() {
  head -c "$2M" /dev/urandom >"$1"
  echo "$(sha256sum "$1" | cut -d' ' -f1) $(stat -c %s "$1")" >"$1.sum"
}

# start_pair IMPL_A IMPL_B: chooses and starts both nodes.
start_pair() {
  pair_set "$1" "$2"
  need "node A ($1) did not start" node_start A || return 1
  need "node B ($2) did not start" node_start B
}

# ping_first FROM ADDRESS: the first packet (it triggers the handshake), up to 10 s.
ping_first() {
  wait_for 10 run_in "${PAIR_NS[$1]}" ping -c1 -W1 "$2"
}

# ping_steady FROM ADDRESS: 5 echo requests, all answered within 6 s.
ping_steady() {
  run_in "${PAIR_NS[$1]}" timeout 10 ping -c5 -i0.2 -w6 -q "$2" >/dev/null
}

# pings_both_ways FIRST: FIRST pings its peer first, then both sides ping over IPv4 and IPv6.
pings_both_ways() {
  local first="$1" second
  second="$(other_side "$first")"
  need "first ping $first->$second (IPv4) got no answer within 10 s" ping_first "$first" "${PAIR_IN4[$second]}" || return 1
  need "ping $first->$second (IPv4) lost packets" ping_steady "$first" "${PAIR_IN4[$second]}" || return 1
  need "ping $second->$first (IPv4) lost packets" ping_steady "$second" "${PAIR_IN4[$first]}" || return 1
  need "ping $first->$second (IPv6) got no answer" ping_first "$first" "${PAIR_IN6[$second]}" || return 1
  need "ping $first->$second (IPv6) lost packets" ping_steady "$first" "${PAIR_IN6[$second]}" || return 1
  need "ping $second->$first (IPv6) lost packets" ping_steady "$second" "${PAIR_IN6[$first]}"
}

# transfer_start FROM TO FILE [MB_PER_S] [TIMEOUT]: TCP transfer of FILE over the tunnel's IPv4,
# receiver on TO, sender on FROM, both in the background (paced when MB_PER_S > 0).
transfer_start() {
  local from="$1" to="$2" file="$3" rate="${4:-0}" limit="${5:-120}"
  TRANSFER_SEQ=$((TRANSFER_SEQ + 1))
  TRANSFER_TAG="$RF_TMP/transfer-$TRANSFER_SEQ"
  TRANSFER_FILE="$file"
  TRANSFER_LIMIT="$limit"
  TRANSFER_STARTED=$SECONDS
  start_bg "${PAIR_NS[$to]}" "$TRANSFER_TAG.recv.log" timeout $((limit + 10)) \
    python3 "$RF_LIB/transfer.py" recv --bind "${PAIR_IN4[$to]}" --port "$TRANSFER_PORT" \
    --out "$TRANSFER_TAG.result" --ready "$TRANSFER_TAG.ready" --timeout "$limit" \
    --stats "$TRANSFER_TAG.stats"
  TRANSFER_RECV_PID="$RF_LAST_PID"
  if ! wait_for 10 test -s "$TRANSFER_TAG.ready"; then
    FAIL_REASON="transfer receiver did not listen: $(tail -n1 "$TRANSFER_TAG.recv.log" 2>/dev/null)"
    stop_pid "$TRANSFER_RECV_PID" || true
    return 1
  fi
  start_bg "${PAIR_NS[$from]}" "$TRANSFER_TAG.send.log" timeout $((limit + 10)) \
    python3 "$RF_LIB/transfer.py" send --host "${PAIR_IN4[$to]}" --port "$TRANSFER_PORT" \
    --file "$file" --rate "$rate" --timeout "$limit"
  TRANSFER_SEND_PID="$RF_LAST_PID"
}

# transfer_finish: waits (bounded) for the transfer started last and compares the SHA-256 and
# length the receiver saw with the sent file's. The receiver's figures (bytes, seconds, longest
# stall) are left in $TRANSFER_TAG.stats.
transfer_finish() {
  local send_rc=0 recv_rc=0
  wait_pid "$TRANSFER_SEND_PID" $((TRANSFER_LIMIT + 15)) || send_rc=$?
  wait_pid "$TRANSFER_RECV_PID" 15 || recv_rc=$?
  if [ "$send_rc" -ne 0 ]; then
    FAIL_REASON="transfer sender failed (exit $send_rc): $(tail -n1 "$TRANSFER_TAG.send.log" 2>/dev/null)"
    return 1
  fi
  if [ "$recv_rc" -ne 0 ]; then
    FAIL_REASON="transfer receiver failed (exit $recv_rc): $(tail -n1 "$TRANSFER_TAG.recv.log" 2>/dev/null)"
    return 1
  fi
  local expected received
  expected="$(cat "$TRANSFER_FILE.sum")"
  received="$(cat "$TRANSFER_TAG.result" 2>/dev/null || echo none)"
  if [ "$expected" != "$received" ]; then
    FAIL_REASON="transfer checksum mismatch: sent '$expected', received '$received'"
    return 1
  fi
  info "transfer of $(stat -c %s "$TRANSFER_FILE") bytes: sha256 matches ($((SECONDS - TRANSFER_STARTED)) s)"
}

transfer_check() {
  transfer_start "$@" && transfer_finish
}

# rovy_fc00_address SIDE: the node's own fc00 address, from `rovy-fast id`.
rovy_fc00_address() {
  timeout 10 "$ROVY_FAST_BIN" id "${PAIR_KEY[$1]}" | awk '$1 == "address:" {print $2}'
}

# scenario_basic IMPL_A IMPL_B: pings both ways (IPv4, IPv6; fc00 between rovy peers) and
# the big transfer A->B; for rovy, the status names the requested backend and the offloads
# (none with ROVY_OFFLOADS=off, TCP segmentation otherwise).
scenario_basic() {
  start_pair "$1" "$2" || return 1
  pings_both_ways A || return 1
  if [ "$1" = rovy ] && [ "$2" = rovy ] && [ "$ROVY_PEER_KIND" = rovy ]; then
    local fc_a fc_b
    fc_a="$(rovy_fc00_address A)" || fc_a=""
    fc_b="$(rovy_fc00_address B)" || fc_b=""
    need "rovy-fast id printed no fc00 address" test -n "$fc_a" || return 1
    need "rovy-fast id printed no fc00 address" test -n "$fc_b" || return 1
    need "ping A->B over fc00 ($fc_b) failed" ping_first A "$fc_b" || return 1
    need "ping B->A over fc00 ($fc_a) failed" ping_steady B "$fc_a" || return 1
  fi
  if [ "$1" = rovy ] && [ -n "${ROVY_BACKEND_ARG:-}" ]; then
    local side backend offloads
    for side in A B; do
      need "rovy-fast status failed on side $side" rovy_status "${PAIR_NS[$side]}" "${PAIR_SOCK[$side]}" "$RF_TMP/status-$side.json" || return 1
      backend="$(python3 "$RF_LIB/json_report.py" field "$RF_TMP/status-$side.json" backend)"
      need "side $side runs backend '$backend', not '$ROVY_BACKEND_ARG'" test "$backend" = "$ROVY_BACKEND_ARG" || return 1
      offloads="$(python3 "$RF_LIB/json_report.py" field "$RF_TMP/status-$side.json" offloads)"
      if [ "${ROVY_OFFLOADS:-auto}" = off ]; then
        need "side $side has offloads $offloads with ROVY_OFFLOADS=off" test "$offloads" = "[]" || return 1
      else
        need "side $side has no TCP segmentation offload: $offloads" grep -q tun-tso4 <<<"$offloads" || return 1
      fi
    done
  fi
  transfer_check A B "$RF_TMP/data-main"
}

# scenario_first_packet IMPL_A IMPL_B: A starts while B is down, so its handshake goes
# unanswered and is retried every 5 s; B starts without A's endpoint, so only A can initiate.
# A single ping from A, sent before any handshake completed, must then be answered: A holds
# it through the handshake, as WireGuard stages packets for a peer without a session.
scenario_first_packet() {
  pair_set "$1" "$2"
  need "node A ($1) did not start" node_start A || return 1
  sleep 1
  PAIR_NO_ENDPOINT[B]=1
  node_start B
  local started=$?
  PAIR_NO_ENDPOINT=()
  need "node B ($2) did not start" test "$started" = 0 || return 1
  need "a single ping A->B sent before the handshake got no answer within 12 s" \
    run_in "${PAIR_NS[A]}" ping -c1 -W12 "${PAIR_IN4[B]}" >/dev/null
}

# scenario_interop IMPL_A IMPL_B FIRST: FIRST sends the first packet (and so initiates the
# handshake); pings both ways and a transfer in each direction.
scenario_interop() {
  start_pair "$1" "$2" || return 1
  pings_both_ways "$3" || return 1
  transfer_check A B "$RF_TMP/data-small" || return 1
  transfer_check B A "$RF_TMP/data-small"
}

# scenario_roaming IMPL_A IMPL_B: B sends a paced transfer to A and its underlay address moves
# from 10.201.0.2 to 10.201.0.3 in the middle; A must follow B's new source address.
scenario_roaming() {
  start_pair "$1" "$2" || return 1
  need "first ping B->A got no answer" ping_first B "${PAIR_IN4[A]}" || return 1
  transfer_start B A "$RF_TMP/data-small" "$ROAM_RATE" 60 || return 1
  sleep 3
  rf_move_underlay_b4 10.201.0.3
  info "moved B's underlay address to 10.201.0.3"
  local moved=$SECONDS
  need "ping B->A did not resume within 10 s of the move" ping_first B "${PAIR_IN4[A]}" || return 1
  need "ping A->B did not resume within 10 s" ping_first A "${PAIR_IN4[B]}" || return 1
  info "traffic resumed $((SECONDS - moved)) s after the move"
  transfer_finish || return 1
  local endpoint
  endpoint="$(peer_endpoint_seen_by A)" || endpoint="unknown"
  case "$endpoint" in
    "10.201.0.3:$RF_PORT" | "[::ffff:10.201.0.3]:$RF_PORT") ;;
    *)
      FAIL_REASON="A holds endpoint '$endpoint' for B, not 10.201.0.3:$RF_PORT"
      return 1
      ;;
  esac
}

# iface_gone NS IFNAME: true when the interface no longer exists in NS.
iface_gone() {
  ! run_in "$1" ip link show "$2" >/dev/null 2>&1
}

# scenario_restart IMPL_A IMPL_B: B stops (SIGTERM) and starts again with the same config and
# key; A is not touched and its pings must get answers again within 40 s.
scenario_restart() {
  start_pair "$1" "$2" || return 1
  need "first ping A->B got no answer" ping_first A "${PAIR_IN4[B]}" || return 1
  need "ping A->B lost packets" ping_steady A "${PAIR_IN4[B]}" || return 1
  local rc=0
  node_stop B || rc=$?
  if [ "$2" = rovy ]; then
    need "rovy-fast on B exited with status $rc on SIGTERM" test "$rc" -eq 0 || return 1
  fi
  need "B's interface still exists after its node stopped" wait_for 5 iface_gone "${PAIR_NS[B]}" "${PAIR_IF[B]}" || return 1
  need "node B did not start again" node_start B || return 1
  local restarted=$SECONDS
  need "ping A->B did not resume within 40 s of B's restart" wait_for 40 run_in "${PAIR_NS[A]}" ping -c1 -W1 "${PAIR_IN4[B]}" || return 1
  info "ping A->B resumed $((SECONDS - restarted)) s after the restart"
  need "ping A->B lost packets after the restart" ping_steady A "${PAIR_IN4[B]}" || return 1
  need "ping B->A lost packets after the restart" ping_steady B "${PAIR_IN4[A]}"
}

# scenario_hostile IMPL_A IMPL_B: captures real datagrams on B's veth, then throws garbage,
# truncated, forged and replayed datagrams at A's port from namespace B while B sends a paced
# transfer to A. The transfer must complete intact, A must live on, and (rovy) A's drop
# counters must show each kind of input.
scenario_hostile() {
  start_pair "$1" "$2" || return 1
  local captures="$RF_TMP/captures.jsonl" stop="$RF_TMP/attack.stop" report="$RF_TMP/attack.json"
  rm -f "$captures" "$stop" "$report" "$captures.ready"
  start_bg "${PAIR_NS[B]}" "$RF_TMP/capture.log" timeout 30 python3 "$RF_LIB/hostile.py" capture \
    --iface "$RF_VETH_B" --port "$RF_PORT" --count 48 --seconds 20 --out "$captures" --ready "$captures.ready"
  local capture_pid="$RF_LAST_PID"
  if ! wait_for 10 test -s "$captures.ready"; then
    FAIL_REASON="capturing datagrams did not start: $(tail -n1 "$RF_TMP/capture.log" 2>/dev/null)"
    return 1
  fi
  pings_both_ways A || return 1
  transfer_start B A "$RF_TMP/data-main" "$HOSTILE_RATE" 90 || return 1
  if ! wait_pid "$capture_pid" 25; then
    FAIL_REASON="capturing datagrams failed: $(tail -n1 "$RF_TMP/capture.log" 2>/dev/null)"
    return 1
  fi
  info "captured $(wc -l <"$captures") real datagrams"
  start_bg "${PAIR_NS[B]}" "$RF_TMP/attack.log" timeout 100 python3 "$RF_LIB/hostile.py" attack \
    --target "$RF_UNDERLAY_A4" --port "$RF_PORT" --captures "$captures" --stop-file "$stop" \
    --max-seconds 90 --report "$report"
  local attack_pid="$RF_LAST_PID"
  transfer_finish || return 1
  touch "$stop"
  if ! wait_pid "$attack_pid" 15; then
    FAIL_REASON="the attacker failed: $(tail -n1 "$RF_TMP/attack.log" 2>/dev/null)"
    return 1
  fi
  info "attack: $(cat "$report")"
  need "the transfer ended before a full round of hostile input" grep -q '"rounds": [1-9]' "$report" || return 1
  need "node A died under hostile input" node_alive A || return 1
  need "ping A->B lost packets after the attack" ping_steady A "${PAIR_IN4[B]}" || return 1
  if [ "$1" = rovy ]; then
    local status="$RF_TMP/status-A.json" verdict
    need "rovy-fast status failed on side A" rovy_status "${PAIR_NS[A]}" "${PAIR_SOCK[A]}" "$status" || return 1
    if ! verdict="$(python3 "$RF_LIB/json_report.py" hostile-drops "$status")"; then
      FAIL_REASON="drop counters: $(echo "$verdict" | tr '\n' ' ')"
      return 1
    fi
    info "A's drops: $verdict"
  fi
}
