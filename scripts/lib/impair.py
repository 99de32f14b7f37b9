#!/usr/bin/env python3
"""A seeded impairment relay: a UDP forwarder between two tunnel nodes that loses, delays (and so
reorders) and duplicates datagrams, for a kernel without the netem qdisc.

  impair.py --a-listen ADDR:PORT --a-node ADDR:PORT --b-listen ADDR:PORT --b-node ADDR:PORT
            --loss PCT --delay-ms D --jitter-ms J --duplicate PCT --seed N
            --seconds S --stop-file F --ready FLAG --report R

Node A sends to --a-listen; what arrives there leaves from --b-listen for --b-node, and the
other way round. Each datagram is lost with probability --loss %, otherwise delivered after a
delay drawn uniformly from D ± J ms (so datagrams overtake each other), and with probability
--duplicate % delivered a second time after a delay of its own. Runs until S seconds pass or F
exists, then writes a JSON report to R with, per direction ("to_a", "to_b"): "received",
"lost", "duplicated", "duplicated_data" (WireGuard data messages, type 4, whose both copies
were delivered: each must show up as one replay at the receiver), "delivered" and "reordered"
(datagrams delivered after one that arrived later).
"""

import argparse
import heapq
import json
import os
import random
import select
import socket
import sys
import time

BUFFER = 4 * 1024 * 1024
DATA_MESSAGE = 4


def endpoint(text):
    host, _, port = text.rpartition(":")
    return host.strip("[]"), int(port)


def open_socket(address):
    family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, BUFFER)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, BUFFER)
    sock.bind(address)
    sock.setblocking(False)
    return sock


class Direction:
    """One way through the relay: counters, and the arrival order of what it delivers."""

    def __init__(self, out_sock, destination):
        self.out_sock = out_sock
        self.destination = destination
        self.counts = dict.fromkeys(("received", "lost", "duplicated", "duplicated_data", "delivered", "reordered"), 0)
        self.arrivals = 0
        self.latest_delivered = -1
        # Arrivals delivered twice (both copies scheduled).
        self.twice = set()

    def deliver(self, arrival, datagram, copies):
        """Sends one copy; `copies` is the list of copies of this datagram still to deliver."""
        try:
            self.out_sock.sendto(datagram, self.destination)
        except OSError:
            return
        copies.pop()
        if not copies and datagram[:1] == bytes([DATA_MESSAGE]) and arrival in self.twice:
            self.counts["duplicated_data"] += 1
        self.counts["delivered"] += 1
        if arrival < self.latest_delivered:
            self.counts["reordered"] += 1
        self.latest_delivered = max(self.latest_delivered, arrival)


def relay(args):
    rng = random.Random(args.seed)
    sock_a = open_socket(endpoint(args.a_listen))
    sock_b = open_socket(endpoint(args.b_listen))
    to_b = Direction(sock_b, endpoint(args.b_node))
    to_a = Direction(sock_a, endpoint(args.a_node))
    inbound = {sock_a: to_b, sock_b: to_a}
    with open(args.ready, "w", encoding="ascii") as flag:
        flag.write("relaying\n")
    pending = []  # (due, tiebreak, direction, arrival, datagram, copies not yet delivered)
    tiebreak = 0

    def delay():
        return max(0.0, rng.uniform(args.delay_ms - args.jitter_ms, args.delay_ms + args.jitter_ms)) / 1000

    deadline = time.monotonic() + args.seconds
    checked = 0.0
    while True:
        now = time.monotonic()
        if now >= deadline:
            break
        if now - checked > 0.5:
            checked = now
            if os.path.exists(args.stop_file):
                break
        timeout = min(deadline - now, 0.5)
        if pending:
            timeout = max(0.0, min(timeout, pending[0][0] - now))
        readable, _, _ = select.select([sock_a, sock_b], [], [], timeout)
        now = time.monotonic()
        for sock in readable:
            direction = inbound[sock]
            while True:
                try:
                    datagram = sock.recv(65535)
                except BlockingIOError:
                    break
                direction.counts["received"] += 1
                arrival = direction.arrivals
                direction.arrivals += 1
                if rng.random() * 100 < args.loss:
                    direction.counts["lost"] += 1
                    continue
                copies = [None]
                if rng.random() * 100 < args.duplicate:
                    copies.append(None)
                    direction.counts["duplicated"] += 1
                    direction.twice.add(arrival)
                for _ in range(len(copies)):
                    tiebreak += 1
                    heapq.heappush(pending, (now + delay(), tiebreak, direction, arrival, datagram, copies))
        while pending and pending[0][0] <= now:
            _, _, direction, arrival, datagram, copies = heapq.heappop(pending)
            direction.deliver(arrival, datagram, copies)
    report = {"to_a": to_a.counts, "to_b": to_b.counts}
    with open(args.report, "w", encoding="ascii") as out:
        json.dump(report, out)
        out.write("\n")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--a-listen", required=True)
    parser.add_argument("--a-node", required=True)
    parser.add_argument("--b-listen", required=True)
    parser.add_argument("--b-node", required=True)
    parser.add_argument("--loss", type=float, default=0.0, help="percent of datagrams lost")
    parser.add_argument("--delay-ms", type=float, default=0.0)
    parser.add_argument("--jitter-ms", type=float, default=0.0)
    parser.add_argument("--duplicate", type=float, default=0.0, help="percent of datagrams delivered twice")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--seconds", type=float, required=True)
    parser.add_argument("--stop-file", required=True)
    parser.add_argument("--ready", required=True)
    parser.add_argument("--report", required=True)
    args = parser.parse_args()
    try:
        relay(args)
    except (OSError, ValueError) as error:
        print(f"impair: {error}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
