//! mac1, mac2 and cookie replies: WireGuard's DoS defence in front of the handshake.
//!
//! Every handshake message ends with `mac1 ‖ mac2`. mac1 is keyed by the *recipient's* static
//! public key, so anyone who knows whom they are talking to can produce it; checking it first
//! costs one BLAKE2s and filters out blind garbage before any Diffie-Hellman. mac2 is keyed by a
//! cookie the responder handed out in a cookie reply: a MAC of the sender's address under a secret
//! that changes every two minutes, so a valid mac2 proves the sender can receive packets at its
//! source address. Responders demand it only when the caller says they are under load.
//!
//! Two halves, both sans-IO (`now` and randomness come from the caller):
//! - [`CookieChecker`] is the receiving side, built from *our* [`MacKeys`]: verifies mac1/mac2,
//!   issues cookies and seals cookie replies.
//! - [`CookieJar`] is the sending side, one per peer, built from the *peer's* [`MacKeys`]: stamps
//!   mac1/mac2 on outgoing handshake messages and opens the cookie replies they provoke.

use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard};
use std::time::Duration;

use blake2::digest::consts::U16;
use blake2::digest::{KeyInit, Mac as _};
use blake2::{Blake2s256, Blake2sMac, Digest as _};
use chacha20poly1305::aead::AeadInPlace as _;
use chacha20poly1305::{Tag, XChaCha20Poly1305, XNonce};
use rand_core::{CryptoRng, RngCore};
use zeroize::Zeroizing;

/// Prefix hashed with a static public key to derive the mac1 key.
pub const LABEL_MAC1: &[u8; 8] = b"mac1----";
/// Prefix hashed with a static public key to derive the cookie-reply encryption key.
pub const LABEL_COOKIE: &[u8; 8] = b"cookie--";
/// Lifetime of the responder's cookie secret; a cookie is worth this long at most.
pub const COOKIE_SECRET_MAX_AGE: Duration = Duration::from_secs(120);
/// Margin by which a sender stops using a cookie before the responder's secret could have
/// rotated under it (the kernel's `COOKIE_SECRET_LATENCY`).
pub const COOKIE_SECRET_LATENCY: Duration = Duration::from_secs(5);
/// Length of a cookie.
pub const COOKIE_LEN: usize = 16;
/// Length of mac1 and of mac2.
pub const MAC_LEN: usize = 16;
/// Length of a cookie reply message.
pub const COOKIE_REPLY_LEN: usize = 64;
/// Message type of a cookie reply (a little-endian 32-bit word on the wire).
pub const COOKIE_REPLY_TYPE: u32 = 3;

/// Length of a cookie reply's XChaCha20-Poly1305 nonce.
pub const NONCE_LEN: usize = 24;
const NONCE_OFFSET: usize = 8;
const ENCRYPTED_COOKIE_OFFSET: usize = NONCE_OFFSET + NONCE_LEN;
const TAG_OFFSET: usize = ENCRYPTED_COOKIE_OFFSET + COOKIE_LEN;

/// Keyed BLAKE2s with a 16-byte output: the whitepaper's `MAC(key, ·)`.
type Mac16 = Blake2sMac<U16>;

/// Why a cookie operation failed; each is a reason the caller can count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CookieError {
    /// A message handed to [`CookieJar::stamp`] has no room for mac1 and mac2 at the offset.
    #[error("message of {len} bytes has no room for mac1 and mac2 at offset {mac1_offset}")]
    MessageTooShort { len: usize, mac1_offset: usize },
    /// A cookie reply that is not exactly 64 bytes long.
    #[error("cookie reply is {0} bytes, expected 64")]
    ReplyLength(usize),
    /// A 64-byte message whose type word is not 3.
    #[error("message type {0} is not a cookie reply")]
    ReplyType(u32),
    /// A cookie reply arrived but no handshake message is waiting for one (none was sent, or
    /// its reply was already consumed).
    #[error("cookie reply without a handshake message awaiting one")]
    NoMac1Sent,
    /// The cookie did not decrypt: wrong responder key, or not an answer to our last message.
    #[error("cookie reply failed authentication")]
    Decrypt,
}

