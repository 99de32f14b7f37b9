//! The sans-IO WireGuard handshake: the DoS defences in front of it (mac1/mac2 and cookies, a
//! per-source rate limit) and the TAI64N replay rule for initiations.

pub mod cookie;
pub mod rate_limit;
pub mod tai64n;
