//! IP prefixes as the config writes them: any text, no panic; an accepted prefix prints as text
//! that parses back to it, its network form is its own network form and overlaps it, and
//! `overlaps` between two accepted prefixes is symmetric and agrees with `contains`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rovy_control::config::IpPrefix;

fuzz_target!(|text: &str| {
    let mut parsed = Vec::new();
    for part in text.splitn(2, '\n') {
        let Ok(prefix) = part.parse::<IpPrefix>() else {
            continue;
        };
        let printed = prefix.to_string();
        assert_eq!(
            printed.parse::<IpPrefix>(),
            Ok(prefix),
            "{part:?} printed as {printed:?}"
        );
        let max = if prefix.addr().is_ipv4() { 32 } else { 128 };
        assert!(prefix.prefix_len() <= max);
        assert_eq!(
            IpPrefix::new(prefix.addr(), prefix.prefix_len()),
            Some(prefix)
        );
        let network = prefix.masked();
        assert_eq!(network.masked(), network);
        assert_eq!(network.prefix_len(), prefix.prefix_len());
        assert!(network.contains(prefix.addr()) && prefix.contains(network.addr()));
        assert!(prefix.overlaps(&network) && network.overlaps(&prefix));
        if !part.contains('/') {
            assert_eq!(prefix.prefix_len(), max, "a bare address is a host prefix");
        }
        parsed.push(prefix);
    }
    if let [a, b] = parsed[..] {
        assert_eq!(a.overlaps(&b), b.overlaps(&a), "{a} and {b}");
        let (short, long) = if a.prefix_len() <= b.prefix_len() {
            (a, b)
        } else {
            (b, a)
        };
        assert_eq!(a.overlaps(&b), short.contains(long.addr()), "{a} and {b}");
        if a.addr().is_ipv4() != b.addr().is_ipv4() {
            assert!(!a.overlaps(&b), "prefixes of two families overlap");
        }
    }
});
