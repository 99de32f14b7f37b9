//! mac1, mac2 and cookie replies: verifying any message at any offset (huge ones included)
//! never panics and agrees exactly with mac1 computed here with BLAKE2s from the key; a message
//! the sending side stamps verifies, and under load asks for a cookie; a cookie reply from the
//! checker is accepted once, a forged one never, and the next stamp's mac2 then passes under
//! load for that source alone, until the secret rotates.
#![no_main]

use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use rovy_control::handshake::cookie::{
    COOKIE_SECRET_MAX_AGE, CookieChecker, CookieError, CookieJar, MacKeys, MacVerdict,
};
use rovy_dataplane::link_addr::LinkAddr;
use rovy_fuzz::mac::mac1 as reference_mac1;
use rovy_fuzz::rng::CountingRng;

#[derive(Debug, Arbitrary)]
struct Input {
    responder_key: [u8; 32],
    msg: Vec<u8>,
    offset: u16,
    /// Count `offset` down from `usize::MAX` instead.
    huge: bool,
    src: [u8; 16],
    src_v4: bool,
    port: u16,
    under_load: bool,
    nonce: [u8; 24],
    forged_reply: Vec<u8>,
    flip: u16,
}

fuzz_target!(|input: Input| {
    let now = Duration::from_secs(500);
    let mut rng = CountingRng(u64::from(input.port));
    let keys = MacKeys::new(&input.responder_key);
    let checker = CookieChecker::new(keys.clone(), now, &mut rng);
    let ip = if input.src_v4 {
        IpAddr::from([input.src[0], input.src[1], input.src[2], input.src[3]])
    } else {
        IpAddr::V6(Ipv6Addr::from(input.src))
    };
    let src_addr = LinkAddr::from(SocketAddr::new(ip, input.port));
    let src_input = src_addr.cookie_input();
    let src = src_input.as_bytes();
    let other_input =
        LinkAddr::from(SocketAddr::new(ip, input.port.wrapping_add(1))).cookie_input();
    let other_src = other_input.as_bytes();
    if let IpAddr::V6(v6) = ip
        && let Some(v4) = v6.to_ipv4_mapped()
    {
        let as_v4_input = LinkAddr::from(SocketAddr::new(v4.into(), input.port)).cookie_input();
        let as_v4 = as_v4_input.as_bytes();
        assert_eq!(checker.cookie(src), checker.cookie(as_v4), "mapped source");
    }

    // Any message, any offset.
    let offset = if input.huge {
        usize::MAX - usize::from(input.offset)
    } else {
        usize::from(input.offset)
    };
    let msg = &input.msg;
    let holds_macs = offset.checked_add(32).is_some_and(|end| end <= msg.len());
    let holds_mac1 = offset.checked_add(16).is_some_and(|end| end <= msg.len());
    let mac1_ok = holds_mac1
        && msg[offset..offset + 16] == reference_mac1(&input.responder_key, &msg[..offset]);
    assert_eq!(checker.verify_mac1(msg, offset), mac1_ok);
    let _ = checker.verify_mac2(msg, offset, src);
    let relaxed = checker.check(msg, offset, src, false);
    assert_eq!(
        relaxed,
        if mac1_ok {
            MacVerdict::Valid
        } else {
            MacVerdict::InvalidMac1
        }
    );
    let loaded = checker.check(msg, offset, src, input.under_load);
    assert_eq!(loaded == MacVerdict::InvalidMac1, !mac1_ok);

    // The sending side stamps the same message.
    let mut jar = CookieJar::new(keys);
    let mut stamped = msg.clone();
    let stamp = jar.stamp(now, &mut stamped, offset);
    assert_eq!(
        stamp.is_ok(),
        holds_macs,
        "stamp {offset} into {} bytes",
        msg.len()
    );
    if stamp.is_err() {
        assert_eq!(&stamped, msg, "a refused stamp wrote to the message");
        assert!(jar.consume_reply(now, &input.forged_reply).is_err());
        return;
    }
    let mac1: [u8; 16] = stamped[offset..offset + 16].try_into().unwrap();
    assert_eq!(mac1, reference_mac1(&input.responder_key, &msg[..offset]));
    assert_eq!(
        stamped[offset + 16..offset + 32],
        [0; 16],
        "mac2 without a cookie"
    );
    assert_eq!(stamped[..offset], msg[..offset]);
    assert_eq!(stamped[offset + 32..], msg[offset + 32..]);
    assert_eq!(
        checker.check(&stamped, offset, src, false),
        MacVerdict::Valid
    );
    assert_eq!(
        checker.check(&stamped, offset, src, true),
        MacVerdict::NeedsCookie
    );
    if offset > 0 {
        let mut flipped = stamped.clone();
        flipped[usize::from(input.flip) % offset] ^= 0x01;
        assert_eq!(
            checker.check(&flipped, offset, src, false),
            MacVerdict::InvalidMac1
        );
    }

    // A forged reply is refused; the checker's reply is accepted, once.
    assert!(
        jar.consume_reply(now, &input.forged_reply).is_err(),
        "forged cookie reply taken"
    );
    let reply = checker.make_cookie_reply(1, &mac1, src, input.nonce);
    assert_eq!(jar.consume_reply(now, &reply), Ok(()));
    assert_eq!(jar.consume_reply(now, &reply), Err(CookieError::NoMac1Sent));
    assert!(jar.has_valid_cookie(now));

    let mut with_cookie = msg.clone();
    jar.stamp(now, &mut with_cookie, offset).unwrap();
    assert_eq!(
        checker.check(&with_cookie, offset, src, true),
        MacVerdict::Mac2Valid
    );
    assert_eq!(
        checker.check(&with_cookie, offset, other_src, true),
        MacVerdict::NeedsCookie
    );
    assert!(checker.rotate_if_due(now + COOKIE_SECRET_MAX_AGE, &mut rng));
    assert_eq!(
        checker.check(&with_cookie, offset, src, true),
        MacVerdict::NeedsCookie
    );
});
