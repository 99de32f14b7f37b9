#!/usr/bin/env bash
# Full-tunnel default routes as wg-quick makes them: a peer with allowed IPs 0.0.0.0/0 and ::/0
# gets every packet the main table would have sent along its default route, while the node's
# own UDP packets, marked, still take that default route to the peer.
#
# Node A (rovy-fast, namespace A, tunnel addresses 10.70.0.1/24 and fd70::1/64) sits behind a
# gateway like a laptop: its main table has default routes via namespace B over the veth, and
# B's endpoint (10.203.0.2, on B's loopback) is reached only by them. Node B (rovy-fast,
# namespace B, 10.70.0.2/24 and fd70::2/64) also holds "far" addresses there, 198.51.100.1
# and 2001:db8:100::1, which nothing but B has.
#   1. A adds exactly two rules per family (32764 `lookup main suppress_prefixlength 0`, 32765
#      `not fwmark 0xca6c lookup 51820`, both `proto static`) and a default route into its TUN
#      in table 51820; its main default routes are untouched; every socket of its port carries
#      the mark (`ss -e`), and `wg show fwmark` says so.
#   2. A pings B's tunnel address and both far addresses: the pings go into the TUN (its
#      counter grows, `ip route get` says table 51820) while the handshake packets, marked,
#      take the main default route straight to B's endpoint (`ip route get … mark`, and A
#      hears B from that endpoint).
#   3. `wg set` cannot change the mark the rules rest on; taking 0.0.0.0/0 and ::/0 from B
#      removes the rules and the table route (pings to the far address then go over the veth,
#      not the TUN), and giving them back restores them.
#   4. SIGTERM: A exits cleanly and its rules and table route are gone, the others' intact.
#   5. With `fwmark = 0x1234` the rules and table are 4660's, and go at SIGTERM as well.
# Needs root; every wait is bounded and everything is removed on exit.
#   sudo scripts/e2e-default-route.sh [--no-build]
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=lib/apt.sh
source scripts/lib/apt.sh
# shellcheck source=lib/netns.sh
source scripts/lib/netns.sh
# shellcheck source=lib/peers.sh
source scripts/lib/peers.sh

rf_ensure_commands wg=wireguard-tools ip=iproute2 ping=iputils-ping
[ "${1:-}" = "--no-build" ] || cargo build --quiet --release --locked -p rovy-control
rf_netns_setup

