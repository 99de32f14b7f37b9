//! What the routes add up to, measured against the graph: which pairs have a route, whether
//! its label leads there, and how much longer it is than the shortest path (BFS).

use super::super::{Label, MAX_LABEL_LEN, Slot};
use super::Net;
use super::topology::{diameter, distances};

/// The routes of some sources to every other node, against the true distances.
#[derive(Debug, Clone, Default)]
pub struct Survey {
    /// Ordered pairs looked at.
    pub pairs: u64,
    /// Pairs with a path over live links.
    pub connected: u64,
    /// Pairs whose shortest path fits in a label ([`MAX_LABEL_LEN`] hops).
    pub in_reach: u64,
    /// Pairs in reach with a route whose label leads to the destination.
    pub routed: u64,
    /// Routed pairs whose metric is the shortest path's length.
    pub exact: u64,
    /// Sum of metric / distance over routed pairs.
    pub stretch_sum: f64,
    /// Largest metric / distance.
    pub stretch_max: f64,
    /// Routes that are wrong: to an unreachable node, or with a label that does not lead to
    /// the destination, or a metric other than the label's length.
    pub wrong: u64,
    /// The first missing or wrong route, described.
    pub first_fault: Option<String>,
}

impl Survey {
    /// Pairs in reach without a route.
    pub fn missing(&self) -> u64 {
        self.in_reach - self.routed
    }

    /// Mean metric / distance over routed pairs (1 when none).
    pub fn stretch_mean(&self) -> f64 {
        if self.routed == 0 {
            1.0
        } else {
            self.stretch_sum / self.routed as f64
        }
    }

    /// Every pair in reach has a route, every route is right and as short as can be.
    pub fn is_converged(&self) -> bool {
        self.missing() == 0 && self.wrong == 0 && self.exact == self.routed
    }

    fn fault(&mut self, what: impl FnOnce() -> String) {
        if self.first_fault.is_none() {
            self.first_fault = Some(what());
        }
    }
}

impl Net {
    /// The routes of the live nodes among `sources` to every other node (a killed node is
    /// unreachable: a route to it is wrong).
    pub fn survey(&self, sources: impl IntoIterator<Item = usize>) -> Survey {
        let mut survey = Survey::default();
        let adjacent = self.live_adjacency();
        for src in sources.into_iter().filter(|&s| self.is_alive(s)) {
            let dist = distances(&adjacent, src);
            for (dst, hops) in dist.into_iter().enumerate() {
                if dst == src {
                    continue;
                }
                survey.pairs += 1;
                let route = self.route(src, dst);
                let Some(hops) = hops else {
                    if let Some(route) = route {
                        survey.wrong += 1;
                        survey.fault(|| format!("{src} routes to unreachable {dst}: {route:?}"));
                    }
                    continue;
                };
                survey.connected += 1;
                let in_reach = usize::from(hops) <= MAX_LABEL_LEN;
                survey.in_reach += u64::from(in_reach);
                let Some(route) = route else {
                    if in_reach {
                        survey.fault(|| format!("{src} has no route to {dst} ({hops} hops)"));
                    }
                    continue;
                };
                let leads = self.walk(src, &route.label) == Some(dst);
                if !leads || usize::from(route.metric) != route.label.len() {
                    survey.wrong += 1;
                    survey.fault(|| format!("{src} -> {dst}: {route:?} does not lead there"));
                    continue;
                }
                survey.routed += 1;
                let stretch = f64::from(route.metric) / f64::from(hops);
                survey.stretch_sum += stretch;
                survey.stretch_max = survey.stretch_max.max(stretch);
                if route.metric == hops {
                    survey.exact += 1;
                } else {
                    survey.fault(|| {
                        format!("{src} -> {dst}: metric {} for {hops} hops", route.metric)
                    });
                }
            }
        }
        survey
    }

    /// Asserts that every live node routes to every live node in label reach over a shortest
    /// path whose label walks there, and to nothing else; and that no loop was ever installed.
    ///
    /// # Panics
    /// Naming the first route that is not so.
    pub fn assert_converged(&self) {
        let survey = self.survey(0..self.len());
        assert!(
            survey.is_converged(),
            "not converged at {:?}: {} missing, {} wrong, {} of {} exact; first: {:?}",
            self.now(),
            survey.missing(),
            survey.wrong,
            survey.exact,
            survey.routed,
            survey.first_fault
        );
        self.assert_loop_free();
    }

    /// Asserts that no route any router installed so far looped or led elsewhere.
    ///
    /// # Panics
    /// Naming the first fault.
    pub fn assert_loop_free(&self) {
        let s = self.stats;
        assert!(
            s.loops == 0 && s.label_loops == 0 && s.misdirected == 0,
            "{} next-hop loops, {} label loops, {} misdirected labels; first: {:?}",
            s.loops,
            s.label_loops,
            s.misdirected,
            self.first_fault
        );
    }

    /// The longest shortest path over links carrying traffic (`None` if some node cannot
    /// be reached, a killed one included).
    pub fn diameter(&self) -> Option<u16> {
        diameter(&self.live_adjacency())
    }

    /// Where `label` leads from `src` over links carrying traffic, if every slot names one.
    pub fn walk(&self, src: usize, label: &Label) -> Option<usize> {
        label
            .as_slice()
            .iter()
            .try_fold(src, |at, &slot| self.neighbour(at, Slot::new(slot)?))
    }

    /// Each node's neighbours over links carrying traffic.
    pub fn live_adjacency(&self) -> Vec<Vec<usize>> {
        (0..self.len())
            .map(|n| self.neighbours(n).collect())
            .collect()
    }
}
