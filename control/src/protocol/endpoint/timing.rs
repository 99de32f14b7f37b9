//! What the clock and the data path drive: activity replayed into timers, deadlines in order,
//! the transmit queue, and sealing packets.
//!
//! Every change to a tunnel's timers or wishes ends in [`Endpoint::after_event`], which moves
//! its deadline in the `Deadlines` heap and queues it for [`Endpoint::poll_transmit`]; so firing timers
//! and handing out messages only ever look at the tunnels concerned.

use std::ops::Range;
use std::time::Duration;

use rand_core::{CryptoRng, RngCore};
use rovy_dataplane::DropReason;
use rovy_dataplane::wire::{INITIATION_LEN, INITIATION_MAC1_OFFSET};

use super::Endpoint;
use crate::handshake::noise;
use crate::handshake::tai64n::Tai64n;
use crate::protocol::tunnel::Synced;
use crate::protocol::{HANDSHAKE_BUF_LEN, Transmit, TunnelId, TunnelShared};
use crate::timers::{MAX_JITTER, TimerAction};

impl<S: TunnelShared> Endpoint<S> {
    /// Replays the workers' activity of every tunnel into its timers, for the caller's tick
    /// (and when a worker wakes it: a first staged packet asks for a handshake). A tunnel whose
    /// stamps did not move costs a few atomic loads; only the others are rescheduled.
    pub fn sync_activity(&mut self, rng: &mut (impl RngCore + CryptoRng)) {
        for i in 0..self.tunnels.len() {
            self.sync_tunnel(TunnelId(i), rng);
        }
    }

    /// Replays `id`'s activity (see [`super::Tunnel::sync_activity`]) and reschedules it if
    /// anything changed.
    pub(super) fn sync_tunnel(&mut self, id: TunnelId, rng: &mut (impl RngCore + CryptoRng)) {
        let Some(tunnel) = self.tunnel_mut(id) else {
            return;
        };
        match tunnel.sync_activity(|| jitter(rng)) {
            Synced::Unchanged => {}
            Synced::Changed { confirmed } => {
                if confirmed {
                    self.sync_indices(id);
                }
                self.after_event(id);
            }
        }
    }

    /// After `id`'s timers or wishes changed: its deadline moves, and it queues for
    /// [`Endpoint::poll_transmit`] if it has something to send.
    pub(super) fn after_event(&mut self, id: TunnelId) {
        let Some(tunnel) = self.tunnels.get_mut(id.0).and_then(Option::as_mut) else {
            return;
        };
        self.deadlines.schedule(id, tunnel.timers.next_deadline());
        if tunnel.wants_transmit() && !tunnel.queued {
            tunnel.queued = true;
            self.ready.push_back(id);
        }
    }

    /// The earliest deadline of any tunnel: call [`Endpoint::handle_timeout`] then (or on the
    /// caller's next tick, whichever comes first).
    pub fn poll_timeout(&mut self) -> Option<Duration> {
        self.deadlines.next()
    }

    /// Fires the timers of every tunnel due at `now`, earliest deadline first; what they ask
    /// to send waits for [`Endpoint::poll_transmit`]. Tunnels not yet due are not touched.
    pub fn handle_timeout(&mut self, now: Duration, rng: &mut (impl RngCore + CryptoRng)) {
        self.limiter.gc(now);
        self.release_rested_slots(now);
        while let Some(id) = self.deadlines.pop_due(now) {
            // What the workers saw since the last tick may disarm the timer (a reply arrived).
            self.sync_tunnel(id, rng);
            let Some(tunnel) = self.tunnel_mut(id) else {
                continue;
            };
            let fired = tunnel.fire_timers(now);
            let dropped = if fired.contains(TimerAction::GiveUp) {
                tunnel.shared.clear_staged() as u64
            } else {
                0
            };
            self.staged_dropped += dropped;
            if !fired.is_empty() {
                self.sync_indices(id);
            }
            self.after_event(id);
        }
    }

    /// The next message to send (initiation or keepalive), written into `out`, in the order the
    /// tunnels asked. Call until it returns `None`. `wall` is the time since the Unix epoch, for
    /// the initiation's TAI64N timestamp.
    pub fn poll_transmit(
        &mut self,
        now: Duration,
        wall: Duration,
        rng: &mut (impl RngCore + CryptoRng),
        out: &mut [u8; HANDSHAKE_BUF_LEN],
    ) -> Option<Transmit<S::Addr>> {
        while let Some(&id) = self.ready.front() {
            // Data the workers sent since makes a keepalive unnecessary.
            self.sync_tunnel(id, rng);
            let sent = self.transmit_for(now, wall, id, rng, out);
            match self.tunnel_mut(id) {
                Some(tunnel) if sent.is_some() && tunnel.wants_transmit() => {}
                Some(tunnel) => {
                    tunnel.queued = false;
                    self.ready.pop_front();
                }
                None => {
                    self.ready.pop_front();
                }
            }
            if sent.is_some() {
                return sent;
            }
        }
        None
    }