/// The two keys derived from one static public key: mac1 is keyed with the first, cookie replies
/// to messages sent to that key are encrypted with the second.
///
/// Both derive from a public key, so they are not secrets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MacKeys {
    mac1_key: [u8; 32],
    cookie_key: [u8; 32],
}

impl MacKeys {
    /// `mac1_key = HASH(LABEL_MAC1 ‖ pk)`, `cookie_key = HASH(LABEL_COOKIE ‖ pk)`.
    pub fn new(static_public: &[u8; 32]) -> Self {
        Self {
            mac1_key: label_hash(LABEL_MAC1, static_public),
            cookie_key: label_hash(LABEL_COOKIE, static_public),
        }
    }
}

fn label_hash(label: &[u8; 8], static_public: &[u8; 32]) -> [u8; 32] {
    Blake2s256::new()
        .chain_update(label)
        .chain_update(static_public)
        .finalize()
        .into()
}

/// A MAC state keyed with `key`. BLAKE2s takes keys of 1 to 32 bytes; `K` is checked at compile
/// time, so construction cannot fail at run time.
fn mac_state<const K: usize>(key: &[u8; K]) -> Mac16 {
    const { assert!(K >= 1 && K <= 32) };
    <Mac16 as KeyInit>::new_from_slice(key).expect("BLAKE2s key length is checked at compile time")
}

fn finish(mac: Mac16) -> [u8; MAC_LEN] {
    mac.finalize().into_bytes().into()
}

/// mac1 of a handshake message: `MAC(mac1_key, msg[0 : offsetof(mac1)])`.
pub fn mac1(keys: &MacKeys, msg_before_mac1: &[u8]) -> [u8; MAC_LEN] {
    finish(mac_state(&keys.mac1_key).chain_update(msg_before_mac1))
}

/// mac2 of a handshake message: `MAC(cookie, msg[0 : offsetof(mac2)])`.
pub fn mac2(cookie: &[u8; COOKIE_LEN], msg_before_mac2: &[u8]) -> [u8; MAC_LEN] {
    finish(mac_state(cookie).chain_update(msg_before_mac2))
}

/// `N` bytes at `offset`, or `None` when `bytes` is too short (never panics).
fn array_at<const N: usize>(bytes: &[u8], offset: usize) -> Option<[u8; N]> {
    let end = offset.checked_add(N)?;
    bytes.get(offset..end)?.try_into().ok()
}

/// Constant-time check of the MAC stored at `offset` against `MAC(state, msg[..offset])`.
/// A message too short to hold the MAC there fails.
fn verify_mac_at(state: Mac16, msg: &[u8], offset: usize) -> bool {
    let (Some(covered), Some(tag)) = (msg.get(..offset), array_at::<MAC_LEN>(msg, offset)) else {
        return false;
    };
    state.chain_update(covered).verify_slice(&tag).is_ok()
}

/// What the receiving side concluded about a handshake message's MACs; see
/// [`CookieChecker::check`]. The under-load policy (when to call it under load, what to do with
/// each verdict) belongs to the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MacVerdict {
    /// mac1 is wrong (or the message is too short to hold the MACs): drop silently.
    InvalidMac1,
    /// mac1 is right and we are not under load: process the message.
    Valid,
    /// Under load and mac2 is missing or wrong: answer with a cookie reply, do not process.
    NeedsCookie,
    /// Under load and mac2 is right: the sender owns its address; apply the per-source rate
    /// limit, then process.
    Mac2Valid,
}

/// Receiving side of mac1/mac2: verifies them against our static key and issues cookies.
///
/// Cookies are `MAC(R, source address)` under a 32-byte random secret `R` that must not outlive
/// [`COOKIE_SECRET_MAX_AGE`]. Rotation is explicit so that everything else stays a pure function
/// of its inputs: the owner calls [`CookieChecker::rotate_if_due`] with `now` and its RNG before
/// handling each handshake message (or from a timer at least once per 120 s). Verification uses
/// the current secret only, so a rotation invalidates every cookie handed out before it, exactly
/// as the kernel does.
///
/// [`CookieChecker::share`] makes another checker with the same secret, for other threads (the
/// workers answer cookies under load): a cookie one of them hands out verifies at all, and a
/// rotation by any reaches all.
pub struct CookieChecker {
    keys: MacKeys,
    secret: Arc<RwLock<CookieSecret>>,
}

