//! The control thread's log lines about peers and load: a peer comes up when a handshake
//! completes with it and goes down when its last one is older than REJECT_AFTER_TIME (its
//! session can no longer carry data); the node goes under load and back; handshakes refused,
//! at most one line per [`REFUSED_REPORT_INTERVAL`] however many arrive.

use std::collections::BTreeMap;
use std::time::Duration;

use rovy_dataplane::DropReason;
use rovy_dataplane::link_addr::LinkAddr;
use rovy_dataplane::session::REJECT_AFTER_TIME;

use crate::keys::PublicKey;
use crate::logging::Throttle;
use crate::protocol::{LinkEndpoint, TunnelId};

/// Least time between two lines about refused handshakes.
pub const REFUSED_REPORT_INTERVAL: Duration = Duration::from_secs(10);

/// What has been said, so that each line is said once per change.
#[derive(Debug)]
pub(super) struct Events {
    /// Peers up, with when their handshake completed here (a responder's session counts as a
    /// handshake only once the initiator's first data confirms it).
    up: BTreeMap<TunnelId, Duration>,
    under_load: bool,
    refused: Throttle,
}

impl Events {
    pub(super) fn new() -> Self {
        Events {
            up: BTreeMap::new(),
            under_load: false,
            refused: Throttle::new(REFUSED_REPORT_INTERVAL),
        }
    }

    /// A handshake with `tunnel` completed at `now` (either side).
    pub(super) fn handshake_completed(
        &mut self,
        now: Duration,
        links: &LinkEndpoint,
        tunnel: TunnelId,
    ) {
        if self.up.insert(tunnel, now).is_some() {
            return;
        }
        if let Some(t) = links.tunnel(tunnel) {
            let endpoint = t
                .endpoint()
                .map_or_else(|| "?".to_owned(), |e| e.to_string());
            tracing::info!(
                "peer {} up: handshake completed with {endpoint}",
                PublicKey(*t.public_key())
            );
        }
    }

    /// Takes down every peer whose last handshake is past REJECT_AFTER_TIME at `now`.
    pub(super) fn check_peers(&mut self, now: Duration, links: &LinkEndpoint) {
        self.up.retain(|&id, completed| {
            let Some(t) = links.tunnel(id) else {
                return false;
            };
            let last = t
                .last_handshake()
                .map_or(*completed, |at| at.max(*completed));
            let age = now.saturating_sub(last);
            let live = age < REJECT_AFTER_TIME;
            if !live {
                tracing::info!(
                    "peer {} down: no handshake for {} s",
                    PublicKey(*t.public_key()),
                    age.as_secs()
                );
            }
            live
        });
    }

    /// The node's load at `now`: said when it changes.
    pub(super) fn load(&mut self, under_load: bool, queued: usize) {
        if under_load == self.under_load {
            return;
        }
        self.under_load = under_load;
        if under_load {
            tracing::warn!(
                "under load: {queued} handshake messages queued; initiations without a valid \
                 cookie get a cookie reply"
            );
        } else {
            tracing::info!("load gone: handshakes answered again without cookies");
        }
    }

    /// A handshake message from `src` was refused for `reason`.
    pub(super) fn refused(&mut self, now: Duration, src: LinkAddr, reason: DropReason) {
        if let Some(held_back) = self.refused.report(now) {
            let more = match held_back {
                0 => String::new(),
                n => format!(" ({n} more refused since the last report)"),
            };
            tracing::warn!("handshake from {src} refused: {}{more}", reason.name());
        }
    }
}
