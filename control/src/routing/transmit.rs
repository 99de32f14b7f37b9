//! What goes out on each link: HELLOs, queued requests, triggered updates from the change log
//! and full-table dumps, packed into as few UPDATEs as the caller's buffer allows.
//!
//! Triggered updates are one change log shared by all links, each with a cursor into it: a
//! change is logged once and read by every link, and an entry superseded by a later change to
//! the same destination is skipped, so a flapping route costs one entry per link per send.

use std::collections::VecDeque;
use std::time::Duration;

use super::label::{Label, Slot};
use super::message::{
    Hello, HelloEcho, METRIC_INFINITY, RouteRequest, SeqnoRequest, UpdateEntry, UpdateWriter,
};
use super::origin::{Proof, VerifyBudget};
use super::table::{Destination, Table};
use super::{
    FULL_UPDATE_INTERVAL, HELLO_INTERVAL, LINK_DEAD_AFTER, MIN_TRANSMIT_BUF, NodeKey, Router,
};

/// Something a link owes its neighbour besides HELLOs and updates.
#[derive(Debug, Clone, Copy)]
pub(super) enum LinkRequest {
    Seqno(SeqnoRequest),
    Route(RouteRequest),
    /// One UPDATE entry with the current state of this key, answering a request.
    Announce(NodeKey),
}

/// One live link's routing state.
#[derive(Debug)]
pub(super) struct Link {
    pub neighbour: NodeKey,
    pub generation: u64,
    pub heard: Duration,
    pub sent: Duration,
    pub hello_seq: u16,
    pub hello_due: bool,
    /// The peer's last HELLO time and when it arrived, to echo.
    pub peer_hello: Option<(u32, Duration)>,
    pub rtt: Option<Duration>,
    pub full_update_at: Duration,
    /// Position in a full dump in progress: 0 = this node's own entry, i + 1 = slab index i.
    pub dump: Option<usize>,
    /// Whether the dump in progress carries every destination's proof: the first one to a
    /// new neighbour, and one it asked for (`ROUTE_REQ` all). Periodic dumps do not; a
    /// neighbour that misses a proof asks for it.
    pub dump_proofs: bool,
    /// Proofs this neighbour may still make this node verify.
    pub verify_budget: VerifyBudget,
    /// Change-log number of the next entry this link has not been sent.
    pub change_cursor: u64,
    pub requests: VecDeque<LinkRequest>,
    pub armed: Option<Duration>,
}

impl Link {
    pub fn new(neighbour: NodeKey, generation: u64, change_cursor: u64, now: Duration) -> Self {
        Self {
            neighbour,
            generation,
            heard: now,
            sent: now,
            hello_seq: 0,
            hello_due: true,
            peer_hello: None,
            rtt: None,
            full_update_at: now + FULL_UPDATE_INTERVAL,
            dump: Some(0),
            dump_proofs: true,
            verify_budget: VerifyBudget::new(now),
            change_cursor,
            requests: VecDeque::from([LinkRequest::Route(RouteRequest::All)]),
            armed: None,
        }
    }

    /// The next moment this link needs attention: death, an idle HELLO or a full update.
    pub fn deadline(&self) -> Duration {
        let dead = self.heard + LINK_DEAD_AFTER;
        // A HELLO already queued, or a table about to go out, needs no idle deadline.
        let idle = !self.hello_due && self.dump.is_none();
        let hello = idle.then_some(self.sent + HELLO_INTERVAL);
        hello.map_or(dead, |h| h.min(dead)).min(self.full_update_at)
    }
}

/// A change to what this node announces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Change {
    /// This node's own seqno.
    Own,
    Destination {
        idx: usize,
        generation: u32,
    },
}

/// Numbered changes not yet read by every link.
#[derive(Debug)]
pub(super) struct ChangeLog {
    entries: VecDeque<(u64, Change)>,
    next: u64,
    /// Number of the latest [`Change::Own`].
    pub own_last: u64,
}

impl ChangeLog {
    pub fn new() -> Self {
        Self {
            entries: VecDeque::new(),
            next: 1,
            own_last: 0,
        }
    }

    /// Logs `change` and returns its number.
    pub fn push(&mut self, change: Change) -> u64 {
        let number = self.next;
        self.next += 1;
        self.entries.push_back((number, change));
        if change == Change::Own {
            self.own_last = number;
        }
        number
    }

    /// The number the next change will get: a cursor that has read everything.
    pub fn end(&self) -> u64 {
        self.next
    }

