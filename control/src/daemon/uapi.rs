//! WireGuard's userspace API on the control thread: `get` reports the running peers, `set`
//! becomes a [`PeerUpdate`] applied like any other (see [`super::peers`]), so `wg set` changes
//! take effect at once and never touch the sessions of peers they leave alone.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use zeroize::Zeroizing;

use super::peers::{PeerSpec, PeerUpdate};
use super::{CALLS_PER_TURN, Control};
use crate::api::uapi::{Answer, Device, DevicePeer, Errno, Request, SetDevice};
use crate::config::{Endpoint, Listen, PeerConfig, PeerKind};
use crate::keys::{PresharedKey, PublicKey};

impl Control {
    /// Answers up to [`CALLS_PER_TURN`] of the userspace API's calls waiting; with more
    /// waiting, the loop comes back for them at once.
    pub(super) fn take_uapi_calls(&mut self) {
        for _ in 0..CALLS_PER_TURN {
            let Some(call) = self.uapi_calls.as_ref().and_then(|calls| calls.next_call()) else {
                return;
            };
            call.answer_with(|request| match request {
                Request::Get => Answer::Device(self.device()),
                Request::Set(set) => Answer::Set(self.uapi_set(set)),
            });
        }
        self.requests_wake.notify();
    }

    /// The port `wg show` names: the listen port, or the first listen address's.
    fn listen_port(&self) -> u16 {
        match &self.interface.listen {
            Listen::AllAddresses { port } => *port,
            Listen::Addresses(addrs) => addrs.first().map_or(0, |addr| addr.port()),
        }
    }

    /// The device as `get=1` reports it.
    fn device(&self) -> Device {
        let now = self.now();
        let wall = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let peers = self
            .book
            .iter()
            .map(|(id, spec)| {
                let config = &spec.config;
                let tunnel = self.links.tunnel(id);
                DevicePeer {
                    public_key: config.public_key.0,
                    preshared_key: config
                        .preshared_key
                        .as_ref()
                        .map(|k| Zeroizing::new(*k.as_bytes())),
                    endpoint: tunnel.and_then(|t| t.endpoint()).and_then(|e| e.udp()),
                    last_handshake: tunnel
                        .and_then(|t| t.last_handshake())
                        .map(|at| wall.saturating_sub(now.saturating_sub(at))),
                    rx_bytes: tunnel.map_or(0, |t| t.shared().traffic().0),
                    tx_bytes: tunnel.map_or(0, |t| t.shared().traffic().1),
                    persistent_keepalive: config
                        .persistent_keepalive
                        .map_or(0, |d| u16::try_from(d.as_secs()).unwrap_or(u16::MAX)),
                    allowed_ips: config.allowed_ips.clone(),
                }
            })
            .collect();
        Device {
            private_key: Box::new(Zeroizing::new(*self.interface.private_key.as_bytes())),
            listen_port: self.listen_port(),
            fwmark: self.tun_routes.fwmark(),
            peers,
        }
    }

    /// Applies `set=1`, or refuses it whole, saying why in the log.
    fn uapi_set(&mut self, set: SetDevice) -> Result<(), Errno> {
        let refuse = |errno, why: &str| {
            tracing::warn!("wg set refused: {why}");
            Err(errno)
        };
        if set
            .private_key
            .as_ref()
            .is_some_and(|key| **key != *self.interface.private_key.as_bytes())
        {
            return refuse(
                Errno::Unsupported,
                "a running node keeps its private key (change it in the config and restart)",
            );
        }
        if set
            .listen_port
            .is_some_and(|port| port != self.listen_port())
        {
            return refuse(
                Errno::Unsupported,
                "a running node keeps its listen port (change it in the config and restart)",
            );
        }
        // The mark comes first: a default route this set adds goes through its table.
        let mark_before = self.tun_routes.fwmark();
        if let Some(mark) = set.fwmark {
            if let Err(why) = self.tun_routes.set_fwmark(mark) {
                return refuse(Errno::Unsupported, &why);
            }
        }
        let update = update_from_set(&self.book.to_update(), set);
        let updated = self.update_peers(&update);
        if updated.is_err() {
            // Back to the old mark, unless a default route rests on the new one (should part
            // of the update have gone through after all): then the new one stays.
            let _ = self.tun_routes.set_fwmark(mark_before);
        }
        match updated {
            Ok(applied) => {
                if applied.added + applied.removed + applied.changed > 0 {
                    tracing::info!(
                        "wg set: {} peer(s) added, {} removed, {} changed",
                        applied.added,
                        applied.removed,
                        applied.changed
                    );
                }
                Ok(())
            }
            Err(e) => refuse(Errno::Invalid, &e.to_string()),
        }
    }
}

