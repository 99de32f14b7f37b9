//! Criterion benchmarks for rovy-fast live in `benches/benches/`; this library holds the fixtures
//! the benchmarks and the instruction counters share.
#![forbid(unsafe_code)]

pub mod forwarding;
