//! The one-link routing messages: HELLO, UPDATE, SEQNO_REQ, ROUTE_REQ and ACK.
//!
//! Each is one rovy frame: the [`FrameKind`] byte, then fixed little-endian fields. There is no
//! version byte (the frame kind is the version) and no padding. The layout, in bytes:
//!
//! ```text
//! HELLO      kind | seq u16 | time_ms u32 | echo_time_ms u32 | echo_delay_ms u32   = 15
//!            (echo_delay_ms = u32::MAX: nothing heard from the peer yet to echo; then
//!            echo_time_ms is 0)
//! UPDATE     kind | count u8 | count × entry                                        ≤ 2 + 255 × 121
//!    entry   key [32] | seqno u32 | metric u16 (0xFFFF = retract) | label_len u8 | label
//!            [| proof_seqno u32 | signature [64]]    (when label_len has bit 7 set)
//! SEQNO_REQ  kind | key [32] | seqno u32 | hops u8                                  = 38
//! ROUTE_REQ  kind                  (the full table)                                 = 1
//!            kind | key [32]       (one destination)                                = 33
//! ACK        kind | nonce u16                                                       = 3
//! ```
//!
//! The offsets below are the only place these numbers live. Decoding borrows the input and
//! never allocates or panics: an UPDATE is validated whole when it is decoded, then its
//! entries are read by an iterator over the same slice.

use rovy_dataplane::wire::frame::FrameKind;

use super::NodeKey;
use super::label::{Label, MAX_LABEL_LEN};
use super::origin::{PROOF_LEN, Proof, SIGNATURE_LEN};

const KIND: usize = 0;

const HELLO_SEQ: usize = 1;
const HELLO_TIME: usize = 3;
const HELLO_ECHO_TIME: usize = 7;
const HELLO_ECHO_DELAY: usize = 11;
/// Size of a HELLO.
pub const HELLO_LEN: usize = 15;
/// `echo_delay_ms` of a HELLO that echoes nothing.
const HELLO_NO_ECHO: u32 = u32::MAX;

const UPDATE_COUNT: usize = 1;
/// Size of an UPDATE before its entries.
pub const UPDATE_HEADER_LEN: usize = 2;
const ENTRY_KEY: usize = 0;
const ENTRY_SEQNO: usize = 32;
const ENTRY_METRIC: usize = 36;
const ENTRY_LABEL_LEN: usize = 38;
const ENTRY_LABEL: usize = 39;
/// Bit of the label length byte saying an origin [`Proof`] follows the label.
const ENTRY_HAS_PROOF: u8 = 0x80;
/// Size of an UPDATE entry with an empty label and no proof; each label byte adds one.
pub const ENTRY_MIN_LEN: usize = ENTRY_LABEL;
/// Size of the largest UPDATE entry.
pub const ENTRY_MAX_LEN: usize = ENTRY_LABEL + MAX_LABEL_LEN + PROOF_LEN;
/// Most entries one UPDATE carries (its count is one byte).
pub const MAX_UPDATE_ENTRIES: usize = u8::MAX as usize;

const SEQNO_REQ_KEY: usize = 1;
const SEQNO_REQ_SEQNO: usize = 33;
const SEQNO_REQ_HOPS: usize = 37;
/// Size of a SEQNO_REQ.
pub const SEQNO_REQ_LEN: usize = 38;

const ROUTE_REQ_KEY: usize = 1;
/// Size of a ROUTE_REQ for the full table.
pub const ROUTE_REQ_ALL_LEN: usize = 1;
/// Size of a ROUTE_REQ for one destination.
pub const ROUTE_REQ_KEY_LEN: usize = 33;

const ACK_NONCE: usize = 1;
/// Size of an ACK.
pub const ACK_LEN: usize = 3;

/// The metric of a retraction.
pub const METRIC_INFINITY: u16 = 0xFFFF;

