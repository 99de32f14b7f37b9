#!/usr/bin/env bash
# Builds rovy-fast and shows it working: two nodes in network namespaces, keys generated on the
# spot, each with a sample config and the default interface name `rovy0`, and traffic crossing
# the tunnel over IPv4 and over the fc00::/8 overlay address derived from the peer's key; then
# `rovy-fast status` run inside node a's namespace. Needs root (TUN devices, namespaces):
#   sudo scripts/demo.sh
# Installs what it runs (iproute2, ping, iperf3) with apt-get when missing. Everything it
# creates (namespaces rf-demo-a/b-PID with their veth, the nodes' API sockets, a temp dir) is
# removed on exit, also when interrupted. Exits 0 only if both paths carried replies.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=lib/apt.sh
source scripts/lib/apt.sh
# shellcheck source=lib/node.sh
source scripts/lib/node.sh

if [ "$(id -u)" -ne 0 ]; then
  echo "demo: run as root (sudo scripts/demo.sh): it creates TUN devices and network namespaces" >&2
  exit 1
fi
rf_ensure_commands ip=iproute2 ping=iputils-ping iperf3=iperf3

echo "== building rovy-fast (release)"
cargo build --release --locked -p rovy-control
bin=$PWD/target/release/rovy-fast

ns_a="rf-demo-a-$$"; ns_b="rf-demo-b-$$"
dir=$(mktemp -d)
pids=()
cleanup() {
  trap - EXIT INT TERM
  for pid in "${pids[@]}"; do kill -INT "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do
    for _ in $(seq 30); do rf_alive "$pid" || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  ip netns del "$ns_a" 2>/dev/null || true
  ip netns del "$ns_b" 2>/dev/null || true
  rm -rf "$dir"
}
trap cleanup EXIT
trap 'echo "demo: interrupted, cleaning up" >&2; exit 130' INT
trap 'exit 143' TERM

echo "== two namespaces joined by a veth: $ns_a (10.201.0.1) <-> $ns_b (10.201.0.2)"
ip netns add "$ns_a"; ip netns add "$ns_b"
ip link add "rf-d$$a" type veth peer name "rf-d$$b"
ip link set "rf-d$$a" netns "$ns_a"; ip link set "rf-d$$b" netns "$ns_b"
ip -n "$ns_a" addr add 10.201.0.1/24 dev "rf-d$$a"
ip -n "$ns_b" addr add 10.201.0.2/24 dev "rf-d$$b"
for ns in "$ns_a" "$ns_b"; do ip -n "$ns" link set lo up; done
ip -n "$ns_a" link set "rf-d$$a" up; ip -n "$ns_b" link set "rf-d$$b" up

echo "== keys (rovy-fast genkey; the fc00 address is derived from the public key)"
(umask 077; "$bin" genkey > "$dir/a.key"; "$bin" genkey > "$dir/b.key")
for n in a b; do echo "node $n:"; "$bin" id "$dir/$n.key" | sed 's/^/  /'; done
pub_a=$("$bin" pubkey < "$dir/a.key"); pub_b=$("$bin" pubkey < "$dir/b.key")
addr_b=$("$bin" id "$dir/b.key" | awk '/^address:/ {print $2}')

write_config() { # name key own-inner peer-pub peer-underlay peer-inner
  (umask 077; cat > "$dir/$1.toml" <<CONF
[interface]
name = "rovy0"
private_key_file = "$dir/$2"
listen_port = 1312
addresses = ["$3/24"]
mtu = 1420

[[peer]]
public_key = "$4"
endpoint = "$5:1312"
allowed_ips = ["$6/32"]
CONF
  )
}
write_config a a.key 10.20.0.1 "$pub_b" 10.201.0.2 10.20.0.2
write_config b b.key 10.20.0.2 "$pub_a" 10.201.0.1 10.20.0.1
echo "== config of node a"
sed 's/^/  /' "$dir/a.toml"

echo "== starting both nodes (interface rovy0 in each namespace, default API socket)"
for n in a b; do
  ns_var="ns_$n"
  ip netns exec "${!ns_var}" "$bin" "$dir/$n.toml" 2> "$dir/$n.log" &
  pids+=("$!")
done
for i in 0 1; do
  n=$([ "$i" = 0 ] && echo a || echo b)
  if ! rf_wait_ready "$dir/$n.log" "${pids[$i]}" 20; then
    sed 's/^/  node '"$n"': /' "$dir/$n.log" >&2
    echo "demo: node $n did not start" >&2
    exit 1
  fi
  sed 's/^/  node '"$n"': /' "$dir/$n.log"
done

echo "== ping 10.20.0.2 through the tunnel (IPv4 inside WireGuard messages)"
ip netns exec "$ns_a" ping -c 3 -i 0.2 -W 5 10.20.0.2
echo "== ping $addr_b: node b's fc00 address, routed by its key alone"
ip netns exec "$ns_a" ping -c 3 -i 0.2 -W 5 "$addr_b"
echo "== 5 s of TCP through the tunnel (iperf3)"
ip netns exec "$ns_b" timeout 20 iperf3 -s -1 -B 10.20.0.2 >/dev/null 2>&1 &
pids+=("$!")
for _ in $(seq 50); do
  ip netns exec "$ns_b" ss -Hltn 'sport = :5201' | grep -q . && break
  sleep 0.1
done
ip netns exec "$ns_a" timeout 20 iperf3 -c 10.20.0.2 -t 5 | tail -4
echo "== rovy-fast status, run inside node a's namespace (finds its node with no flag)"
ip netns exec "$ns_a" "$bin" status
echo "== demo done: replies over IPv4 and fc00; stopping both nodes"
