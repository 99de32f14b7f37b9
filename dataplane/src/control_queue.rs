//! The bounded queues that carry messages from the workers to control: handshake messages, whose
//! fill level control reads as the "under load" signal for cookies, and rovy frames for control
//! (routing messages, frames whose label ends here). Two queues, so that a handshake flood
//! neither starves routing nor is measured by it.
//!
//! Before a handshake message takes a place in the queue, the worker shows it to a
//! [`HandshakeScreen`]: control cannot answer a flood of initiations that carry a valid mac1
//! (anyone who knows our public key can make them) with cookie replies as fast as it comes, so
//! under load the queue would stay full and drop whatever arrives next, a genuine peer's
//! initiation as likely as the flood's, and that peer would wait a retransmission (5 s) or
//! several before it even got its cookie, and again for the initiation that carries it. The
//! screen lets the workers answer cookies too, and a quarter of the queue is kept for messages
//! whose sender proved its address with a valid mac2.
//!
//! A standard channel cannot tell its length, so a queue keeps a count beside it. The count
//! is raised *before* a message enters the channel and lowered *after* control took it out, so
//! it is never below the number of messages in the channel and the decrement cannot wrap
//! (counting after the send let control take a message first and read `usize::MAX`: a full
//! queue, cookies for every genuine initiation for a second).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::time::Duration;

use crate::DropReason;
use crate::link_addr::LinkAddr;
use crate::worker::{FrameMsg, HandshakeMsg};

/// The workers' end of the handshake queue.
pub type HandshakeSender = QueueSender<HandshakeMsg>;
/// Control's end of the handshake queue.
pub type HandshakeReceiver = QueueReceiver<HandshakeMsg>;
/// The workers' end of the frame queue.
pub type FrameSender = QueueSender<FrameMsg>;
/// Control's end of the frame queue.
pub type FrameReceiver = QueueReceiver<FrameMsg>;

/// What a worker does with a handshake message, as its [`HandshakeScreen`] decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Screened {
    /// Queue it for control, if the part of the queue open to everyone has room.
    Queue,
    /// Queue it for control, if the queue has room: its sender proved its address (valid mac2),
    /// so it may take the quarter of the queue kept for such messages.
    QueueReserved,
    /// The message's first `len` bytes were overwritten with the reply (a cookie reply) to
    /// send back to its source; count the message as [`DropReason::CookieRequired`].
    Reply {
        /// Length of the reply.
        len: usize,
    },
    /// Drop it, counted under this reason.
    Drop(DropReason),
}

/// The workers' first look at a handshake message (initiation, response or cookie reply),
/// before the queue. It must be cheap (no Diffie-Hellman) and must not allocate.
pub trait HandshakeScreen: Send + Sync + std::fmt::Debug {
    /// Decides about `message` from `src` at `now`, with `queued` messages waiting for control;
    /// may overwrite `message` with a reply.
    fn screen(&self, now: Duration, src: &LinkAddr, message: &mut [u8], queued: usize) -> Screened;
}

/// A screen that queues everything, leaving every check to control.
#[derive(Debug, Clone, Copy, Default)]
pub struct QueueAll;

impl HandshakeScreen for QueueAll {
    fn screen(&self, _: Duration, _: &LinkAddr, _: &mut [u8], _: usize) -> Screened {
        Screened::Queue
    }
}

/// A queue of at most `capacity` handshake messages, a quarter of them kept for
/// [`QueueSender::push_reserved`]: the workers' end and control's end.
pub fn handshake_queue(capacity: usize) -> (HandshakeSender, HandshakeReceiver) {
    queue_with_open_part(capacity, capacity - capacity / 4)
}

/// A queue of at most `capacity` messages: the workers' end and control's end.
pub fn bounded_queue<T>(capacity: usize) -> (QueueSender<T>, QueueReceiver<T>) {
    queue_with_open_part(capacity, capacity)
}

/// A queue of at most `capacity` messages of which [`QueueSender::push`] may fill `open`.
fn queue_with_open_part<T>(capacity: usize, open: usize) -> (QueueSender<T>, QueueReceiver<T>) {
    let (tx, rx) = sync_channel(capacity);
    let queued = Arc::new(AtomicUsize::new(0));
    (
        QueueSender {
            tx,
            queued: Arc::clone(&queued),
            open,
        },
        QueueReceiver { rx, queued },
    )
}

/// The workers' end; cloned once per worker.
#[derive(Debug)]
pub struct QueueSender<T> {
    tx: SyncSender<T>,
    queued: Arc<AtomicUsize>,
    /// How many messages [`QueueSender::push`] lets wait; the rest of the capacity is for
    /// [`QueueSender::push_reserved`].
    open: usize,
}

impl<T> Clone for QueueSender<T> {
    fn clone(&self) -> Self {
        QueueSender {
            tx: self.tx.clone(),
            queued: Arc::clone(&self.queued),
            open: self.open,
        }
    }
}

impl<T> QueueSender<T> {
    /// Messages queued and not yet taken (a push under way may already be counted).
    pub fn queued(&self) -> usize {
        self.queued.load(Ordering::Relaxed)
    }