/// Why a routing message was refused. Each is a counted drop for the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum MessageError {
    /// No bytes at all.
    #[error("empty routing message")]
    Empty,
    /// The first byte is not a one-link routing frame kind.
    #[error("not a routing message kind: {0:#04x}")]
    NotRouting(u8),
    /// Shorter than its fields (or its entries) say.
    #[error("routing message truncated")]
    Truncated,
    /// Bytes after the last field.
    #[error("trailing bytes after routing message")]
    TrailingBytes,
    /// An UPDATE entry whose label is longer than a label can be.
    #[error("label longer than {MAX_LABEL_LEN} bytes")]
    LabelTooLong,
    /// A HELLO that echoes nothing (delay `u32::MAX`) yet carries an echo time: no encoder
    /// writes one, and reading it as "no echo" would drop the time unseen.
    #[error("HELLO with an echo time but no echo")]
    EchoTimeWithoutEcho,
}

/// The caller's buffer cannot hold the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("buffer too small for routing message")]
pub struct BufferTooSmall;

/// The echo part of a HELLO: the last peer time heard and how long ago it was heard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HelloEcho {
    /// The peer's `time_ms` from its last HELLO.
    pub time_ms: u32,
    /// Milliseconds between receiving that HELLO and sending this one.
    pub delay_ms: u32,
}

/// Link liveness and RTT measurement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hello {
    /// Counts up per HELLO on the link.
    pub seq: u16,
    /// The sender's clock in milliseconds (wrapping).
    pub time_ms: u32,
    /// What the sender last heard from the receiver, if anything.
    pub echo: Option<HelloEcho>,
}

/// One destination in an UPDATE.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UpdateEntry {
    /// The destination (and origin) of the route.
    pub key: NodeKey,
    /// The origin's sequence number the route is for.
    pub seqno: u32,
    /// Distance from the sender; [`METRIC_INFINITY`] retracts the route.
    pub metric: u16,
    /// The sender's label to the destination.
    pub label: Label,
    /// The origin's signature for a seqno at least `seqno`, where the receiver may lack it.
    pub proof: Option<Proof>,
}

/// An UPDATE whose entries have all been checked; iterate them with [`Update::entries`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Update<'a> {
    count: usize,
    entries: &'a [u8],
}

/// Asks the origin of `key` (forwarded hop by hop towards it) for a seqno at least `seqno`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SeqnoRequest {
    /// The destination whose origin is asked.
    pub key: NodeKey,
    /// The seqno the requester needs.
    pub seqno: u32,
    /// How many more hops the request may be forwarded.
    pub hops: u8,
}

/// Asks a neighbour for its route to one destination or its whole table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteRequest {
    /// Every route.
    All,
    /// The route to this destination.
    Key(NodeKey),
}

/// Acknowledges a message that asked for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ack {
    /// The nonce of the acknowledged message.
    pub nonce: u16,
}

/// A decoded routing message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Message<'a> {
    /// See [`Hello`].
    Hello(Hello),
    /// See [`Update`].
    Update(Update<'a>),
    /// See [`SeqnoRequest`].
    SeqnoRequest(SeqnoRequest),
    /// See [`RouteRequest`].
    RouteRequest(RouteRequest),
    /// See [`Ack`].
    Ack(Ack),
}

impl<'a> Message<'a> {
    /// Decodes one routing message (kind byte included) from `bytes`.
    pub fn decode(bytes: &'a [u8]) -> Result<Self, MessageError> {
        let &kind = bytes.first().ok_or(MessageError::Empty)?;
        match FrameKind::from_byte(kind) {
            Some(FrameKind::Hello) => Hello::decode(bytes).map(Self::Hello),
            Some(FrameKind::Update) => Update::decode(bytes).map(Self::Update),
            Some(FrameKind::SeqnoRequest) => SeqnoRequest::decode(bytes).map(Self::SeqnoRequest),
            Some(FrameKind::RouteRequest) => RouteRequest::decode(bytes).map(Self::RouteRequest),
            Some(FrameKind::Ack) => Ack::decode(bytes).map(Self::Ack),
            _ => Err(MessageError::NotRouting(kind)),
        }
    }
}

