//! The [`Router`]: inputs, timers and events. What it sends is in `transmit.rs`, what it shows in
//! `query.rs`.

use std::collections::VecDeque;
use std::time::Duration;

use super::deadlines::{Deadlines, Target};
use super::label::{Label, MAX_ANNOUNCED_LABEL_LEN, Slot, first_hop};
use super::message::{METRIC_INFINITY, Message, RouteRequest, SeqnoRequest, UpdateEntry};
use super::origin::{Origins, Proof};
use super::slots::{SlotAllocator, SlotError};
use super::table::{Destination, ReturnPath, Route, Table, seqno_newer};
use super::transmit::{Change, ChangeLog, Link, LinkRequest};
use super::{
    FEASIBILITY_HOLD, FULL_UPDATE_INTERVAL, HELLO_INTERVAL, HandleError, LINK_COST,
    LINK_DEAD_AFTER, MAX_DESTINATIONS, MAX_LINK_REQUESTS, NodeKey, RETRACTION_INTERVAL,
    RETRACTION_SENDS, ROUTE_EXPIRY, RouteEvent, RouterStats, SEQNO_RAISE_INTERVAL,
    SEQNO_REQUEST_HOPS, SEQNO_REQUEST_INTERVAL,
};

/// RTT samples above this are taken for clock nonsense and ignored.
const MAX_RTT_SAMPLE_MS: u32 = 60_000;

/// One node's routing state. See the module documentation for how to drive it.
#[derive(Debug)]
pub struct Router {
    pub(super) key: NodeKey,
    pub(super) seqno: u32,
    /// This node's signature over its current seqno.
    pub(super) own_proof: Proof,
    pub(super) origins: Box<dyn Origins>,
    seqno_raised: Option<Duration>,
    unix_at_start: u64,
    start: Duration,
    slots: SlotAllocator,
    /// Indexed by slot; index 0 (the node itself) stays empty.
    pub(super) links: Vec<Option<Link>>,
    next_link_generation: u64,
    pub(super) table: Table,
    pub(super) changes: ChangeLog,
    pub(super) deadlines: Deadlines,
    dead_links: VecDeque<Slot>,
    route_events: VecDeque<(usize, u32)>,
    pub(super) stats: RouterStats,
    /// Slot `poll_transmit` looks at first, so links take turns.
    pub(super) transmit_from: u8,
}

/// The earliest moment a destination needs attention.
fn destination_deadline(dest: &Destination) -> Option<Duration> {
    dest.heard()
        .map(|r| r.refreshed + ROUTE_EXPIRY)
        .chain(dest.return_path.map(|back| back.refreshed + ROUTE_EXPIRY))
        .chain(dest.retract_due)
        .chain(dest.seqno_request_due)
        .chain(dest.empty_since.map(|at| at + FEASIBILITY_HOLD))
        .min()
}

impl Router {
    /// A router for the node `key`, created at `now`, when the wall clock reads `unix_secs`
    /// (seconds since 1970), signing its seqnos and checking others' with `origins`. The
    /// initial seqno is the wall clock, so a restarted node's announcements are newer than
    /// what its neighbours remember.
    pub fn new(key: NodeKey, unix_secs: u64, now: Duration, mut origins: Box<dyn Origins>) -> Self {
        let seqno = unix_secs as u32;
        Self {
            key,
            seqno,
            own_proof: origins.sign(seqno),
            origins,
            seqno_raised: None,
            unix_at_start: unix_secs,
            start: now,
            slots: SlotAllocator::new(),
            links: (0..=u8::MAX).map(|_| None).collect(),
            next_link_generation: 0,
            table: Table::new(MAX_DESTINATIONS),
            changes: ChangeLog::new(),
            deadlines: Deadlines::default(),
            dead_links: VecDeque::new(),
            route_events: VecDeque::new(),
            stats: RouterStats::default(),
            transmit_from: 1,
        }
    }

    /// This node's key.
    pub fn key(&self) -> &NodeKey {
        &self.key
    }

    /// This node's current seqno.
    pub fn seqno(&self) -> u32 {
        self.seqno
    }

    /// Counters of refused input.
    pub fn stats(&self) -> RouterStats {
        self.stats
    }

    /// A rovy link to `neighbour` came up: gives it a slot, sends it a HELLO, the full table
    /// and a request for its table.
    pub fn link_up(&mut self, neighbour: NodeKey, now: Duration) -> Result<Slot, SlotError> {
        let slot = self.slots.allocate(now)?;
        self.next_link_generation += 1;
        let link = Link::new(
            neighbour,
            self.next_link_generation,
            self.changes.end(),
            now,
        );
        self.links[usize::from(slot.get())] = Some(link);
        self.arm_link(slot);
        Ok(slot)
    }

