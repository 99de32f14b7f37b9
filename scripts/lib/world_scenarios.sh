# shellcheck shell=bash
# shellcheck disable=SC2034 # the globals here are read by the scripts that source this file
# shellcheck disable=SC2153 # PAIR_IF, PAIR_IN6 and the rest come from pair.sh
# The real-world scenarios of e2e-attacks.sh: a rekey under traffic, preshared keys, an IPv6
# underlay, spoofed inner sources, every packet size, a node with 1 000 peers. Source
# attack_scenarios.sh first (and call its attack_net_setup).

# The rekey transfers: 56 MB at 0.4 MB/s, 140 s, across REKEY_AFTER_TIME (120 s).
REKEY_MB=56
REKEY_RATE=0.4
SIZES_PORT=5002

# transfer_save NAME / transfer_restore NAME: keep the globals of one transfer while another
# one starts, so both can be finished.
declare -A SAVED_TRANSFER=()
transfer_save() {
  SAVED_TRANSFER[$1.tag]="$TRANSFER_TAG"
  SAVED_TRANSFER[$1.file]="$TRANSFER_FILE"
  SAVED_TRANSFER[$1.limit]="$TRANSFER_LIMIT"
  SAVED_TRANSFER[$1.started]="$TRANSFER_STARTED"
  SAVED_TRANSFER[$1.recv]="$TRANSFER_RECV_PID"
  SAVED_TRANSFER[$1.send]="$TRANSFER_SEND_PID"
}

transfer_restore() {
  TRANSFER_TAG="${SAVED_TRANSFER[$1.tag]}"
  TRANSFER_FILE="${SAVED_TRANSFER[$1.file]}"
  TRANSFER_LIMIT="${SAVED_TRANSFER[$1.limit]}"
  TRANSFER_STARTED="${SAVED_TRANSFER[$1.started]}"
  TRANSFER_RECV_PID="${SAVED_TRANSFER[$1.recv]}"
  TRANSFER_SEND_PID="${SAVED_TRANSFER[$1.send]}"
}

# stall_below SECONDS: the transfer finished last never waited SECONDS or more for data.
stall_below() {
  local gap
  gap="$(json_field "$TRANSFER_TAG.stats" longest_gap)"
  python3 -c 'import sys; sys.exit(float(sys.argv[1]) >= float(sys.argv[2]))' "$gap" "$1"
}

