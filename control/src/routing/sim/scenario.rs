//! The measured run: a graph comes up cold and converges; its idle traffic and table sizes
//! are measured; then the link the most probe pairs cross is cut, and brought back once the
//! network has settled; then the node the most pairs pass through is killed. A probe stream
//! measures what each change costs.

use std::collections::BTreeMap;
use std::time::Duration;

use super::super::table::DESTINATION_BYTES;
use super::super::{FULL_UPDATE_INTERVAL, MAX_LABEL_LEN};
use super::report::{Cold, Failover, Idle, Report, Restore};
use super::topology::{diameter, distances};
use super::{Action, Graph, Net, Probes, SimRng, Topology};

/// A phase ends once no route has changed for this long: past a full-update period, so a
/// lost update has had its repeat.
pub const QUIET: Duration = Duration::from_secs(10);
/// Idle traffic is measured over this long: whole full-update periods.
pub const IDLE_WINDOW: Duration = Duration::from_secs(3 * FULL_UPDATE_INTERVAL.as_secs());
/// How long after the start of a failure phase the failure happens.
const FAIL_AFTER: Duration = Duration::from_secs(1);
/// Step of the clock while no probes run.
const STEP: Duration = Duration::from_millis(100);

/// A graph's cost, estimated without running it.
#[derive(Debug, Clone, Copy)]
pub struct Projection {
    /// Route-table bytes of all nodes together, at least.
    pub table_bytes: u64,
    /// Share of connected pairs within label reach.
    pub in_reach: f64,
    /// Longest shortest path (`None`: not connected).
    pub diameter: Option<u16>,
}

/// What to simulate.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// Graph family.
    pub topology: Topology,
    /// Nodes.
    pub n: usize,
    /// Seed of every random choice (graph, keys, delays, losses, probes).
    pub seed: u64,
    /// Loss rate of every link.
    pub loss: f64,
    /// Probe pairs during failures.
    pub probes: usize,
    /// One probe per pair this often.
    pub probe_interval: Duration,
    /// Longest a phase may take to fall quiet.
    pub horizon: Duration,
    /// Sources whose routes are surveyed (all nodes when there are fewer).
    pub survey_sources: usize,
}

impl Scenario {
    /// `n` nodes of `topology` with the defaults: no loss, 100 probe pairs every 10 ms, phases
    /// of at most 3 minutes, 300 surveyed sources.
    pub fn new(topology: Topology, n: usize, seed: u64) -> Self {
        Self {
            topology,
            n,
            seed,
            loss: 0.0,
            probes: 100,
            probe_interval: Duration::from_millis(10),
            horizon: Duration::from_secs(180),
            survey_sources: 300,
        }
    }

    /// The graph this scenario runs on.
    pub fn graph(&self) -> Graph {
        self.topology.build(self.n, &mut SimRng::new(self.seed))
    }

    /// What a graph will cost before anything runs, from the distances of a sample of 50
    /// nodes: every node learns the nodes within label reach.
    pub fn projection(&self, graph: &Graph) -> Projection {
        let adjacent = graph.adjacency();
        let sample: Vec<usize> = (0..graph.n).step_by(graph.n.div_ceil(50).max(1)).collect();
        let (mut known, mut others) = (0u64, 0u64);
        for &src in &sample {
            for d in distances(&adjacent, src)
                .into_iter()
                .flatten()
                .filter(|&d| d > 0)
            {
                others += 1;
                known += u64::from(usize::from(d) <= MAX_LABEL_LEN);
            }
        }
        let per_node = known as f64 / sample.len() as f64;
        Projection {
            table_bytes: (per_node * graph.n as f64) as u64 * DESTINATION_BYTES as u64,
            in_reach: known as f64 / others.max(1) as f64,
            diameter: diameter(&adjacent),
        }
    }

