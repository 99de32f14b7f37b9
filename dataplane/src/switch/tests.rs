use super::*;
use crate::wire::frame::{PING_LEN, PingFrame, ROUTED_MIN_LEN, RoutedFrame};

/// The slots of the module docs' example: A ──3────5── B ──7────2── C.
const A_TO_B: u8 = 3;
const B_TO_A: u8 = 5;
const B_TO_C: u8 = 7;
const C_TO_B: u8 = 2;

fn live(slots: &[u8]) -> SlotSet {
    let mut set = SlotSet::new();
    for &slot in slots {
        set.insert(slot);
    }
    set
}

/// A ROUTED frame leaving its source along `slots`, with a recognisable upper message, in a
/// buffer with room to spare as a packet buffer has.
fn routed(slots: &[u8]) -> Vec<u8> {
    let mut buf = vec![0u8; 256];
    let mut frame = RoutedFrame::new_unchecked(&mut buf[..ROUTED_MIN_LEN]);
    frame.fill_header(&Label::new(slots).unwrap());
    for (i, byte) in frame.payload_mut().iter_mut().enumerate() {
        *byte = i as u8 ^ 0x5a;
    }
    buf
}

fn header(buf: &[u8]) -> RoutedHeader<&[u8]> {
    RoutedHeader::new_checked(buf).unwrap()
}

fn pos_and_label(buf: &[u8]) -> (usize, Vec<u8>) {
    let header = header(buf);
    (header.pos(), header.label().to_vec())
}

#[test]
fn a_frame_crosses_three_nodes_and_the_reply_takes_the_reversed_label() {
    let at_b = live(&[B_TO_A, B_TO_C]);
    let at_c = live(&[C_TO_B]);
    let at_a = live(&[A_TO_B]);

    let mut frame = routed(&[A_TO_B, B_TO_C]);
    let upper = frame[16..ROUTED_MIN_LEN].to_vec();
    assert_eq!(
        switch(&mut frame, B_TO_A, &at_b),
        Ok(Switched::Forward { slot: B_TO_C })
    );
    assert_eq!(pos_and_label(&frame), (1, vec![B_TO_A, B_TO_C]));
    assert_eq!(switch(&mut frame, C_TO_B, &at_c), Ok(Switched::Local));
    assert_eq!(pos_and_label(&frame), (2, vec![B_TO_A, C_TO_B]));
    assert_eq!(
        &frame[16..ROUTED_MIN_LEN],
        &upper[..],
        "the upper message is never touched"
    );

    let back = way_back(&header(&frame));
    assert_eq!(back.as_slice(), &[C_TO_B, B_TO_A]);
    let mut reply = routed(back.as_slice());
    assert_eq!(
        switch(&mut reply, B_TO_C, &at_b),
        Ok(Switched::Forward { slot: B_TO_A })
    );
    assert_eq!(switch(&mut reply, A_TO_B, &at_a), Ok(Switched::Local));
    assert_eq!(pos_and_label(&reply), (2, vec![B_TO_C, A_TO_B]));
    assert_eq!(
        way_back(&header(&reply)).as_slice(),
        &[A_TO_B, B_TO_C],
        "the way back from C's reply is A's own label"
    );
}

#[test]
fn a_dead_link_sends_a_route_error_back_to_the_source() {
    let mut frame = routed(&[A_TO_B, B_TO_C]);
    let at_b_without_c = live(&[B_TO_A]);
    assert_eq!(
        switch(&mut frame, B_TO_A, &at_b_without_c),
        Ok(Switched::RouteError {
            code: RouteErrorCode::NoLink,
            failed_pos: 1
        })
    );
    let quote: [u8; 16] = frame[..16].try_into().unwrap();
    assert_eq!(
        route_error_in_place(&mut frame, RouteErrorCode::NoLink),
        Ok(ROUTE_ERROR_LEN)
    );
    let error = RouteErrorFrame::new_checked(&frame[..ROUTE_ERROR_LEN]).unwrap();
    assert_eq!(error.header().pos(), 0);
    assert_eq!(error.header().label(), &[B_TO_A]);
    assert_eq!(error.code(), RouteErrorCode::NoLink as u8);
    assert_eq!(error.failed_pos(), 1);
    assert_eq!(error.quote(), &quote);
    assert_eq!(&quote[..4], &[0x10, 0x12, B_TO_A, B_TO_C]);

    assert_eq!(
        switch(&mut frame, A_TO_B, &live(&[A_TO_B])),
        Ok(Switched::Local)
    );
}

