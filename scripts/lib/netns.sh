# shellcheck shell=bash
# shellcheck disable=SC2034 # the globals here are read by the scripts that source this file
# Two network namespaces joined by one veth pair, for the end-to-end tests and the benchmark.
#
# Source this file, then call `rf_netns_setup`. Every name carries the sourcing script's PID
# (`rf-<pid>-…`), so parallel runs never clash. `rf_netns_setup` registers `rf_cleanup` on
# EXIT/INT/TERM: it stops only the processes started through `start_bg` (by PID) and deletes
# only the namespaces created here, which also removes every interface inside them.
#
# Underlay: namespace A has 10.201.0.1/24 and fd00:201::1/64, namespace B has .2 and ::2.

# shellcheck source=lib/node.sh
source "$(dirname "${BASH_SOURCE[0]}")/node.sh"

RF_TAG="rf-$$"
RF_NS_A="$RF_TAG-a"
RF_NS_B="$RF_TAG-b"
RF_VETH_A="rfv$$a"
RF_VETH_B="rfv$$b"
RF_UNDERLAY_A4=10.201.0.1
RF_UNDERLAY_B4=10.201.0.2
RF_UNDERLAY_A6=fd00:201::1
RF_UNDERLAY_B6=fd00:201::2
RF_TMP=""
RF_PIDS=()
RF_NAMESPACES=()

# Prints a line to stderr, prefixed with the script name.
rf_log() {
  echo "[$(basename "$0")] $*" >&2
}

# stop_all_started: stops every process started by `start_bg` that still runs (TERM, then KILL
# after 5 s) and forgets them all.
stop_all_started() {
  local pid deadline
  for pid in "${RF_PIDS[@]}"; do
    kill -TERM "$pid" 2>/dev/null || true
  done
  deadline=$((SECONDS + 5))
  for pid in "${RF_PIDS[@]}"; do
    while rf_alive "$pid" && [ "$SECONDS" -lt "$deadline" ]; do
      sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  RF_PIDS=()
}

# Stops every process started by `start_bg`, deletes the namespaces created here and the
# temporary directory. Safe to call more than once.
rf_cleanup() {
  stop_all_started
  local ns
  for ns in "${RF_NAMESPACES[@]}"; do
    ip netns del "$ns" 2>/dev/null || true
  done
  RF_NAMESPACES=()
  if [ -n "$RF_TMP" ] && [ -d "$RF_TMP" ] && [ -z "${RF_KEEP_TMP:-}" ]; then
    rm -rf "$RF_TMP"
  fi
}

# Runs a command inside namespace NS.
run_in() {
  local ns="$1"
  shift
  ip netns exec "$ns" "$@"
}

# wait_for SECONDS CMD…: polls CMD every 0.2 s until it succeeds (returns 0) or SECONDS pass
# (returns 1).
wait_for() {
  local limit="$1"
  shift
  local deadline=$((SECONDS + limit))
  while ! "$@" >/dev/null 2>&1; do
    if [ "$SECONDS" -ge "$deadline" ]; then
      return 1
    fi
    sleep 0.2
  done
}

# start_bg NS LOGFILE CMD…: starts CMD inside NS in the background with stdout and stderr in
# LOGFILE, records its PID for cleanup and leaves it in RF_LAST_PID.
start_bg() {
  local ns="$1" log="$2"
  shift 2
  ip netns exec "$ns" "$@" >"$log" 2>&1 &
  RF_LAST_PID=$!
  RF_PIDS+=("$RF_LAST_PID")
}

# stop_pid PID [SIGNAL]: stops one process started by `start_bg` (default TERM, KILL after
# 5 s) and forgets it. Returns the process's exit status.
stop_pid() {
  local pid="$1" signal="${2:-TERM}" rc=0 deadline
  kill -"$signal" "$pid" 2>/dev/null || true
  deadline=$((SECONDS + 5))
  while rf_alive "$pid" && [ "$SECONDS" -lt "$deadline" ]; do
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || rc=$?
  local kept=() p
  for p in "${RF_PIDS[@]}"; do
    [ "$p" = "$pid" ] || kept+=("$p")
  done
  RF_PIDS=("${kept[@]}")
  return "$rc"
}

# rf_cpu_ticks PID: prints utime+stime of PID in clock ticks (0 if it is gone).
rf_cpu_ticks() {
  local stat fields
  stat="$(cat "/proc/$1/stat" 2>/dev/null)" || { echo 0; return 0; }
  read -r -a fields <<<"${stat##*) }"
  echo $((fields[11] + fields[12]))
}

