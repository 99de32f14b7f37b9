//! The cryptography snow runs our handshakes with: snow's own BLAKE2s and RNG, our X25519 and
//! our ChaCha20-Poly1305.
//!
//! snow's X25519 accepts any public key and hands back whatever the curve gives. A low-order
//! public key (the all-zero key and the few other small-order points) gives the all-zero
//! shared secret for *every* private key, so a handshake built on one proves nothing about
//! who sent it. Ours refuses an all-zero result (the contributory behaviour of the kernel's
//! curve25519 and of wireguard-go): snow then fails the message with [`snow::Error::Dh`]
//! before anything is decrypted with the result.
//!
//! Both also wipe their keys when the handshake state is dropped, which snow's own do not
//! (plain arrays): the X25519 key pair lives in a zeroizing [`StaticSecret`], the cipher key
//! in a [`ChaCha20Poly1305`], which zeroizes its key on drop. What snow keeps itself is listed
//! where the states are built (`super::noise`).
//!
//! Fuzz builds (`--cfg fuzzing`) put a cheap stand-in in place of X25519 so the protocol
//! fuzzer runs millions of handshakes; see `super::fuzzing_dh`. [`public_key`] follows the
//! same choice, so an endpoint's public key always pairs with the DH its handshakes run.

use chacha20poly1305::aead::AeadInPlace as _;
use chacha20poly1305::{ChaCha20Poly1305, KeyInit as _, Nonce, Tag};
use snow::params::{CipherChoice, DHChoice, HashChoice};
use snow::resolvers::{CryptoResolver, DefaultResolver};
use snow::types::{Cipher, Dh, Hash, Random};
use x25519_dalek::{PublicKey, StaticSecret};

/// X25519 and ChaCha20-Poly1305 key length.
const KEY_LEN: usize = 32;
/// Poly1305 tag length.
const TAG_LEN: usize = 16;

/// snow's resolver with our X25519 and ChaCha20-Poly1305 in place of its own.
#[derive(Debug, Default)]
pub(super) struct Resolver;

impl CryptoResolver for Resolver {
    fn resolve_rng(&self) -> Option<Box<dyn Random>> {
        DefaultResolver.resolve_rng()
    }

    fn resolve_dh(&self, choice: &DHChoice) -> Option<Box<dyn Dh>> {
        match choice {
            DHChoice::Curve25519 => Some(new_dh()),
            _ => None,
        }
    }

    fn resolve_hash(&self, choice: &HashChoice) -> Option<Box<dyn Hash>> {
        DefaultResolver.resolve_hash(choice)
    }

    fn resolve_cipher(&self, choice: &CipherChoice) -> Option<Box<dyn Cipher>> {
        match choice {
            CipherChoice::ChaChaPoly => Some(Box::new(ChaChaPoly::default())),
            _ => None,
        }
    }
}

#[cfg(not(fuzzing))]
fn new_dh() -> Box<dyn Dh> {
    Box::new(X25519::default())
}

#[cfg(fuzzing)]
fn new_dh() -> Box<dyn Dh> {
    Box::new(super::fuzzing_dh::FakeDh::default())
}

/// The static public key that handshakes run through this resolver pair with `private`.
#[cfg(not(fuzzing))]
pub(super) fn public_key(private: &[u8; KEY_LEN]) -> [u8; KEY_LEN] {
    PublicKey::from(&StaticSecret::from(*private)).to_bytes()
}

/// The static public key that handshakes run through this resolver pair with `private`.
#[cfg(fuzzing)]
pub(super) fn public_key(private: &[u8; KEY_LEN]) -> [u8; KEY_LEN] {
    super::fuzzing_dh::public_key(private)
}

/// One X25519 key pair (static or ephemeral) that refuses all-zero shared secrets and wipes
/// its private key when dropped.
#[cfg_attr(fuzzing, allow(dead_code))]
pub(super) struct X25519 {
    secret: StaticSecret,
    public: PublicKey,
}

