//! The four WireGuard link messages: handshake initiation, handshake response, cookie reply and
//! the transport data header. Offsets follow the WireGuard protocol exactly; every integer is
//! little-endian.

use super::{DATA_HEADER_LEN, MessageType, message_type};
use crate::DropReason;

/// Offset of `mac1` in an initiation: mac1 is computed over every byte before it.
pub const INITIATION_MAC1_OFFSET: usize = 116;
/// Offset of `mac2` in an initiation: mac2 is computed over every byte before it.
pub const INITIATION_MAC2_OFFSET: usize = 132;
/// Offset of `mac1` in a response: mac1 is computed over every byte before it.
pub const RESPONSE_MAC1_OFFSET: usize = 60;
/// Offset of `mac2` in a response: mac2 is computed over every byte before it.
pub const RESPONSE_MAC2_OFFSET: usize = 76;

const TYPE_AT: usize = 0;
const MAC_LEN: usize = 16;

mod initiation {
    pub const SENDER: usize = 4;
    pub const EPHEMERAL: usize = 8;
    pub const STATIC: usize = 40;
    pub const TIMESTAMP: usize = 88;
    pub const NOISE_LEN: usize = super::INITIATION_MAC1_OFFSET - EPHEMERAL;
}

mod response {
    pub const SENDER: usize = 4;
    pub const RECEIVER: usize = 8;
    pub const EPHEMERAL: usize = 12;
    pub const EMPTY: usize = 44;
    pub const NOISE_LEN: usize = super::RESPONSE_MAC1_OFFSET - EPHEMERAL;
}

mod cookie_reply {
    pub const RECEIVER: usize = 4;
    pub const NONCE: usize = 8;
    pub const COOKIE: usize = 32;
}

mod data {
    pub const RECEIVER: usize = 4;
    pub const COUNTER: usize = 8;
}

/// The `N` bytes at `at`. Views built with `new_checked` are always long enough; a view built
/// with `new_unchecked` over a short buffer is a caller bug, reported by this panic.
fn array<const N: usize>(buf: &[u8], at: usize) -> &[u8; N] {
    buf.get(at..)
        .and_then(|rest| rest.first_chunk::<N>())
        .expect("buffer shorter than the message layout; parse received bytes with new_checked")
}

fn array_mut<const N: usize>(buf: &mut [u8], at: usize) -> &mut [u8; N] {
    buf.get_mut(at..)
        .and_then(|rest| rest.first_chunk_mut::<N>())
        .expect(
            "buffer shorter than the message layout; size emit buffers from the *_LEN constants",
        )
}

fn read_u32(buf: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(*array(buf, at))
}

fn write_u32(buf: &mut [u8], at: usize, value: u32) {
    *array_mut(buf, at) = value.to_le_bytes();
}

/// Declares a view type with the constructors every message shares.
macro_rules! view {
    ($(#[$doc:meta])* $name:ident, $kind:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub struct $name<T: AsRef<[u8]>> {
            buffer: T,
        }

        impl<T: AsRef<[u8]>> $name<T> {
            /// Wraps received bytes after checking the type word and the length, so that no
            /// accessor can panic. A message of another type is [`DropReason::UnknownType`].
            pub fn new_checked(buffer: T) -> Result<Self, DropReason> {
                if message_type(buffer.as_ref())? == $kind {
                    Ok(Self { buffer })
                } else {
                    Err(DropReason::UnknownType)
                }
            }

            /// Wraps a buffer without checking it, for emitting. Accessors panic if the buffer
            /// is shorter than the message.
            pub const fn new_unchecked(buffer: T) -> Self {
                Self { buffer }
            }

            /// Gives the buffer back.
            pub fn into_inner(self) -> T {
                self.buffer
            }
        }
    };
}

view!(
    /// Handshake initiation, [`INITIATION_LEN`](super::INITIATION_LEN)(super::INITIATION_LEN)(super::INITIATION_LEN)(super::INITIATION_LEN) bytes: type, sender index, ephemeral key,
    /// encrypted static key, encrypted timestamp, mac1, mac2.
    Initiation,
    MessageType::Initiation
);

view!(
    /// Handshake response, [`RESPONSE_LEN`](super::RESPONSE_LEN) bytes: type, sender index, receiver index,
    /// ephemeral key, encrypted empty payload, mac1, mac2.
    Response,
    MessageType::Response
);

