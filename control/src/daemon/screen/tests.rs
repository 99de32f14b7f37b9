//! The screen against the peer's side of mac1/mac2 (a cookie jar for our key).

use super::*;
use crate::handshake::cookie::{CookieJar, MacKeys};
use rand::SeedableRng as _;
use rand::rngs::StdRng;
use rovy_dataplane::wire::{INITIATION_LEN, RESPONSE_LEN};
use std::net::SocketAddr;

const OURS: [u8; 32] = [0x42; 32];
const THRESHOLD: usize = 8;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn src() -> LinkAddr {
    LinkAddr::from(SocketAddr::from(([192, 0, 2, 7], 51820)))
}

/// The endpoint's checker, and a screen sharing its secret.
fn setup() -> (CookieChecker, LinkScreen) {
    let checker = CookieChecker::new(MacKeys::new(&OURS), ms(0), &mut StdRng::seed_from_u64(3));
    let screen = LinkScreen::new(checker.share(), Arc::new(Load::new(THRESHOLD)));
    (checker, screen)
}

/// A handshake message of `kind` and `len` with arbitrary content, stamped by `jar`.
fn message(kind: u8, len: usize, jar: &mut CookieJar, now: Duration) -> Vec<u8> {
    let mut msg: Vec<u8> = (0..len).map(|i| (i * 7) as u8).collect();
    msg[..4].copy_from_slice(&[kind, 0, 0, 0]);
    let mac1_offset = if kind == 1 {
        INITIATION_MAC1_OFFSET
    } else {
        RESPONSE_MAC1_OFFSET
    };
    jar.stamp(now, &mut msg, mac1_offset).unwrap();
    msg
}

#[test]
fn not_under_load_only_a_valid_mac1_is_queued() {
    let (_, screen) = setup();
    let mut jar = CookieJar::new(MacKeys::new(&OURS));
    for (kind, len) in [(1, INITIATION_LEN), (2, RESPONSE_LEN)] {
        let mut msg = message(kind, len, &mut jar, ms(0));
        assert_eq!(
            screen.screen(ms(0), &src(), &mut msg, THRESHOLD),
            Screened::Queue
        );
        msg[10] ^= 1;
        assert_eq!(
            screen.screen(ms(0), &src(), &mut msg, 0),
            Screened::Drop(DropReason::InvalidMac1)
        );
    }
    let mut short = vec![1, 0, 0, 0, 9];
    assert_eq!(
        screen.screen(ms(0), &src(), &mut short, 0),
        Screened::Drop(DropReason::BadLength)
    );
    let mut cookie_reply = vec![3, 0, 0, 0];
    cookie_reply.resize(64, 0);
    assert_eq!(
        screen.screen(ms(0), &src(), &mut cookie_reply, THRESHOLD + 1),
        Screened::Queue
    );
}

/// The flood's case: with the queue past its threshold, an initiation without mac2 is
/// answered in place with a cookie reply its sender accepts, and its next initiation, with a
/// mac2 from that cookie, is queued and valid at the endpoint's own checker.
#[test]
fn under_load_answers_with_a_cookie_the_endpoint_accepts() {
    let (checker, screen) = setup();
    let mut jar = CookieJar::new(MacKeys::new(&OURS));
    let mut first = message(1, INITIATION_LEN, &mut jar, ms(0));
    let verdict = screen.screen(ms(0), &src(), &mut first, THRESHOLD + 1);
    assert_eq!(
        verdict,
        Screened::Reply {
            len: COOKIE_REPLY_LEN
        }
    );
    jar.consume_reply(ms(1), &first[..COOKIE_REPLY_LEN])
        .unwrap();

    let mut second = message(1, INITIATION_LEN, &mut jar, ms(5));
    assert_eq!(
        screen.screen(ms(5), &src(), &mut second, 1024),
        Screened::QueueReserved
    );
    let input = src().cookie_input();
    assert_eq!(
        checker.check(&second, INITIATION_MAC1_OFFSET, input.as_bytes(), true),
        MacVerdict::Mac2Valid
    );
    let other = LinkAddr::from(SocketAddr::from(([192, 0, 2, 8], 51820)));
    let mut moved = second.clone();
    assert_eq!(
        screen.screen(ms(5), &other, &mut moved, 1024),
        Screened::Reply {
            len: COOKIE_REPLY_LEN
        },
        "a cookie is good only for the address it was given to"
    );
}

/// Past the workers' budget a message without mac2 goes to control (which may still answer
/// it); the budget comes back with time, and no two replies share a nonce.
#[test]
fn cookie_replies_stay_within_the_workers_budget() {
    let (_, screen) = setup();
    let mut jar = CookieJar::new(MacKeys::new(&OURS));
    let flood = message(1, INITIATION_LEN, &mut jar, ms(0));
    let mut nonces = std::collections::HashSet::new();
    let mut screen_at = |at| {
        let mut msg = flood.clone();
        let verdict = screen.screen(at, &src(), &mut msg, 1024);
        if verdict != Screened::Queue {
            assert!(nonces.insert(msg[8..32].to_vec()), "a nonce used twice");
        }
        verdict
    };
    let burst = usize::try_from(WORKER_COOKIE_BURST).unwrap();
    for _ in 0..burst {
        assert_eq!(
            screen_at(ms(10)),
            Screened::Reply {
                len: COOKIE_REPLY_LEN
            }
        );
    }
    assert_eq!(screen_at(ms(10)), Screened::Queue, "the burst is spent");
    let per_ms = WORKER_COOKIES_PER_SECOND / 1000;
    let answered = (0..2 * per_ms)
        .filter(|_| screen_at(ms(11)) != Screened::Queue)
        .count();
    assert_eq!(
        answered as u64, per_ms,
        "a millisecond later, a millisecond's worth"
    );
}

#[test]
fn load_lasts_a_second_after_the_queue_was_past_its_threshold() {
    let load = Load::new(THRESHOLD);
    assert!(!load.under_load(ms(0), THRESHOLD));
    assert!(load.under_load(ms(10), THRESHOLD + 1));
    assert!(load.under_load(ms(1009), 0));
    assert!(!load.under_load(ms(1010), 0));
    assert!(load.under_load(ms(2000), THRESHOLD + 1));
    assert!(load.under_load(ms(1500), 0), "a late reader of the clock");
}
