#!/usr/bin/env bash
# The whole test suite: formatting, lints, unit and integration tests (including the in-process
# interop tests against boringtun), a build of the benchmarks, a smoke pass of every fuzz target
# (its committed corpus replayed, then a short run), and the end-to-end tests: two
# nodes in network namespaces over real TUN devices and UDP, against each other and against
# boringtun-cli and wireguard-go, on both worker backends; overlays of 3 to 8 nodes, with
# WireGuard peers on a forwarding node and hostile frames from a peer process; and
# scripts/demo.sh itself (whole and interrupted). Run as root on a fresh machine:
# boringtun-cli and wireguard-go, on both worker backends, scripts/demo.sh itself (whole and
# interrupted), and attacks and faults across real processes (scripts/e2e-attacks.sh). Run as
# root on a fresh machine:
#   sudo scripts/test.sh
# (installs iperf3, iproute2, wireguard-tools, wireguard-go with apt and boringtun-cli with
# cargo into target/peers, and cargo-fuzz into target/fuzz-tools, when they are missing).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-test-deps.sh

echo "== cargo fmt"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== cargo test"
cargo test --workspace --locked
echo "== benches build"
cargo bench --workspace --locked --no-run
echo "== fuzz smoke (every committed corpus input replayed, then 20 000 executions per target)"
scripts/fuzz.sh --smoke
echo "== instructions per packet (callgrind; fails on a regression over 10 %)"
scripts/callgrind-pipeline.sh --check
echo "== the demo (README's first command): replies over IPv4 and fc00, nothing left behind"
scripts/e2e-demo.sh
echo "== overlay: a chain of 5 and a mesh of 8 find their routes, on both backends"
scripts/e2e-overlay.sh --backend uring --topology chain
scripts/e2e-overlay.sh --backend epoll --topology chain --no-build
scripts/e2e-overlay.sh --backend uring --topology mesh --no-build
echo "== overlay and WireGuard at once: a forwarding node with boringtun-cli and wireguard-go peers"
scripts/e2e-overlay.sh --backend uring --topology chain --nodes 3 --interop --no-build
scripts/e2e-overlay.sh --backend epoll --topology chain --nodes 3 --interop --no-build
echo "== hostile rovy frames from a peer process of our own (wgpeer.py), on both backends"
scripts/e2e-frames.sh --backend uring --no-build
scripts/e2e-frames.sh --backend epoll --no-build
echo "== failover: a node killed and a link cut on the short of two paths, pings resume"
scripts/e2e-failover.sh --no-build
echo "== packaging: unprivileged node with CAP_NET_ADMIN only, systemd unit, sample config, man page"
scripts/e2e-packaging.sh --no-build
echo "== rovy-fast tune: an uplink whose GRO the test switches"
scripts/e2e-tune.sh --no-build
echo "== per-core spread (two peers, --cores 2)"
scripts/e2e-spread.sh
echo "== peers at run time: wg show/showconf/set/syncconf, SIGHUP reloads under a transfer, SIGTERM under load"
scripts/e2e-peers.sh --no-build
echo "== wg-quick habits: allowed IPs routed into the TUN, overlapping ones by longest prefix, routes = false"
scripts/e2e-routes.sh --no-build
echo "== full tunnel: 0.0.0.0/0 and ::/0 through a table of their own, the node's marked packets around it"
scripts/e2e-default-route.sh --no-build
echo "== end-to-end (network namespaces)"
scripts/e2e.sh --backend both
echo "== attacks and faults: handshake floods, loss and reordering, a rekey under traffic, preshared"
echo "   keys, an IPv6 underlay, spoofed sources, every packet size, 1 000 peers"
scripts/e2e-attacks.sh --no-build --soak-seconds 60
