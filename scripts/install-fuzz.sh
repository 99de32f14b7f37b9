#!/usr/bin/env bash
# Installs cargo-fuzz (the libFuzzer driver that scripts/fuzz.sh runs) from crates.io into
# <repo>/target/fuzz-tools so it stays inside the build tree, like install-peers.sh does for
# boringtun-cli. Idempotent: does nothing when the binary is already there. Prints its path.
set -euo pipefail

repo="$(cd "$(dirname "$0")/.." && pwd)"
tools_root="$repo/target/fuzz-tools"

if [ ! -x "$tools_root/bin/cargo-fuzz" ]; then
  echo "install-fuzz: cargo install cargo-fuzz into $tools_root (takes a few minutes)" >&2
  cargo install cargo-fuzz --locked --root "$tools_root" >&2
fi
echo "$tools_root/bin/cargo-fuzz"
