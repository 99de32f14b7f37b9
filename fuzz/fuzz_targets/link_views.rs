//! Link message views: `message_type` and every `new_checked` view take any bytes without
//! panicking, agree with each other, and a checked view's accessors return exactly the bytes
//! at the WireGuard protocol's offsets (written out here, not taken from the views).
#![no_main]

use libfuzzer_sys::fuzz_target;
use rovy_dataplane::DropReason;
use rovy_dataplane::wire::{
    CookieReply, DataHeader, Initiation, MessageType, Response, message_type,
};

fn le32(buf: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(buf[at..at + 4].try_into().unwrap())
}

/// What the protocol says a datagram is, from its type word and length alone.
fn expected_type(buf: &[u8]) -> Result<MessageType, DropReason> {
    if buf.len() < 4 {
        return Err(DropReason::Truncated);
    }
    let (kind, len) = match le32(buf, 0) {
        1 => (MessageType::Initiation, 148),
        2 => (MessageType::Response, 92),
        3 => (MessageType::CookieReply, 64),
        4 if buf.len() >= 32 => return Ok(MessageType::Data),
        4 => return Err(DropReason::Truncated),
        _ => return Err(DropReason::UnknownType),
    };
    if buf.len() == len {
        Ok(kind)
    } else {
        Err(DropReason::BadLength)
    }
}

fuzz_target!(|buf: &[u8]| {
    let kind = message_type(buf);
    assert_eq!(kind, expected_type(buf));
    let is = |k: MessageType| kind == Ok(k);

    let initiation = Initiation::new_checked(buf);
    assert_eq!(initiation.is_ok(), is(MessageType::Initiation));
    if let Ok(m) = initiation {
        assert_eq!(m.sender_index(), le32(buf, 4));
        assert_eq!(&m.ephemeral()[..], &buf[8..40]);
        assert_eq!(&m.encrypted_static()[..], &buf[40..88]);
        assert_eq!(&m.encrypted_timestamp()[..], &buf[88..116]);
        assert_eq!(&m.noise_payload()[..], &buf[8..116]);
        assert_eq!(&m.mac1()[..], &buf[116..132]);
        assert_eq!(&m.mac2()[..], &buf[132..148]);
        assert_eq!(&m.mac1_input()[..], &buf[..116]);
        assert_eq!(&m.mac2_input()[..], &buf[..132]);
    }

    let response = Response::new_checked(buf);
    assert_eq!(response.is_ok(), is(MessageType::Response));
    if let Ok(m) = response {
        assert_eq!(m.sender_index(), le32(buf, 4));
        assert_eq!(m.receiver_index(), le32(buf, 8));
        assert_eq!(&m.ephemeral()[..], &buf[12..44]);
        assert_eq!(&m.encrypted_nothing()[..], &buf[44..60]);
        assert_eq!(&m.noise_payload()[..], &buf[12..60]);
        assert_eq!(&m.mac1()[..], &buf[60..76]);
        assert_eq!(&m.mac2()[..], &buf[76..92]);
        assert_eq!(&m.mac1_input()[..], &buf[..60]);
        assert_eq!(&m.mac2_input()[..], &buf[..76]);
    }

    let cookie = CookieReply::new_checked(buf);
    assert_eq!(cookie.is_ok(), is(MessageType::CookieReply));
    if let Ok(m) = cookie {
        assert_eq!(m.receiver_index(), le32(buf, 4));
        assert_eq!(&m.nonce()[..], &buf[8..32]);
        assert_eq!(&m.encrypted_cookie()[..], &buf[32..64]);
    }

    let data = DataHeader::new_checked(buf);
    assert_eq!(data.is_ok(), is(MessageType::Data));
    if let Ok(m) = data {
        assert_eq!(m.receiver_index(), le32(buf, 4));
        assert_eq!(
            m.counter(),
            u64::from_le_bytes(buf[8..16].try_into().unwrap())
        );
        assert_eq!(m.payload(), &buf[16..]);
    }

    // A view refusing the bytes says why, consistently with `message_type`.
    if let Err(reason) = kind {
        assert_eq!(Initiation::new_checked(buf).err(), Some(reason));
        assert_eq!(DataHeader::new_checked(buf).err(), Some(reason));
    } else if !is(MessageType::Data) {
        assert_eq!(
            DataHeader::new_checked(buf).err(),
            Some(DropReason::UnknownType)
        );
    }
});
