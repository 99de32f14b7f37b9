//! Per-source rate limit for handshake messages that carry a valid mac2 while under load.
//!
//! A valid mac2 proves the sender receives at its source address, but not that it is polite:
//! each source may still make us do at most 20 handshakes per second, in bursts of up to 5. This
//! is the token bucket of wireguard-go's and the kernel's rate limiters, with time passed in.
//!
//! Sources are grouped as the address type they come from says ([`SourceGroup`]). For IP
//! sources that is the kernel's keying: an IPv4 address, or the /64 prefix of an IPv6 address
//! (one host can hold a whole /64, so per-address buckets would be free to dodge). IPv4-mapped
//! IPv6 addresses count as IPv4. Transports without IP addresses (routes through the overlay)
//! pick a key of their own.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Duration;

/// Sustained handshakes per second allowed from one source.
pub const PACKETS_PER_SECOND: u64 = 20;
/// Handshakes one source may send back to back.
pub const PACKETS_BURSTABLE: u64 = 5;
/// A source idle for longer than this is forgotten by [`RateLimiter::gc`].
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(1);
/// Most sources tracked per address family.
pub const MAX_SOURCES_PER_FAMILY: usize = 4096;

/// The bucket a handshake's source is counted in. Each family has its own table and cap, so a
/// flood in one cannot crowd out sources of another.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SourceGroup {
    /// An IPv4 address.
    Ipv4(u32),
    /// The /64 prefix of an IPv6 address.
    Ipv6Prefix(u64),
    /// A source without an IP address, by the key its address type chose.
    Other(u64),
}

/// The kernel's keying: IPv4-mapped IPv6 as IPv4, other IPv6 by its /64.
impl From<IpAddr> for SourceGroup {
    fn from(ip: IpAddr) -> Self {
        match ip.to_canonical() {
            IpAddr::V4(v4) => SourceGroup::Ipv4(u32::from(v4)),
            IpAddr::V6(v6) => {
                SourceGroup::Ipv6Prefix(u64::try_from(u128::from(v6) >> 64).unwrap_or(u64::MAX))
            }
        }
    }
}

/// Tokens are nanoseconds of credit; one packet costs 1/20 s of it.
const PACKET_COST: u64 = 1_000_000_000 / PACKETS_PER_SECOND;
const MAX_TOKENS: u64 = PACKET_COST * PACKETS_BURSTABLE;

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: u64,
    last_seen: Duration,
}

impl Bucket {
    /// Refills for the time since the bucket was last seen, then takes one packet's cost if it
    /// can. Time running backwards refills nothing.
    fn take(&mut self, now: Duration) -> bool {
        let elapsed = now.saturating_sub(self.last_seen).as_nanos();
        let refill = u64::try_from(elapsed).unwrap_or(u64::MAX);
        self.tokens = self.tokens.saturating_add(refill).min(MAX_TOKENS);
        self.last_seen = self.last_seen.max(now);
        let allowed = self.tokens >= PACKET_COST;
        if allowed {
            self.tokens -= PACKET_COST;
        }
        allowed
    }

    fn is_idle(&self, now: Duration) -> bool {
        now.saturating_sub(self.last_seen) > IDLE_TIMEOUT
    }
}

/// Token buckets per source, bounded in memory.
///
/// A source allowed for the first time starts with a full bucket, so the first five packets of
/// a burst pass at the same instant (wireguard-go compares `tokens > cost` and lets four through
/// when they arrive within the same nanosecond; the kernel and this use `>=`). Buckets refill
/// completely within 250 ms, so forgetting one idle for a second never changes a decision.
///
/// At most [`MAX_SOURCES_PER_FAMILY`] sources are tracked per family. When a table is full,
/// unknown sources are refused rather than tracked: under a flood from many addresses,
/// allocation stays bounded and known sources keep their share. Idle sources are dropped by
/// [`RateLimiter::gc`], which [`RateLimiter::allow`] also runs itself once a second.
#[derive(Debug, Clone, Default)]
pub struct RateLimiter {
    v4: HashMap<u32, Bucket>,
    v6_prefixes: HashMap<u64, Bucket>,
    other: HashMap<u64, Bucket>,
    last_gc: Duration,
}