# scenario_rekey: A (rovy) has two peers, B (rovy) and C (boringtun), neither of which knows
# A's endpoint, so A initiates both sessions and is the one to rekey them after 120 s. A sends
# each a paced transfer of 140 s at the same time: both arrive intact with no stall of 5 s or
# more, and every node saw a handshake after the transfer's first 100 s.
scenario_rekey() {
  pair_set rovy rovy
  local key_c="$RF_TMP/C.key" if_c="rft$$c" pub_b pub_c
  rf_genkey "$key_c"
  pub_b="$(rf_pubkey "${PAIR_KEY[B]}")" && pub_c="$(rf_pubkey "$key_c")" || return 1
  write_rovy_config "${PAIR_CONF[A]}" "${PAIR_IF[A]}" "${PAIR_KEY[A]}" "$RF_PORT" \
    "${PAIR_IN4[A]}/24,${PAIR_IN6[A]}/64" "$pub_b" "$ROVY_PEER_KIND" "$RF_UNDERLAY_B4:$RF_PORT" \
    "${PAIR_IN4[B]}/32,${PAIR_IN6[B]}/128" 0
  {
    echo
    echo "[[peer]]"
    echo "public_key = \"$pub_c\""
    echo 'kind = "wireguard"'
    echo "endpoint = \"10.207.0.2:$RF_PORT\""
    echo 'allowed_ips = ["10.202.0.3/32"]'
  } >>"${PAIR_CONF[A]}"
  need "node A did not start" start_rovy "${PAIR_NS[A]}" A-rovy-rekey "${PAIR_CONF[A]}" "${PAIR_SOCK[A]}" || return 1
  NODE_PID[A]="$RF_LAST_PID"
  NODE_LOG[A]="$RF_TMP/A-rovy-rekey.log"
  PAIR_NO_ENDPOINT[B]=1
  node_start B
  local started=$?
  PAIR_NO_ENDPOINT=()
  need "node B did not start" test "$started" = 0 || return 1
  need "boringtun did not start on C" start_wg_userspace boringtun "$NS_C" "$if_c" "$RF_TMP/C-boringtun.log" || return 1
  need "configuring boringtun on C failed" wg_configure "$NS_C" "$if_c" "$key_c" "$RF_PORT" \
    "$(rf_pubkey "${PAIR_KEY[A]}")" "" 10.202.0.1/32 0 10.202.0.3/24 || return 1
  PAIR_NS[C]="$NS_C"
  PAIR_IN4[C]=10.202.0.3
  need "first ping A->B got no answer" ping_first A "${PAIR_IN4[B]}" || return 1
  need "first ping A->C (boringtun) got no answer" ping_first A 10.202.0.3 || return 1
  local began=$SECONDS
  transfer_start A B "$RF_TMP/data-rekey" "$REKEY_RATE" 200 || return 1
  transfer_save to_b
  transfer_start A C "$RF_TMP/data-rekey" "$REKEY_RATE" 200 || return 1
  transfer_save to_c
  local peer
  for peer in b c; do
    transfer_restore "to_$peer"
    transfer_finish || return 1
    figure "rekey: longest stall of the 140 s transfer A->${peer^^} (s)" "$(json_field "$TRANSFER_TAG.stats" longest_gap)"
    need "the transfer A->${peer^^} stalled for 5 s or more" stall_below 5 || return 1
  done
  local elapsed=$((SECONDS - began)) ages
  need "A did not answer status" status_of A rekey-A || return 1
  need "B did not answer status" status_of B rekey-B || return 1
  local age_ab age_ac age_ba age_ca
  age_ab="$(json_field "$RF_TMP/rekey-A.json" peers.0.last_handshake_secs_ago)"
  age_ac="$(json_field "$RF_TMP/rekey-A.json" peers.1.last_handshake_secs_ago)"
  age_ba="$(json_field "$RF_TMP/rekey-B.json" peers.0.last_handshake_secs_ago)"
  # boringtun's configuration socket reports the time since the latest handshake where the
  # protocol has its time (wg prints that number as it is).
  age_ca="$(run_in "$NS_C" wg show "$if_c" latest-handshakes | awk '{print $2}')"
  ages="A-B $age_ab s (A) / $age_ba s (B), A-C $age_ac s (A) / $age_ca s (boringtun)"
  figure "rekey: latest handshake ago, ${elapsed} s after the transfers began" "$ages"
  local age
  for age in "$age_ab" "$age_ac" "$age_ba" "$age_ca"; do
    need "no handshake after the first 100 s of the transfers: $ages" test "$age" -lt $((elapsed - 100)) || return 1
  done
  unset "PAIR_NS[C]" "PAIR_IN4[C]"
}

# with_psk FILE CMD…: runs CMD with every node it starts using preshared key FILE.
with_psk() {
  local file="$1" rc=0
  shift
  RF_PSK_FILE="$file"
  "$@" || rc=$?
  RF_PSK_FILE=""
  return "$rc"
}

# new_psk NAME: writes a new preshared key to $RF_TMP/NAME.psk (mode 0600) and prints the path.
new_psk() {
  (umask 077 && wg genpsk >"$RF_TMP/$1.psk") && echo "$RF_TMP/$1.psk"
}

# scenario_psk IMPL_B: rovy (A) and IMPL_B share a preshared key: pings both ways, a transfer.
scenario_psk() {
  local psk
  psk="$(new_psk shared)" || return 1
  with_psk "$psk" start_pair rovy "$1" || return 1
  pings_both_ways A || return 1
  transfer_check A B "$RF_TMP/data-small"
}

# scenario_psk_mismatch: two rovy nodes with different preshared keys get no session (so the
# key is really mixed in), and count the handshakes that failed on it.
scenario_psk_mismatch() {
  local psk_a psk_b
  psk_a="$(new_psk a)" && psk_b="$(new_psk b)" || return 1
  pair_set rovy rovy
  need "node A did not start" with_psk "$psk_a" node_start A || return 1
  need "node B did not start" with_psk "$psk_b" node_start B || return 1
  if run_in "${PAIR_NS[A]}" ping -c3 -i0.5 -W6 -q "${PAIR_IN4[B]}" >/dev/null; then
    FAIL_REASON="A and B made a session with different preshared keys"
    return 1
  fi
  need "A did not answer status" status_of A psk-A || return 1
  need "B did not answer status" status_of B psk-B || return 1
  local failed=$(($(drop_count psk-A handshake_failed) + $(drop_count psk-B handshake_failed)))
  figure "psk-mismatch: handshakes failed on the preshared key (A + B)" "$failed"
  need "no failed handshake counted with mismatched preshared keys" test "$failed" -gt 0
}

