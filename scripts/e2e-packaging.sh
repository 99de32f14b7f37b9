#!/usr/bin/env bash
# What a packager and an operator rely on:
# - least privilege: a node run as an unprivileged user (nobody) with only CAP_NET_ADMIN
#   (setpriv, as the systemd unit does) creates its TUN, peers with a root node and carries
#   pings both ways, and holds no other capability;
# - packaging/rovy-fast@.service passes `systemd-analyze verify` without a warning;
# - packaging/rovy0.toml, the sample config, names every config key and loads with `check`;
# - the man page and the bash completions generated from the command line are well formed.
# Needs root; cleans up on exit.
#   sudo scripts/e2e-packaging.sh [--no-build]
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=lib/netns.sh
source scripts/lib/netns.sh
# shellcheck source=lib/apt.sh
source scripts/lib/apt.sh
rf_ensure_commands setpriv=util-linux systemd-analyze=systemd ping=iputils-ping
[ "${1:-}" = --no-build ] || cargo build --quiet --release --locked -p rovy-control
bin=${ROVY_FAST_BIN:-$PWD/target/release/rovy-fast}
fail() { echo "FAIL packaging: $*"; for f in "$RF_TMP"/*.log; do [ -e "$f" ] && sed "s|^|  $(basename "$f"): |" "$f" | tail -5; done; exit 1; }
rf_netns_setup
chmod 755 "$RF_TMP"

# Least privilege: node B runs as nobody with CAP_NET_ADMIN alone.
for side in a b; do (umask 077; "$bin" genkey >"$RF_TMP/$side.key"); done
conf() { # conf SIDE PEER_SIDE PEER_UNDERLAY INNER
  printf '[interface]\nname = "rfp%s"\nprivate_key_file = "%s"\nlisten_port = 1312\naddresses = ["%s/24"]\n\n[[peer]]\npublic_key = "%s"\nkind = "wireguard"\nendpoint = "%s:1312"\nallowed_ips = ["%s/32"]\n' \
    "$1" "$RF_TMP/$1.key" "$4" "$("$bin" pubkey <"$RF_TMP/$2.key")" "$3" "$5" >"$RF_TMP/$1.toml"
  chmod 600 "$RF_TMP/$1.toml"
}
conf a b "$RF_UNDERLAY_B4" 10.203.0.1 10.203.0.2
conf b a "$RF_UNDERLAY_A4" 10.203.0.2 10.203.0.1
chown nobody "$RF_TMP/b.key" "$RF_TMP/b.toml"
mkdir "$RF_TMP/b.run" && chown nobody "$RF_TMP/b.run"
start_bg "$RF_NS_A" "$RF_TMP/a.log" "$bin" --cores 1 --socket "$RF_TMP/a.sock" "$RF_TMP/a.toml"
a_pid=$RF_LAST_PID
# ip netns exec and setpriv each exec the next program: the PID is the node's.
start_bg "$RF_NS_B" "$RF_TMP/b.log" setpriv --reuid=nobody --regid=nogroup --clear-groups \
  --inh-caps=-all,+net_admin --ambient-caps=-all,+net_admin --bounding-set=-all,+net_admin \
  "$bin" --cores 1 --socket "$RF_TMP/b.run/b.sock" "$RF_TMP/b.toml"
node_pid=$RF_LAST_PID
rf_wait_ready "$RF_TMP/a.log" "$a_pid" 20 || fail "the root node did not start"
rf_wait_ready "$RF_TMP/b.log" "$node_pid" 20 || fail "the unprivileged node did not start"
uid=$(awk '/^Uid:/ { print $2 }' "/proc/$node_pid/status")
caps=$(awk '/^CapEff:/ { print $2 }' "/proc/$node_pid/status")
[ "$uid" = "$(id -u nobody)" ] || fail "the node runs as uid $uid, not nobody"
# CAP_NET_ADMIN is bit 12.
[ "$((16#$caps))" = "$((1 << 12))" ] || fail "effective capabilities $caps, not CAP_NET_ADMIN alone"
wait_for 10 run_in "$RF_NS_B" ping -c1 -W1 10.203.0.1 || fail "the unprivileged node gets no reply"
run_in "$RF_NS_A" ping -c 3 -i 0.2 -W 2 -q 10.203.0.2 >/dev/null || fail "no replies from the unprivileged node"
# The whole answer first: `status | grep -q` fails under pipefail whenever grep exits before
# the last line is written.
status=$(setpriv --reuid=nobody --regid=nogroup --clear-groups "$bin" status --socket "$RF_TMP/b.run/b.sock") ||
  fail "status over the unprivileged node's socket failed"
grep -q "latest handshake" <<<"$status" || fail "status over the unprivileged node's socket: $status"
echo "  least privilege: node as nobody with CapEff $caps (CAP_NET_ADMIN) carries pings both ways"

# The systemd unit, pointed at this build.
unit_dir="$RF_TMP/unit"
mkdir "$unit_dir"
sed "s|/usr/local/bin/rovy-fast|$bin|" packaging/rovy-fast@.service >"$unit_dir/rovy-fast@rovy0.service"
out=$(cd "$unit_dir" && systemd-analyze verify --man=no ./rovy-fast@rovy0.service 2>&1) || fail "systemd-analyze verify: $out"
[ -z "$out" ] || fail "systemd-analyze verify warns: $out"
echo "  packaging/rovy-fast@.service: systemd-analyze verify clean"

# The sample config: every key the parser knows appears in it, and it loads.
known() { # the keys the parser lists in its unknown-key error for SECTION
  { "$bin" check "$1" 2>&1 || true; } | sed -n 's/.*known keys: \([^)]*\)).*/\1/p' | tr -d ','

}
printf '[interface]\nprivate_key = "%s"\nbogus = 1\n' "$(cat "$RF_TMP/a.key")" >"$RF_TMP/keys-i.toml"
printf '[interface]\nprivate_key = "%s"\n[[peer]]\npublic_key = "%s"\nbogus = 1\n' "$(cat "$RF_TMP/a.key")" \
  "$("$bin" pubkey <"$RF_TMP/b.key")" >"$RF_TMP/keys-p.toml"
