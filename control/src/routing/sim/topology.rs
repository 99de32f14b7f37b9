//! Graphs to simulate: chain, ring, grid, random and an internet-like preferential-attachment
//! graph, as edge lists over nodes `0..n`.

use std::collections::HashSet;
use std::fmt;
use std::str::FromStr;

use super::SimRng;

/// Most links one node gets in a generated graph: below the 255 slots a router has, with room
/// for links that come up while a freed slot is still quarantined.
pub const MAX_DEGREE: usize = 240;

/// A family of graphs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Topology {
    /// `0 — 1 — … — n−1`: the longest paths, where the label length limit shows first.
    Chain,
    /// A chain closed into a cycle: two disjoint paths between any two nodes.
    Ring,
    /// A square grid, `⌈√n⌉` wide (the last row may be short): many equal-cost paths.
    Grid,
    /// A random tree plus as many random extra edges (mean degree about 4): short paths.
    Random,
    /// Barabási–Albert preferential attachment, two links per new node: a few hubs and many
    /// leaves, like the AS graph.
    Internet,
}

impl Topology {
    /// Every family, in the order reports list them.
    pub const ALL: [Topology; 5] = [
        Topology::Chain,
        Topology::Ring,
        Topology::Grid,
        Topology::Random,
        Topology::Internet,
    ];

    /// The name the command line uses.
    pub fn name(self) -> &'static str {
        match self {
            Topology::Chain => "chain",
            Topology::Ring => "ring",
            Topology::Grid => "grid",
            Topology::Random => "random",
            Topology::Internet => "internet",
        }
    }

    /// A connected graph of this family on `n ≥ 2` nodes, its random choices from `rng`.
    pub fn build(self, n: usize, rng: &mut SimRng) -> Graph {
        let mut graph = Graph::new(n);
        match self {
            Topology::Chain => (1..n).for_each(|i| graph.add(i - 1, i)),
            Topology::Ring => {
                (1..n).for_each(|i| graph.add(i - 1, i));
                graph.add(n - 1, 0);
            }
            Topology::Grid => {
                let width = n.isqrt() + usize::from(n.isqrt().pow(2) < n);
                for i in 0..n {
                    if (i + 1) % width != 0 && i + 1 < n {
                        graph.add(i, i + 1);
                    }
                    if i + width < n {
                        graph.add(i, i + width);
                    }
                }
            }
            Topology::Random => {
                for i in 1..n {
                    let j = rng.below(i);
                    graph.add(j, i);
                }
                let target = 2 * (n - 1);
                let mut tries = 0;
                while graph.edges.len() < target && tries < 100 * n {
                    tries += 1;
                    let (a, b) = (rng.below(n), rng.below(n));
                    graph.add(a, b);
                }
            }
            Topology::Internet => preferential_attachment(&mut graph, 2, rng),
        }
        graph
    }
}

/// Each new node links to `m` distinct earlier nodes picked with probability proportional to
/// their degree (drawn from the list of edge ends), starting from a clique of `m + 1`.
fn preferential_attachment(graph: &mut Graph, m: usize, rng: &mut SimRng) {
    let n = graph.n;
    let seed = (m + 1).min(n);
    for a in 0..seed {
        for b in a + 1..seed {
            graph.add(a, b);
        }
    }
    let mut ends: Vec<usize> = graph.edges.iter().flat_map(|&(a, b)| [a, b]).collect();
    for new in seed..n {
        let mut picked = Vec::with_capacity(m);
        let mut tries = 0;
        while picked.len() < m.min(new) && tries < 100 * m {
            tries += 1;
            let target = ends[rng.below(ends.len())];
            if !picked.contains(&target) && graph.degree[target] < MAX_DEGREE {
                picked.push(target);
            }
        }
        for target in picked {
            graph.add(new, target);
            ends.extend([new, target]);
        }
    }
}

impl fmt::Display for Topology {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Topology {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Topology::ALL
            .into_iter()
            .find(|t| t.name() == s)
            .ok_or_else(|| format!("unknown topology {s:?} (chain, ring, grid, random, internet)"))
    }
}

/// An undirected simple graph over `0..n`.
#[derive(Debug, Clone)]
pub struct Graph {
    /// Number of nodes.
    pub n: usize,
    /// Each edge once, in the order it was added.
    pub edges: Vec<(usize, usize)>,
    degree: Vec<usize>,
    seen: HashSet<(usize, usize)>,
}

