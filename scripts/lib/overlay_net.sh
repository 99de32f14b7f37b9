# shellcheck shell=bash
# shellcheck disable=SC2034 # the globals here are read by the scripts that source this file
# An overlay test network: N rovy-fast nodes, each in its own namespace `rf-<pid>-ovI`, joined
# by one veth per link and peered only over those links (kind = "rovy", no allowed_ips).
# Source node.sh first. Set OV_BIN (the rovy-fast binary) and OV_DIR (a scratch directory),
# choose the links with ov_chain N or ov_mesh8, then ov_setup and ov_start; ov_cleanup (from
# the caller's trap) stops the nodes by PID and deletes the namespaces.
# Link k joins node a (10.210.k.1) and node b (10.210.k.2). Set OV_ADDRESSES[I] (a TOML list's
# items) before ov_setup to give node I's interface addresses; between ov_setup and ov_start,
# ov_attach gives a node a namespace of its own for other peers, and ov_add_peer configures one.

OV_LINKS=()
OV_NODES=0
OV_NS=()
OV_PIDS=()
OV_ATTACHED=0
OV_ATTACHED_NS=()
declare -gA OV_ADDRESSES=()

# ov_chain N: a chain of N nodes.
ov_chain() {
  OV_NODES="$1"; OV_LINKS=()
  local i
  for i in $(seq 1 $(($1 - 1))); do OV_LINKS+=("$i $((i + 1))"); done
}

# ov_mesh8: 8 nodes in a ring with two chords (1-5, 3-7).
ov_mesh8() {
  OV_NODES=8; OV_LINKS=("1 5" "3 7")
  local i
  for i in $(seq 1 8); do OV_LINKS+=("$i $((i % 8 + 1))"); done
}

# ov_two_paths: 5 nodes, two disjoint paths from node 1 to node 4: the short one through node
# 2 (1-2-4) and a longer one through nodes 3 and 5 (1-3-5-4).
ov_two_paths() {
  OV_NODES=5; OV_LINKS=("1 2" "2 4" "1 3" "3 5" "5 4")
}

# ov_setup: namespaces, veths, keys and a config per node; the links also go to OV_DIR/links.
ov_setup() {
  local i j k=0 a b pair
  declare -gA OV_ENDPOINT=()
  OV_NS=()
  for i in $(seq 1 "$OV_NODES"); do
    OV_NS+=("rf-$$-ov$i")
    ip netns add "rf-$$-ov$i"
    ip -n "rf-$$-ov$i" link set lo up
  done
  for pair in "${OV_LINKS[@]}"; do
    k=$((k + 1))
    read -r a b <<<"$pair"
    ip link add "rfo$$l${k}a" type veth peer name "rfo$$l${k}b"
    ip link set "rfo$$l${k}a" netns "${OV_NS[$((a - 1))]}"
    ip link set "rfo$$l${k}b" netns "${OV_NS[$((b - 1))]}"
    ip -n "${OV_NS[$((a - 1))]}" addr add "10.210.$k.1/24" dev "rfo$$l${k}a"
    ip -n "${OV_NS[$((b - 1))]}" addr add "10.210.$k.2/24" dev "rfo$$l${k}b"
    ip -n "${OV_NS[$((a - 1))]}" link set "rfo$$l${k}a" up
    ip -n "${OV_NS[$((b - 1))]}" link set "rfo$$l${k}b" up
    OV_ENDPOINT["$a $b"]="10.210.$k.2"
    OV_ENDPOINT["$b $a"]="10.210.$k.1"
  done
  (umask 077; for i in $(seq 1 "$OV_NODES"); do "$OV_BIN" genkey >"$OV_DIR/$i.key"; done)
  for i in $(seq 1 "$OV_NODES"); do
    {
      printf '[interface]\nname = "rovy0"\nprivate_key_file = "%s"\nlisten_port = 1312\nmetrics = "127.0.0.1:9586"\n' "$OV_DIR/$i.key"
      [ -z "${OV_ADDRESSES[$i]:-}" ] || printf 'addresses = [%s]\n' "${OV_ADDRESSES[$i]}"
      for j in $(seq 1 "$OV_NODES"); do
        [ -n "${OV_ENDPOINT["$i $j"]:-}" ] || continue
        printf '\n[[peer]]\npublic_key = "%s"\nendpoint = "%s:1312"\n' \
          "$("$OV_BIN" pubkey <"$OV_DIR/$j.key")" "${OV_ENDPOINT["$i $j"]}"
      done
    } >"$OV_DIR/$i.toml"
    chmod 600 "$OV_DIR/$i.toml"
  done
  printf '%s\n' "${OV_LINKS[@]}" >"$OV_DIR/links"
}