    /// Forgets entries every cursor has passed.
    pub fn trim(&mut self, min_cursor: u64) {
        while self.entries.front().is_some_and(|&(n, _)| n < min_cursor) {
            self.entries.pop_front();
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Keeps only each destination's latest entry (what a link would actually send).
    pub fn compact(&mut self, table: &Table) {
        let own_last = self.own_last;
        self.entries
            .retain(|&(n, change)| is_latest(change, n, own_last, table));
    }
}

/// Whether change `number` is the latest for what it names (later ones supersede it).
fn is_latest(change: Change, number: u64, own_last: u64, table: &Table) -> bool {
    match change {
        Change::Own => number == own_last,
        Change::Destination { idx, generation } => table
            .get(idx, generation)
            .is_some_and(|d| d.last_change == number),
    }
}

/// This node's own entry, always with its proof (68 bytes more in each full dump: a
/// neighbour's direct route never waits for a request).
fn own_entry(key: &NodeKey, seqno: u32, proof: Proof) -> UpdateEntry {
    UpdateEntry {
        key: *key,
        seqno,
        metric: 0,
        label: Label::EMPTY,
        proof: Some(proof),
    }
}

/// The announcement of a destination (with the origin's proof if `with_proof`), or its
/// retraction when nothing is announced (a retraction needs no proof).
fn destination_entry(dest: &Destination, with_proof: bool) -> UpdateEntry {
    match dest.announced {
        Some(a) => UpdateEntry {
            key: dest.key,
            seqno: a.seqno,
            metric: a.metric,
            label: a.label,
            proof: dest.proof.filter(|_| with_proof),
        },
        None => UpdateEntry {
            key: dest.key,
            seqno: dest.feasibility.map_or(0, |fd| fd.seqno),
            metric: METRIC_INFINITY,
            label: Label::EMPTY,
            proof: None,
        },
    }
}

fn millis(t: Duration) -> u32 {
    t.as_millis() as u32
}

impl Router {
    /// Writes the next message for some link into `buf` (whose length is the largest message
    /// the link takes, at least [`MIN_TRANSMIT_BUF`]) and returns the link and the length.
    /// Call until `None` after every input; links are served in turn.
    pub fn poll_transmit(&mut self, now: Duration, buf: &mut [u8]) -> Option<(Slot, usize)> {
        if buf.len() < MIN_TRANSMIT_BUF {
            return None;
        }
        for step in 0..=u8::MAX {
            let Some(slot) = Slot::new(self.transmit_from.wrapping_add(step)) else {
                continue;
            };
            if let Some(len) = self.produce(slot, now, buf) {
                self.transmit_from = slot.get().wrapping_add(1);
                if let Some(link) = self.links[usize::from(slot.get())].as_mut() {
                    link.sent = now;
                }
                self.arm_link(slot);
                return Some((slot, len));
            }
        }
        let min_cursor = self.links.iter().flatten().map(|l| l.change_cursor).min();
        self.changes.trim(min_cursor.unwrap_or(self.changes.end()));
        None
    }

    /// The next message owed on `slot`, if any.
    fn produce(&mut self, slot: Slot, now: Duration, buf: &mut [u8]) -> Option<usize> {
        let link = self.links[usize::from(slot.get())].as_mut()?;
        if link.hello_due {
            link.hello_due = false;
            link.hello_seq = link.hello_seq.wrapping_add(1);
            let hello = Hello {
                seq: link.hello_seq,
                time_ms: millis(now),
                echo: link.peer_hello.map(|(time_ms, at)| HelloEcho {
                    time_ms,
                    delay_ms: millis(now.saturating_sub(at)),
                }),
            };
            return hello.encode(buf).ok();
        }
        while let Some(request) = link.requests.pop_front() {
            let entry = match request {
                LinkRequest::Seqno(r) => return r.encode(buf).ok(),
                LinkRequest::Route(r) => return r.encode(buf).ok(),
                LinkRequest::Announce(key) if key == self.key => {
                    own_entry(&self.key, self.seqno, self.own_proof)
                }
                LinkRequest::Announce(key) => {
                    match self.table.find(&key).and_then(|idx| self.table.at(idx)) {
                        Some(dest) => destination_entry(dest, true),
                        None => continue,
                    }
                }
            };
            let mut writer = UpdateWriter::new(buf).ok()?;
            writer.push(&entry);
            return Some(writer.finish());
        }
        let mut writer = UpdateWriter::new(buf).ok()?;
        let own_last = self.changes.own_last;
        let read_to = link.change_cursor;
        let mut cursor = self.changes.end();
        for &(number, change) in self.changes.entries.range(
            self.changes
                .entries
                .partition_point(|&(n, _)| n < link.change_cursor)..,
        ) {
            if !is_latest(change, number, own_last, &self.table) {
                continue;
            }
            let entry = match change {
                Change::Own => own_entry(&self.key, self.seqno, self.own_proof),
                Change::Destination { idx, .. } => match self.table.at(idx) {
                    Some(dest) => destination_entry(dest, dest.proof_change >= read_to),
                    None => continue,
                },
            };
            if !writer.push(&entry) {
                cursor = number;
                break;
            }
        }
        link.change_cursor = cursor;
        if cursor == self.changes.end() {
            while let Some(pos) = link.dump {
                let entry = match pos.checked_sub(1) {
                    None => Some(own_entry(&self.key, self.seqno, self.own_proof)),
                    Some(idx) if idx >= self.table.slab_len() => {
                        link.dump = None;
                        link.dump_proofs = false;
                        break;
                    }
                    Some(idx) => self
                        .table
                        .at(idx)
                        .filter(|d| d.announced.is_some())
                        .map(|d| destination_entry(d, link.dump_proofs)),
                };
                if entry.is_some_and(|e| !writer.push(&e)) {
                    break;
                }
                link.dump = Some(pos + 1);
            }
        }
        (writer.count() > 0).then(|| writer.finish())
    }
}
