#!/usr/bin/env python3
"""Every UDP payload size from 1 byte to the largest that fits the tunnel MTU, through the tunnel
and back, each checked byte for byte.

  sizes.py echo --bind ADDR --port P --ready FLAG --seconds S
      Sends every datagram it gets back to where it came from, for S seconds.
  sizes.py sweep --host ADDR --port P --mtu M --report R
      Sends one datagram of each size 1..M-28 (IPv4) or 1..M-48 (IPv6) to the echo, with the
      don't-fragment bit, so each is one inner packet of 29..M or 49..M bytes, and waits for it
      to come back identical (0.5 s, three tries). Then checks that one byte more is refused
      by the sender's kernel (the MTU is really M). Writes a JSON report to R: {"first",
      "last", "ok", "missing": [sizes], "corrupt": [sizes], "over_mtu_refused"}; exits 1
      unless every size came back intact and the one past the MTU was refused.
"""

import argparse
import errno
import json
import random
import socket
import sys
import time

# Linux socket options for the don't-fragment behaviour (not all are in the socket module).
IP_MTU_DISCOVER = 10
IP_PMTUDISC_DO = 2
IPV6_MTU_DISCOVER = 23
IPV6_PMTUDISC_DO = 2
IPV4_OVERHEAD = 20 + 8
IPV6_OVERHEAD = 40 + 8
TRIES = 3


def family_of(address):
    return socket.AF_INET6 if ":" in address else socket.AF_INET


def echo(args):
    deadline = time.monotonic() + args.seconds
    with socket.socket(family_of(args.bind), socket.SOCK_DGRAM) as sock:
        sock.bind((args.bind, args.port))
        with open(args.ready, "w", encoding="ascii") as flag:
            flag.write("echoing\n")
        while (remaining := deadline - time.monotonic()) > 0:
            sock.settimeout(remaining)
            try:
                data, peer = sock.recvfrom(65535)
            except socket.timeout:
                break
            sock.sendto(data, peer)


def round_trip(sock, payload):
    """True once `payload` comes back identical, False if something else came back, None if
    nothing did."""
    seen_other = False
    for _ in range(TRIES):
        sock.send(payload)
        deadline = time.monotonic() + 0.5
        while (remaining := deadline - time.monotonic()) > 0:
            sock.settimeout(remaining)
            try:
                data = sock.recv(65535)
            except socket.timeout:
                break
            if data == payload:
                return True
            seen_other = True
    return False if seen_other else None


def sweep(args):
    family = family_of(args.host)
    last = args.mtu - (IPV6_OVERHEAD if family == socket.AF_INET6 else IPV4_OVERHEAD)
    rng = random.Random(last)
    missing, corrupt = [], []
    with socket.socket(family, socket.SOCK_DGRAM) as sock:
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, IPV6_MTU_DISCOVER, IPV6_PMTUDISC_DO)
        else:
            sock.setsockopt(socket.IPPROTO_IP, IP_MTU_DISCOVER, IP_PMTUDISC_DO)
        sock.connect((args.host, args.port))
        for size in range(1, last + 1):
            # A late echo of an earlier size has another length, so it never passes for this one.
            payload = rng.randbytes(size)
            verdict = round_trip(sock, payload)
            if verdict is None:
                missing.append(size)
            elif not verdict:
                corrupt.append(size)
        try:
            sock.send(bytes(last + 1))
            refused = False
        except OSError as error:
            refused = error.errno == errno.EMSGSIZE
    report = {"first": 1, "last": last, "ok": last - len(missing) - len(corrupt),
              "missing": missing, "corrupt": corrupt, "over_mtu_refused": refused}
    with open(args.report, "w", encoding="ascii") as out:
        json.dump(report, out)
        out.write("\n")
    return 0 if not missing and not corrupt and refused else 1


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    echo_p = sub.add_parser("echo")
    echo_p.add_argument("--bind", required=True)
    echo_p.add_argument("--port", type=int, required=True)
    echo_p.add_argument("--ready", required=True)
    echo_p.add_argument("--seconds", type=float, required=True)
    sweep_p = sub.add_parser("sweep")
    sweep_p.add_argument("--host", required=True)
    sweep_p.add_argument("--port", type=int, required=True)
    sweep_p.add_argument("--mtu", type=int, required=True)
    sweep_p.add_argument("--report", required=True)
    args = parser.parse_args()
    try:
        if args.command == "echo":
            echo(args)
            return 0
        return sweep(args)
    except OSError as error:
        print(f"sizes {args.command}: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
