//! Unit tests of mac1/mac2, cookie secrets, cookie replies and the jar's cookie lifetime.

use super::*;
use rand::SeedableRng as _;
use rand::rngs::StdRng;
use rovy_dataplane::link_addr::{CookieInput, LinkAddr};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV6};

const INIT_LEN: usize = 148;
const MAC1_OFFSET: usize = 116;
const MAC2_OFFSET: usize = 132;
const RESPONDER_PK: [u8; 32] = [0x42; 32];
const NONCE: [u8; NONCE_LEN] = [0x17; NONCE_LEN];

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

/// The cookie input of a UDP source.
fn input(addr: SocketAddr) -> CookieInput {
    LinkAddr::from(addr).cookie_input()
}

fn src() -> CookieInput {
    input(SocketAddr::from((Ipv4Addr::new(192, 0, 2, 7), 51820)))
}

fn initiation() -> [u8; INIT_LEN] {
    let mut msg = [0u8; INIT_LEN];
    for (i, b) in msg.iter_mut().enumerate() {
        *b = i as u8;
    }
    msg[..4].copy_from_slice(&1u32.to_le_bytes());
    msg
}

fn setup() -> (CookieChecker, CookieJar, StdRng) {
    let mut rng = StdRng::seed_from_u64(7);
    let checker = CookieChecker::new(MacKeys::new(&RESPONDER_PK), secs(0), &mut rng);
    let jar = CookieJar::new(MacKeys::new(&RESPONDER_PK));
    (checker, jar, rng)
}

fn mac1_of(msg: &[u8; INIT_LEN]) -> [u8; MAC_LEN] {
    msg[MAC1_OFFSET..MAC2_OFFSET].try_into().unwrap()
}

/// Stamps a fresh initiation at `now`, answers it with a cookie reply for `src()` and feeds
/// the reply back into the jar.
fn obtain_cookie(checker: &CookieChecker, jar: &mut CookieJar, now: Duration) {
    let mut msg = initiation();
    jar.stamp(now, &mut msg, MAC1_OFFSET).unwrap();
    let reply = checker.make_cookie_reply(9, &mac1_of(&msg), src().as_bytes(), NONCE);
    jar.consume_reply(now, &reply).unwrap();
}

#[test]
fn mac_keys_hash_label_then_key() {
    let keys = MacKeys::new(&RESPONDER_PK);
    let mut input = b"mac1----".to_vec();
    input.extend_from_slice(&RESPONDER_PK);
    assert_eq!(keys.mac1_key, <[u8; 32]>::from(Blake2s256::digest(&input)));
    input[..8].copy_from_slice(b"cookie--");
    assert_eq!(
        keys.cookie_key,
        <[u8; 32]>::from(Blake2s256::digest(&input))
    );
    assert_ne!(keys, MacKeys::new(&[0x43; 32]));
}

#[test]
fn cookie_round_trip_gives_valid_mac2() {
    let (checker, mut jar, _) = setup();
    let mut msg = initiation();
    jar.stamp(secs(1), &mut msg, MAC1_OFFSET).unwrap();
    assert_eq!(&msg[..MAC1_OFFSET], &initiation()[..MAC1_OFFSET]);
    assert_eq!(
        mac1_of(&msg),
        mac1(&MacKeys::new(&RESPONDER_PK), &msg[..MAC1_OFFSET])
    );
    assert_eq!(msg[MAC2_OFFSET..], [0u8; MAC_LEN]);
    assert!(!jar.has_valid_cookie(secs(1)));

    assert_eq!(
        checker.check(&msg, MAC1_OFFSET, src().as_bytes(), false),
        MacVerdict::Valid
    );
    assert_eq!(
        checker.check(&msg, MAC1_OFFSET, src().as_bytes(), true),
        MacVerdict::NeedsCookie
    );

    let reply = checker.make_cookie_reply(0xa1b2_c3d4, &mac1_of(&msg), src().as_bytes(), NONCE);
    assert_eq!(reply[..8], [3, 0, 0, 0, 0xd4, 0xc3, 0xb2, 0xa1]);
    assert_eq!(reply[8..32], NONCE);
    assert_ne!(
        reply[32..48],
        checker.cookie(src().as_bytes()),
        "cookie travels encrypted"
    );
    jar.consume_reply(secs(2), &reply).unwrap();
    assert!(jar.has_valid_cookie(secs(2)));

    jar.stamp(secs(3), &mut msg, MAC1_OFFSET).unwrap();
    assert_eq!(
        msg[MAC2_OFFSET..],
        mac2(&checker.cookie(src().as_bytes()), &msg[..MAC2_OFFSET])
    );
    assert_eq!(
        checker.check(&msg, MAC1_OFFSET, src().as_bytes(), true),
        MacVerdict::Mac2Valid
    );
    assert_eq!(
        checker.check(&msg, MAC1_OFFSET, src().as_bytes(), false),
        MacVerdict::Valid
    );

    let other_port = SocketAddr::from((Ipv4Addr::new(192, 0, 2, 7), 51821));
    let other_ip = SocketAddr::from((Ipv4Addr::new(192, 0, 2, 8), 51820));
    for elsewhere in [other_port, other_ip] {
        assert_eq!(
            checker.check(&msg, MAC1_OFFSET, input(elsewhere).as_bytes(), true),
            MacVerdict::NeedsCookie
        );
    }
}

