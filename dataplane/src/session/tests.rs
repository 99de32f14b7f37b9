use ring::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, Nonce, UnboundKey};

use super::*;
use crate::replay::WINDOW_SIZE;
use crate::wire::KEEPALIVE_LEN;

const T0: Duration = Duration::from_secs(1000);
const MTU: usize = 1420;

/// Key bytes derived from an index, so every session in a test has its own keys.
fn key_bytes(index: u32, direction: u8) -> [u8; 32] {
    let mut bytes = [direction; 32];
    bytes[..4].copy_from_slice(&index.to_le_bytes());
    bytes
}

/// Our session with `local`/`remote` indices and the peer's matching one.
fn link(local: u32, remote: u32, we_initiated: bool) -> (Session, Session) {
    let ours = Session::new(
        local,
        remote,
        SymmetricKey::from_bytes(key_bytes(local, 1)),
        SymmetricKey::from_bytes(key_bytes(local, 2)),
        we_initiated,
        T0,
    );
    let theirs = Session::new(
        remote,
        local,
        SymmetricKey::from_bytes(key_bytes(local, 2)),
        SymmetricKey::from_bytes(key_bytes(local, 1)),
        !we_initiated,
        T0,
    );
    (ours, theirs)
}

/// A sealed data message carrying `payload`; the buffer is pre-filled with 0xaa so that
/// padding which is not written shows.
fn seal(sender: &Session, payload: &[u8]) -> Vec<u8> {
    let mut buf = vec![0xaa; DATA_HEADER_LEN + payload.len() + 2 * PADDING_MULTIPLE + TAG_LEN];
    buf[DATA_HEADER_LEN..DATA_HEADER_LEN + payload.len()].copy_from_slice(payload);
    let len = sender
        .encapsulate(T0, &mut buf, payload.len(), MTU)
        .unwrap();
    buf.truncate(len);
    buf
}

/// A sealed keepalive carrying counter `counter`.
fn seal_at(sender: &Session, counter: u64) -> Vec<u8> {
    sender.send_counter.store(counter, Ordering::Relaxed);
    seal(sender, b"")
}

fn payload(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8 + 1).collect()
}

#[test]
fn round_trip_pads_to_sixteen_capped_by_mtu() {
    let (alice, bob) = link(7, 9, true);
    for (len, padded) in [(0, 0), (1, 16), (15, 16), (16, 16), (17, 32), (1420, 1420)] {
        let data = payload(len);
        let mut packet = seal(&alice, &data);
        assert_eq!(packet.len(), KEEPALIVE_LEN + padded, "payload {len}");
        let n = bob.decapsulate(T0, &mut packet).unwrap();
        assert_eq!(n, padded);
        assert_eq!(packet[16..16 + len], data[..]);
        assert!(
            packet[16 + len..16 + n].iter().all(|&b| b == 0),
            "padding of {len}"
        );
    }
    assert_eq!(alice.next_send_counter(), 6);
}

#[test]
fn padding_never_exceeds_mtu_nor_pads_oversized_payloads() {
    assert_eq!(padded_len(1419, 1420), 1420);
    assert_eq!(padded_len(1000, 1001), 1001);
    assert_eq!(padded_len(1000, 1420), 1008);
    assert_eq!(padded_len(1500, 1420), 1500);
    assert_eq!(padded_len(17, 0), 17);

    let (alice, bob) = link(1, 2, true);
    let mut buf = vec![0xaa; 1100];
    buf[16..1016].copy_from_slice(&payload(1000));
    let len = alice.encapsulate(T0, &mut buf, 1000, 1001).unwrap();
    assert_eq!(len, 16 + 1001 + 16);
    assert_eq!(bob.decapsulate(T0, &mut buf[..len]), Ok(1001));
    assert_eq!(buf[16 + 1000], 0);
}

