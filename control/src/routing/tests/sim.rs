//! The measured scenario on small graphs of every family, and what the simulator itself
//! promises: the label limit shows where it should, and a seed names one run.

use super::super::sim::{Action, Net, Report, Scenario, Topology};
use super::*;

/// Small graphs of every family, each with a diameter of at most 11, where a one-hop shorter
/// route always passes the 10 % hysteresis (or, on the chain, is the only route).
const SMALL: [(Topology, usize); 5] = [
    (Topology::Chain, 12),
    (Topology::Ring, 20),
    (Topology::Grid, 25),
    (Topology::Random, 40),
    (Topology::Internet, 50),
];

fn small(topology: Topology, n: usize, seed: u64) -> Report {
    let mut scenario = Scenario::new(topology, n, seed);
    scenario.probes = 40;
    scenario.probe_interval = Duration::from_millis(20);
    scenario.run()
}

#[test]
fn every_family_converges_idles_reroutes_and_never_loops() {
    for (topology, n) in SMALL {
        let report = small(topology, n, 1);
        let what = format!("{topology} {n}: {:?}", report.cells());
        assert_eq!(report.faults(), 0, "{what}: {:?}", report.first_fault);
        let cold = &report.cold;
        assert!(cold.converged.is_some(), "{what}");
        assert!(
            cold.survey.is_converged(),
            "{what}: {:?}",
            cold.survey.first_fault
        );
        assert_eq!(cold.survey.in_reach, cold.survey.connected, "{what}");
        assert_eq!(report.idle.route_events, 0, "{what}");
        for failover in [&report.link_cut, &report.node_kill] {
            let failover = failover.as_ref().expect("a failure was measured");
            let outage = failover.outage;
            assert!(outage.affected > 0, "{what}: the failure hit no probe");
            assert_eq!(outage.stuck, 0, "{what}: {failover:?}");
            assert!(failover.settled.is_some(), "{what}");
            let (_, last) = failover.detected.expect("the failure was found");
            assert!(last <= LINK_DEAD_AFTER, "{what}");
            let after = &failover.survey;
            assert!(after.is_converged(), "{what}: {:?}", after.first_fault);
        }
        let back = report.link_back.as_ref().expect("the link came back");
        assert!(back.settled.is_some(), "{what}");
        assert_eq!(
            back.lost, 0,
            "{what}: moving to the shorter path lost probes"
        );
        assert!(
            back.survey.is_converged(),
            "{what}: {:?}",
            back.survey.first_fault
        );
    }
}

#[test]
fn where_an_alternate_exists_traffic_moves_when_the_failure_is_found() {
    for (topology, n) in &SMALL[1..] {
        let report = small(*topology, *n, 2);
        for failover in [&report.link_cut, &report.node_kill].into_iter().flatten() {
            let ((_, found), outage) = (failover.detected.unwrap(), failover.outage);
            let max = outage.max.unwrap_or_default();
            assert!(
                max <= found + Duration::from_millis(500),
                "{topology} {n}: {} rerouted {max:?} after, found at {found:?}",
                failover.failed
            );
        }
    }
}

#[test]
fn a_chain_longer_than_a_label_routes_exactly_the_nodes_within_fourteen_hops() {
    let report = small(Topology::Chain, 20, 3);
    let survey = &report.cold.survey;
    assert!(survey.is_converged(), "{:?}", survey.first_fault);
    // Ordered pairs at distance d: 2 (20 − d); in reach for d ≤ 14.
    let in_reach: u64 = (1..=14).map(|d| 2 * (20 - d)).sum();
    assert_eq!(survey.in_reach, in_reach);
    assert_eq!(survey.routed, in_reach);
    assert!(survey.connected > in_reach);
    assert_eq!(report.faults(), 0);
}

#[test]
fn the_same_seed_runs_the_same_run() {
    let (a, b) = (
        small(Topology::Random, 30, 4),
        small(Topology::Random, 30, 4),
    );
    assert_eq!(a.cells(), b.cells());
    assert_eq!(a.stats.messages, b.stats.messages);
    let c = small(Topology::Random, 30, 5);
    assert_ne!(a.stats.messages, c.stats.messages);
}

#[test]
fn scheduled_failures_happen_at_their_time() {
    let mut net = Net::new(5, 6);
    for i in 1..5 {
        net.connect(i - 1, i);
    }
    net.run_for(Duration::from_secs(10));
    let at = net.now() + Duration::from_secs(2);
    net.schedule(at, Action::Kill(2));
    net.run_until(at - Duration::from_millis(1));
    assert!(net.is_alive(2) && net.route(0, 4).is_some());
    net.run_for(Duration::from_millis(2));
    assert!(!net.is_alive(2));
    net.run_for(LINK_DEAD_AFTER + HELLO_INTERVAL);
    let (first, last) = net
        .stats
        .links_found_dead
        .expect("neighbours found it dead");
    assert!(first > at && last <= at + LINK_DEAD_AFTER);
    assert_eq!(net.route(0, 4), None);
    assert_eq!(net.route(0, 2), None);
    net.assert_loop_free();
}

#[test]
fn lossy_links_lose_about_their_rate() {
    let mut net = Net::new(2, 7);
    net.set_loss(0.3);
    net.connect(0, 1);
    net.run_for(Duration::from_secs(60));
    let rate = net.stats.lost as f64 / net.stats.messages as f64;
    assert!((0.2..0.4).contains(&rate), "{rate}");
    net.set_link_loss(0, 1, 0.0);
    net.set_link_loss(1, 0, 0.0);
    let lost = net.stats.lost;
    net.run_for(Duration::from_secs(10));
    assert_eq!(net.stats.lost, lost);
}

#[test]
fn a_link_given_up_on_comes_back_when_its_peer_is_heard_again() {
    let mut net = Net::new(3, 8);
    net.connect(0, 1);
    net.connect(1, 2);
    net.run_for(Duration::from_secs(10));
    // Node 0 hears nothing from 1 for 5 s and gives the link up; 1 still hears 0 until
    // then, and keeps sending.
    net.set_link_loss(1, 0, 1.0);
    net.run_for(Duration::from_secs(5));
    assert_eq!(net.stats.link_deaths, 1);
    assert_eq!(net.router(0).links().count(), 0);
    net.set_link_loss(1, 0, 0.0);
    // 1's next HELLO, a link delay later.
    net.run_for(HELLO_INTERVAL + Duration::from_millis(50));
    assert_eq!(net.stats.relinks, 1);
    net.run_for(Duration::from_secs(10));
    assert_eq!(net.router(0).links().count(), 1);
    assert_eq!(net.router(1).links().count(), 2);
    net.assert_converged();
}