    /// Runs it.
    pub fn run(&self) -> Report {
        let graph = self.graph();
        let mut net = Net::new(self.n, self.seed ^ 0x5eed);
        let mut rng = SimRng::new(self.seed ^ 0x0b5e);
        net.set_loss(self.loss);
        for &(a, b) in &graph.edges {
            net.connect(a, b);
        }
        let sources = self.sources(&mut rng);
        let diameter = diameter(&graph.adjacency());
        let converged = self.settle(&mut net, super::START, None);
        let cold = Cold {
            converged,
            survey: net.survey(sources.iter().copied()),
        };
        let idle = measure_idle(&mut net);
        let live: Vec<usize> = (0..self.n).collect();
        let table: Vec<usize> = live.iter().map(|&i| net.router(i).table_bytes()).collect();
        let destinations: usize = live.iter().map(|&i| net.router(i).destinations()).sum();

        let mut probes = Probes::pick(&net, self.probes, &mut rng);
        let cut = probes.busiest_link(&net);
        let link_cut = cut.map(|(a, b)| {
            let failover = self.fail(&mut net, &mut probes, Action::Cut(a, b), &sources);
            Failover {
                failed: format!("link {a}—{b}"),
                ..failover
            }
        });
        let link_back = cut.map(|(a, b)| {
            let mut probes = Probes::pick(&net, self.probes, &mut rng);
            let since = net.now();
            net.apply(Action::Connect(a, b));
            let settled = self.settle(&mut net, since, Some(&mut probes));
            Restore {
                settled,
                lost: probes.pairs().iter().map(|p| p.lost).sum(),
                survey: net.survey(sources.iter().copied()),
            }
        });
        let mut probes = Probes::pick(&net, self.probes, &mut rng);
        let node_kill = probes.busiest_node(&net).map(|node| {
            probes.retain(|p| p.src != node && p.dst != node);
            let failover = self.fail(&mut net, &mut probes, Action::Kill(node), &sources);
            Failover {
                failed: format!("node {node} ({} links)", graph.degree(node)),
                ..failover
            }
        });
        Report {
            topology: self.topology,
            n: self.n,
            links: graph.edges.len(),
            diameter,
            cold,
            idle,
            table_bytes_mean: table.iter().sum::<usize>() / self.n.max(1),
            table_bytes_max: table.iter().copied().max().unwrap_or(0),
            destinations_mean: destinations as f64 / self.n.max(1) as f64,
            link_cut,
            link_back,
            node_kill,
            stats: net.stats,
            first_fault: net.first_fault.clone(),
        }
    }

    /// All nodes, or a random sample of [`Scenario::survey_sources`] of them.
    fn sources(&self, rng: &mut SimRng) -> Vec<usize> {
        let mut all: Vec<usize> = (0..self.n).collect();
        if self.n <= self.survey_sources {
            return all;
        }
        for i in 0..self.survey_sources {
            let j = i + rng.below(self.n - i);
            all.swap(i, j);
        }
        all.truncate(self.survey_sources);
        all.sort_unstable();
        all
    }

    /// Runs until no route changed for [`QUIET`] after `since`, sending probes if given;
    /// returns when the last change came after `since` (zero if none did), or `None` if the
    /// network was still changing at the horizon.
    fn settle(
        &self,
        net: &mut Net,
        since: Duration,
        mut probes: Option<&mut Probes>,
    ) -> Option<Duration> {
        let step = probes.as_ref().map_or(STEP, |_| self.probe_interval);
        loop {
            net.run_for(step);
            if let Some(probes) = probes.as_deref_mut() {
                probes.send(net);
            }
            let last = net.stats.last_route_event.filter(|&at| at >= since);
            if net.now() >= last.unwrap_or(since) + QUIET {
                return Some(last.map_or(Duration::ZERO, |at| at - since));
            }
            if net.now() >= since + self.horizon {
                return None;
            }
        }
    }

    /// Applies `failure` a moment from now while `probes` run, and measures the outage.
    fn fail(
        &self,
        net: &mut Net,
        probes: &mut Probes,
        failure: Action,
        sources: &[usize],
    ) -> Failover {
        let at = net.now() + FAIL_AFTER;
        net.schedule(at, failure);
        net.stats.links_found_dead = None;
        let settled = self.settle(net, at, Some(probes));
        let adjacent = net.live_adjacency();
        let mut reach = BTreeMap::new();
        for pair in probes.pairs().iter().filter(|p| p.lost > 0) {
            reach
                .entry(pair.src)
                .or_insert_with(|| distances(&adjacent, pair.src));
        }
        let outage = probes.outage(at, self.probe_interval, |pair| {
            reach[&pair.src][pair.dst].is_some_and(|d| usize::from(d) <= MAX_LABEL_LEN)
        });
        Failover {
            failed: String::new(),
            detected: net
                .stats
                .links_found_dead
                .map(|(first, last)| (first - at, last - at)),
            outage,
            settled,
            survey: net.survey(sources.iter().copied()),
        }
    }
}

/// Bytes and messages per link and second over [`IDLE_WINDOW`], and the route changes in it.
fn measure_idle(net: &mut Net) -> Idle {
    let before = net.stats;
    net.run_for(IDLE_WINDOW);
    let after = net.stats;
    let per_link_s = (net.live_links().max(1) as f64) * IDLE_WINDOW.as_secs_f64();
    Idle {
        wire_bytes: (after.wire_bytes - before.wire_bytes) as f64 / per_link_s,
        bytes: (after.bytes - before.bytes) as f64 / per_link_s,
        messages: (after.messages - before.messages) as f64 / per_link_s,
        route_events: after.route_events - before.route_events,
    }
}