#[test]
fn wrong_mac1_is_rejected_before_mac2() {
    let (checker, mut jar, _) = setup();
    obtain_cookie(&checker, &mut jar, secs(0));
    let mut msg = initiation();
    jar.stamp(secs(0), &mut msg, MAC1_OFFSET).unwrap();
    for flip in [0, 40, MAC1_OFFSET - 1, MAC1_OFFSET, MAC2_OFFSET - 1] {
        let mut bad = msg;
        bad[flip] ^= 1;
        for under_load in [false, true] {
            assert_eq!(
                checker.check(&bad, MAC1_OFFSET, src().as_bytes(), under_load),
                MacVerdict::InvalidMac1,
                "byte {flip} flipped"
            );
        }
    }
    let mut bad_mac2 = msg;
    bad_mac2[INIT_LEN - 1] ^= 1;
    assert_eq!(
        checker.check(&bad_mac2, MAC1_OFFSET, src().as_bytes(), false),
        MacVerdict::Valid
    );
    assert_eq!(
        checker.check(&bad_mac2, MAC1_OFFSET, src().as_bytes(), true),
        MacVerdict::NeedsCookie
    );

    let mut other = CookieJar::new(MacKeys::new(&[0x43; 32]));
    let mut to_other = initiation();
    other.stamp(secs(0), &mut to_other, MAC1_OFFSET).unwrap();
    assert!(!checker.verify_mac1(&to_other, MAC1_OFFSET));
}

#[test]
fn truncated_messages_fail_without_panicking() {
    let (checker, mut jar, _) = setup();
    obtain_cookie(&checker, &mut jar, secs(0));
    let mut msg = initiation();
    jar.stamp(secs(0), &mut msg, MAC1_OFFSET).unwrap();
    assert!(checker.verify_mac1(&msg, MAC1_OFFSET));
    assert!(checker.verify_mac2(&msg, MAC2_OFFSET, src().as_bytes()));
    for len in [0, 1, MAC1_OFFSET, MAC2_OFFSET - 1] {
        assert!(!checker.verify_mac1(&msg[..len], MAC1_OFFSET), "len {len}");
    }
    assert!(!checker.verify_mac2(&msg[..INIT_LEN - 1], MAC2_OFFSET, src().as_bytes()));
    assert!(checker.verify_mac1(&msg[..MAC2_OFFSET], MAC1_OFFSET));
    assert_eq!(
        checker.check(&msg[..INIT_LEN - 1], MAC1_OFFSET, src().as_bytes(), true),
        MacVerdict::NeedsCookie
    );
    for offset in [INIT_LEN, usize::MAX - 8, usize::MAX] {
        assert_eq!(
            checker.check(&msg, offset, src().as_bytes(), true),
            MacVerdict::InvalidMac1
        );
        assert!(!checker.verify_mac2(&msg, offset, src().as_bytes()));
    }
}

