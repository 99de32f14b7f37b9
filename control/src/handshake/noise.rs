//! The Noise_IKpsk2 part of the WireGuard handshake, through `snow`.
//!
//! WireGuard's handshake is plain Noise IKpsk2 with the prologue `WireGuard v1 zx2c4 Jason@zx2c4.com`,
//! framed in messages that add a type word, indices and two MACs. This module owns only the Noise
//! bytes (`initiation[8..116]`, `response[12..60]`) and the indices; mac1/mac2 are stamped and
//! checked by [`super::cookie`], replay of timestamps by [`super::tai64n`]. Keeping snow behind this
//! small surface means the rest of the crate never sees a `snow::HandshakeState`.
//!
//! Ephemeral keys come from snow's resolver (the OS RNG); everything else is deterministic.
//! X25519 is ours ([`super::resolver`]): it refuses the all-zero results of low-order keys.

use rovy_dataplane::DropReason;
use rovy_dataplane::wire::{INITIATION_LEN, Initiation, RESPONSE_LEN, Response};
use snow::params::NoiseParams;
use zeroize::Zeroizing;

use super::resolver::Resolver;

/// Noise protocol name of WireGuard's construction.
pub const CONSTRUCTION: &str = "Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s";
/// WireGuard's prologue ("identifier"), the one links use. Every function here takes the
/// identifier as a parameter: another one (upper sessions') makes handshakes that can never be
/// taken for WireGuard's, with everything else the same.
pub const IDENTIFIER: &[u8] = b"WireGuard v1 zx2c4 Jason@zx2c4.com";
/// Length of the encrypted TAI64N timestamp payload.
pub const TIMESTAMP_LEN: usize = 12;
/// Noise message 1 (e, es, s, ss + timestamp) as carried in the initiation.
const INITIATION_NOISE: std::ops::Range<usize> = 8..116;
/// Noise message 2 (e, ee, se, psk + empty payload) as carried in the response.
const RESPONSE_NOISE: std::ops::Range<usize> = 12..60;
/// snow's PSK slot for the `psk2` modifier.
const PSK_LOCATION: u8 = 2;

/// Why a Noise step failed. None of these are worth more than a counted drop.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum NoiseError {
    /// The message did not decrypt or authenticate (wrong keys, tampering, wrong peer).
    #[error("handshake message failed Noise processing")]
    Decrypt,
    /// The remote static key is not 32 bytes or the peer is unknown.
    #[error("handshake names no usable static key")]
    BadStatic,
    /// Building the Noise state failed (bad local key material).
    #[error("cannot set up the Noise state")]
    Setup,
    /// A Diffie-Hellman gave all zeros: the message carries a low-order ephemeral or static.
    #[error("handshake message carries a low-order public key")]
    LowOrderKey,
}

impl NoiseError {
    /// The drop counter a message failing with this error is counted under.
    pub fn drop_reason(self) -> DropReason {
        match self {
            NoiseError::LowOrderKey => DropReason::LowOrderKey,
            NoiseError::Decrypt | NoiseError::BadStatic | NoiseError::Setup => {
                DropReason::HandshakeFailed
            }
        }
    }
}

/// What a failed read of a peer's Noise message means.
fn read_error(error: snow::Error) -> NoiseError {
    match error {
        snow::Error::Dh => NoiseError::LowOrderKey,
        _ => NoiseError::Decrypt,
    }
}

/// The two directional ChaCha20-Poly1305 keys a completed handshake yields. Zeroized on drop.
pub struct TransportKeys {
    /// Key for packets we send.
    pub send: Zeroizing<[u8; 32]>,
    /// Key for packets we receive.
    pub recv: Zeroizing<[u8; 32]>,
    /// Our index: peers put it in the receiver field of data messages to us.
    pub local_index: u32,
    /// The peer's index: goes in the receiver field of data messages we send.
    pub remote_index: u32,
}

impl std::fmt::Debug for TransportKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TransportKeys")
            .field("local_index", &self.local_index)
            .field("remote_index", &self.remote_index)
            .finish_non_exhaustive()
    }
}

