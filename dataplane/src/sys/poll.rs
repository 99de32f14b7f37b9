//! Readiness and wake-ups for the worker and control loops: epoll, eventfd, and signals
//! delivered as a file descriptor (so SIGINT/SIGTERM are just another readable fd in the
//! control loop, never an asynchronous handler).

use std::io;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};

use super::check;

/// An epoll instance; each registered fd carries a caller-chosen token.
#[derive(Debug)]
pub struct Epoll {
    fd: OwnedFd,
    events: Vec<libc::epoll_event>,
}

impl Epoll {
    /// A new epoll instance able to report `capacity` ready fds per wait.
    pub fn new(capacity: usize) -> io::Result<Epoll> {
        // SAFETY: epoll_create1 takes no pointers; a non-negative result is a new fd we own.
        let raw = check(
            unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) },
            "epoll_create1",
        )?;
        Ok(Epoll {
            // SAFETY: `raw` was just returned by epoll_create1 and is owned by nobody else.
            fd: unsafe { OwnedFd::from_raw_fd(raw) },
            events: vec![libc::epoll_event { events: 0, u64: 0 }; capacity.max(1)],
        })
    }

    /// Watches `fd` for readability (level-triggered) under `token`.
    pub fn add_readable(&self, fd: impl AsFd, token: u64) -> io::Result<()> {
        self.add(fd, token, Interest::Readable)
    }

    /// Watches `fd` under `token` for `interest` (level-triggered).
    pub fn add(&self, fd: impl AsFd, token: u64, interest: Interest) -> io::Result<()> {
        self.control(libc::EPOLL_CTL_ADD, fd, token, interest)
    }

    /// Changes what a watched `fd` is watched for, and its token.
    pub fn modify(&self, fd: impl AsFd, token: u64, interest: Interest) -> io::Result<()> {
        self.control(libc::EPOLL_CTL_MOD, fd, token, interest)
    }

    fn control(&self, op: i32, fd: impl AsFd, token: u64, interest: Interest) -> io::Result<()> {
        let events = match interest {
            Interest::Readable => libc::EPOLLIN as u32,
            Interest::Writable => libc::EPOLLOUT as u32,
            Interest::Neither => 0,
        };
        let mut event = libc::epoll_event { events, u64: token };
        // SAFETY: both fds are valid for the call; `event` is a valid epoll_event that the
        // kernel only reads.
        let ret =
            unsafe { libc::epoll_ctl(self.fd.as_raw_fd(), op, fd.as_fd().as_raw_fd(), &mut event) };
        let context = if op == libc::EPOLL_CTL_ADD {
            "epoll_ctl ADD"
        } else {
            "epoll_ctl MOD"
        };
        check(ret, context).map(drop)
    }

    /// Waits up to `timeout_ms` (-1 = forever) and returns the tokens of ready fds.
    /// An interrupted wait returns no tokens.
    pub fn wait(&mut self, timeout_ms: i32) -> io::Result<impl Iterator<Item = u64> + '_> {
        let capacity = i32::try_from(self.events.len()).unwrap_or(i32::MAX);
        // SAFETY: `events` has room for `capacity` entries, which the kernel fills.
        let ret = unsafe {
            libc::epoll_wait(
                self.fd.as_raw_fd(),
                self.events.as_mut_ptr(),
                capacity,
                timeout_ms,
            )
        };
        let ready = match check(ret, "epoll_wait") {
            Ok(n) => n as usize,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => 0,
            Err(e) => return Err(e),
        };
        Ok(self.events[..ready].iter().map(|e| e.u64))
    }
}

/// What a watched fd is reported for. Hang-ups and errors are reported whatever it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interest {
    Readable,
    Writable,
    /// Only hang-ups and errors: for an fd whose turn has not come.
    Neither,
}

/// A counter fd one thread writes to wake another's epoll.
#[derive(Debug)]
pub struct EventFd(OwnedFd);

impl EventFd {
    /// A new non-blocking eventfd.
    pub fn new() -> io::Result<EventFd> {
        // SAFETY: eventfd takes no pointers; a non-negative result is a new fd we own.
        let raw = check(
            unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) },
            "eventfd",
        )?;
        // SAFETY: `raw` was just returned by eventfd and is owned by nobody else.
        Ok(EventFd(unsafe { OwnedFd::from_raw_fd(raw) }))
    }

    /// Makes the fd readable. Never blocks; a saturated counter is already readable.
    pub fn notify(&self) {
        let one: u64 = 1;
        // SAFETY: writes 8 bytes from a live u64 to a valid fd.
        unsafe { libc::write(self.0.as_raw_fd(), (&raw const one).cast(), 8) };
    }

    /// Resets the counter so the fd is no longer readable.
    pub fn drain(&self) {
        let mut value: u64 = 0;
        // SAFETY: reads at most 8 bytes into a live u64 from a valid fd.
        unsafe { libc::read(self.0.as_raw_fd(), (&raw mut value).cast(), 8) };
    }
}

