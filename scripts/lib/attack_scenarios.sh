# shellcheck shell=bash
# shellcheck disable=SC2034 # the globals here are read by the scripts that source this file
# The attack and fault scenarios run by e2e-attacks.sh: handshake floods, loss and reordering,
# rekeying under traffic. Source netns.sh, peers.sh, pair.sh and scenarios.sh first, then call
# `attack_net_setup` after `rf_netns_setup` and `pair_init`.
#
# Extra namespaces, each joined to A (and the relay also to B) by a veth of its own:
#   F  the flooder: 10.204.0.2, A is 10.204.0.1; the sources 10.203.0.0/16 are local to F
#      (`ip route add local`) and A routes them to F, so cookie replies reach the flooder
#   R  the impairment relay: 10.205.0.2 towards A (.1), 10.206.0.2 towards B (.1)
#   C  a third node, A's second peer in the rekey scenario: 10.207.0.2, A is 10.207.0.1

FLOOD_TARGET=10.204.0.1
FLOOD_NET=10.203.0.0
FLOOD_PORT=40000
RELAY_A=10.205.0.2
RELAY_B=10.206.0.2
# Figures a scenario reports, one "name value" line each, gathered in RF_TMP/figures.
FIGURES=""

attack_net_setup() {
  rf_netns_add f
  NS_F="$RF_LAST_NS"
  rf_netns_link "$RF_NS_A" "$NS_F" 10.204.0 || return 1
  ip -n "$NS_F" route add local "$FLOOD_NET/16" dev lo
  ip -n "$RF_NS_A" route add "$FLOOD_NET/16" via 10.204.0.2
  rf_netns_add r
  NS_R="$RF_LAST_NS"
  rf_netns_link "$RF_NS_A" "$NS_R" 10.205.0 || return 1
  rf_netns_link "$RF_NS_B" "$NS_R" 10.206.0 || return 1
  rf_netns_add c
  NS_C="$RF_LAST_NS"
  rf_netns_link "$RF_NS_A" "$NS_C" 10.207.0 || return 1
  FIGURES="$RF_TMP/figures"
  : >"$FIGURES"
}

# figure NAME VALUE: prints and records one measured figure.
figure() {
  info "$1: $2"
  echo "$1: $2" >>"$FIGURES"
}

now_ms() {
  echo $(($(date +%s%N) / 1000000))
}

# status_of SIDE NAME: `rovy-fast status --json` of the side's node into $RF_TMP/NAME.json.
status_of() {
  rovy_status "${PAIR_NS[$1]}" "${PAIR_SOCK[$1]}" "$RF_TMP/$2.json"
}

# drop_count NAME REASON: one drop counter of a status taken with status_of.
drop_count() {
  python3 "$RF_LIB/json_report.py" drop "$RF_TMP/$1.json" "$2"
}

# json_field FILE PATH: a value of a JSON document (see json_report.py field).
json_field() {
  python3 "$RF_LIB/json_report.py" field "$1" "$2"
}

# cookies_above SIDE N: true once the side's node has answered more than N initiations with a
# cookie reply.
cookies_above() {
  status_of "$1" poll || return 1
  [ "$(drop_count poll cookie_required)" -gt "$2" ]
}

# flood_start SOURCES SECONDS [--mac2]: starts the flooder in F against A's listen port from
# SOURCES addresses; stops after SECONDS or flood_stop.
flood_start() {
  local sources="$1" seconds="$2"
  shift 2
  FLOOD_SEQ=$((${FLOOD_SEQ:-0} + 1))
  FLOOD_REPORT="$RF_TMP/flood-$FLOOD_SEQ.json"
  FLOOD_STOP="$RF_TMP/flood.stop"
  rm -f "$FLOOD_REPORT" "$FLOOD_STOP"
  start_bg "$NS_F" "$RF_TMP/flood.log" timeout $((seconds + 10)) python3 "$RF_LIB/hostile.py" flood \
    --target "$FLOOD_TARGET" --port "$RF_PORT" --pubkey "$(rf_pubkey "${PAIR_KEY[A]}")" \
    --source-net "$FLOOD_NET" --sources "$sources" --source-port "$FLOOD_PORT" \
    --seconds "$seconds" --stop-file "$FLOOD_STOP" --report "$FLOOD_REPORT" "$@"
  FLOOD_PID="$RF_LAST_PID"
}

# flood_stop: stops the flooder and checks that it wrote its report.
flood_stop() {
  touch "$FLOOD_STOP"
  if ! wait_pid "$FLOOD_PID" 15 || [ ! -s "$FLOOD_REPORT" ]; then
    FAIL_REASON="the flooder failed: $(tail -n1 "$RF_TMP/flood.log" 2>/dev/null)"
    return 1
  fi
  info "flooder: $(cat "$FLOOD_REPORT")"
}

