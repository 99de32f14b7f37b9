//! rovy-fast data path: everything that touches a packet.
//!
//! Conventions shared by every module here and by the control crate:
//! - Time is passed in, never read: `now` is a [`std::time::Duration`] since an arbitrary
//!   monotonic origin chosen by the caller's loop. That keeps every protocol rule testable on a
//!   virtual clock.
//! - Nothing in this crate allocates per packet or panics on input from the network; every
//!   rejected packet has a [`DropReason`] the caller counts.
#![deny(unsafe_code)]

pub mod buf;
pub mod control_queue;
pub mod counters;
pub mod crypto;

pub mod index;
pub mod link_addr;
pub mod offload;
pub mod overlay_address;
pub mod peer;
pub mod pipeline;
pub mod replay;
pub mod route;
pub mod session;
pub mod signature;
pub mod staged;
pub mod switch;
#[allow(unsafe_code)]
pub mod sys;
pub mod tables;
pub mod wire;
pub mod worker;

pub use counters::{DropCounters, DropReason, WorkerCounters};
