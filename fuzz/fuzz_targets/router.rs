//! The routing core (`Router`) driven on a virtual clock by arbitrary sequences of links (up
//! to four) coming up and going down, routing messages from the neighbours (well-formed ones
//! built from the fuzzer's fields, and raw bytes), return paths and time passing. Nothing
//! panics; after `handle_timeout(now)` the next deadline is never in the past; everything the
//! router sends goes to a live link and decodes; the events it reports add up to the routes it
//! answers with, each starting on a live link whose slot is the label's first byte; the
//! destinations never pass the cap; and as long as every neighbour announces hop counts
//! honestly (metric = label length, as a hop-count node does), every installed route's label
//! length is its metric and every entry the router announces is so too.
#![no_main]

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use rovy_control::routing::message::{
    Ack, Hello, HelloEcho, Message, RouteRequest, SeqnoRequest, UpdateEntry, UpdateWriter,
};
use rovy_control::routing::{
    Label, MAX_ANNOUNCED_LABEL_LEN, MAX_DESTINATIONS, METRIC_INFINITY, MIN_TRANSMIT_BUF, NodeKey,
    Proof, RouteEvent, Router, SimulatedOrigins, Slot,
};

/// This node's key; neighbours and destinations are `key(1..=8)`.
const OWN: NodeKey = [0xee; 32];
const SEQNO_BASE: u32 = 1_000;
/// Live links at most: a few, so messages land on each often.
const MAX_LINKS: usize = 4;

fn key(i: u8) -> NodeKey {
    [i % 8 + 1; 32]
}

#[derive(Debug, Arbitrary)]
struct Input {
    unix_secs: u32,
    /// Size of the transmit buffer, from `MIN_TRANSMIT_BUF` up.
    transmit_room: u16,
    ops: Vec<Op>,
}

#[derive(Debug, Arbitrary)]
enum Op {
    LinkUp {
        neighbour: u8,
    },
    LinkDown {
        link: u8,
    },
    Heard {
        link: u8,
    },
    Message {
        link: u8,
        message: Msg,
    },
    ReturnPath {
        dest: u8,
        back: Vec<u8>,
    },
    /// Let `ms` pass, or go to the next deadline; then run the timers.
    Advance {
        ms: u16,
        to_deadline: bool,
    },
}

#[derive(Debug, Arbitrary)]
enum Msg {
    Hello {
        seq: u16,
        time_ms: u32,
        echo: Option<(u32, u32)>,
    },
    Update(Vec<Entry>),
    SeqnoRequest {
        dest: u8,
        seqno: i8,
        hops: u8,
    },
    RouteRequest(Option<u8>),
    Ack(u16),
    /// Any bytes, as a neighbour may send them.
    Raw(Vec<u8>),
}

/// An UPDATE entry a hop-count neighbour would send: its own with the empty label and metric
/// 0, another destination with a label of 1..=13 slots and that many hops, or a retraction.
#[derive(Debug, Arbitrary)]
struct Entry {
    dest: u8,
    seqno: i8,
    retract: bool,
    label: Vec<u8>,
    proof: ProofChoice,
}

/// What an entry carries as its origin proof (the simulated origins' kind).
#[derive(Debug, Arbitrary)]
enum ProofChoice {
    /// The origin's proof for the entry's seqno.
    Genuine,
    /// None: the router accepts the entry only if it holds a proof that covers it.
    Absent,
    /// The origin's proof for another seqno (one that may not cover the entry).
    OtherSeqno(i8),
    /// Bytes nobody signed.
    Forged([u8; 4]),
}

struct Harness {
    router: Router,
    now: Duration,
    buf: Vec<u8>,
    /// Live links: slot and neighbour.
    links: BTreeMap<Slot, NodeKey>,
    /// Routes as the events reported them.
    reported: HashMap<NodeKey, rovy_control::routing::InstalledRoute>,
    /// No neighbour has announced a metric other than its label's length.
    honest: bool,
}

