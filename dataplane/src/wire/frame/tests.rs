use super::*;

fn label(slots: &[u8]) -> Label {
    Label::new(slots).unwrap()
}

/// A PONG of `len` bytes (padding after the layout is allowed) along `slots`, switched to
/// position `pos`.
fn pong(len: usize, slots: &[u8], pos: usize) -> Vec<u8> {
    let mut buf = vec![0u8; len];
    let mut pong = PongFrame::new_unchecked(&mut buf[..]);
    pong.fill_header(&label(slots));
    pong.header_mut().set_pos(pos);
    pong.set_id(0x0102_0304_0506_0708);
    pong.set_public_key(&[0xab; 32]);
    buf
}

#[test]
fn every_byte_round_trips_or_is_unknown() {
    let mut known = 0;
    for byte in 0..=u8::MAX {
        if let Some(kind) = FrameKind::from_byte(byte) {
            assert_eq!(kind as u8, byte);
            assert!(byte < FrameKind::FIRST_NON_FRAME);
            known += 1;
        }
    }
    assert_eq!(known, 9);
}

#[test]
fn only_label_frames_are_routed() {
    assert!(FrameKind::Routed.is_routed());
    assert!(FrameKind::RouteError.is_routed());
    assert!(!FrameKind::Hello.is_routed());
    assert!(!FrameKind::Ack.is_routed());
}

#[test]
fn classify_refuses_wireguard_peers_unknown_kinds_and_nothing() {
    assert_eq!(FrameKind::classify(&[0x11, 0], true), Ok(FrameKind::Ping));
    assert_eq!(
        FrameKind::classify(&[0x11, 0], false),
        Err(DropReason::FrameFromWireguardPeer)
    );
    assert_eq!(
        FrameKind::classify(&[0x3f], true),
        Err(DropReason::UnknownFrame)
    );
    assert_eq!(
        FrameKind::classify(&[], true),
        Err(DropReason::FrameTruncated)
    );
}

#[test]
fn labels_hold_at_most_fourteen_slots_and_reverse() {
    let slots: Vec<u8> = (1..=14).collect();
    let full = label(&slots);
    assert_eq!(full.as_slice(), &slots[..]);
    assert_eq!(full.len(), 14);
    assert!(Label::new(&[1; 15]).is_none());
    assert!(Label::reversed(&[1; 15]).is_none());
    let back = Label::reversed(&[1, 2, 3]).unwrap();
    assert_eq!(back.as_slice(), &[3, 2, 1]);
    assert_eq!(back.padded()[..4], [3, 2, 1, 0]);
    assert!(Label::new(&[]).unwrap().is_empty());
}