/// Most bytes of padding a message may arrive with: a link pads its plaintext with zeros to a
/// multiple of 16, so what follows a message's last field is fewer than 16 zero bytes.
pub const MAX_PADDING: usize = 15;

/// `bytes` must be `len` long, give or take the link's zero padding after it.
fn exact(bytes: &[u8], len: usize) -> Result<(), MessageError> {
    let rest = bytes.get(len..).ok_or(MessageError::Truncated)?;
    padding_only(rest)
}

/// `rest`, what follows a message's last field, must be the link's padding.
fn padding_only(rest: &[u8]) -> Result<(), MessageError> {
    if rest.len() <= MAX_PADDING && rest.iter().all(|&b| b == 0) {
        Ok(())
    } else {
        Err(MessageError::TrailingBytes)
    }
}

/// The first `len` bytes of `buf` with the kind byte written, for a fixed-size message.
fn start(buf: &mut [u8], kind: FrameKind, len: usize) -> Result<&mut [u8], BufferTooSmall> {
    let out = buf.get_mut(..len).ok_or(BufferTooSmall)?;
    out[KIND] = kind as u8;
    Ok(out)
}

fn u16_at(bytes: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([bytes[at], bytes[at + 1]])
}

fn u32_at(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
}

fn key_at(bytes: &[u8], at: usize) -> NodeKey {
    let mut key = [0; 32];
    key.copy_from_slice(&bytes[at..at + 32]);
    key
}

impl Hello {
    fn decode(bytes: &[u8]) -> Result<Self, MessageError> {
        exact(bytes, HELLO_LEN)?;
        let (echo_time_ms, delay_ms) = (
            u32_at(bytes, HELLO_ECHO_TIME),
            u32_at(bytes, HELLO_ECHO_DELAY),
        );
        if delay_ms == HELLO_NO_ECHO && echo_time_ms != 0 {
            return Err(MessageError::EchoTimeWithoutEcho);
        }
        Ok(Self {
            seq: u16_at(bytes, HELLO_SEQ),
            time_ms: u32_at(bytes, HELLO_TIME),
            echo: (delay_ms != HELLO_NO_ECHO).then_some(HelloEcho {
                time_ms: echo_time_ms,
                delay_ms,
            }),
        })
    }

    /// Writes the HELLO into `buf`; returns its length ([`HELLO_LEN`]). A delay of
    /// `u32::MAX` ms is sent as one less, since that value means "no echo".
    pub fn encode(&self, buf: &mut [u8]) -> Result<usize, BufferTooSmall> {
        let out = start(buf, FrameKind::Hello, HELLO_LEN)?;
        let (echo_time, echo_delay) = match self.echo {
            Some(echo) => (echo.time_ms, echo.delay_ms.min(HELLO_NO_ECHO - 1)),
            None => (0, HELLO_NO_ECHO),
        };
        out[HELLO_SEQ..HELLO_TIME].copy_from_slice(&self.seq.to_le_bytes());
        out[HELLO_TIME..HELLO_ECHO_TIME].copy_from_slice(&self.time_ms.to_le_bytes());
        out[HELLO_ECHO_TIME..HELLO_ECHO_DELAY].copy_from_slice(&echo_time.to_le_bytes());
        out[HELLO_ECHO_DELAY..HELLO_LEN].copy_from_slice(&echo_delay.to_le_bytes());
        Ok(HELLO_LEN)
    }
}

impl<'a> Update<'a> {
    fn decode(bytes: &'a [u8]) -> Result<Self, MessageError> {
        let entries = bytes
            .get(UPDATE_HEADER_LEN..)
            .ok_or(MessageError::Truncated)?;
        let count = usize::from(bytes[UPDATE_COUNT]);
        let mut rest = entries;
        for _ in 0..count {
            rest = &rest[entry_len(rest)?..];
        }
        padding_only(rest)?;
        let entries = &entries[..entries.len() - rest.len()];
        Ok(Self { count, entries })
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.count
    }

