//! Routing messages on their own, then one router against hand-written neighbours.

mod network;
mod origin;
mod sim;

use super::message::*;
use super::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const T0: Duration = Duration::from_secs(100);
const UNIX: u64 = 1_700_000_000;

fn key(byte: u8) -> NodeKey {
    [byte; 32]
}

fn label(bytes: &[u8]) -> Label {
    Label::new(bytes).unwrap()
}

/// An entry as a neighbour sends it, with the origin's (simulated) proof for its seqno.
fn entry(k: u8, seqno: u32, metric: u16, l: &[u8]) -> UpdateEntry {
    UpdateEntry {
        key: key(k),
        seqno,
        metric,
        label: label(l),
        proof: (metric != METRIC_INFINITY).then(|| SimulatedOrigins::proof(&key(k), seqno)),
    }
}

fn encode_update(entries: &[UpdateEntry]) -> Vec<u8> {
    let mut buf = vec![0; 4096];
    let mut writer = UpdateWriter::new(&mut buf).unwrap();
    for e in entries {
        assert!(writer.push(e));
    }
    let len = writer.finish();
    buf.truncate(len);
    buf
}

fn decode_update(bytes: &[u8]) -> Vec<UpdateEntry> {
    match Message::decode(bytes).unwrap() {
        Message::Update(update) => update.entries().collect(),
        other => panic!("not an update: {other:?}"),
    }
}

