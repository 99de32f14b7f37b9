//! Changing an endpoint's tunnels while it runs: removing a tunnel, giving its slot again, and
//! the settings a peer's configuration may change without touching its sessions.
//!
//! A tunnel's slot is its number in every table the workers share (its [`TunnelId`] and its
//! `PeerSlot`), and a worker can hold that number for a moment after control changed the
//! tables: it looked a peer up in the index table before the tunnel went, or queued a frame
//! from it for control. So a removed tunnel's slot rests for [`SLOT_REST`] before another
//! tunnel gets it; anything still naming the slot by then finds nothing rather than a new peer.

use std::time::Duration;

use super::Endpoint;
use crate::protocol::{IndexDemux, TunnelId, TunnelShared};

/// How long a removed tunnel's slot rests before it is given again: far longer than a worker
/// holds a table (one batch) or a frame waits in control's queue (one loop turn).
pub const SLOT_REST: Duration = Duration::from_secs(10);

impl<S: TunnelShared> Endpoint<S> {
    /// Removes tunnel `id` at `now`: its indices leave the index table (data for its sessions
    /// is no longer taken), its keys are wiped, the packets it staged are dropped (and counted
    /// as [`Endpoint::take_staged_dropped`] reports), its timers stop, and its slot rests for
    /// [`SLOT_REST`]. Other tunnels are not touched. Returns whether there was such a tunnel.
    pub fn remove_tunnel(&mut self, id: TunnelId, now: Duration) -> bool {
        let Some(tunnel) = self.tunnels.get_mut(id.0).and_then(Option::take) else {
            return false;
        };
        for index in tunnel.published.iter().flatten() {
            self.index.remove(*index);
        }
        tunnel.shared.clear_sessions();
        self.staged_dropped += tunnel.shared.clear_staged() as u64;
        self.by_key.remove(&tunnel.public);
        self.deadlines.schedule(id, None);
        self.ready.retain(|queued| *queued != id);
        self.resting.push_back((id, now));
        true
    }

    /// Makes the slots that have rested for [`SLOT_REST`] by `now` free to be given again.
    pub(super) fn release_rested_slots(&mut self, now: Duration) {
        while let Some(&(id, removed)) = self.resting.front() {
            if now.saturating_sub(removed) < SLOT_REST {
                return;
            }
            self.resting.pop_front();
            self.free_slots.insert(id.0);
        }
    }

    /// Tunnels that can still be added before [`super::MAX_TUNNELS`] slots are taken or resting.
    pub fn room_for_tunnels(&self) -> usize {
        super::MAX_TUNNELS - self.tunnels.len() + self.free_slots.len()
    }

    /// Changes the preshared key of tunnel `id` (`None` = none). Sessions already made keep
    /// going; the next handshake uses the new key, as in WireGuard.
    pub fn set_preshared_key(&mut self, id: TunnelId, psk: Option<[u8; 32]>) {
        if let Some(tunnel) = self.tunnel_mut(id) {
            *tunnel.psk = psk.unwrap_or([0; 32]);
        }
    }

    /// Changes the persistent keepalive of tunnel `id` (`None` = off), counting the interval
    /// from `now`.
    pub fn set_persistent_keepalive(
        &mut self,
        id: TunnelId,
        now: Duration,
        interval: Option<Duration>,
    ) {
        if let Some(tunnel) = self.tunnel_mut(id) {
            tunnel.timers.set_persistent_keepalive(now, interval);
            self.after_event(id);
        }
    }

    /// Sends tunnel `id`'s messages to `addr` from now on (until the peer roams).
    pub fn set_endpoint(&mut self, id: TunnelId, addr: S::Addr) {
        if let Some(tunnel) = self.tunnel(id) {
            tunnel.shared.set_endpoint(addr);
        }
    }
}