/// The static public key of `private` as the handshakes here see it: X25519's (in fuzz builds,
/// the cheap stand-in that replaces X25519 there).
pub fn public_key(private: &[u8; 32]) -> [u8; 32] {
    super::resolver::public_key(private)
}

fn params() -> NoiseParams {
    // The constant is a valid Noise name; parsing cannot fail for it.
    CONSTRUCTION
        .parse()
        .unwrap_or_else(|_| unreachable!("{CONSTRUCTION} parses"))
}

/// A builder for WireGuard's construction over our [`Resolver`].
fn builder<'a>() -> snow::Builder<'a> {
    snow::Builder::with_resolver(params(), Box::new(Resolver))
}

/// A snow handshake state, boxed so that it is not copied as it moves, with its PSK copy
/// overwritten when dropped.
///
/// What of our secrets a state holds, and what is wiped when it is dropped (one is built for
/// every initiation we send and every initiation with a valid mac1 we receive):
/// - the static private key and the ephemeral key pair: in our [`super::resolver`] X25519,
///   wiped on drop;
/// - the cipher keys of the handshake and, after the last message, of the session: in our
///   ChaCha20-Poly1305, wiped on drop;
/// - a copy of the PSK in snow's `psks` array: overwritten with zeros here on drop;
/// - **not wiped**: snow's chaining key `ck` and transcript hash `h` (plain arrays in its
///   `SymmetricState`, unreachable from outside; `ck` derives the session keys) and its BLAKE2s
///   state, and the stack temporaries inside snow's `read_message`/`write_message` and
///   `dangerously_get_raw_split` (DH results, HKDF/HMAC outputs and pads, the checkpoint a
///   failed read restores). snow 0.10 has no zeroize support; fixing these needs a change in
///   snow itself.
struct NoiseState(Box<snow::HandshakeState>);

impl Drop for NoiseState {
    fn drop(&mut self) {
        // Cannot fail: the slot exists and the key has the right length.
        let _ = self.0.set_psk(usize::from(PSK_LOCATION), &[0; 32]);
    }
}

fn split(state: &mut snow::HandshakeState, local_index: u32, remote_index: u32) -> TransportKeys {
    let (initiator_to_responder, responder_to_initiator) = state.dangerously_get_raw_split();
    let (i2r, r2i) = (
        Zeroizing::new(initiator_to_responder),
        Zeroizing::new(responder_to_initiator),
    );
    let (send, recv) = if state.is_initiator() {
        (i2r, r2i)
    } else {
        (r2i, i2r)
    };
    TransportKeys {
        send,
        recv,
        local_index,
        remote_index,
    }
}

/// An initiation we sent and whose response we are waiting for.
pub struct PendingInitiation {
    state: NoiseState,
    local_index: u32,
}

impl std::fmt::Debug for PendingInitiation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingInitiation")
            .field("local_index", &self.local_index)
            .finish_non_exhaustive()
    }
}

/// Writes a handshake initiation into `out` (type, sender index, Noise message 1 carrying
/// `timestamp`), leaving mac1 and mac2 zero for the cookie jar to stamp.
///
/// `identifier` is the Noise prologue ([`IDENTIFIER`] for WireGuard). `psk` is the peer's
/// preshared key or 32 zero bytes when none is configured, exactly as WireGuard does.
pub fn write_initiation(
    identifier: &[u8],
    local_private: &[u8; 32],
    peer_public: &[u8; 32],
    psk: &[u8; 32],
    local_index: u32,
    timestamp: &[u8; TIMESTAMP_LEN],
    out: &mut [u8; INITIATION_LEN],
) -> Result<PendingInitiation, NoiseError> {
    let mut state = builder()
        .local_private_key(local_private)
        .and_then(|b| b.remote_public_key(peer_public))
        .and_then(|b| b.prologue(identifier))
        .and_then(|b| b.psk(PSK_LOCATION, psk))
        .and_then(|b| b.build_initiator())
        .map(|state| NoiseState(Box::new(state)))
        .map_err(|_| NoiseError::Setup)?;
    out.fill(0);
    let mut msg = Initiation::new_unchecked(&mut out[..]);
    msg.fill_header();
    msg.set_sender_index(local_index);
    state
        .0
        .write_message(timestamp, &mut out[INITIATION_NOISE])
        .map_err(|_| NoiseError::Setup)?;
    Ok(PendingInitiation { state, local_index })
}

