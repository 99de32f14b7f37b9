//! The cryptography snow runs our handshakes with: snow's own BLAKE2s and RNG, and our X25519.
//!
//! snow's X25519 accepts any public key and hands back whatever the curve gives. A low-order
//! public key (the all-zero key and the few other small-order points) gives the all-zero
//! shared secret for *every* private key, so a handshake built on one proves nothing about
//! who sent it. Ours refuses an all-zero result (the contributory behaviour of the kernel's
//! curve25519 and of wireguard-go): snow then fails the message with [`snow::Error::Dh`]
//! before anything is decrypted with the result. Our key pair also lives in a zeroizing
//! [`StaticSecret`], which snow's plain arrays are not.

use snow::params::{CipherChoice, DHChoice, HashChoice};
use snow::resolvers::{CryptoResolver, DefaultResolver};
use snow::types::{Cipher, Dh, Hash, Random};
use x25519_dalek::{PublicKey, StaticSecret};

/// X25519 and ChaCha20-Poly1305 key length.
const KEY_LEN: usize = 32;

/// snow's resolver with our X25519 in place of its own.
#[derive(Debug, Default)]
pub(super) struct Resolver;

impl CryptoResolver for Resolver {
    fn resolve_rng(&self) -> Option<Box<dyn Random>> {
        DefaultResolver.resolve_rng()
    }

    fn resolve_dh(&self, choice: &DHChoice) -> Option<Box<dyn Dh>> {
        match choice {
            DHChoice::Curve25519 => Some(Box::new(X25519::default())),
            _ => None,
        }
    }

    fn resolve_hash(&self, choice: &HashChoice) -> Option<Box<dyn Hash>> {
        DefaultResolver.resolve_hash(choice)
    }

    fn resolve_cipher(&self, choice: &CipherChoice) -> Option<Box<dyn Cipher>> {
        DefaultResolver.resolve_cipher(choice)
    }
}

/// One X25519 key pair (static or ephemeral) that refuses all-zero shared secrets and wipes
/// its private key when dropped.
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