#[test]
fn a_route_error_travels_back_through_every_hop_it_came_by() {
    // A ─1──2─ B ─3──4─ C ─5── (dead): the frame fails at C, position 2.
    let mut frame = routed(&[1, 3, 5]);
    assert_eq!(
        switch(&mut frame, 2, &live(&[2, 3])),
        Ok(Switched::Forward { slot: 3 })
    );
    assert_eq!(
        switch(&mut frame, 4, &live(&[4])),
        Ok(Switched::RouteError {
            code: RouteErrorCode::NoLink,
            failed_pos: 2
        })
    );
    route_error_in_place(&mut frame, RouteErrorCode::NoLink).unwrap();
    assert_eq!(header(&frame).label(), &[4, 2]);
    assert_eq!(header(&frame).kind(), FrameKind::RouteError);
    assert_eq!(
        switch(&mut frame, 3, &live(&[2, 3])),
        Ok(Switched::Forward { slot: 2 })
    );
    assert_eq!(switch(&mut frame, 1, &live(&[1])), Ok(Switched::Local));
    let error = RouteErrorFrame::new_checked(&frame[..]).unwrap();
    assert_eq!(error.failed_pos(), 2);
    assert_eq!(
        error.quote()[2..5],
        [2, 4, 5],
        "the failed label from the failure on"
    );
}

#[test]
fn slot_zero_is_never_a_next_hop() {
    let mut frame = routed(&[1, 0, 9]);
    let everything = live(&(0..=255).collect::<Vec<_>>());
    assert!(!everything.is_live(0));
    assert_eq!(
        switch(&mut frame, 2, &everything),
        Ok(Switched::RouteError {
            code: RouteErrorCode::NoLink,
            failed_pos: 1
        })
    );
}

#[test]
fn u_turns_are_dropped_except_for_pings() {
    let at_b = live(&[B_TO_A, B_TO_C]);
    for kind in [FrameKind::Routed, FrameKind::Pong, FrameKind::RouteError] {
        let mut frame = vec![0u8; 128];
        RoutedHeader::new_unchecked(&mut frame[..])
            .fill(kind, &Label::new(&[A_TO_B, B_TO_A]).unwrap());
        assert_eq!(
            switch(&mut frame, B_TO_A, &at_b),
            Err(DropReason::UTurn),
            "{kind:?}"
        );
    }

    // A PING that probes the link A–B and comes back to A.
    let mut ping = vec![0u8; PING_LEN];
    let mut view = PingFrame::new_unchecked(&mut ping[..]);
    view.fill_header(&Label::new(&[A_TO_B, B_TO_A]).unwrap());
    view.set_id(42);
    assert_eq!(
        switch(&mut ping, B_TO_A, &at_b),
        Ok(Switched::Forward { slot: B_TO_A })
    );
    assert_eq!(
        switch(&mut ping, A_TO_B, &live(&[A_TO_B])),
        Ok(Switched::Local)
    );
    assert_eq!(PingFrame::new_checked(&ping[..]).unwrap().id(), 42);
}

#[test]
fn a_route_error_that_cannot_go_on_is_dropped_not_answered() {
    let mut frame = vec![0u8; ROUTE_ERROR_LEN];
    RoutedHeader::new_unchecked(&mut frame[..])
        .fill(FrameKind::RouteError, &Label::new(&[1, 7]).unwrap());
    assert_eq!(
        switch(&mut frame, 2, &live(&[2])),
        Err(DropReason::DeadSlot)
    );
}

