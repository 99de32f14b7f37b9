//! The workers' screen in front of the handshake queue (see `rovy_dataplane::control_queue`).
//!
//! A flood of initiations with a valid mac1 outran the control thread's cookie replies (one
//! Python process sends more than twice as many as control alone answers), so the queue stayed
//! full and the workers dropped most handshake messages unread: a peer restarting during the
//! flood lost initiation after initiation, 5 s each, then lost the initiation with its cookie
//! the same way, and took 11 to 26 s to get a session instead of one cookie round.
//!
//! Now every worker checks mac1 itself. Under load a message with a valid mac2 (its sender
//! proved its address) may take the quarter of the queue kept for such messages, so a flood
//! without cookies can no longer crowd it out; control rate-limits it and does the
//! Diffie-Hellman. A message without one is answered with a cookie reply by the worker, from a
//! budget shared by all workers ([`WORKER_COOKIES_PER_SECOND`]) so that the flood cannot take
//! the workers from the data they carry (a worker that falls behind loses data at its socket);
//! past the budget it goes to control, which answers what it can. Workers and control agree on
//! "under load" through [`Load`] and on cookies through a shared secret
//! ([`CookieChecker::share`]).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use rand_core::{OsRng, RngCore as _};
use rovy_dataplane::DropReason;
use rovy_dataplane::control_queue::{HandshakeScreen, Screened};
use rovy_dataplane::link_addr::LinkAddr;
use rovy_dataplane::wire::{
    self, COOKIE_REPLY_LEN, INITIATION_MAC1_OFFSET, MessageType, RESPONSE_MAC1_OFFSET,
};

use crate::handshake::cookie::{CookieChecker, MacVerdict, NONCE_LEN};
use crate::protocol::Address;

/// How long "under load" lasts after the queue was last seen above its threshold.
pub const UNDER_LOAD_STICKY: Duration = Duration::from_secs(1);
/// Cookie replies all workers together send a second, at most (a reply costs a few
/// microseconds of a worker, mostly the send). The rest is left to control.
pub const WORKER_COOKIES_PER_SECOND: u64 = 100_000;
/// How many of them may go out at once after a quiet spell.
const WORKER_COOKIE_BURST: u64 = 256;

/// "Under load": more than `threshold` handshake messages waiting, and for
/// [`UNDER_LOAD_STICKY`] after the last time there were, as seen by any thread.
#[derive(Debug)]
pub struct Load {
    threshold: usize,
    /// Nanoseconds since the clock's origin until which we are under load.
    until: AtomicU64,
}

impl Load {
    pub fn new(threshold: usize) -> Self {
        Load {
            threshold,
            until: AtomicU64::new(0),
        }
    }

    /// Whether we are under load at `now` with `queued` messages waiting.
    pub fn under_load(&self, now: Duration, queued: usize) -> bool {
        let now = nanos(now);
        if queued > self.threshold {
            let until = now.saturating_add(nanos(UNDER_LOAD_STICKY));
            self.until.fetch_max(until, Ordering::Relaxed);
            return true;
        }
        now < self.until.load(Ordering::Relaxed)
    }
}

fn nanos(at: Duration) -> u64 {
    u64::try_from(at.as_nanos()).unwrap_or(u64::MAX)
}

/// A rate as a virtual schedule (GCRA): each taken unit moves a "next due" time on by
/// `interval`; a unit may be taken while that time is at most `tolerance` ahead of now.
#[derive(Debug)]
struct Budget {
    next_due: AtomicU64,
    interval: u64,
    tolerance: u64,
}

impl Budget {
    fn new(per_second: u64, burst: u64) -> Self {
        let interval = 1_000_000_000 / per_second.max(1);
        Budget {
            next_due: AtomicU64::new(0),
            interval,
            tolerance: interval.saturating_mul(burst),
        }
    }

    fn take(&self, now: Duration) -> bool {
        let now = nanos(now);
        self.next_due
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |due| {
                let next = due.max(now).saturating_add(self.interval);
                (next - now <= self.tolerance).then_some(next)
            })
            .is_ok()
    }
}

/// The link endpoint's screen: mac1 always; under load mac2, and cookie replies within
/// [`WORKER_COOKIES_PER_SECOND`].
#[derive(Debug)]
pub struct LinkScreen {
    checker: CookieChecker,
    load: Arc<Load>,
    budget: Budget,
    /// Cookie reply nonces: a random prefix drawn at start and a counter, so none repeats.
    nonce_prefix: [u8; NONCE_LEN - 8],
    nonce_counter: AtomicU64,
}

impl LinkScreen {
    /// A screen checking with `checker` (shared with the link endpoint's) under `load`.
    pub fn new(checker: CookieChecker, load: Arc<Load>) -> Self {
        let mut nonce_prefix = [0u8; NONCE_LEN - 8];
        OsRng.fill_bytes(&mut nonce_prefix);
        LinkScreen {
            checker,
            load,
            budget: Budget::new(WORKER_COOKIES_PER_SECOND, WORKER_COOKIE_BURST),
            nonce_prefix,
            nonce_counter: AtomicU64::new(0),
        }
    }

    fn nonce(&self) -> [u8; NONCE_LEN] {
        let mut nonce = [0u8; NONCE_LEN];
        let (prefix, counter) = nonce.split_at_mut(NONCE_LEN - 8);
        prefix.copy_from_slice(&self.nonce_prefix);
        let n = self.nonce_counter.fetch_add(1, Ordering::Relaxed);
        counter.copy_from_slice(&n.to_le_bytes());
        nonce
    }
}

impl HandshakeScreen for LinkScreen {
    fn screen(&self, now: Duration, src: &LinkAddr, message: &mut [u8], queued: usize) -> Screened {
        let mac1_offset = match wire::message_type(message) {
            Ok(MessageType::Initiation) => INITIATION_MAC1_OFFSET,
            Ok(MessageType::Response) => RESPONSE_MAC1_OFFSET,
            // Cookie replies are matched to our handshakes by control.
            Ok(MessageType::CookieReply | MessageType::Data) => return Screened::Queue,
            Err(reason) => return Screened::Drop(reason),
        };
        let under_load = self.load.under_load(now, queued);
        if under_load {
            self.checker.rotate_if_due(now, &mut OsRng);
        }
        let verdict = src
            .with_cookie_input(|input| self.checker.check(message, mac1_offset, input, under_load));
        match verdict {
            MacVerdict::InvalidMac1 => Screened::Drop(DropReason::InvalidMac1),
            MacVerdict::Valid => Screened::Queue,
            MacVerdict::Mac2Valid => Screened::QueueReserved,
            MacVerdict::NeedsCookie if !self.budget.take(now) => Screened::Queue,
            MacVerdict::NeedsCookie => {
                let nonce = self.nonce();
                let reply = src.with_cookie_input(|input| {
                    self.checker.reply_to(message, mac1_offset, input, nonce)
                });
                match (reply, message.get_mut(..COOKIE_REPLY_LEN)) {
                    (Some(reply), Some(room)) => {
                        room.copy_from_slice(&reply);
                        Screened::Reply {
                            len: COOKIE_REPLY_LEN,
                        }
                    }
                    _ => Screened::Drop(DropReason::BadLength),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
