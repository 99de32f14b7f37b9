//! Writes the protocol target's seed scripts into the directory given (the target's corpus):
//! each one a short story the harness plays to the end, so the fuzzer starts from complete
//! handshakes both ways, cookies, data, timers, replays and forgeries rather than from
//! nothing.
//!
//!     cargo run --manifest-path fuzz/Cargo.toml --example protocol_seeds -- fuzz/corpus/protocol

use rovy_fuzz::script::{
    Op, PeerSetup, RAW_FIX_MAC1, RAW_LIVE_INDEX, RAW_ZERO_EPHEMERAL, Script, Setup,
};

/// `Initiate`'s `ts`: the peer's clock.
const NOW: u8 = 2;

fn peer(configured: bool, psk: bool, endpoint: bool) -> PeerSetup {
    PeerSetup {
        configured,
        psk,
        endpoint,
        ..PeerSetup::default()
    }
}

/// Peer 0 configured with a preshared key and an address, peer 1 configured bare, peer 2 not.
fn links() -> Setup {
    Setup {
        any: None,
        peers: [
            peer(true, true, true),
            peer(true, false, false),
            peer(false, false, false),
            peer(false, false, false),
        ],
    }
}

fn seeds() -> Vec<(&'static str, Script)> {
    use Op::*;
    let keepalive = Setup {
        peers: [
            PeerSetup {
                keepalive: true,
                ..peer(true, false, true)
            },
            peer(false, false, false),
            peer(false, false, false),
            peer(false, false, false),
        ],
        ..links()
    };
    let mismatch = Setup {
        peers: [
            PeerSetup {
                psk_differs: true,
                ..peer(true, true, true)
            },
            peer(false, false, false),
            peer(false, false, false),
            peer(false, false, false),
        ],
        ..links()
    };
    let any = Setup {
        any: Some(2),
        peers: [peer(false, false, false); 4],
    };
    let script = |setup: Setup, ops: Vec<Op>| Script { setup, ops };
    vec![
        (
            "responder",
            script(
                links(),
                vec![
                    Initiate {
                        peer: 1,
                        src: 1,
                        ts: NOW,
                    },
                    Data {
                        peer: 1,
                        src: 1,
                        len: 40,
                    },
                    Send { peer: 1, len: 20 },
                    AdvanceSecs(11),
                    Data {
                        peer: 1,
                        src: 2,
                        len: 0,
                    },
                ],
            ),
        ),
        (
            "initiator",
            script(
                links(),
                vec![
                    Respond {
                        peer: 0,
                        src: 0,
                        which: 0,
                    },
                    Data {
                        peer: 0,
                        src: 0,
                        len: 16,
                    },
                    Send { peer: 0, len: 100 },
                    AdvanceSecs(121),
                    Send { peer: 0, len: 10 },
                    Respond {
                        peer: 0,
                        src: 3,
                        which: 0,
                    },
                    Send { peer: 0, len: 1 },
                ],
            ),
        ),
        (
            "under_load",
            script(
                links(),
                vec![
                    Load(true),
                    Initiate {
                        peer: 0,
                        src: 0,
                        ts: NOW,
                    },
                    Initiate {
                        peer: 0,
                        src: 0,
                        ts: NOW,
                    },
                    Respond {
                        peer: 0,
                        src: 0,
                        which: 0,
                    },
                    Initiate {
                        peer: 0,
                        src: 1,
                        ts: NOW,
                    },
                    Load(false),
                ],
            ),
        ),
        (
            "peer_cookie",
            script(
                links(),
                vec![
                    CookieFromPeer {
                        peer: 0,
                        response: false,
                    },
                    AdvanceSecs(6),
                    Respond {
                        peer: 0,
                        src: 0,
                        which: 0,
                    },
                    Initiate {
                        peer: 0,
                        src: 0,
                        ts: NOW,
                    },
                    CookieFromPeer {
                        peer: 0,
                        response: true,
                    },
                ],
            ),
        ),
        (
            "any_key",
            script(
                any,
                vec![
                    Initiate {
                        peer: 0,
                        src: 0,
                        ts: NOW,
                    },
                    Initiate {
                        peer: 1,
                        src: 1,
                        ts: NOW,
                    },
                    Initiate {
                        peer: 2,
                        src: 2,
                        ts: NOW,
                    },
                    Initiate {
                        peer: 3,
                        src: 3,
                        ts: NOW,
                    },
                    Data {
                        peer: 1,
                        src: 1,
                        len: 5,
                    },
                ],
            ),
        ),
        (
            "timers",
            script(
                keepalive,
                vec![
                    Respond {
                        peer: 0,
                        src: 0,
                        which: 0,
                    },
                    AdvanceSecs(25),
                    AdvanceSecs(100),
                    ToDeadline,
                    ToDeadline,
                    AdvanceMs(4_000),
                    AdvanceSecs(600),
                    Send { peer: 0, len: 1 },
                ],
            ),
        ),
        (
            "forged",
            script(
                links(),
                vec![
                    Raw {
                        kind: 1,
                        flags: RAW_FIX_MAC1 | RAW_ZERO_EPHEMERAL,
                        bytes: vec![],
                    },
                    Raw {
                        kind: 1,
                        flags: RAW_FIX_MAC1,
                        bytes: vec![1, 2, 3],
                    },
                    Raw {
                        kind: 2,
                        flags: RAW_FIX_MAC1 | RAW_ZERO_EPHEMERAL | RAW_LIVE_INDEX,
                        bytes: vec![],
                    },
                    Raw {
                        kind: 3,
                        flags: RAW_LIVE_INDEX,
                        bytes: vec![],
                    },
                    Raw {
                        kind: 4,
                        flags: RAW_LIVE_INDEX,
                        bytes: vec![0; 40],
                    },
                    Load(true),
                    Raw {
                        kind: 1,
                        flags: RAW_FIX_MAC1,
                        bytes: vec![],
                    },
                ],
            ),
        ),
        (
            "replay",
            script(
                links(),
                vec![
                    Initiate {
                        peer: 0,
                        src: 0,
                        ts: NOW,
                    },
                    Replay {
                        which: 0,
                        flip_at: 0,
                        xor: 0,
                        fix_mac1: false,
                    },
                    AdvanceMs(30),
                    Replay {
                        which: 0,
                        flip_at: 5,
                        xor: 1,
                        fix_mac1: true,
                    },
                    Respond {
                        peer: 0,
                        src: 0,
                        which: 0,
                    },
                    Replay {
                        which: 0,
                        flip_at: 0,
                        xor: 0,
                        fix_mac1: false,
                    },
                    Data {
                        peer: 0,
                        src: 0,
                        len: 8,
                    },
                    Replay {
                        which: 0,
                        flip_at: 0,
                        xor: 0,
                        fix_mac1: false,
                    },
                    Replay {
                        which: 0,
                        flip_at: 20,
                        xor: 0x80,
                        fix_mac1: false,
                    },
                ],
            ),
        ),
        (
            "psk_mismatch",
            script(
                mismatch,
                vec![
                    Initiate {
                        peer: 0,
                        src: 0,
                        ts: NOW,
                    },
                    Respond {
                        peer: 0,
                        src: 0,
                        which: 0,
                    },
                ],
            ),
        ),
    ]
}

fn main() {
    let dir = std::env::args().nth(1).expect("usage: protocol_seeds DIR");
    std::fs::create_dir_all(&dir).expect("create the corpus directory");
    for (name, script) in seeds() {
        let bytes = script.encode();
        assert_eq!(Script::decode(&bytes), script, "{name} reads back");
        std::fs::write(format!("{dir}/seed-{name}"), bytes).expect("write a seed");
    }
}
