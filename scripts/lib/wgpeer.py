#!/usr/bin/env python3
"""A small WireGuard initiator of its own, for throwing chosen plaintexts at a node over a real link.

It is written from the WireGuard paper and protocol page (Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s,
mac1 keyed by the responder's static key, TAI64N timestamps, 16-byte data header), sharing no
code with the node it talks to, so a plaintext it sends reaches the node exactly as a stock peer
would deliver it: authenticated, decrypted, with the padding asked for.

  wgpeer.py genkey [--overlay]   a private key (base64); --overlay: one whose address is in fc00::/8
  wgpeer.py pubkey               private key on stdin -> public key
  wgpeer.py address              private key on stdin -> the address the key derives (any prefix)
  wgpeer.py serve --key FILE --peer PUBKEY --endpoint IP:PORT --control SOCK [--bind IP] [--hello]
      Completes a handshake with the peer (retrying for --handshake-timeout seconds), then keeps
      the session: every received data message is decrypted into an inbox, and commands arrive
      on the Unix socket SOCK. --hello sends a valid rovy HELLO every second, which keeps a
      rovy link up (a link silent for 3.5 s is dead); without it, a keepalive every 10 s.
      Prints "ready <receiver index>" on stdout once the handshake is done.
  wgpeer.py send --control SOCK [--no-pad] [--count N] PLAINTEXT...
      Sends each PLAINTEXT (hex, or a preset below) N times in its own data message, padded
      with zeros to a multiple of 16 as WireGuard does unless --no-pad (or the preset says so).
  wgpeer.py expect --control SOCK --kind KIND [--timeout S]
      Waits for a received plaintext of KIND (a frame kind byte such as 0x13, or ipv4/ipv6),
      takes it from the inbox and prints it as JSON (hex, and the routed header's fields for
      label-routed frames). Exits 1 if none arrives in time.
  wgpeer.py count --control SOCK --kind KIND    how many plaintexts of KIND are in the inbox
  wgpeer.py flush --control SOCK                empties the inbox

Presets (S and G are link slots, K a kind byte, all decimal or 0x hex):
  hello                 a valid HELLO
  ping-here             a PING whose label ends at the peer (answered with a PONG)
  ping-uturn:G          a PING sent back out of the slot it came in on (a PING may turn back)
  routed-to:S           a ROUTED frame the peer forwards on slot S, carrying a data message
                        with a receiver index nobody holds
  route-error-to:S      a ROUTE_ERROR the peer would forward on slot S
  len15, pos-past-len, at-end   ROUTED frames with label length 15, pos 3 of 2, pos 2 of 2
  unknown:K             a frame of kind K with 31 bytes after it
  truncated:KIND        a frame of KIND (routed, ping, pong, route-error, hello) one byte short
                        of its fixed layout, unpadded
  icmp4:SRC:DST         an IPv4 ICMP echo request from SRC to DST
"""

import argparse
import base64
import hashlib
import hmac
import json
import os
import socket
import socketserver
import struct
import sys
import threading
import time

try:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
    from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
except ImportError:
    sys.exit("wgpeer.py needs the python 'cryptography' module: python3 -m pip install cryptography")

CONSTRUCTION = b"Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s"
IDENTIFIER = b"WireGuard v1 zx2c4 Jason@zx2c4.com"
LABEL_MAC1 = b"mac1----"
INITIATION, RESPONSE, DATA = 1, 2, 4
RESPONSE_LEN = 92
DATA_HEADER_LEN, TAG_LEN = 16, 16
TAI64_BASE = 0x400000000000000A
KEEPALIVE_INTERVAL = 10.0

# Rovy frames (DESIGN §1 "Frames"): the kind bytes and the smallest size of each kind, written
# out here from the design rather than taken from the node, so a node that gets them wrong fails.
ROUTED, PING, PONG, ROUTE_ERROR, HELLO = 0x10, 0x11, 0x12, 0x13, 0x20
ROUTED_HEADER_LEN = 16
MAX_LABEL_LEN = 14
KEEPALIVE_LEN = DATA_HEADER_LEN + TAG_LEN  # the smallest upper message a ROUTED frame carries
MIN_LEN = {
    "routed": ROUTED_HEADER_LEN + KEEPALIVE_LEN,
    "ping": ROUTED_HEADER_LEN + 8,  # id
    "pong": ROUTED_HEADER_LEN + 8 + 32 + 64,  # id, the replier's key, its signature
    "route-error": ROUTED_HEADER_LEN + 2 + 16,  # code, failed position, quote
    "hello": 15,  # kind, seq u16, time u32, echo time u32, echo delay u32
}
KIND_OF = {"routed": ROUTED, "ping": PING, "pong": PONG, "route-error": ROUTE_ERROR, "hello": HELLO}