impl PendingInitiation {
    /// Our sender index in the initiation; the response names it as its receiver.
    pub fn local_index(&self) -> u32 {
        self.local_index
    }

    /// Consumes a response to this initiation. The caller has already checked the message type,
    /// length, receiver index and mac1. On failure the pending state is kept so a forged
    /// response cannot cancel a genuine handshake in flight.
    /// A successful read finishes the handshake; the caller then drops this state.
    pub fn read_response(&mut self, msg: &[u8; RESPONSE_LEN]) -> Result<TransportKeys, NoiseError> {
        let response = Response::new_unchecked(&msg[..]);
        let remote_index = response.sender_index();
        // snow restores its symmetric state when a read fails, so a forged response leaves
        // this handshake able to accept the genuine one.
        let mut payload = [0u8; 0];
        self.state
            .0
            .read_message(&msg[RESPONSE_NOISE], &mut payload)
            .map_err(read_error)?;
        Ok(split(&mut self.state.0, self.local_index, remote_index))
    }
}

/// A decrypted, authenticated initiation from some peer, not yet answered.
pub struct ReceivedInitiation {
    state: NoiseState,
    /// The initiator's static public key: who this is.
    pub peer_public: [u8; 32],
    /// The initiator's TAI64N timestamp, for the replay rule.
    pub timestamp: [u8; TIMESTAMP_LEN],
    /// The initiator's index, the receiver of our response.
    pub remote_index: u32,
}

impl std::fmt::Debug for ReceivedInitiation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReceivedInitiation")
            .field("remote_index", &self.remote_index)
            .finish_non_exhaustive()
    }
}

/// Decrypts an initiation addressed to `local_private` under the prologue `identifier`. The
/// caller has already checked type, length and mac1 (so no DH is spent on unauthenticated junk)
/// and decides from [`ReceivedInitiation::peer_public`] whether the peer is known.
pub fn read_initiation(
    identifier: &[u8],
    local_private: &[u8; 32],
    msg: &[u8; INITIATION_LEN],
) -> Result<ReceivedInitiation, NoiseError> {
    let mut state = builder()
        .local_private_key(local_private)
        .and_then(|b| b.prologue(identifier))
        .and_then(|b| b.build_responder())
        .map(|state| NoiseState(Box::new(state)))
        .map_err(|_| NoiseError::Setup)?;
    let mut timestamp = [0u8; TIMESTAMP_LEN];
    let len = state
        .0
        .read_message(&msg[INITIATION_NOISE], &mut timestamp)
        .map_err(read_error)?;
    if len != TIMESTAMP_LEN {
        return Err(NoiseError::Decrypt);
    }
    let peer_public: [u8; 32] = state
        .0
        .get_remote_static()
        .and_then(|s| s.try_into().ok())
        .ok_or(NoiseError::BadStatic)?;
    Ok(ReceivedInitiation {
        state,
        peer_public,
        timestamp,
        remote_index: Initiation::new_unchecked(&msg[..]).sender_index(),
    })
}

impl ReceivedInitiation {
    /// Writes the response into `out` (mac1/mac2 left zero for the cookie jar) and returns the
    /// responder's transport keys. `psk` is the peer's preshared key or zeros.
    pub fn write_response(
        mut self,
        psk: &[u8; 32],
        local_index: u32,
        out: &mut [u8; RESPONSE_LEN],
    ) -> Result<TransportKeys, NoiseError> {
        self.state
            .0
            .set_psk(usize::from(PSK_LOCATION), psk)
            .map_err(|_| NoiseError::Setup)?;
        out.fill(0);
        let mut msg = Response::new_unchecked(&mut out[..]);
        msg.fill_header();
        msg.set_sender_index(local_index);
        msg.set_receiver_index(self.remote_index);
        self.state
            .0
            .write_message(&[], &mut out[RESPONSE_NOISE])
            .map_err(|_| NoiseError::Setup)?;
        Ok(split(&mut self.state.0, local_index, self.remote_index))
    }
}

#[cfg(test)]
mod tests;