fuzz_target!(|input: Input| {
    let room = usize::from(input.transmit_room).clamp(MIN_TRANSMIT_BUF, 1500);
    let start = Duration::from_secs(10);
    let mut h = Harness {
        router: Router::new(
            OWN,
            u64::from(input.unix_secs),
            start,
            Box::new(SimulatedOrigins::new(OWN)),
        ),
        now: start,
        buf: vec![0; room],
        links: BTreeMap::new(),
        reported: HashMap::new(),
        honest: true,
    };
    for op in input.ops.iter().take(256) {
        h.apply(op);
        h.drain();
    }
});

impl Harness {
    /// Link `link` of the live ones in slot order for 0..8, so the fuzzer hits live links;
    /// above, the slot of that number, live or not.
    fn slot(&self, link: u8) -> Slot {
        match self.links.keys().nth(usize::from(link)) {
            Some(&slot) if link < 8 => slot,
            _ => Slot::new(link.max(1)).expect("not 0"),
        }
    }

    fn apply(&mut self, op: &Op) {
        let now = self.now;
        match op {
            Op::LinkUp { neighbour } if self.links.len() < MAX_LINKS => {
                if let Ok(slot) = self.router.link_up(key(*neighbour), now) {
                    assert!(
                        self.links.insert(slot, key(*neighbour)).is_none(),
                        "slot reused"
                    );
                }
            }
            Op::LinkUp { .. } => {}
            Op::LinkDown { link } => {
                let slot = self.slot(*link);
                let result = self.router.link_down(slot, now);
                assert_eq!(result.is_ok(), self.links.remove(&slot).is_some());
            }
            Op::Heard { link } => self.router.link_heard(self.slot(*link), now),
            Op::Message { link, message } => {
                let slot = self.slot(*link);
                let neighbour = self.links.get(&slot).copied();
                let bytes = self.encode(message, neighbour.unwrap_or(OWN));
                if let Ok(Message::Update(update)) = Message::decode(&bytes) {
                    self.honest &= update.entries().all(|e| {
                        e.metric >= METRIC_INFINITY - 1 || usize::from(e.metric) == e.label.len()
                    });
                }
                let result = self.router.handle_message(slot, &bytes, now);
                if neighbour.is_none() {
                    assert!(result.is_err(), "a message on a dead link taken");
                } else if Message::decode(&bytes).is_ok() {
                    assert_eq!(result, Ok(()));
                }
            }
            Op::ReturnPath { dest, back } => {
                let back = &back[..back.len().min(14)];
                self.router
                    .learn_return_path(&key(*dest), Label::new(back).unwrap(), now);
            }
            Op::Advance { ms, to_deadline } => {
                let next = self.router.poll_timeout();
                self.now = match (to_deadline, next) {
                    (true, Some(at)) => at.max(now),
                    _ => now + Duration::from_millis(u64::from(*ms)),
                };
                self.router.handle_timeout(self.now);
            }
        }
    }

    /// The bytes of `message` as the neighbour `from` sends them.
    fn encode(&mut self, message: &Msg, from: NodeKey) -> Vec<u8> {
        let mut out = vec![0u8; 2 + 255 * 53];
        let len = match message {
            Msg::Hello { seq, time_ms, echo } => Hello {
                seq: *seq,
                time_ms: *time_ms,
                echo: echo.map(|(time_ms, delay_ms)| HelloEcho { time_ms, delay_ms }),
            }
            .encode(&mut out),
            Msg::Update(entries) => {
                let mut writer = UpdateWriter::new(&mut out).unwrap();
                for entry in entries.iter().take(32) {
                    writer.push(&honest_entry(entry, from));
                }
                Ok(writer.finish())
            }
            Msg::SeqnoRequest { dest, seqno, hops } => SeqnoRequest {
                key: if *dest == 0 { OWN } else { key(*dest) },
                seqno: seqno_from(*seqno),
                hops: *hops,
            }
            .encode(&mut out),
            Msg::RouteRequest(dest) => match dest {
                None => RouteRequest::All,
                Some(dest) => RouteRequest::Key(key(*dest)),
            }
            .encode(&mut out),
            Msg::Ack(nonce) => Ack { nonce: *nonce }.encode(&mut out),
            Msg::Raw(bytes) => return bytes.clone(),
        };
        out.truncate(len.expect("room for the message"));
        out
    }

