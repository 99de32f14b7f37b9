//! rovy-fast control plane: identity, configuration, the sans-IO WireGuard handshake and
//! timers, and the `rovy-fast` command line.
//!
//! Everything protocol-shaped here is sans-IO: it takes bytes, `now` (a monotonic
//! [`std::time::Duration`] since an arbitrary origin) and randomness from the caller, and returns
//! what to send. Only `main.rs` (and later the daemon loop) touches clocks, files and sockets.
#![forbid(unsafe_code)]

pub mod api;
pub mod config;
pub mod cpus;
pub mod daemon;
pub mod handshake;
pub mod keys;
pub mod logging;
pub mod metrics;
pub mod protocol;
pub mod routing;
pub mod timers;
pub mod tune;
