//! A probe stream: packets between random pairs of nodes, each sent with the label its source
//! has installed and carried hop by hop over the links that label names, as the label switch
//! does. A probe is lost when its source has no route, when a hop of its label has no live
//! link or node, or when the label ends somewhere else. A probe is walked at the instant it is
//! sent: its flight time (tens of milliseconds) is short against the failures it measures.

use std::collections::BTreeMap;
use std::time::Duration;

use super::super::Slot;
use super::{Net, SimRng};

/// One source and destination, and how its probes fared.
#[derive(Debug, Clone, Copy)]
pub struct Pair {
    /// Sending node.
    pub src: usize,
    /// Receiving node.
    pub dst: usize,
    /// Probes sent.
    pub sent: u64,
    /// Probes lost.
    pub lost: u64,
    /// When the latest lost probe was sent.
    pub last_lost: Option<Duration>,
    /// Whether the latest probe arrived.
    pub last_arrived: bool,
}

/// What a failure cost the probe stream.
#[derive(Debug, Clone, Copy, Default)]
pub struct Outage {
    /// Pairs that lost any probe.
    pub affected: usize,
    /// Affected pairs that cannot be reached any more (left out of everything below).
    pub unrecoverable: usize,
    /// Recoverable affected pairs whose probes were still lost at the end.
    pub stuck: usize,
    /// Probes the recoverable pairs lost.
    pub lost: u64,
    /// Median, over recoverable affected pairs, of the time from the failure until their
    /// probes arrived again.
    pub median: Option<Duration>,
    /// The longest such time.
    pub max: Option<Duration>,
}

/// Probe pairs and their stream.
#[derive(Debug, Clone)]
pub struct Probes {
    pairs: Vec<Pair>,
}

/// Whether a probe from `src` to `dst` sent now arrives.
pub fn arrives(net: &Net, src: usize, dst: usize) -> bool {
    net.is_alive(src)
        && net
            .route(src, dst)
            .is_some_and(|route| net.walk(src, &route.label) == Some(dst))
}

/// The nodes a probe from `src` to `dst` passes, ends included, while it arrives.
fn path(net: &Net, src: usize, dst: usize) -> Option<Vec<usize>> {
    let route = net.route(src, dst)?;
    let mut nodes = vec![src];
    for &slot in route.label.as_slice() {
        let at = *nodes.last()?;
        nodes.push(net.neighbour(at, Slot::new(slot)?)?);
    }
    (nodes.last() == Some(&dst)).then_some(nodes)
}

impl Probes {
    /// Up to `count` distinct random pairs of live nodes whose probes arrive now.
    pub fn pick(net: &Net, count: usize, rng: &mut SimRng) -> Self {
        let mut pairs: Vec<Pair> = Vec::with_capacity(count);
        for _ in 0..count * 20 {
            if pairs.len() >= count || net.len() < 2 {
                break;
            }
            let (src, dst) = (rng.below(net.len()), rng.below(net.len()));
            let fresh = !pairs.iter().any(|p| (p.src, p.dst) == (src, dst));
            if src != dst && fresh && arrives(net, src, dst) {
                pairs.push(Pair {
                    src,
                    dst,
                    sent: 0,
                    lost: 0,
                    last_lost: None,
                    last_arrived: true,
                });
            }
        }
        Self { pairs }
    }

    /// The pairs.
    pub fn pairs(&self) -> &[Pair] {
        &self.pairs
    }

    /// Keeps only the pairs `keep` accepts.
    pub fn retain(&mut self, keep: impl FnMut(&Pair) -> bool) {
        self.pairs.retain(keep);
    }

    /// Sends one probe for every pair, now.
    pub fn send(&mut self, net: &Net) {
        let now = net.now();
        for pair in &mut self.pairs {
            pair.sent += 1;
            pair.last_arrived = arrives(net, pair.src, pair.dst);
            if !pair.last_arrived {
                pair.lost += 1;
                pair.last_lost = Some(now);
            }
        }
    }

    /// The link the most pairs' probes cross now, as `(a, b)` with `a < b`.
    pub fn busiest_link(&self, net: &Net) -> Option<(usize, usize)> {
        let mut use_count = BTreeMap::new();
        for nodes in self.pairs.iter().filter_map(|p| path(net, p.src, p.dst)) {
            for hop in nodes.windows(2) {
                *use_count
                    .entry((hop[0].min(hop[1]), hop[0].max(hop[1])))
                    .or_insert(0) += 1;
            }
        }
        busiest(use_count)
    }

    /// The node the most pairs' probes pass through (not counting where they start or end).
    pub fn busiest_node(&self, net: &Net) -> Option<usize> {
        let mut use_count = BTreeMap::new();
        for nodes in self.pairs.iter().filter_map(|p| path(net, p.src, p.dst)) {
            for &node in &nodes[1..nodes.len() - 1] {
                *use_count.entry(node).or_insert(0) += 1;
            }
        }
        busiest(use_count)
    }

    /// What a failure at `since` cost, probes being sent every `interval`;
    /// `recoverable(pair)` says whether its destination can still be reached.
    pub fn outage(
        &self,
        since: Duration,
        interval: Duration,
        mut recoverable: impl FnMut(&Pair) -> bool,
    ) -> Outage {
        let mut outage = Outage::default();
        let mut gaps = Vec::new();
        for pair in self.pairs.iter().filter(|p| p.lost > 0) {
            outage.affected += 1;
            if !recoverable(pair) {
                outage.unrecoverable += 1;
                continue;
            }
            outage.lost += pair.lost;
            if !pair.last_arrived {
                outage.stuck += 1;
            } else if let Some(last) = pair.last_lost {
                gaps.push((last + interval).saturating_sub(since));
            }
        }
        gaps.sort();
        outage.median = gaps.get(gaps.len() / 2).copied();
        outage.max = gaps.last().copied();
        outage
    }
}

/// The most used key (the smallest of equals, so runs repeat).
fn busiest<K: Copy + Ord>(use_count: BTreeMap<K, u32>) -> Option<K> {
    let most = *use_count.values().max()?;
    use_count
        .into_iter()
        .find(|&(_, n)| n == most)
        .map(|(k, _)| k)
}