    /// Queues `msg` if the part of the queue open to every message has room (for the handshake
    /// queue: three quarters of it). `Ok(true)` when the queue was empty before (the caller
    /// wakes control), [`DropReason::QueueFull`] when there is no room or control is gone.
    pub fn push(&self, msg: T) -> Result<bool, DropReason> {
        self.push_below(msg, self.open)
    }

    /// Queues `msg` if the queue has room at all (see [`Screened::QueueReserved`]).
    pub fn push_reserved(&self, msg: T) -> Result<bool, DropReason> {
        self.push_below(msg, usize::MAX)
    }

    fn push_below(&self, msg: T, limit: usize) -> Result<bool, DropReason> {
        let before = self.queued.fetch_add(1, Ordering::Relaxed);
        if before >= limit {
            self.queued.fetch_sub(1, Ordering::Relaxed);
            return Err(DropReason::QueueFull);
        }
        match self.tx.try_send(msg) {
            Ok(()) => Ok(before == 0),
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                self.queued.fetch_sub(1, Ordering::Relaxed);
                Err(DropReason::QueueFull)
            }
        }
    }
}

/// Control's end.
#[derive(Debug)]
pub struct QueueReceiver<T> {
    rx: Receiver<T>,
    queued: Arc<AtomicUsize>,
}

impl<T> QueueReceiver<T> {
    /// The next message, if one is waiting.
    pub fn pop(&self) -> Option<T> {
        let msg = self.rx.try_recv().ok()?;
        self.queued.fetch_sub(1, Ordering::Relaxed);
        Some(msg)
    }

    /// Messages queued and not yet taken (a push under way may already be counted).
    pub fn queued(&self) -> usize {
        self.queued.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::INITIATION_LEN;
    use std::net::SocketAddr;

    fn msg(n: usize) -> HandshakeMsg {
        HandshakeMsg {
            src: SocketAddr::from(([192, 0, 2, 1], 1)).into(),
            socket: n,
            len: INITIATION_LEN,
            bytes: [0; INITIATION_LEN],
        }
    }

    #[test]
    fn a_quarter_of_the_queue_is_kept_for_reserved_pushes() {
        let (tx, rx) = handshake_queue(8);
        for n in 0..6 {
            assert!(tx.push(msg(n)).is_ok());
        }
        assert_eq!(tx.push(msg(6)), Err(DropReason::QueueFull));
        assert_eq!(tx.push_reserved(msg(6)), Ok(false));
        assert_eq!(tx.push_reserved(msg(7)), Ok(false));
        assert_eq!(tx.push_reserved(msg(8)), Err(DropReason::QueueFull));
        assert_eq!(rx.queued(), 8, "refused pushes are not counted");
        rx.pop();
        rx.pop();
        rx.pop();
        assert!(tx.push(msg(9)).is_ok(), "room again below three quarters");
    }

    #[test]
    fn count_follows_the_queue_and_a_refused_push_is_not_counted() {
        let (tx, rx) = handshake_queue(2);
        assert_eq!(
            tx.push_reserved(msg(0)),
            Ok(true),
            "the first message wakes control"
        );
        assert_eq!(tx.push_reserved(msg(1)), Ok(false));
        assert_eq!(tx.push_reserved(msg(2)), Err(DropReason::QueueFull));
        assert_eq!(rx.queued(), 2);
        assert_eq!(rx.pop().map(|m| m.socket), Some(0));
        assert_eq!(rx.queued(), 1);
        assert_eq!(rx.pop().map(|m| m.socket), Some(1));
        assert!(rx.pop().is_none());
        assert_eq!(rx.queued(), 0);
        assert_eq!(
            tx.push(msg(3)),
            Ok(true),
            "empty again: wakes control again"
        );
        drop(rx);
        assert_eq!(tx.push(msg(4)), Err(DropReason::QueueFull));
    }

    /// Workers push while control pops as fast as it can: the count control reads must never
    /// exceed what the queue and the pushes under way can hold (a wrapped count reads as
    /// nearly `usize::MAX`), and it ends at zero.
    #[test]
    fn count_never_wraps_while_workers_push_and_control_pops() {
        const WORKERS: usize = 2;
        const EACH: usize = 30_000;
        const CAPACITY: usize = 8;
        let (tx, rx) = handshake_queue(CAPACITY);
        let workers: Vec<_> = (0..WORKERS)
            .map(|_| {
                let tx = tx.clone();
                std::thread::spawn(move || {
                    for i in 0..EACH {
                        while tx.push(msg(i)).is_err() {
                            std::thread::yield_now();
                        }
                    }
                })
            })
            .collect();
        drop(tx);
        let mut taken = 0;
        let mut highest = 0;
        while taken < WORKERS * EACH {
            if rx.pop().is_some() {
                taken += 1;
                highest = highest.max(rx.queued());
            }
        }
        for worker in workers {
            worker.join().unwrap();
        }
        assert!(highest <= CAPACITY + WORKERS, "count read {highest}");
        assert_eq!(rx.queued(), 0);
    }
}
