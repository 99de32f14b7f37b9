//! Rate limits the workers share without a lock: the generic cell rate algorithm (GCRA), whose
//! whole state is one "theoretical arrival time" in an atomic. An event is allowed while that
//! time is no further ahead of `now` than the burst allows, and each allowed event moves it one
//! interval on. So a limit takes `burst` events at once (the probes traceroute sends together)
//! and `1 / interval` per second after that, and a flood costs one atomic load per event.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// A shared rate limit: on average one event per `interval`, up to `burst` at once.
#[derive(Debug)]
pub struct Pace {
    /// When the next event would be due at the steady rate, in nanoseconds on the callers'
    /// clock.
    due: AtomicU64,
    interval: u64,
    /// How far ahead of `now` `due` may run: `burst - 1` intervals.
    slack: u64,
}

impl Pace {
    /// One event per `interval`, `burst` (at least 1) at once.
    pub const fn new(interval: Duration, burst: u32) -> Self {
        let interval = interval.as_nanos() as u64;
        let extra = if burst == 0 { 0 } else { burst as u64 - 1 };
        Pace {
            due: AtomicU64::new(0),
            interval,
            slack: interval.saturating_mul(extra),
        }
    }

    /// Whether an event may happen at `now`; if so, it is counted.
    pub fn allow(&self, now: Duration) -> bool {
        let now = u64::try_from(now.as_nanos()).unwrap_or(u64::MAX);
        let mut due = self.due.load(Ordering::Relaxed);
        loop {
            let from = due.max(now);
            if from - now > self.slack {
                return false;
            }
            let next = from.saturating_add(self.interval);
            match self
                .due
                .compare_exchange_weak(due, next, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => return true,
                Err(current) => due = current,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    fn allowed(pace: &Pace, at: Duration, tries: usize) -> usize {
        (0..tries).filter(|_| pace.allow(at)).count()
    }

    #[test]
    fn a_burst_goes_at_once_then_the_rate_holds() {
        let pace = Pace::new(10 * MS, 5);
        let start = Duration::from_secs(100);
        assert_eq!(allowed(&pace, start, 20), 5, "the burst");
        assert_eq!(
            allowed(&pace, start + 9 * MS, 5),
            0,
            "nothing before an interval"
        );
        assert_eq!(allowed(&pace, start + 10 * MS, 5), 1, "one per interval");
        assert_eq!(
            allowed(&pace, start + Duration::from_secs(1), 20),
            5,
            "an idle second refills the burst, no more"
        );
    }

    #[test]
    fn a_burst_of_one_is_one_per_interval() {
        let pace = Pace::new(10 * MS, 1);
        assert!(pace.allow(Duration::ZERO));
        assert!(!pace.allow(Duration::ZERO));
        assert!(!pace.allow(9 * MS));
        assert!(pace.allow(10 * MS));
    }

    #[test]
    fn threads_sharing_a_pace_get_the_burst_between_them() {
        let pace = std::sync::Arc::new(Pace::new(Duration::from_secs(1), 100));
        let at = Duration::from_secs(5);
        let counts: Vec<usize> = (0..4)
            .map(|_| {
                let pace = std::sync::Arc::clone(&pace);
                std::thread::spawn(move || allowed(&pace, at, 1000))
            })
            .collect::<Vec<_>>()
            .into_iter()
            .map(|t| t.join().unwrap())
            .collect();
        assert_eq!(counts.iter().sum::<usize>(), 100);
    }
}