#[test]
fn a_frame_that_already_reached_its_end_is_a_bad_label() {
    let mut frame = routed(&[1, 2]);
    RoutedHeader::new_unchecked(&mut frame[..]).set_pos(2);
    assert_eq!(
        switch(&mut frame, 1, &live(&[1, 2])),
        Err(DropReason::BadLabel)
    );
    let mut empty = routed(&[]);
    assert_eq!(
        switch(&mut empty, 1, &live(&[1])),
        Err(DropReason::BadLabel)
    );
}

#[test]
fn malformed_frames_are_refused_before_anything_is_rewritten() {
    let slots = live(&[1, 2]);
    let frame = routed(&[1, 2]);
    for len in 0..ROUTED_MIN_LEN {
        let mut short = frame[..len].to_vec();
        assert_eq!(
            switch(&mut short, 1, &slots),
            Err(DropReason::FrameTruncated),
            "{len} bytes"
        );
        assert_eq!(short, frame[..len], "untouched");
    }
    let mut bad_len = frame.clone();
    bad_len[1] = 0x0f;
    assert_eq!(switch(&mut bad_len, 1, &slots), Err(DropReason::BadLabel));
    let mut past = frame.clone();
    past[1] = 0x32;
    assert_eq!(switch(&mut past, 1, &slots), Err(DropReason::BadLabel));
    for kind in [0x00, 0x20, 0x3f] {
        let mut other = frame.clone();
        other[0] = kind;
        assert_eq!(switch(&mut other, 1, &slots), Err(DropReason::UnknownFrame));
    }
}

#[test]
fn a_fourteen_hop_label_reaches_its_end_and_finds_its_way_back() {
    // Node i reaches node i + 1 on slot 10 + i and node i - 1 on slot 100 + i.
    let slots: Vec<u8> = (0..14).map(|i| 10 + i).collect();
    let node_live = |i: u8| live(&[10 + i, 100 + i]);
    let mut frame = routed(&slots);
    for node in 1..14 {
        assert_eq!(
            switch(&mut frame, 100 + node, &node_live(node)),
            Ok(Switched::Forward { slot: 10 + node }),
            "node {node}"
        );
    }
    assert_eq!(switch(&mut frame, 114, &node_live(14)), Ok(Switched::Local));
    let back = way_back(&header(&frame));
    let expected: Vec<u8> = (1..=14).rev().map(|i| 100 + i).collect();
    assert_eq!(back.as_slice(), &expected[..]);
}

#[test]
fn a_route_error_needs_room_and_a_way_back() {
    let mut ping = vec![0u8; PING_LEN];
    PingFrame::new_unchecked(&mut ping[..]).fill_header(&Label::new(&[1, 9]).unwrap());
    assert_eq!(
        switch(&mut ping, 2, &live(&[2])),
        Ok(Switched::RouteError {
            code: RouteErrorCode::NoLink,
            failed_pos: 1
        })
    );
    let before = ping.clone();
    assert_eq!(
        route_error_in_place(&mut ping, RouteErrorCode::NoLink),
        Err(DropReason::FrameTruncated)
    );
    assert_eq!(ping, before, "nothing written without room");
    ping.resize(ROUTE_ERROR_LEN, 0);
    assert_eq!(
        route_error_in_place(&mut ping, RouteErrorCode::NoLink),
        Ok(ROUTE_ERROR_LEN)
    );

    let mut unswitched = routed(&[1, 2]);
    assert_eq!(
        route_error_in_place(&mut unswitched, RouteErrorCode::NoLink),
        Err(DropReason::BadLabel)
    );
}

#[test]
fn slot_sets_hold_each_slot_but_zero() {
    let mut set = SlotSet::new();
    for slot in [1, 63, 64, 127, 128, 255] {
        assert!(!set.contains(slot));
        set.insert(slot);
        assert!(set.is_live(slot));
    }
    set.insert(0);
    assert!(!set.is_live(0));
    assert!(!set.contains(2) && !set.contains(65) && !set.contains(254));
    set.remove(64);
    assert!(!set.contains(64) && set.contains(63) && set.contains(127));
    assert_eq!((1..=255).filter(|&s| set.contains(s)).count(), 5);
}