impl RateLimiter {
    /// An empty limiter.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether a handshake message from `source` arriving at `now` may be processed; counts it
    /// if so.
    pub fn allow(&mut self, now: Duration, source: impl Into<SourceGroup>) -> bool {
        if now.saturating_sub(self.last_gc) >= IDLE_TIMEOUT {
            self.gc(now);
        }
        match source.into() {
            SourceGroup::Ipv4(v4) => take_or_track(&mut self.v4, v4, now),
            SourceGroup::Ipv6Prefix(prefix) => take_or_track(&mut self.v6_prefixes, prefix, now),
            SourceGroup::Other(key) => take_or_track(&mut self.other, key, now),
        }
    }

    /// Forgets every source idle for longer than [`IDLE_TIMEOUT`] at `now`.
    pub fn gc(&mut self, now: Duration) {
        self.v4.retain(|_, bucket| !bucket.is_idle(now));
        self.v6_prefixes.retain(|_, bucket| !bucket.is_idle(now));
        self.other.retain(|_, bucket| !bucket.is_idle(now));
        self.last_gc = now;
    }

    /// Sources currently tracked (IPv4 addresses, IPv6 /64 prefixes and other groups).
    pub fn tracked_sources(&self) -> usize {
        self.v4.len() + self.v6_prefixes.len() + self.other.len()
    }
}

