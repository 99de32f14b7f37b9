# shellcheck shell=bash
# shellcheck disable=SC2034 # the globals here are read by the scripts that source this file
# Two tunnel nodes, side A in namespace A and side B in namespace B, each peered with the other.
# Source netns.sh and peers.sh first, call `rf_netns_setup`, then `pair_init`.
#
# Inner addresses: A 10.202.0.1/24 and fd00:202::1/64, B .2 and ::2; both listen on UDP 51820
# and know each other's underlay endpoint. A node is one of: rovy, boringtun, wireguard-go.

RF_PORT=51820
ROVY_PEER_KIND="${ROVY_PEER_KIND:-rovy}"
declare -A PAIR_NS=() PAIR_IF=() PAIR_IN4=() PAIR_IN6=() PAIR_KEY=() PAIR_SOCK=() PAIR_CONF=()
declare -A NODE_IMPL=() NODE_PID=() NODE_LOG=()
# Sides whose node starts without its peer's endpoint (set to 1), so it cannot initiate.
declare -A PAIR_NO_ENDPOINT=()
# The endpoint a side's node dials its peer at, when not the peer's IPv4 underlay address
# (an IPv6 underlay "[ADDR]:PORT", or a relay in between).
declare -A PAIR_ENDPOINT=()
# Extra arguments for each side's node when node_start gets none (see node_start).
NODE_ARGS_A=()
NODE_ARGS_B=()
PAIR_LOG_SEQ=0

# pair_init: fills the per-side tables and writes one private key per side.
pair_init() {
  PAIR_NS=([A]="$RF_NS_A" [B]="$RF_NS_B")
  PAIR_IF=([A]="rft$$a" [B]="rft$$b")
  PAIR_IN4=([A]=10.202.0.1 [B]=10.202.0.2)
  PAIR_IN6=([A]=fd00:202::1 [B]=fd00:202::2)
  local side
  for side in A B; do
    PAIR_KEY[$side]="$RF_TMP/$side.key"
    PAIR_SOCK[$side]="$RF_TMP/$side.sock"
    PAIR_CONF[$side]="$RF_TMP/$side.toml"
    rf_genkey "${PAIR_KEY[$side]}"
  done
}

# other_side A|B: prints the opposite side.
other_side() {
  if [ "$1" = A ]; then echo B; else echo A; fi
}

# underlay_of A|B: the side's current IPv4 underlay address.
underlay_of() {
  if [ "$1" = A ]; then echo "$RF_UNDERLAY_A4"; else echo "$RF_UNDERLAY_B4"; fi
}

# pair_set IMPL_A IMPL_B: chooses what runs on each side (before node_start).
pair_set() {
  NODE_IMPL=([A]="$1" [B]="$2")
  NODE_PID=()
}

# node_start SIDE [ARGS…]: starts the side's node as chosen by pair_set and configures it.
# ARGS (default: NODE_ARGS_A or NODE_ARGS_B) go to the daemon: rovy-fast (e.g. --cores 2),
# boringtun-cli (e.g. --threads 2) or wireguard-go. ROVY_BACKEND_ARG, when set, is passed to
# rovy-fast as --backend.
node_start() {
  local side="$1"
  shift
  if [ $# -eq 0 ]; then
    if [ "$side" = A ]; then
      set -- "${NODE_ARGS_A[@]}"
    else
      set -- "${NODE_ARGS_B[@]}"
    fi
  fi
  local impl="${NODE_IMPL[$side]}" other
  other="$(other_side "$side")"
  local ns="${PAIR_NS[$side]}" ifname="${PAIR_IF[$side]}" peer_pub
  peer_pub="$(rf_pubkey "${PAIR_KEY[$other]}")" || return 1
  local endpoint allowed
  endpoint="${PAIR_ENDPOINT[$side]:-$(underlay_of "$other"):$RF_PORT}"
  [ -z "${PAIR_NO_ENDPOINT[$side]:-}" ] || endpoint=""
  allowed="${PAIR_IN4[$other]}/32,${PAIR_IN6[$other]}/128"
  PAIR_LOG_SEQ=$((PAIR_LOG_SEQ + 1))
  local name="$side-$impl-$PAIR_LOG_SEQ"
  case "$impl" in
    rovy)
      local kind=wireguard
      [ "${NODE_IMPL[$other]}" = rovy ] && kind="$ROVY_PEER_KIND"
      write_rovy_config "${PAIR_CONF[$side]}" "$ifname" "${PAIR_KEY[$side]}" "$RF_PORT" \
        "${PAIR_IN4[$side]}/24,${PAIR_IN6[$side]}/64" "$peer_pub" "$kind" "$endpoint" "$allowed" 0
      local backend_args=()
      if [ -n "${ROVY_BACKEND_ARG:-}" ]; then
        backend_args=(--backend "$ROVY_BACKEND_ARG")
      fi
      start_rovy "$ns" "$name" "${PAIR_CONF[$side]}" "${PAIR_SOCK[$side]}" "${backend_args[@]}" "$@" || return 1
      ;;
    boringtun | wireguard-go)
      start_wg_userspace "$impl" "$ns" "$ifname" "$RF_TMP/$name.log" "$@" || return 1
      local pid="$RF_LAST_PID"
      if ! wg_configure "$ns" "$ifname" "${PAIR_KEY[$side]}" "$RF_PORT" "$peer_pub" "$endpoint" "$allowed" 0 \
        "${PAIR_IN4[$side]}/24" "${PAIR_IN6[$side]}/64"; then
        echo "configuring $impl on side $side failed" >&2
        stop_pid "$pid" || true
        return 1
      fi
      RF_LAST_PID="$pid"
      ;;
    *)
      echo "node_start: unknown implementation '$impl'" >&2
      return 1
      ;;
  esac
  NODE_PID[$side]="$RF_LAST_PID"
  NODE_LOG[$side]="$RF_TMP/$name.log"
}

# node_stop SIDE: stops the side's node (SIGTERM) and returns its exit status.
node_stop() {
  local pid="${NODE_PID[$1]:-}"
  [ -n "$pid" ] || return 0
  unset "NODE_PID[$1]"
  stop_pid "$pid"
}

# node_alive SIDE: true while the side's node runs.
node_alive() {
  local pid="${NODE_PID[$1]:-}"
  [ -n "$pid" ] && rf_alive "$pid"
}

# nodes_stop_all: stops both nodes, ignoring their exit status.
nodes_stop_all() {
  node_stop A || true
  node_stop B || true
}

# peer_endpoint_seen_by SIDE: prints the endpoint the side's node currently holds for its peer.
peer_endpoint_seen_by() {
  local side="$1" ns="${PAIR_NS[$1]}"
  if [ "${NODE_IMPL[$side]}" = rovy ]; then
    rovy_status "$ns" "${PAIR_SOCK[$side]}" "$RF_TMP/status-$side.json" || return 1
    python3 "$RF_LIB/json_report.py" endpoint "$RF_TMP/status-$side.json"
  else
    run_in "$ns" timeout 10 wg show "${PAIR_IF[$side]}" endpoints | awk '{print $2}'
  fi
}
