//! Routers on simulated networks: convergence to shortest paths, loop freedom at every step,
//! failover and retraction.

use super::super::sim::{Action, Net};
use super::*;

const SETTLE: Duration = Duration::from_secs(30);

fn chain(n: usize, seed: u64) -> Net {
    let mut net = Net::new(n, seed);
    for i in 1..n {
        net.connect(i - 1, i);
    }
    net
}

fn ring(n: usize, seed: u64) -> Net {
    let mut net = chain(n, seed);
    net.connect(n - 1, 0);
    net
}

/// A random connected graph (random tree plus `extra` edges) of diameter at most 9, so that
/// every one-hop improvement passes the 10 % hysteresis.
fn random_graph(n: usize, extra: usize, seed: u64) -> Net {
    (seed..)
        .map(|seed| {
            let mut net = Net::new(n, seed);
            let mut edges = Vec::new();
            for i in 1..n {
                edges.push((net.rng().below(i), i));
            }
            while edges.len() < n - 1 + extra {
                let (a, b) = (net.rng().below(n), net.rng().below(n));
                if a != b && !edges.contains(&(a, b)) && !edges.contains(&(b, a)) {
                    edges.push((a, b));
                }
            }
            for (a, b) in edges {
                net.connect(a, b);
            }
            net
        })
        .find(|net| net.diameter().is_some_and(|d| d <= 9))
        .unwrap()
}

#[test]
fn a_chain_converges_to_full_labels() {
    let mut net = chain(12, 1);
    net.run_for(SETTLE);
    net.assert_converged();
    assert_eq!(net.route(0, 11).unwrap().label.len(), 11);
}

#[test]
fn a_ring_converges_to_shortest_paths() {
    let mut net = ring(18, 2);
    net.run_for(SETTLE);
    net.assert_converged();
}

#[test]
fn random_graphs_converge_to_shortest_paths_without_loops() {
    for seed in [3, 40, 500] {
        let mut net = random_graph(24, 12, seed);
        net.run_for(SETTLE);
        net.assert_converged();
    }
}

#[test]
fn lossy_links_converge_without_loops() {
    let mut net = random_graph(20, 10, 7);
    net.set_loss(0.05);
    net.run_for(SETTLE * 2);
    net.assert_converged();
}

#[test]
fn a_closed_link_fails_over_at_once_to_the_kept_alternate() {
    let mut net = ring(4, 4);
    net.run_for(SETTLE);
    let before = net.route(0, 2).unwrap();
    let (via_1, via_3) = (net.slot_to(0, 1).unwrap(), net.slot_to(0, 3).unwrap());
    let (dead, alive) = if before.next_hop == via_1 {
        (1, via_3)
    } else {
        (3, via_1)
    };
    net.apply(Action::Close(0, dead));
    let after = net.route(0, 2).unwrap();
    assert_eq!(after.next_hop, alive);
    assert_eq!(after.metric, 2);
    assert_eq!(net.walk(0, &after.label), Some(2));
    net.assert_loop_free();
}

#[test]
fn a_silent_link_is_found_dead_and_failed_over_in_the_same_instant() {
    let mut net = ring(4, 5);
    net.record_events = true;
    net.run_for(SETTLE);
    let before = net.route(0, 2).unwrap();
    let first = net.neighbour(0, before.next_hop).unwrap();
    let cut_at = net.now();
    net.apply(Action::Cut(0, first));
    net.run_for(Duration::from_secs(5));
    let dead_at = net
        .events
        .iter()
        .find(|(_, node, e)| *node == 0 && matches!(e, RouteEvent::LinkDead { .. }))
        .map(|(at, _, _)| *at)
        .expect("link found dead");
    assert!(dead_at - cut_at <= LINK_DEAD_AFTER + HELLO_INTERVAL);
    let switched = net.events.iter().any(|(at, node, e)| {
        *at == dead_at
            && *node == 0
            && matches!(e, RouteEvent::Changed { key, .. } if *key == net.key(2))
    });
    assert!(switched, "route to 2 changed when the link died");
    assert_eq!(net.walk(0, &net.route(0, 2).unwrap().label), Some(2));
    net.assert_loop_free();
}

#[test]
fn a_vanished_node_is_retracted_everywhere_quickly() {
    let mut net = random_graph(20, 8, 6);
    net.run_for(SETTLE);
    let gone = 5;
    let neighbours: Vec<usize> = (0..20)
        .filter(|&n| n != gone && net.slot_to(gone, n).is_some())
        .collect();
    for n in neighbours {
        net.apply(Action::Close(gone, n));
    }
    net.run_for(Duration::from_secs(2));
    for node in (0..20).filter(|&n| n != gone) {
        assert_eq!(
            net.route(node, gone),
            None,
            "node {node} still routes to the vanished node"
        );
    }
    net.run_for(SETTLE);
    net.assert_converged();
}

#[test]
fn after_failures_routes_return_to_shortest_paths() {
    let mut net = random_graph(24, 14, 8);
    net.run_for(SETTLE);
    let mut cuts = 0;
    for a in 0..24 {
        for b in a + 1..24 {
            if cuts < 4 && net.slot_to(a, b).is_some() && net.rng().chance(0.2) {
                net.apply(Action::Cut(a, b));
                cuts += 1;
            }
        }
    }
    net.run_for(SETTLE);
    net.assert_converged();
}

#[test]
fn churn_never_forms_a_loop() {
    let mut net = random_graph(16, 10, 9);
    net.set_loss(0.02);
    for round in 0..12 {
        net.run_for(Duration::from_millis(700));
        let (a, b) = (net.rng().below(16), net.rng().below(16));
        match (a != b, net.slot_to(a, b)) {
            (true, Some(_)) if round % 3 != 0 => net.apply(Action::Close(a, b)),
            (true, None) => net.connect(a, b),
            _ => {}
        }
    }
    net.set_loss(0.0);
    net.run_for(SETTLE * 2);
    net.assert_converged();
}

#[test]
fn a_converged_network_sends_only_hellos_and_periodic_tables() {
    let mut net = random_graph(24, 12, 10);
    net.run_for(SETTLE);
    let links = (0..24)
        .map(|n| net.router(n).links().count())
        .sum::<usize>() as u64;
    let before = net.stats.messages;
    let window = FULL_UPDATE_INTERVAL * 2;
    net.run_for(window);
    // Per link direction and 8 s: one full table (one UPDATE here) and a HELLO in each of
    // the 7 idle seconds after it; one more for where the window cuts the cycle.
    let per_direction = 2 * FULL_UPDATE_INTERVAL.as_secs() + 1;
    assert!(
        net.stats.messages - before <= links * per_direction,
        "{} messages on {links} link ends in {window:?}",
        net.stats.messages - before
    );
    assert!(net.stats.last_route_event < Some(net.now() - window));
    net.assert_converged();
}