# scenario_ipv6_underlay IMPL_B: the nodes dial each other at their IPv6 underlay addresses;
# pings, a transfer each way, and each holds the other's IPv6 endpoint.
scenario_ipv6_underlay() {
  PAIR_ENDPOINT=([A]="[$RF_UNDERLAY_B6]:$RF_PORT" [B]="[$RF_UNDERLAY_A6]:$RF_PORT")
  start_pair rovy "$1"
  local started=$?
  PAIR_ENDPOINT=()
  [ "$started" = 0 ] || return 1
  pings_both_ways A || return 1
  transfer_check A B "$RF_TMP/data-small" || return 1
  transfer_check B A "$RF_TMP/data-small" || return 1
  local side expected seen
  for side in A B; do
    if [ "$side" = A ]; then expected="[$RF_UNDERLAY_B6]:$RF_PORT"; else expected="[$RF_UNDERLAY_A6]:$RF_PORT"; fi
    seen="$(peer_endpoint_seen_by "$side")" || seen=unknown
    need "side $side holds endpoint '$seen', not $expected" test "$seen" = "$expected" || return 1
  done
}

# scenario_spoofed_source IMPL_B: B (IMPL_B) adds addresses outside the allowed IPs A has for it
# to its TUN and pings A from them: A must answer none and count each as source_not_allowed,
# while B's own address still gets answers.
scenario_spoofed_source() {
  start_pair rovy "$1" || return 1
  need "first ping B->A got no answer" ping_first B "${PAIR_IN4[A]}" || return 1
  need "A did not answer status" status_of A spoof-before || return 1
  local before
  before="$(drop_count spoof-before source_not_allowed)"
  local ns="${PAIR_NS[B]}" ifname="${PAIR_IF[B]}"
  need "adding spoofed addresses to B's TUN failed" run_in "$ns" ip addr add 10.202.0.99/32 dev "$ifname" || return 1
  need "adding spoofed addresses to B's TUN failed" run_in "$ns" ip addr add fd00:202::99/128 dev "$ifname" nodad || return 1
  if run_in "$ns" ping -c5 -i0.2 -W1 -q -I 10.202.0.99 "${PAIR_IN4[A]}" >/dev/null; then
    FAIL_REASON="A answered a ping from 10.202.0.99, outside B's allowed IPs"
    return 1
  fi
  if run_in "$ns" ping -6 -c5 -i0.2 -W1 -q -I fd00:202::99 "${PAIR_IN6[A]}" >/dev/null; then
    FAIL_REASON="A answered a ping from fd00:202::99, outside B's allowed IPs"
    return 1
  fi
  need "A did not answer status" status_of A spoof-after || return 1
  local counted=$(($(drop_count spoof-after source_not_allowed) - before))
  figure "spoofed-source (from $1): 10 spoofed pings, counted source_not_allowed" "$counted"
  need "A counted $counted of 10 spoofed packets as source_not_allowed" test "$counted" -ge 10 || return 1
  need "ping B->A from B's own address lost packets" ping_steady B "${PAIR_IN4[A]}"
}

# sweep_sizes FROM TO FAMILY: every UDP payload size that fits the MTU from FROM to an echo on
# TO and back (sizes.py).
sweep_sizes() {
  local from="$1" to="$2" host
  if [ "$3" = 6 ]; then host="${PAIR_IN6[$to]}"; else host="${PAIR_IN4[$to]}"; fi
  SIZES_SEQ=$((${SIZES_SEQ:-0} + 1))
  local tag="$RF_TMP/sizes-$SIZES_SEQ-$from$to$3"
  start_bg "${PAIR_NS[$to]}" "$tag.echo.log" timeout 90 python3 "$RF_LIB/sizes.py" echo \
    --bind "$host" --port "$SIZES_PORT" --ready "$tag.ready" --seconds 80
  local echo_pid="$RF_LAST_PID"
  need "the echo on $to did not start" wait_for 10 test -s "$tag.ready" || return 1
  if ! run_in "${PAIR_NS[$from]}" timeout 120 python3 "$RF_LIB/sizes.py" sweep --host "$host" \
    --port "$SIZES_PORT" --mtu "$RF_MTU" --report "$tag.json" 2>"$tag.log"; then
    FAIL_REASON="sizes $from->$to (IPv$3): $(cat "$tag.json" 2>/dev/null || tail -n1 "$tag.log")"
    return 1
  fi
  stop_pid "$echo_pid" || true
  info "sizes $from->$to IPv$3: 1..$(json_field "$tag.json" last) bytes all intact, one more refused"
}