/// The peers after `set`'s changes to the `running` ones, as WireGuard makes them: a peer named
/// for the first time is created (a plain WireGuard peer: `wg` cannot say it is a rovy node)
/// unless `update_only`; an allowed IP given to one peer is taken from any other; with
/// `replace_peers` the peers not named go, and those named start afresh, keeping only their
/// kind (and, if nothing else changed, their sessions).
pub fn update_from_set(running: &PeerUpdate, set: SetDevice) -> PeerUpdate {
    let mut update = if set.replace_peers {
        PeerUpdate::default()
    } else {
        running.clone()
    };
    for change in set.peers {
        let key = PublicKey(change.public_key);
        let at = update
            .peers
            .iter()
            .position(|spec| spec.config.public_key == key);
        if change.remove {
            if let Some(at) = at {
                update.peers.remove(at);
            }
            continue;
        }
        let running_kind = running
            .peers
            .iter()
            .find(|spec| spec.config.public_key == key)
            .map(|spec| spec.config.kind);
        let at = match at {
            Some(at) => at,
            None if change.update_only => continue,
            None => {
                update.peers.push(fresh_peer(key, running_kind));
                update.peers.len() - 1
            }
        };
        for allowed in &change.allowed_ips {
            for other in update.peers.iter_mut() {
                if other.config.public_key != key {
                    other.config.allowed_ips.retain(|p| p != allowed);
                }
            }
        }
        let spec = &mut update.peers[at];
        if let Some(psk) = change.preshared_key {
            spec.config.preshared_key = (*psk != [0; 32]).then(|| PresharedKey::from_bytes(*psk));
        }
        if let Some(addr) = change.endpoint {
            spec.config.endpoint = Some(Endpoint::Addr(addr));
            spec.resolved = Some(addr);
            update.reset_endpoints.insert(key);
        }
        if let Some(seconds) = change.persistent_keepalive {
            spec.config.persistent_keepalive =
                (seconds != 0).then(|| Duration::from_secs(u64::from(seconds)));
        }
        if change.replace_allowed_ips {
            spec.config.allowed_ips.clear();
        }
        for allowed in change.allowed_ips {
            if !spec.config.allowed_ips.contains(&allowed) {
                spec.config.allowed_ips.push(allowed);
            }
        }
    }
    update
}

