#!/usr/bin/env bash
# The whole test suite: formatting, lints, unit and integration tests (including the in-process
# interop tests against boringtun), a build of the benchmarks, a smoke pass of every fuzz target
# (its committed corpus replayed, then a short run), and the end-to-end tests: two
# nodes in network namespaces over real TUN devices and UDP, against each other and against
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
echo "== per-core spread (two peers, --cores 2)"
scripts/e2e-spread.sh
echo "== end-to-end (network namespaces)"
scripts/e2e.sh --backend both
echo "== attacks and faults: handshake floods, loss and reordering, a rekey under traffic, preshared"
echo "   keys, an IPv6 underlay, spoofed sources, every packet size, 1 000 peers"
scripts/e2e-attacks.sh --no-build