impl AsFd for EventFd {
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.0.as_fd()
    }
}

fn sigset(signals: &[libc::c_int]) -> libc::sigset_t {
    // SAFETY: sigset_t is plain data; sigemptyset initialises it before use.
    let mut set: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: `set` is a valid sigset_t; the signal numbers are validated by the kernel.
    unsafe {
        libc::sigemptyset(&mut set);
        for &s in signals {
            libc::sigaddset(&mut set, s);
        }
    }
    set
}

/// Blocks `signals` in the calling thread and every thread it spawns afterwards, so they are
/// only ever received through a [`SignalFd`].
pub fn block_signals(signals: &[libc::c_int]) -> io::Result<()> {
    let set = sigset(signals);
    // SAFETY: `set` is a valid, initialised sigset_t; the old mask is not requested.
    let ret = unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) };
    if ret != 0 {
        return Err(io::Error::from_raw_os_error(ret));
    }
    Ok(())
}

/// Signals as a readable fd (see [`block_signals`]).
#[derive(Debug)]
pub struct SignalFd(OwnedFd);

impl SignalFd {
    /// A non-blocking signalfd for `signals`.
    pub fn new(signals: &[libc::c_int]) -> io::Result<SignalFd> {
        let set = sigset(signals);
        // SAFETY: `set` is a valid sigset_t; -1 asks for a new fd, which we then own.
        let raw = check(
            unsafe { libc::signalfd(-1, &set, libc::SFD_CLOEXEC | libc::SFD_NONBLOCK) },
            "signalfd",
        )?;
        // SAFETY: `raw` was just returned by signalfd and is owned by nobody else.
        Ok(SignalFd(unsafe { OwnedFd::from_raw_fd(raw) }))
    }

    /// The next pending signal number, if any.
    pub fn read(&self) -> Option<i32> {
        // SAFETY: signalfd_siginfo is plain data; the kernel fills it.
        let mut info: libc::signalfd_siginfo = unsafe { std::mem::zeroed() };
        let size = std::mem::size_of::<libc::signalfd_siginfo>();
        // SAFETY: reads at most `size` bytes into a live signalfd_siginfo from a valid fd.
        let n = unsafe { libc::read(self.0.as_raw_fd(), (&raw mut info).cast(), size) };
        (n == size as isize).then_some(info.ssi_signo as i32)
    }
}

impl AsFd for SignalFd {
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.0.as_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eventfd_wakes_epoll_until_drained() {
        let mut ep = Epoll::new(4).unwrap();
        let ev = EventFd::new().unwrap();
        ep.add_readable(&ev, 7).unwrap();
        assert_eq!(ep.wait(0).unwrap().count(), 0);
        ev.notify();
        ev.notify();
        assert_eq!(ep.wait(1000).unwrap().collect::<Vec<_>>(), [7]);
        ev.drain();
        assert_eq!(ep.wait(0).unwrap().count(), 0);
    }

    #[test]
    fn interest_can_change_and_hang_ups_are_reported_whatever_it_is() {
        let (ours, theirs) = std::os::unix::net::UnixStream::pair().unwrap();
        let mut ep = Epoll::new(4).unwrap();
        ep.add(&ours, 5, Interest::Neither).unwrap();
        assert_eq!(
            ep.wait(0).unwrap().count(),
            0,
            "writable, but not watched for it"
        );
        ep.modify(&ours, 6, Interest::Writable).unwrap();
        assert_eq!(ep.wait(0).unwrap().collect::<Vec<_>>(), [6]);
        ep.modify(&ours, 7, Interest::Readable).unwrap();
        assert_eq!(ep.wait(0).unwrap().count(), 0, "nothing to read");
        ep.modify(&theirs, 8, Interest::Neither)
            .expect_err("an fd not watched cannot be modified");
        ep.modify(&ours, 9, Interest::Neither).unwrap();
        drop(theirs);
        assert_eq!(ep.wait(0).unwrap().collect::<Vec<_>>(), [9], "the hang-up");
    }

    #[test]
    fn blocked_signal_arrives_on_the_signalfd() {
        // On a thread of its own so the blocked mask does not leak into other tests.
        std::thread::spawn(|| {
            block_signals(&[libc::SIGUSR2]).unwrap();
            let sfd = SignalFd::new(&[libc::SIGUSR2]).unwrap();
            assert_eq!(sfd.read(), None);
            // SAFETY: raising a blocked signal at our own thread only marks it pending.
            unsafe { libc::pthread_kill(libc::pthread_self(), libc::SIGUSR2) };
            assert_eq!(sfd.read(), Some(libc::SIGUSR2));
        })
        .join()
        .unwrap();
    }
}