# ov_attach NAME I: a namespace rf-<pid>-NAME joined to node I by a veth of its own: node I
# has 10.211.k.1 on it and the namespace 10.211.k.2 (k counts attachments from 1). Leaves the
# namespace in OV_ATTACH_NS and the node's address on the veth in OV_ATTACH_NODE_IP.
ov_attach() {
  local ns="rf-$$-$1" k=$((OV_ATTACHED + 1))
  OV_ATTACHED=$k
  ip netns add "$ns"
  OV_ATTACHED_NS+=("$ns")
  ip -n "$ns" link set lo up
  ip link add "rfo$$x${k}a" type veth peer name "rfo$$x${k}b"
  ip link set "rfo$$x${k}a" netns "${OV_NS[$(($2 - 1))]}"
  ip link set "rfo$$x${k}b" netns "$ns"
  ip -n "${OV_NS[$(($2 - 1))]}" addr add "10.211.$k.1/24" dev "rfo$$x${k}a"
  ip -n "$ns" addr add "10.211.$k.2/24" dev "rfo$$x${k}b"
  ip -n "${OV_NS[$(($2 - 1))]}" link set "rfo$$x${k}a" up
  ip -n "$ns" link set "rfo$$x${k}b" up
  OV_ATTACH_NS="$ns"
  OV_ATTACH_NODE_IP="10.211.$k.1"
}

# ov_add_peer I PUBKEY KIND [ALLOWED_IPS [ENDPOINT]]: one more peer in node I's config (ALLOWED_IPS
# as TOML list items; no ENDPOINT: the peer dials in).
ov_add_peer() {
  {
    printf '\n[[peer]]\npublic_key = "%s"\nkind = "%s"\n' "$2" "$3"
    [ -z "${4:-}" ] || printf 'allowed_ips = [%s]\n' "$4"
    [ -z "${5:-}" ] || printf 'endpoint = "%s"\n' "$5"
  } >>"$OV_DIR/$1.toml"
}

# ov_start ARGS_OF: starts every node (API socket OV_DIR/I.sock, log OV_DIR/I.log) with the
# arguments the function ARGS_OF prints for its number, and waits for each to be ready.
# Returns 1 naming the node that did not start.
ov_start() {
  local i args
  for i in $(seq 1 "$OV_NODES"); do
    read -r -a args <<<"$("$1" "$i")"
    ip netns exec "${OV_NS[$((i - 1))]}" "$OV_BIN" "${args[@]}" \
      --socket "$OV_DIR/$i.sock" "$OV_DIR/$i.toml" 2>"$OV_DIR/$i.log" &
    OV_PIDS+=("$!")
  done
  for i in $(seq 1 "$OV_NODES"); do
    rf_wait_ready "$OV_DIR/$i.log" "${OV_PIDS[$((i - 1))]}" 20 || { echo "node $i did not start" >&2; return 1; }
  done
}

# ov_addr I: node I's fc00 address.
ov_addr() {
  "$OV_BIN" id "$OV_DIR/$1.key" | awk '/^address:/ {print $2}'
}

