//! The protocol target's input: how its endpoint and peers are set up, then the ops the harness
//! plays, in a byte format of its own so that seeds can be written as scripts
//! (`examples/protocol_seeds.rs`) and any bytes still decode. Every field is one byte or a
//! little-endian `u16`, read as zero once the input runs out; an op is its code modulo the
//! number of ops, then its fields. Values are taken as they are here; the target reduces them
//! to its ranges (a peer number modulo its peers, and so on).

use libfuzzer_sys::arbitrary::{self, Arbitrary, Unstructured};

/// The identities the harness plays, ours included as the last (a reflected handshake).
pub const PEERS: usize = 4;
/// Most ops one input plays.
pub const MAX_OPS: usize = 32;

/// How the endpoint starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Setup {
    /// `None`: only configured peers; `Some(cap)`: any key, up to `cap % 5` tunnels.
    pub any: Option<u8>,
    pub peers: [PeerSetup; PEERS],
}

/// One identity's configuration at the endpoint and its own behaviour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PeerSetup {
    /// The endpoint has a tunnel to it from the start.
    pub configured: bool,
    /// The tunnel has a preshared key (else WireGuard's all-zero one).
    pub psk: bool,
    /// The peer uses another preshared key than the endpoint's, so their handshakes fail.
    pub psk_differs: bool,
    /// The endpoint knows its address from the start.
    pub endpoint: bool,
    /// The endpoint sends it persistent keepalives.
    pub keepalive: bool,
}

/// One step of the harness.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// `peer` sends an initiation from source `src`; `ts` 0: its last timestamp again, 1: one
    /// second older than that, else its clock's.
    Initiate { peer: u8, src: u8, ts: u8 },
    /// `peer` answers an initiation the endpoint sent it (`which` counts back from the last).
    Respond { peer: u8, src: u8, which: u8 },
    /// `peer`, under load, answers the endpoint's last initiation (or response) to it with a
    /// cookie reply.
    CookieFromPeer { peer: u8, response: bool },
    /// `peer` sends `len` bytes of data on its current session.
    Data { peer: u8, src: u8, len: u8 },
    /// The endpoint seals `len` bytes for `peer`.
    Send { peer: u8, len: u8 },
    /// The endpoint is asked to handshake with `peer`.
    WeInitiate { peer: u8 },
    /// The clock moves on by milliseconds, then the timers fire.
    AdvanceMs(u16),
    /// The clock moves on by seconds, then the timers fire.
    AdvanceSecs(u16),
    /// The clock moves to the endpoint's next deadline, then the timers fire.
    ToDeadline,
    /// The caller's under-load signal from now on.
    Load(bool),
    /// A message a peer sent earlier (`which` counts back from the last), again; with
    /// `xor != 0` byte `flip_at` (modulo its length) is xored with it; `fix_mac1` recomputes a
    /// handshake message's mac1 afterwards.
    Replay {
        which: u8,
        flip_at: u16,
        xor: u8,
        fix_mac1: bool,
    },
    /// Bytes from nowhere. `kind` 1..=4 sets that type word and the type's length; `flags`:
    /// see the `RAW_*` bits.
    Raw { kind: u8, flags: u8, bytes: Vec<u8> },
}

/// [`Op::Raw`]: a handshake message gets a valid mac1 for the endpoint.
pub const RAW_FIX_MAC1: u8 = 1;
/// [`Op::Raw`]: a handshake message carries the all-zero ephemeral key.
pub const RAW_ZERO_EPHEMERAL: u8 = 2;
/// [`Op::Raw`]: the receiver index is one the endpoint holds.
pub const RAW_LIVE_INDEX: u8 = 4;

const OPS: u8 = 12;

struct Reader<'a> {
    bytes: &'a [u8],
}

impl Reader<'_> {
    fn u8(&mut self) -> u8 {
        match self.bytes.split_first() {
            Some((&b, rest)) => {
                self.bytes = rest;
                b
            }
            None => 0,
        }
    }

    fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.u8(), self.u8()])
    }

    fn bool(&mut self) -> bool {
        self.u8() & 1 == 1
    }
}

impl Setup {
    fn read(r: &mut Reader) -> Self {
        let any = r.u8().checked_sub(1);
        let peers = std::array::from_fn(|_| {
            let bits = r.u8();
            PeerSetup {
                configured: bits & 1 != 0,
                psk: bits & 2 != 0,
                psk_differs: bits & 4 != 0,
                endpoint: bits & 8 != 0,
                keepalive: bits & 16 != 0,
            }
        });
        Setup { any, peers }
    }