def blake2s(data):
    return hashlib.blake2s(data).digest()


def mac(key, data):
    return hashlib.blake2s(data, key=key, digest_size=16).digest()


def hmac_blake2s(key, data):
    return hmac.new(key, data, hashlib.blake2s).digest()


def kdf(key, data, n):
    """WireGuard's KDF_n: HKDF with HMAC-BLAKE2s, n outputs of 32 bytes."""
    t0 = hmac_blake2s(key, data)
    out, prev = [], b""
    for i in range(1, n + 1):
        prev = hmac_blake2s(t0, prev + bytes([i]))
        out.append(prev)
    return out


def aead_seal(key, counter, plaintext, aad):
    return ChaCha20Poly1305(key).encrypt(struct.pack("<4xQ", counter), plaintext, aad)


def aead_open(key, counter, ciphertext, aad):
    return ChaCha20Poly1305(key).decrypt(struct.pack("<4xQ", counter), ciphertext, aad)


def public_bytes(private):
    return private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def dh(private, public):
    return private.exchange(X25519PublicKey.from_public_bytes(public))


def tai64n():
    now = time.time_ns()
    return struct.pack(">QI", TAI64_BASE + now // 1_000_000_000, now % 1_000_000_000)


def overlay_address(public):
    """The IPv6 address a rovy node derives from a public key: BLAKE2s(BLAKE2s(key))[16:32]."""
    return blake2s(blake2s(public))[16:32]


def clamped_key():
    key = bytearray(os.urandom(32))
    key[0] &= 248
    key[31] = (key[31] & 127) | 64
    return bytes(key)


class Session:
    """One handshake (as initiator) and the transport keys it gives."""

    def __init__(self, private, peer_public):
        self.private = private
        self.peer_public = peer_public
        self.sender_index = struct.unpack("<I", os.urandom(4))[0]
        self.receiver_index = None
        self.send_key = self.recv_key = None
        self.send_counter = 0
        self.lock = threading.Lock()

    def initiation(self):
        self.ephemeral = X25519PrivateKey.generate()
        e_pub = public_bytes(self.ephemeral)
        c = blake2s(CONSTRUCTION)
        h = blake2s(blake2s(c + IDENTIFIER) + self.peer_public)
        (c,) = kdf(c, e_pub, 1)
        h = blake2s(h + e_pub)
        c, k = kdf(c, dh(self.ephemeral, self.peer_public), 2)
        static = aead_seal(k, 0, public_bytes(self.private), h)
        h = blake2s(h + static)
        c, k = kdf(c, dh(self.private, self.peer_public), 2)
        timestamp = aead_seal(k, 0, tai64n(), h)
        h = blake2s(h + timestamp)
        self.chain, self.hash = c, h
        msg = struct.pack("<II", INITIATION, self.sender_index) + e_pub + static + timestamp
        msg += mac(blake2s(LABEL_MAC1 + self.peer_public), msg)
        return msg + bytes(16)

    def consume_response(self, msg):
        """Completes the handshake from a response; False if it is not ours or does not verify."""
        if len(msg) != RESPONSE_LEN or msg[0] != RESPONSE:
            return False
        sender, receiver = struct.unpack_from("<II", msg, 4)
        if receiver != self.sender_index:
            return False
        if mac(blake2s(LABEL_MAC1 + public_bytes(self.private)), msg[:60]) != msg[60:76]:
            return False
        e_r = msg[12:44]
        c = kdf(self.chain, e_r, 1)[0]
        h = blake2s(self.hash + e_r)
        (c,) = kdf(c, dh(self.ephemeral, e_r), 1)
        (c,) = kdf(c, dh(self.private, e_r), 1)
        c, tau, k = kdf(c, bytes(32), 3)
        h = blake2s(h + tau)
        try:
            aead_open(k, 0, msg[44:60], h)
        except Exception:  # InvalidTag: a response that is not for this handshake
            return False
        self.send_key, self.recv_key = kdf(c, b"", 2)
        self.receiver_index = sender
        return True

    def seal(self, plaintext):
        with self.lock:
            counter = self.send_counter
            self.send_counter += 1
        header = struct.pack("<IIQ", DATA, self.receiver_index, counter)
        return header + aead_seal(self.send_key, counter, plaintext, b"")

    def open(self, msg):
        """The plaintext of a data message for this session, or None."""
        if len(msg) < DATA_HEADER_LEN + TAG_LEN or msg[0] != DATA:
            return None
        receiver, counter = struct.unpack_from("<IQ", msg, 4)
        if receiver != self.sender_index:
            return None
        try:
            return aead_open(self.recv_key, counter, msg[DATA_HEADER_LEN:], b"")
        except Exception:  # InvalidTag
            return None


def number(text):
    return int(text, 0)


def routed_header(kind, pos, length, label):
    slots = bytes(label) + bytes(MAX_LABEL_LEN - len(label))
    return bytes([kind, (pos << 4) | length]) + slots


def fake_data_message():
    """A data message (type 4) with a random receiver index and ciphertext: opaque to a forwarder."""
    return struct.pack("<II", DATA, struct.unpack("<I", os.urandom(4))[0]) + os.urandom(24)


def hello_frame(seq):
    return struct.pack("<BHIII", HELLO, seq & 0xFFFF, int(time.monotonic() * 1000) & 0xFFFFFFFF, 0, 0xFFFFFFFF)


def checksum(data):
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def icmp4_echo(src, dst):
    payload = b"wgpeer" + os.urandom(26)
    icmp = struct.pack("!BBHHH", 8, 0, 0, os.getpid() & 0xFFFF, 1) + payload
    icmp = icmp[:2] + struct.pack("!H", checksum(icmp)) + icmp[4:]
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(icmp), 0, 0x4000, 64, 1, 0,
                     socket.inet_aton(src), socket.inet_aton(dst))
    ip = ip[:10] + struct.pack("!H", checksum(ip)) + ip[12:]
    return ip + icmp