#[test]
fn data_message_is_byte_exact_wireguard() {
    let (alice, _) = link(0x0102_0304, 0xa1b2_c3d4, true);
    alice
        .send_counter
        .store(0x0102_0304_0506_0708, Ordering::Relaxed);
    let data = payload(20);
    let packet = seal(&alice, &data);
    assert_eq!(
        packet[..16],
        [4, 0, 0, 0, 0xd4, 0xc3, 0xb2, 0xa1, 8, 7, 6, 5, 4, 3, 2, 1]
    );
    assert_eq!(packet.len(), 16 + 32 + 16);

    // Open with ring directly: the nonce is 4 zero bytes then the LE counter, no AAD.
    let key =
        LessSafeKey::new(UnboundKey::new(&CHACHA20_POLY1305, &key_bytes(0x0102_0304, 1)).unwrap());
    let nonce = Nonce::assume_unique_for_key([0, 0, 0, 0, 8, 7, 6, 5, 4, 3, 2, 1]);
    let mut sealed = packet[16..].to_vec();
    let plaintext = key.open_in_place(nonce, Aad::empty(), &mut sealed).unwrap();
    let mut expected = data;
    expected.resize(32, 0);
    assert_eq!(plaintext, &expected[..]);
}

#[test]
fn tampering_with_any_byte_is_rejected_without_moving_the_window() {
    let (alice, bob) = link(5, 6, true);
    let original = seal(&alice, &payload(17));
    for at in 0..original.len() {
        let mut packet = original.clone();
        packet[at] ^= 0x01;
        let expected = match at {
            0..=3 => DropReason::UnknownType,
            4..=7 => DropReason::UnknownIndex,
            _ => DropReason::AuthFailed,
        };
        assert_eq!(bob.decapsulate(T0, &mut packet), Err(expected), "byte {at}");
    }
    let mut packet = original;
    assert_eq!(bob.decapsulate(T0, &mut packet), Ok(32));
}

#[test]
fn truncated_and_foreign_packets_are_rejected() {
    let (alice, bob) = link(5, 6, true);
    let packet = seal(&alice, b"");
    for len in 0..KEEPALIVE_LEN {
        let mut short = packet[..len].to_vec();
        assert_eq!(
            bob.decapsulate(T0, &mut short),
            Err(DropReason::Truncated),
            "{len} bytes"
        );
    }
    let (carol, _) = link(5, 99, true);
    let mut wrong_index = seal(&carol, b"");
    assert_eq!(
        bob.decapsulate(T0, &mut wrong_index),
        Err(DropReason::UnknownIndex)
    );
}

#[test]
fn a_replayed_packet_is_rejected() {
    let (alice, bob) = link(3, 4, true);
    let packet = seal(&alice, b"hello");
    assert_eq!(bob.decapsulate(T0, &mut packet.clone()), Ok(16));
    assert_eq!(
        bob.decapsulate(T0, &mut packet.clone()),
        Err(DropReason::Replayed)
    );
}

#[test]
fn out_of_order_within_the_window_is_accepted_once() {
    let (alice, bob) = link(3, 4, true);
    let packets: Vec<_> = (0..200).map(|_| seal(&alice, b"x")).collect();
    for packet in packets.iter().rev() {
        assert_eq!(bob.decapsulate(T0, &mut packet.clone()), Ok(16));
    }
    for packet in &packets {
        assert_eq!(
            bob.decapsulate(T0, &mut packet.clone()),
            Err(DropReason::Replayed)
        );
    }
}

#[test]
fn one_past_the_window_edge_is_rejected() {
    let (alice, bob) = link(3, 4, true);
    let newest = seal_at(&alice, WINDOW_SIZE + 1);
    let oldest_kept = seal_at(&alice, 1);
    let one_past = seal_at(&alice, 0);
    assert_eq!(bob.decapsulate(T0, &mut newest.clone()), Ok(0));
    assert_eq!(
        bob.decapsulate(T0, &mut one_past.clone()),
        Err(DropReason::Replayed)
    );
    assert_eq!(bob.decapsulate(T0, &mut oldest_kept.clone()), Ok(0));
}

#[test]
fn expires_at_reject_after_time() {
    let (alice, bob) = link(3, 4, true);
    let just_before = T0 + REJECT_AFTER_TIME - Duration::from_nanos(1);
    let at = T0 + REJECT_AFTER_TIME;
    assert!(!alice.is_expired(just_before));
    assert!(alice.is_expired(at));

    let mut buf = [0u8; 64];
    assert_eq!(
        alice.encapsulate(at, &mut buf, 0, MTU),
        Err(SendError::Expired)
    );
    assert_eq!(alice.next_send_counter(), 0, "no counter used");
    let len = alice.encapsulate(just_before, &mut buf, 0, MTU).unwrap();
    assert_eq!(
        bob.decapsulate(at, &mut buf[..len].to_vec()),
        Err(DropReason::SessionExpired)
    );
    assert_eq!(bob.decapsulate(just_before, &mut buf[..len]), Ok(0));
}

