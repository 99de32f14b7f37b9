//! TAI64N timestamps and the initiation replay rule.
//!
//! Every handshake initiation carries an encrypted 12-byte TAI64N timestamp. A responder accepts
//! an initiation from a peer only if its timestamp is strictly newer than the newest one it
//! accepted from that peer, and only if at least 1/50 s has passed since it last accepted one:
//! a captured initiation cannot be replayed, and a peer cannot make us redo the handshake's
//! Diffie-Hellman more than 50 times a second.

use std::time::Duration;

/// TAI64 label of the Unix epoch: `2^62 + 10` (TAI was 10 s ahead of UTC in 1970).
const TAI64_EPOCH: u64 = 0x4000_0000_0000_000a;

/// Sub-second precision thrown away before sending, so the timestamp does not leak fine timing:
/// nanoseconds are rounded down to a multiple of 2^24 (about 16.8 ms), the largest power of two
/// below 1 s / [`INITIATIONS_PER_SECOND`], as the kernel and wireguard-go do.
const WHITENER_MASK: u32 = (1 << 24) - 1;

/// Most initiations accepted per peer per second.
pub const INITIATIONS_PER_SECOND: u32 = 50;

/// Least time between two accepted initiations from one peer (20 ms).
pub const MIN_INITIATION_INTERVAL: Duration =
    Duration::from_nanos(1_000_000_000 / INITIATIONS_PER_SECOND as u64);

/// Length of a TAI64N timestamp on the wire.
pub const TAI64N_LEN: usize = 12;

/// A TAI64N timestamp: big-endian seconds (TAI64 label) then big-endian nanoseconds. Ordering is
/// bytewise, which for this big-endian layout is chronological, and is what the replay rule
/// compares (a peer's bytes are compared as they are, even if it did not whiten them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Tai64n([u8; TAI64N_LEN]);

impl Tai64n {
    /// The timestamp to send for the wall-clock time `since_epoch` since the Unix epoch, with the
    /// nanoseconds whitened. (Wall-clock on purpose: it must keep increasing across restarts.)
    pub fn from_unix(since_epoch: Duration) -> Self {
        let seconds = TAI64_EPOCH.saturating_add(since_epoch.as_secs());
        let nanos = since_epoch.subsec_nanos() & !WHITENER_MASK;
        let mut bytes = [0u8; TAI64N_LEN];
        let (seconds_field, nanos_field) = bytes.split_at_mut(8);
        seconds_field.copy_from_slice(&seconds.to_be_bytes());
        nanos_field.copy_from_slice(&nanos.to_be_bytes());
        Self(bytes)
    }

    /// A timestamp as received (decrypted from an initiation).
    pub fn from_bytes(bytes: [u8; TAI64N_LEN]) -> Self {
        Self(bytes)
    }

    /// The 12 bytes to encrypt into an initiation.
    pub fn as_bytes(&self) -> &[u8; TAI64N_LEN] {
        &self.0
    }
}

/// Why [`TimestampGuard::check`] refused an initiation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ReplayReason {
    /// The timestamp is not strictly newer than the newest accepted from this peer: a replay
    /// (or a peer whose clock went backwards).
    #[error("initiation timestamp is not newer than the last accepted one")]
    NotNewer,
    /// Less than 20 ms since the last accepted initiation from this peer: a flood.
    #[error("initiation less than 20 ms after the last accepted one")]
    TooSoon,
}

/// The replay rule for one peer's initiations. [`TimestampGuard::check`] before the expensive
/// part of processing; [`TimestampGuard::accept`] only once the initiation has been fully
/// validated, so a forged initiation can never advance the stored timestamp.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TimestampGuard {
    last: Option<Tai64n>,
    last_accepted_at: Option<Duration>,
}

impl TimestampGuard {
    /// A guard for a peer from whom nothing was accepted yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether an initiation stamped `ts` arriving at monotonic time `now` may be accepted.
    /// A `now` earlier than the last acceptance counts as too soon.
    pub fn check(&self, ts: &Tai64n, now: Duration) -> Result<(), ReplayReason> {
        if self.last.is_some_and(|last| *ts <= last) {
            return Err(ReplayReason::NotNewer);
        }
        if let Some(accepted_at) = self.last_accepted_at {
            match now.checked_sub(accepted_at) {
                Some(elapsed) if elapsed >= MIN_INITIATION_INTERVAL => {}
                _ => return Err(ReplayReason::TooSoon),
            }
        }
        Ok(())
    }