def preset(spec):
    """(plaintext, pad) for a preset name, or None if `spec` is not one."""
    name, _, arg = spec.partition(":")
    payload = fake_data_message()
    if name == "hello":
        return hello_frame(0), True
    if name == "ping-here":
        return routed_header(PING, 0, 1, [0]) + os.urandom(8), True
    if name == "ping-uturn":
        return routed_header(PING, 0, 2, [0, number(arg)]) + os.urandom(8), True
    if name == "routed-to":
        return routed_header(ROUTED, 0, 2, [0, number(arg)]) + payload, True
    if name == "route-error-to":
        return routed_header(ROUTE_ERROR, 0, 2, [0, number(arg)]) + bytes([1, 1]) + bytes(16), True
    if name == "len15":
        return bytes([ROUTED, 0x0F]) + os.urandom(14) + payload, True
    if name == "pos-past-len":
        return routed_header(ROUTED, 3, 2, [1, 1]) + payload, True
    if name == "at-end":
        return routed_header(ROUTED, 2, 2, [1, 1]) + payload, True
    if name == "unknown":
        return bytes([number(arg)]) + os.urandom(31), True
    if name == "truncated" and arg in MIN_LEN:
        if arg == "hello":
            return hello_frame(0)[: MIN_LEN[arg] - 1], False
        return (routed_header(KIND_OF[arg], 0, 1, [0]) + bytes(64))[: MIN_LEN[arg] - 1], False
    if name == "icmp4":
        src, _, dst = arg.partition(":")
        return icmp4_echo(src, dst), True
    return None


def plaintext_of(spec):
    found = preset(spec)
    if found is not None:
        return found
    try:
        return bytes.fromhex(spec), True
    except ValueError:
        raise ValueError(f"{spec!r} is neither hex nor a preset") from None


def kind_matches(kind, plaintext):
    if not plaintext:
        return kind == "keepalive"
    if kind in ("ipv4", "ipv6"):
        return plaintext[0] >> 4 == (4 if kind == "ipv4" else 6)
    return kind != "keepalive" and plaintext[0] == number(kind)