    fn write(&self, out: &mut Vec<u8>) {
        out.push(self.any.map_or(0, |cap| cap.saturating_add(1)));
        for p in &self.peers {
            out.push(
                u8::from(p.configured)
                    | u8::from(p.psk) << 1
                    | u8::from(p.psk_differs) << 2
                    | u8::from(p.endpoint) << 3
                    | u8::from(p.keepalive) << 4,
            );
        }
    }
}

impl Op {
    fn read(r: &mut Reader) -> Self {
        match r.u8() % OPS {
            0 => Op::Initiate {
                peer: r.u8(),
                src: r.u8(),
                ts: r.u8(),
            },
            1 => Op::Respond {
                peer: r.u8(),
                src: r.u8(),
                which: r.u8(),
            },
            2 => Op::CookieFromPeer {
                peer: r.u8(),
                response: r.bool(),
            },
            3 => Op::Data {
                peer: r.u8(),
                src: r.u8(),
                len: r.u8(),
            },
            4 => Op::Send {
                peer: r.u8(),
                len: r.u8(),
            },
            5 => Op::WeInitiate { peer: r.u8() },
            6 => Op::AdvanceMs(r.u16()),
            7 => Op::AdvanceSecs(r.u16()),
            8 => Op::ToDeadline,
            9 => Op::Load(r.bool()),
            10 => Op::Replay {
                which: r.u8(),
                flip_at: r.u16(),
                xor: r.u8(),
                fix_mac1: r.bool(),
            },
            _ => {
                let (kind, flags) = (r.u8(), r.u8());
                let len = usize::from(r.u8());
                let bytes = (0..len.min(r.bytes.len())).map(|_| r.u8()).collect();
                Op::Raw { kind, flags, bytes }
            }
        }
    }

    fn write(&self, out: &mut Vec<u8>) {
        let u16 = |out: &mut Vec<u8>, v: u16| out.extend_from_slice(&v.to_le_bytes());
        match self {
            Op::Initiate { peer, src, ts } => out.extend([0, *peer, *src, *ts]),
            Op::Respond { peer, src, which } => out.extend([1, *peer, *src, *which]),
            Op::CookieFromPeer { peer, response } => out.extend([2, *peer, u8::from(*response)]),
            Op::Data { peer, src, len } => out.extend([3, *peer, *src, *len]),
            Op::Send { peer, len } => out.extend([4, *peer, *len]),
            Op::WeInitiate { peer } => out.extend([5, *peer]),
            Op::AdvanceMs(ms) => {
                out.push(6);
                u16(out, *ms);
            }
            Op::AdvanceSecs(s) => {
                out.push(7);
                u16(out, *s);
            }
            Op::ToDeadline => out.push(8),
            Op::Load(on) => out.extend([9, u8::from(*on)]),
            Op::Replay {
                which,
                flip_at,
                xor,
                fix_mac1,
            } => {
                out.extend([10, *which]);
                u16(out, *flip_at);
                out.extend([*xor, u8::from(*fix_mac1)]);
            }
            Op::Raw { kind, flags, bytes } => {
                let len = bytes.len().min(usize::from(u8::MAX));
                out.extend([11, *kind, *flags, len as u8]);
                out.extend_from_slice(&bytes[..len]);
            }
        }
    }
}

/// A whole input: the setup and up to [`MAX_OPS`] ops.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Script {
    pub setup: Setup,
    pub ops: Vec<Op>,
}

impl Script {
    /// The script `bytes` stand for.
    pub fn decode(bytes: &[u8]) -> Self {
        let mut r = Reader { bytes };
        let setup = Setup::read(&mut r);
        let mut ops = Vec::new();
        while !r.bytes.is_empty() && ops.len() < MAX_OPS {
            ops.push(Op::read(&mut r));
        }
        Script { setup, ops }
    }

    /// The bytes [`Script::decode`] reads back as this script.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.setup.write(&mut out);
        for op in &self.ops {
            op.write(&mut out);
        }
        out
    }
}

/// Through `Arbitrary` so that `cargo fuzz fmt` prints an input as its script.
impl<'a> Arbitrary<'a> for Script {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        Ok(Script::decode(u.bytes(u.len())?))
    }

    fn arbitrary_take_rest(u: Unstructured<'a>) -> arbitrary::Result<Self> {
        Ok(Script::decode(u.take_rest()))
    }
}