    /// What `id` wants to send, if it can: a keepalive before an initiation.
    fn transmit_for(
        &mut self,
        now: Duration,
        wall: Duration,
        id: TunnelId,
        rng: &mut (impl RngCore + CryptoRng),
        out: &mut [u8; HANDSHAKE_BUF_LEN],
    ) -> Option<Transmit<S::Addr>> {
        let tunnel = self.tunnel_mut(id)?;
        let Some(dst) = tunnel.shared.endpoint() else {
            tunnel.want_initiation = None;
            tunnel.want_keepalive = None;
            return None;
        };
        if tunnel.want_keepalive.take().is_some() {
            if let Ok((range, _)) = tunnel.shared.seal(now, &mut out[..], 0, 0) {
                // Sealed where a packet's datagram goes; a Transmit is at the start.
                let len = range.len();
                out.copy_within(range, 0);
                return Some(Transmit {
                    tunnel: id,
                    dst,
                    len,
                });
            }
        }
        let retry = tunnel.want_initiation.take()?;
        if tunnel.may_initiate(now, retry) && self.write_initiation(now, wall, id, rng, out) {
            return Some(Transmit {
                tunnel: id,
                dst,
                len: INITIATION_LEN,
            });
        }
        None
    }

    fn write_initiation(
        &mut self,
        now: Duration,
        wall: Duration,
        id: TunnelId,
        rng: &mut (impl RngCore + CryptoRng),
        out: &mut [u8; HANDSHAKE_BUF_LEN],
    ) -> bool {
        let local_index = self.fresh_index(id, rng);
        let timestamp = Tai64n::from_unix(wall);
        let private = &self.private;
        let Some(tunnel) = self.tunnels.get_mut(id.0).and_then(Option::as_mut) else {
            return false;
        };
        let Ok(pending) = noise::write_initiation(
            self.config.identifier,
            private.expose(),
            &tunnel.public,
            &tunnel.psk,
            local_index,
            timestamp.as_bytes(),
            out,
        ) else {
            return false;
        };
        if tunnel.jar.stamp(now, out, INITIATION_MAC1_OFFSET).is_err() {
            return false;
        }
        tunnel.pending = Some(pending);
        tunnel.last_initiation_sent = Some(now);
        tunnel.timers.on_handshake_initiated(now, jitter(rng));
        tunnel.timers.on_authenticated_sent(now);
        self.sync_indices(id);
        self.after_event(id);
        true
    }

    /// Seals the packet at the data path's payload offset in `buf` (for links
    /// `buf[PACKET_AT..PACKET_AT + payload_len]`, see [`rovy_dataplane::buf`]) for `id` in
    /// place; returns the datagram's range in `buf` and where to send it. Without a usable
    /// session it asks for a handshake (picked up by [`Endpoint::poll_transmit`]) and fails
    /// with [`DropReason::NoSession`]: the caller may queue the packet until
    /// [`super::Received::HandshakeComplete`].
    #[allow(clippy::too_many_arguments)]
    pub fn encapsulate(
        &mut self,
        now: Duration,
        id: TunnelId,
        buf: &mut [u8],
        payload_len: usize,
        mtu: usize,
        rng: &mut (impl RngCore + CryptoRng),
    ) -> Result<(Range<usize>, S::Addr), DropReason> {
        let tunnel = self.tunnel(id).ok_or(DropReason::NoRoute)?;
        let sent = tunnel.shared.seal(now, buf, payload_len, mtu);
        self.sync_tunnel(id, rng);
        sent
    }

    /// How many staged packets were dropped since the last call because their tunnel's
    /// handshake gave up (WireGuard purges them then, too); the caller counts them.
    pub fn take_staged_dropped(&mut self) -> u64 {
        std::mem::take(&mut self.staged_dropped)
    }

    /// Asks for a handshake with the peer of `id` now (e.g. at start-up for peers with an
    /// endpoint).
    pub fn initiate(&mut self, id: TunnelId) {
        if let Some(tunnel) = self.tunnel_mut(id) {
            tunnel.request_initiation();
            self.after_event(id);
        }
    }
}

fn jitter(rng: &mut (impl RngCore + CryptoRng)) -> Duration {
    Duration::from_nanos(u64::from(rng.next_u32()) % MAX_JITTER.as_nanos() as u64)
}