    /// Sends and reports everything owed, checking it.
    fn drain(&mut self) {
        let now = self.now;
        if let Some(at) = self.router.poll_timeout() {
            assert!(at >= now, "deadline {at:?} in the past at {now:?}");
        }
        let mut sent = 0;
        while let Some((slot, len)) = self.router.poll_transmit(now, &mut self.buf) {
            sent += 1;
            assert!(sent < 100_000, "poll_transmit never ends");
            assert!(self.links.contains_key(&slot), "sent on dead slot {slot}");
            assert!(len <= self.buf.len());
            let message = Message::decode(&self.buf[..len]).expect("sends what decodes");
            if let Message::Update(update) = message {
                for e in update.entries() {
                    assert!(e.label.len() <= MAX_ANNOUNCED_LABEL_LEN, "announced {e:?}");
                    let consistent =
                        e.metric == METRIC_INFINITY || usize::from(e.metric) == e.label.len();
                    assert!(!self.honest || consistent, "announced {e:?}");
                }
            }
        }
        while let Some(event) = self.router.poll_event() {
            match event {
                RouteEvent::Installed { key, route } => {
                    assert!(
                        self.reported.insert(key, route).is_none(),
                        "installed twice"
                    );
                }
                RouteEvent::Changed { key, route } => {
                    assert!(
                        self.reported.insert(key, route).is_some(),
                        "changed unknown"
                    );
                }
                RouteEvent::Removed { key } => {
                    assert!(self.reported.remove(&key).is_some(), "removed unknown");
                }
                RouteEvent::LinkDead { slot } => {
                    assert!(
                        self.links.remove(&slot).is_some(),
                        "dead link {slot} not live"
                    );
                }
            }
        }
        if let Some(at) = self.router.poll_timeout() {
            assert!(at >= now, "deadline {at:?} in the past at {now:?}");
        }
        let live: Vec<(Slot, NodeKey)> = self.router.links().map(|(s, k)| (s, *k)).collect();
        assert_eq!(live.len(), self.links.len());
        assert!(live.iter().all(|(s, k)| self.links.get(s) == Some(k)));
        assert!(self.router.destinations() <= MAX_DESTINATIONS);
        assert!(self.router.route(&OWN).is_none(), "a route to itself");
        for i in 0..8 {
            let route = self.router.route(&key(i));
            assert_eq!(
                route,
                self.reported.get(&key(i)).copied(),
                "events vs routes"
            );
            if let Some(route) = route {
                assert!(
                    self.links.contains_key(&route.next_hop),
                    "route via a dead link"
                );
                assert_eq!(route.label.first(), Some(route.next_hop.get()));
                assert!(!self.honest || route.label.len() == usize::from(route.metric));
            }
        }
        for info in self.router.routes(now) {
            assert!(!self.honest || info.route.label.len() == usize::from(info.route.metric));
            for alternate in info.alternates() {
                assert!(self.links.contains_key(&alternate.route.next_hop));
            }
        }
    }
}

fn seqno_from(delta: i8) -> u32 {
    SEQNO_BASE.wrapping_add_signed(i32::from(delta))
}

fn honest_entry(entry: &Entry, from: NodeKey) -> UpdateEntry {
    let dest = key(entry.dest);
    let label = if dest == from {
        Label::EMPTY
    } else {
        let mut slots: Vec<u8> = entry.label.iter().copied().take(13).collect();
        if slots.is_empty() {
            slots.push(1);
        }
        Label::new(&slots).unwrap()
    };
    let seqno = seqno_from(entry.seqno);
    let proof = match entry.proof {
        ProofChoice::Genuine => Some(SimulatedOrigins::proof(&dest, seqno)),
        ProofChoice::Absent => None,
        ProofChoice::OtherSeqno(delta) => Some(SimulatedOrigins::proof(&dest, seqno_from(delta))),
        ProofChoice::Forged(bytes) => {
            let mut signature = [0u8; 64];
            signature[..4].copy_from_slice(&bytes);
            Some(Proof { seqno, signature })
        }
    };
    UpdateEntry {
        key: dest,
        seqno,
        metric: if entry.retract {
            METRIC_INFINITY
        } else {
            label.len() as u16
        },
        label,
        proof,
    }
}
