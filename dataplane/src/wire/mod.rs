//! Zero-copy views over the bytes on the wire.
//!
//! Parsing is checked: a view built with `new_checked` has been verified to be long enough for
//! every accessor, so nothing that arrives from the network can make an accessor panic.
//! Emitting is unchecked: the caller owns the buffer, sizes it from the `*_LEN` constants and
//! writes fields through the setters.

pub mod frame;
pub mod icmpv6;
pub mod ip;
mod link;

pub use link::{
    CookieReply, DataHeader, INITIATION_MAC1_OFFSET, INITIATION_MAC2_OFFSET, Initiation,
    RESPONSE_MAC1_OFFSET, RESPONSE_MAC2_OFFSET, Response,
};

use crate::DropReason;

/// Size of a handshake initiation.
pub const INITIATION_LEN: usize = 148;
/// Size of a handshake response.
pub const RESPONSE_LEN: usize = 92;
/// Size of a cookie reply.
pub const COOKIE_REPLY_LEN: usize = 64;
/// Size of the header in front of a data message's ciphertext.
pub const DATA_HEADER_LEN: usize = 16;
/// Size of a ChaCha20-Poly1305 authentication tag.
pub const TAG_LEN: usize = 16;
/// Size of a keepalive: a data message with an empty plaintext, and the smallest data message.
pub const KEEPALIVE_LEN: usize = DATA_HEADER_LEN + TAG_LEN;

/// The four WireGuard message kinds. On the wire the type is one byte followed by three zero
/// bytes, read together as a little-endian `u32`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum MessageType {
    /// Handshake initiation, [`INITIATION_LEN`] bytes.
    Initiation = 1,
    /// Handshake response, [`RESPONSE_LEN`] bytes.
    Response = 2,
    /// Cookie reply, [`COOKIE_REPLY_LEN`] bytes.
    CookieReply = 3,
    /// Transport data, at least [`KEEPALIVE_LEN`] bytes.
    Data = 4,
}

impl MessageType {
    /// The 4-byte type word as it appears on the wire.
    pub const fn to_wire(self) -> [u8; 4] {
        (self as u32).to_le_bytes()
    }
}

/// Classifies a datagram by its type word and checks its length for that type.
///
/// Handshake messages have exact sizes ([`DropReason::BadLength`] otherwise); data messages must
/// hold at least a header and a tag ([`DropReason::Truncated`] otherwise). A type word other than
/// 1..=4, including a known type with non-zero reserved bytes, is [`DropReason::UnknownType`].
pub fn message_type(buf: &[u8]) -> Result<MessageType, DropReason> {
    let word = buf.first_chunk::<4>().ok_or(DropReason::Truncated)?;
    let kind = match u32::from_le_bytes(*word) {
        1 => MessageType::Initiation,
        2 => MessageType::Response,
        3 => MessageType::CookieReply,
        4 => MessageType::Data,
        _ => return Err(DropReason::UnknownType),
    };
    let exact = match kind {
        MessageType::Initiation => INITIATION_LEN,
        MessageType::Response => RESPONSE_LEN,
        MessageType::CookieReply => COOKIE_REPLY_LEN,
        MessageType::Data if buf.len() < KEEPALIVE_LEN => return Err(DropReason::Truncated),
        MessageType::Data => return Ok(kind),
    };
    if buf.len() == exact {
        Ok(kind)
    } else {
        Err(DropReason::BadLength)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(word: [u8; 4], len: usize) -> Vec<u8> {
        let mut buf = vec![0u8; len];
        buf[..4].copy_from_slice(&word);
        buf
    }

    #[test]
    fn classifies_each_kind_at_its_length() {
        let cases = [
            (MessageType::Initiation, INITIATION_LEN),
            (MessageType::Response, RESPONSE_LEN),
            (MessageType::CookieReply, COOKIE_REPLY_LEN),
            (MessageType::Data, KEEPALIVE_LEN),
            (MessageType::Data, 1452),
        ];
        for (kind, len) in cases {
            assert_eq!(message_type(&message(kind.to_wire(), len)), Ok(kind));
        }
        assert_eq!(MessageType::Data.to_wire(), [4, 0, 0, 0]);
    }

    #[test]
    fn handshake_lengths_are_exact() {
        for (kind, len) in [
            (MessageType::Initiation, INITIATION_LEN),
            (MessageType::Response, RESPONSE_LEN),
            (MessageType::CookieReply, COOKIE_REPLY_LEN),
        ] {
            for wrong in [4, len - 1, len + 1, 2048] {
                assert_eq!(
                    message_type(&message(kind.to_wire(), wrong)),
                    Err(DropReason::BadLength),
                    "{kind:?} at {wrong} bytes"
                );
            }
        }
    }

    #[test]
    fn data_shorter_than_keepalive_is_truncated() {
        for len in 4..KEEPALIVE_LEN {
            assert_eq!(
                message_type(&message(MessageType::Data.to_wire(), len)),
                Err(DropReason::Truncated)
            );
        }
    }

    #[test]
    fn fewer_than_four_bytes_is_truncated() {
        for len in 0..4 {
            assert_eq!(message_type(&[4u8; 3][..len]), Err(DropReason::Truncated));
        }
    }

    #[test]
    fn unknown_types_and_nonzero_reserved_bytes_are_rejected() {
        for word in [
            [0, 0, 0, 0],
            [5, 0, 0, 0],
            [0xff, 0, 0, 0],
            [1, 1, 0, 0],
            [4, 0, 0, 1],
            [2, 0, 0x80, 0],
        ] {
            assert_eq!(
                message_type(&message(word, INITIATION_LEN)),
                Err(DropReason::UnknownType),
                "{word:?}"
            );
        }
    }
}