/// A peer as `wg set` creates it: nothing but its key (and its kind, if it runs already).
fn fresh_peer(key: PublicKey, kind: Option<PeerKind>) -> PeerSpec {
    PeerSpec {
        config: PeerConfig {
            public_key: key,
            kind: kind.unwrap_or(PeerKind::WireGuard),
            endpoint: None,
            allowed_ips: Vec::new(),
            preshared_key: None,
            persistent_keepalive: None,
        },
        resolved: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::uapi::SetPeer;
    use crate::config::IpPrefix;

    fn key(byte: u8) -> PublicKey {
        PublicKey([byte; 32])
    }

    fn prefixes(list: &[&str]) -> Vec<IpPrefix> {
        list.iter().map(|p| p.parse().unwrap()).collect()
    }

    fn running(peers: &[(u8, PeerKind, &[&str])]) -> PeerUpdate {
        PeerUpdate {
            peers: peers
                .iter()
                .map(|&(byte, kind, allowed)| {
                    let mut spec = fresh_peer(key(byte), Some(kind));
                    spec.config.allowed_ips = prefixes(allowed);
                    spec
                })
                .collect(),
            ..PeerUpdate::default()
        }
    }

    fn change(byte: u8) -> SetPeer {
        SetPeer {
            public_key: [byte; 32],
            remove: false,
            update_only: false,
            preshared_key: None,
            endpoint: None,
            persistent_keepalive: None,
            replace_allowed_ips: false,
            allowed_ips: Vec::new(),
        }
    }

    fn set(peers: Vec<SetPeer>) -> SetDevice {
        SetDevice {
            peers,
            ..SetDevice::default()
        }
    }

    fn peer(update: &PeerUpdate, byte: u8) -> Option<&PeerConfig> {
        update
            .peers
            .iter()
            .map(|spec| &spec.config)
            .find(|config| config.public_key == key(byte))
    }

    #[test]
    fn an_allowed_ip_moves_to_the_peer_it_is_given_to() {
        let before = running(&[
            (1, PeerKind::Rovy, &["10.0.0.0/24", "10.1.0.0/16"]),
            (2, PeerKind::WireGuard, &[]),
        ]);
        let mut b = change(2);
        b.allowed_ips = prefixes(&["10.0.0.0/24"]);
        let after = update_from_set(&before, set(vec![b]));
        assert_eq!(
            peer(&after, 1).unwrap().allowed_ips,
            prefixes(&["10.1.0.0/16"])
        );
        assert_eq!(
            peer(&after, 2).unwrap().allowed_ips,
            prefixes(&["10.0.0.0/24"])
        );
        assert_eq!(peer(&after, 1).unwrap().kind, PeerKind::Rovy);
    }

    #[test]
    fn peers_are_created_changed_and_removed_as_wg_set_says() {
        let before = running(&[
            (1, PeerKind::Rovy, &["10.0.0.0/24"]),
            (2, PeerKind::Rovy, &[]),
        ]);
        let mut new = change(3);
        new.endpoint = Some("192.0.2.3:51820".parse().unwrap());
        new.persistent_keepalive = Some(25);
        new.preshared_key = Some(Zeroizing::new([9; 32]));
        let mut only = change(4);
        only.update_only = true;
        let mut gone = change(2);
        gone.remove = true;
        let mut never = change(5);
        never.remove = true;
        let mut first = change(1);
        first.replace_allowed_ips = true;
        first.allowed_ips = prefixes(&["10.9.0.0/16"]);
        first.persistent_keepalive = Some(0);
        first.preshared_key = Some(Zeroizing::new([0; 32]));
        let after = update_from_set(&before, set(vec![new, only, gone, never, first]));
        let keys: Vec<u8> = after
            .peers
            .iter()
            .map(|s| s.config.public_key.0[0])
            .collect();
        assert_eq!(keys, [1, 3], "4 was update_only, 2 removed, 5 never there");
        let three = peer(&after, 3).unwrap();
        assert_eq!(
            three.kind,
            PeerKind::WireGuard,
            "wg cannot say it is a rovy node"
        );
        assert_eq!(three.persistent_keepalive, Some(Duration::from_secs(25)));
        assert_eq!(three.preshared_key, Some(PresharedKey::from_bytes([9; 32])));
        assert!(after.reset_endpoints.contains(&key(3)));
        let one = peer(&after, 1).unwrap();
        assert_eq!(one.allowed_ips, prefixes(&["10.9.0.0/16"]));
        assert_eq!(
            (one.persistent_keepalive, one.preshared_key.is_none()),
            (None, true)
        );
    }

    #[test]
    fn replace_peers_keeps_only_the_named_ones_and_their_kind() {
        let before = running(&[
            (1, PeerKind::Rovy, &["10.0.0.0/24"]),
            (2, PeerKind::Rovy, &[]),
        ]);
        let mut again = change(1);
        again.allowed_ips = prefixes(&["10.0.0.0/24"]);
        let replace = SetDevice {
            replace_peers: true,
            peers: vec![again, change(3)],
            ..SetDevice::default()
        };
        let after = update_from_set(&before, replace);
        assert_eq!(after.peers.len(), 2);
        assert_eq!(
            peer(&after, 1).unwrap(),
            &before.peers[0].config,
            "unchanged"
        );
        assert!(peer(&after, 2).is_none());
        assert_eq!(peer(&after, 3).unwrap().kind, PeerKind::WireGuard);
    }
}