/// The secret cookies are made with, and when it was drawn.
struct CookieSecret {
    secret: Zeroizing<[u8; 32]>,
    born: Duration,
}

impl std::fmt::Debug for CookieChecker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CookieChecker")
            .field("secret_born", &self.current().born)
            .finish_non_exhaustive()
    }
}

impl CookieChecker {
    /// A checker for messages addressed to the static key `ours` was derived from, with a fresh
    /// secret born at `now`.
    pub fn new(ours: MacKeys, now: Duration, rng: &mut (impl RngCore + CryptoRng)) -> Self {
        let mut secret = Zeroizing::new([0u8; 32]);
        rng.fill_bytes(secret.as_mut());
        Self {
            keys: ours,
            secret: Arc::new(RwLock::new(CookieSecret { secret, born: now })),
        }
    }

    /// Another checker for the same key that shares this one's secret.
    pub fn share(&self) -> Self {
        Self {
            keys: self.keys.clone(),
            secret: Arc::clone(&self.secret),
        }
    }

    /// The secret in force. A thread that panicked holding the lock left a whole secret behind
    /// (it is only ever replaced whole), so a poisoned lock is read as it is.
    fn current(&self) -> RwLockReadGuard<'_, CookieSecret> {
        self.secret.read().unwrap_or_else(PoisonError::into_inner)
    }

    /// Replaces the cookie secret if it is [`COOKIE_SECRET_MAX_AGE`] old or older at `now`.
    /// Returns whether it did (false also when a sharing checker just did).
    pub fn rotate_if_due(&self, now: Duration, rng: &mut (impl RngCore + CryptoRng)) -> bool {
        let due = |secret: &CookieSecret| now.saturating_sub(secret.born) >= COOKIE_SECRET_MAX_AGE;
        if !due(&self.current()) {
            return false;
        }
        let mut secret = self.secret.write().unwrap_or_else(PoisonError::into_inner);
        if !due(&secret) {
            return false;
        }
        rng.fill_bytes(secret.secret.as_mut());
        secret.born = now;
        true
    }

    /// Checks the mac1 at `mac1_offset` in `msg` (constant time). Messages too short to hold it
    /// fail.
    pub fn verify_mac1(&self, msg: &[u8], mac1_offset: usize) -> bool {
        verify_mac_at(mac_state(&self.keys.mac1_key), msg, mac1_offset)
    }

    /// Checks the mac2 at `mac2_offset` in `msg` against the cookie the source whose cookie
    /// input is `src` would hold under the current secret (constant time). Messages too short
    /// to hold it fail.
    pub fn verify_mac2(&self, msg: &[u8], mac2_offset: usize, src: &[u8]) -> bool {
        verify_mac_at(mac_state(&self.cookie(src)), msg, mac2_offset)
    }

    /// The cookie for a source under the current secret: `MAC(R, source)` over the source's
    /// cookie input `src`, the bytes its address type binds a cookie to (see
    /// `crate::protocol::Address`; for UDP: IP ‖ port, as the kernel does).
    pub fn cookie(&self, src: &[u8]) -> [u8; COOKIE_LEN] {
        finish(mac_state(&self.current().secret).chain_update(src))
    }

    /// The receiving-side decision for a handshake message whose mac1 sits at `mac1_offset`
    /// (mac2 follows it). mac1 is always checked first. Not under load, a valid mac1 is enough
    /// ([`MacVerdict::Valid`], mac2 is not looked at). Under load the message must also carry a
    /// mac2 made with this source's current cookie ([`MacVerdict::Mac2Valid`]); otherwise the
    /// sender is to be sent a cookie ([`MacVerdict::NeedsCookie`]).
    pub fn check(
        &self,
        msg: &[u8],
        mac1_offset: usize,
        src: &[u8],
        under_load: bool,
    ) -> MacVerdict {
        if !self.verify_mac1(msg, mac1_offset) {
            return MacVerdict::InvalidMac1;
        }
        if !under_load {
            return MacVerdict::Valid;
        }
        // A sender without a cookie sends a zero mac2 (the flood's case): no MAC to compute.
        match mac1_offset.checked_add(MAC_LEN) {
            Some(mac2_offset)
                if array_at::<MAC_LEN>(msg, mac2_offset)
                    .is_some_and(|mac2| mac2 != [0; MAC_LEN])
                    && self.verify_mac2(msg, mac2_offset, src) =>
            {
                MacVerdict::Mac2Valid
            }
            _ => MacVerdict::NeedsCookie,
        }
    }

    /// The cookie reply answering `msg` (whose mac1 is at `mac1_offset`) from the source with
    /// cookie input `src`, under `nonce` (never used twice); `None` if `msg` is too short to
    /// hold a sender index and mac1.
    pub fn reply_to(
        &self,
        msg: &[u8],
        mac1_offset: usize,
        src: &[u8],
        nonce: [u8; NONCE_LEN],
    ) -> Option<[u8; COOKIE_REPLY_LEN]> {
        let sender = u32::from_le_bytes(array_at(msg, 4)?);
        let mac1 = array_at(msg, mac1_offset)?;
        Some(self.make_cookie_reply(sender, &mac1, src, nonce))
    }

    /// A cookie reply answering a message from the source with cookie input `src`: `type = 3`, `receiver_index` (the answered
    /// message's sender index), the caller's random `nonce`, and `src`'s cookie sealed with
    /// XChaCha20-Poly1305 under our cookie key, authenticated with the answered message's mac1.
    pub fn make_cookie_reply(
        &self,
        receiver_index: u32,
        mac1_of_msg: &[u8; MAC_LEN],
        src: &[u8],
        nonce: [u8; NONCE_LEN],
    ) -> [u8; COOKIE_REPLY_LEN] {
        let mut sealed = self.cookie(src);
        let tag = XChaCha20Poly1305::new(&self.keys.cookie_key.into())
            .encrypt_in_place_detached(XNonce::from_slice(&nonce), mac1_of_msg, &mut sealed)
            .expect("XChaCha20-Poly1305 seals 16 bytes without fail");
        let mut reply = [0u8; COOKIE_REPLY_LEN];
        let (header, body) = reply.split_at_mut(NONCE_OFFSET);
        let (type_word, index) = header.split_at_mut(4);
        type_word.copy_from_slice(&COOKIE_REPLY_TYPE.to_le_bytes());
        index.copy_from_slice(&receiver_index.to_le_bytes());
        let (nonce_field, encrypted) = body.split_at_mut(NONCE_LEN);
        nonce_field.copy_from_slice(&nonce);
        let (cookie_field, tag_field) = encrypted.split_at_mut(COOKIE_LEN);
        cookie_field.copy_from_slice(&sealed);
        tag_field.copy_from_slice(&tag);
        reply
    }
}

