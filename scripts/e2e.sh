#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# End-to-end tests of the rovy-fast daemon: two network namespaces joined by veth, one node in
# each, real traffic through the tunnel. Needs root; run scripts/install-peers.sh first.
#
#   sudo scripts/e2e.sh [--backend uring|epoll|both] [--quick] [--no-build]
#   sudo scripts/e2e.sh --self-check [--quick]
#
# Scenarios (each backend): basic (ping both ways over IPv4 and IPv6, 200 MB TCP transfer with
# matching SHA-256), interop with boringtun-cli and wireguard-go (each side initiating), roaming
# (B's underlay address changes mid-transfer), restart (B restarts, A is left alone) and hostile
# input (garbage, truncated, forged and replayed datagrams at A's port during a transfer), then
# basic once more with offloads off (ROVY_OFFLOADS=off), so the plain one-packet-per-call path
# stays covered.
# --self-check runs the same scenarios between boringtun-cli (A) and wireguard-go (B), to prove
# the harness itself. --quick uses smaller transfers. Prints `PASS name` / `FAIL name: reason`
# per scenario and ends with `N passed, M failed`; exits non-zero if anything failed.
set -euo pipefail

RF_SCRIPTS="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=lib/netns.sh
source "$RF_SCRIPTS/lib/netns.sh"
# shellcheck source=lib/peers.sh
source "$RF_SCRIPTS/lib/peers.sh"
# shellcheck source=lib/pair.sh
source "$RF_SCRIPTS/lib/pair.sh"
# shellcheck source=lib/scenarios.sh
source "$RF_SCRIPTS/lib/scenarios.sh"

usage() {
  awk 'NR > 2 && /^#/ { sub(/^# ?/, ""); print; next } NR > 2 { exit }' "$0"
  exit 2
}

backends=(uring epoll)
quick=0
self_check=0
build=1
while [ $# -gt 0 ]; do
  case "$1" in
    --backend)
      [ $# -ge 2 ] || usage
      case "$2" in
        uring | epoll) backends=("$2") ;;
        both) backends=(uring epoll) ;;
        *) usage ;;
      esac
      shift 2
      ;;
    --quick) quick=1; shift ;;
    --self-check) self_check=1; shift ;;
    --no-build) build=0; shift ;;
    -h | --help) usage ;;
    *) usage ;;
  esac
done

# Seconds one backend's (or the self-check's) scenarios may take before the rest are failed.
BUDGET=600

if [ "$self_check" = 0 ] && [ "$build" = 1 ]; then
  rf_log "building rovy-fast (cargo build --release -p rovy-control)"
  if ! (cd "$RF_REPO" && timeout 1800 cargo build --release --locked -p rovy-control); then
    echo "FAIL build: cargo build --release -p rovy-control failed"
    echo "0 passed, 1 failed"
    exit 1
  fi
fi
if [ "$self_check" = 0 ] && [ ! -x "$ROVY_FAST_BIN" ]; then
  echo "FAIL setup: rovy-fast not built at $ROVY_FAST_BIN"
  echo "0 passed, 1 failed"
  exit 1
fi

rf_netns_setup
pair_init

# Paced transfers (MB/s) last about 8 s: long enough to roam or attack in the middle.
if [ "$quick" = 1 ]; then
  main_mb=50 small_mb=10 HOSTILE_RATE=6 ROAM_RATE=1.25
else
  main_mb=200 small_mb=20 HOSTILE_RATE=25 ROAM_RATE=2.5
fi
make_data "$RF_TMP/data-main" "$main_mb"
make_data "$RF_TMP/data-small" "$small_mb"

# run_suite LABEL IMPL_A IMPL_B: every scenario with IMPL_A on side A and IMPL_B on side B; the
# interop scenarios put rovy on A against each stock implementation on B.
run_suite() {
  local label="$1" impl_a="$2" impl_b="$3"
  budget_start
  run_scenario "basic$label" scenario_basic "$impl_a" "$impl_b"
  run_scenario "first-packet$label" scenario_first_packet "$impl_a" "$impl_b"
  if [ "$impl_a" = rovy ]; then
    local peer first
    for peer in boringtun wireguard-go; do
      for first in A B; do
        local who=rovy
        [ "$first" = B ] && who="$peer"
        run_scenario "interop-$peer-$who-first$label" scenario_interop rovy "$peer" "$first"
      done
    done
  else
    run_scenario "interop-A-first$label" scenario_interop "$impl_a" "$impl_b" A
    run_scenario "interop-B-first$label" scenario_interop "$impl_a" "$impl_b" B
  fi
  if [ "$impl_b" = rovy ]; then
    run_scenario "roaming$label" scenario_roaming "$impl_a" "$impl_b"
  else
    # wireguard-go keeps sending from the source address it last received on ("network is
    # unreachable" once that address is gone), so it cannot be the side that moves; boringtun
    # can when its UDP socket is not connected.
    NODE_ARGS_B=(--disable-connected-udp)
    run_scenario "roaming$label" scenario_roaming wireguard-go boringtun
    NODE_ARGS_B=()
  fi
  run_scenario "restart$label" scenario_restart "$impl_a" "$impl_b"
  run_scenario "hostile$label" scenario_hostile "$impl_a" "$impl_b"
}

if [ "$self_check" = 1 ]; then
  run_suite "[self-check]" boringtun wireguard-go
else
  for backend in "${backends[@]}"; do
    ROVY_BACKEND_ARG="$backend"
    run_suite "[$backend]" rovy rovy
    export ROVY_OFFLOADS=off
    run_scenario "basic[$backend,offloads-off]" scenario_basic rovy rovy
    unset ROVY_OFFLOADS
  done
fi

rm -f "$RF_TMP"/data-*
if [ "$FAILED" -gt 0 ]; then
  RF_KEEP_TMP=1
  echo "logs kept in $RF_TMP"
fi
echo "$PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ]