#[test]
fn stamp_refuses_messages_without_room_for_macs() {
    let (_, mut jar, _) = setup();
    let mut short = [0u8; INIT_LEN - 1];
    assert_eq!(
        jar.stamp(secs(0), &mut short, MAC1_OFFSET),
        Err(CookieError::MessageTooShort {
            len: INIT_LEN - 1,
            mac1_offset: MAC1_OFFSET
        })
    );
    let mut msg = initiation();
    for offset in [INIT_LEN - 31, usize::MAX - 16, usize::MAX] {
        assert_eq!(
            jar.stamp(secs(0), &mut msg, offset),
            Err(CookieError::MessageTooShort {
                len: INIT_LEN,
                mac1_offset: offset
            })
        );
    }
    assert_eq!(msg, initiation(), "a refused stamp writes nothing");
}

#[test]
fn malformed_or_unexpected_replies_are_refused() {
    let (checker, mut jar, _) = setup();
    let mut msg = initiation();
    let reply = checker.make_cookie_reply(9, &[0u8; MAC_LEN], src().as_bytes(), NONCE);
    assert_eq!(
        jar.consume_reply(secs(0), &reply),
        Err(CookieError::NoMac1Sent)
    );

    jar.stamp(secs(0), &mut msg, MAC1_OFFSET).unwrap();
    let good = checker.make_cookie_reply(9, &mac1_of(&msg), src().as_bytes(), NONCE);
    for len in [0, 63, 65, 148] {
        let mut bytes = good.to_vec();
        bytes.resize(len, 0);
        assert_eq!(
            jar.consume_reply(secs(0), &bytes),
            Err(CookieError::ReplyLength(len))
        );
    }
    let zeros = [0u8; COOKIE_REPLY_LEN];
    assert_eq!(
        jar.consume_reply(secs(0), &zeros),
        Err(CookieError::ReplyType(0))
    );
    let mut wrong_type = good;
    wrong_type[0] = 2;
    assert_eq!(
        jar.consume_reply(secs(0), &wrong_type),
        Err(CookieError::ReplyType(2))
    );
    wrong_type[0] = 3;
    wrong_type[3] = 1;
    assert_eq!(
        jar.consume_reply(secs(0), &wrong_type),
        Err(CookieError::ReplyType(0x0100_0003))
    );

    let wrong_aad = checker.make_cookie_reply(9, &[0u8; MAC_LEN], src().as_bytes(), NONCE);
    assert_eq!(
        jar.consume_reply(secs(0), &wrong_aad),
        Err(CookieError::Decrypt)
    );
    for flip in [8, 31, 32, 47, 48, 63] {
        let mut tampered = good;
        tampered[flip] ^= 0x80;
        assert_eq!(
            jar.consume_reply(secs(0), &tampered),
            Err(CookieError::Decrypt),
            "{flip}"
        );
    }
    let mut rng = StdRng::seed_from_u64(8);
    let impostor = CookieChecker::new(MacKeys::new(&[0x43; 32]), secs(0), &mut rng);
    let foreign = impostor.make_cookie_reply(9, &mac1_of(&msg), src().as_bytes(), NONCE);
    assert_eq!(
        jar.consume_reply(secs(0), &foreign),
        Err(CookieError::Decrypt)
    );
    assert!(
        !jar.has_valid_cookie(secs(0)),
        "failed replies leave no cookie"
    );

    jar.consume_reply(secs(1), &good).unwrap();
    assert_eq!(
        jar.consume_reply(secs(100), &good),
        Err(CookieError::NoMac1Sent)
    );
    assert!(
        !jar.has_valid_cookie(secs(116)),
        "a replayed reply must not refresh the cookie"
    );
}

#[test]
fn secret_rotation_invalidates_old_cookies() {
    let (checker, mut jar, mut rng) = setup();
    obtain_cookie(&checker, &mut jar, secs(0));
    let old_cookie = checker.cookie(src().as_bytes());
    let mut msg = initiation();
    jar.stamp(secs(100), &mut msg, MAC1_OFFSET).unwrap();
    assert_eq!(
        checker.check(&msg, MAC1_OFFSET, src().as_bytes(), true),
        MacVerdict::Mac2Valid
    );

    let just_before = COOKIE_SECRET_MAX_AGE - Duration::from_nanos(1);
    assert!(!checker.rotate_if_due(just_before, &mut rng));
    assert_eq!(checker.cookie(src().as_bytes()), old_cookie);
    assert!(checker.rotate_if_due(COOKIE_SECRET_MAX_AGE, &mut rng));
    assert_ne!(checker.cookie(src().as_bytes()), old_cookie);
    assert_eq!(
        checker.check(&msg, MAC1_OFFSET, src().as_bytes(), true),
        MacVerdict::NeedsCookie
    );
    assert!(
        !checker.rotate_if_due(secs(239), &mut rng),
        "age counts from the rotation"
    );
    assert!(checker.rotate_if_due(secs(240), &mut rng));
}

