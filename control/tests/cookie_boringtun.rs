//! mac1, mac2 and cookie replies against boringtun, an implementation nobody here wrote: each
//! side's cookie reply must open on the other side, and the retried initiation must carry a mac2
//! the side under load accepts.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use boringtun::noise::rate_limiter::RateLimiter;
use boringtun::noise::{Tunn, TunnResult};
use boringtun::x25519::{PublicKey, StaticSecret};
use rand::SeedableRng as _;
use rand::rngs::StdRng;
use rovy_control::handshake::cookie::{CookieChecker, CookieJar, MacKeys, MacVerdict, mac1};
use rovy_dataplane::link_addr::{CookieInput, LinkAddr};

const INIT_LEN: usize = 148;
const MAC1_OFFSET: usize = 116;
const MAC2_OFFSET: usize = 132;
const RESPONSE_LEN: usize = 92;

struct Keys {
    initiator: StaticSecret,
    responder: StaticSecret,
}

impl Keys {
    fn new() -> Self {
        Self {
            initiator: StaticSecret::from([0x11; 32]),
            responder: StaticSecret::from([0x22; 32]),
        }
    }

    fn initiator_public(&self) -> PublicKey {
        PublicKey::from(&self.initiator)
    }

    fn responder_public(&self) -> PublicKey {
        PublicKey::from(&self.responder)
    }
}

/// The bytes a cookie for `addr` is made over, as our checker takes them.
fn input(addr: SocketAddr) -> CookieInput {
    LinkAddr::from(addr).cookie_input()
}

fn source() -> SocketAddr {
    SocketAddr::from((Ipv4Addr::new(198, 51, 100, 4), 40000))
}

fn initiation(tunn: &mut Tunn, force_resend: bool) -> Vec<u8> {
    let mut buf = [0u8; 2048];
    match tunn.format_handshake_initiation(&mut buf, force_resend) {
        TunnResult::WriteToNetwork(packet) => packet.to_vec(),
        other => panic!("boringtun made no initiation: {other:?}"),
    }
}

fn sender_index(msg: &[u8]) -> u32 {
    u32::from_le_bytes(msg[4..8].try_into().unwrap())
}

/// boringtun initiates; we are the responder under load.
#[test]
fn boringtun_initiator_honours_our_cookie_reply() {
    let keys = Keys::new();
    let mut rng = StdRng::seed_from_u64(1);
    let now = Duration::from_secs(1000);
    let checker = CookieChecker::new(
        MacKeys::new(keys.responder_public().as_bytes()),
        now,
        &mut rng,
    );
    let mut tunn = Tunn::new(
        keys.initiator.clone(),
        keys.responder_public(),
        None,
        None,
        1,
        None,
    );

    let first = initiation(&mut tunn, false);
    assert_eq!(first.len(), INIT_LEN);
    assert_eq!(
        checker.check(&first, MAC1_OFFSET, input(source()).as_bytes(), false),
        MacVerdict::Valid
    );
    assert_eq!(
        checker.check(&first, MAC1_OFFSET, input(source()).as_bytes(), true),
        MacVerdict::NeedsCookie
    );
    let wrong_keys = MacKeys::new(keys.initiator_public().as_bytes());
    assert_ne!(
        mac1(&wrong_keys, &first[..MAC1_OFFSET]),
        first[MAC1_OFFSET..MAC2_OFFSET]
    );

    let first_mac1: [u8; 16] = first[MAC1_OFFSET..MAC2_OFFSET].try_into().unwrap();
    let reply = checker.make_cookie_reply(
        sender_index(&first),
        &first_mac1,
        input(source()).as_bytes(),
        [0x5a; 24],
    );
    let mut buf = [0u8; 2048];
    match tunn.decapsulate(Some(source().ip()), &reply, &mut buf) {
        TunnResult::Done => {}
        other => panic!("boringtun refused our cookie reply: {other:?}"),
    }

    let retry = initiation(&mut tunn, true);
    assert_ne!(
        retry[MAC2_OFFSET..],
        [0u8; 16],
        "boringtun now sends a mac2"
    );
    assert_eq!(
        checker.check(&retry, MAC1_OFFSET, input(source()).as_bytes(), true),
        MacVerdict::Mac2Valid
    );
    let elsewhere = SocketAddr::from((Ipv4Addr::new(198, 51, 100, 5), 40000));
    assert_eq!(
        checker.check(&retry, MAC1_OFFSET, input(elsewhere).as_bytes(), true),
        MacVerdict::NeedsCookie
    );
}

/// We send (stamping boringtun's initiation with our jar); a boringtun responder is under load.
#[test]
fn our_jar_opens_boringtun_cookie_reply_and_passes_its_mac2_check() {
    let keys = Keys::new();
    let responder_public = keys.responder_public();
    let mut initiator = Tunn::new(
        keys.initiator.clone(),
        responder_public,
        None,
        None,
        1,
        None,
    );
    let always_under_load = Arc::new(RateLimiter::new(&responder_public, 0));
    let mut responder = Tunn::new(
        keys.responder.clone(),
        keys.initiator_public(),
        None,
        None,
        2,
        Some(always_under_load),
    );
    let src_ip = IpAddr::from([198, 51, 100, 4]);
    let now = Duration::from_secs(50);

    let original = initiation(&mut initiator, false);
    let mut msg = original.clone();
    let mut jar = CookieJar::new(MacKeys::new(responder_public.as_bytes()));
    jar.stamp(now, &mut msg, MAC1_OFFSET).unwrap();
    assert_eq!(
        msg, original,
        "same mac1 as boringtun's, zero mac2 without a cookie"
    );

    let mut buf = [0u8; 2048];
    let reply = match responder.decapsulate(Some(src_ip), &msg, &mut buf) {
        TunnResult::WriteToNetwork(packet) => packet.to_vec(),
        other => panic!("boringtun under load sent no cookie reply: {other:?}"),
    };
    assert_eq!(reply.len(), 64);
    assert_eq!(reply[..4], [3, 0, 0, 0]);
    assert_eq!(reply[4..8], sender_index(&msg).to_le_bytes());

    let mut tampered = reply.clone();
    tampered[40] ^= 1;
    assert!(jar.consume_reply(now, &tampered).is_err());
    jar.consume_reply(now, &reply).unwrap();
    assert!(jar.has_valid_cookie(now));

    jar.stamp(now, &mut msg, MAC1_OFFSET).unwrap();
    assert_eq!(msg[..MAC2_OFFSET], original[..MAC2_OFFSET]);
    assert_ne!(msg[MAC2_OFFSET..], [0u8; 16]);
    match responder.decapsulate(Some(src_ip), &msg, &mut buf) {
        TunnResult::WriteToNetwork(packet) => {
            assert_eq!(
                packet.len(),
                RESPONSE_LEN,
                "a handshake response, not another cookie"
            );
            assert_eq!(packet[..4], [2, 0, 0, 0]);
        }
        other => panic!("boringtun did not accept our mac2: {other:?}"),
    }
}
