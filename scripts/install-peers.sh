#!/usr/bin/env bash
# Installs the peers and tools the end-to-end tests and the throughput benchmark need:
# iperf3, iproute2, iputils-ping, wireguard-tools (`wg`), wireguard-go and python3 from Debian,
# and boringtun-cli from crates.io into <repo>/target/peers so it stays inside the build tree.
# Idempotent: anything already present is skipped. Installing needs root (apt-get); when
# everything is present it does nothing and needs nothing.
set -euo pipefail

repo="$(cd "$(dirname "$0")/.." && pwd)"
peers_root="$repo/target/peers"

# shellcheck source=lib/apt.sh
source "$repo/scripts/lib/apt.sh"
rf_ensure_commands iperf3=iperf3 ip=iproute2 ping=iputils-ping wg=wireguard-tools \
  wireguard-go=wireguard-go python3=python3 timeout=coreutils

if [ ! -x "$peers_root/bin/boringtun-cli" ]; then
  echo "install-peers: cargo install boringtun-cli into $peers_root (takes a few minutes)"
  cargo install boringtun-cli --locked --root "$peers_root"
fi