#[test]
fn shared_checkers_agree_on_cookies_and_rotate_together() {
    let (checker, mut jar, mut rng) = setup();
    let shared = checker.share();
    obtain_cookie(&shared, &mut jar, secs(0));
    let mut msg = initiation();
    jar.stamp(secs(1), &mut msg, MAC1_OFFSET).unwrap();
    assert_eq!(
        checker.check(&msg, MAC1_OFFSET, src().as_bytes(), true),
        MacVerdict::Mac2Valid,
        "a cookie the sharing checker handed out"
    );
    assert!(shared.rotate_if_due(COOKIE_SECRET_MAX_AGE, &mut rng));
    assert!(
        !checker.rotate_if_due(COOKIE_SECRET_MAX_AGE, &mut rng),
        "the other one's rotation counts"
    );
    assert_eq!(
        checker.check(&msg, MAC1_OFFSET, src().as_bytes(), true),
        MacVerdict::NeedsCookie
    );
    assert_eq!(
        checker.cookie(src().as_bytes()),
        shared.cookie(src().as_bytes())
    );
}

#[test]
fn a_reply_to_a_message_is_one_its_sender_accepts() {
    let (checker, mut jar, _) = setup();
    let mut msg = initiation();
    jar.stamp(secs(0), &mut msg, MAC1_OFFSET).unwrap();
    let reply = checker
        .reply_to(&msg, MAC1_OFFSET, src().as_bytes(), NONCE)
        .unwrap();
    assert_eq!(
        reply[4..8],
        msg[4..8],
        "addressed to the message's sender index"
    );
    jar.consume_reply(secs(0), &reply).unwrap();
    assert!(jar.has_valid_cookie(secs(1)));
    assert_eq!(
        checker.reply_to(&msg[..100], MAC1_OFFSET, src().as_bytes(), NONCE),
        None
    );
}

#[test]
fn jar_uses_a_cookie_for_115_seconds() {
    let (checker, mut jar, _) = setup();
    obtain_cookie(&checker, &mut jar, secs(10));
    let last_valid = secs(10 + 115) - Duration::from_nanos(1);
    assert!(jar.has_valid_cookie(last_valid));
    let mut msg = initiation();
    jar.stamp(last_valid, &mut msg, MAC1_OFFSET).unwrap();
    assert!(checker.verify_mac2(&msg, MAC2_OFFSET, src().as_bytes()));

    assert!(!jar.has_valid_cookie(secs(125)));
    jar.stamp(secs(125), &mut msg, MAC1_OFFSET).unwrap();
    assert_eq!(msg[MAC2_OFFSET..], [0u8; MAC_LEN]);
    assert!(
        !jar.has_valid_cookie(secs(9)),
        "a clock before receipt is not trusted"
    );
}

#[test]
fn cookie_is_mac_of_ip_then_port_big_endian() {
    let (checker, _, _) = setup();
    let v4 = SocketAddr::from((Ipv4Addr::new(192, 0, 2, 7), 0x1234));
    let expected =
        finish(mac_state(&checker.current().secret).chain_update([192, 0, 2, 7, 0x12, 0x34]));
    assert_eq!(checker.cookie(input(v4).as_bytes()), expected);

    let mapped = SocketAddrV6::new(Ipv4Addr::new(192, 0, 2, 7).to_ipv6_mapped(), 0x1234, 0, 0);
    assert_eq!(
        checker.cookie(input(SocketAddr::from(mapped)).as_bytes()),
        expected
    );

    let v6_ip = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);
    let mut v6_bytes = v6_ip.octets().to_vec();
    v6_bytes.extend_from_slice(&[0x12, 0x34]);
    let v6 = SocketAddr::from((v6_ip, 0x1234));
    assert_eq!(
        checker.cookie(input(v6).as_bytes()),
        finish(mac_state(&checker.current().secret).chain_update(&v6_bytes))
    );
}