#[test]
fn header_fields_sit_at_their_offsets() {
    let buf = pong(PONG_LEN, &[9, 8, 7], 2);
    assert_eq!(buf[0], 0x12);
    assert_eq!(buf[1], 0x23, "pos in the high nibble, len in the low");
    assert_eq!(&buf[2..16], &[9, 8, 7, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    assert_eq!(&buf[16..24], &[8, 7, 6, 5, 4, 3, 2, 1], "id little-endian");
    assert_eq!(&buf[24..56], &[0xab; 32]);

    let view = PongFrame::new_checked(&buf[..]).unwrap();
    assert_eq!(view.id(), 0x0102_0304_0506_0708);
    assert_eq!(view.public_key(), &[0xab; 32]);
    let header = view.header();
    assert_eq!(header.kind(), FrameKind::Pong);
    assert_eq!((header.pos(), header.label_len()), (2, 3));
    assert_eq!(header.label(), &[9, 8, 7]);
    assert_eq!(&header.as_bytes()[..], &buf[..16]);
}

#[test]
fn ping_and_route_error_round_trip() {
    let mut buf = [0u8; PING_LEN];
    let mut ping = PingFrame::new_unchecked(&mut buf[..]);
    ping.fill_header(&label(&[4]));
    ping.set_id(77);
    let ping = PingFrame::new_checked(&buf[..]).unwrap();
    assert_eq!(ping.id(), 77);
    assert_eq!(ping.header().label(), &[4]);

    let mut buf = [0u8; ROUTE_ERROR_LEN];
    let quote: [u8; 16] = std::array::from_fn(|i| i as u8 + 100);
    let mut error = RouteErrorFrame::new_unchecked(&mut buf[..]);
    error.fill_header(&label(&[5, 6]));
    error.set_code(RouteErrorCode::NoLink);
    error.set_failed_pos(3);
    error.set_quote(&quote);
    assert_eq!(&buf[16..18], &[1, 3]);
    assert_eq!(&buf[18..34], &quote);
    let error = RouteErrorFrame::new_checked(&buf[..]).unwrap();
    assert_eq!(
        RouteErrorCode::from_byte(error.code()),
        Some(RouteErrorCode::NoLink)
    );
    assert_eq!(error.failed_pos(), 3);
    assert_eq!(error.quote(), &quote);
    assert_eq!(RouteErrorCode::from_byte(0), None);
}

#[test]
fn routed_payload_is_everything_after_the_header() {
    let mut buf = [0x44u8; ROUTED_MIN_LEN + 16];
    let mut frame = RoutedFrame::new_unchecked(&mut buf[..]);
    frame.fill_header(&label(&[1, 2]));
    frame.payload_mut()[0] = 4;
    let frame = RoutedFrame::new_checked(&buf[..]).unwrap();
    assert_eq!(
        frame.payload().len(),
        ROUTED_MIN_LEN + 16 - ROUTED_HEADER_LEN
    );
    assert_eq!(frame.payload()[..2], [4, 0x44]);
    assert_eq!(ROUTED_HEADER_LEN, 16);
}

#[test]
fn every_truncation_is_rejected() {
    let frames: [(FrameKind, usize); 4] = [
        (FrameKind::Routed, ROUTED_MIN_LEN),
        (FrameKind::Ping, PING_LEN),
        (FrameKind::Pong, PONG_LEN),
        (FrameKind::RouteError, ROUTE_ERROR_LEN),
    ];
    for (kind, min) in frames {
        let mut buf = vec![0u8; min];
        RoutedHeader::new_unchecked(&mut buf[..]).fill(kind, &label(&[1, 2]));
        assert_eq!(
            RoutedHeader::new_checked(&buf[..]).map(|h| h.kind()),
            Ok(kind)
        );
        for len in 0..min {
            assert_eq!(
                RoutedHeader::new_checked(&buf[..len]),
                Err(DropReason::FrameTruncated),
                "{kind:?} at {len} bytes"
            );
        }
    }
    let buf = pong(PONG_LEN, &[1], 0);
    for len in 0..PONG_LEN {
        assert_eq!(
            PongFrame::new_checked(&buf[..len]),
            Err(DropReason::FrameTruncated)
        );
    }
}

#[test]
fn impossible_lengths_and_positions_are_bad_labels() {
    let mut buf = pong(PONG_LEN, &[1, 2, 3], 0);
    for (pos_len, ok) in [
        (0x00, true),
        (0x0e, true),
        (0xee, true),
        (0x33, true),
        (0x0f, false),
        (0xff, false),
        (0x43, false),
        (0x10, false),
    ] {
        buf[1] = pos_len;
        let checked = RoutedHeader::new_checked(&buf[..]);
        if ok {
            assert!(checked.is_ok(), "{pos_len:#04x}");
        } else {
            assert_eq!(checked, Err(DropReason::BadLabel), "{pos_len:#04x}");
        }
    }
}

#[test]
fn views_refuse_other_kinds() {
    let buf = pong(PONG_LEN, &[1], 0);
    assert_eq!(
        PingFrame::new_checked(&buf[..]),
        Err(DropReason::UnknownFrame)
    );
    assert_eq!(
        RoutedFrame::new_checked(&buf[..]),
        Err(DropReason::UnknownFrame)
    );
    let mut hello = buf.clone();
    hello[0] = FrameKind::Hello as u8;
    assert_eq!(
        RoutedHeader::new_checked(&hello[..]),
        Err(DropReason::UnknownFrame),
        "a one-link frame has no routed header"
    );
    hello[0] = 0x3f;
    assert_eq!(
        RoutedHeader::new_checked(&hello[..]),
        Err(DropReason::UnknownFrame)
    );
}

#[test]
#[should_panic(expected = "past the label")]
fn a_position_past_the_label_is_a_caller_bug() {
    let mut buf = pong(PONG_LEN, &[1, 2], 0);
    RoutedHeader::new_unchecked(&mut buf[..]).set_pos(3);
}
