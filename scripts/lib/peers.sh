# shellcheck shell=bash
# shellcheck disable=SC2034 # the globals here are read by the scripts that source this file
# Starting WireGuard nodes inside the namespaces of netns.sh: boringtun-cli, wireguard-go and
# rovy-fast. Source netns.sh first. Every wait is bounded; on failure a function prints the
# reason (with the node's log tail) to stderr and returns non-zero.

RF_REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
RF_LIB="$RF_REPO/scripts/lib"
BORINGTUN_BIN="${BORINGTUN_BIN:-$RF_REPO/target/peers/bin/boringtun-cli}"
ROVY_FAST_BIN="${ROVY_FAST_BIN:-$RF_REPO/target/release/rovy-fast}"
RF_MTU=1420
# A preshared key file (`wg genpsk`, mode 0600) that every node configured here uses with its
# peer; empty = none.
RF_PSK_FILE="${RF_PSK_FILE:-}"

# rf_log_tail LOGFILE: the last lines of a node's log, indented, on stderr.
rf_log_tail() {
  echo "  --- last lines of $1:" >&2
  tail -n 15 "$1" 2>/dev/null | sed -e 's/\x1b\[[0-9;]*m//g' -e 's/^/  | /' >&2 || true
}

# rf_genkey FILE: writes a new private key (mode 0600). Uses `rovy-fast genkey` when the binary
# exists (its keys carry an fc00 address and are plain X25519 keys to everyone else), else `wg genkey`.
rf_genkey() {
  local file="$1"
  (
    umask 077
    if [ -x "$ROVY_FAST_BIN" ]; then
      timeout 10 "$ROVY_FAST_BIN" genkey >"$file"
    else
      timeout 10 wg genkey >"$file"
    fi
  )
}

# rf_pubkey FILE: prints the public key of a private key file.
rf_pubkey() {
  timeout 10 wg pubkey <"$1"
}

# start_wg_userspace IMPL NS IFNAME LOGFILE [ARGS…]: starts boringtun-cli (IMPL=boringtun; ARGS
# go to it, e.g. --threads 2 --disable-connected-udp) or wireguard-go (IMPL=wireguard-go) in the
# foreground inside NS and waits until its configuration socket answers. Leaves the daemon PID in
# RF_LAST_PID.
start_wg_userspace() {
  local impl="$1" ns="$2" ifname="$3" log="$4"
  shift 4
  case "$impl" in
    boringtun)
      if [ ! -x "$BORINGTUN_BIN" ]; then
        echo "boringtun-cli not installed at $BORINGTUN_BIN (run scripts/install-peers.sh)" >&2
        return 1
      fi
      start_bg "$ns" "$log" env WG_LOG_LEVEL=info NO_COLOR=1 "$BORINGTUN_BIN" --foreground \
        --disable-drop-privileges "$@" "$ifname"
      ;;
    wireguard-go)
      start_bg "$ns" "$log" env WG_PROCESS_FOREGROUND=1 LOG_LEVEL=error \
        WG_I_PREFER_BUGGY_USERSPACE_TO_POLISHED_KMOD=1 wireguard-go -f "$@" "$ifname"
      ;;
    *)
      echo "start_wg_userspace: unknown implementation '$impl'" >&2
      return 1
      ;;
  esac
  local pid="$RF_LAST_PID"
  if ! wait_for 10 run_in "$ns" wg show "$ifname"; then
    echo "$impl did not come up on $ifname within 10 s" >&2
    rf_log_tail "$log"
    stop_pid "$pid" || true
    return 1
  fi
  RF_LAST_PID="$pid"
}

