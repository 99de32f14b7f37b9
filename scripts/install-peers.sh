#!/usr/bin/env bash
# Installs the peers and tools the end-to-end tests and the throughput benchmark need:
# iperf3, iproute2, iputils-ping, wireguard-tools (`wg`), wireguard-go and python3 from Debian,
# and boringtun-cli from crates.io into <repo>/target/peers so it stays inside the build tree.
# Idempotent: anything already present is skipped. Installing needs root (apt-get); when
# everything is present it does nothing and needs nothing.
set -euo pipefail

repo="$(cd "$(dirname "$0")/.." && pwd)"
peers_root="$repo/target/peers"

# command -> Debian package providing it
declare -A package_of=(
  [iperf3]=iperf3
  [ip]=iproute2
  [ping]=iputils-ping
  [wg]=wireguard-tools
  [wireguard-go]=wireguard-go
  [python3]=python3
  [timeout]=coreutils
)
need=()
for cmd in "${!package_of[@]}"; do
  command -v "$cmd" >/dev/null 2>&1 || need+=("${package_of[$cmd]}")
done
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "install-peers: missing ${need[*]}; installing them needs root: sudo $0" >&2
    exit 1
  fi
  echo "install-peers: installing ${need[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

if [ ! -x "$peers_root/bin/boringtun-cli" ]; then
  echo "install-peers: cargo install boringtun-cli into $peers_root (takes a few minutes)"
  cargo install boringtun-cli --locked --root "$peers_root"
fi