    /// The caller closed the link on `slot`: its routes go at once (no [`RouteEvent::LinkDead`]).
    pub fn link_down(&mut self, slot: Slot, now: Duration) -> Result<(), SlotError> {
        if self.link(slot).is_none() {
            return Err(SlotError::NotLive(slot));
        }
        self.remove_link(slot, now);
        Ok(())
    }

    /// Something authenticated arrived on `slot`: the link is alive.
    pub fn link_heard(&mut self, slot: Slot, now: Duration) {
        if let Some(link) = self.links[usize::from(slot.get())].as_mut() {
            link.heard = link.heard.max(now);
        }
    }

    /// Live links: slot and neighbour key.
    pub fn links(&self) -> impl Iterator<Item = (Slot, &NodeKey)> {
        self.links
            .iter()
            .enumerate()
            .filter_map(|(i, l)| Some((Slot::new(i as u8)?, &l.as_ref()?.neighbour)))
    }

    /// The smoothed round-trip time measured by HELLOs on `slot`.
    pub fn link_rtt(&self, slot: Slot) -> Option<Duration> {
        self.link(slot)?.rtt
    }

    fn link(&self, slot: Slot) -> Option<&Link> {
        self.links[usize::from(slot.get())].as_ref()
    }

    /// A routing message (kind byte first) arrived on `slot`. Refusals are for the caller to
    /// count; refused entries inside a valid UPDATE are counted in [`Router::stats`].
    pub fn handle_message(
        &mut self,
        slot: Slot,
        bytes: &[u8],
        now: Duration,
    ) -> Result<(), HandleError> {
        let neighbour = self
            .link(slot)
            .ok_or(HandleError::UnknownLink(slot))?
            .neighbour;
        let message = Message::decode(bytes)?;
        self.link_heard(slot, now);
        match message {
            Message::Hello(hello) => {
                let Some(link) = self.links[usize::from(slot.get())].as_mut() else {
                    return Ok(());
                };
                link.peer_hello = Some((hello.time_ms, now));
                if let Some(echo) = hello.echo {
                    let sample = (now.as_millis() as u32)
                        .wrapping_sub(echo.time_ms)
                        .wrapping_sub(echo.delay_ms);
                    if sample <= MAX_RTT_SAMPLE_MS {
                        let sample = Duration::from_millis(sample.into());
                        link.rtt = Some(link.rtt.map_or(sample, |old| (old * 7 + sample) / 8));
                    }
                }
            }
            Message::Update(update) => {
                for entry in update.entries() {
                    self.handle_entry(slot, &neighbour, &entry, now);
                }
            }
            Message::SeqnoRequest(request) => self.handle_seqno_request(slot, &request, now),
            Message::RouteRequest(RouteRequest::All) => {
                // A neighbour asking for everything (it came up, or restarted) has no proofs.
                if let Some(link) = self.links[usize::from(slot.get())].as_mut() {
                    link.dump.get_or_insert(0);
                    link.dump_proofs = true;
                }
            }
            Message::RouteRequest(RouteRequest::Key(key)) => {
                self.queue_request(slot, LinkRequest::Announce(key));
            }
            Message::Ack(_) => {}
        }
        Ok(())
    }

    fn handle_entry(
        &mut self,
        slot: Slot,
        neighbour: &NodeKey,
        entry: &UpdateEntry,
        now: Duration,
    ) {
        if entry.key == self.key {
            return;
        }
        let metric = entry.metric.saturating_add(LINK_COST);
        if entry.metric == METRIC_INFINITY || metric == METRIC_INFINITY {
            if let Some(idx) = self.table.find(&entry.key) {
                if let Some(dest) = self.table.at_mut(idx) {
                    dest.forget(slot);
                }
                self.settle(idx, now);
            }
            return;
        }
        let label = entry
            .label
            .prepend(slot.get())
            .filter(|_| entry.label.len() <= MAX_ANNOUNCED_LABEL_LEN);
        let self_announcement = entry.key == *neighbour;
        let (Some(label), true) = (label, entry.label.is_empty() == self_announcement) else {
            self.stats.entries_refused += 1;
            return;
        };
        let Some(new_proof) = self.check_origin(slot, entry, now) else {
            return;
        };
        let Some(idx) = self.table.find_or_insert(&entry.key) else {
            self.stats.destinations_refused += 1;
            return;
        };
        let proof_change = self.changes.end();
        if let Some(dest) = self.table.at_mut(idx) {
            if new_proof.is_some() {
                dest.proof = new_proof;
                dest.proof_change = proof_change;
            }
            dest.store(Route {
                slot,
                label,
                metric,
                announced_metric: entry.metric,
                seqno: entry.seqno,
                refreshed: now,
            });
        }
        self.settle(idx, now);
    }