def describe(plaintext):
    out = {"hex": plaintext.hex(), "len": len(plaintext)}
    if plaintext and plaintext[0] in (ROUTED, PING, PONG, ROUTE_ERROR) and len(plaintext) >= ROUTED_HEADER_LEN:
        pos, length = plaintext[1] >> 4, plaintext[1] & 0x0F
        out.update(kind=plaintext[0], pos=pos, label=list(plaintext[2 : 2 + min(length, MAX_LABEL_LEN)]))
        if plaintext[0] == ROUTE_ERROR and len(plaintext) >= 34:
            out.update(code=plaintext[16], failed_pos=plaintext[17], quote=plaintext[18:34].hex())
        if plaintext[0] == PONG and len(plaintext) >= MIN_LEN["pong"]:
            key, signature = plaintext[24:56], plaintext[56:120]
            signed = b"rovy pong" + plaintext[16:24]
            out.update(public_key=base64.b64encode(key).decode(),
                       signature_valid=xeddsa_verify(key, signed, signature))
    return out


P25519 = 2**255 - 19


def xeddsa_verify(montgomery_key, message, signature):
    """XEdDSA verification (Signal's specification): the X25519 key's Edwards form with sign
    bit 0, y = (u - 1) / (u + 1) mod p, checks an ordinary Ed25519 signature. Written from the
    specification, not taken from the node."""
    u = int.from_bytes(montgomery_key, "little") & ((1 << 255) - 1)
    if u >= P25519 or (u + 1) % P25519 == 0:
        return False
    y = (u - 1) * pow(u + 1, P25519 - 2, P25519) % P25519
    edwards = Ed25519PublicKey.from_public_bytes(y.to_bytes(32, "little"))
    try:
        edwards.verify(signature, message)
    except InvalidSignature:
        return False
    return True