impl Graph {
    /// `n` nodes, no edges.
    pub fn new(n: usize) -> Self {
        Self {
            n,
            edges: Vec::new(),
            degree: vec![0; n],
            seen: HashSet::new(),
        }
    }

    /// Adds the edge `a — b` unless it is a self-loop, already there, or an end has
    /// [`MAX_DEGREE`] links.
    pub fn add(&mut self, a: usize, b: usize) {
        let key = (a.min(b), a.max(b));
        if a == b || self.degree[a] >= MAX_DEGREE || self.degree[b] >= MAX_DEGREE {
            return;
        }
        if self.seen.insert(key) {
            self.edges.push(key);
            self.degree[a] += 1;
            self.degree[b] += 1;
        }
    }

    /// Links of node `i`.
    pub fn degree(&self, i: usize) -> usize {
        self.degree[i]
    }

    /// Each node's neighbours.
    pub fn adjacency(&self) -> Vec<Vec<usize>> {
        let mut adjacent = vec![Vec::new(); self.n];
        for &(a, b) in &self.edges {
            adjacent[a].push(b);
            adjacent[b].push(a);
        }
        adjacent
    }
}

/// The longest shortest path of a graph given by its adjacency (`None`: not connected).
pub fn diameter(adjacent: &[Vec<usize>]) -> Option<u16> {
    (0..adjacent.len())
        .map(|src| {
            distances(adjacent, src)
                .into_iter()
                .try_fold(0, |m, d| Some(m.max(d?)))
        })
        .try_fold(0, |m, d| Some(m.max(d?)))
}

/// Hop counts from `src` in a graph given by its adjacency (`None`: unreachable).
pub fn distances(adjacent: &[Vec<usize>], src: usize) -> Vec<Option<u16>> {
    let mut dist = vec![None; adjacent.len()];
    dist[src] = Some(0);
    let mut frontier = vec![src];
    let mut hops = 0;
    while !frontier.is_empty() {
        hops += 1;
        let mut next = Vec::new();
        for at in frontier {
            for &peer in &adjacent[at] {
                if dist[peer].is_none() {
                    dist[peer] = Some(hops);
                    next.push(peer);
                }
            }
        }
        frontier = next;
    }
    dist
}

#[cfg(test)]
mod tests {
    use super::*;

    fn connected(graph: &Graph) -> bool {
        distances(&graph.adjacency(), 0).iter().all(Option::is_some)
    }

    #[test]
    fn every_family_builds_connected_simple_graphs_within_the_degree_cap() {
        for topology in Topology::ALL {
            for n in [2, 3, 10, 17, 300] {
                let graph = topology.build(n, &mut SimRng::new(n as u64));
                assert!(connected(&graph), "{topology} {n}");
                assert!((0..n).all(|i| graph.degree(i) <= MAX_DEGREE));
                let distinct: HashSet<_> = graph.edges.iter().collect();
                assert_eq!(distinct.len(), graph.edges.len());
                assert!(graph.edges.iter().all(|&(a, b)| a < b && b < n));
            }
        }
    }

    #[test]
    fn shapes_have_their_edge_counts() {
        let mut rng = SimRng::new(3);
        assert_eq!(Topology::Chain.build(10, &mut rng).edges.len(), 9);
        assert_eq!(Topology::Ring.build(10, &mut rng).edges.len(), 10);
        // 4 × 4: 3 horizontal and 3 vertical links per row and column.
        assert_eq!(Topology::Grid.build(16, &mut rng).edges.len(), 24);
        assert_eq!(Topology::Random.build(100, &mut rng).edges.len(), 198);
        // A triangle, then two links for each of the other 97 nodes.
        assert_eq!(
            Topology::Internet.build(100, &mut rng).edges.len(),
            3 + 2 * 97
        );
    }

    #[test]
    fn preferential_attachment_grows_hubs() {
        let graph = Topology::Internet.build(2000, &mut SimRng::new(4));
        let max = (0..2000).map(|i| graph.degree(i)).max().unwrap();
        assert!(max >= 40, "largest degree {max}");
    }

    #[test]
    fn names_parse_back() {
        for topology in Topology::ALL {
            assert_eq!(topology.name().parse::<Topology>(), Ok(topology));
        }
        assert!("mesh".parse::<Topology>().is_err());
    }
}
