//! A stand-in for X25519 in fuzz builds only (`--cfg fuzzing`, which `cargo fuzz` sets for
//! every crate it builds; normal builds never compile this file).
//!
//! One X25519 costs tens of microseconds and every handshake message takes two or four, so a
//! fuzzer driving the protocol with real curve arithmetic spends nearly all its time in it and
//! runs thousands of handshakes where it could run millions. This replaces only the
//! Diffie-Hellman (the way rustls fuzzes with a fake crypto provider): BLAKE2s, the
//! ChaCha20-Poly1305 of every message and the rest of Noise stay real, so a forged or tampered
//! message still fails to authenticate and every branch after a DH is reached only by genuine
//! handshakes.
//!
//! The stand-in keeps what the protocol relies on: both sides of a DH get the same result,
//! `dh(a, pub(b)) == dh(b, pub(a))`, because each of the four 64-bit lanes of a public key is
//! the private lane times a fixed odd generator (mod 2^64) and the DH multiplies again; and an
//! all-zero result is refused as the real one refuses a low-order key, the all-zero public key
//! being one. It is in no way secret: the private key is the public key times the generator's
//! inverse.

use snow::types::{Dh, Random};

/// Key length, as X25519's.
const KEY_LEN: usize = 32;
/// One odd multiplier per 64-bit lane (odd: invertible mod 2^64, so no private lane maps to a
/// zero public lane).
const GENERATOR: [u64; 4] = [
    0x9e37_79b9_7f4a_7c15,
    0xbf58_476d_1ce4_e5b9,
    0x94d0_49bb_1331_11eb,
    0xd6e8_feb8_6659_fd93,
];

fn lanes(key: &[u8; KEY_LEN]) -> [u64; 4] {
    std::array::from_fn(|i| {
        let mut lane = [0u8; 8];
        lane.copy_from_slice(&key[8 * i..8 * i + 8]);
        u64::from_le_bytes(lane)
    })
}

fn times(key: &[u8; KEY_LEN], by: [u64; 4]) -> [u8; KEY_LEN] {
    let key = lanes(key);
    let mut out = [0u8; KEY_LEN];
    for (i, chunk) in out.chunks_exact_mut(8).enumerate() {
        chunk.copy_from_slice(&key[i].wrapping_mul(by[i]).to_le_bytes());
    }
    out
}

/// The stand-in's public key for `private`.
pub(super) fn public_key(private: &[u8; KEY_LEN]) -> [u8; KEY_LEN] {
    times(private, GENERATOR)
}

/// A key pair of the stand-in, in snow's `Dh` shape.
#[derive(Default)]
pub(super) struct FakeDh {
    private: [u8; KEY_LEN],
    public: [u8; KEY_LEN],
}

impl Dh for FakeDh {
    fn name(&self) -> &'static str {
        "25519"
    }

    fn pub_len(&self) -> usize {
        KEY_LEN
    }

    fn priv_len(&self) -> usize {
        KEY_LEN
    }

    fn set(&mut self, privkey: &[u8]) {
        self.private = [0; KEY_LEN];
        let len = privkey.len().min(KEY_LEN);
        self.private[..len].copy_from_slice(&privkey[..len]);
        self.public = public_key(&self.private);
    }

    fn generate(&mut self, rng: &mut dyn Random) -> Result<(), snow::Error> {
        let mut private = [0u8; KEY_LEN];
        rng.try_fill_bytes(&mut private)?;
        self.set(&private);
        Ok(())
    }

    fn pubkey(&self) -> &[u8] {
        &self.public
    }

    fn privkey(&self) -> &[u8] {
        &self.private
    }

    /// `out[..32] = private · pubkey` lane by lane, refused with [`snow::Error::Dh`] when all
    /// zero (as X25519 with a low-order key).
    fn dh(&self, pubkey: &[u8], out: &mut [u8]) -> Result<(), snow::Error> {
        let theirs: &[u8; KEY_LEN] = pubkey
            .get(..KEY_LEN)
            .and_then(|key| key.try_into().ok())
            .ok_or(snow::Error::Dh)?;
        let shared = times(theirs, lanes(&self.private));
        if shared == [0; KEY_LEN] {
            return Err(snow::Error::Dh);
        }
        out.get_mut(..KEY_LEN)
            .ok_or(snow::Error::Dh)?
            .copy_from_slice(&shared);
        Ok(())
    }
}