view!(
    /// Cookie reply, [`COOKIE_REPLY_LEN`](super::COOKIE_REPLY_LEN) bytes: type, receiver index, nonce, encrypted cookie.
    CookieReply,
    MessageType::CookieReply
);

view!(
    /// Transport data message: the [`DATA_HEADER_LEN`]-byte header (type, receiver index,
    /// counter) followed by the ciphertext and its tag.
    DataHeader,
    MessageType::Data
);

impl<T: AsRef<[u8]>> Initiation<T> {
    /// The initiator's index for this handshake.
    pub fn sender_index(&self) -> u32 {
        read_u32(self.buffer.as_ref(), initiation::SENDER)
    }

    /// The initiator's unencrypted ephemeral public key.
    pub fn ephemeral(&self) -> &[u8; 32] {
        array(self.buffer.as_ref(), initiation::EPHEMERAL)
    }

    /// The initiator's static public key, sealed (32 bytes + tag).
    pub fn encrypted_static(&self) -> &[u8; 48] {
        array(self.buffer.as_ref(), initiation::STATIC)
    }

    /// The TAI64N timestamp, sealed (12 bytes + tag).
    pub fn encrypted_timestamp(&self) -> &[u8; 28] {
        array(self.buffer.as_ref(), initiation::TIMESTAMP)
    }

    /// MAC keyed by the responder's public key over [`Self::mac1_input`].
    pub fn mac1(&self) -> &[u8; MAC_LEN] {
        array(self.buffer.as_ref(), INITIATION_MAC1_OFFSET)
    }

    /// MAC keyed by a cookie over [`Self::mac2_input`], or zeros.
    pub fn mac2(&self) -> &[u8; MAC_LEN] {
        array(self.buffer.as_ref(), INITIATION_MAC2_OFFSET)
    }

    /// The Noise handshake message: ephemeral, encrypted static, encrypted timestamp.
    pub fn noise_payload(&self) -> &[u8; initiation::NOISE_LEN] {
        array(self.buffer.as_ref(), initiation::EPHEMERAL)
    }

    /// The bytes mac1 covers: everything before it.
    pub fn mac1_input(&self) -> &[u8; INITIATION_MAC1_OFFSET] {
        array(self.buffer.as_ref(), 0)
    }

