#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# Attacks and faults across real processes: rovy-fast nodes in network namespaces under a
# handshake flood, behind a lossy relay, across a rekey, and against the rest of the real
# world. Needs root; run scripts/install-peers.sh first.
#
#   sudo scripts/e2e-attacks.sh [--only NAME,NAME…] [--soak-seconds N] [--no-build]
#
# Scenarios:
#   flood          valid-mac1 initiations from 4096 addresses in a namespace of their own, as
#                  fast as one process sends them, while B sends A paced transfers: cookies,
#                  the transfers intact, `status` answered, B restarted during the flood gets
#                  a new session, A exits within 2 s on SIGTERM during the flood
#   flood-mac2     the flooder owns 64 addresses, fetches their cookies and sends valid-mac2
#                  initiations: the rate limiter bounds A's Diffie-Hellman work
#   loss           A and B only through a seeded relay: 5 % loss, 25 ± 10 ms (reordering),
#                  1 % duplicates; a TCP transfer of about --soak-seconds (default 30) arrives
#                  intact with no stall over 5 s, every duplicate counted as one replay
#   rekey          a transfer of 140 s from rovy-fast to rovy-fast and to boringtun at once
#                  crosses the 120 s rekey with no stall; both sides saw the new handshake
#   psk            preshared keys: rovy with rovy, boringtun and wireguard-go; mismatched keys
#                  make no session
#   ipv6-underlay  the nodes reach each other over IPv6 only (rovy with rovy and boringtun)
#   spoofed-source a peer sends inner packets from a source outside its allowed IPs (IPv4
#                  and IPv6): dropped, counted as source_not_allowed (stock and rovy senders)
#   sizes          every UDP payload from 1 byte to the MTU, both address families, both ways
#                  (rovy with rovy and with wireguard-go)
#   many-peers     1 000 peers and 100 000 allowed IPs: start-up time and memory, routing to
#                  the last peer
# Prints `PASS name` / `FAIL name: reason` per scenario, the figures measured, and
# `N passed, M failed`; exits non-zero if anything failed.
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
# shellcheck source=lib/attack_scenarios.sh
source "$RF_SCRIPTS/lib/attack_scenarios.sh"
# shellcheck source=lib/world_scenarios.sh
source "$RF_SCRIPTS/lib/world_scenarios.sh"

usage() {
  awk 'NR > 2 && /^#/ { sub(/^# ?/, ""); print; next } NR > 2 { exit }' "$0"
  exit 2
}

ALL="flood flood-mac2 loss rekey psk ipv6-underlay spoofed-source sizes many-peers"
only="$ALL"
build=1
LOSS_SECONDS=30
while [ $# -gt 0 ]; do
  case "$1" in
    --only)
      [ $# -ge 2 ] || usage
      only="${2//,/ }"
      shift 2
      ;;
    --soak-seconds)
      [ $# -ge 2 ] || usage
      LOSS_SECONDS="$2"
      shift 2
      ;;
    --no-build) build=0; shift ;;
    -h | --help) usage ;;
    *) usage ;;
  esac
done
for name in $only; do
  grep -qw -- "$name" <<<"$ALL" || { echo "unknown scenario '$name' (one of: $ALL)" >&2; exit 2; }
done

# Seconds all scenarios may take before the rest are failed.
BUDGET=$((900 + LOSS_SECONDS * 3))
FLOOD_SOURCES=4096
FLOOD_MAC2_SOURCES=64
FLOOD_MAC2_SECONDS=15
# Paced transfers of 40 MB at 4 MB/s: 10 s each.
FLOOD_RATE=4
LOSS_SEED=20261201
LOSS_RATE=0.5

if [ "$build" = 1 ]; then
  rf_log "building rovy-fast (cargo build --release -p rovy-control)"
  if ! (cd "$RF_REPO" && timeout 1800 cargo build --release --locked -p rovy-control); then
    echo "FAIL build: cargo build --release -p rovy-control failed"
    echo "0 passed, 1 failed"
    exit 1
  fi
fi
if [ ! -x "$ROVY_FAST_BIN" ]; then
  echo "FAIL setup: rovy-fast not built at $ROVY_FAST_BIN"
  echo "0 passed, 1 failed"
  exit 1
fi

rf_netns_setup
pair_init
attack_net_setup
make_data "$RF_TMP/data-flood" 40
# Paced at 0.5 MB/s through the relay (TCP manages about 1 MB/s there): LOSS_SECONDS long.
make_data "$RF_TMP/data-loss" $(((LOSS_SECONDS + 1) / 2))
make_data "$RF_TMP/data-small" 10
if grep -qw rekey <<<"$only"; then
  make_data "$RF_TMP/data-rekey" "$REKEY_MB"
fi

budget_start
for name in $only; do
  case "$name" in
    flood) run_scenario flood scenario_flood ;;
    flood-mac2) run_scenario flood-mac2 scenario_flood_mac2 ;;
    loss) run_scenario "loss[${LOSS_SECONDS}s]" scenario_loss ;;
    rekey) run_scenario rekey scenario_rekey ;;
    psk)
      for peer in rovy boringtun wireguard-go; do
        run_scenario "psk-$peer" scenario_psk "$peer"
      done
      run_scenario psk-mismatch scenario_psk_mismatch
      ;;
    ipv6-underlay)
      for peer in rovy boringtun; do
        run_scenario "ipv6-underlay-$peer" scenario_ipv6_underlay "$peer"
      done
      ;;
    spoofed-source)
      for peer in wireguard-go rovy; do
        run_scenario "spoofed-source-from-$peer" scenario_spoofed_source "$peer"
      done
      ;;
    sizes)
      for peer in rovy wireguard-go; do
        run_scenario "sizes-$peer" scenario_sizes "$peer"
      done
      ;;
    many-peers) run_scenario many-peers scenario_many_peers ;;
  esac
done

rm -f "$RF_TMP"/data-*
echo "== figures"
sed 's/^/  /' "$FIGURES"
if [ "$FAILED" -gt 0 ]; then
  RF_KEEP_TMP=1
  echo "logs kept in $RF_TMP"
fi
echo "$PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ]
