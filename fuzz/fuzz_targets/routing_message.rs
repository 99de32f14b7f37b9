//! Routing message decoding (HELLO, UPDATE, SEQNO_REQ, ROUTE_REQ, ACK): any bytes, no panic;
//! a decoded message re-encodes to exactly the bytes it came from, less the link's zero
//! padding (fewer than 16 zero bytes), which is all decoding may accept after the last field;
//! and the encoding decodes again to the same message with any such padding after it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rovy_control::routing::message::{
    ENTRY_MAX_LEN, MAX_PADDING, Message, UPDATE_HEADER_LEN, UpdateEntry, UpdateWriter,
};

/// Largest UPDATE: its header and 255 entries of the longest label, each with a proof.
const MAX_MESSAGE: usize = UPDATE_HEADER_LEN + 255 * ENTRY_MAX_LEN;

/// Writes `message` with the code under test's encoders; returns its length.
fn encode(message: &Message<'_>, out: &mut [u8]) -> usize {
    match message {
        Message::Hello(hello) => hello.encode(out).expect("room for a HELLO"),
        Message::SeqnoRequest(request) => request.encode(out).expect("room for a SEQNO_REQ"),
        Message::RouteRequest(request) => request.encode(out).expect("room for a ROUTE_REQ"),
        Message::Ack(ack) => ack.encode(out).expect("room for an ACK"),
        Message::Update(update) => {
            let entries: Vec<UpdateEntry> = update.entries().collect();
            assert_eq!(entries.len(), update.len(), "entries read back");
            assert_eq!(update.is_empty(), entries.is_empty());
            let mut writer = UpdateWriter::new(out).expect("room for an UPDATE");
            for entry in &entries {
                assert!(entry.label.len() <= 14);
                assert!(writer.push(entry), "an entry that was decoded fits again");
            }
            assert_eq!(writer.count(), entries.len());
            writer.finish()
        }
    }
}

fuzz_target!(|bytes: &[u8]| {
    let Ok(message) = Message::decode(bytes) else {
        return;
    };
    let mut out = vec![0u8; MAX_MESSAGE];
    let len = encode(&message, &mut out);
    assert!(
        len <= bytes.len(),
        "decoded from fewer bytes than it encodes to"
    );
    assert_eq!(&out[..len], &bytes[..len], "re-encoded differently");
    let padding = &bytes[len..];
    assert!(
        padding.len() <= MAX_PADDING && padding.iter().all(|&b| b == 0),
        "accepted {} bytes after the message: {padding:02x?}",
        padding.len()
    );
    for pad in 0..=MAX_PADDING {
        let mut padded = out[..len].to_vec();
        padded.resize(len + pad, 0);
        assert_eq!(
            Message::decode(&padded).as_ref(),
            Ok(&message),
            "with {pad} bytes of padding"
        );
    }
    let mut trailing = out[..len].to_vec();
    trailing.resize(len + bytes.len() % (MAX_PADDING + 1), 0);
    trailing.push(1);
    assert!(
        Message::decode(&trailing).is_err(),
        "a non-zero byte after the padding taken"
    );
});
