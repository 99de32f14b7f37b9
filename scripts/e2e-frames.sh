#!/usr/bin/env bash
# Hostile rovy frames from a real peer process. A chain of 3 nodes (each in its own namespace,
# peered only with its neighbours) gets two more peers on its middle node, both the small
# independent WireGuard initiator of scripts/lib/wgpeer.py over real UDP from a namespace of
# their own: one configured as kind = "wireguard", one as kind = "rovy" (its key derives an
# fc00 address). Each completes a handshake with node 2 and then sends data messages whose
# plaintexts are chosen frames: rovy frames from the WireGuard peer; from the rovy peer routed
# frames with a label longer than 14, a position past the length or at its end, a U-turn, a
# next slot with no link (a ROUTE_ERROR must come back, and none for a ROUTE_ERROR), unknown
# frame kinds and frames one byte short of their layout. After each case node 2's drop counters
# must have grown by exactly that many drops of exactly the expected reason and no other.
# A PING to node 2 must be answered with a PONG carrying node 2's key and its XEdDSA signature
# (verified by wgpeer.py's own implementation), a PING may turn back,
# and a frame routed on to node 3 reaches it (which drops its unknown upper index). Afterwards
# every node still runs, the routes are whole and node 1 still pings node 3 through node 2.
# Needs root; cleans up on exit.
#   sudo scripts/e2e-frames.sh [--backend uring|epoll] [--no-build]
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=lib/netns.sh
source scripts/lib/netns.sh
# shellcheck source=lib/overlay_net.sh
source scripts/lib/overlay_net.sh

backend=uring; build=1
while [ $# -gt 0 ]; do
  case "$1" in
    --backend) backend="$2"; shift 2 ;;
    --no-build) build=0; shift ;;
    *) echo "usage: $0 [--backend uring|epoll] [--no-build]" >&2; exit 2 ;;
  esac
