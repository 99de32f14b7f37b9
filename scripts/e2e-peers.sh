#!/usr/bin/env bash
# Peers that change while the node runs: the stock `wg` (wireguard-tools) against a running
# rovy-fast node, then reloads by SIGHUP under a transfer, then SIGTERM under load.
#
# Node A (namespace A) peers with node B (namespace B). A third node, C, runs in a third
# namespace behind its own veth to A (underlay 10.201.9.0/24), with tunnel addresses of its own
# (10.203.0.0/24, A has 10.203.0.1); A learns about it only at run time.
#   1. `wg show` and `wg showconf` report A's interface and its peer B as the config says.
#   2. `wg set … peer C allowed-ips … endpoint … persistent-keepalive …` adds C: A pings it.
#      `wg set … peer C remove` removes it: the ping fails. B's session is never touched (the
#      same handshake all along, ping answered throughout).
#   3. `wg syncconf` from a file with C adds it again, from one without C removes it.
#   4. A change a running node cannot make (`wg set … listen-port`) fails in `wg` with
#      "Operation not supported" and is logged.
#   5. A 60 MB checksummed transfer A->B runs while SIGHUP reloads a config that adds one
#      peer and removes another, then a broken config that is refused (file, key, reason in
#      the log) with the running peers kept; the transfer completes with its checksum.
#   6. `rovy-fast peer list` shows B; `peer disconnect PEERID` removes it; `peer connect
#      /ip4/…/udp/…/rovy/PEERID` dials it back (its fc00 address answers); a reload makes the
#      peers the file's again.
#   7. SIGTERM during TCP at full speed (iperf3): A exits 0 within 2 s.
# Needs root; every wait is bounded and everything is removed on exit.
#   sudo scripts/e2e-peers.sh [--no-build]
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=lib/apt.sh
source scripts/lib/apt.sh
# shellcheck source=lib/netns.sh
source scripts/lib/netns.sh
# shellcheck source=lib/peers.sh
source scripts/lib/peers.sh

rf_ensure_commands wg=wireguard-tools ip=iproute2 ping=iputils-ping python3=python3 iperf3=iperf3
[ "${1:-}" = "--no-build" ] || cargo build --quiet --release --locked -p rovy-control
rf_netns_setup
RF_NS_C="$RF_TAG-c"
ip netns add "$RF_NS_C"
RF_NAMESPACES+=("$RF_NS_C")
ip -n "$RF_NS_C" link set lo up
ip link add "rfv$$c" netns "$RF_NS_A" type veth peer name "rfv$$d" netns "$RF_NS_C"
ip -n "$RF_NS_A" addr add 10.201.9.1/24 dev "rfv$$c"
ip -n "$RF_NS_C" addr add 10.201.9.2/24 dev "rfv$$d"
ip -n "$RF_NS_A" link set "rfv$$c" up
ip -n "$RF_NS_C" link set "rfv$$d" up
UNDERLAY_C=10.201.9.2

