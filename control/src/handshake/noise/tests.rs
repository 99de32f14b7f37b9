//! Low-order public keys as ephemeral or static: every Diffie-Hellman with one gives all
//! zeros, and the handshake is refused as [`NoiseError::LowOrderKey`].

use super::*;
use crate::handshake::resolver::X25519;
use snow::params::{CipherChoice, DHChoice, HashChoice};
use snow::resolvers::{CryptoResolver, DefaultResolver};
use snow::types::{Cipher, Dh, Hash, Random};
use x25519_dalek::{PublicKey, StaticSecret};

/// The points of order 1, 2, 4 and 8 on Curve25519 as u-coordinates, in canonical form and
/// (where they fit in 255 bits) non-canonical (u + p), plus top-bit variants, which X25519
/// ignores.
const LOW_ORDER: [[u8; 32]; 9] = [
    [0; 32],
    hex("0100000000000000000000000000000000000000000000000000000000000000"),
    hex("e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800"),
    hex("5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157"),
    hex("ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"),
    hex("edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"),
    hex("eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"),
    hex("0000000000000000000000000000000000000000000000000000000000000080"),
    hex("e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b880"),
];

const fn hex(text: &str) -> [u8; 32] {
    let text = text.as_bytes();
    let mut out = [0u8; 32];
    let mut i = 0;
    while i < 32 {
        out[i] = nibble(text[2 * i]) << 4 | nibble(text[2 * i + 1]);
        i += 1;
    }
    out
}

const fn nibble(c: u8) -> u8 {
    match c {
        b'0'..=b'9' => c - b'0',
        _ => c - b'a' + 10,
    }
}

const INITIATOR: [u8; 32] = [0x11; 32];
const RESPONDER: [u8; 32] = [0x22; 32];
const PSK: [u8; 32] = [0; 32];
const TIMESTAMP: [u8; TIMESTAMP_LEN] = [7; TIMESTAMP_LEN];

fn public(private: &[u8; 32]) -> [u8; 32] {
    PublicKey::from(&StaticSecret::from(*private)).to_bytes()
}

#[test]
fn every_low_order_point_gives_an_all_zero_shared_secret() {
    for point in LOW_ORDER {
        for private in [INITIATOR, RESPONDER] {
            assert_eq!(
                x25519_dalek::x25519(private, point),
                [0; 32],
                "{point:02x?}"
            );
        }
    }
}

#[test]
fn genuine_handshake_still_completes() {
    let mut init = [0u8; INITIATION_LEN];
    let mut pending = write_initiation(
        IDENTIFIER,
        &INITIATOR,
        &public(&RESPONDER),
        &PSK,
        1,
        &TIMESTAMP,
        &mut init,
    )
    .unwrap();
    let received = read_initiation(IDENTIFIER, &RESPONDER, &init).unwrap();
    assert_eq!(received.peer_public, public(&INITIATOR));
    let mut response = [0u8; RESPONSE_LEN];
    let responder = received.write_response(&PSK, 2, &mut response).unwrap();
    let initiator = pending.read_response(&response).unwrap();
    assert_eq!(*initiator.send, *responder.recv);
}

#[test]
fn low_order_ephemeral_in_an_initiation_is_refused() {
    let mut genuine = [0u8; INITIATION_LEN];
    write_initiation(
        IDENTIFIER,
        &INITIATOR,
        &public(&RESPONDER),
        &PSK,
        1,
        &TIMESTAMP,
        &mut genuine,
    )
    .unwrap();
    for point in LOW_ORDER {
        let mut init = genuine;
        init[INITIATION_NOISE.start..INITIATION_NOISE.start + 32].copy_from_slice(&point);
        assert_eq!(
            read_initiation(IDENTIFIER, &RESPONDER, &init).unwrap_err(),
            NoiseError::LowOrderKey,
            "{point:02x?}"
        );
    }
}

#[test]
fn low_order_ephemeral_in_a_response_is_refused_and_the_handshake_survives() {
    let mut init = [0u8; INITIATION_LEN];
    let mut pending = write_initiation(
        IDENTIFIER,
        &INITIATOR,
        &public(&RESPONDER),
        &PSK,
        1,
        &TIMESTAMP,
        &mut init,
    )
    .unwrap();
    let mut genuine = [0u8; RESPONSE_LEN];
    read_initiation(IDENTIFIER, &RESPONDER, &init)
        .unwrap()
        .write_response(&PSK, 2, &mut genuine)
        .unwrap();
    for point in LOW_ORDER {
        let mut response = genuine;
        response[RESPONSE_NOISE.start..RESPONSE_NOISE.start + 32].copy_from_slice(&point);
        assert_eq!(
            pending.read_response(&response).unwrap_err(),
            NoiseError::LowOrderKey,
            "{point:02x?}"
        );
    }
    assert!(pending.read_response(&genuine).is_ok());
}

