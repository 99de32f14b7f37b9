//! TUN offloads in software: splitting the super-packets the kernel hands a vnet-header TUN
//! into MTU-sized packets, and coalescing the TCP segments that come out of the tunnel back
//! into super-packets for the kernel.
//!
//! Without offloads every packet costs a system call and a trip through the kernel's stack on
//! each side. With `IFF_VNET_HDR` and `TUNSETOFFLOAD` the kernel reads and writes up to 64 KB
//! per call, with a [`VnetHdr`] saying how it is to be cut up; the work a NIC would do, cutting
//! it up and fixing headers and checksums, is then ours:
//!
//! - outbound, [`Segmenter`] turns a frame read from the TUN into IP packets, written one at a
//!   time into the caller's buffers where they are sealed in place;
//! - inbound, [`Coalescer`] gathers opened TCP segments of the same flow into one frame per
//!   flow and batch, written to the TUN with its header.
//!
//! All of it is pure functions over byte slices: no I/O, no allocation per packet (the
//! coalescer's buffers are allocated once), no panic on any input. A malformed frame from the
//! TUN is refused with a [`crate::DropReason`] to count; a packet the coalescer cannot merge
//! passes through unchanged.

mod checksum;
mod coalesce;
mod headers;
mod split;
mod vnet;

#[cfg(test)]
mod coalesce_tests;
#[cfg(test)]
mod coalesce_udp_tests;
#[cfg(test)]
mod split_tests;
#[cfg(test)]
mod test_packets;
#[cfg(test)]
mod tun_tests;

pub use checksum::{Checksum, checksum};
pub use coalesce::{Coalescer, MAX_FRAME_LEN, Push};
pub use split::{Segmenter, complete_checksum};
pub use vnet::{GsoType, VNET_HDR_LEN, VnetHdr};
