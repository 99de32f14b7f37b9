//! The sans-IO WireGuard handshake: the Noise IKpsk2 exchange itself, the DoS defences in front
//! of it (mac1/mac2 and cookies, a per-source rate limit) and the TAI64N replay rule for
//! initiations. [`crate::protocol`] puts them together per peer.

pub mod cookie;
#[cfg(fuzzing)]
mod fuzzing_dh;
pub mod noise;
pub mod rate_limit;
mod resolver;
pub mod tai64n;