    /// Whether the UPDATE carries no entries.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The entries, in order, read from the message bytes.
    pub fn entries(&self) -> UpdateEntries<'a> {
        UpdateEntries {
            left: self.count,
            rest: self.entries,
        }
    }
}

/// Length of the entry at the start of `rest`, checked against `rest`.
fn entry_len(rest: &[u8]) -> Result<usize, MessageError> {
    let &flags = rest.get(ENTRY_LABEL_LEN).ok_or(MessageError::Truncated)?;
    let label_len = usize::from(flags & !ENTRY_HAS_PROOF);
    if label_len > MAX_LABEL_LEN {
        return Err(MessageError::LabelTooLong);
    }
    let proof_len = if flags & ENTRY_HAS_PROOF != 0 {
        PROOF_LEN
    } else {
        0
    };
    let len = ENTRY_LABEL + label_len + proof_len;
    if rest.len() < len {
        return Err(MessageError::Truncated);
    }
    Ok(len)
}

/// Iterator over the entries of a decoded [`Update`].
#[derive(Debug, Clone)]
pub struct UpdateEntries<'a> {
    left: usize,
    rest: &'a [u8],
}

impl Iterator for UpdateEntries<'_> {
    type Item = UpdateEntry;

    fn next(&mut self) -> Option<UpdateEntry> {
        self.left = self.left.checked_sub(1)?;
        // Every entry was checked by `Update::decode`; a failure here only ends the iteration.
        let len = entry_len(self.rest).ok()?;
        let (entry, rest) = self.rest.split_at(len);
        self.rest = rest;
        let label_end = ENTRY_LABEL + usize::from(entry[ENTRY_LABEL_LEN] & !ENTRY_HAS_PROOF);
        let proof = (entry[ENTRY_LABEL_LEN] & ENTRY_HAS_PROOF != 0).then(|| {
            let mut signature = [0u8; SIGNATURE_LEN];
            signature.copy_from_slice(&entry[label_end + 4..]);
            Proof {
                seqno: u32_at(entry, label_end),
                signature,
            }
        });
        Some(UpdateEntry {
            key: key_at(entry, ENTRY_KEY),
            seqno: u32_at(entry, ENTRY_SEQNO),
            metric: u16_at(entry, ENTRY_METRIC),
            label: Label::new(&entry[ENTRY_LABEL..label_end])?,
            proof,
        })
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left, Some(self.left))
    }
}

impl UpdateEntry {
    /// Bytes this entry takes in an UPDATE.
    pub fn encoded_len(&self) -> usize {
        ENTRY_LABEL + self.label.len() + self.proof.map_or(0, |_| PROOF_LEN)
    }
}

/// Writes an UPDATE into a caller buffer, as many entries as fit.
#[derive(Debug)]
pub struct UpdateWriter<'b> {
    buf: &'b mut [u8],
    len: usize,
    count: usize,
}

impl<'b> UpdateWriter<'b> {
    /// Starts an UPDATE at the front of `buf` (whose length is the largest message allowed).
    pub fn new(buf: &'b mut [u8]) -> Result<Self, BufferTooSmall> {
        start(buf, FrameKind::Update, UPDATE_HEADER_LEN)?;
        Ok(Self {
            buf,
            len: UPDATE_HEADER_LEN,
            count: 0,
        })
    }