# transfer_rate: MB/s of the transfer finished last, as its receiver measured it.
transfer_rate() {
  python3 "$RF_LIB/json_report.py" rate "$TRANSFER_TAG.stats"
}

# scenario_flood: a flood of valid-mac1 initiations from FLOOD_SOURCES addresses at A while B
# sends A paced transfers. A must go under load (cookie replies), keep the transfer intact,
# answer `status`, give B a new session when B restarts in the middle of the flood, and exit
# cleanly on SIGTERM while it goes on.
scenario_flood() {
  start_pair rovy rovy || return 1
  need "first ping B->A got no answer" ping_first B "${PAIR_IN4[A]}" || return 1
  transfer_check B A "$RF_TMP/data-flood" "$FLOOD_RATE" 60 || return 1
  local calm
  calm="$(transfer_rate)"
  flood_start "$FLOOD_SOURCES" 120
  need "A answered no initiation of the flood with a cookie within 10 s" wait_for 10 cookies_above A 100 || return 1
  local t0 t1
  t0="$(now_ms)"
  need "A did not answer status during the flood" status_of A during || return 1
  t1="$(now_ms)"
  figure "flood: status answered during the flood (ms)" $((t1 - t0))
  transfer_check B A "$RF_TMP/data-flood" "$FLOOD_RATE" 60 || return 1
  local flooded
  flooded="$(transfer_rate)"
  figure "flood: paced transfer B->A, MB/s without / with the flood" "$calm / $flooded"
  need "node B did not stop" node_stop B || return 1
  need "node B did not start again" node_start B || return 1
  local restarted=$SECONDS
  need "B got no new session with A within 30 s of its restart during the flood" \
    wait_for 30 run_in "${PAIR_NS[B]}" ping -c1 -W1 "${PAIR_IN4[A]}" || return 1
  figure "flood: B's new session after its restart (s)" $((SECONDS - restarted))
  need "A did not answer status" status_of A flooded || return 1
  local cookies queue_full failed
  cookies="$(drop_count flooded cookie_required)"
  queue_full="$(drop_count flooded queue_full)"
  failed="$(drop_count flooded handshake_failed)"
  figure "flood: A's cookie replies / queue full / handshakes failed (DH done)" "$cookies / $queue_full / $failed"
  t0="$(now_ms)"
  local rc=0
  node_stop A || rc=$?
  t1="$(now_ms)"
  figure "flood: A's exit on SIGTERM during the flood (ms)" $((t1 - t0))
  need "A exited with status $rc on SIGTERM during the flood" test "$rc" -eq 0 || return 1
  need "A took more than 2 s to exit on SIGTERM during the flood" test $((t1 - t0)) -le 2000 || return 1
  flood_stop || return 1
  figure "flood: initiations per second sent (one Python process)" "$(json_field "$FLOOD_REPORT" rate)"
}

# scenario_flood_mac2: the flooder owns its FLOOD_MAC2_SOURCES addresses, so it gets cookies
# and sends valid-mac2 initiations. Under load each source may then make A do 20 handshakes a
# second (5 at once): the Diffie-Hellman work A does (every random initiation that reaches it
# fails: handshake_failed) must stay within that bound, the rest counted as rate_limited.
scenario_flood_mac2() {
  start_pair rovy rovy || return 1
  need "first ping B->A got no answer" ping_first B "${PAIR_IN4[A]}" || return 1
  need "A did not answer status" status_of A before || return 1
  local failed_before started=$SECONDS
  failed_before="$(drop_count before handshake_failed)"
  flood_start "$FLOOD_MAC2_SOURCES" "$FLOOD_MAC2_SECONDS" --mac2
  transfer_check B A "$RF_TMP/data-flood" "$FLOOD_RATE" 60 || return 1
  need "the flooder did not end" wait_pid "$FLOOD_PID" $((FLOOD_MAC2_SECONDS + 15)) || return 1
  local seconds=$((SECONDS - started + 1))
  need "A did not answer status" status_of A after || return 1
  info "flooder: $(cat "$FLOOD_REPORT")"
  local with_cookie limited failed
  with_cookie="$(json_field "$FLOOD_REPORT" sources_with_cookie)"
  need "the flooder got cookies for only $with_cookie of $FLOOD_MAC2_SOURCES sources" \
    test "$with_cookie" -eq "$FLOOD_MAC2_SOURCES" || return 1
  limited="$(drop_count after rate_limited)"
  failed=$(($(drop_count after handshake_failed) - failed_before))
  need "A rate-limited no valid-mac2 initiation" test "$limited" -gt 0 || return 1
  # The limiter's bound, plus what A takes while it is not under load (a queue of 128 before
  # it is again, a few times over the run).
  local bound=$((FLOOD_MAC2_SOURCES * (5 + 20 * seconds) + 2000))
  figure "flood-mac2: initiations per second sent" "$(json_field "$FLOOD_REPORT" rate)"
  figure "flood-mac2: A's handshakes done (DH) / rate-limited / bound on DH over ${seconds} s" \
    "$failed / $limited / $bound"
  need "A did $failed handshakes for $FLOOD_MAC2_SOURCES sources in $seconds s, more than $bound" \
    test "$failed" -le "$bound"
}