# wait_pid PID SECONDS: waits for a process started by `start_bg` to exit and returns its exit
# status; if it still runs after SECONDS, stops it and returns 124 (like `timeout`).
wait_pid() {
  local pid="$1" deadline=$((SECONDS + $2))
  while rf_alive "$pid"; do
    if [ "$SECONDS" -ge "$deadline" ]; then
      stop_pid "$pid" KILL || true
      return 124
    fi
    sleep 0.2
  done
  stop_pid "$pid"
}

# Creates the two namespaces, the veth pair and the underlay addresses, a temporary
# directory in RF_TMP, and registers the cleanup trap. Needs root.
rf_netns_setup() {
  if [ "$(id -u)" -ne 0 ]; then
    echo "$(basename "$0"): needs root (network namespaces, TUN devices); run it with sudo" >&2
    exit 1
  fi
  trap rf_cleanup EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  RF_TMP="$(mktemp -d "/tmp/$RF_TAG.XXXXXX")"
  local ns
  for ns in "$RF_NS_A" "$RF_NS_B"; do
    ip netns add "$ns"
    RF_NAMESPACES+=("$ns")
    ip -n "$ns" link set lo up
  done
  ip link add "$RF_VETH_A" netns "$RF_NS_A" type veth peer name "$RF_VETH_B" netns "$RF_NS_B"
  ip -n "$RF_NS_A" addr add "$RF_UNDERLAY_A4/24" dev "$RF_VETH_A"
  ip -n "$RF_NS_B" addr add "$RF_UNDERLAY_B4/24" dev "$RF_VETH_B"
  ip -n "$RF_NS_A" addr add "$RF_UNDERLAY_A6/64" dev "$RF_VETH_A" nodad
  ip -n "$RF_NS_B" addr add "$RF_UNDERLAY_B6/64" dev "$RF_VETH_B" nodad
  ip -n "$RF_NS_A" link set "$RF_VETH_A" up
  ip -n "$RF_NS_B" link set "$RF_VETH_B" up
  if ! wait_for 10 run_in "$RF_NS_A" ping -c1 -W1 "$RF_UNDERLAY_B4"; then
    echo "$(basename "$0"): underlay veth between $RF_NS_A and $RF_NS_B does not pass traffic" >&2
    exit 1
  fi
}

# rf_netns_add NAME: creates namespace $RF_TAG-NAME (loopback up), deleted by rf_cleanup, and
# leaves its name in RF_LAST_NS.
rf_netns_add() {
  RF_LAST_NS="$RF_TAG-$1"
  ip netns add "$RF_LAST_NS"
  RF_NAMESPACES+=("$RF_LAST_NS")
  ip -n "$RF_LAST_NS" link set lo up
}

# rf_netns_link NS1 NS2 PREFIX: joins two namespaces with a new veth pair: NS1's end gets
# PREFIX.1/24, NS2's end PREFIX.2/24 (PREFIX like 10.204.0). The ends' names are left in
# RF_LINK_IF1 and RF_LINK_IF2; they go with their namespaces.
rf_netns_link() {
  local ns1="$1" ns2="$2" prefix="$3"
  RF_LINK_SEQ=$((${RF_LINK_SEQ:-0} + 1))
  RF_LINK_IF1="rf$$-l${RF_LINK_SEQ}a"
  RF_LINK_IF2="rf$$-l${RF_LINK_SEQ}b"
  ip link add "$RF_LINK_IF1" netns "$ns1" type veth peer name "$RF_LINK_IF2" netns "$ns2"
  ip -n "$ns1" addr add "$prefix.1/24" dev "$RF_LINK_IF1"
  ip -n "$ns2" addr add "$prefix.2/24" dev "$RF_LINK_IF2"
  ip -n "$ns1" link set "$RF_LINK_IF1" up
  ip -n "$ns2" link set "$RF_LINK_IF2" up
  if ! wait_for 10 run_in "$ns1" ping -c1 -W1 "$prefix.2"; then
    echo "$(basename "$0"): veth between $ns1 and $ns2 does not pass traffic" >&2
    return 1
  fi
}

# rf_move_underlay_b4 NEW_ADDRESS: replaces namespace B's IPv4 underlay address (roaming).
rf_move_underlay_b4() {
  local new="$1"
  ip -n "$RF_NS_B" addr del "$RF_UNDERLAY_B4/24" dev "$RF_VETH_B"
  ip -n "$RF_NS_B" addr add "$new/24" dev "$RF_VETH_B"
  RF_UNDERLAY_B4="$new"
}

# rf_restore_underlay_b4: puts namespace B's IPv4 underlay address back to 10.201.0.2.
rf_restore_underlay_b4() {
  [ "$RF_UNDERLAY_B4" = 10.201.0.2 ] && return 0
  rf_move_underlay_b4 10.201.0.2
}