# wg_configure NS IFNAME KEYFILE PORT PEER_PUBKEY ENDPOINT ALLOWED_IPS KEEPALIVE ADDRESS…:
# configures a running userspace interface with `wg set` (ENDPOINT "" = none, KEEPALIVE 0 = off,
# ALLOWED_IPS comma-separated, RF_PSK_FILE as the preshared key when set), then MTU 1420, the
# addresses, and brings it up.
wg_configure() {
  local ns="$1" ifname="$2" keyfile="$3" port="$4" peer="$5" endpoint="$6" allowed="$7" keepalive="$8"
  shift 8
  local peer_args=(peer "$peer" allowed-ips "$allowed")
  if [ -n "$endpoint" ]; then
    peer_args+=(endpoint "$endpoint")
  fi
  if [ "$keepalive" != 0 ]; then
    peer_args+=(persistent-keepalive "$keepalive")
  fi
  if [ -n "$RF_PSK_FILE" ]; then
    peer_args+=(preshared-key "$RF_PSK_FILE")
  fi
  run_in "$ns" timeout 10 wg set "$ifname" private-key "$keyfile" listen-port "$port" "${peer_args[@]}" || return 1
  run_in "$ns" ip link set "$ifname" mtu "$RF_MTU" || return 1
  local address
  for address in "$@"; do
    case "$address" in
      *:*) run_in "$ns" ip addr add "$address" dev "$ifname" nodad || return 1 ;;
      *) run_in "$ns" ip addr add "$address" dev "$ifname" || return 1 ;;
    esac
  done
  run_in "$ns" ip link set "$ifname" up
}

# write_rovy_config FILE IFNAME KEYFILE PORT ADDRESSES PEER_PUBKEY KIND ENDPOINT ALLOWED_IPS KEEPALIVE:
# writes a rovy-fast TOML config with one peer. ADDRESSES and ALLOWED_IPS are comma-separated;
# ENDPOINT "" = none; KEEPALIVE 0 = off; RF_PSK_FILE, when set, is the peer's preshared key.
write_rovy_config() {
  local file="$1" ifname="$2" keyfile="$3" port="$4" addresses="$5" peer="$6" kind="$7"
  local endpoint="$8" allowed="$9" keepalive="${10}"
  {
    echo "[interface]"
    echo "name = \"$ifname\""
    echo "private_key_file = \"$keyfile\""
    echo "listen_port = $port"
    echo "addresses = [$(toml_list "$addresses")]"
    echo "mtu = $RF_MTU"
    echo
    echo "[[peer]]"
    echo "public_key = \"$peer\""
    echo "kind = \"$kind\""
    if [ -n "$endpoint" ]; then
      echo "endpoint = \"$endpoint\""
    fi
    echo "allowed_ips = [$(toml_list "$allowed")]"
    if [ "$keepalive" != 0 ]; then
      echo "persistent_keepalive = $keepalive"
    fi
    if [ -n "$RF_PSK_FILE" ]; then
      echo "preshared_key_file = \"$RF_PSK_FILE\""
    fi
  } >"$file"
}

# toml_list "a,b": prints "a", "b" (quoted TOML array items).
toml_list() {
  local items=() item
  IFS=, read -r -a items <<<"$1"
  local out=""
  for item in "${items[@]}"; do
    out+="${out:+, }\"$item\""
  done
  echo "$out"
}

# start_rovy NS NAME CONFIG SOCKET [EXTRA ARGS…]: starts rovy-fast inside NS with its log in
# $RF_TMP/NAME.log and waits (20 s at most) for its `rovy-fast: ready:` line (rf_wait_ready).
# Leaves the PID in RF_LAST_PID; on failure prints the log tail and returns 1.
start_rovy() {
  local ns="$1" name="$2" config="$3" socket="$4"
  shift 4
  local log="$RF_TMP/$name.log"
  if [ ! -x "$ROVY_FAST_BIN" ]; then
    echo "rovy-fast not built at $ROVY_FAST_BIN (cargo build --release -p rovy-control)" >&2
    return 1
  fi
  start_bg "$ns" "$log" "$ROVY_FAST_BIN" "$@" --socket "$socket" "$config"
  local pid="$RF_LAST_PID"
  if ! rf_wait_ready "$log" "$pid" 20; then
    echo "rovy-fast ($name) did not start" >&2
    rf_log_tail "$log"
    stop_pid "$pid" || true
    return 1
  fi
  RF_LAST_PID="$pid"
}

# rovy_status NS SOCKET OUTFILE: writes `rovy-fast status` JSON of the node behind SOCKET.
rovy_status() {
  run_in "$1" timeout 10 "$ROVY_FAST_BIN" status --json --socket "$2" >"$3"
}
