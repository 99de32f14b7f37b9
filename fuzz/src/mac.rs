//! WireGuard's mac1 as the whitepaper writes it (§5.4.4), with the blake2 crate directly.

use blake2::digest::consts::U16;
use blake2::digest::{KeyInit, Mac};
use blake2::{Blake2s256, Blake2sMac, Digest};

/// Keyed BLAKE2s-128 of `covered` (the message up to mac1) under HASH("mac1----" ‖ the
/// recipient's static public key).
pub fn mac1(recipient: &[u8; 32], covered: &[u8]) -> [u8; 16] {
    let key = Blake2s256::new()
        .chain_update(b"mac1----")
        .chain_update(recipient)
        .finalize();
    let mac = <Blake2sMac<U16> as KeyInit>::new_from_slice(&key)
        .unwrap_or_else(|_| unreachable!("a 32-byte key fits BLAKE2s"));
    mac.chain_update(covered).finalize().into_bytes().into()
}
