//! The sans-IO protocol, `LinkEndpoint::handle_datagram` and its timers, driven by a script of
//! ops (`rovy_fuzz::script`): peers the harness plays send initiations, answer the endpoint's,
//! send cookie replies and data, replay and tamper with what they sent, and send bytes from
//! nowhere with mac1 fixed up; the clock moves by the fuzzer's steps and the timers fire. The
//! harness signs everything with the endpoint's real mac1 and the peers' own handshake states,
//! so messages get past the mac1 check and the Noise checks after it; fuzz builds swap X25519
//! for a cheap stand-in (`rovy_control`'s `fuzzing_dh`) so millions of handshakes run.
//!
//! Every outcome is checked against what the protocol says (see `harness.rs`): an initiation
//! is answered exactly when its key is admitted and its timestamp passes the replay rule, with
//! a response of the right type, length, indices and MACs that the initiator can complete
//! (exactly when the preshared keys agree); under load without a valid mac2 it gets a cookie
//! reply and nothing else happens; a response completes only the handshake in flight it
//! answers; a cookie reply is taken only for the endpoint's last message to that peer; data
//! opens exactly on a session the endpoint holds and has not expired; nothing the harness did
//! not seal, no tampered message and no message accepted before is ever accepted; a rejected
//! message changes no tunnel; the tunnel count stays within the admission's cap; the index
//! table holds every session and handshake in flight of the tunnel it names; the timers leave
//! no deadline in the past; and every transmission is a well-formed initiation the peer can
//! read (timestamps rising, mac2 exactly when a cookie is held) or a keepalive it can open.
#![no_main]

#[path = "protocol/harness.rs"]
mod harness;

use libfuzzer_sys::fuzz_target;
use rovy_fuzz::script::Script;

fuzz_target!(|script: Script| {
    let mut harness = harness::Harness::new(&script.setup);
    for op in script.ops {
        harness.play(op);
        harness.check_consistent();
    }
});
