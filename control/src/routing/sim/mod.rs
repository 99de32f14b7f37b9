//! A deterministic simulator of the routing core: N real [`Router`]s in memory, joined by
//! links with a delay and a loss rate, on a virtual clock, with a schedule of failures, every
//! random choice from one seed (DESIGN §3 "Routing"). It is what the routing tests run on,
//! and what `rovy-sim` runs at scale.
//!
//! - [`Net`]: the network. It drives every router exactly as the control loop does (inputs,
//!   then `poll_transmit`, `poll_event`, `poll_timeout`) and checks every route a router
//!   installs or changes, at once: the next hops followed node by node must not come back
//!   round, and the label must lead over distinct nodes to the destination.
//! - [`Topology`]: chain, ring, grid, random and preferential-attachment graphs.
//! - [`Survey`]: the installed routes against BFS distances (coverage, stretch, faults).
//! - [`Probes`]: a packet stream between random pairs that follows the installed labels hop
//!   by hop, measuring what a failure costs.
//! - [`Scenario`]: the measured run (cold start, idle, a link cut and brought back, a node
//!   killed) and its [`Report`].
//!
//! [`Router`]: super::Router

mod check;
mod net;
mod probe;
mod report;
mod rng;
mod scenario;
mod topology;

pub use check::Survey;
pub use net::{Action, Net, NetStats, START};
pub use probe::{Outage, Pair, Probes, arrives};
pub use report::{Cold, Failover, Idle, Report, Restore};
pub use rng::SimRng;
pub use scenario::{IDLE_WINDOW, Projection, QUIET, Scenario};
pub use topology::{Graph, MAX_DEGREE, Topology, distances};