chmod 600 "$RF_TMP"/keys-*.toml
keys="$(known "$RF_TMP/keys-i.toml") $(known "$RF_TMP/keys-p.toml")"
[ "$(wc -w <<<"$keys")" -gt 10 ] || fail "could not read the known keys: $keys"
for key in $keys; do
  grep -Eq "^#? ?(# Or inline: )?$key = |^$key = |[ (]$key = " packaging/rovy0.toml || fail "packaging/rovy0.toml does not name $key"
done
sample="$RF_TMP/sample"
mkdir "$sample"
(umask 077; "$bin" genkey >"$sample/rovy0.key"; wg genpsk >"$sample/rovy0-peer2.psk" 2>/dev/null || "$bin" genkey >"$sample/rovy0-peer2.psk")
sed "s|/etc/rovy/|$sample/|" packaging/rovy0.toml >"$sample/rovy0.toml"
chmod 600 "$sample/rovy0.toml"
out=$("$bin" check "$sample/rovy0.toml" 2>&1) || fail "the sample config does not load: $out"
echo "  packaging/rovy0.toml names all $(wc -w <<<"$keys") keys and loads: $out"

# Man page and completions from the command line.
"$bin" man | head -1 | grep -q '^\.ie' || fail "man does not print roff"
"$bin" man | grep -q '^\.TH rovy-fast 1' || fail "the man page has no .TH rovy-fast 1"
"$bin" man | grep -q 'tune' || fail "the man page does not list the subcommands"
"$bin" completions bash >"$RF_TMP/completion.bash"
bash -n "$RF_TMP/completion.bash" || fail "the bash completion script does not parse"
grep -q 'route' "$RF_TMP/completion.bash" || fail "the bash completion does not know the subcommands"
echo "  man page and bash completion generated and well formed"
echo "PASS packaging"