    /// Appends `entry` if it fits (in the buffer and in the count); returns whether it did.
    pub fn push(&mut self, entry: &UpdateEntry) -> bool {
        let end = self.len + entry.encoded_len();
        if self.count == MAX_UPDATE_ENTRIES || end > self.buf.len() {
            return false;
        }
        let out = &mut self.buf[self.len..end];
        out[ENTRY_KEY..ENTRY_SEQNO].copy_from_slice(&entry.key);
        out[ENTRY_SEQNO..ENTRY_METRIC].copy_from_slice(&entry.seqno.to_le_bytes());
        out[ENTRY_METRIC..ENTRY_LABEL_LEN].copy_from_slice(&entry.metric.to_le_bytes());
        let label_end = ENTRY_LABEL + entry.label.len();
        out[ENTRY_LABEL_LEN] = entry.label.len() as u8;
        out[ENTRY_LABEL..label_end].copy_from_slice(entry.label.as_slice());
        if let Some(proof) = &entry.proof {
            out[ENTRY_LABEL_LEN] |= ENTRY_HAS_PROOF;
            out[label_end..label_end + 4].copy_from_slice(&proof.seqno.to_le_bytes());
            out[label_end + 4..].copy_from_slice(&proof.signature);
        }
        self.len = end;
        self.count += 1;
        true
    }

    /// Entries written so far.
    pub fn count(&self) -> usize {
        self.count
    }

    /// Writes the count and returns the message length.
    pub fn finish(self) -> usize {
        self.buf[UPDATE_COUNT] = self.count as u8;
        self.len
    }
}

impl SeqnoRequest {
    fn decode(bytes: &[u8]) -> Result<Self, MessageError> {
        exact(bytes, SEQNO_REQ_LEN)?;
        Ok(Self {
            key: key_at(bytes, SEQNO_REQ_KEY),
            seqno: u32_at(bytes, SEQNO_REQ_SEQNO),
            hops: bytes[SEQNO_REQ_HOPS],
        })
    }

    /// Writes the request into `buf`; returns its length ([`SEQNO_REQ_LEN`]).
    pub fn encode(&self, buf: &mut [u8]) -> Result<usize, BufferTooSmall> {
        let out = start(buf, FrameKind::SeqnoRequest, SEQNO_REQ_LEN)?;
        out[SEQNO_REQ_KEY..SEQNO_REQ_SEQNO].copy_from_slice(&self.key);
        out[SEQNO_REQ_SEQNO..SEQNO_REQ_HOPS].copy_from_slice(&self.seqno.to_le_bytes());
        out[SEQNO_REQ_HOPS] = self.hops;
        Ok(SEQNO_REQ_LEN)
    }
}

impl RouteRequest {
    fn decode(bytes: &[u8]) -> Result<Self, MessageError> {
        // The two forms differ by a whole key, more than any padding: a length up to the
        // short form's padded length is the short form.
        if bytes.len() <= ROUTE_REQ_ALL_LEN + MAX_PADDING {
            exact(bytes, ROUTE_REQ_ALL_LEN).map(|()| Self::All)
        } else {
            exact(bytes, ROUTE_REQ_KEY_LEN).map(|()| Self::Key(key_at(bytes, ROUTE_REQ_KEY)))
        }
    }

    /// Writes the request into `buf`; returns its length.
    pub fn encode(&self, buf: &mut [u8]) -> Result<usize, BufferTooSmall> {
        match self {
            Self::All => {
                start(buf, FrameKind::RouteRequest, ROUTE_REQ_ALL_LEN).map(|_| ROUTE_REQ_ALL_LEN)
            }
            Self::Key(key) => {
                let out = start(buf, FrameKind::RouteRequest, ROUTE_REQ_KEY_LEN)?;
                out[ROUTE_REQ_KEY..].copy_from_slice(key);
                Ok(ROUTE_REQ_KEY_LEN)
            }
        }
    }
}

impl Ack {
    fn decode(bytes: &[u8]) -> Result<Self, MessageError> {
        exact(bytes, ACK_LEN)?;
        Ok(Self {
            nonce: u16_at(bytes, ACK_NONCE),
        })
    }

    /// Writes the ACK into `buf`; returns its length ([`ACK_LEN`]).
    pub fn encode(&self, buf: &mut [u8]) -> Result<usize, BufferTooSmall> {
        let out = start(buf, FrameKind::Ack, ACK_LEN)?;
        out[ACK_NONCE..].copy_from_slice(&self.nonce.to_le_bytes());
        Ok(ACK_LEN)
    }
}
