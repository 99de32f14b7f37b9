//! Origins that cannot be forged (DESIGN §1 Routing, issue 10 §2).
//!
//! A distance vector trusts every neighbour with the seqnos it repeats: a neighbour that
//! announces someone else's key with a huge seqno makes every honest route to that key
//! unfeasible (RFC 8966 §3.5.1 prefers the newer seqno), and the victim cannot outbid it. So a
//! seqno counts only with the origin's signature over `key ‖ seqno`, made with the X25519 key
//! the destination *is* (XEdDSA, so no second key is needed): a [`Proof`].
//!
//! A proof for seqno `s` covers every seqno up to `s`: an older seqno cannot inflate anything,
//! so each destination keeps only its newest verified proof, verified once and then compared.
//! Proofs travel inside UPDATE entries, only where a receiver may not have them (see
//! `transmit.rs`), and a receiver missing one asks for it with a ROUTE_REQ.
//!
//! [`Origins`] is where signing and verifying happen, so the router stays sans-IO: the node
//! uses [`XeddsaOrigins`]; the simulator, which runs thousands of nodes, uses
//! [`SimulatedOrigins`], cheap and with no security at all.

use std::time::Duration;

use blake2::digest::{FixedOutput, KeyInit, Update};
use rovy_dataplane::signature;
use rovy_dataplane::sys::SecretPage;

use super::label::Slot;
use super::message::{RouteRequest, UpdateEntry};
use super::table::seqno_newer;
use super::transmit::LinkRequest;
use super::{NodeKey, Router};

pub use rovy_dataplane::signature::SIGNATURE_LEN;
/// Bytes of a [`Proof`] on the wire: seqno u32, signature.
pub const PROOF_LEN: usize = 4 + SIGNATURE_LEN;

/// Proofs one link may make this node verify at once (a new neighbour's full table) ...
pub const VERIFY_BURST: u32 = 4096;
/// ... and per second after that. Each verification is an Ed25519 check (about 50 µs): a
/// hostile neighbour sending garbage proofs costs at most 5 % of a core, and a 10 000-entry
/// table is verified in 6 s.
pub const VERIFY_RATE: u32 = 1024;

/// The origin's signature that its seqno reached `seqno`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Proof {
    /// The seqno signed.
    pub seqno: u32,
    /// Over [`signed_message`]`(key, seqno)`.
    pub signature: [u8; SIGNATURE_LEN],
}

/// What is signed: the key, then the seqno little-endian (as on the wire).
pub fn signed_message(key: &NodeKey, seqno: u32) -> [u8; 36] {
    let mut message = [0u8; 36];
    message[..32].copy_from_slice(key);
    message[32..].copy_from_slice(&seqno.to_le_bytes());
    message
}

/// Signs this node's seqnos and checks others'.
pub trait Origins: std::fmt::Debug + Send {
    /// This node's proof for `seqno` (its own key).
    fn sign(&mut self, seqno: u32) -> Proof;
    /// Whether `proof` was made by `key`'s owner.
    fn verify(&self, key: &NodeKey, proof: &Proof) -> bool;
}

/// The real thing: XEdDSA with the node's X25519 private key (kept, like the handshake's
/// copy, in a page core dumps leave out).
pub struct XeddsaOrigins {
    key: NodeKey,
    private: SecretPage<32>,
}

impl XeddsaOrigins {
    /// Signs as the owner of `private`, whose public key is `key`.
    pub fn new(key: NodeKey, private: &[u8; 32]) -> Self {
        Self {
            key,
            private: SecretPage::new(private),
        }
    }

    /// Any other `message` signed with the same key (a PONG's, for one).
    pub fn sign_message(&self, message: &[u8]) -> [u8; SIGNATURE_LEN] {
        signature::sign(self.private.expose(), message)
    }
}

impl std::fmt::Debug for XeddsaOrigins {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("XeddsaOrigins").finish_non_exhaustive()
    }
}

impl Origins for XeddsaOrigins {
    fn sign(&mut self, seqno: u32) -> Proof {
        let signature = signature::sign(self.private.expose(), &signed_message(&self.key, seqno));
        Proof { seqno, signature }
    }

    fn verify(&self, key: &NodeKey, proof: &Proof) -> bool {
        signature::verify(key, &signed_message(key, proof.seqno), &proof.signature)
    }
}