#[test]
fn fixed_messages_round_trip_and_refuse_every_truncation_and_trailing_byte() {
    let hellos = [
        Hello {
            seq: 7,
            time_ms: 0xdead_beef,
            echo: None,
        },
        Hello {
            seq: u16::MAX,
            time_ms: 1,
            echo: Some(HelloEcho {
                time_ms: 0x0102_0304,
                delay_ms: 250,
            }),
        },
    ];
    let seqno_req = SeqnoRequest {
        key: key(9),
        seqno: 0x8000_0001,
        hops: 16,
    };
    let mut buf = [0u8; 64];
    let mut cases: Vec<(Vec<u8>, Message<'static>)> = Vec::new();
    for hello in hellos {
        let len = hello.encode(&mut buf).unwrap();
        assert_eq!(len, HELLO_LEN);
        cases.push((buf[..len].to_vec(), Message::Hello(hello)));
    }
    let len = seqno_req.encode(&mut buf).unwrap();
    assert_eq!(len, SEQNO_REQ_LEN);
    cases.push((buf[..len].to_vec(), Message::SeqnoRequest(seqno_req)));
    for request in [RouteRequest::All, RouteRequest::Key(key(3))] {
        let len = request.encode(&mut buf).unwrap();
        cases.push((buf[..len].to_vec(), Message::RouteRequest(request)));
    }
    let len = Ack { nonce: 0xabcd }.encode(&mut buf).unwrap();
    assert_eq!(len, ACK_LEN);
    cases.push((buf[..len].to_vec(), Message::Ack(Ack { nonce: 0xabcd })));

    for (bytes, expected) in &cases {
        assert_eq!(Message::decode(bytes).unwrap(), *expected);
        // The link pads with zeros to a multiple of 16: up to 15 of them are padding.
        for pad in 1..=MAX_PADDING {
            let mut padded = bytes.clone();
            padded.resize(bytes.len() + pad, 0);
            assert_eq!(
                Message::decode(&padded).unwrap(),
                *expected,
                "{pad} of padding"
            );
        }
        let mut garbage = bytes.clone();
        garbage.push(1);
        assert_eq!(
            Message::decode(&garbage).unwrap_err(),
            MessageError::TrailingBytes,
            "{expected:?} with a non-zero byte after it"
        );
        if !matches!(expected, Message::RouteRequest(RouteRequest::All)) {
            let mut too_long = bytes.clone();
            too_long.resize(bytes.len() + MAX_PADDING + 1, 0);
            assert_eq!(
                Message::decode(&too_long).unwrap_err(),
                MessageError::TrailingBytes,
                "{expected:?} with more zeros than any padding"
            );
        }
        for cut in 1..bytes.len() {
            let decoded = Message::decode(&bytes[..cut]);
            if let Message::RouteRequest(RouteRequest::Key(_)) = expected {
                if cut <= ROUTE_REQ_ALL_LEN + MAX_PADDING {
                    // Up to the short form's padded length it reads as the short form: the
                    // kind byte alone is one, and key bytes after it are garbage unless zero.
                    let short = decoded == Ok(Message::RouteRequest(RouteRequest::All));
                    let zeros = bytes[1..cut].iter().all(|&b| b == 0);
                    assert_eq!(short, zeros, "cut at {cut}");
                    assert!(short || decoded == Err(MessageError::TrailingBytes));
                    continue;
                }
            }
            assert_eq!(
                decoded,
                Err(MessageError::Truncated),
                "{expected:?} cut at {cut}"
            );
        }
    }
    assert_eq!(Message::decode(&[]).unwrap_err(), MessageError::Empty);
    for kind in [0x00, 0x10, 0x13, 0x25, 0x45] {
        assert_eq!(
            Message::decode(&[kind; 40]).unwrap_err(),
            MessageError::NotRouting(kind)
        );
    }
}

#[test]
fn a_hello_without_echo_carries_no_echo_time() {
    let mut bytes = [0u8; HELLO_LEN];
    let hello = Hello {
        seq: 3,
        time_ms: 1000,
        echo: None,
    };
    assert_eq!(hello.encode(&mut bytes), Ok(HELLO_LEN));
    assert_eq!(Message::decode(&bytes), Ok(Message::Hello(hello)));
    bytes[7] = 1; // the echo time's first byte
    assert_eq!(
        Message::decode(&bytes),
        Err(MessageError::EchoTimeWithoutEcho),
        "an echo time the decoded HELLO could not show"
    );
}

#[test]
fn fixed_messages_need_room_in_the_buffer() {
    let mut small = [0u8; HELLO_LEN - 1];
    let hello = Hello {
        seq: 1,
        time_ms: 2,
        echo: None,
    };
    assert_eq!(hello.encode(&mut small), Err(BufferTooSmall));
    let mut small = [0u8; SEQNO_REQ_LEN - 1];
    let req = SeqnoRequest {
        key: key(1),
        seqno: 1,
        hops: 1,
    };
    assert_eq!(req.encode(&mut small), Err(BufferTooSmall));
    assert!(UpdateWriter::new(&mut [0u8; 1]).is_err());
}

#[test]
fn update_round_trips_and_refuses_every_truncation() {
    let entries = [
        entry(1, 5, 0, &[]),
        entry(2, u32::MAX, 3, &[4, 9, 200]),
        entry(3, 0, METRIC_INFINITY, &[]),
        entry(4, 77, 13, &[1; MAX_LABEL_LEN]),
    ];
    let bytes = encode_update(&entries);
    // Three carry a proof (68 bytes each), the retraction does not.
    let expected_len = UPDATE_HEADER_LEN + 4 * ENTRY_MIN_LEN + 3 + MAX_LABEL_LEN + 3 * 68;
    assert_eq!(bytes.len(), expected_len);
    assert_eq!(
        bytes[UPDATE_HEADER_LEN + 38],
        0x80,
        "the proof bit beside length 0"
    );
    let unproven = UpdateEntry {
        proof: None,
        ..entries[0]
    };
    assert_eq!(
        encode_update(&[unproven]).len(),
        UPDATE_HEADER_LEN + ENTRY_MIN_LEN
    );
    assert_eq!(decode_update(&encode_update(&[unproven])), [unproven]);
    assert_eq!(decode_update(&bytes), entries);
    for cut in 1..bytes.len() {
        assert_eq!(
            Message::decode(&bytes[..cut]).unwrap_err(),
            MessageError::Truncated,
            "cut {cut}"
        );
    }
    let mut padded = bytes.clone();
    padded.resize(bytes.len() + MAX_PADDING, 0);
    assert_eq!(
        Message::decode(&padded).unwrap(),
        Message::decode(&bytes).unwrap(),
        "the link's padding is not an entry"
    );
    let mut trailing = bytes.clone();
    trailing.push(7);
    assert_eq!(
        Message::decode(&trailing).unwrap_err(),
        MessageError::TrailingBytes
    );
    // A count larger than the entries present is a truncation, a smaller one leaves garbage.
    let mut more = bytes.clone();
    more[1] = 5;
    assert_eq!(Message::decode(&more).unwrap_err(), MessageError::Truncated);
    let mut fewer = bytes;
    fewer[1] = 3;
    assert_eq!(
        Message::decode(&fewer).unwrap_err(),
        MessageError::TrailingBytes
    );
}

#[test]
fn update_label_longer_than_a_label_is_refused() {
    let mut bytes = encode_update(&[entry(1, 1, 1, &[7; MAX_LABEL_LEN])]);
    bytes[UPDATE_HEADER_LEN + ENTRY_MIN_LEN - 1] = MAX_LABEL_LEN as u8 + 1;
    bytes.push(7);
    assert_eq!(
        Message::decode(&bytes).unwrap_err(),
        MessageError::LabelTooLong
    );
    bytes[UPDATE_HEADER_LEN + ENTRY_MIN_LEN - 1] = 0xff;
    assert_eq!(
        Message::decode(&bytes).unwrap_err(),
        MessageError::LabelTooLong
    );
}

#[test]
fn update_writer_takes_what_fits_and_at_most_255_entries() {
    let e = entry(1, 1, 1, &[1, 2]);
    let room = UPDATE_HEADER_LEN + 3 * e.encoded_len() + e.encoded_len() - 1;
    let mut buf = vec![0; room];
    let mut writer = UpdateWriter::new(&mut buf).unwrap();
    let pushed = (0..10).take_while(|_| writer.push(&e)).count();
    assert_eq!(pushed, 3);
    let len = writer.finish();
    assert_eq!(decode_update(&buf[..len]).len(), 3);

    let mut big = vec![0; 300 * ENTRY_MAX_LEN];
    let mut writer = UpdateWriter::new(&mut big).unwrap();
    let pushed = (0..300).take_while(|_| writer.push(&e)).count();
    assert_eq!(pushed, MAX_UPDATE_ENTRIES);
    let len = writer.finish();
    assert_eq!(decode_update(&big[..len]).len(), MAX_UPDATE_ENTRIES);
}

#[test]
fn random_bytes_never_panic() {
    let mut rng = StdRng::seed_from_u64(7);
    let mut buf = [0u8; 200];
    for _ in 0..20_000 {
        let len = rng.gen_range(0..buf.len());
        rng.fill(&mut buf[..len]);
        buf[0] = rng.gen_range(0x20..=0x24);
        if let Ok(Message::Update(update)) = Message::decode(&buf[..len]) {
            assert_eq!(update.entries().count(), update.len());
        }
    }
}

#[test]
fn labels_prepend_reverse_and_stop_at_fourteen() {
    let s = |b| Slot::new(b).unwrap();
    let l = Label::EMPTY.prepend(3).unwrap().prepend(9).unwrap();
    assert_eq!(l.as_slice(), &[9, 3]);
    assert_eq!(first_hop(&l), Some(s(9)));
    assert_eq!(l.backwards().as_slice(), &[3, 9]);
    assert_eq!(l.to_string(), "9.3");
    let full = label(&[1; MAX_LABEL_LEN]);
    assert_eq!(full.prepend(1), None);
    assert_eq!(Label::new(&[1; MAX_LABEL_LEN + 1]), None);
    assert_eq!(first_hop(&Label::EMPTY), None);
    assert_eq!(
        first_hop(&label(&[0, 4])),
        None,
        "slot 0 is the node itself"
    );
    assert_eq!(Slot::new(0), None);
}

mod router;

/// Everything the router sends now, as (slot, bytes).
fn drain(r: &mut Router, now: Duration) -> Vec<(Slot, Vec<u8>)> {
    let mut buf = [0u8; 1420];
    std::iter::from_fn(|| {
        r.poll_transmit(now, &mut buf)
            .map(|(s, len)| (s, buf[..len].to_vec()))
    })
    .collect()
}

/// The UPDATE entries among `sent` on `slot`.
fn entries_on(sent: &[(Slot, Vec<u8>)], slot: Slot) -> Vec<UpdateEntry> {
    sent.iter()
        .filter(|(s, _)| *s == slot)
        .filter_map(|(_, b)| match Message::decode(b).unwrap() {
            Message::Update(u) => Some(u.entries().collect::<Vec<_>>()),
            _ => None,
        })
        .flatten()
        .collect()
}

fn send(r: &mut Router, slot: Slot, entries: &[UpdateEntry], now: Duration) {
    r.handle_message(slot, &encode_update(entries), now)
        .unwrap();
}