fn take_or_track<K: std::hash::Hash + Eq>(
    table: &mut HashMap<K, Bucket>,
    key: K,
    now: Duration,
) -> bool {
    if let Some(bucket) = table.get_mut(&key) {
        return bucket.take(now);
    }
    if table.len() >= MAX_SOURCES_PER_FAMILY {
        return false;
    }
    table.insert(
        key,
        Bucket {
            tokens: MAX_TOKENS - PACKET_COST,
            last_seen: now,
        },
    );
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    const A: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
    const B: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2));

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn v6(s: &str) -> IpAddr {
        IpAddr::V6(s.parse::<Ipv6Addr>().unwrap())
    }

    fn burst(
        limiter: &mut RateLimiter,
        now: Duration,
        source: impl Into<SourceGroup> + Copy,
        n: usize,
    ) -> Vec<bool> {
        (0..n).map(|_| limiter.allow(now, source)).collect()
    }

    #[test]
    fn burst_of_five_then_refused() {
        let mut limiter = RateLimiter::new();
        let t = ms(10_000);
        assert_eq!(
            burst(&mut limiter, t, A, 7),
            [true, true, true, true, true, false, false]
        );
    }

    #[test]
    fn refills_one_packet_per_50_ms() {
        let mut limiter = RateLimiter::new();
        let t = ms(10_000);
        burst(&mut limiter, t, A, 5);
        assert!(!limiter.allow(t + ms(50) - Duration::from_nanos(1), A));
        assert!(limiter.allow(t + ms(50), A));
        assert!(!limiter.allow(t + ms(50), A));
        for step in 2..=40 {
            assert!(limiter.allow(t + ms(50 * step), A), "step {step}");
            assert!(!limiter.allow(t + ms(50 * step), A), "step {step}");
        }
        assert_eq!(burst(&mut limiter, t + ms(2000 + 25), A, 1), [false]);
    }

    #[test]
    fn idle_time_refills_at_most_a_burst() {
        let mut limiter = RateLimiter::new();
        burst(&mut limiter, ms(0), A, 5);
        assert_eq!(
            burst(&mut limiter, ms(150), A, 4),
            [true, true, true, false]
        );
        let later = ms(150 + 900);
        assert_eq!(
            burst(&mut limiter, later, A, 6),
            [true, true, true, true, true, false]
        );
    }

    #[test]
    fn time_running_backwards_grants_nothing() {
        let mut limiter = RateLimiter::new();
        burst(&mut limiter, ms(500), A, 5);
        assert!(!limiter.allow(ms(100), A));
        assert!(!limiter.allow(ms(549), A));
        assert!(limiter.allow(ms(550), A));
    }

    #[test]
    fn sources_are_independent() {
        let mut limiter = RateLimiter::new();
        assert!(!burst(&mut limiter, ms(0), A, 6)[5]);
        assert_eq!(
            burst(&mut limiter, ms(0), B, 6),
            [true, true, true, true, true, false]
        );
        assert_eq!(limiter.tracked_sources(), 2);
    }

    #[test]
    fn ipv6_sources_share_a_bucket_per_64() {
        let mut limiter = RateLimiter::new();
        assert_eq!(burst(&mut limiter, ms(0), v6("2001:db8::1"), 3), [true; 3]);
        assert_eq!(
            burst(&mut limiter, ms(0), v6("2001:db8::ffff:2"), 3),
            [true, true, false]
        );
        assert!(
            limiter.allow(ms(0), v6("2001:db8:0:1::1")),
            "next /64 has its own bucket"
        );
        assert!(limiter.allow(ms(0), v6("2001:db9::1")));
        assert_eq!(limiter.tracked_sources(), 3);
    }

    #[test]
    fn ipv4_mapped_ipv6_counts_as_ipv4() {
        let mut limiter = RateLimiter::new();
        burst(&mut limiter, ms(0), A, 5);
        assert!(!limiter.allow(ms(0), v6("::ffff:192.0.2.1")));
        assert_eq!(limiter.tracked_sources(), 1);
    }

    #[test]
    fn gc_forgets_sources_idle_over_a_second() {
        let mut limiter = RateLimiter::new();
        limiter.allow(ms(0), A);
        limiter.allow(ms(500), B);
        limiter.gc(ms(1000));
        assert_eq!(limiter.tracked_sources(), 2, "idle exactly 1 s is kept");
        limiter.gc(ms(1001));
        assert_eq!(limiter.tracked_sources(), 1);
        limiter.gc(ms(1501));
        assert_eq!(limiter.tracked_sources(), 0);
    }

    #[test]
    fn allow_collects_garbage_once_a_second() {
        let mut limiter = RateLimiter::new();
        limiter.allow(ms(2000), A);
        limiter.allow(ms(2500), B);
        limiter.allow(ms(2999), B);
        assert_eq!(limiter.tracked_sources(), 2, "no gc due before 2000 + 1 s");
        limiter.allow(ms(3200), B);
        assert_eq!(
            limiter.tracked_sources(),
            1,
            "A, idle since 2000, is gone; B stays"
        );
        limiter.allow(ms(4100), B);
        assert_eq!(
            limiter.tracked_sources(),
            1,
            "B, seen at 3200, survives the gc at 4200 too"
        );
    }

    #[test]
    fn other_sources_are_limited_by_their_own_key() {
        let mut limiter = RateLimiter::new();
        let a_bits = u64::from(u32::from(Ipv4Addr::new(192, 0, 2, 1)));
        let route = SourceGroup::Other(a_bits);
        assert_eq!(
            burst(&mut limiter, ms(0), route, 6),
            [true, true, true, true, true, false]
        );
        assert!(limiter.allow(ms(0), SourceGroup::Other(a_bits + 1)));
        assert!(
            limiter.allow(ms(0), A),
            "an IPv4 source with the same bits is another group"
        );
    }

    #[test]
    fn full_table_refuses_unknown_sources_only() {
        let mut limiter = RateLimiter::new();
        let t = ms(0);
        let base = u32::from(Ipv4Addr::new(10, 0, 0, 0));
        for i in 0..MAX_SOURCES_PER_FAMILY as u32 {
            assert!(limiter.allow(t, IpAddr::V4(Ipv4Addr::from(base + i))));
        }
        assert_eq!(limiter.tracked_sources(), MAX_SOURCES_PER_FAMILY);
        assert!(!limiter.allow(t, A), "no room for a new source");
        assert!(
            limiter.allow(t, IpAddr::V4(Ipv4Addr::from(base))),
            "known sources still served"
        );
        assert!(
            limiter.allow(t, v6("2001:db8::1")),
            "the IPv6 table has its own cap"
        );
        assert!(
            limiter.allow(t, SourceGroup::Other(u64::from(base))),
            "so has the table of other sources"
        );
        assert_eq!(limiter.tracked_sources(), MAX_SOURCES_PER_FAMILY + 2);

        assert!(
            limiter.allow(ms(1001), A),
            "after the idle ones are collected"
        );
        assert_eq!(limiter.tracked_sources(), 1);
    }
}
