//! The worker threads as the control thread sees them: started, watched, stopped.
//!
//! A worker that ends while the node runs (an error of its loop, a panic) cannot be replaced
//! in place: its SO_REUSEPORT sockets stay bound, so the kernel keeps steering its peers'
//! datagrams to a socket nobody reads. The node therefore ends with it: every worker wakes
//! control as it ends, for whatever reason, and control stops the node, naming the worker and
//! the cause.

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;

use rovy_dataplane::sys::EventFd;

/// One running worker.
struct WorkerThread {
    /// `None` once joined.
    thread: Option<JoinHandle<io::Result<()>>>,
    /// Wakes the worker (to notice `shutdown`).
    wake: Arc<EventFd>,
    /// Set by the thread itself as it ends.
    ended: Arc<AtomicBool>,
}

/// Marks its worker ended and wakes control when dropped: on return and during a panic's
/// unwinding alike.
struct EndNotice {
    ended: Arc<AtomicBool>,
    control_wake: Arc<EventFd>,
}

impl Drop for EndNotice {
    fn drop(&mut self) {
        self.ended.store(true, Ordering::Release);
        self.control_wake.notify();
    }
}

/// Every worker thread of the node, by worker index.
#[derive(Default)]
pub(super) struct WorkerThreads {
    workers: Vec<WorkerThread>,
}

impl WorkerThreads {
    /// Starts the next worker (`rovy-worker-I`) running `body`; `wake` makes it look at its
    /// shutdown flag, `control_wake` is notified when it ends.
    pub(super) fn spawn(
        &mut self,
        wake: Arc<EventFd>,
        control_wake: &Arc<EventFd>,
        body: impl FnOnce() -> io::Result<()> + Send + 'static,
    ) -> Result<(), String> {
        let i = self.workers.len();
        let ended = Arc::new(AtomicBool::new(false));
        let notice = EndNotice {
            ended: Arc::clone(&ended),
            control_wake: Arc::clone(control_wake),
        };
        let thread = std::thread::Builder::new()
            .name(format!("rovy-worker-{i}"))
            .spawn(move || {
                let _notice = notice;
                body()
            })
            .map_err(|e| format!("cannot start worker {i}: {e}"))?;
        self.workers.push(WorkerThread {
            thread: Some(thread),
            wake,
            ended,
        });
        Ok(())
    }

    /// If a worker has ended, joins it and says which one and why (the first such worker).
    pub(super) fn ended(&mut self) -> Option<String> {
        self.workers.iter_mut().enumerate().find_map(|(i, worker)| {
            if !worker.ended.load(Ordering::Acquire) {
                return None;
            }
            let outcome = match worker.thread.take()?.join() {
                Ok(Ok(())) => "stopped".to_owned(),
                Ok(Err(e)) => format!("failed: {e}"),
                Err(panic) => format!("panicked: {}", panic_message(&*panic)),
            };
            Some(format!("worker {i} {outcome}; node stopped"))
        })
    }

    /// Sets `shutdown`, wakes every worker and waits for those still running, reporting any
    /// that failed.
    pub(super) fn stop(&mut self, shutdown: &AtomicBool) {
        shutdown.store(true, Ordering::Relaxed);
        for worker in &self.workers {
            worker.wake.notify();
        }
        for (i, worker) in self.workers.iter_mut().enumerate() {
            match worker.thread.take().map(JoinHandle::join) {
                None | Some(Ok(Ok(()))) => {}
                Some(Ok(Err(e))) => tracing::error!("worker {i} failed: {e}"),
                Some(Err(panic)) => {
                    tracing::error!("worker {i} panicked: {}", panic_message(&*panic))
                }
            }
        }
    }
}

/// The text a panic was raised with (`panic!("…")` gives a `&str` or a `String`).
fn panic_message(panic: &(dyn std::any::Any + Send)) -> &str {
    panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(no message)")
}