fail() {
  echo "FAIL default route: $*"
  local log
  for log in "$RF_TMP"/*.log; do
    [ -f "$log" ] && rf_log_tail "$log"
  done
  exit 1
}
pass() { echo "  ok: $*"; }

IF_A="rfd$$a"
IF_B="rfd$$b"
PORT_A=51900
PORT_B=51901
ENDPOINT_B=10.203.0.2
FAR4=198.51.100.1
FAR6=2001:db8:100::1

# B's endpoint and far addresses live on its loopback interface; B answers A from its endpoint
# address, as a host out on the Internet would.
ip -n "$RF_NS_B" addr add "$ENDPOINT_B/32" dev lo
ip -n "$RF_NS_B" addr add "$FAR4/32" dev lo
ip -n "$RF_NS_B" addr add "$FAR6/128" dev lo
ip -n "$RF_NS_B" route replace 10.201.0.0/24 dev "$RF_VETH_B" src "$ENDPOINT_B"
# A reaches everything but its own subnets through B, by its default routes.
ip -n "$RF_NS_A" route add default via "$RF_UNDERLAY_B4" dev "$RF_VETH_A"
ip -n "$RF_NS_A" -6 route add default via "$RF_UNDERLAY_B6" dev "$RF_VETH_A"
# Loose reverse-path filtering, most distributions' default (see README: strict filtering
# drops the endpoint's replies, as it does for wg-quick without its firewall rules).
run_in "$RF_NS_A" sysctl -qw net.ipv4.conf.all.rp_filter=2
wait_for 10 run_in "$RF_NS_A" ping -c1 -W1 "$ENDPOINT_B" || fail "A cannot reach B's endpoint over the veth"
DEFAULT_V4="$(run_in "$RF_NS_A" ip -4 route show default)"
DEFAULT_V6="$(run_in "$RF_NS_A" ip -6 route show default)"
RULES_V4="$(run_in "$RF_NS_A" ip -4 rule show)"
RULES_V6="$(run_in "$RF_NS_A" ip -6 rule show)"

for node in a b; do rf_genkey "$RF_TMP/$node.key"; done
PUB_A="$(rf_pubkey "$RF_TMP/a.key")" PUB_B="$(rf_pubkey "$RF_TMP/b.key")"

CONF_A="$RF_TMP/a.toml"
# a_config EXTRA: A's config, B its peer for 0.0.0.0/0 and ::/0 (EXTRA: more [interface] lines).
a_config() {
  printf '[interface]\nname = "%s"\nprivate_key_file = "%s"\nlisten_port = %s\naddresses = ["10.70.0.1/24", "fd70::1/64"]\n%s' \
    "$IF_A" "$RF_TMP/a.key" "$PORT_A" "$1" >"$CONF_A"
  printf '\n[[peer]]\npublic_key = "%s"\nendpoint = "%s:%s"\nallowed_ips = ["0.0.0.0/0", "::/0"]\n' \
    "$PUB_B" "$ENDPOINT_B" "$PORT_B" >>"$CONF_A"
}
a_config ""
printf '[interface]\nname = "%s"\nprivate_key_file = "%s"\nlisten_port = %s\naddresses = ["10.70.0.2/24", "fd70::2/64"]\n' \
  "$IF_B" "$RF_TMP/b.key" "$PORT_B" >"$RF_TMP/b.toml"
printf '\n[[peer]]\npublic_key = "%s"\nallowed_ips = ["10.70.0.1/32", "fd70::1/128"]\n' \
  "$PUB_A" >>"$RF_TMP/b.toml"

start_rovy "$RF_NS_B" b "$RF_TMP/b.toml" "$RF_TMP/b.sock" || fail "node B did not start"
start_rovy "$RF_NS_A" a "$CONF_A" "$RF_TMP/a.sock" || fail "node A did not start"
PID_A="$RF_LAST_PID"

# added_rules FAMILY BEFORE: A's rules of FAMILY (-4, -6) now that BEFORE did not have, sorted.
added_rules() {
  comm -13 <(sort <<<"$2") <(run_in "$RF_NS_A" ip "$1" rule show | sort)
}
# lost_rules FAMILY BEFORE: the rules of BEFORE that A no longer has.
lost_rules() {
  comm -23 <(sort <<<"$2") <(run_in "$RF_NS_A" ip "$1" rule show | sort)
}
# rules_added MARK: true when each family has exactly the two rules for MARK (hex) added.
rules_added() {
  local table=$(($1)) expected
  expected="$(printf '32764:\tfrom all lookup main suppress_prefixlength 0 proto static\n32765:\tnot from all fwmark %s lookup %s proto static' "$1" "$table")"
  [ "$(added_rules -4 "$RULES_V4")" = "$expected" ] &&
    [ "$(added_rules -6 "$RULES_V6")" = "$expected" ] &&
    [ -z "$(lost_rules -4 "$RULES_V4")$(lost_rules -6 "$RULES_V6")" ]
}
# table_routes TABLE: the IPv4 and IPv6 routes of TABLE in A's namespace.
table_routes() {
  run_in "$RF_NS_A" ip -4 route show table "$1"
  run_in "$RF_NS_A" ip -6 route show table "$1"
}
# table_is_full_tunnel TABLE: TABLE holds exactly a default route into A's TUN per family.
table_is_full_tunnel() {
  [ "$(run_in "$RF_NS_A" ip -4 route show table "$1")" = "default dev $IF_A proto static scope link " ] &&
    run_in "$RF_NS_A" ip -6 route show table "$1" | grep -qx "default dev $IF_A proto static metric 1024 pref medium"
}
# nothing_left TABLE: A has the rules it had before it started, and TABLE is empty.
nothing_left() {
  [ -z "$(added_rules -4 "$RULES_V4")$(added_rules -6 "$RULES_V6")" ] &&
    [ -z "$(lost_rules -4 "$RULES_V4")$(lost_rules -6 "$RULES_V6")" ] &&
    [ -z "$(table_routes "$1")" ]
}
# main_untouched: A's main default routes are the ones it had, and no default is A's.
main_untouched() {
  [ "$(run_in "$RF_NS_A" ip -4 route show default)" = "$DEFAULT_V4" ] &&
    [ "$(run_in "$RF_NS_A" ip -6 route show default)" = "$DEFAULT_V6" ]
}
tun_tx() { run_in "$RF_NS_A" cat "/sys/class/net/$IF_A/statistics/tx_packets"; }
wg_a() { run_in "$RF_NS_A" timeout 10 wg "$@"; }
ping_a() { run_in "$RF_NS_A" ping -c 1 -W 1 "$@" >/dev/null 2>&1; }
route_get() { run_in "$RF_NS_A" ip route get "$@"; }

echo "== the rules, the table and the mark"
rules_added 0xca6c || fail "A's added rules are not exactly the two per family for 51820:
$(added_rules -4 "$RULES_V4")
$(added_rules -6 "$RULES_V6")
lost: $(lost_rules -4 "$RULES_V4") $(lost_rules -6 "$RULES_V6")"
table_is_full_tunnel 51820 || fail "table 51820 is not a default route into $IF_A per family: $(table_routes 51820)"
main_untouched || fail "A changed its main default routes: $(run_in "$RF_NS_A" ip route show default)"
[ "$(wg_a show "$IF_A" fwmark)" = 0xca6c ] || fail "wg show fwmark is not 0xca6c: $(wg_a show "$IF_A" fwmark)"
# sockets_marked MARK: every UDP socket of A's port carries MARK (hex), and there are some.
sockets_marked() {
  local sockets
  sockets="$(run_in "$RF_NS_A" ss -uaneH "sport = :$PORT_A" 2>/dev/null)"
  [ -n "$sockets" ] && ! grep -qv "fwmark:$1 " <<<"$sockets"
}
sockets_marked 0xca6c || fail "not every socket of A carries fwmark 0xca6c: $(run_in "$RF_NS_A" ss -uaneH "sport = :$PORT_A" 2>/dev/null)"
pass "two rules per family (32764 suppress_prefixlength 0, 32765 not fwmark 0xca6c), table 51820 with a default route into $IF_A, main untouched, sockets marked"

echo "== traffic into the tunnel, the tunnel's own packets around it"
wait_for 15 ping_a 10.70.0.2 || fail "A cannot ping B's tunnel address"
before="$(tun_tx)"
wait_for 10 ping_a "$FAR4" || fail "A cannot ping $FAR4 (only B has it)"
wait_for 10 ping_a -I fd70::1 "$FAR6" || fail "A cannot ping $FAR6 (only B has it)"
after="$(tun_tx)"
[ "$((after - before))" -ge 2 ] || fail "the pings to the far addresses did not go into $IF_A (tx $before -> $after)"
route_get "$FAR4" | grep -q "dev $IF_A table 51820" || fail "$FAR4 is not routed by table 51820: $(route_get "$FAR4")"
route_get "$FAR6" | grep -q "dev $IF_A table 51820" || fail "$FAR6 is not routed by table 51820: $(route_get "$FAR6")"
route_get "$ENDPOINT_B" | grep -q "dev $IF_A table 51820" || fail "unmarked, B's endpoint should go into the tunnel: $(route_get "$ENDPOINT_B")"
route_get "$ENDPOINT_B" mark 51820 | grep -q "via $RF_UNDERLAY_B4 dev $RF_VETH_A" ||
  fail "marked, B's endpoint does not take the main default route: $(route_get "$ENDPOINT_B" mark 51820)"
route_get "$RF_UNDERLAY_B4" | grep -q "dev $RF_VETH_A" || fail "the veth's subnet left the main table: $(route_get "$RF_UNDERLAY_B4")"
endpoint="$(wg_a show "$IF_A" endpoints | awk '{print $2}')"
[ "$endpoint" = "$ENDPOINT_B:$PORT_B" ] || fail "A does not hear B from its endpoint: $endpoint"
pass "pings to B's tunnel address, $FAR4 and $FAR6 went into $IF_A by table 51820; the marked handshakes took the main default route to $ENDPOINT_B:$PORT_B"

echo "== the mark stays while the rules rest on it; the routes follow the allowed IPs"
wg_a set "$IF_A" fwmark 1234 2>/dev/null && fail "wg set changed the mark the rules rest on"
grep -qF "keeps that mark" "$RF_TMP/a.log" || fail "A does not say why it keeps its mark"
wg_a set "$IF_A" fwmark 51820 || fail "wg set of the mark A has was refused"
wg_a set "$IF_A" peer "$PUB_B" allowed-ips 10.70.0.2/32 || fail "wg set allowed-ips failed"
wait_for 5 nothing_left 51820 || fail "taking 0.0.0.0/0 and ::/0 from B left rules or routes: $(added_rules -4 "$RULES_V4") $(table_routes 51820)"
before="$(tun_tx)"
ping_a "$FAR4" || fail "$FAR4 does not answer over the veth without the full tunnel"
[ "$(tun_tx)" = "$before" ] || fail "the ping to $FAR4 still went into $IF_A"
wg_a set "$IF_A" peer "$PUB_B" allowed-ips 0.0.0.0/0,::/0 || fail "wg set allowed-ips failed"
wait_for 5 rules_added 0xca6c || fail "giving B 0.0.0.0/0 and ::/0 again did not restore the rules"
table_is_full_tunnel 51820 || fail "giving B 0.0.0.0/0 and ::/0 again did not restore table 51820: $(table_routes 51820)"
wait_for 10 ping_a "$FAR4" || fail "A cannot ping $FAR4 through the tunnel again"
pass "wg set kept the mark; the rules and the table route left with B's 0.0.0.0/0 and ::/0 and came back with them"

echo "== SIGTERM takes exactly what A added"
stop_pid "$PID_A" || fail "A did not exit cleanly on SIGTERM"
nothing_left 51820 || fail "A left rules or routes behind: $(added_rules -4 "$RULES_V4") $(added_rules -6 "$RULES_V6") $(table_routes 51820)"
[ -z "$(lost_rules -4 "$RULES_V4")" ] || fail "A took rules it had not added"
main_untouched || fail "A's main default routes changed: $(run_in "$RF_NS_A" ip route show default)"
pass "after SIGTERM the rules are A's namespace's own again and table 51820 is empty"

echo "== a configured fwmark"
a_config $'fwmark = 0x1234\n'
start_rovy "$RF_NS_A" a2 "$CONF_A" "$RF_TMP/a.sock" || fail "node A did not start with fwmark = 0x1234"
PID_A="$RF_LAST_PID"
rules_added 0x1234 || fail "the rules are not 4660's: $(added_rules -4 "$RULES_V4")"
sockets_marked 0x1234 || fail "A's sockets were not bound with fwmark 0x1234"
table_is_full_tunnel 4660 || fail "table 4660 is not a default route into $IF_A: $(table_routes 4660)"
[ -z "$(table_routes 51820)" ] || fail "table 51820 is in use with fwmark = 0x1234"
wait_for 15 ping_a "$FAR4" || fail "A cannot ping $FAR4 with fwmark = 0x1234"
stop_pid "$PID_A" || fail "A did not exit cleanly on SIGTERM"
nothing_left 4660 || fail "A left rules or routes of 4660 behind"
pass "fwmark = 0x1234: rules and table 4660, the far address answers, all gone at SIGTERM"
echo "PASS default route: 0.0.0.0/0 and ::/0 through table 51820 behind two rules, the node's marked packets around them, all removed on change and at SIGTERM"