/// An initiator whose static "key" is the low-order `point`: it has no private key for it,
/// but needs none, since the `ss` result is all zeros on both sides. Its ephemeral is genuine.
struct LowOrderStatic {
    point: [u8; 32],
}

impl CryptoResolver for LowOrderStatic {
    fn resolve_rng(&self) -> Option<Box<dyn Random>> {
        DefaultResolver.resolve_rng()
    }

    fn resolve_dh(&self, _: &DHChoice) -> Option<Box<dyn Dh>> {
        Some(Box::new(StaticOrEphemeral {
            point: self.point,
            ephemeral: None,
        }))
    }

    fn resolve_hash(&self, choice: &HashChoice) -> Option<Box<dyn Hash>> {
        DefaultResolver.resolve_hash(choice)
    }

    fn resolve_cipher(&self, choice: &CipherChoice) -> Option<Box<dyn Cipher>> {
        DefaultResolver.resolve_cipher(choice)
    }
}

/// Set as a static: the low-order point, every DH all zeros. Generated as an ephemeral: a
/// real key pair.
struct StaticOrEphemeral {
    point: [u8; 32],
    ephemeral: Option<X25519>,
}

impl Dh for StaticOrEphemeral {
    fn name(&self) -> &'static str {
        "25519"
    }
    fn pub_len(&self) -> usize {
        32
    }
    fn priv_len(&self) -> usize {
        32
    }
    fn set(&mut self, _: &[u8]) {}
    fn generate(&mut self, rng: &mut dyn Random) -> Result<(), snow::Error> {
        let mut key = X25519::default();
        key.generate(rng)?;
        self.ephemeral = Some(key);
        Ok(())
    }
    fn pubkey(&self) -> &[u8] {
        self.ephemeral.as_ref().map_or(&self.point, |e| e.pubkey())
    }
    fn privkey(&self) -> &[u8] {
        self.ephemeral.as_ref().map_or(&[0; 32], |e| e.privkey())
    }
    fn dh(&self, pubkey: &[u8], out: &mut [u8]) -> Result<(), snow::Error> {
        match &self.ephemeral {
            Some(e) => e.dh(pubkey, out),
            None => {
                out[..32].fill(0);
                Ok(())
            }
        }
    }
}

#[test]
fn low_order_static_in_an_initiation_is_refused() {
    let responder = public(&RESPONDER);
    for point in LOW_ORDER {
        let mut state = snow::Builder::with_resolver(params(), Box::new(LowOrderStatic { point }))
            .local_private_key(&[0; 32])
            .and_then(|b| b.remote_public_key(&responder))
            .and_then(|b| b.prologue(IDENTIFIER))
            .and_then(|b| b.psk(PSK_LOCATION, &PSK))
            .and_then(|b| b.build_initiator())
            .unwrap();
        let mut init = [0u8; INITIATION_LEN];
        let mut msg = Initiation::new_unchecked(&mut init[..]);
        msg.fill_header();
        msg.set_sender_index(1);
        state
            .write_message(&TIMESTAMP, &mut init[INITIATION_NOISE])
            .unwrap();
        assert_eq!(
            read_initiation(IDENTIFIER, &RESPONDER, &init).unwrap_err(),
            NoiseError::LowOrderKey,
            "{point:02x?}"
        );
    }
}

#[test]
fn our_cipher_seals_as_snows_does_and_refuses_short_or_forged_ciphertext() {
    use crate::handshake::resolver::ChaChaPoly;
    let mut ours = ChaChaPoly::default();
    ours.set(&[9; 32]);
    let mut snows = DefaultResolver
        .resolve_cipher(&CipherChoice::ChaChaPoly)
        .unwrap();
    snows.set(&[9; 32]);
    let (mut sealed, mut expected) = ([0u8; 28], [0u8; 28]);
    assert_eq!(ours.encrypt(7, b"ad", &TIMESTAMP, &mut sealed), 28);
    assert_eq!(snows.encrypt(7, b"ad", &TIMESTAMP, &mut expected), 28);
    assert_eq!(sealed, expected);
    let mut opened = [0u8; TIMESTAMP_LEN];
    assert!(matches!(
        ours.decrypt(7, b"ad", &sealed, &mut opened),
        Ok(12)
    ));
    assert_eq!(opened, TIMESTAMP);
    for len in 0..sealed.len() {
        assert!(ours.decrypt(7, b"ad", &sealed[..len], &mut opened).is_err());
    }
    let mut forged = sealed;
    forged[3] ^= 1;
    assert!(ours.decrypt(7, b"ad", &forged, &mut opened).is_err());
    assert!(ours.decrypt(8, b"ad", &sealed, &mut opened).is_err());
}