    fn handle_seqno_request(&mut self, slot: Slot, request: &SeqnoRequest, now: Duration) {
        if request.key == self.key {
            let may_raise = self
                .seqno_raised
                .is_none_or(|at| now >= at + SEQNO_RAISE_INTERVAL);
            if !seqno_newer(request.seqno, self.seqno) {
                self.queue_request(slot, LinkRequest::Announce(self.key));
            } else if may_raise {
                self.raise_seqno(now);
            }
            return;
        }
        let Some(idx) = self.table.find(&request.key) else {
            return;
        };
        let Some(dest) = self.table.at_mut(idx) else {
            return;
        };
        if dest
            .selected_route()
            .is_some_and(|r| !seqno_newer(request.seqno, r.seqno))
        {
            self.queue_request(slot, LinkRequest::Announce(request.key));
            return;
        }
        let hops = request.hops.min(SEQNO_REQUEST_HOPS).saturating_sub(1);
        // A copy that has come a shorter way (more hops left) still goes on: the one already
        // forwarded may run out of hops before it reaches the origin.
        let recently = dest
            .forwarded_request
            .is_some_and(|(seqno, forwarded, at)| {
                !seqno_newer(request.seqno, seqno)
                    && hops <= forwarded
                    && now < at + SEQNO_REQUEST_INTERVAL
            });
        // Never back to the requester (RFC 8966 §3.8.1.2): a neighbour that starves sends
        // its request ahead of the retraction, so it may still be this node's next hop.
        let towards_origin = dest.selected.filter(|&next| next != slot).or_else(|| {
            dest.heard()
                .filter(|r| r.slot != slot)
                .min_by_key(|r| r.metric)
                .map(|r| r.slot)
        });
        let (Some(next), false, true) = (towards_origin, recently, hops > 0) else {
            return;
        };
        dest.forwarded_request = Some((request.seqno, hops, now));
        let forward = SeqnoRequest { hops, ..*request };
        self.queue_request(next, LinkRequest::Seqno(forward));
    }

    /// Raises this node's seqno to `max(last + 1, unix seconds)` and announces it.
    fn raise_seqno(&mut self, now: Duration) {
        let unix = (self.unix_at_start + now.saturating_sub(self.start).as_secs()) as u32;
        let next = self.seqno.wrapping_add(1);
        self.seqno = if seqno_newer(unix, next) { unix } else { next };
        self.own_proof = self.origins.sign(self.seqno);
        self.seqno_raised = Some(now);
        self.changes.push(Change::Own);
    }

    pub(super) fn queue_request(&mut self, slot: Slot, request: LinkRequest) {
        let Some(link) = self.links[usize::from(slot.get())].as_mut() else {
            return;
        };
        if link.requests.len() >= MAX_LINK_REQUESTS {
            self.stats.requests_dropped += 1;
        } else {
            link.requests.push_back(request);
        }
    }

    /// A routed frame from `key` arrived; `back` is its label reversed, the way back. Used
    /// while no announced route to `key` exists; expires like announced routes.
    pub fn learn_return_path(&mut self, key: &NodeKey, back: Label, now: Duration) {
        let Some(next_hop) = first_hop(&back) else {
            return;
        };
        if *key == self.key || self.link(next_hop).is_none() {
            return;
        }
        let Some(idx) = self.table.find_or_insert(key) else {
            self.stats.destinations_refused += 1;
            return;
        };
        if let Some(dest) = self.table.at_mut(idx) {
            dest.return_path = Some(ReturnPath {
                label: back,
                next_hop,
                refreshed: now,
            });
        }
        self.settle(idx, now);
    }

    /// A ROUTE_ERROR came back: the route with `label` broke somewhere along it. Every
    /// destination whose selected route has that label drops it at once and moves to its next
    /// feasible route (or starts asking for a newer seqno), without waiting for the retraction
    /// or the link timeout; the neighbour's next announcement may bring the route back.
    /// Returns how many destinations moved.
    pub fn route_failed(&mut self, label: &Label, now: Duration) -> usize {
        let Some(slot) = first_hop(label) else {
            return 0;
        };
        let failed: Vec<usize> = self
            .table
            .iter()
            .filter(|(_, dest)| dest.selected_route().is_some_and(|r| r.label == *label))
            .map(|(idx, _)| idx)
            .collect();
        for &idx in &failed {
            if let Some(dest) = self.table.at_mut(idx) {
                dest.forget(slot);
            }
            self.settle(idx, now);
        }
        failed.len()
    }

