//! Signatures with a node's X25519 identity (XEdDSA, as Signal specifies it): the one place
//! that signs and verifies, for routing origins (`key ‖ seqno`, in control) and PONGs (the
//! PING's id, here). XEdDSA needs no second key pair: a node's public key, which already is its
//! identity and its fc00 address, verifies what its private key signs.

use rand_core::OsRng;
use xeddsa::xed25519::{PrivateKey, PublicKey};
use xeddsa::{Sign, Verify};

/// Bytes of a signature.
pub const SIGNATURE_LEN: usize = 64;

/// `message` signed with the X25519 private key `private` (the nonce's 64 random bytes from
/// the OS, as XEdDSA asks).
pub fn sign(private: &[u8; 32], message: &[u8]) -> [u8; SIGNATURE_LEN] {
    // The xeddsa key wipes itself on drop.
    PrivateKey(*private).sign(message, OsRng)
}

/// Whether `signature` is `message` signed by the owner of the X25519 public key `public`.
/// A key that is no point of the curve verifies nothing.
pub fn verify(public: &[u8; 32], message: &[u8], signature: &[u8; SIGNATURE_LEN]) -> bool {
    PublicKey(*public).verify(message, signature).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn public_key(private: &[u8; 32]) -> [u8; 32] {
        x25519_dalek::PublicKey::from(&x25519_dalek::StaticSecret::from(*private)).to_bytes()
    }

    #[test]
    fn a_signature_verifies_for_its_key_and_message_only() {
        let private = [7u8; 32];
        let public = public_key(&private);
        let other = public_key(&[8u8; 32]);
        let signature = sign(&private, b"message");
        assert!(verify(&public, b"message", &signature));
        assert!(!verify(&public, b"messagf", &signature));
        assert!(!verify(&other, b"message", &signature));
        let mut bent = signature;
        bent[40] ^= 1;
        assert!(!verify(&public, b"message", &bent));
    }
}