# ov_routes_complete I: node I's route list holds every other node at its hop distance (BFS
# over the links) with a label of that many slots.
ov_routes_complete() {
  local json
  json=$("$OV_BIN" route list --json --socket "$OV_DIR/$1.sock") || return 1
  python3 - "$1" "$OV_NODES" "$json" "$OV_DIR" "$OV_BIN" <<'PY'
import collections, json, subprocess, sys
i, nodes, routes, d, binary = int(sys.argv[1]), int(sys.argv[2]), json.loads(sys.argv[3]), sys.argv[4], sys.argv[5]
graph = collections.defaultdict(set)
for line in open(f"{d}/links"):
    a, b = map(int, line.split())
    graph[a].add(b); graph[b].add(a)
hops, queue = {i: 0}, collections.deque([i])
while queue:
    n = queue.popleft()
    for m in graph[n]:
        if m not in hops:
            hops[m] = hops[n] + 1; queue.append(m)
by_key = {r["public_key"]: r for r in routes["routes"]}
for j in range(1, nodes + 1):
    if j == i:
        continue
    key = subprocess.run([binary, "pubkey"], stdin=open(f"{d}/{j}.key"), capture_output=True, text=True).stdout.strip()
    r = by_key.get(key)
    if r is None or r["metric"] != hops[j] or len(r["label"].split(".")) != hops[j]:
        sys.exit(1)
PY
}

# ov_wait_converged SECONDS: every node's routes complete within SECONDS.
ov_wait_converged() {
  local deadline=$((SECONDS + $1)) i ok
  while [ "$SECONDS" -lt "$deadline" ]; do
    ok=1
    for i in $(seq 1 "$OV_NODES"); do ov_routes_complete "$i" || { ok=0; break; }; done
    [ "$ok" = 1 ] && return 0
    sleep 0.5
  done
  return 1
}

# ov_start_one I ARGS…: starts node I again (after ov_stop or ov_kill) and waits for it.
ov_start_one() {
  local i="$1"
  shift
  ip netns exec "${OV_NS[$((i - 1))]}" "$OV_BIN" "$@" \
    --socket "$OV_DIR/$i.sock" "$OV_DIR/$i.toml" 2>>"$OV_DIR/$i.log" &
  OV_PIDS[$((i - 1))]=$!
  rf_wait_ready "$OV_DIR/$i.log" "$!" 20
}

# ov_kill I: kills node I with SIGKILL, as a crash would, and reaps it.
ov_kill() {
  local pid="${OV_PIDS[$(($1 - 1))]}"
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  # A killed node leaves its TUN; its namespace stays for a restart.
  ip -n "${OV_NS[$(($1 - 1))]}" link del rovy0 2>/dev/null || true
}

# ov_link_set A B up|down: the link between nodes A and B, on both of its ends.
ov_link_set() {
  local k=0 pair a b
  for pair in "${OV_LINKS[@]}"; do
    k=$((k + 1))
    read -r a b <<<"$pair"
    if [ "$a $b" = "$1 $2" ] || [ "$a $b" = "$2 $1" ]; then
      ip -n "${OV_NS[$((a - 1))]}" link set "rfo$$l${k}a" "$3"
      ip -n "${OV_NS[$((b - 1))]}" link set "rfo$$l${k}b" "$3"
      return 0
    fi
  done
  return 1
}

# ov_stop I: stops node I (SIGTERM) and waits for it.
ov_stop() {
  local pid="${OV_PIDS[$(($1 - 1))]}"
  kill -TERM "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

# ov_cleanup: stops every node and deletes the namespaces, attached ones too (and with them
# the veths).
ov_cleanup() {
  local pid n
  for pid in "${OV_PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${OV_PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  for n in "${OV_NS[@]}" "${OV_ATTACHED_NS[@]}"; do ip netns del "$n" 2>/dev/null || true; done
  OV_PIDS=(); OV_NS=(); OV_ATTACHED_NS=()
}
