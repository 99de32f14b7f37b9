#!/usr/bin/env bash
# Installs what the test suite needs beyond a Rust toolchain: wireguard-tools (`wg`, to check
# that `rovy-fast pubkey` matches `wg pubkey`), iproute2, valgrind, traceroute, then the peers and tools of the
# end-to-end tests (install-peers.sh). Idempotent; needs root for apt.
set -euo pipefail

need=()
command -v wg >/dev/null 2>&1 || need+=(wireguard-tools)
command -v ip >/dev/null 2>&1 || need+=(iproute2)
command -v valgrind >/dev/null 2>&1 || need+=(valgrind)
command -v traceroute6 >/dev/null 2>&1 || need+=(traceroute)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "install-test-deps: missing ${need[*]}; run as root (sudo) to install them" >&2
    exit 1
  fi
  echo "install-test-deps: installing ${need[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
rustup component list --installed 2>/dev/null | grep -q '^clippy' || rustup component add clippy rustfmt
"$(dirname "$0")/install-peers.sh"
