//! Criterion benchmarks for rovy-fast live in `benches/benches/`; this library is empty on purpose.
#![forbid(unsafe_code)]
