#!/usr/bin/env bash
# wg-quick habits: allowed IPs routed into the TUN, and overlapping allowed IPs with
# longest-prefix match.
#
# Node A (rovy-fast, namespace A, tunnel address 10.210.0.1/24) has two plain WireGuard peers:
#   G, wireguard-go in namespace B (tunnel address 10.220.5.5), allowed IPs 0.0.0.0/0 and
#     10.220.0.0/16: a gateway for the whole /16;
#   H, rovy-fast in namespace C behind a veth of its own (tunnel address 10.220.0.7), allowed
#     IP 10.220.0.7/32, inside G's /16.
#   1. A routes 10.220.0.0/16 and 10.220.0.7/32 into its TUN, and G's 0.0.0.0/0 not in its
#      main table but in table 51820 (see e2e-default-route.sh); H routes A's 10.210.0.0/24
#      into its own.
#   2. A pings 10.220.5.5 (G answers) and 10.220.0.7 (only H has it: G does not forward).
#   3. `wg set` gives H 10.230.0.0/24 as well: the route comes; `wg set … remove` takes H away:
#      its routes go, G's /16 stays, and 10.220.0.7 goes to G now (which does not answer it).
#      A SIGHUP reload brings H back with its route, and the ping is answered again.
#   4. With `routes = false` A adds no route and no rule (not even at a `wg set`), and
#      10.220.0.7 is unreachable.
# Needs root; every wait is bounded and everything is removed on exit.
#   sudo scripts/e2e-routes.sh [--no-build]
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=lib/apt.sh
source scripts/lib/apt.sh
# shellcheck source=lib/netns.sh
source scripts/lib/netns.sh
# shellcheck source=lib/peers.sh
source scripts/lib/peers.sh

rf_ensure_commands wg=wireguard-tools wireguard-go=wireguard-go ip=iproute2 ping=iputils-ping
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

