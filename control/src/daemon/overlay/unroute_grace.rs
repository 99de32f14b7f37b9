//! Destinations that lost their last route, kept routed a moment longer. A node left with only
//! unfeasible routes asks the origin for a newer seqno (RFC 8966 §3.8.2) and repeats the request
//! every [`SEQNO_REQUEST_INTERVAL`]; the answer usually comes within a round trip. Meanwhile
//! packets to the destination are lost as if in flight rather than refused with Destination
//! Unreachable, which ends a `ping -w` and fails a connecting socket during a failover that is
//! about to succeed. Sans-IO: the overlay reports losses and new routes with `now` and asks
//! which destinations are due to leave the workers' table.

use std::collections::HashMap;
use std::time::Duration;

use crate::routing::{NodeKey, SEQNO_REQUEST_INTERVAL};

/// How long a destination that lost its last route stays in the workers' table.
pub const UNROUTE_GRACE: Duration = SEQNO_REQUEST_INTERVAL;

/// Per destination without a route: when it lost it.
#[derive(Debug, Default)]
pub(super) struct UnrouteGrace {
    lost: HashMap<NodeKey, Duration>,
}

impl UnrouteGrace {
    /// Routing lost `key` at `now`. A loss already waiting keeps its first time.
    pub fn lost(&mut self, key: NodeKey, now: Duration) {
        self.lost.entry(key).or_insert(now);
    }

    /// Routing has a route to `key` again: it stays.
    pub fn found(&mut self, key: &NodeKey) {
        self.lost.remove(key);
    }

    /// The destinations lost [`UNROUTE_GRACE`] ago or more at `now`, each reported once.
    pub fn take_due(&mut self, now: Duration) -> Vec<NodeKey> {
        if self.lost.is_empty() {
            return Vec::new();
        }
        let due: Vec<NodeKey> = self
            .lost
            .iter()
            .filter(|(_, since)| now.saturating_sub(**since) >= UNROUTE_GRACE)
            .map(|(key, _)| *key)
            .collect();
        for key in &due {
            self.lost.remove(key);
        }
        due
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: Duration = Duration::from_secs(100);

    #[test]
    fn a_lost_destination_is_due_once_after_the_grace() {
        let mut grace = UnrouteGrace::default();
        grace.lost([1; 32], T0);
        grace.lost([2; 32], T0 + Duration::from_millis(400));
        grace.lost([1; 32], T0 + Duration::from_millis(600));
        assert!(
            grace
                .take_due(T0 + UNROUTE_GRACE - Duration::from_millis(1))
                .is_empty()
        );
        assert_eq!(
            grace.take_due(T0 + UNROUTE_GRACE),
            [[1; 32]],
            "from its first loss"
        );
        assert!(grace.take_due(T0 + UNROUTE_GRACE).is_empty(), "once");
        assert_eq!(grace.take_due(T0 + Duration::from_millis(1400)), [[2; 32]]);
    }

    #[test]
    fn a_route_found_within_the_grace_keeps_the_destination_and_a_new_loss_starts_afresh() {
        let mut grace = UnrouteGrace::default();
        grace.lost([1; 32], T0);
        grace.found(&[1; 32]);
        assert!(grace.take_due(T0 + UNROUTE_GRACE).is_empty());
        grace.lost([1; 32], T0 + Duration::from_secs(5));
        assert!(grace.take_due(T0 + Duration::from_millis(5999)).is_empty());
        assert_eq!(grace.take_due(T0 + Duration::from_secs(6)), [[1; 32]]);
    }
}
