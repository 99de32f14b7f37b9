//! The node's log: `tracing` events, filtered by `RUST_LOG` (default `info`), one line each on
//! stderr as `rovy-fast: [LEVEL: ]message key=value…`. No timestamps, since journald and
//! container runtimes add their own; info lines carry no level, so `rovy-fast: ready: …` stays
//! the exact line scripts wait for. Events are what an operator wants to know — node up and
//! down, peers up and down, handshake failures (rate-limited through [`Throttle`]), under load
//! on and off, links and routes — and never one per packet.

use std::fmt;
use std::time::Duration;

use tracing::{Event, Level, Subscriber};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// Installs the subscriber for this process. Call once, before the first event; a second
/// call (tests) keeps the first.
pub fn init() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .event_format(Line)
        .try_init();
}

/// `rovy-fast: [level: ]message fields`.
struct Line;

impl<S, N> FormatEvent<S, N> for Line
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        write!(writer, "rovy-fast: ")?;
        match *event.metadata().level() {
            Level::INFO => {}
            Level::WARN => write!(writer, "warning: ")?,
            Level::ERROR => write!(writer, "error: ")?,
            Level::DEBUG => write!(writer, "debug: ")?,
            Level::TRACE => write!(writer, "trace: ")?,
        }
        ctx.format_fields(writer.by_ref(), event)?;
        writeln!(writer)
    }
}

/// At most one report per `interval` of a recurring event (a handshake failure, say), with
/// how many were left unreported since the last: what is worth knowing about a flood is that
/// it happens, not each packet of it.
#[derive(Debug, Clone, Copy)]
pub struct Throttle {
    interval: Duration,
    next: Option<Duration>,
    suppressed: u64,
}

impl Throttle {
    /// One report per `interval`.
    pub const fn new(interval: Duration) -> Self {
        Throttle {
            interval,
            next: None,
            suppressed: 0,
        }
    }

    /// Whether the event at `now` is reported; if so, with how many went unreported before it.
    pub fn report(&mut self, now: Duration) -> Option<u64> {
        if self.next.is_some_and(|next| now < next) {
            self.suppressed += 1;
            return None;
        }
        self.next = Some(now + self.interval);
        Some(std::mem::take(&mut self.suppressed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_throttle_reports_once_per_interval_with_what_it_held_back() {
        let mut throttle = Throttle::new(Duration::from_secs(10));
        let at = Duration::from_secs;
        assert_eq!(throttle.report(at(100)), Some(0));
        assert_eq!(throttle.report(at(101)), None);
        assert_eq!(throttle.report(at(109)), None);
        assert_eq!(throttle.report(at(110)), Some(2));
        assert_eq!(throttle.report(at(111)), None);
        assert_eq!(throttle.report(at(500)), Some(1));
    }
}