fail() {
  echo "FAIL routes: $*"
  local log
  for log in "$RF_TMP"/*.log; do
    [ -f "$log" ] && rf_log_tail "$log"
  done
  exit 1
}
pass() { echo "  ok: $*"; }

IF_A="rfr$$a"
IF_G="rfr$$g"
IF_H="rfr$$h"
PORT=51820
PORT_H=51821
for node in a g h; do rf_genkey "$RF_TMP/$node.key"; done
PUB_A="$(rf_pubkey "$RF_TMP/a.key")" PUB_G="$(rf_pubkey "$RF_TMP/g.key")"
PUB_H="$(rf_pubkey "$RF_TMP/h.key")"

# iface FILE IFNAME KEY PORT ADDRESS EXTRA: a config's [interface] (EXTRA: more lines).
iface() {
  printf '[interface]\nname = "%s"\nprivate_key_file = "%s"\nlisten_port = %s\naddresses = ["%s"]\n%s' \
    "$2" "$RF_TMP/$3.key" "$4" "$5" "$6" >"$1"
}
# peer FILE KEY ENDPOINT ALLOWED: appends a plain WireGuard [[peer]] (ALLOWED: TOML items).
peer() {
  printf '\n[[peer]]\npublic_key = "%s"\nkind = "wireguard"\nendpoint = "%s"\nallowed_ips = [%s]\n' \
    "$2" "$3" "$4" >>"$1"
}
CONF_A="$RF_TMP/a.toml"
# a_config EXTRA: A's config with G and H (EXTRA: more [interface] lines).
a_config() {
  iface "$CONF_A" "$IF_A" a "$PORT" 10.210.0.1/24 "$1"
  peer "$CONF_A" "$PUB_G" "$RF_UNDERLAY_B4:$PORT" '"0.0.0.0/0", "10.220.0.0/16"'
  peer "$CONF_A" "$PUB_H" "10.201.9.2:$PORT_H" '"10.220.0.7/32"'
}
a_config ""
iface "$RF_TMP/h.toml" "$IF_H" h "$PORT_H" 10.220.0.7/32 ""
peer "$RF_TMP/h.toml" "$PUB_A" "10.201.9.1:$PORT" '"10.210.0.0/24"'

start_wg_userspace wireguard-go "$RF_NS_B" "$IF_G" "$RF_TMP/g.log" || fail "G did not start"
wg_configure "$RF_NS_B" "$IF_G" "$RF_TMP/g.key" "$PORT" "$PUB_A" "$RF_UNDERLAY_A4:$PORT" \
  10.210.0.0/24 0 10.220.5.5/32 || fail "G could not be configured"
ip -n "$RF_NS_B" route add 10.210.0.0/24 dev "$IF_G"
start_rovy "$RF_NS_C" h "$RF_TMP/h.toml" "$RF_TMP/h.sock" || fail "node H did not start"
start_rovy "$RF_NS_A" a "$CONF_A" "$RF_TMP/a.sock" || fail "node A did not start"
PID_A="$RF_LAST_PID"
LOG_A="$RF_TMP/a.log"

# tun_routes NS IF: the IPv4 routes the node added into IF, one per line, sorted.
tun_routes() {
  run_in "$1" ip -4 route show dev "$2" proto static | awk '{print $1}' | sort
}
routes_are() {
  [ "$(tun_routes "$RF_NS_A" "$IF_A" | tr '\n' ' ')" = "$1" ]
}
ping_a() { run_in "$RF_NS_A" ping -c 1 -W 1 "$1" >/dev/null 2>&1; }
wg_a() { run_in "$RF_NS_A" timeout 10 wg "$@"; }

echo "== routes for overlapping allowed IPs"
routes_are "10.220.0.0/16 10.220.0.7 " ||
  fail "A's routes into $IF_A are not the /16 and the /32: $(tun_routes "$RF_NS_A" "$IF_A" | tr '\n' ' ')"
run_in "$RF_NS_A" ip -4 route show default | grep -q . && fail "A added a default route to its main table"
[ "$(run_in "$RF_NS_A" ip -4 route show table 51820)" = "default dev $IF_A proto static scope link " ] ||
  fail "A did not route G's 0.0.0.0/0 in table 51820: $(run_in "$RF_NS_A" ip -4 route show table 51820)"
[ "$(tun_routes "$RF_NS_C" "$IF_H")" = 10.210.0.0/24 ] || fail "H did not route A's subnet into $IF_H"
pass "A routes 10.220.0.0/16 and 10.220.0.7 into its TUN, 0.0.0.0/0 in table 51820; H routes 10.210.0.0/24"

echo "== longest-prefix match"
wait_for 15 ping_a 10.220.5.5 || fail "A cannot ping G (10.220.5.5, in the /16)"
wait_for 15 ping_a 10.220.0.7 || fail "A cannot ping H (10.220.0.7, the /32 inside G's /16)"
pass "A pings G through the /16 and H through the /32 inside it"

echo "== routes follow runtime changes"
wg_a set "$IF_A" peer "$PUB_H" allowed-ips 10.220.0.7/32,10.230.0.0/24 || fail "wg set allowed-ips failed"
wait_for 5 routes_are "10.220.0.0/16 10.220.0.7 10.230.0.0/24 " ||
  fail "no route for H's new prefix: $(tun_routes "$RF_NS_A" "$IF_A" | tr '\n' ' ')"
wg_a set "$IF_A" peer "$PUB_H" remove || fail "wg set remove failed"
wait_for 5 routes_are "10.220.0.0/16 " ||
  fail "H's routes stayed after it went: $(tun_routes "$RF_NS_A" "$IF_A" | tr '\n' ' ')"
g_received() { run_in "$RF_NS_B" timeout 10 wg show "$IF_G" transfer | awk '{print $2}'; }
before="$(g_received)"
ping_a 10.220.0.7 && fail "10.220.0.7 still answers without H (it should go to G, which drops it)"
[ "$(g_received)" -gt "$before" ] || fail "the ping to 10.220.0.7 did not go to G once H was gone"
ping_a 10.220.5.5 || fail "G stopped answering while H came and went"
pass "wg set added H's new prefix's route; removing H took its routes, and 10.220.0.7 went to G's /16"
kill -HUP "$PID_A"
wait_for 10 grep -qF "reloaded $CONF_A: 1 peer(s) added" "$LOG_A" || fail "the reload did not add H back"
wait_for 5 routes_are "10.220.0.0/16 10.220.0.7 " ||
  fail "the reload did not bring H's route back: $(tun_routes "$RF_NS_A" "$IF_A" | tr '\n' ' ')"
wait_for 15 ping_a 10.220.0.7 || fail "A cannot ping H after the reload"
pass "a reload brought H and its route back, and H answers again"

echo "== routes = false"
stop_pid "$PID_A" || fail "A did not exit cleanly"
a_config $'routes = false\n'
start_rovy "$RF_NS_A" a2 "$CONF_A" "$RF_TMP/a.sock" || fail "node A did not start with routes = false"
routes_are "" || fail "A added routes with routes = false: $(tun_routes "$RF_NS_A" "$IF_A" | tr '\n' ' ')"
run_in "$RF_NS_A" ip -4 rule show | grep -q 51820 && fail "A added rules with routes = false"
wg_a set "$IF_A" peer "$PUB_H" allowed-ips 10.220.0.7/32,10.230.0.0/24 || fail "wg set allowed-ips failed"
sleep 0.5
routes_are "" || fail "wg set added a route with routes = false"
ping_a 10.220.0.7 && fail "10.220.0.7 answers with no route to it"
out="$(run_in "$RF_NS_A" ping -c 1 -W 1 10.220.0.7 2>&1 || true)"
grep -q "unreachable" <<<"$out" || fail "10.220.0.7 is not unreachable without routes: $out"
pass "with routes = false no route or rule is added, at start or at a change"
echo "PASS routes: allowed IPs routed into the TUN by longest prefix, following peer changes; none with routes = false"