/// A cookie received from a peer and when it arrived.
struct HeldCookie {
    cookie: Zeroizing<[u8; COOKIE_LEN]>,
    received_at: Duration,
}

/// Sending side of mac1/mac2 for one peer: stamps outgoing handshake messages and keeps the
/// cookie the peer last sent us.
///
/// A cookie is used for [`COOKIE_SECRET_MAX_AGE`] − [`COOKIE_SECRET_LATENCY`] = 115 s after it
/// arrived, as the kernel does: the margin keeps us from sending a mac2 the responder's rotated
/// secret would reject. Matching a cookie reply's receiver index to this peer is the caller's
/// job (it owns the index table); the jar checks type, length and authenticity.
pub struct CookieJar {
    peer: MacKeys,
    held: Option<HeldCookie>,
    last_mac1: Option<[u8; MAC_LEN]>,
}

impl std::fmt::Debug for CookieJar {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CookieJar")
            .field(
                "cookie_received_at",
                &self.held.as_ref().map(|h| h.received_at),
            )
            .field("awaiting_reply", &self.last_mac1.is_some())
            .finish_non_exhaustive()
    }
}

impl CookieJar {
    /// A jar for messages sent to the peer whose static key `peer` was derived from.
    pub fn new(peer: MacKeys) -> Self {
        Self {
            peer,
            held: None,
            last_mac1: None,
        }
    }