    /// After any change to a destination: select, announce or retract, start or stop asking
    /// the origin for a newer seqno (through the neighbours offering unfeasible routes), queue an event, and arm its deadline.
    fn settle(&mut self, idx: usize, now: Duration) {
        let Some(dest) = self.table.at_mut(idx) else {
            return;
        };
        let had_route = dest.selected.is_some();
        dest.reselect();
        // The last route went and no other is kept (only three are): a neighbour not kept may
        // still have one, so every neighbour is asked, once (RFC 8966 §3.8.2.1).
        let lost_last = had_route && dest.heard().next().is_none();
        let announcement = dest.announcement();
        if announcement != dest.announced {
            if announcement.is_none() {
                dest.retractions_left = RETRACTION_SENDS - 1;
                dest.retract_due = Some(now + RETRACTION_INTERVAL);
            } else {
                dest.retractions_left = 0;
                dest.retract_due = None;
            }
            dest.announced = announcement;
            let generation = dest.generation;
            dest.last_change = self.changes.push(Change::Destination { idx, generation });
        }
        let request = SeqnoRequest {
            key: dest.key,
            seqno: dest.feasibility.map_or(0, |fd| fd.seqno.wrapping_add(1)),
            hops: SEQNO_REQUEST_HOPS,
        };
        let mut seqno_request = None;
        if !dest.wants_newer_seqno() {
            dest.seqno_request_due = None;
        } else if dest.seqno_request_due.is_none() {
            dest.seqno_request_due = Some(now + SEQNO_REQUEST_INTERVAL);
            seqno_request = Some(request);
        }
        if dest.effective() != dest.reported && !dest.event_pending {
            dest.event_pending = true;
            self.route_events.push_back((idx, dest.generation));
        }
        dest.empty_since = if dest.is_empty() {
            dest.empty_since.or(Some(now))
        } else {
            None
        };
        let asked = dest.routes.map(|r| r.map(|r| r.slot));
        let target = Target::Destination {
            idx,
            generation: dest.generation,
        };
        let at = destination_deadline(dest);
        self.deadlines.arm(&mut dest.armed, at, target);
        if let Some(request) = seqno_request {
            for slot in asked.into_iter().flatten() {
                self.queue_request(slot, LinkRequest::Seqno(request));
            }
        } else if lost_last {
            let live: Vec<Slot> = self.links().map(|(slot, _)| slot).collect();
            for slot in live {
                self.queue_request(slot, LinkRequest::Seqno(request));
            }
        }
        self.compact_queues();
    }

    fn remove_link(&mut self, slot: Slot, now: Duration) {
        self.links[usize::from(slot.get())] = None;
        // Only ever called for a live link, whose slot is live.
        let _ = self.slots.free(slot, now);
        for idx in 0..self.table.slab_len() {
            let Some(dest) = self.table.at_mut(idx) else {
                continue;
            };
            let via_return = dest.return_path.is_some_and(|back| back.next_hop == slot);
            if dest.route(slot).is_none() && !via_return {
                continue;
            }
            dest.forget(slot);
            if via_return {
                dest.return_path = None;
            }
            self.settle(idx, now);
        }
    }

    pub(super) fn link_target(&self, slot: Slot) -> Target {
        Target::Link {
            slot: slot.get(),
            generation: self.link(slot).map_or(0, |l| l.generation),
        }
    }

    pub(super) fn arm_link(&mut self, slot: Slot) {
        let target = self.link_target(slot);
        if let Some(link) = self.links[usize::from(slot.get())].as_mut() {
            let at = link.deadline();
            self.deadlines.arm(&mut link.armed, Some(at), target);
        }
    }

    /// Bounds the deadline heap and the change log by what is live, whatever the input rate.
    fn compact_queues(&mut self) {
        let live = self.table.len() + 256;
        if self.deadlines.len() > 4 * live {
            let (links, table) = (&self.links, &self.table);
            self.deadlines
                .retain(|at, target| is_current(links, table, at, target));
        }
        if self.changes.len() > 2 * live {
            self.changes.compact(&self.table);
        }
    }
}

