//! What `route list` shows: every destination's route, its age and the alternates kept.

use std::time::Duration;

use super::table::{Destination, Route};
use super::{InstalledRoute, NodeKey, RouteSource, Router};

/// A destination's route as `route list` shows it.
#[derive(Debug, Clone, Copy)]
pub struct RouteInfo<'a> {
    /// The destination.
    pub key: &'a NodeKey,
    /// The route traffic takes.
    pub route: InstalledRoute,
    /// The origin's seqno the route carries (`None` for a return path).
    pub seqno: Option<u32>,
    /// Time since the route was last refreshed.
    pub age: Duration,
    dest: &'a Destination,
    now: Duration,
}

/// A route kept besides the selected one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Alternate {
    /// The route.
    pub route: InstalledRoute,
    /// The origin's seqno it carries.
    pub seqno: u32,
    /// Time since it was last refreshed.
    pub age: Duration,
    /// Whether it may be selected now (unfeasible ones wait for a newer seqno).
    pub feasible: bool,
}

impl<'a> RouteInfo<'a> {
    /// The other routes kept for this destination, each through a different first hop.
    pub fn alternates(&self) -> impl Iterator<Item = Alternate> + 'a {
        let (dest, now) = (self.dest, self.now);
        dest.heard()
            .filter(move |r| Some(r.slot) != dest.selected)
            .map(move |r| Alternate {
                route: installed(r),
                seqno: r.seqno,
                age: now.saturating_sub(r.refreshed),
                feasible: dest.is_feasible(r),
            })
    }
}

fn installed(r: &Route) -> InstalledRoute {
    InstalledRoute {
        label: r.label,
        metric: r.metric,
        next_hop: r.slot,
        source: RouteSource::Announced,
    }
}

impl Router {
    /// The route traffic to `key` takes now.
    pub fn route(&self, key: &NodeKey) -> Option<InstalledRoute> {
        self.table.at(self.table.find(key)?)?.effective()
    }

    /// Every reachable destination with its selected route and alternates, for `route list`.
    pub fn routes(&self, now: Duration) -> impl Iterator<Item = RouteInfo<'_>> {
        self.table.iter().filter_map(move |(_, dest)| {
            let route = dest.effective()?;
            let (seqno, refreshed) = match (dest.selected_route(), dest.return_path) {
                (Some(r), _) => (Some(r.seqno), r.refreshed),
                (None, Some(back)) => (None, back.refreshed),
                (None, None) => return None,
            };
            Some(RouteInfo {
                key: &dest.key,
                route,
                seqno,
                age: now.saturating_sub(refreshed),
                dest,
                now,
            })
        })
    }

    /// Destinations tracked (reachable or remembered for feasibility).
    pub fn destinations(&self) -> usize {
        self.table.len()
    }

    /// Heap bytes the route table holds: what a node pays in memory per destination.
    pub fn table_bytes(&self) -> usize {
        self.table.heap_bytes()
    }
}
