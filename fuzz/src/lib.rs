//! Helpers shared by the fuzz targets: independent references (the RFC 1071 sum written out, a
//! plain reading of IP/TCP/UDP headers, DESIGN §1's frame layout and forwarding rule, mac1 as
//! the whitepaper writes it) and a builder of well-formed packets, so a target can steer the
//! fuzzer's bytes into inputs that get past the first length check; deterministic randomness;
//! and the protocol target's input format.
//!
//! Nothing here reuses the code under test: a target compares that code against these.

pub mod frame;
pub mod mac;
pub mod packet;
pub mod rng;
pub mod script;
pub mod sum;