/// Whether a queued deadline is still the one its owner armed.
fn is_current(links: &[Option<Link>], table: &Table, at: Duration, target: Target) -> bool {
    let armed = match target {
        Target::Link { slot, generation } => links[usize::from(slot)]
            .as_ref()
            .filter(|l| l.generation == generation)
            .and_then(|l| l.armed),
        Target::Destination { idx, generation } => table.get(idx, generation).and_then(|d| d.armed),
    };
    armed == Some(at)
}

impl Router {
    /// The next route or link change, if any. Drain after every input.
    pub fn poll_event(&mut self) -> Option<RouteEvent> {
        if let Some(slot) = self.dead_links.pop_front() {
            return Some(RouteEvent::LinkDead { slot });
        }
        while let Some((idx, generation)) = self.route_events.pop_front() {
            let Some(dest) = self.table.get_mut(idx, generation) else {
                continue;
            };
            dest.event_pending = false;
            let (before, now) = (dest.reported, dest.effective());
            if before == now {
                continue;
            }
            dest.reported = now;
            let key = dest.key;
            return Some(match (before, now) {
                (None, Some(route)) => RouteEvent::Installed { key, route },
                (Some(_), Some(route)) => RouteEvent::Changed { key, route },
                (_, None) => RouteEvent::Removed { key },
            });
        }
        None
    }

    /// When [`Router::handle_timeout`] must next be called.
    pub fn poll_timeout(&mut self) -> Option<Duration> {
        while let Some((at, target)) = self.deadlines.peek() {
            if is_current(&self.links, &self.table, at, target) {
                return Some(at);
            }
            self.deadlines.pop();
        }
        None
    }

    /// Runs every deadline due at `now`: dead links, idle HELLOs, full updates, route expiry,
    /// retraction repeats and SEQNO_REQ repeats.
    pub fn handle_timeout(&mut self, now: Duration) {
        // Only what was queued on entry: a deadline re-armed at or before `now` waits for the
        // next call rather than spinning this one.
        let mut budget = self.deadlines.len();
        while let Some((at, target)) = self.deadlines.peek() {
            if at > now || budget == 0 {
                break;
            }
            budget -= 1;
            self.deadlines.pop();
            if !is_current(&self.links, &self.table, at, target) {
                continue;
            }
            match target {
                Target::Link { slot, .. } => {
                    if let Some(slot) = Slot::new(slot) {
                        self.link_timeout(slot, now);
                    }
                }
                Target::Destination { idx, .. } => self.destination_timeout(idx, now),
            }
        }
    }

    fn link_timeout(&mut self, slot: Slot, now: Duration) {
        let Some(link) = self.links[usize::from(slot.get())].as_mut() else {
            return;
        };
        link.armed = None;
        if now >= link.heard + LINK_DEAD_AFTER {
            self.remove_link(slot, now);
            self.dead_links.push_back(slot);
            return;
        }
        if now >= link.full_update_at {
            link.dump.get_or_insert(0);
            link.full_update_at = now + FULL_UPDATE_INTERVAL;
        }
        // A table going out keeps the link from being idle; no HELLO beside it.
        if !link.hello_due && link.dump.is_none() && now >= link.sent + HELLO_INTERVAL {
            link.hello_due = true;
        }
        self.arm_link(slot);
    }

    fn destination_timeout(&mut self, idx: usize, now: Duration) {
        let Some(dest) = self.table.at_mut(idx) else {
            return;
        };
        dest.armed = None;
        for place in &mut dest.routes {
            if place.is_some_and(|r| now >= r.refreshed + ROUTE_EXPIRY) {
                *place = None;
            }
        }
        if dest
            .return_path
            .is_some_and(|back| now >= back.refreshed + ROUTE_EXPIRY)
        {
            dest.return_path = None;
        }
        if dest.retract_due.is_some_and(|at| now >= at) {
            dest.retract_due = None;
            if dest.announced.is_none() && dest.retractions_left > 0 {
                dest.retractions_left -= 1;
                if dest.retractions_left > 0 {
                    dest.retract_due = Some(now + RETRACTION_INTERVAL);
                }
                let generation = dest.generation;
                dest.last_change = self.changes.push(Change::Destination { idx, generation });
            }
        }
        if dest.seqno_request_due.is_some_and(|at| now >= at) {
            dest.seqno_request_due = None;
        }
        if dest
            .empty_since
            .is_some_and(|at| now >= at + FEASIBILITY_HOLD)
        {
            let settled =
                dest.reported.is_none() && !dest.event_pending && dest.retract_due.is_none();
            if settled && dest.is_empty() {
                self.table.remove(idx);
                return;
            }
            // Its removal is still to be reported or retracted: hold it another round.
            dest.empty_since = Some(now);
        }
        self.settle(idx, now);
    }
}
