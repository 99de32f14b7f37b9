//! Transport AEAD: ChaCha20-Poly1305 (ring) sealed and opened in place, with WireGuard's nonce
//! (4 zero bytes followed by the little-endian message counter) and no associated data.
//!
//! Key bytes live in [`SymmetricKey`], which zeroizes on drop. ring expands them into its own
//! key structure, which it does not zeroize; the sealing and opening keys should therefore live
//! exactly as long as the session that owns them, and no longer.

use std::fmt;

use ring::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, Nonce, Tag, UnboundKey};
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::DropReason;
use crate::wire::TAG_LEN;

/// A 32-byte transport key, wiped from memory when dropped. `Debug` never shows the bytes.
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct SymmetricKey([u8; 32]);

impl SymmetricKey {
    /// Takes ownership of key bytes; the caller should wipe any copy it keeps.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }
}

impl fmt::Debug for SymmetricKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SymmetricKey(..)")
    }
}

/// WireGuard's transport nonce for `counter`.
fn nonce(counter: u64) -> Nonce {
    let mut bytes = [0u8; 12];
    bytes[4..].copy_from_slice(&counter.to_le_bytes());
    Nonce::assume_unique_for_key(bytes)
}

fn ring_key(key: &SymmetricKey) -> LessSafeKey {
    let unbound = UnboundKey::new(&CHACHA20_POLY1305, &key.0)
        .expect("ChaCha20-Poly1305 takes a 32-byte key, which SymmetricKey always holds");
    LessSafeKey::new(unbound)
}

/// Seals outgoing data messages. Callers must never reuse a counter with the same key.
pub struct SealingKey(LessSafeKey);

impl SealingKey {
    /// Expands `key` for sealing.
    pub fn new(key: &SymmetricKey) -> Self {
        Self(ring_key(key))
    }

    /// Encrypts `in_out` in place under nonce `counter` and returns the detached tag.
    ///
    /// # Panics
    /// If `in_out` is longer than ChaCha20 can encrypt under one nonce (about 256 GiB), which no
    /// packet buffer is.
    pub fn seal_in_place(&self, counter: u64, in_out: &mut [u8]) -> [u8; TAG_LEN] {
        let tag: Tag = self
            .0
            .seal_in_place_separate_tag(nonce(counter), Aad::empty(), in_out)
            .expect("packet buffers are far below ChaCha20's per-nonce limit");
        let mut out = [0u8; TAG_LEN];
        out.copy_from_slice(tag.as_ref());
        out
    }
}

impl fmt::Debug for SealingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SealingKey(ChaCha20-Poly1305)")
    }
}

/// Opens incoming data messages.
pub struct OpeningKey(LessSafeKey);

impl OpeningKey {
    /// Expands `key` for opening.
    pub fn new(key: &SymmetricKey) -> Self {
        Self(ring_key(key))
    }

    /// Verifies and decrypts `ciphertext_and_tag` in place under nonce `counter`. On success the
    /// plaintext is the first `n` bytes, where `n` is returned; on failure the buffer holds
    /// unspecified bytes and must be discarded.
    pub fn open_in_place(
        &self,
        counter: u64,
        ciphertext_and_tag: &mut [u8],
    ) -> Result<usize, DropReason> {
        if ciphertext_and_tag.len() < TAG_LEN {
            return Err(DropReason::Truncated);
        }
        self.0
            .open_in_place(nonce(counter), Aad::empty(), ciphertext_and_tag)
            .map(|plaintext| plaintext.len())
            .map_err(|_| DropReason::AuthFailed)
    }
}