done
[ "$(id -u)" -eq 0 ] || { echo "$0: needs root (network namespaces, TUN devices)" >&2; exit 1; }
python3 -c 'import cryptography' 2>/dev/null || python3 -m pip install --quiet cryptography
[ "$build" = 0 ] || cargo build --quiet --release --locked -p rovy-control
OV_BIN=${ROVY_FAST_BIN:-$PWD/target/release/rovy-fast}
OV_DIR=$(mktemp -d)
dir=$OV_DIR bin=$OV_BIN
wgpeer=(python3 scripts/lib/wgpeer.py)
label="frames[$backend]"
cleanup() {
  stop_all_started
  ov_cleanup
  rm -rf "$dir"
}
trap cleanup EXIT
# An interrupt ends the script (and so runs the cleanup once) rather than resuming it.
trap 'exit 130' INT
trap 'exit 143' TERM
fail() {
  echo "FAIL $label: $*"
  for f in "$dir"/*.log; do [ -e "$f" ] && sed "s|^|  $(basename "$f" .log): |" "$f" | tail -5; done
  exit 1
}
node_args() { echo "--backend $backend --cores 1"; }

ov_chain 3
OV_ADDRESSES[2]='"10.230.0.1/24"'
ov_setup
ov_attach hp 2
peer_ns=$OV_ATTACH_NS node2_ip=$OV_ATTACH_NODE_IP
(umask 077; "${wgpeer[@]}" genkey >"$dir/wg.key"; "${wgpeer[@]}" genkey --overlay >"$dir/rp.key")
wg_pub=$("${wgpeer[@]}" pubkey <"$dir/wg.key")
rp_pub=$("${wgpeer[@]}" pubkey <"$dir/rp.key")
# The peer derives its address on its own; the node's derivation must agree.
rp_addr=$("${wgpeer[@]}" address <"$dir/rp.key")
[ "$rp_addr" = "$("$bin" id "$dir/rp.key" | awk '/^address:/ {print $2}')" ] ||
  fail "the peer derives $rp_addr for its key, rovy-fast id something else"
ov_add_peer 2 "$wg_pub" wireguard '"10.230.0.2/32"'
ov_add_peer 2 "$rp_pub" rovy

ov_start node_args || fail "a node did not start"
ov_wait_converged 40 || fail "routes did not converge within 40 s"
node2_pub=$("$bin" pubkey <"$dir/2.key")
node3_pub=$("$bin" pubkey <"$dir/3.key")

# serve NAME KEY [ARGS…]: a wgpeer for node 2 in the peers' namespace, handshake done.
serve() {
  local name="$1" key="$2"
  shift 2
  start_bg "$peer_ns" "$dir/$name.log" timeout 120 "${wgpeer[@]}" serve --key "$key" \
    --peer "$node2_pub" --endpoint "$node2_ip:1312" --control "$dir/$name.ctl" "$@"
  wait_for 15 grep -q '^ready' "$dir/$name.log" || fail "$name: no handshake with node 2: $(tail -1 "$dir/$name.log")"
}
serve wg "$dir/wg.key"
serve rp "$dir/rp.key" --hello
peer() { local name="$1" op="$2"; shift 2; "${wgpeer[@]}" "$op" --control "$dir/$name.ctl" "$@"; }

status() { "$bin" status --json --socket "$dir/$1.sock"; }

# drops_changed I BEFORE REASON N: node I's drops now differ from the status JSON BEFORE by
# exactly N of REASON and nothing else; prints the change. Exit 2 while REASON is still short.
# no_route is left out: it counts packets the node's own kernel writes to the TUN for no peer
# (router solicitations, MLD reports after the interface comes up), never a received frame.
drops_changed() {
  python3 - "$2" "$(status "$1")" "$3" "$4" <<'PY'
import json, sys
before, after = json.loads(sys.argv[1])["drops"], json.loads(sys.argv[2])["drops"]
reason, n = sys.argv[3], int(sys.argv[4])
delta = {k: after.get(k, 0) - before.get(k, 0) for k in set(before) | set(after)}
delta = {k: v for k, v in delta.items() if v and k != "no_route"}
print(" ".join(f"{k}+{v}" for k, v in sorted(delta.items())) or "no drops")
if delta.get(reason, 0) < n:
    sys.exit(2)
sys.exit(0 if delta == ({reason: n} if n else {}) else 1)
PY
}

# case NAME I REASON N PEER PLAINTEXT… [-- SEND ARGS]: PEER sends each PLAINTEXT once; node I
# must count exactly N drops, all of REASON (N = 0: none at all).
case_drops() {
  local name="$1" node="$2" reason="$3" n="$4" who="$5" before change rc=2
  shift 5
  before=$(status "$node")
  peer "$who" send "$@" || fail "$name: $who could not send"
  for _ in $(seq 30); do
    rc=0; change=$(drops_changed "$node" "$before" "$reason" "$n") || rc=$?
    [ "$rc" = 2 ] || break
    sleep 0.1
  done
  [ "$rc" = 0 ] && sleep 0.3 && { rc=0; change=$(drops_changed "$node" "$before" "$reason" "$n") || rc=$?; }
  [ "$rc" = 0 ] || fail "$name: node $node counted '$change', expected $reason+$n"
  echo "  $name: node $node counted $change"
}

# The WireGuard-kind peer: its link carries IP (node 2 answers an echo request), and any rovy
# frame from it is refused as such, whatever its kind byte.
peer wg send icmp4:10.230.0.2:10.230.0.1 || fail "wg: send failed"
reply=$(peer wg expect --kind ipv4) || fail "the WireGuard-kind peer got no echo reply from node 2"
python3 -c 'import json,sys; f=json.loads(sys.argv[1]); sys.exit(f["hex"][40:42] != "00")' "$reply" ||
  fail "the WireGuard-kind peer's reply is not an echo reply: $reply"
echo "  wireguard-kind peer: echo request answered over its link"
case_drops "frames from the wireguard-kind peer" 2 frame_from_wireguard_peer 5 wg \
  routed-to:1 hello ping-here unknown:0x00 unknown:0x3f

# The rovy-kind peer: its link comes up (HELLOs keep it up) and gets a slot on node 2.
slot_of() { status 2 | python3 -c 'import json,sys; print(next((l["slot"] for l in json.load(sys.stdin)["links"] if l["public_key"] == sys.argv[1]), ""))' "$1"; }
g=""
for _ in $(seq 50); do g=$(slot_of "$rp_pub"); [ -n "$g" ] && break; sleep 0.2; done
[ -n "$g" ] || fail "the rovy-kind peer's link never came up on node 2"
to3=$(slot_of "$node3_pub")
echo "  rovy-kind peer: link up on node 2's slot $g (node 3 is on slot $to3)"

# What a well-formed frame does: a PING to node 2 comes back as its PONG, a PING may turn back
# on the slot it came in on, a ROUTED frame goes on to node 3 (which holds no upper session
# with that index). None of these is a drop at node 2.
peer rp flush
case_drops "PING to node 2" 2 none 0 rp ping-here
pong=$(peer rp expect --kind 0x12) || fail "no PONG for a PING to node 2"
python3 -c 'import json,sys; sys.exit(json.loads(sys.argv[1]).get("public_key") != sys.argv[2])' "$pong" "$node2_pub" ||
  fail "the PONG does not carry node 2's key: $pong"
# Its signature, checked by wgpeer's own XEdDSA verification (written from the specification).
python3 -c 'import json,sys; sys.exit(json.loads(sys.argv[1]).get("signature_valid") is not True)' "$pong" ||
  fail "the PONG's signature does not verify with node 2's key: $pong"
echo "  PONG from node 2 carries its key and a valid XEdDSA signature over the id"
case_drops "PING turned back" 2 none 0 rp "ping-uturn:$g"
peer rp expect --kind 0x11 >/dev/null || fail "a PING sent back on its own slot did not come back"
case_drops "ROUTED frame through node 2 to node 3 (node 2)" 2 none 0 rp "routed-to:$to3"
case_drops "ROUTED frame through node 2 to node 3 (node 3)" 3 unknown_index 1 rp "routed-to:$to3"

# Labels that cannot be followed.
case_drops "U-turn" 2 u_turn 3 rp --count 3 "routed-to:$g"
case_drops "label length 15" 2 bad_label 1 rp len15
case_drops "position past the length" 2 bad_label 1 rp pos-past-len
case_drops "position at the end" 2 bad_label 1 rp at-end

# A next slot with no link: a ROUTE_ERROR comes back along the way back, quoting the frame.
peer rp flush
case_drops "next slot without a link" 2 dead_slot 1 rp routed-to:200
error=$(peer rp expect --kind 0x13) || fail "no ROUTE_ERROR came back for a dead next slot"
python3 - "$error" "$g" <<'PY' || fail "wrong ROUTE_ERROR: $error"
import json, sys
f, g = json.loads(sys.argv[1]), int(sys.argv[2])
quote = bytes([0x10, 0x12, g, 200]) + bytes(12)
sys.exit(not (f["pos"] == 0 and f["label"] == [g] and f["code"] == 1 and f["failed_pos"] == 1 and f["quote"] == quote.hex()))
PY
echo "  ROUTE_ERROR back along [$g], failed position 1, quoting the frame"
case_drops "next slot 0" 2 dead_slot 1 rp routed-to:0
peer rp expect --kind 0x13 >/dev/null || fail "no ROUTE_ERROR came back for next slot 0"
# An error about an error is never sent.
case_drops "ROUTE_ERROR to a slot without a link" 2 dead_slot 1 rp route-error-to:200
sleep 0.5
[ "$(peer rp count --kind 0x13)" = 0 ] || fail "a ROUTE_ERROR was answered with another"

# Origins that cannot be forged: the rovy-kind peer announces node 3's key one hop away at a
# seqno 2^30 past node 3's own, first with a proof nobody signed, then with none. Node 2
# drops each entry under its reason (and asks the peer for the missing proof); its route to
# node 3 does not change.
route_to3() {
  "$bin" route list --json --socket "$dir/2.sock" | python3 -c '
import json, sys
routes = json.load(sys.stdin)["routes"]
print(next(("%s metric %s" % (r["label"], r["metric"]) for r in routes if r["public_key"] == sys.argv[1]), "none"))' "$node3_pub"
}
before_route=$(route_to3)
forged_update() {
  python3 - "$node3_pub" "$1" <<'PY'
import base64, os, struct, sys, time
key = base64.b64decode(sys.argv[1])
seqno = (int(time.time()) + (1 << 30)) & 0xFFFFFFFF
entry = key + struct.pack("<IHB", seqno, 0, 1) + bytes([7])
if sys.argv[2] == "forged":
    entry = key + struct.pack("<IHB", seqno, 0, 0x81) + bytes([7]) + struct.pack("<I", seqno) + os.urandom(64)
print((bytes([0x21, 1]) + entry).hex())
PY
}
peer rp flush
case_drops "UPDATE for node 3's key with a forged proof" 2 origin_forged 1 rp "$(forged_update forged)"
case_drops "UPDATE for node 3's key with a newer seqno and no proof" 2 origin_unproven 1 rp "$(forged_update none)"
peer rp expect --kind 0x23 >/dev/null || fail "node 2 did not ask for the missing proof (ROUTE_REQ)"
[ "$(route_to3)" = "$before_route" ] || fail "node 2's route to node 3 changed: $before_route -> $(route_to3)"
echo "  node 2's route to node 3 unchanged ($before_route); the missing proof asked for"

# Kind bytes below 0x40 that name no frame, and frames one byte short of their layout.
case_drops "unknown frame kinds" 2 unknown_frame 5 rp unknown:0x00 unknown:0x01 unknown:0x14 unknown:0x25 unknown:0x3f
case_drops "truncated label-routed frames" 2 frame_truncated 4 rp \
  truncated:routed truncated:ping truncated:pong truncated:route-error
case_drops "truncated HELLO" 2 frame_truncated 1 rp truncated:hello

# The node lived through it all, and the overlay still carries traffic through it.
for i in 1 2 3; do rf_alive "${OV_PIDS[$((i - 1))]}" || fail "node $i died"; done
ov_wait_converged 10 || fail "the routes are no longer whole"
[ -n "$(slot_of "$rp_pub")" ] || fail "the rovy-kind peer's link went down"
out=$(ip netns exec "${OV_NS[0]}" ping -6 -c 3 -i 0.2 -W 5 "$(ov_addr 3)" 2>&1) ||
  fail "node 1 gets no ping replies from node 3 after the hostile frames: $out"
echo "  ping node 1 -> node 3 through node 2: $(grep -E 'packets transmitted' <<<"$out")"
echo "PASS $label"
