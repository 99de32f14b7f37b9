#!/usr/bin/env bash
# Checks the README's first command: `scripts/demo.sh` must exit 0 showing ping replies over
# IPv4 and over the peer's fc00 address, and leave no namespace, veth or API socket behind —
# also when it is interrupted (Ctrl-C: SIGINT to its whole process group) while its nodes run.
# Then two nodes with one interface name in one namespace: the second is refused with the flag
# that resolves it. Needs root. Prints `PASS demo …` lines, or `FAIL demo: …` and exits 1.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=lib/node.sh
source scripts/lib/node.sh

log=$(mktemp)
demo_pid=""
ns="rf-demo-c-$$"
work=$(mktemp -d)
node_pid=""
cleanup() {
  if [ -n "$node_pid" ]; then kill -INT "$node_pid" 2>/dev/null || true; wait "$node_pid" 2>/dev/null || true; fi
  ip netns del "$ns" 2>/dev/null || true
  rm -rf "$work"
  if [ -n "$demo_pid" ] && rf_alive "$demo_pid"; then
    kill -INT -- "-$demo_pid" 2>/dev/null || true
    sleep 5
    kill -KILL -- "-$demo_pid" 2>/dev/null || true
  fi
  rm -f "$log"
}
trap cleanup EXIT

fail() {
  echo "FAIL demo: $*"
  sed 's/^/  | /' "$log"
  exit 1
}

# leftovers: prints whatever a demo run left behind.
leftovers() {
  ip netns list | awk '/^rf-demo-/ {print "namespace " $1}'
  ip -o link show | awk -F': ' '$2 ~ /^rf-d[0-9]+[ab]/ {print "interface " $2}'
  if [ -d /run/rovy/netns ]; then
    find /run/rovy/netns -maxdepth 1 -name 'rf-demo-*' | sed 's/^/socket dir /'
  fi
}

# replies_after HEADER: the ping summary line printed after the demo's HEADER line.
replies_after() {
  awk -v header="$1" 'index($0, header) == 1 {found = 1; next}
    found && / packets transmitted/ {print; exit}' "$log"
}

before=$(leftovers)
[ -z "$before" ] || { echo "FAIL demo: leftovers before the run: $before"; exit 1; }

# 1. A whole run.
if ! timeout 300 scripts/demo.sh >"$log" 2>&1; then
  fail "scripts/demo.sh exited non-zero"
fi
v4=$(replies_after "== ping 10.20.0.2")
fc=$(replies_after "== ping fc")
[[ "$v4" == "3 packets transmitted, 3 received"* ]] || fail "no IPv4 replies (got: ${v4:-nothing})"
[[ "$fc" == "3 packets transmitted, 3 received"* ]] || fail "no fc00 replies (got: ${fc:-nothing})"
grep -q '^  node a: rovy-fast: ready: rovy0 up' "$log" || fail "node a printed no ready line"
grep -q '^  node b: rovy-fast: ready: rovy0 up' "$log" || fail "node b printed no ready line"
grep -q 'handshake' "$log" || fail "rovy-fast status inside the namespace showed no peer handshake"
left=$(leftovers)
[ -z "$left" ] || fail "left behind: $left"
echo "PASS demo run: replies over IPv4 ($v4) and fc00 ($fc), nothing left behind"

# 2. Interrupted while both nodes run, as Ctrl-C does it.
setsid scripts/demo.sh >"$log" 2>&1 &
demo_pid=$!
for _ in $(seq 600); do
  grep -q '^== ping 10.20.0.2' "$log" && break
  rf_alive "$demo_pid" || fail "demo ended before its nodes ran"
  sleep 0.1
done
grep -q '^== ping 10.20.0.2' "$log" || fail "demo's nodes did not start within 60 s"
kill -INT -- "-$demo_pid"
status=0
for _ in $(seq 150); do rf_alive "$demo_pid" || break; sleep 0.1; done
rf_alive "$demo_pid" && fail "demo still running 15 s after SIGINT"
wait "$demo_pid" || status=$?
demo_pid=""
[ "$status" -ne 0 ] || fail "an interrupted demo exited 0"
left=$(leftovers)
[ -z "$left" ] || fail "left behind after SIGINT: $left"
echo "PASS demo interrupted: exit $status, nothing left behind"

# 3. Two nodes that really do share the default socket path.
bin=$PWD/target/release/rovy-fast
ip netns add "$ns"
ip -n "$ns" link set lo up
(umask 077
  for n in 1 2; do
    "$bin" genkey >"$work/$n.key"
    printf '[interface]\nname = "rovy0"\nprivate_key_file = "%s"\nlisten_port = %s\n' \
      "$work/$n.key" "$((1312 + n))" >"$work/$n.toml"
  done)
ip netns exec "$ns" "$bin" "$work/1.toml" 2>"$work/1.log" &
node_pid=$!
rf_wait_ready "$work/1.log" "$node_pid" 20 || { cat "$work/1.log" >"$log"; fail "first node did not start"; }
ip netns exec "$ns" "$bin" status >/dev/null || fail "status in $ns did not reach the node with no flag"
if timeout 20 ip netns exec "$ns" "$bin" "$work/2.toml" 2>"$work/2.log"; then
  fail "a second node on the same interface name and namespace started"
fi
cat "$work/2.log" >"$log"
grep -q "cannot open the API socket /run/rovy/netns/$ns/rovy0.sock: another node is running on .*--socket PATH" "$work/2.log" ||
  fail "the second node's error does not name the socket and --socket"
echo "PASS demo socket collision: $(cat "$work/2.log")"