# relay_start: the impairment relay in R between A and B (see impair.py), with LOSS_* settings.
relay_start() {
  RELAY_REPORT="$RF_TMP/relay.json"
  RELAY_STOP="$RF_TMP/relay.stop"
  rm -f "$RELAY_REPORT" "$RELAY_STOP" "$RF_TMP/relay.ready"
  start_bg "$NS_R" "$RF_TMP/relay.log" timeout $((LOSS_SECONDS * 4 + 60)) python3 "$RF_LIB/impair.py" \
    --a-listen "$RELAY_A:$RF_PORT" --a-node "10.205.0.1:$RF_PORT" \
    --b-listen "$RELAY_B:$RF_PORT" --b-node "10.206.0.1:$RF_PORT" \
    --loss 5 --delay-ms 25 --jitter-ms 10 --duplicate 1 --seed "$LOSS_SEED" \
    --seconds $((LOSS_SECONDS * 4 + 40)) --stop-file "$RELAY_STOP" \
    --ready "$RF_TMP/relay.ready" --report "$RELAY_REPORT"
  RELAY_PID="$RF_LAST_PID"
  need "the relay did not start: $(tail -n1 "$RF_TMP/relay.log" 2>/dev/null)" \
    wait_for 10 test -s "$RF_TMP/relay.ready"
}

# scenario_loss: A and B reach each other only through the relay (5 % loss, 25 ± 10 ms delay,
# 1 % duplication). A paced TCP transfer A->B of LOSS_SECONDS must arrive intact without a stall
# of more than 5 s,
# and each side must count exactly the data duplicates the relay delivered to it as replays.
scenario_loss() {
  relay_start || return 1
  PAIR_ENDPOINT=([A]="$RELAY_A:$RF_PORT" [B]="$RELAY_B:$RF_PORT")
  start_pair rovy rovy
  local started=$?
  PAIR_ENDPOINT=()
  [ "$started" = 0 ] || return 1
  need "first ping A->B through the relay got no answer within 20 s" \
    wait_for 20 run_in "${PAIR_NS[A]}" ping -c1 -W1 "${PAIR_IN4[B]}" || return 1
  transfer_check A B "$RF_TMP/data-loss" "$LOSS_RATE" $((LOSS_SECONDS * 3)) || return 1
  local gap
  gap="$(json_field "$TRANSFER_TAG.stats" longest_gap)"
  figure "loss: paced TCP A->B through 5 % loss, 25 ± 10 ms, 1 % duplicates (MB/s received)" "$(transfer_rate)"
  figure "loss: longest stall (s)" "$gap"
  sleep 1
  touch "$RELAY_STOP"
  need "the relay failed: $(tail -n1 "$RF_TMP/relay.log" 2>/dev/null)" wait_pid "$RELAY_PID" 10 || return 1
  info "relay: $(cat "$RELAY_REPORT")"
  need "the transfer stalled for $gap s" python3 -c 'import sys; sys.exit(float(sys.argv[1]) >= 5)' "$gap" || return 1
  local side dir
  for side in A B; do
    dir="to_$(tr AB ab <<<"$side")"
    local lost reordered dups replayed auth
    lost="$(json_field "$RELAY_REPORT" "$dir.lost")"
    reordered="$(json_field "$RELAY_REPORT" "$dir.reordered")"
    dups="$(json_field "$RELAY_REPORT" "$dir.duplicated_data")"
    need "the relay lost, reordered or duplicated nothing towards $side" \
      test "$lost" -gt 0 -a "$reordered" -gt 0 -a "$dups" -gt 0 || return 1
    need "side $side did not answer status" status_of "$side" "loss-$side" || return 1
    replayed="$(drop_count "loss-$side" replayed)"
    auth="$(drop_count "loss-$side" auth_failed)"
    figure "loss: towards $side lost / reordered / data duplicates / replays counted" \
      "$lost / $reordered / $dups / $replayed"
    need "side $side counted $replayed replays for $dups duplicated data messages" \
      test "$replayed" -eq "$dups" || return 1
    need "side $side counted $auth authentication failures" test "$auth" -eq 0 || return 1
  done
}