# scenario_sizes IMPL_B: every size both ways over IPv4 and IPv6 between rovy and IMPL_B.
scenario_sizes() {
  start_pair rovy "$1" || return 1
  need "first ping A->B got no answer" ping_first A "${PAIR_IN4[B]}" || return 1
  local from family
  for from in A B; do
    for family in 4 6; do
      sweep_sizes "$from" "$(other_side "$from")" "$family" || return 1
    done
  done
}

# scenario_many_peers: A has 1 000 peers and 100 000 allowed IPs (999 made-up WireGuard peers
# with 100 /32s each and no endpoint, then B with its own addresses and 98 more): its start-up
# time and memory are reported; it pings B, the last peer in its tables, and a ping to a
# made-up peer's address is routed to that peer (counted no_endpoint), not elsewhere.
scenario_many_peers() {
  pair_set rovy rovy
  need "node B did not start" node_start B || return 1
  local pub_b conf="${PAIR_CONF[A]}"
  pub_b="$(rf_pubkey "${PAIR_KEY[B]}")" || return 1
  write_rovy_config "$conf" "${PAIR_IF[A]}" "${PAIR_KEY[A]}" "$RF_PORT" "${PAIR_IN4[A]}/24" \
    "$pub_b" "$ROVY_PEER_KIND" "$RF_UNDERLAY_B4:$RF_PORT" "${PAIR_IN4[B]}/32,${PAIR_IN6[B]}/128" 0
  local written
  written="$(python3 "$RF_LIB/many_peers.py" "$conf" 1000 100 172.31.0.0)" || return 1
  need "the config has '$written' peers and allowed IPs, not 1000 100000" test "$written" = "1000 100000" || return 1
  local t0 t1
  t0="$(now_ms)"
  need "node A with 1 000 peers did not start" start_rovy "${PAIR_NS[A]}" A-rovy-many "$conf" "${PAIR_SOCK[A]}" || return 1
  t1="$(now_ms)"
  NODE_PID[A]="$RF_LAST_PID"
  NODE_LOG[A]="$RF_TMP/A-rovy-many.log"
  local rss hwm
  rss="$(awk '/^VmRSS/ {print $2}' "/proc/${NODE_PID[A]}/status")"
  figure "many-peers: start-up with 1 000 peers and 100 000 allowed IPs (ms, to the ready line)" $((t1 - t0))
  need "first ping A->B (the last of 1 000 peers) got no answer" ping_first A "${PAIR_IN4[B]}" || return 1
  need "ping A->B lost packets" ping_steady A "${PAIR_IN4[B]}" || return 1
  need "ping B->A lost packets" ping_steady B "${PAIR_IN4[A]}" || return 1
  need "routing 172.16.0.0/12 into A's TUN failed" run_in "${PAIR_NS[A]}" ip route add 172.16.0.0/12 dev "${PAIR_IF[A]}" || return 1
  need "A did not answer status" status_of A many-before || return 1
  run_in "${PAIR_NS[A]}" ping -c3 -i0.2 -W1 -q 172.16.195.80 >/dev/null 2>&1 || true
  need "A did not answer status" status_of A many-after || return 1
  local no_endpoint=$(($(drop_count many-after no_endpoint) - $(drop_count many-before no_endpoint)))
  need "3 pings to a made-up peer's address counted $no_endpoint no_endpoint drops" test "$no_endpoint" -ge 3 || return 1
  local listed
  listed="$(python3 "$RF_LIB/json_report.py" count "$RF_TMP/many-after.json" peers)"
  need "A's status lists $listed peers, not 1000" test "$listed" = 1000 || return 1
  hwm="$(awk '/^VmHWM/ {print $2}' "/proc/${NODE_PID[A]}/status")"
  figure "many-peers: A's memory after start-up / peak (MB)" "$((rss / 1024)) / $((hwm / 1024))"
}
