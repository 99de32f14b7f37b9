//! A node in the middle of a label-routed path, in memory: A sends a ROUTED frame to B over a
//! real WireGuard session, B opens it, switches its label and re-seals it in place for C. The
//! forwarder's cost is B's `Dataplane::inbound` on such a datagram.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use rovy_dataplane::DropReason;
use rovy_dataplane::buf::{LINK_PAYLOAD_AT, buffer_len};
use rovy_dataplane::crypto::SymmetricKey;
use rovy_dataplane::index::IndexTable;
use rovy_dataplane::link_addr::LinkAddr;
use rovy_dataplane::peer::PeerShared;
use rovy_dataplane::pipeline::{Dataplane, Inbound};
use rovy_dataplane::route::RoutingTable;
use rovy_dataplane::session::Session;
use rovy_dataplane::tables::{PeerKind, Tables};
use rovy_dataplane::wire::frame::{FrameKind, Label, ROUTED_HEADER_LEN, RoutedHeader};

/// The links' MTU.
pub const MTU: usize = 1420;
/// B's slot for its link to A, and for its link to C.
const B_TO_A: u8 = 5;
const B_TO_C: u8 = 7;

fn addr(last: u8) -> LinkAddr {
    LinkAddr::Udp(SocketAddr::new(
        IpAddr::V4(Ipv4Addr::new(10, 8, 0, last)),
        1312,
    ))
}

/// A's end of its link to B, and B with its links to A and C.
#[derive(Debug)]
pub struct Middle {
    a_to_b: PeerShared,
    b: Dataplane,
}

impl Default for Middle {
    fn default() -> Self {
        Self::new()
    }
}

impl Middle {
    /// The three nodes with their sessions established.
    pub fn new() -> Self {
        let key = |b: u8| SymmetricKey::from_bytes([b; 32]);
        let session = |local, remote, initiator| {
            let (send, recv) = if initiator { (1, 2) } else { (2, 1) };
            Session::new(
                local,
                remote,
                key(send),
                key(recv),
                initiator,
                Duration::ZERO,
            )
        };
        let a_to_b = PeerShared::new(0, Some(addr(2)));
        a_to_b.install(session(1, 2, true));
        let b_to_a = Arc::new(PeerShared::new(0, Some(addr(1))));
        b_to_a.install(session(2, 1, false));
        let b_to_c = Arc::new(PeerShared::new(1, Some(addr(3))));
        b_to_c.install(session(3, 4, true));
        let index = Arc::new(IndexTable::new());
        index.insert(2, Arc::clone(&b_to_a));
        index.insert(3, Arc::clone(&b_to_c));
        let mut tables = Tables::new(
            RoutingTable::new(),
            vec![Arc::clone(&b_to_a), Arc::clone(&b_to_c)],
            vec![PeerKind::Rovy, PeerKind::Rovy],
        );
        tables.links.insert(B_TO_A, b_to_a);
        tables.links.insert(B_TO_C, b_to_c);
        Middle {
            a_to_b,
            b: Dataplane::new(index, tables, MTU),
        }
    }

    /// A buffer for one datagram.
    pub fn buffer() -> Vec<u8> {
        vec![0; buffer_len(MTU)]
    }

    /// Seals, at A, a ROUTED frame of `frame_len` bytes (header included) whose label leads
    /// through B to C, into `buf`; returns the datagram's length.
    ///
    /// # Errors
    /// A's session refuses to seal (it never does within the fixture's counter range).
    pub fn seal_at_a(
        &self,
        now: Duration,
        buf: &mut [u8],
        frame_len: usize,
    ) -> Result<usize, DropReason> {
        let frame = buf
            .get_mut(LINK_PAYLOAD_AT..LINK_PAYLOAD_AT + frame_len)
            .ok_or(DropReason::BadLength)?;
        frame[ROUTED_HEADER_LEN..].fill(0x5a);
        let label = Label::new(&[3, B_TO_C, 2]).ok_or(DropReason::BadLabel)?;
        RoutedHeader::new_unchecked(&mut frame[..]).fill(FrameKind::Routed, &label);
        self.a_to_b
            .seal_link(now, buf, frame_len, MTU)
            .map(|(len, _)| len)
    }

    /// B's work on a datagram from A: open, switch, re-seal for C. `Ok` only if it was
    /// forwarded to C.
    ///
    /// # Errors
    /// Whatever B's pipeline dropped the datagram for, or `DeadSlot` for another verdict.
    pub fn forward_at_b(&self, now: Duration, datagram: &mut [u8]) -> Result<usize, DropReason> {
        match self.b.inbound(now, addr(1), datagram)? {
            Inbound::Forward { len, dst, .. } if dst == addr(3) => Ok(len),
            _ => Err(DropReason::DeadSlot),
        }
    }
}