impl fmt::Debug for OpeningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("OpeningKey(ChaCha20-Poly1305)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.split_whitespace().collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    // RFC 8439 appendix A.5. Its nonce, 00000000 0102030405060708, is exactly WireGuard's form
    // for counter 0x0807060504030201.
    const A5_KEY: &str = "1c9240a5eb55d38af333888604f6b5f0473917c1402b80099dca5cbc207075c0";
    const A5_COUNTER: u64 = 0x0807_0605_0403_0201;
    const A5_AAD: &str = "f33388860000000000004e91";
    const A5_PLAINTEXT: &[u8] = "Internet-Drafts are draft documents valid for a maximum of six \
        months and may be updated, replaced, or obsoleted by other documents at any time. It is \
        inappropriate to use Internet-Drafts as reference material or to cite them other than as \
        /\u{201c}work in progress./\u{201d}"
        .as_bytes();
    const A5_CIPHERTEXT: &str = "
        64a0861575861af460f062c79be643bd5e805cfd345cf389f108670ac76c8cb2
        4c6cfc18755d43eea09ee94e382d26b0bdb7b73c321b0100d4f03b7f355894cf
        332f830e710b97ce98c8a84abd0b948114ad176e008d33bd60f982b1ff37c855
        9797a06ef4f0ef61c186324e2b3506383606907b6a7c02b0f9f6157b53c867e4
        b9166c767b804d46a59b5216cde7a4e99040c5a40433225ee282a1b0a06c523e
        af4534d7f83fa1155b0047718cbc546a0d072b04b3564eea1b422273f548271a
        0bb2316053fa76991955ebd63159434ecebb4e466dae5a1073a6727627097a10
        49e617d91d361094fa68f0ff77987130305beaba2eda04df997b714d6c6f2c29
        a6ad5cb4022b02709b";
    const A5_TAG_WITH_AAD: &str = "eead9d67890cbb22392336fea1851f38";
    // The same key, nonce and plaintext with empty AAD, computed with OpenSSL (not ring).
    const A5_TAG_EMPTY_AAD: &str = "6e3570b1acaaf1f24f2a644f01acd12b";

    fn a5_key() -> SymmetricKey {
        SymmetricKey::from_bytes(hex(A5_KEY).try_into().unwrap())
    }

    #[test]
    fn ring_with_the_rfc_aad_reproduces_rfc8439_a5() {
        let key = ring_key(&a5_key());
        let mut buf = A5_PLAINTEXT.to_vec();
        assert_eq!(buf.len(), 265);
        let tag = key
            .seal_in_place_separate_tag(nonce(A5_COUNTER), Aad::from(hex(A5_AAD)), &mut buf)
            .unwrap();
        assert_eq!(buf, hex(A5_CIPHERTEXT));
        assert_eq!(tag.as_ref(), &hex(A5_TAG_WITH_AAD)[..]);
    }

    #[test]
    fn seal_matches_rfc8439_a5_ciphertext_and_independent_tag() {
        let mut buf = A5_PLAINTEXT.to_vec();
        let tag = SealingKey::new(&a5_key()).seal_in_place(A5_COUNTER, &mut buf);
        assert_eq!(buf, hex(A5_CIPHERTEXT));
        assert_eq!(tag.to_vec(), hex(A5_TAG_EMPTY_AAD));
    }

    #[test]
    fn open_recovers_rfc8439_a5_plaintext() {
        let mut buf = hex(A5_CIPHERTEXT);
        buf.extend(hex(A5_TAG_EMPTY_AAD));
        let n = OpeningKey::new(&a5_key())
            .open_in_place(A5_COUNTER, &mut buf)
            .unwrap();
        assert_eq!(&buf[..n], A5_PLAINTEXT);
    }

    fn sealed(counter: u64, plaintext: &[u8]) -> Vec<u8> {
        let mut buf = plaintext.to_vec();
        let tag = SealingKey::new(&a5_key()).seal_in_place(counter, &mut buf);
        buf.extend_from_slice(&tag);
        buf
    }

    #[test]
    fn flipping_any_bit_fails_authentication() {
        let opening = OpeningKey::new(&a5_key());
        let original = sealed(7, b"seventeen bytes!!");
        for byte in 0..original.len() {
            for bit in 0..8 {
                let mut buf = original.clone();
                buf[byte] ^= 1 << bit;
                assert_eq!(
                    opening.open_in_place(7, &mut buf),
                    Err(DropReason::AuthFailed),
                    "byte {byte} bit {bit}"
                );
            }
        }
        let mut buf = original;
        assert_eq!(opening.open_in_place(7, &mut buf), Ok(17));
    }

    #[test]
    fn wrong_counter_or_key_fails_authentication() {
        let mut buf = sealed(7, b"payload");
        assert_eq!(
            OpeningKey::new(&a5_key()).open_in_place(8, &mut buf),
            Err(DropReason::AuthFailed)
        );
        let mut buf = sealed(7, b"payload");
        let other = OpeningKey::new(&SymmetricKey::from_bytes([9; 32]));
        assert_eq!(
            other.open_in_place(7, &mut buf),
            Err(DropReason::AuthFailed)
        );
    }

    #[test]
    fn empty_plaintext_is_just_a_tag() {
        let buf = sealed(0, b"");
        assert_eq!(buf.len(), TAG_LEN);
        let mut buf = buf;
        assert_eq!(OpeningKey::new(&a5_key()).open_in_place(0, &mut buf), Ok(0));
    }

    #[test]
    fn shorter_than_a_tag_is_truncated() {
        let opening = OpeningKey::new(&a5_key());
        for len in 0..TAG_LEN {
            let mut buf = vec![0u8; len];
            assert_eq!(
                opening.open_in_place(0, &mut buf),
                Err(DropReason::Truncated)
            );
        }
    }

    #[test]
    fn debug_output_hides_key_bytes() {
        let key = SymmetricKey::from_bytes([0xab; 32]);
        let shown = format!(
            "{key:?} {:?} {:?}",
            SealingKey::new(&key),
            OpeningKey::new(&key)
        );
        assert_eq!(
            shown,
            "SymmetricKey(..) SealingKey(ChaCha20-Poly1305) OpeningKey(ChaCha20-Poly1305)"
        );
    }

    #[test]
    fn zeroize_wipes_the_key_bytes() {
        let mut key = SymmetricKey::from_bytes([0xab; 32]);
        key.zeroize();
        assert_eq!(key.0, [0u8; 32]);
    }
}