    /// Records a fully validated initiation stamped `ts`, accepted at `now`.
    pub fn accept(&mut self, ts: Tai64n, now: Duration) {
        self.last = Some(ts);
        self.last_accepted_at = Some(now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(seconds: u64, nanos: u32) -> Tai64n {
        Tai64n::from_unix(Duration::new(seconds, nanos))
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn unix_epoch_is_tai64_label_with_zero_nanos() {
        assert_eq!(
            ts(0, 0).as_bytes(),
            &[0x40, 0, 0, 0, 0, 0, 0, 0x0a, 0, 0, 0, 0]
        );
    }

    #[test]
    fn nanoseconds_are_rounded_down_to_multiples_of_2_pow_24() {
        // 123_456_789 ns rounds down to 7 * 2^24 = 117_440_512 = 0x0700_0000.
        assert_eq!(
            ts(1_700_000_000, 123_456_789).as_bytes(),
            &[0x40, 0, 0, 0, 0x65, 0x53, 0xf1, 0x0a, 0x07, 0, 0, 0]
        );
        assert_eq!(ts(5, (1 << 24) - 1), ts(5, 0));
        assert_eq!(ts(5, 1 << 24).as_bytes()[8..], [0x01, 0, 0, 0]);
        assert_eq!(ts(5, 999_999_999).as_bytes()[8..], [0x3b, 0, 0, 0]);
    }

    #[test]
    fn absurd_times_saturate_instead_of_wrapping() {
        let far = Tai64n::from_unix(Duration::new(u64::MAX, 0));
        assert_eq!(far.as_bytes()[..8], [0xff; 8]);
        assert!(far > ts(0, 0));
    }

    #[test]
    fn order_is_chronological() {
        assert!(ts(10, 0) < ts(10, 1 << 24));
        assert!(ts(10, 999_999_999) < ts(11, 0));
        assert!(ts(255, 0) < ts(256, 0));
        let received = Tai64n::from_bytes(*ts(42, 1 << 25).as_bytes());
        assert_eq!(received, ts(42, 1 << 25));
    }

    #[test]
    fn first_initiation_is_accepted_at_any_time() {
        assert_eq!(
            TimestampGuard::new().check(&ts(0, 0), Duration::ZERO),
            Ok(())
        );
    }

    #[test]
    fn replay_rule_needs_newer_timestamp_and_20_ms_gap() {
        let mut guard = TimestampGuard::new();
        let first = ts(100, 0);
        guard.accept(first, ms(1000));

        assert_eq!(guard.check(&first, ms(5000)), Err(ReplayReason::NotNewer));
        assert_eq!(
            guard.check(&ts(99, 0), ms(5000)),
            Err(ReplayReason::NotNewer)
        );
        let newer = ts(100, 1 << 24);
        assert_eq!(guard.check(&newer, ms(1019)), Err(ReplayReason::TooSoon));
        let just_short = ms(1020) - Duration::from_nanos(1);
        assert_eq!(guard.check(&newer, just_short), Err(ReplayReason::TooSoon));
        assert_eq!(guard.check(&newer, ms(999)), Err(ReplayReason::TooSoon));
        assert_eq!(guard.check(&newer, ms(1020)), Ok(()));

        guard.accept(newer, ms(1020));
        assert_eq!(guard.check(&newer, ms(2000)), Err(ReplayReason::NotNewer));
        assert_eq!(guard.check(&first, ms(2000)), Err(ReplayReason::NotNewer));
        assert_eq!(
            guard.check(&ts(101, 0), ms(1039)),
            Err(ReplayReason::TooSoon)
        );
        assert_eq!(guard.check(&ts(101, 0), ms(1040)), Ok(()));
    }

    #[test]
    fn checking_does_not_advance_the_guard() {
        let mut guard = TimestampGuard::new();
        guard.accept(ts(100, 0), ms(0));
        assert_eq!(guard.check(&ts(200, 0), ms(100)), Ok(()));
        assert_eq!(guard.check(&ts(150, 0), ms(100)), Ok(()));
    }
}
