//! Helpers shared by the fuzz targets: independent references (the RFC 1071 sum written out, a
//! plain reading of IP/TCP/UDP headers, DESIGN §1's frame layout and forwarding rule) and a
//! builder of well-formed packets, so a target can steer the fuzzer's bytes into inputs that
//! get past the first length check.
//!
//! Nothing here reuses the code under test: a target compares that code against these.

pub mod frame;
pub mod packet;
pub mod sum;
