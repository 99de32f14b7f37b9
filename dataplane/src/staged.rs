//! Packets for a peer that arrive before it has a session: held until the handshake they
//! start completes, then sealed and sent, oldest first.
//!
//! Without this the first packets of every connection (a ping, a TCP SYN, a DNS query) would
//! be lost while the handshake runs and be retried only by the application, a second or more
//! later. WireGuard holds up to 128 per peer and drops the oldest when more come (the kernel's
//! `MAX_STAGED_PACKETS`, wireguard-go's `QueueStagedSize`); so do we. The area is allocated
//! the first time a peer needs it and kept, so staging never allocates per packet.

use crate::buf::{PACKET_AT, buffer_len};

/// Most packets held for one peer.
pub const STAGED_CAPACITY: usize = 128;

/// A ring of up to [`STAGED_CAPACITY`] packets, each in a slot laid out as [`crate::buf`]
/// says, so it is sealed in place.
#[derive(Debug, Default)]
pub struct StagedPackets {
    /// `STAGED_CAPACITY` slots of `slot_len` bytes; empty until the first packet.
    area: Vec<u8>,
    /// The MTU the area was made for: the longest packet it holds.
    mtu: usize,
    slot_len: usize,
    /// Packet length in each slot.
    lens: Vec<usize>,
    /// Slot of the oldest packet.
    head: usize,
    count: usize,
}

/// What [`StagedPackets::push`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Staged {
    /// Held.
    Held,
    /// Held, and the oldest packet was dropped to make room.
    DroppedOldest,
    /// Not held: longer than the MTU the area was made for.
    TooLong,
}

impl StagedPackets {
    /// An empty queue; allocates nothing.
    pub fn new() -> Self {
        Self::default()
    }

    /// Packets held.
    pub fn len(&self) -> usize {
        self.count
    }

    /// Whether no packet is held.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Copies `packet` to the back of the queue, making the area for `mtu` on first use. When
    /// the queue is full the oldest packet goes.
    pub fn push(&mut self, packet: &[u8], mtu: usize) -> Staged {
        if self.area.is_empty() {
            self.mtu = mtu;
            self.slot_len = buffer_len(mtu);
            self.area = vec![0; STAGED_CAPACITY * self.slot_len];
            self.lens = vec![0; STAGED_CAPACITY];
        }
        if packet.len() > self.mtu {
            return Staged::TooLong;
        }
        let dropped = self.count == STAGED_CAPACITY;
        if dropped {
            self.pop_front();
        }
        let slot = (self.head + self.count) % STAGED_CAPACITY;
        let start = slot * self.slot_len + PACKET_AT;
        self.area[start..start + packet.len()].copy_from_slice(packet);
        self.lens[slot] = packet.len();
        self.count += 1;
        if dropped {
            Staged::DroppedOldest
        } else {
            Staged::Held
        }
    }

    /// The oldest packet's slot and length: the packet is `slot[PACKET_AT..PACKET_AT + len]`,
    /// and the whole slot may be written (to seal the packet in place).
    pub fn front_mut(&mut self) -> Option<(&mut [u8], usize)> {
        if self.count == 0 {
            return None;
        }
        let start = self.head * self.slot_len;
        let len = self.lens[self.head];
        Some((&mut self.area[start..start + self.slot_len], len))
    }

    /// Forgets the oldest packet.
    pub fn pop_front(&mut self) {
        if self.count > 0 {
            self.head = (self.head + 1) % STAGED_CAPACITY;
            self.count -= 1;
        }
    }

    /// Forgets every packet (the area is kept).
    pub fn clear(&mut self) {
        self.head = 0;
        self.count = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packet(i: usize, len: usize) -> Vec<u8> {
        (0..len).map(|j| (i * 31 + j) as u8).collect()
    }

    /// Pops every packet, returning them oldest first.
    fn drain(staged: &mut StagedPackets) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        while let Some((slot, len)) = staged.front_mut() {
            out.push(slot[PACKET_AT..PACKET_AT + len].to_vec());
            staged.pop_front();
        }
        out
    }

    #[test]
    fn holds_packets_in_order_with_room_to_seal() {
        let mut staged = StagedPackets::new();
        assert!(staged.is_empty());
        assert_eq!(staged.front_mut().map(|(_, len)| len), None);
        let packets: Vec<Vec<u8>> = (0..5).map(|i| packet(i, 20 + i * 300)).collect();
        for p in &packets {
            assert_eq!(staged.push(p, 1420), Staged::Held);
        }
        assert_eq!(staged.len(), 5);
        let (slot, _) = staged.front_mut().unwrap();
        assert_eq!(slot.len(), buffer_len(1420));
        assert_eq!(drain(&mut staged), packets);
        assert!(staged.is_empty());
    }

    #[test]
    fn when_full_the_oldest_goes_across_the_ring_wrap() {
        let mut staged = StagedPackets::new();
        for i in 0..STAGED_CAPACITY {
            assert_eq!(staged.push(&packet(i, 100), 1420), Staged::Held);
        }
        for i in STAGED_CAPACITY..STAGED_CAPACITY + 10 {
            assert_eq!(staged.push(&packet(i, 100), 1420), Staged::DroppedOldest);
        }
        assert_eq!(staged.len(), STAGED_CAPACITY);
        let expected: Vec<Vec<u8>> = (10..STAGED_CAPACITY + 10).map(|i| packet(i, 100)).collect();
        assert_eq!(drain(&mut staged), expected);
    }

    #[test]
    fn a_packet_longer_than_the_mtu_is_refused_and_clear_empties() {
        let mut staged = StagedPackets::new();
        assert_eq!(staged.push(&packet(0, 100), 1280), Staged::Held);
        assert_eq!(staged.push(&packet(1, 1280), 1280), Staged::Held);
        assert_eq!(staged.push(&packet(2, 1281), 1280), Staged::TooLong);
        assert_eq!(staged.len(), 2);
        staged.clear();
        assert!(staged.is_empty());
        assert_eq!(staged.push(&packet(3, 10), 1280), Staged::Held);
        assert_eq!(drain(&mut staged), vec![packet(3, 10)]);
    }
}