    fn valid_cookie(&self, now: Duration) -> Option<&[u8; COOKIE_LEN]> {
        let held = self.held.as_ref()?;
        let age = now.checked_sub(held.received_at)?;
        (age < COOKIE_SECRET_MAX_AGE - COOKIE_SECRET_LATENCY).then_some(&*held.cookie)
    }

    /// Whether a cookie younger than 115 s is held, i.e. whether [`CookieJar::stamp`] would
    /// write a real mac2.
    pub fn has_valid_cookie(&self, now: Duration) -> bool {
        self.valid_cookie(now).is_some()
    }

    /// Writes mac1 at `mac1_offset` and mac2 right after it: mac2 from the held cookie if it is
    /// still valid at `now`, else 16 zero bytes. Remembers the mac1 so that the cookie reply this
    /// message may provoke can be opened.
    pub fn stamp(
        &mut self,
        now: Duration,
        msg: &mut [u8],
        mac1_offset: usize,
    ) -> Result<(), CookieError> {
        let too_short = CookieError::MessageTooShort {
            len: msg.len(),
            mac1_offset,
        };
        let mac2_offset = mac1_offset.checked_add(MAC_LEN).ok_or(too_short)?;
        let end = mac2_offset.checked_add(MAC_LEN).ok_or(too_short)?;
        let macs = msg.get_mut(..end).ok_or(too_short)?;

        let (before_mac1, rest) = macs.split_at_mut(mac1_offset);
        let mac1 = mac1(&self.peer, before_mac1);
        rest[..MAC_LEN].copy_from_slice(&mac1);

        let mac2 = match self.valid_cookie(now) {
            Some(cookie) => mac2(cookie, &macs[..mac2_offset]),
            None => [0u8; MAC_LEN],
        };
        macs[mac2_offset..].copy_from_slice(&mac2);
        self.last_mac1 = Some(mac1);
        Ok(())
    }

    /// Opens a cookie reply to the last message stamped and keeps its cookie, received at `now`.
    /// A reply is accepted once: afterwards another stamp is needed before the next one, so a
    /// replayed reply cannot refresh the cookie's age.
    pub fn consume_reply(&mut self, now: Duration, reply: &[u8]) -> Result<(), CookieError> {
        let wrong_length = CookieError::ReplyLength(reply.len());
        if reply.len() != COOKIE_REPLY_LEN {
            return Err(wrong_length);
        }
        let msg_type = u32::from_le_bytes(array_at(reply, 0).ok_or(wrong_length)?);
        if msg_type != COOKIE_REPLY_TYPE {
            return Err(CookieError::ReplyType(msg_type));
        }
        let last_mac1 = self.last_mac1.ok_or(CookieError::NoMac1Sent)?;

        let nonce: [u8; NONCE_LEN] = array_at(reply, NONCE_OFFSET).ok_or(wrong_length)?;
        let tag: [u8; MAC_LEN] = array_at(reply, TAG_OFFSET).ok_or(wrong_length)?;
        let mut cookie = Zeroizing::new(
            array_at::<COOKIE_LEN>(reply, ENCRYPTED_COOKIE_OFFSET).ok_or(wrong_length)?,
        );
        XChaCha20Poly1305::new(&self.peer.cookie_key.into())
            .decrypt_in_place_detached(
                XNonce::from_slice(&nonce),
                &last_mac1,
                cookie.as_mut(),
                Tag::from_slice(&tag),
            )
            .map_err(|_| CookieError::Decrypt)?;

        self.held = Some(HeldCookie {
            cookie,
            received_at: now,
        });
        self.last_mac1 = None;
        Ok(())
    }
}

#[cfg(test)]
mod tests;