#[test]
fn a_buffer_too_small_uses_no_counter() {
    let (alice, _) = link(3, 4, true);
    for (buf_len, payload_len) in [(16 + 16 + 15, 1), (16 + 17 + 16, 17), (10, 11), (0, 0)] {
        let mut buf = vec![0u8; buf_len];
        assert_eq!(
            alice.encapsulate(T0, &mut buf, payload_len, MTU),
            Err(SendError::BufferTooSmall),
            "{buf_len} bytes for {payload_len}"
        );
    }
    assert_eq!(alice.next_send_counter(), 0);
    let mut exact = vec![0u8; 16 + 32 + 16];
    assert_eq!(alice.encapsulate(T0, &mut exact, 17, MTU), Ok(64));
}

#[test]
fn send_counter_stops_at_reject_after_messages() {
    let (alice, bob) = link(3, 4, true);
    let last = seal_at(&alice, REJECT_AFTER_MESSAGES - 1);
    assert_eq!(alice.next_send_counter(), REJECT_AFTER_MESSAGES);
    let mut buf = [0u8; 64];
    for _ in 0..3 {
        assert_eq!(
            alice.encapsulate(T0, &mut buf, 0, MTU),
            Err(SendError::CounterExhausted)
        );
    }
    assert_eq!(
        alice.next_send_counter(),
        REJECT_AFTER_MESSAGES,
        "never wraps"
    );
    assert_eq!(bob.decapsulate(T0, &mut last.clone()), Ok(0));

    for counter in [REJECT_AFTER_MESSAGES, u64::MAX] {
        let mut forged = last.clone();
        forged[8..16].copy_from_slice(&counter.to_le_bytes());
        assert_eq!(
            bob.decapsulate(T0, &mut forged),
            Err(DropReason::CounterExhausted)
        );
    }
}

#[test]
fn rekey_is_due_by_messages_or_by_the_initiators_clock() {
    let (alice, bob) = link(3, 4, true);
    let at = T0 + REKEY_AFTER_TIME;
    assert!(!alice.needs_rekey(at - Duration::from_millis(1)));
    assert!(alice.needs_rekey(at));
    assert!(
        !bob.needs_rekey(at + Duration::from_secs(50)),
        "responder never rekeys on time"
    );
    bob.send_counter
        .store(REKEY_AFTER_MESSAGES - 1, Ordering::Relaxed);
    assert!(!bob.needs_rekey(T0));
    seal(&bob, b"");
    assert!(bob.needs_rekey(T0));
}

fn indices(slots: &KeypairSlots) -> [Option<u32>; 3] {
    [slots.previous(), slots.current(), slots.next()].map(|s| s.map(Session::local_index))
}

#[test]
fn initiator_keypairs_rotate_current_into_previous() {
    let mut slots = KeypairSlots::new();
    let (a, _) = link(1, 101, true);
    let (b, _) = link(2, 102, true);
    let (c, _) = link(3, 103, true);
    slots.install(a);
    assert_eq!(indices(&slots), [None, Some(1), None]);
    slots.install(b);
    assert_eq!(indices(&slots), [Some(1), Some(2), None]);
    slots.install(c);
    assert_eq!(indices(&slots), [Some(2), Some(3), None]);
    assert_eq!(slots.local_indices().collect::<Vec<_>>(), [2, 3]);
}

