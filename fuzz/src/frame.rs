//! Label-routed frames as DESIGN §1 describes them, written out independently of the
//! dataplane's views and switch: the byte layout of the routed header, the smallest frame of
//! each kind, the checks a received frame must pass, the forwarding rule and the ROUTE_ERROR a
//! node builds from a frame that cannot go on. The frame and switch targets, and the inbound
//! target's frame path, compare the code under test against these.

use rovy_dataplane::DropReason;

/// Kind bytes of the four frames that travel along a label.
pub const ROUTED: u8 = 0x10;
pub const PING: u8 = 0x11;
pub const PONG: u8 = 0x12;
pub const ROUTE_ERROR: u8 = 0x13;
/// Kind bytes of the one-link routing messages.
pub const ONE_LINK: [u8; 5] = [0x20, 0x21, 0x22, 0x23, 0x24];

/// kind (1) | pos<<4 | len (1) | label (14).
pub const HEADER_LEN: usize = 16;
/// Label bytes in a header.
pub const MAX_LABEL: usize = 14;
/// Where the label starts.
pub const LABEL_AT: usize = 2;
/// The smallest WireGuard message a ROUTED frame carries: a keepalive (header 16, tag 16).
const KEEPALIVE: usize = 32;
/// header | code (1) | failed position (1) | quote of the failed header (16).
pub const ROUTE_ERROR_LEN: usize = HEADER_LEN + 2 + HEADER_LEN;
/// The code of "no live link at the failed position".
pub const NO_LINK: u8 = 1;

/// The smallest frame of a label-routed `kind`; `None` for any other byte.
pub fn min_len(kind: u8) -> Option<usize> {
    match kind {
        ROUTED => Some(HEADER_LEN + KEEPALIVE),
        PING => Some(HEADER_LEN + 8),
        PONG => Some(HEADER_LEN + 8 + 32 + 64),
        ROUTE_ERROR => Some(ROUTE_ERROR_LEN),
        _ => None,
    }
}

/// A frame that passed [`check`]: its kind, position and label length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub kind: u8,
    pub pos: usize,
    pub len: usize,
}

/// What a node must make of received bytes as a label-routed frame: a routed kind, the kind's
/// whole fixed layout present, `len <= 14`, `pos <= len`, refused in that order.
pub fn check(buf: &[u8]) -> Result<Header, DropReason> {
    let &kind = buf.first().ok_or(DropReason::FrameTruncated)?;
    let min = min_len(kind).ok_or(DropReason::UnknownFrame)?;
    if buf.len() < min {
        return Err(DropReason::FrameTruncated);
    }
    let (pos, len) = (usize::from(buf[1] >> 4), usize::from(buf[1] & 0x0f));
    if len > MAX_LABEL || pos > len {
        return Err(DropReason::BadLabel);
    }
    Ok(Header { kind, pos, len })
}

/// Where a frame goes after the forwarding rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Switched {
    Local,
    Forward(u8),
    /// Bounce a ROUTE_ERROR; the failed position is the frame's `pos` now.
    RouteError,
    Drop(DropReason),
}

/// DESIGN §1 "Forwarding", applied to `frame` received on `ingress` with `live` telling which
/// slots have a link: `label[pos] := ingress`, `pos += 1`; `pos == len` is local; the next slot
/// 0 or dead is a ROUTE_ERROR (dropped if the frame is one itself); a U-turn is dropped except
/// for a PING; anything else goes on. Rewrites the header in place as the rule says; a frame
/// refused by [`check`], or with no label byte left, is not rewritten.
pub fn switch(frame: &mut [u8], ingress: u8, live: impl Fn(u8) -> bool) -> Switched {
    let header = match check(frame) {
        Ok(header) => header,
        Err(reason) => return Switched::Drop(reason),
    };
    if header.pos == header.len {
        return Switched::Drop(DropReason::BadLabel);
    }
    frame[LABEL_AT + header.pos] = ingress;
    let pos = header.pos + 1;
    frame[1] = ((pos as u8) << 4) | header.len as u8;
    if pos == header.len {
        return Switched::Local;
    }
    let next = frame[LABEL_AT + pos];
    if next == 0 || !live(next) {
        if header.kind == ROUTE_ERROR {
            return Switched::Drop(DropReason::DeadSlot);
        }
        return Switched::RouteError;
    }
    if next == ingress && header.kind != PING {
        return Switched::Drop(DropReason::UTurn);
    }
    Switched::Forward(next)
}

/// The ROUTE_ERROR a node sends back for `failed`, a frame [`switch`] left with
/// [`Switched::RouteError`]: along the written slots reversed, position 0, code NO_LINK, the
/// failed position, and the failed frame's header as the quote.
pub fn route_error(failed: &[u8]) -> [u8; ROUTE_ERROR_LEN] {
    let pos = usize::from(failed[1] >> 4);
    let mut error = [0u8; ROUTE_ERROR_LEN];
    error[0] = ROUTE_ERROR;
    error[1] = pos as u8;
    for (i, &slot) in failed[LABEL_AT..LABEL_AT + pos].iter().rev().enumerate() {
        error[LABEL_AT + i] = slot;
    }
    error[HEADER_LEN] = NO_LINK;
    error[HEADER_LEN + 1] = pos as u8;
    error[HEADER_LEN + 2..].copy_from_slice(&failed[..HEADER_LEN]);
    error
}
