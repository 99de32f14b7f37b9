//! Which labels upper handshakes are waiting on, so a label over which none completes is
//! demoted (issue 10, DESIGN §1): a route can look alive link by link (every hop's HELLOs
//! answered) and still not carry traffic end to end, e.g. past a node that drops what it
//! forwards. Sans-IO: the overlay reports initiations and completions with `now` and asks
//! which labels are due.

use std::collections::HashMap;
use std::time::Duration;

use crate::protocol::TunnelId;
use crate::routing::Label;

/// A label over which an end-to-end handshake does not complete within this long is demoted:
/// the destination moves to its next route.
pub const UPPER_HANDSHAKE_DEADLINE: Duration = Duration::from_secs(5);

/// Per upper tunnel with a handshake under way: the label it took, and since when.
#[derive(Debug, Default)]
pub(super) struct HandshakeWatch {
    waiting: HashMap<TunnelId, (Label, Duration)>,
}

impl HandshakeWatch {
    /// Tunnel `tunnel` sent an initiation along `label`. A retry along the same label keeps
    /// the first one's time (the deadline is for the label, not the message); one along
    /// another label (the route moved) starts that label's own deadline.
    pub fn initiation_sent(&mut self, tunnel: TunnelId, label: Label, now: Duration) {
        let entry = self.waiting.entry(tunnel).or_insert((label, now));
        if entry.0 != label {
            *entry = (label, now);
        }
    }

    /// Tunnel `tunnel`'s handshake completed: its label works.
    pub fn completed(&mut self, tunnel: TunnelId) {
        self.waiting.remove(&tunnel);
    }

    /// The labels whose handshakes have waited [`UPPER_HANDSHAKE_DEADLINE`] at `now`, each
    /// reported once.
    pub fn take_due(&mut self, now: Duration) -> Vec<Label> {
        let due: Vec<TunnelId> = self
            .waiting
            .iter()
            .filter(|(_, (_, since))| now.saturating_sub(*since) >= UPPER_HANDSHAKE_DEADLINE)
            .map(|(&id, _)| id)
            .collect();
        due.into_iter()
            .filter_map(|id| self.waiting.remove(&id).map(|(label, _)| label))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: Duration = Duration::from_secs(100);

    fn label(slots: &[u8]) -> Label {
        Label::new(slots).unwrap()
    }

    #[test]
    fn a_label_is_due_once_five_seconds_after_its_first_initiation() {
        let mut watch = HandshakeWatch::default();
        let (a, b) = (TunnelId(0), TunnelId(1));
        watch.initiation_sent(a, label(&[1, 2]), T0);
        watch.initiation_sent(b, label(&[3]), T0 + Duration::from_secs(2));
        watch.initiation_sent(a, label(&[1, 2]), T0 + Duration::from_secs(4));
        assert!(watch.take_due(T0 + Duration::from_millis(4999)).is_empty());
        assert_eq!(
            watch.take_due(T0 + UPPER_HANDSHAKE_DEADLINE),
            [label(&[1, 2])]
        );
        assert!(
            watch.take_due(T0 + Duration::from_secs(6)).is_empty(),
            "once"
        );
        assert_eq!(watch.take_due(T0 + Duration::from_secs(7)), [label(&[3])]);
    }

    #[test]
    fn a_completed_handshake_demotes_nothing_and_a_moved_route_starts_afresh() {
        let mut watch = HandshakeWatch::default();
        let (a, b) = (TunnelId(0), TunnelId(1));
        watch.initiation_sent(a, label(&[1]), T0);
        watch.completed(a);
        watch.initiation_sent(b, label(&[2]), T0);
        watch.initiation_sent(b, label(&[4, 5]), T0 + Duration::from_secs(3));
        assert!(watch.take_due(T0 + Duration::from_secs(6)).is_empty());
        assert_eq!(
            watch.take_due(T0 + Duration::from_secs(8)),
            [label(&[4, 5])]
        );
    }
}
