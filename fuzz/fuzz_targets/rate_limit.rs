//! The handshake rate limiter on a virtual clock: per source group (an IPv4 address, IPv4-mapped
//! IPv6 included, or an IPv6 /64), no interval [a, b] ever admits more than the burst plus the
//! rate times (b − a); a source silent long enough to refill its whole burst is always
//! admitted; and after a collection exactly the sources heard from within the idle timeout are
//! tracked.
#![no_main]

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use rovy_control::handshake::rate_limit::{
    IDLE_TIMEOUT, PACKETS_BURSTABLE, PACKETS_PER_SECOND, RateLimiter,
};

const NANOS: u128 = 1_000_000_000;

#[derive(Debug, Arbitrary)]
struct Event {
    /// Time to let pass first, in microseconds.
    advance_us: u16,
    /// Also let 1.5 s pass: long enough for a collection to forget idle sources.
    long_pause: bool,
    source: u8,
    collect: bool,
}

/// Sixteen sources in seven groups: four IPv4 addresses, the same four IPv4-mapped, and eight
/// IPv6 addresses in three /64s.
fn source(index: u8) -> (IpAddr, (bool, u64)) {
    let i = index % 16;
    if i < 8 {
        let v4 = Ipv4Addr::new(192, 0, 2, i % 4);
        let ip = if i < 4 {
            IpAddr::V4(v4)
        } else {
            IpAddr::V6(v4.to_ipv6_mapped())
        };
        (ip, (false, u64::from(u32::from(v4))))
    } else {
        let prefix = 0x2001_0db8_0000_0000 | u64::from(i % 3);
        let v6 = Ipv6Addr::from((u128::from(prefix) << 64) | u128::from(i));
        (IpAddr::V6(v6), (true, prefix))
    }
}

fuzz_target!(|events: Vec<Event>| {
    let mut limiter = RateLimiter::new();
    let mut now = Duration::from_secs(5);
    let mut admitted: HashMap<(bool, u64), Vec<Duration>> = HashMap::new();
    let mut last_request: HashMap<(bool, u64), Duration> = HashMap::new();
    let refill_all = Duration::from_nanos(
        (PACKETS_BURSTABLE as u128 * NANOS / PACKETS_PER_SECOND as u128) as u64,
    );
    for event in events.iter().take(512) {
        now += Duration::from_micros(u64::from(event.advance_us));
        if event.long_pause {
            now += Duration::from_millis(1500);
        }
        let (ip, group) = source(event.source);
        let allowed = limiter.allow(now, ip);
        let rested = last_request
            .get(&group)
            .is_none_or(|&last| now - last >= refill_all);
        if rested {
            assert!(allowed, "{ip} rested for a whole burst and was refused");
        }
        last_request.insert(group, now);
        if allowed {
            let times = admitted.entry(group).or_default();
            times.push(now);
            let count = times.len();
            for (i, &start) in times.iter().enumerate() {
                let in_interval = (count - i) as u128;
                let credit = PACKETS_BURSTABLE as u128 * NANOS
                    + (now - start).as_nanos() * PACKETS_PER_SECOND as u128;
                assert!(
                    in_interval * NANOS <= credit,
                    "{ip}: {in_interval} admitted within {:?}",
                    now - start
                );
            }
        }
        if event.collect {
            limiter.gc(now);
            let live = last_request
                .values()
                .filter(|&&last| now - last <= IDLE_TIMEOUT)
                .count();
            assert_eq!(
                limiter.tracked_sources(),
                live,
                "sources tracked after a collection"
            );
        }
    }
});