/// The public key of [`SimulatedOrigins`]' MAC.
const SIMULATED_KEY: &[u8; 32] = b"rovy simulated origin proof key!";

/// The simulator's stand-in: the "signature" is a keyed BLAKE2s of the message under a fixed,
/// public key, so anyone can make one. It keeps the protocol's shape (proofs travel, are asked
/// for and cached) at a fraction of a microsecond, where XEdDSA would make a 10 000-node run
/// verify for hours. Never for a real node.
#[derive(Debug, Clone)]
pub struct SimulatedOrigins {
    key: NodeKey,
}

impl SimulatedOrigins {
    /// Signs as `key`.
    pub fn new(key: NodeKey) -> Self {
        Self { key }
    }

    /// The proof `key`'s owner makes for `seqno`.
    pub fn proof(key: &NodeKey, seqno: u32) -> Proof {
        let mut mac = blake2::Blake2sMac256::new(SIMULATED_KEY.into());
        mac.update(&signed_message(key, seqno));
        let digest: [u8; 32] = mac.finalize_fixed().into();
        let mut signature = [0u8; SIGNATURE_LEN];
        signature[..32].copy_from_slice(&digest);
        Proof { seqno, signature }
    }
}

impl Origins for SimulatedOrigins {
    fn sign(&mut self, seqno: u32) -> Proof {
        Self::proof(&self.key, seqno)
    }

    fn verify(&self, key: &NodeKey, proof: &Proof) -> bool {
        Self::proof(key, proof.seqno) == *proof
    }
}

/// A token bucket of verifications per link ([`VERIFY_BURST`], [`VERIFY_RATE`]).
#[derive(Debug, Clone, Copy)]
pub(super) struct VerifyBudget {
    tokens: u32,
    refilled: Duration,
}

impl VerifyBudget {
    pub fn new(now: Duration) -> Self {
        Self {
            tokens: VERIFY_BURST,
            refilled: now,
        }
    }

    /// Takes one verification if the link has one left.
    pub fn take(&mut self, now: Duration) -> bool {
        let elapsed = now.saturating_sub(self.refilled);
        let earned = elapsed.as_millis() as u64 * u64::from(VERIFY_RATE) / 1000;
        if earned > 0 {
            self.tokens = (u64::from(self.tokens) + earned).min(u64::from(VERIFY_BURST)) as u32;
            // Only the time the tokens were earned in is used up, so no fraction is lost.
            self.refilled += Duration::from_micros(earned * 1_000_000 / u64::from(VERIFY_RATE));
        }
        let Some(left) = self.tokens.checked_sub(1) else {
            return false;
        };
        self.tokens = left;
        true
    }
}

impl Router {
    /// Whether `entry`'s seqno is proven by its origin (see `origin.rs`): `Some(new)` when it
    /// is, with the newer proof the entry brought if it brought one, `None` (counted) when it
    /// is not. An unproven entry that brought no proof asks the neighbour for it; one whose
    /// proof waits for the link's verification budget does not, so a proof always answers a
    /// request and requests cannot ping-pong.
    pub(super) fn check_origin(
        &mut self,
        slot: Slot,
        entry: &UpdateEntry,
        now: Duration,
    ) -> Option<Option<Proof>> {
        let held = self
            .table
            .find(&entry.key)
            .and_then(|idx| self.table.at(idx))
            .and_then(|dest| dest.proof);
        let mut best = held;
        if let Some(offered) = entry.proof.filter(|p| newer_proof(p, held)) {
            let link = self.links[usize::from(slot.get())].as_mut()?;
            if !link.verify_budget.take(now) {
                self.stats.proofs_deferred += 1;
                return None;
            }
            if !self.origins.verify(&entry.key, &offered) {
                self.stats.proofs_invalid += 1;
                return None;
            }
            best = Some(offered);
        }
        if best.is_none_or(|proof| seqno_newer(entry.seqno, proof.seqno)) {
            self.stats.entries_unproven += 1;
            if entry.proof.is_none() {
                self.queue_request(slot, LinkRequest::Route(RouteRequest::Key(entry.key)));
            }
            return None;
        }
        Some(best.filter(|_| best != held))
    }
}

/// Whether `proof` is for a newer seqno than `held` (or nothing is held).
fn newer_proof(proof: &Proof, held: Option<Proof>) -> bool {
    held.is_none_or(|h| seqno_newer(proof.seqno, h.seqno))
}
