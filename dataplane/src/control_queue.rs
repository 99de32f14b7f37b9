//! The bounded queues that carry messages from the workers to control: handshake messages, whose
//! fill level control reads as the "under load" signal for cookies, and rovy frames for control
//! (routing messages, frames whose label ends here). Two queues, so that a handshake flood
//! neither starves routing nor is measured by it.
//!
//! A standard channel cannot tell its length, so a queue keeps a count beside it. The count
//! is raised *before* a message enters the channel and lowered *after* control took it out, so
//! it is never below the number of messages in the channel and the decrement cannot wrap
//! (counting after the send let control take a message first and read `usize::MAX`: a full
//! queue, cookies for every genuine initiation for a second).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};

use crate::DropReason;
use crate::worker::{FrameMsg, HandshakeMsg};

/// The workers' end of the handshake queue.
pub type HandshakeSender = QueueSender<HandshakeMsg>;
/// Control's end of the handshake queue.
pub type HandshakeReceiver = QueueReceiver<HandshakeMsg>;
/// The workers' end of the frame queue.
pub type FrameSender = QueueSender<FrameMsg>;
/// Control's end of the frame queue.
pub type FrameReceiver = QueueReceiver<FrameMsg>;

/// A queue of at most `capacity` handshake messages: the workers' end and control's end.
pub fn handshake_queue(capacity: usize) -> (HandshakeSender, HandshakeReceiver) {
    bounded_queue(capacity)
}

/// A queue of at most `capacity` messages: the workers' end and control's end.
pub fn bounded_queue<T>(capacity: usize) -> (QueueSender<T>, QueueReceiver<T>) {
    let (tx, rx) = sync_channel(capacity);
    let queued = Arc::new(AtomicUsize::new(0));
    (
        QueueSender {
            tx,
            queued: Arc::clone(&queued),
        },
        QueueReceiver { rx, queued },
    )
}

/// The workers' end; cloned once per worker.
#[derive(Debug)]
pub struct QueueSender<T> {
    tx: SyncSender<T>,
    queued: Arc<AtomicUsize>,
}

impl<T> Clone for QueueSender<T> {
    fn clone(&self) -> Self {
        QueueSender {
            tx: self.tx.clone(),
            queued: Arc::clone(&self.queued),
        }
    }
}

impl<T> QueueSender<T> {
    /// Queues `msg`. `Ok(true)` when the queue was empty before (the caller wakes control),
    /// [`DropReason::QueueFull`] when it is full or control is gone.
    pub fn push(&self, msg: T) -> Result<bool, DropReason> {
        let before = self.queued.fetch_add(1, Ordering::Relaxed);
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
    fn count_follows_the_queue_and_a_refused_push_is_not_counted() {
        let (tx, rx) = handshake_queue(2);
        assert_eq!(tx.push(msg(0)), Ok(true), "the first message wakes control");
        assert_eq!(tx.push(msg(1)), Ok(false));
        assert_eq!(tx.push(msg(2)), Err(DropReason::QueueFull));
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