    /// The bytes mac2 covers: everything before it, mac1 included.
    pub fn mac2_input(&self) -> &[u8; INITIATION_MAC2_OFFSET] {
        array(self.buffer.as_ref(), 0)
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Initiation<T> {
    /// Writes the type word (type 1, reserved bytes zero).
    pub fn fill_header(&mut self) {
        *array_mut(self.buffer.as_mut(), TYPE_AT) = MessageType::Initiation.to_wire();
    }

    /// Sets the initiator's index.
    pub fn set_sender_index(&mut self, index: u32) {
        write_u32(self.buffer.as_mut(), initiation::SENDER, index);
    }

    /// The Noise handshake message, for the handshake to write in place.
    pub fn noise_payload_mut(&mut self) -> &mut [u8; initiation::NOISE_LEN] {
        array_mut(self.buffer.as_mut(), initiation::EPHEMERAL)
    }

    /// Sets mac1.
    pub fn set_mac1(&mut self, mac: &[u8; MAC_LEN]) {
        *array_mut(self.buffer.as_mut(), INITIATION_MAC1_OFFSET) = *mac;
    }

    /// Sets mac2.
    pub fn set_mac2(&mut self, mac: &[u8; MAC_LEN]) {
        *array_mut(self.buffer.as_mut(), INITIATION_MAC2_OFFSET) = *mac;
    }
}

impl<T: AsRef<[u8]>> Response<T> {
    /// The responder's index for the new session.
    pub fn sender_index(&self) -> u32 {
        read_u32(self.buffer.as_ref(), response::SENDER)
    }

    /// The initiator's index, copied from the initiation being answered.
    pub fn receiver_index(&self) -> u32 {
        read_u32(self.buffer.as_ref(), response::RECEIVER)
    }

    /// The responder's unencrypted ephemeral public key.
    pub fn ephemeral(&self) -> &[u8; 32] {
        array(self.buffer.as_ref(), response::EPHEMERAL)
    }

    /// The sealed empty payload: only a tag.
    pub fn encrypted_nothing(&self) -> &[u8; 16] {
        array(self.buffer.as_ref(), response::EMPTY)
    }

    /// MAC keyed by the initiator's public key over [`Self::mac1_input`].
    pub fn mac1(&self) -> &[u8; MAC_LEN] {
        array(self.buffer.as_ref(), RESPONSE_MAC1_OFFSET)
    }

    /// MAC keyed by a cookie over [`Self::mac2_input`], or zeros.
    pub fn mac2(&self) -> &[u8; MAC_LEN] {
        array(self.buffer.as_ref(), RESPONSE_MAC2_OFFSET)
    }

    /// The Noise handshake message: ephemeral and encrypted empty payload.
    pub fn noise_payload(&self) -> &[u8; response::NOISE_LEN] {
        array(self.buffer.as_ref(), response::EPHEMERAL)
    }

    /// The bytes mac1 covers: everything before it.
    pub fn mac1_input(&self) -> &[u8; RESPONSE_MAC1_OFFSET] {
        array(self.buffer.as_ref(), 0)
    }

    /// The bytes mac2 covers: everything before it, mac1 included.
    pub fn mac2_input(&self) -> &[u8; RESPONSE_MAC2_OFFSET] {
        array(self.buffer.as_ref(), 0)
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Response<T> {
    /// Writes the type word (type 2, reserved bytes zero).
    pub fn fill_header(&mut self) {
        *array_mut(self.buffer.as_mut(), TYPE_AT) = MessageType::Response.to_wire();
    }

    /// Sets the responder's index.
    pub fn set_sender_index(&mut self, index: u32) {
        write_u32(self.buffer.as_mut(), response::SENDER, index);
    }

    /// Sets the initiator's index.
    pub fn set_receiver_index(&mut self, index: u32) {
        write_u32(self.buffer.as_mut(), response::RECEIVER, index);
    }

    /// The Noise handshake message, for the handshake to write in place.
    pub fn noise_payload_mut(&mut self) -> &mut [u8; response::NOISE_LEN] {
        array_mut(self.buffer.as_mut(), response::EPHEMERAL)
    }

    /// Sets mac1.
    pub fn set_mac1(&mut self, mac: &[u8; MAC_LEN]) {
        *array_mut(self.buffer.as_mut(), RESPONSE_MAC1_OFFSET) = *mac;
    }

    /// Sets mac2.
    pub fn set_mac2(&mut self, mac: &[u8; MAC_LEN]) {
        *array_mut(self.buffer.as_mut(), RESPONSE_MAC2_OFFSET) = *mac;
    }
}

impl<T: AsRef<[u8]>> CookieReply<T> {
    /// The sender index of the handshake message this reply answers.
    pub fn receiver_index(&self) -> u32 {
        read_u32(self.buffer.as_ref(), cookie_reply::RECEIVER)
    }

    /// The random XChaCha20-Poly1305 nonce.
    pub fn nonce(&self) -> &[u8; 24] {
        array(self.buffer.as_ref(), cookie_reply::NONCE)
    }

    /// The sealed cookie (16 bytes + tag).
    pub fn encrypted_cookie(&self) -> &[u8; 32] {
        array(self.buffer.as_ref(), cookie_reply::COOKIE)
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> CookieReply<T> {
    /// Writes the type word (type 3, reserved bytes zero).
    pub fn fill_header(&mut self) {
        *array_mut(self.buffer.as_mut(), TYPE_AT) = MessageType::CookieReply.to_wire();
    }

    /// Sets the index of the handshake message being answered.
    pub fn set_receiver_index(&mut self, index: u32) {
        write_u32(self.buffer.as_mut(), cookie_reply::RECEIVER, index);
    }

    /// Sets the nonce.
    pub fn set_nonce(&mut self, nonce: &[u8; 24]) {
        *array_mut(self.buffer.as_mut(), cookie_reply::NONCE) = *nonce;
    }

    /// Sets the sealed cookie.
    pub fn set_encrypted_cookie(&mut self, cookie: &[u8; 32]) {
        *array_mut(self.buffer.as_mut(), cookie_reply::COOKIE) = *cookie;
    }
}

impl<T: AsRef<[u8]>> DataHeader<T> {
    /// The receiving side's session index.
    pub fn receiver_index(&self) -> u32 {
        read_u32(self.buffer.as_ref(), data::RECEIVER)
    }

    /// The sender's message counter, which is also the AEAD nonce.
    pub fn counter(&self) -> u64 {
        u64::from_le_bytes(*array(self.buffer.as_ref(), data::COUNTER))
    }

    /// Ciphertext followed by the tag.
    pub fn payload(&self) -> &[u8] {
        self.buffer
            .as_ref()
            .get(DATA_HEADER_LEN..)
            .unwrap_or_default()
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> DataHeader<T> {
    /// Writes the whole header: type word, receiver index and counter.
    pub fn fill_header(&mut self, receiver_index: u32, counter: u64) {
        let buf = self.buffer.as_mut();
        *array_mut(buf, TYPE_AT) = MessageType::Data.to_wire();
        write_u32(buf, data::RECEIVER, receiver_index);
        *array_mut(buf, data::COUNTER) = counter.to_le_bytes();
    }

    /// Ciphertext followed by the tag, for opening in place.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        self.buffer
            .as_mut()
            .get_mut(DATA_HEADER_LEN..)
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::super::{COOKIE_REPLY_LEN, INITIATION_LEN, KEEPALIVE_LEN, RESPONSE_LEN};
    use super::*;

    fn pattern<const N: usize>(start: u8) -> [u8; N] {
        std::array::from_fn(|i| start.wrapping_add(i as u8))
    }

    #[test]
    fn initiation_fields_sit_at_wireguard_offsets() {
        let mut buf = [0xeeu8; INITIATION_LEN];
        let mut msg = Initiation::new_unchecked(&mut buf[..]);
        msg.fill_header();
        msg.set_sender_index(0x0403_0201);
        msg.noise_payload_mut()
            .copy_from_slice(&pattern::<108>(0x10));
        msg.set_mac1(&[0xa1; 16]);
        msg.set_mac2(&[0xa2; 16]);

        assert_eq!(buf[..8], [1, 0, 0, 0, 1, 2, 3, 4]);
        assert_eq!(buf[8], 0x10);
        assert_eq!(buf[115], 0x10 + 107);
        assert_eq!(buf[116..132], [0xa1; 16]);
        assert_eq!(buf[132..], [0xa2; 16]);

        let msg = Initiation::new_checked(&buf[..]).unwrap();
        assert_eq!(msg.sender_index(), 0x0403_0201);
        assert_eq!(msg.ephemeral(), &pattern::<32>(0x10));
        assert_eq!(msg.encrypted_static(), &pattern::<48>(0x10 + 32));
        assert_eq!(msg.encrypted_timestamp(), &pattern::<28>(0x10 + 80));
        assert_eq!(msg.noise_payload(), &pattern::<108>(0x10));
        assert_eq!(msg.mac1(), &[0xa1; 16]);
        assert_eq!(msg.mac2(), &[0xa2; 16]);
        assert_eq!(msg.mac1_input()[..], buf[..116]);
        assert_eq!(msg.mac2_input()[..], buf[..132]);
        assert_eq!(msg.into_inner(), &buf[..]);
    }

    #[test]
    fn response_fields_sit_at_wireguard_offsets() {
        let mut buf = [0xeeu8; RESPONSE_LEN];
        let mut msg = Response::new_unchecked(&mut buf);
        msg.fill_header();
        msg.set_sender_index(0x0807_0605);
        msg.set_receiver_index(0x0c0b_0a09);
        msg.noise_payload_mut()
            .copy_from_slice(&pattern::<48>(0x40));
        msg.set_mac1(&[0xb1; 16]);
        msg.set_mac2(&[0xb2; 16]);

        assert_eq!(buf[..12], [2, 0, 0, 0, 5, 6, 7, 8, 9, 10, 11, 12]);
        assert_eq!(buf[12], 0x40);
        assert_eq!(buf[59], 0x40 + 47);
        assert_eq!(buf[60..76], [0xb1; 16]);
        assert_eq!(buf[76..], [0xb2; 16]);

        let msg = Response::new_checked(&buf).unwrap();
        assert_eq!(msg.sender_index(), 0x0807_0605);
        assert_eq!(msg.receiver_index(), 0x0c0b_0a09);
        assert_eq!(msg.ephemeral(), &pattern::<32>(0x40));
        assert_eq!(msg.encrypted_nothing(), &pattern::<16>(0x40 + 32));
        assert_eq!(msg.noise_payload(), &pattern::<48>(0x40));
        assert_eq!(msg.mac1(), &[0xb1; 16]);
        assert_eq!(msg.mac2(), &[0xb2; 16]);
        assert_eq!(msg.mac1_input()[..], buf[..60]);
        assert_eq!(msg.mac2_input()[..], buf[..76]);
    }

    #[test]
    fn cookie_reply_fields_sit_at_wireguard_offsets() {
        let mut buf = vec![0xeeu8; COOKIE_REPLY_LEN];
        let mut msg = CookieReply::new_unchecked(&mut buf);
        msg.fill_header();
        msg.set_receiver_index(0xdead_beef);
        msg.set_nonce(&pattern::<24>(0x60));
        msg.set_encrypted_cookie(&pattern::<32>(0x80));

        assert_eq!(buf[..8], [3, 0, 0, 0, 0xef, 0xbe, 0xad, 0xde]);
        assert_eq!(buf[8..32], pattern::<24>(0x60));
        assert_eq!(buf[32..], pattern::<32>(0x80));

        let msg = CookieReply::new_checked(buf).unwrap();
        assert_eq!(msg.receiver_index(), 0xdead_beef);
        assert_eq!(msg.nonce(), &pattern::<24>(0x60));
        assert_eq!(msg.encrypted_cookie(), &pattern::<32>(0x80));
    }

    #[test]
    fn data_header_fields_sit_at_wireguard_offsets() {
        let mut buf = [0xeeu8; 40];
        let mut msg = DataHeader::new_unchecked(&mut buf);
        msg.fill_header(0x1122_3344, 0x0102_0304_0506_0708);
        msg.payload_mut().fill(0x55);

        assert_eq!(
            buf[..16],
            [4, 0, 0, 0, 0x44, 0x33, 0x22, 0x11, 8, 7, 6, 5, 4, 3, 2, 1]
        );
        let msg = DataHeader::new_checked(&buf).unwrap();
        assert_eq!(msg.receiver_index(), 0x1122_3344);
        assert_eq!(msg.counter(), 0x0102_0304_0506_0708);
        assert_eq!(msg.payload(), &[0x55; 24]);
    }

    #[test]
    fn every_truncation_is_rejected() {
        let mut init = [0u8; INITIATION_LEN];
        init[0] = 1;
        let mut resp = [0u8; RESPONSE_LEN];
        resp[0] = 2;
        let mut cookie = [0u8; COOKIE_REPLY_LEN];
        cookie[0] = 3;
        let mut data = [0u8; KEEPALIVE_LEN];
        data[0] = 4;
        let expected = |len: usize| {
            if len < 4 {
                DropReason::Truncated
            } else {
                DropReason::BadLength
            }
        };
        for len in 0..INITIATION_LEN {
            assert_eq!(Initiation::new_checked(&init[..len]), Err(expected(len)));
        }
        for len in 0..RESPONSE_LEN {
            assert_eq!(Response::new_checked(&resp[..len]), Err(expected(len)));
        }
        for len in 0..COOKIE_REPLY_LEN {
            assert_eq!(CookieReply::new_checked(&cookie[..len]), Err(expected(len)));
        }
        for len in 0..KEEPALIVE_LEN {
            assert_eq!(
                DataHeader::new_checked(&data[..len]),
                Err(DropReason::Truncated)
            );
        }
    }

    #[test]
    fn a_view_refuses_another_message_type() {
        let mut data = [0u8; INITIATION_LEN];
        data[0] = 4;
        assert_eq!(
            Initiation::new_checked(&data[..]),
            Err(DropReason::UnknownType)
        );
        let mut init = [0u8; INITIATION_LEN];
        init[0] = 1;
        assert_eq!(
            DataHeader::new_checked(&init[..]),
            Err(DropReason::UnknownType)
        );
        let mut resp = [0u8; RESPONSE_LEN];
        resp[0] = 2;
        assert_eq!(
            DataHeader::new_checked(&resp[..]),
            Err(DropReason::UnknownType)
        );
    }

    #[test]
    #[should_panic(expected = "new_checked")]
    fn unchecked_view_over_a_short_buffer_panics_instead_of_reading_past_it() {
        let short = [1u8; 40];
        let _ = Initiation::new_unchecked(&short[..]).mac2();
    }
}