impl Default for X25519 {
    fn default() -> Self {
        let secret = StaticSecret::from([0; KEY_LEN]);
        let public = PublicKey::from(&secret);
        X25519 { secret, public }
    }
}

impl Dh for X25519 {
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
        let mut bytes = zeroize::Zeroizing::new([0u8; KEY_LEN]);
        let len = privkey.len().min(KEY_LEN);
        bytes[..len].copy_from_slice(&privkey[..len]);
        self.secret = StaticSecret::from(*bytes);
        self.public = PublicKey::from(&self.secret);
    }

    fn generate(&mut self, rng: &mut dyn Random) -> Result<(), snow::Error> {
        let mut bytes = zeroize::Zeroizing::new([0u8; KEY_LEN]);
        rng.try_fill_bytes(bytes.as_mut())?;
        self.set(bytes.as_ref());
        Ok(())
    }

    fn pubkey(&self) -> &[u8] {
        self.public.as_bytes()
    }

    fn privkey(&self) -> &[u8] {
        self.secret.as_bytes()
    }

    /// `out[..32] = X25519(ours, pubkey)`, refused with [`snow::Error::Dh`] when all zero.
    fn dh(&self, pubkey: &[u8], out: &mut [u8]) -> Result<(), snow::Error> {
        let theirs: [u8; KEY_LEN] = pubkey
            .get(..KEY_LEN)
            .and_then(|key| key.try_into().ok())
            .ok_or(snow::Error::Dh)?;
        let shared = self.secret.diffie_hellman(&PublicKey::from(theirs));
        if !shared.was_contributory() {
            return Err(snow::Error::Dh);
        }
        out.get_mut(..KEY_LEN)
            .ok_or(snow::Error::Dh)?
            .copy_from_slice(shared.as_bytes());
        Ok(())
    }
}

/// Noise's ChaChaPoly: the 64-bit counter little-endian after four zero bytes, as in
/// WireGuard. The key is wiped when a new one is set and on drop.
pub(super) struct ChaChaPoly {
    aead: ChaCha20Poly1305,
}

impl Default for ChaChaPoly {
    fn default() -> Self {
        ChaChaPoly {
            aead: ChaCha20Poly1305::new(&[0; KEY_LEN].into()),
        }
    }
}

fn nonce(counter: u64) -> Nonce {
    let mut nonce = Nonce::default();
    nonce[4..].copy_from_slice(&counter.to_le_bytes());
    nonce
}

impl Cipher for ChaChaPoly {
    fn name(&self) -> &'static str {
        "ChaChaPoly"
    }

    fn set(&mut self, key: &[u8; KEY_LEN]) {
        self.aead = ChaCha20Poly1305::new(key.into());
    }

    /// Writes `plaintext ‖ tag` to `out`; 0 if `out` cannot hold it (snow sizes it, so never).
    fn encrypt(&self, counter: u64, authtext: &[u8], plaintext: &[u8], out: &mut [u8]) -> usize {
        let len = plaintext.len();
        let Some(out) = out.get_mut(..len + TAG_LEN) else {
            return 0;
        };
        let (data, tag) = out.split_at_mut(len);
        data.copy_from_slice(plaintext);
        match self
            .aead
            .encrypt_in_place_detached(&nonce(counter), authtext, data)
        {
            Ok(sealed) => {
                tag.copy_from_slice(&sealed);
                len + TAG_LEN
            }
            Err(_) => 0,
        }
    }

    fn decrypt(
        &self,
        counter: u64,
        authtext: &[u8],
        ciphertext: &[u8],
        out: &mut [u8],
    ) -> Result<usize, snow::Error> {
        let len = ciphertext
            .len()
            .checked_sub(TAG_LEN)
            .ok_or(snow::Error::Decrypt)?;
        let (data, tag) = ciphertext.split_at(len);
        let out = out.get_mut(..len).ok_or(snow::Error::Decrypt)?;
        out.copy_from_slice(data);
        self.aead
            .decrypt_in_place_detached(&nonce(counter), authtext, out, Tag::from_slice(tag))
            .map_err(|_| snow::Error::Decrypt)?;
        Ok(len)
    }
}
