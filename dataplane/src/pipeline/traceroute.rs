//! Traceroute through the overlay (DESIGN §1 "ICMPv6 inside the overlay"). Intermediate nodes
//! never open the packets they forward, so they cannot see a hop limit run out; the source does
//! it for them. A packet to an fc00 destination whose hop limit `h` is below its route's hop
//! count leaves as a PING along the route's first `h` slots instead; the node where that label
//! ends answers with a PONG carrying its key; the source turns the PONG into the ICMPv6 Time
//! Exceeded that node would have sent, from the address its key owns.
//!
//! The source keeps no state: the PING carries the probe packet (as much of it as the Time
//! Exceeded quotes) and the PONG echoes it. The PING's id is a keyed hash of that quote, so a
//! PONG whose data this node never sent in a PING is refused ([`DropReason::UnsolicitedPong`])
//! before it costs more than the hash. The PONG is signed by the replier's key over the id, so
//! a hop cannot name another node ([`DropReason::ForgedPong`]); the check (an Ed25519
//! verification, about 50 µs) comes after the hash and the ICMPv6 error pace, so it runs at
//! most as often as Time Exceeded messages may be written.

use std::hash::BuildHasher;
use std::time::Duration;

use super::{Dataplane, Sealed};
use crate::DropReason;
use crate::buf::{LINK_PAYLOAD_AT, PACKET_AT};
use crate::link_addr::LinkAddr;
use crate::overlay_address;
use crate::peer::PeerShared;
use crate::signature;
use crate::tables::Tables;
use crate::wire::frame::{
    Label, PING_LEN, PingFrame, PongFrame, ROUTE_ERROR_LEN, pong_signed_message,
};
use crate::wire::icmpv6::{ICMPV6_ERROR_MAX_LEN, Icmpv6Error, quoted_len, write_error};
use crate::wire::ip;

/// The label a PING takes in place of the packet at `buf[PACKET_AT..PACKET_AT + len]`, bound
/// for `upper`'s destination: the first `h` slots of the route, where `h` is the packet's hop
/// limit, if that is shorter than the route. `None` for a packet that reaches its destination
/// (or is not IPv6, or has a hop limit of 0, which no host sends).
pub(super) fn probe_path(upper: &PeerShared, buf: &[u8], len: usize) -> Option<Label> {
    let hops = usize::from(ip::ipv6_hop_limit(buf.get(PACKET_AT..PACKET_AT + len)?)?);
    let Some(LinkAddr::Overlay(route)) = upper.endpoint() else {
        return None;
    };
    (hops > 0 && hops < route.len()).then(|| Label::new(&route.as_slice()[..hops]))?
}

impl Dataplane {
    /// Sends, in place of the packet at `buf[PACKET_AT..PACKET_AT + len]`, a PING along `path`
    /// carrying the packet's quote: the datagram starts at 0.
    pub(super) fn probe(
        &self,
        now: Duration,
        tables: &Tables,
        path: &Label,
        buf: &mut [u8],
        len: usize,
    ) -> Result<Sealed, DropReason> {
        let link = path
            .first()
            .and_then(|slot| tables.links.peer(slot))
            .ok_or(DropReason::DeadSlot)?;
        let packet = buf
            .get(PACKET_AT..PACKET_AT + len)
            .ok_or(DropReason::InvalidInnerPacket)?;
        let quote = quoted_len(packet).ok_or(DropReason::InvalidInnerPacket)?;
        let id = self.probe_id(&packet[..quote]);
        // A PING is never shorter than the ROUTE_ERROR a dead hop turns it into, which is
        // sealed in its place.
        let frame_len = (PING_LEN + quote).max(ROUTE_ERROR_LEN);
        let data_at = LINK_PAYLOAD_AT + PING_LEN;
        buf.copy_within(PACKET_AT..PACKET_AT + quote, data_at);
        buf[data_at + quote..LINK_PAYLOAD_AT + frame_len].fill(0);
        let mut ping =
            PingFrame::new_unchecked(&mut buf[LINK_PAYLOAD_AT..LINK_PAYLOAD_AT + frame_len]);
        ping.fill_header(path);
        ping.set_id(id);
        let (len, dst) = link.seal_link(now, buf, frame_len, self.mtu)?;
        Ok(Sealed::Datagram { at: 0, len, dst })
    }

    /// The PONG of `len` bytes at `buf[LINK_PAYLOAD_AT..]`, whose label ended here: if it
    /// answers one of this node's probes, the ICMPv6 Time Exceeded it stands for, from the
    /// replier's address to the probe's source, written over it for the TUN.
    pub(super) fn time_exceeded(
        &self,
        now: Duration,
        buf: &mut [u8],
        len: usize,
    ) -> Result<super::Inbound, DropReason> {
        let pong = PongFrame::new_checked(&buf[LINK_PAYLOAD_AT..LINK_PAYLOAD_AT + len])?;
        let data = pong.data();
        let quote = quoted_len(data).ok_or(DropReason::UnsolicitedPong)?;
        if pong.id() != self.probe_id(&data[..quote]) {
            return Err(DropReason::UnsolicitedPong);
        }
        if !self.icmp_errors.allow(now) {
            return Err(DropReason::RateLimited);
        }
        let signed = pong_signed_message(pong.id());
        if !signature::verify(pong.public_key(), &signed, pong.signature()) {
            return Err(DropReason::ForgedPong);
        }
        let hop = overlay_address::derive(pong.public_key()).ok_or(DropReason::UnsolicitedPong)?;
        let mut out = [0u8; ICMPV6_ERROR_MAX_LEN];
        let written = write_error(Icmpv6Error::TimeExceeded, hop, &data[..quote], &mut out)
            .ok_or(DropReason::UnsolicitedPong)?;
        // The error is no longer than the PONG (8 bytes of ICMPv6 header for its 120 of
        // frame), so it fits where the PONG was.
        let at = LINK_PAYLOAD_AT;
        buf.get_mut(at..at + written)
            .ok_or(DropReason::FrameTruncated)?
            .copy_from_slice(&out[..written]);
        Ok(super::Inbound::Deliver { at, len: written })
    }

    /// The id of the PING that carries `quote`: a keyed hash only this node can make.
    fn probe_id(&self, quote: &[u8]) -> u64 {
        self.probe_ids.hash_one(quote)
    }
}
