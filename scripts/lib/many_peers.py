#!/usr/bin/env python3
"""Grows a one-peer rovy-fast config into a big one, for the many-peers scenario.

  many_peers.py CONFIG PEERS PREFIXES EXTRA_NET

CONFIG has an [interface] and one [[peer]] (the real one). Writes PEERS - 1 made-up WireGuard
peers (random keys, no endpoint) with PREFIXES allowed /32s each from 172.16.0.0 up, before
the real peer, and gives the real peer PREFIXES allowed IPs in all: its own, then /32s from
EXTRA_NET (an IPv4 address, e.g. 172.31.0.0). Prints "<peers> <allowed IPs>" as written.
"""

import base64
import ipaddress
import os
import sys

MADE_UP_BASE = int(ipaddress.IPv4Address("172.16.0.0"))


def toml_list(prefixes):
    return ", ".join(f'"{p}"' for p in prefixes)


def main():
    path, peers, per_peer, extra_net = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    with open(path, encoding="ascii") as source:
        interface, real = source.read().split("\n[[peer]]\n", 1)
    lines = real.splitlines()
    allowed_line = next(i for i, line in enumerate(lines) if line.startswith("allowed_ips = ["))
    own = [p.strip().strip('"') for p in lines[allowed_line][len("allowed_ips = [") : -1].split(",")]
    extra_base = int(ipaddress.IPv4Address(extra_net))
    extra = [f"{ipaddress.IPv4Address(extra_base + 1 + i)}/32" for i in range(per_peer - len(own))]
    lines[allowed_line] = f"allowed_ips = [{toml_list(own + extra)}]"
    out = [interface]
    for peer in range(peers - 1):
        prefixes = [f"{ipaddress.IPv4Address(MADE_UP_BASE + peer * per_peer + i)}/32" for i in range(per_peer)]
        key = base64.b64encode(os.urandom(32)).decode()
        out.append(f'\n[[peer]]\npublic_key = "{key}"\nkind = "wireguard"\nallowed_ips = [{toml_list(prefixes)}]\n')
    out.append("\n[[peer]]\n" + "\n".join(lines) + "\n")
    with open(path, "w", encoding="ascii") as sink:
        sink.write("".join(out))
    print(peers, (peers - 1) * per_peer + len(own) + len(extra))


if __name__ == "__main__":
    main()
