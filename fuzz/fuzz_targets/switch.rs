//! The label switch on arbitrary frames, ingress slots and live-slot sets: `SlotSet` holds
//! exactly the slots put in and not taken out (never 0); `switch` decides what the harness's
//! model of DESIGN §1's forwarding rule decides (`label[pos] := ingress`, `pos += 1`, then
//! Local, RouteError, U-turn drop or Forward) and leaves the header rewritten byte for byte as
//! the model does; a forward goes to a live slot, never back unless the frame is a PING. At
//! the destination the way back is the written label reversed, starting with the ingress slot.
//! A ROUTE_ERROR built in place, after a failed switch or from any bytes, is exactly the
//! model's: label the reverse of the written slots, position 0, the failed position and the
//! failed header quoted; or the model's refusal.
#![no_main]

use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use rovy_dataplane::DropReason;
use rovy_dataplane::switch::{SlotSet, Switched, route_error_in_place, switch, way_back};
use rovy_dataplane::wire::frame::{RouteErrorCode, RouteErrorFrame, RoutedHeader};
use rovy_fuzz::frame::{self, HEADER_LEN, LABEL_AT, ROUTE_ERROR_LEN};

#[derive(Debug, Arbitrary)]
struct Input {
    ingress: u8,
    live: Vec<u8>,
    dead: Vec<u8>,
    /// A routed kind (by index) and its `pos<<4 | len` byte, written over the frame's first two
    /// bytes, the frame then grown to the kind's layout; or the bytes as they are.
    shape: Option<(u8, u8)>,
    /// Bytes after the frame in its buffer, where a ROUTE_ERROR built in place may grow.
    room: u8,
    frame: Vec<u8>,
}

fuzz_target!(|input: Input| {
    let mut set = SlotSet::new();
    let mut reference = [false; 256];
    for &slot in input.live.iter().take(64) {
        set.insert(slot);
        reference[usize::from(slot)] = slot != 0;
    }
    for &slot in input.dead.iter().take(16) {
        set.remove(slot);
        reference[usize::from(slot)] = false;
    }
    for slot in 0..=u8::MAX {
        assert_eq!(
            set.contains(slot),
            reference[usize::from(slot)],
            "slot {slot}"
        );
    }

    let mut buf = input.frame.clone();
    if let Some((kind, pos_len)) = input.shape {
        let kinds = [frame::ROUTED, frame::PING, frame::PONG, frame::ROUTE_ERROR];
        let kind = kinds[usize::from(kind) % kinds.len()];
        buf.resize(buf.len().max(frame::min_len(kind).unwrap_or(0)), 0);
        buf[0] = kind;
        buf[1] = pos_len;
    }
    check_route_error(&buf, input.room);

    let ingress = input.ingress;
    let mut model = buf.clone();
    let expected = frame::switch(&mut model, ingress, |slot| reference[usize::from(slot)]);
    let result = switch(&mut buf, ingress, &set);
    assert_eq!(buf, model, "header rewritten unlike the rule");
    let pos = usize::from(buf.get(1).map_or(0, |b| b >> 4));
    match (result, expected) {
        (Ok(Switched::Local), frame::Switched::Local) => {
            let header = RoutedHeader::new_checked(&buf[..]).expect("switched frame checks");
            let back = way_back(&header);
            let mut written = buf[LABEL_AT..LABEL_AT + pos].to_vec();
            written.reverse();
            assert_eq!(back.as_slice(), &written[..]);
            assert_eq!(
                back.first(),
                Some(ingress),
                "the way back starts where it came in"
            );
        }
        (Ok(Switched::Forward { slot }), frame::Switched::Forward(next)) => {
            assert_eq!(slot, next);
            assert!(
                reference[usize::from(slot)],
                "forwarded on dead slot {slot}"
            );
            assert!(slot != ingress || buf[0] == frame::PING, "a U-turn went on");
        }
        (Ok(Switched::RouteError { code, failed_pos }), frame::Switched::RouteError) => {
            assert_eq!(code, RouteErrorCode::NoLink);
            assert_eq!(failed_pos, pos);
            let next = buf[LABEL_AT + pos];
            assert!(next == 0 || !reference[usize::from(next)]);
            check_route_error(&buf, input.room);
        }
        (Err(reason), frame::Switched::Drop(expected)) => assert_eq!(reason, expected),
        (result, expected) => panic!("switch gave {result:?}, the rule {expected:?}"),
    }
});

/// Builds a ROUTE_ERROR in place from `failed` with `room` bytes after it in its buffer, and
/// checks it is the model's (made from the buffer, as the switch sees it), or refused as the
/// model says.
fn check_route_error(failed: &[u8], room: u8) {
    let mut buf = failed.to_vec();
    buf.resize(failed.len() + usize::from(room), 0xa5);
    let before = buf.clone();
    let result = route_error_in_place(&mut buf, RouteErrorCode::NoLink);
    let expected = match frame::check(&before) {
        Err(reason) => Err(reason),
        Ok(header) if header.pos == 0 => Err(DropReason::BadLabel),
        Ok(_) if buf.len() < ROUTE_ERROR_LEN => Err(DropReason::FrameTruncated),
        Ok(_) => Ok(ROUTE_ERROR_LEN),
    };
    assert_eq!(result, expected, "route error from {before:02x?}");
    if result.is_err() {
        assert_eq!(buf, before, "a refused ROUTE_ERROR wrote to the buffer");
        return;
    }
    let model = frame::route_error(&before);
    assert_eq!(&buf[..ROUTE_ERROR_LEN], &model[..]);
    let error = RouteErrorFrame::new_checked(&buf[..]).expect("a ROUTE_ERROR checks");
    let header = error.header();
    let pos = usize::from(before[1] >> 4);
    let mut written = before[LABEL_AT..LABEL_AT + pos].to_vec();
    written.reverse();
    assert_eq!(header.pos(), 0);
    assert_eq!(
        header.label(),
        &written[..],
        "label is the written slots reversed"
    );
    assert_eq!(error.failed_pos(), pos);
    assert_eq!(&error.quote()[..], &before[..HEADER_LEN]);
    assert_eq!(
        &buf[ROUTE_ERROR_LEN..],
        &before[ROUTE_ERROR_LEN..],
        "wrote past the ROUTE_ERROR"
    );
}
