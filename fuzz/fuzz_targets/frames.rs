//! Rovy frame views: `FrameKind::classify`, `RoutedHeader` and the four label-routed frame views
//! take any bytes without panicking; `new_checked` succeeds exactly when DESIGN §1's rules say
//! (a routed kind, the kind's whole layout present, `len <= 14`, `pos <= len`) and refuses for
//! the same reason otherwise; a checked view's accessors return exactly the bytes at the
//! layout's offsets (written out here), within the buffer; and filling a header writes kind,
//! position 0 and the label padded with zeros, nothing else.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rovy_dataplane::DropReason;
use rovy_dataplane::wire::frame::{
    FrameKind, Label, PingFrame, PongFrame, RouteErrorFrame, RoutedFrame, RoutedHeader,
};
use rovy_fuzz::frame::{self, HEADER_LEN, LABEL_AT, MAX_LABEL};

fn le64(buf: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(buf[at..at + 8].try_into().unwrap())
}

/// What a view of `kind` must say of `buf`: the reference check, then the kind.
fn expected_view(buf: &[u8], kind: u8) -> Result<(), DropReason> {
    match frame::check(buf) {
        Ok(header) if header.kind == kind => Ok(()),
        Ok(_) => Err(DropReason::UnknownFrame),
        Err(reason) => Err(reason),
    }
}

fuzz_target!(|buf: &[u8]| {
    // Kind classification of a link plaintext.
    for rovy in [false, true] {
        let classified = FrameKind::classify(buf, rovy);
        let expected = match buf.first() {
            None => Err(DropReason::FrameTruncated),
            Some(_) if !rovy => Err(DropReason::FrameFromWireguardPeer),
            Some(&b) if frame::min_len(b).is_some() || frame::ONE_LINK.contains(&b) => Ok(b),
            Some(_) => Err(DropReason::UnknownFrame),
        };
        assert_eq!(classified.map(|k| k as u8), expected);
        if let Ok(kind) = classified {
            assert_eq!(kind.is_routed(), frame::min_len(kind as u8).is_some());
            assert_eq!(FrameKind::from_byte(kind as u8), Some(kind));
        }
    }

    let reference = frame::check(buf);
    let header = RoutedHeader::new_checked(buf);
    assert_eq!(header.err(), reference.err(), "routed header of {buf:02x?}");
    if let (Ok(h), Ok(r)) = (header, reference) {
        assert_eq!(h.kind() as u8, r.kind);
        assert_eq!(h.pos(), r.pos);
        assert_eq!(h.label_len(), r.len);
        assert_eq!(h.label(), &buf[LABEL_AT..LABEL_AT + r.len]);
        assert_eq!(&h.as_bytes()[..], &buf[..HEADER_LEN]);
        assert!(h.pos() <= h.label().len());
    }

    let routed = RoutedFrame::new_checked(buf);
    assert_eq!(routed.err(), expected_view(buf, frame::ROUTED).err());
    if let Ok(f) = routed {
        assert_eq!(f.payload(), &buf[HEADER_LEN..]);
        assert_eq!(f.header().as_bytes(), &buf[..HEADER_LEN]);
    }

    let ping = PingFrame::new_checked(buf);
    assert_eq!(ping.err(), expected_view(buf, frame::PING).err());
    if let Ok(f) = ping {
        assert_eq!(f.id(), le64(buf, HEADER_LEN));
        assert_eq!(f.header().as_bytes(), &buf[..HEADER_LEN]);
    }

    let pong = PongFrame::new_checked(buf);
    assert_eq!(pong.err(), expected_view(buf, frame::PONG).err());
    if let Ok(f) = pong {
        assert_eq!(f.id(), le64(buf, HEADER_LEN));
        assert_eq!(&f.public_key()[..], &buf[HEADER_LEN + 8..HEADER_LEN + 40]);
        assert_eq!(&f.signature()[..], &buf[HEADER_LEN + 40..HEADER_LEN + 104]);
    }

    let error = RouteErrorFrame::new_checked(buf);
    assert_eq!(error.err(), expected_view(buf, frame::ROUTE_ERROR).err());
    if let Ok(f) = error {
        assert_eq!(f.code(), buf[HEADER_LEN]);
        assert_eq!(f.failed_pos(), usize::from(buf[HEADER_LEN + 1]));
        assert_eq!(&f.quote()[..], &buf[HEADER_LEN + 2..HEADER_LEN + 18]);
    }

    // Filling a header from the first bytes as a label: kind, pos 0, the label, zeros.
    if buf.len() >= HEADER_LEN {
        let slots = &buf[2..2 + usize::from(buf[0]) % (MAX_LABEL + 1)];
        let label = Label::new(slots).expect("at most 14 slots");
        assert_eq!(label.as_slice(), slots);
        assert_eq!(Label::reversed(slots).unwrap().backwards(), label);
        let mut out = buf.to_vec();
        RoutedHeader::new_unchecked(&mut out[..]).fill(FrameKind::Ping, &label);
        assert_eq!(out[0], frame::PING);
        assert_eq!(out[1], slots.len() as u8, "position 0, length of the label");
        assert_eq!(&out[LABEL_AT..LABEL_AT + slots.len()], slots);
        assert!(
            out[LABEL_AT + slots.len()..HEADER_LEN]
                .iter()
                .all(|&b| b == 0)
        );
        assert_eq!(
            &out[HEADER_LEN..],
            &buf[HEADER_LEN..],
            "wrote past the header"
        );
        if let Some(longer) = label.prepend(buf[1]) {
            assert_eq!(longer.as_slice()[0], buf[1]);
            assert_eq!(&longer.as_slice()[1..], slots);
        } else {
            assert_eq!(slots.len(), MAX_LABEL);
        }
    }
});