class Peer:
    """The serving side: the UDP socket, the session, the inbox."""

    def __init__(self, args):
        self.private = X25519PrivateKey.from_private_bytes(read_key(args.key))
        self.session = Session(self.private, base64.b64decode(args.peer))
        host, _, port = args.endpoint.rpartition(":")
        self.endpoint = (host.strip("[]"), int(port))
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_DGRAM)
        self.sock.bind((args.bind or ("::" if family == socket.AF_INET6 else "0.0.0.0"), 0))
        self.inbox = []
        self.cond = threading.Condition()
        self.hello = args.hello

    def handshake(self, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.sock.sendto(self.session.initiation(), self.endpoint)
            wait_until = min(deadline, time.monotonic() + 1.0)
            while time.monotonic() < wait_until:
                self.sock.settimeout(max(wait_until - time.monotonic(), 0.01))
                try:
                    msg, _ = self.sock.recvfrom(65535)
                except socket.timeout:
                    break
                if self.session.consume_response(msg):
                    self.sock.settimeout(None)
                    # The responder takes the new keys once it sees data under them.
                    self.send(b"")
                    return True
        return False

    def send(self, plaintext, pad=True):
        if pad and len(plaintext) % 16:
            plaintext += bytes(16 - len(plaintext) % 16)
        self.sock.sendto(self.session.seal(plaintext), self.endpoint)

    def receive_forever(self):
        while True:
            msg, _ = self.sock.recvfrom(65535)
            plaintext = self.session.open(msg)
            if plaintext is None:
                continue
            with self.cond:
                self.inbox.append(plaintext)
                del self.inbox[:-1000]
                self.cond.notify_all()

    def keep_alive(self):
        seq = 0
        while True:
            if self.hello:
                seq += 1
                self.send(hello_frame(seq))
                time.sleep(1.0)
            else:
                self.send(b"")
                time.sleep(KEEPALIVE_INTERVAL)

    def command(self, request):
        op = request["op"]
        if op == "send":
            for spec in request["plaintexts"]:
                plaintext, pad = plaintext_of(spec)
                for _ in range(request.get("count", 1)):
                    self.send(plaintext, pad and not request.get("no_pad", False))
                    time.sleep(request.get("gap", 0.02))
            return {"ok": True}
        if op == "flush":
            with self.cond:
                self.inbox.clear()
            return {"ok": True}
        if op == "count":
            with self.cond:
                return {"ok": True, "count": sum(kind_matches(request["kind"], p) for p in self.inbox)}
        if op == "expect":
            deadline = time.monotonic() + request.get("timeout", 3.0)
            with self.cond:
                while True:
                    for i, plaintext in enumerate(self.inbox):
                        if kind_matches(request["kind"], plaintext):
                            del self.inbox[i]
                            return {"ok": True, "frame": describe(plaintext)}
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        return {"ok": False, "error": f"nothing of kind {request['kind']} arrived"}
                    self.cond.wait(remaining)
        return {"ok": False, "error": f"unknown op {op!r}"}


def read_key(path):
    with open(path, encoding="ascii") as f:
        key = base64.b64decode(f.read().strip())
    if len(key) != 32:
        raise ValueError(f"{path}: not a 32-byte base64 key")
    return key


def serve(args):
    peer = Peer(args)
    if not peer.handshake(args.handshake_timeout):
        sys.exit(f"wgpeer serve: no handshake response from {args.endpoint} within {args.handshake_timeout} s")
    threading.Thread(target=peer.receive_forever, daemon=True).start()
    threading.Thread(target=peer.keep_alive, daemon=True).start()

    class Handler(socketserver.StreamRequestHandler):
        def handle(self):
            try:
                reply = peer.command(json.loads(self.rfile.readline()))
            except (ValueError, KeyError, OSError) as error:
                reply = {"ok": False, "error": str(error)}
            self.wfile.write((json.dumps(reply) + "\n").encode())

    if os.path.exists(args.control):
        os.unlink(args.control)
    with socketserver.ThreadingUnixStreamServer(args.control, Handler) as server:
        print(f"ready {peer.session.receiver_index}", flush=True)
        server.serve_forever()


def client(args, request):
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        conn.settimeout(request.get("timeout", 3.0) + 30)
        conn.connect(args.control)
        conn.sendall((json.dumps(request) + "\n").encode())
        reply = json.loads(conn.makefile().readline())
    if not reply.get("ok"):
        sys.exit(f"wgpeer {request['op']}: {reply.get('error')}")
    return reply


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    gen = sub.add_parser("genkey")
    gen.add_argument("--overlay", action="store_true")
    sub.add_parser("pubkey")
    sub.add_parser("address")
    srv = sub.add_parser("serve")
    srv.add_argument("--key", required=True)
    srv.add_argument("--peer", required=True)
    srv.add_argument("--endpoint", required=True)
    srv.add_argument("--control", required=True)
    srv.add_argument("--bind")
    srv.add_argument("--hello", action="store_true")
    srv.add_argument("--handshake-timeout", type=float, default=10.0)
    snd = sub.add_parser("send")
    snd.add_argument("--control", required=True)
    snd.add_argument("--no-pad", action="store_true")
    snd.add_argument("--count", type=int, default=1)
    snd.add_argument("plaintexts", nargs="+")
    for name in ("expect", "count"):
        p = sub.add_parser(name)
        p.add_argument("--control", required=True)
        p.add_argument("--kind", required=True)
        p.add_argument("--timeout", type=float, default=3.0)
    fl = sub.add_parser("flush")
    fl.add_argument("--control", required=True)
    args = parser.parse_args()
    try:
        if args.command == "genkey":
            while True:
                key = clamped_key()
                public = public_bytes(X25519PrivateKey.from_private_bytes(key))
                if not args.overlay or overlay_address(public)[0] == 0xFC:
                    break
            print(base64.b64encode(key).decode())
        elif args.command in ("pubkey", "address"):
            public = public_bytes(X25519PrivateKey.from_private_bytes(base64.b64decode(sys.stdin.read().strip())))
            if args.command == "pubkey":
                print(base64.b64encode(public).decode())
            else:
                print(socket.inet_ntop(socket.AF_INET6, overlay_address(public)))
        elif args.command == "serve":
            serve(args)
        elif args.command == "send":
            for spec in args.plaintexts:
                plaintext_of(spec)  # refuse a bad one before anything is sent
            client(args, {"op": "send", "plaintexts": args.plaintexts, "count": args.count, "no_pad": args.no_pad})
        elif args.command == "expect":
            print(json.dumps(client(args, {"op": "expect", "kind": args.kind, "timeout": args.timeout})["frame"]))
        elif args.command == "count":
            print(client(args, {"op": "count", "kind": args.kind})["count"])
        else:
            client(args, {"op": "flush"})
    except (OSError, ValueError) as error:
        sys.exit(f"wgpeer {args.command}: {error}")


if __name__ == "__main__":
    main()
