#!/usr/bin/env python3
"""One TCP transfer whose SHA-256 is computed on the receiving end, for the end-to-end tests.

The receiver hashes the byte stream as it arrives, so a corrupted, reordered or truncated
transfer shows up as a checksum or length mismatch against `sha256sum` of the sent file.
The sender can be paced (--rate) so a transfer lasts long enough for something else
(roaming, hostile input) to happen while it runs.

  transfer.py recv --bind ADDR --port P --out RESULT --ready FLAG --timeout S [--stats FILE]
  transfer.py send --host ADDR --port P --file F [--rate MBYTES_PER_S] --timeout S

`recv` writes "<sha256 hex> <byte count>" to RESULT, and with --stats a JSON object to FILE:
{"bytes": n, "seconds": s, "longest_gap": s}, the time from the connection to its end and the
longest wait for data in between (a stall). Both exit non-zero with a one-line reason on any
error or timeout.
"""

import argparse
import hashlib
import json
import socket
import sys
import time

CHUNK = 256 * 1024


def family_of(address):
    return socket.AF_INET6 if ":" in address else socket.AF_INET


def receive(args):
    deadline = time.monotonic() + args.timeout
    with socket.socket(family_of(args.bind), socket.SOCK_STREAM) as listener:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((args.bind, args.port))
        listener.listen(1)
        listener.settimeout(args.timeout)
        with open(args.ready, "w", encoding="ascii") as flag:
            flag.write("listening\n")
        conn, _ = listener.accept()
    digest = hashlib.sha256()
    total = 0
    started = last = time.monotonic()
    longest_gap = 0.0
    with conn:
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"transfer not finished after {args.timeout} s ({total} bytes)")
            conn.settimeout(remaining)
            data = conn.recv(CHUNK)
            now = time.monotonic()
            longest_gap = max(longest_gap, now - last)
            last = now
            if not data:
                break
            digest.update(data)
            total += len(data)
    with open(args.out, "w", encoding="ascii") as out:
        out.write(f"{digest.hexdigest()} {total}\n")
    if args.stats:
        with open(args.stats, "w", encoding="ascii") as out:
            stats = {"bytes": total, "seconds": round(last - started, 3), "longest_gap": round(longest_gap, 3)}
            json.dump(stats, out)
            out.write("\n")


def send(args):
    deadline = time.monotonic() + args.timeout
    start = time.monotonic()
    sent = 0
    with socket.create_connection((args.host, args.port), timeout=args.timeout) as conn:
        with open(args.file, "rb") as source:
            while True:
                data = source.read(CHUNK)
                if not data:
                    break
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"transfer not finished after {args.timeout} s ({sent} bytes)")
                conn.settimeout(remaining)
                conn.sendall(data)
                sent += len(data)
                if args.rate > 0:
                    due = start + sent / (args.rate * 1e6)
                    pause = due - time.monotonic()
                    if pause > 0:
                        time.sleep(pause)
        conn.shutdown(socket.SHUT_WR)
        # Wait for the receiver to close, so "send finished" means "all bytes were taken".
        conn.settimeout(max(deadline - time.monotonic(), 0.1))
        while conn.recv(CHUNK):
            pass


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    recv_p = sub.add_parser("recv")
    recv_p.add_argument("--bind", required=True)
    recv_p.add_argument("--port", type=int, required=True)
    recv_p.add_argument("--out", required=True)
    recv_p.add_argument("--ready", required=True)
    recv_p.add_argument("--timeout", type=float, required=True)
    recv_p.add_argument("--stats", help="write bytes, duration and longest stall here (JSON)")
    send_p = sub.add_parser("send")
    send_p.add_argument("--host", required=True)
    send_p.add_argument("--port", type=int, required=True)
    send_p.add_argument("--file", required=True)
    send_p.add_argument("--rate", type=float, default=0.0, help="pace to this many MB/s (0 = unpaced)")
    send_p.add_argument("--timeout", type=float, required=True)
    args = parser.parse_args()
    try:
        if args.command == "recv":
            receive(args)
        else:
            send(args)
    except (OSError, TimeoutError) as error:
        print(f"transfer {args.command}: {error}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
