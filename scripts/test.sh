#!/usr/bin/env bash
# The whole test suite: formatting, lints, unit and integration tests (including the interop
# tests against boringtun), and a build of the benchmarks. Run as root on a fresh machine:
#   sudo scripts/test.sh
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