#[test]
fn responder_keypair_waits_in_next_until_the_initiator_uses_it() {
    let mut slots = KeypairSlots::new();
    let (old, old_peer) = link(1, 101, true);
    let (fresh, fresh_peer) = link(2, 102, false);
    slots.install(old);
    slots.install(fresh);
    assert_eq!(indices(&slots), [None, Some(1), Some(2)]);

    // Sending still uses the old, confirmed keypair.
    let mut buf = [0u8; 64];
    let len = slots.encapsulate(T0, &mut buf, 0, MTU).unwrap();
    assert_eq!(buf[4..8], 101u32.to_le_bytes());
    assert_eq!(slots.current().unwrap().next_send_counter(), 1);
    assert_eq!(old_peer.decapsulate(T0, &mut buf[..len]), Ok(0));

    let received = slots
        .decapsulate(T0, &mut seal(&fresh_peer, b"confirm"))
        .unwrap();
    assert_eq!(
        received,
        Received {
            plaintext_len: 16,
            local_index: 2,
            confirmed_next: true
        }
    );
    assert_eq!(
        indices(&slots),
        [None, Some(1), Some(2)],
        "opening alone promotes nothing"
    );
    assert!(
        !slots.promote_next(1),
        "only the keypair in next can be promoted"
    );
    assert!(slots.promote_next(2));
    assert_eq!(indices(&slots), [Some(1), Some(2), None]);

    // Late packets on the old keypair still open, and confirm nothing.
    let received = slots.decapsulate(T0, &mut seal(&old_peer, b"")).unwrap();
    assert_eq!(
        received,
        Received {
            plaintext_len: 0,
            local_index: 1,
            confirmed_next: false
        }
    );
    let len = slots.encapsulate(T0, &mut buf, 0, MTU).unwrap();
    assert_eq!(buf[4..8], 102u32.to_le_bytes());
    assert_eq!(fresh_peer.decapsulate(T0, &mut buf[..len]), Ok(0));
}

#[test]
fn a_failed_packet_on_next_confirms_nothing() {
    let mut slots = KeypairSlots::new();
    let (fresh, fresh_peer) = link(2, 102, false);
    slots.install(fresh);
    let mut forged = seal(&fresh_peer, b"");
    forged[20] ^= 1;
    assert_eq!(
        slots.decapsulate(T0, &mut forged),
        Err(DropReason::AuthFailed)
    );
    assert_eq!(indices(&slots), [None, None, Some(2)]);
    let mut buf = [0u8; 64];
    assert_eq!(
        slots.encapsulate(T0, &mut buf, 0, MTU),
        Err(SendError::NoSession),
        "an unconfirmed keypair never sends"
    );
}

#[test]
fn a_second_responder_keypair_replaces_the_unconfirmed_one() {
    let mut slots = KeypairSlots::new();
    let (first, first_peer) = link(2, 102, false);
    let (second, _) = link(3, 103, false);
    slots.install(first);
    slots.install(second);
    assert_eq!(indices(&slots), [None, None, Some(3)]);
    assert_eq!(
        slots.decapsulate(T0, &mut seal(&first_peer, b"")),
        Err(DropReason::UnknownIndex)
    );
}

#[test]
fn responder_install_drops_previous_and_initiator_install_keeps_unconfirmed_next() {
    let mut slots = KeypairSlots::new();
    for (index, initiator) in [(1, true), (2, true)] {
        slots.install(link(index, 100 + index, initiator).0);
    }
    assert_eq!(indices(&slots), [Some(1), Some(2), None]);
    slots.install(link(3, 103, false).0);
    assert_eq!(indices(&slots), [None, Some(2), Some(3)]);
    // Our own initiation completed before the peer confirmed its: the unconfirmed keypair
    // becomes previous (it may still receive) and the old current is dropped.
    slots.install(link(4, 104, true).0);
    assert_eq!(indices(&slots), [Some(3), Some(4), None]);
}

#[test]
fn slots_reject_unknown_indices_and_send_nothing_when_empty() {
    let mut slots = KeypairSlots::new();
    let (_, stranger) = link(9, 109, true);
    assert_eq!(
        slots.decapsulate(T0, &mut seal(&stranger, b"")),
        Err(DropReason::UnknownIndex)
    );
    assert_eq!(
        slots.decapsulate(T0, &mut [4, 0, 0, 0]),
        Err(DropReason::Truncated)
    );
    let mut buf = [0u8; 64];
    assert_eq!(
        slots.encapsulate(T0, &mut buf, 0, MTU),
        Err(SendError::NoSession)
    );

    slots.install(link(1, 101, true).0);
    slots.install(link(2, 102, true).0);
    slots.install(link(3, 103, false).0);
    assert_eq!(slots.local_indices().collect::<Vec<_>>(), [2, 3]);
    slots.clear();
    assert_eq!(indices(&slots), [None, None, None]);
    assert_eq!(slots.local_indices().count(), 0);
    assert_eq!(
        slots.encapsulate(T0, &mut buf, 0, MTU),
        Err(SendError::NoSession)
    );
}