fail() {
  echo "FAIL peers: $*"
  local log
  for log in "$RF_TMP"/*.log; do
    [ -f "$log" ] && rf_log_tail "$log"
  done
  exit 1
}
pass() { echo "  ok: $*"; }

IF_A="rfp$$a"
IF_B="rfp$$b"
IF_C="rfp$$c"
PORT=51820
PORT_C=51821
for node in a b c d1 d2; do rf_genkey "$RF_TMP/$node.key"; done
pub() { rf_pubkey "$RF_TMP/$1.key"; }
PUB_A="$(pub a)" PUB_B="$(pub b)" PUB_C="$(pub c)" PUB_D1="$(pub d1)" PUB_D2="$(pub d2)"

# iface FILE IFNAME KEY PORT ADDRESSES: starts a config with its [interface] (ADDRESSES is
# comma-separated).
iface() {
  printf '[interface]\nname = "%s"\nprivate_key_file = "%s"\nlisten_port = %s\naddresses = [%s]\n' \
    "$2" "$RF_TMP/$3.key" "$4" "$(toml_list "$5")" >"$1"
}
# peer FILE KEY KIND ENDPOINT ALLOWED: appends a [[peer]] (ENDPOINT "" = none).
peer() {
  {
    printf '\n[[peer]]\npublic_key = "%s"\nkind = "%s"\n' "$2" "$3"
    [ -z "$4" ] || printf 'endpoint = "%s"\n' "$4"
    printf 'allowed_ips = ["%s"]\n' "$5"
  } >>"$1"
}

CONF_A="$RF_TMP/a.toml"
# a_config EXTRA_KEY EXTRA_IP: A's config: peer B, and one more peer without an endpoint.
a_config() {
  iface "$CONF_A" "$IF_A" a "$PORT" 10.202.0.1/24,10.203.0.1/24
  peer "$CONF_A" "$PUB_B" rovy "$RF_UNDERLAY_B4:$PORT" 10.202.0.2/32
  peer "$CONF_A" "$1" wireguard "" "$2"
}
a_config "$PUB_D1" 10.204.0.1/32
iface "$RF_TMP/b.toml" "$IF_B" b "$PORT" 10.202.0.2/24
peer "$RF_TMP/b.toml" "$PUB_A" rovy "$RF_UNDERLAY_A4:$PORT" 10.202.0.1/32
iface "$RF_TMP/c.toml" "$IF_C" c "$PORT_C" 10.203.0.3/24
peer "$RF_TMP/c.toml" "$PUB_A" wireguard "10.201.9.1:$PORT" 10.203.0.1/32

start_rovy "$RF_NS_A" a "$CONF_A" "$RF_TMP/a.sock" || fail "node A did not start"
PID_A="$RF_LAST_PID"
start_rovy "$RF_NS_B" b "$RF_TMP/b.toml" "$RF_TMP/b.sock" || fail "node B did not start"
start_rovy "$RF_NS_C" c "$RF_TMP/c.toml" "$RF_TMP/c.sock" || fail "node C did not start"
LOG_A="$RF_TMP/a.log"

wg_a() { run_in "$RF_NS_A" timeout 10 wg "$@"; }
ping_a() { run_in "$RF_NS_A" ping -c 1 -W 1 "$1" >/dev/null 2>&1; }
wait_for 15 ping_a 10.202.0.2 || fail "A cannot ping B"
pass "A pings B"
b_handshake() { wg_a show "$IF_A" latest-handshakes | awk -v k="$PUB_B" '$1 == k {print $2}'; }
HANDSHAKE_B="$(b_handshake)"
[ "${HANDSHAKE_B:-0}" != 0 ] || fail "wg show reports no handshake with B"

echo "== wg show, wg showconf"
mode="$(stat -c %a "/var/run/wireguard/$IF_A.sock")"
[ "$mode" = 600 ] || fail "the userspace API socket has mode $mode, not 600"
show="$(wg_a show "$IF_A")" || fail "wg show failed"
for want in "interface: $IF_A" "public key: $PUB_A" "listening port: $PORT" "peer: $PUB_B" \
  "endpoint: $RF_UNDERLAY_B4:$PORT" "allowed ips: 10.202.0.2/32" "latest handshake:" \
  "peer: $PUB_D1" "allowed ips: 10.204.0.1/32"; do
  grep -qF "$want" <<<"$show" || fail "wg show lacks '$want':"$'\n'"$show"
done
pass "wg show names the interface, its key and port, both peers, B's endpoint and handshake"
sed 's/^/    /' <<<"$show"
conf="$(wg_a showconf "$IF_A")" || fail "wg showconf failed"
for want in "PrivateKey = $(cat "$RF_TMP/a.key")" "ListenPort = $PORT" "PublicKey = $PUB_B" \
  "AllowedIPs = 10.202.0.2/32" "Endpoint = $RF_UNDERLAY_B4:$PORT" "PublicKey = $PUB_D1"; do
  grep -qF "$want" <<<"$conf" || fail "wg showconf lacks '$want':"$'\n'"$conf"
done
pass "wg showconf prints a config with the private key, port and peers"

echo "== wg set: add C, pass traffic, remove it"
ping_a 10.203.0.3 && fail "A reaches C before C is a peer"
wg_a set "$IF_A" peer "$PUB_C" allowed-ips 10.203.0.3/32 endpoint "$UNDERLAY_C:$PORT_C" \
  persistent-keepalive 5 || fail "wg set peer C failed"
wait_for 10 ping_a 10.203.0.3 || fail "A cannot ping C after wg set"
keepalive="$(wg_a show "$IF_A" persistent-keepalive | awk -v k="$PUB_C" '$1 == k {print $2}')"
[ "$keepalive" = 5 ] || fail "wg show reports keepalive '$keepalive' for C, not 5"
pass "wg set added C: A pings it, keepalive 5"
wg_a set "$IF_A" peer "$PUB_C" remove || fail "wg set peer C remove failed"
wg_a show "$IF_A" peers | grep -qF "$PUB_C" && fail "C is still listed after remove"
ping_a 10.203.0.3 && fail "A still reaches C after removing it"
ping_a 10.202.0.2 || fail "A lost B while C came and went"
[ "$(b_handshake)" = "$HANDSHAKE_B" ] || fail "B's session was redone while C came and went"
pass "wg set removed C; B's session untouched"

echo "== wg syncconf"
sync_file() { # FILE WITH_C
  {
    printf '[Interface]\nPrivateKey = %s\nListenPort = %s\n' "$(cat "$RF_TMP/a.key")" "$PORT"
    printf '\n[Peer]\nPublicKey = %s\nAllowedIPs = 10.202.0.2/32\nEndpoint = %s:%s\n' \
      "$PUB_B" "$RF_UNDERLAY_B4" "$PORT"
    printf '\n[Peer]\nPublicKey = %s\nAllowedIPs = 10.204.0.1/32\n' "$PUB_D1"
    if [ "$2" = 1 ]; then
      printf '\n[Peer]\nPublicKey = %s\nAllowedIPs = 10.203.0.3/32\nEndpoint = %s:%s\n' \
        "$PUB_C" "$UNDERLAY_C" "$PORT_C"
    fi
  } >"$1"
  chmod 600 "$1"
}
sync_file "$RF_TMP/with-c.conf" 1
sync_file "$RF_TMP/without-c.conf" 0
wg_a syncconf "$IF_A" "$RF_TMP/with-c.conf" || fail "wg syncconf (with C) failed"
wait_for 10 ping_a 10.203.0.3 || fail "A cannot ping C after wg syncconf added it"
wg_a syncconf "$IF_A" "$RF_TMP/without-c.conf" || fail "wg syncconf (without C) failed"
wg_a show "$IF_A" peers | grep -qF "$PUB_C" && fail "wg syncconf left C in place"
ping_a 10.202.0.2 || fail "A lost B during wg syncconf"
[ "$(b_handshake)" = "$HANDSHAKE_B" ] || fail "B's session was redone by wg syncconf"
pass "wg syncconf added C, then removed it; B untouched"

echo "== a change a running node cannot make"
if out="$(wg_a set "$IF_A" listen-port 9999 2>&1)"; then
  fail "wg set listen-port succeeded"
fi
grep -q "Operation not supported" <<<"$out" || fail "wg set listen-port said: $out"
grep -q "wg set refused: a running node keeps its listen port" "$LOG_A" ||
  fail "the refusal is not in A's log"
pass "wg set listen-port fails with '$out'"

echo "== SIGHUP under a transfer: a peer added, one removed; a broken config refused"
head -c 60000000 /dev/urandom >"$RF_TMP/data"
expected="$(sha256sum "$RF_TMP/data" | cut -d' ' -f1) $(stat -c %s "$RF_TMP/data")"
start_bg "$RF_NS_B" "$RF_TMP/recv.log" python3 "$RF_LIB/transfer.py" recv --bind 10.202.0.2 \
  --port 5201 --out "$RF_TMP/received" --ready "$RF_TMP/ready" --timeout 60
RECV="$RF_LAST_PID"
wait_for 10 test -f "$RF_TMP/ready" || fail "transfer receiver did not listen"
start_bg "$RF_NS_A" "$RF_TMP/send.log" python3 "$RF_LIB/transfer.py" send --host 10.202.0.2 \
  --port 5201 --file "$RF_TMP/data" --rate 10 --timeout 60
SEND="$RF_LAST_PID"
sleep 1
a_config "$PUB_D2" 10.204.0.2/32
kill -HUP "$PID_A"
reloaded() { grep -q "reloaded $CONF_A: 1 peer(s) added, 1 removed, 0 changed" "$LOG_A"; }
wait_for 10 reloaded || fail "no 'reloaded' line for the new peer set"
peers="$(wg_a show "$IF_A" peers)"
grep -qF "$PUB_D2" <<<"$peers" || fail "the peer added by reload is not running"
grep -qF "$PUB_D1" <<<"$peers" && fail "the peer removed by reload still runs"
pass "reload added one peer and removed another"
sleep 1
sed -i 's|"10.204.0.2/32"|"10.0.0.300/32"|' "$CONF_A"
kill -HUP "$PID_A"
refused() { grep -q "reload refused: $CONF_A: peer\[1\].allowed_ips: \"10.0.0.300/32\" is not an IP prefix" "$LOG_A"; }
wait_for 10 refused || fail "the broken config's refusal (file, key, reason) is not logged"
grep -q "running config kept" "$LOG_A" || fail "the refusal does not say the running config is kept"
wg_a show "$IF_A" peers | grep -qF "$PUB_D2" || fail "a refused reload changed the peers"
pass "the broken config was refused: $(grep "reload refused" "$LOG_A" | tail -n1)"
wait_pid "$SEND" 60 || fail "the transfer's sender failed: $(tail -n1 "$RF_TMP/send.log")"
wait_pid "$RECV" 30 || fail "the transfer's receiver failed: $(tail -n1 "$RF_TMP/recv.log")"
received="$(cat "$RF_TMP/received")"
[ "$received" = "$expected" ] || fail "transfer checksum: sent '$expected', received '$received'"
[ "$(b_handshake)" = "$HANDSHAKE_B" ] || fail "B's session was redone by a reload"
pass "the 60 MB transfer across both reloads completed with its checksum"

echo "== rovy-fast peer list, disconnect, connect"
rovy_a() { run_in "$RF_NS_A" timeout 10 "$ROVY_FAST_BIN" "$@" --socket "$RF_TMP/a.sock"; }
id_b="$(timeout 10 "$ROVY_FAST_BIN" id "$RF_TMP/b.key")"
ID_B="$(awk '$1 == "peer_id:" {print $2}' <<<"$id_b")"
FC_B="$(awk '$1 == "address:" {print $2}' <<<"$id_b")"
list="$(rovy_a peer list)" || fail "rovy-fast peer list failed"
grep -F "$ID_B" <<<"$list" | grep -qF "$PUB_B" || fail "peer list does not show B:"$'\n'"$list"
sed 's/^/    /' <<<"$list"
out="$(rovy_a peer disconnect "$ID_B")" || fail "rovy-fast peer disconnect failed"
[ "$out" = "disconnected $PUB_B ($ID_B)" ] || fail "peer disconnect said: $out"
ping_a 10.202.0.2 && fail "A still reaches B after peer disconnect"
out="$(rovy_a peer connect "/ip4/$RF_UNDERLAY_B4/udp/$PORT/rovy/$ID_B")" ||
  fail "rovy-fast peer connect failed"
[ "$out" = "connecting to $PUB_B ($ID_B) at $RF_UNDERLAY_B4:$PORT" ] || fail "peer connect said: $out"
wait_for 10 ping_a "$FC_B" || fail "A cannot ping B's fc00 address $FC_B after peer connect"
rovy_a peer list --json >"$RF_TMP/peers.json" || fail "rovy-fast peer list --json failed"
python3 - "$RF_TMP/peers.json" "$PUB_B" <<'PY' || fail "peer list --json does not show B as a rovy peer"
import json, sys
peers = {p["public_key"]: p for p in json.load(open(sys.argv[1]))["peers"]}
b = peers[sys.argv[2]]
sys.exit(0 if b["kind"] == "rovy" and b["allowed_ips"] == [] and b["last_handshake_secs_ago"] is not None else 1)
PY
pass "peer disconnect removed B, peer connect dialled it back by multiaddr (fc00 ping answered)"
echo "    $out"
a_config "$PUB_D2" 10.204.0.2/32
kill -HUP "$PID_A"
restored() { grep -q "reloaded $CONF_A: 0 peer(s) added, 0 removed, 1 changed" "$LOG_A"; }
wait_for 10 restored || fail "no 'reloaded' line giving B its allowed IPs back"
wait_for 10 ping_a 10.202.0.2 || fail "A cannot ping B after the reload restored its allowed IPs"
pass "a reload made the peers the config file's again"

echo "== SIGTERM under load"
start_bg "$RF_NS_B" "$RF_TMP/iperf-server.log" timeout 30 iperf3 -s -1 -B 10.202.0.2
sleep 0.5
start_bg "$RF_NS_A" "$RF_TMP/iperf-client.log" timeout 30 iperf3 -c 10.202.0.2 -t 20
sleep 2
start=$(date +%s%N)
kill -TERM "$PID_A"
rc=0
wait_pid "$PID_A" 5 || rc=$?
took_ms=$((($(date +%s%N) - start) / 1000000))
[ "$rc" = 0 ] || fail "A exited $rc on SIGTERM under load"
[ "$took_ms" -le 2000 ] || fail "A took $took_ms ms to stop on SIGTERM under load"
[ -e "/var/run/wireguard/$IF_A.sock" ] && fail "A left its userspace API socket behind"
pass "SIGTERM under load: exit 0 after $took_ms ms, socket removed"
echo "PASS peers: wg show/showconf/set/syncconf against a running node, reloads under a transfer, SIGTERM under load"
