//! Peers added, removed and changed on a node in memory (link endpoint, workers' tables,
//! overlay), with real handshakes against other endpoints.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use rand::SeedableRng;
use rand::rngs::StdRng;
use rovy_dataplane::control_queue::bounded_queue;
use rovy_dataplane::counters::WorkerCounters;
use rovy_dataplane::link_addr::LinkAddr;
use rovy_dataplane::pipeline::Dataplane;
use rovy_dataplane::route::RoutingTable;
use rovy_dataplane::tables::Tables;

use super::*;
use crate::config::{Endpoint, IpPrefix};
use crate::daemon::overlay::{Overlay, upper_endpoint};
use crate::daemon::routes::TunRoutes;
use crate::daemon::routes::tests::Recorded;
use crate::keys::PresharedKey;
use crate::protocol::{EndpointConfig, HANDSHAKE_BUF_LEN, LinkEndpoint, Received, SLOT_REST};

const MTU: u16 = 1420;
const WALL: Duration = Duration::from_secs(1_700_000_000);

/// The node under test, as the control thread holds it.
struct Node {
    key: PrivateKey,
    book: PeerBook,
    links: LinkEndpoint,
    dataplane: Arc<Dataplane>,
    overlay: Overlay,
    /// The kernel routes into the TUN, when a test looks at them.
    routes: Option<TunRoutes>,
    rng: StdRng,
}

/// Another node, with a tunnel to ours.
struct Remote {
    key: PrivateKey,
    links: LinkEndpoint,
    addr: SocketAddr,
    tunnel: TunnelId,
}

const NODE_ADDR: SocketAddr = SocketAddr::new(IpAddr::V4(std::net::Ipv4Addr::new(10, 9, 0, 1)), 1);

impl Node {
    fn new(seed: u64) -> Node {
        let mut rng = StdRng::seed_from_u64(seed);
        let key = PrivateKey::generate(&mut rng);
        let links = LinkEndpoint::new(
            *key.as_bytes(),
            EndpointConfig::link(),
            Duration::ZERO,
            &mut rng,
        );
        let upper = upper_endpoint(*key.as_bytes(), Duration::ZERO);
        let tables = Tables::new(RoutingTable::new(), Vec::new(), Vec::new());
        let dataplane = Arc::new(Dataplane::new(
            links.index_table(),
            tables,
            usize::from(MTU),
        ));
        let (_, frames) = bounded_queue(8);
        let overlay = Overlay::new(
            frames,
            Arc::clone(&dataplane),
            Arc::new(WorkerCounters::default()),
            upper,
            key.as_bytes(),
            WALL.as_secs(),
            Duration::ZERO,
        );
        Node {
            key,
            book: PeerBook::default(),
            links,
            dataplane,
            overlay,
            routes: None,
            rng,
        }
    }

    fn update(&mut self, update: &PeerUpdate, now: Duration) -> Result<Applied, PeerError> {
        Peers {
            book: &mut self.book,
            links: &mut self.links,
            dataplane: &self.dataplane,
            overlay: Some(&mut self.overlay),
            routes: self.routes.as_mut(),
        }
        .update(update, &self.key, MTU, now)
    }

    /// Sets the peers to `specs`.
    fn set(&mut self, specs: &[PeerSpec], now: Duration) -> Applied {
        let update = PeerUpdate {
            peers: specs.to_vec(),
            ..PeerUpdate::default()
        };
        self.update(&update, now).unwrap()
    }

    fn slot(&self, remote: &Remote) -> TunnelId {
        self.book.slot_of(&remote.key.public_key()).unwrap()
    }

    /// What the node sends at `now`, as its control loop would.
    fn transmit(&mut self, now: Duration) -> Vec<(LinkAddr, Vec<u8>)> {
        self.links.sync_activity(&mut self.rng);
        self.links.handle_timeout(now, &mut self.rng);
        let mut out = [0u8; HANDSHAKE_BUF_LEN];
        let mut sent = Vec::new();
        while let Some(t) = self
            .links
            .poll_transmit(now, WALL + now, &mut self.rng, &mut out)
        {
            sent.push((t.dst, out[..t.len].to_vec()));
        }
        sent
    }

    fn receive(&mut self, now: Duration, from: SocketAddr, msg: &[u8]) -> Received {
        let mut packet = msg.to_vec();
        let mut out = [0u8; HANDSHAKE_BUF_LEN];
        self.links
            .handle_datagram(
                now,
                LinkAddr::Udp(from),
                &mut packet,
                false,
                &mut self.rng,
                &mut out,
            )
            .unwrap()
    }

    /// The local index of the node's current session with `remote`.
    fn session_index(&self, remote: &Remote) -> Option<u32> {
        let tunnel = self.links.tunnel(self.slot(remote))?;
        tunnel.sessions().current().map(|s| s.local_index())
    }

    fn routed(&self, ip: &str) -> Option<u16> {
        self.dataplane.tables().routes.lookup(ip.parse().unwrap())
    }
}

impl Remote {
    fn new(node: &mut Node, port: u16) -> Remote {
        let key = PrivateKey::generate(&mut node.rng);
        let mut links = LinkEndpoint::new(
            *key.as_bytes(),
            EndpointConfig::link(),
            Duration::ZERO,
            &mut node.rng,
        );
        let tunnel = links
            .add_tunnel(
                node.key.public_key().0,
                None,
                Some(LinkAddr::Udp(NODE_ADDR)),
                None,
            )
            .unwrap();
        Remote {
            key,
            links,
            addr: SocketAddr::from(([10, 9, 0, 2], port)),
            tunnel,
        }
    }

    fn spec(&self, kind: PeerKind, allowed: &[&str]) -> PeerSpec {
        PeerSpec {
            config: PeerConfig {
                public_key: self.key.public_key(),
                kind,
                endpoint: Some(Endpoint::Addr(self.addr)),
                allowed_ips: allowed.iter().map(|p| p.parse().unwrap()).collect(),
                preshared_key: None,
                persistent_keepalive: None,
            },
            resolved: Some(self.addr),
        }
    }

    /// Answers the node's initiation to this remote, one of what it `sent`, and sends data
    /// back, so the node's tunnel has a session it heard on.
    fn connect(&mut self, node: &mut Node, sent: &[(LinkAddr, Vec<u8>)], now: Duration) {
        let (_, init) = sent
            .iter()
            .find(|(dst, _)| *dst == LinkAddr::Udp(self.addr))
            .expect("the node dials a peer with an endpoint");
        let mut packet = init.clone();
        let mut out = [0u8; HANDSHAKE_BUF_LEN];
        let r = self
            .links
            .handle_datagram(
                now,
                LinkAddr::Udp(NODE_ADDR),
                &mut packet,
                false,
                &mut node.rng,
                &mut out,
            )
            .unwrap();
        let Received::HandshakeResponse { len, .. } = r else {
            panic!("{r:?}")
        };
        let received = node.receive(now, self.addr, &out[..len]);
        assert!(matches!(received, Received::HandshakeComplete { .. }));
        for (dst, msg) in node.transmit(now) {
            if dst == LinkAddr::Udp(self.addr) {
                let mut msg = msg;
                self.links
                    .handle_datagram(
                        now,
                        LinkAddr::Udp(NODE_ADDR),
                        &mut msg,
                        false,
                        &mut node.rng,
                        &mut out,
                    )
                    .unwrap();
            }
        }
        let mut buf = vec![0u8; rovy_dataplane::buf::buffer_len(1420)];
        let (range, _) = self
            .links
            .encapsulate(now, self.tunnel, &mut buf, 0, 1420, &mut node.rng)
            .unwrap();
        let keepalive = buf[range].to_vec();
        assert!(matches!(
            node.receive(now, self.addr, &keepalive),
            Received::Data { len: 0, .. }
        ));
    }
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

#[test]
fn configured_peers_share_one_slot_everywhere_and_those_with_an_endpoint_are_dialled() {
    let mut node = Node::new(1);
    let b = Remote::new(&mut node, 2);
    let w = Remote::new(&mut node, 3);
    let mut w_spec = w.spec(PeerKind::WireGuard, &["10.0.0.3/32"]);
    w_spec.config.endpoint = None;
    w_spec.resolved = None;
    let applied = node.set(&[b.spec(PeerKind::Rovy, &["10.0.0.2/32"]), w_spec], secs(1));
    assert_eq!(
        applied,
        Applied {
            added: 2,
            ..Applied::default()
        }
    );
    let (sb, sw) = (node.slot(&b), node.slot(&w));
    assert_eq!((sb, sw), (TunnelId(0), TunnelId(1)));
    let tables = node.dataplane.tables();
    for id in [sb, sw] {
        let tunnel = node.links.tunnel(id).unwrap();
        assert!(Arc::ptr_eq(
            tables.peer(id.0 as u16).unwrap(),
            tunnel.shared()
        ));
    }
    assert!(tables.is_rovy(0) && !tables.is_rovy(1));
    assert_eq!(node.routed("10.0.0.2"), Some(0));
    assert_eq!(node.routed("10.0.0.3"), Some(1));
    let b_address = b.key.public_key().address().unwrap();
    assert_eq!(node.routed(&b_address.to_string()), Some(0));
    let sent = node.transmit(secs(1));
    assert_eq!(sent.len(), 1, "only the peer with an endpoint is dialled");
    assert_eq!(sent[0].0, LinkAddr::Udp(b.addr));
}

#[test]
fn removing_a_peer_drops_its_sessions_and_timers_and_leaves_the_others_alone() {
    let mut node = Node::new(2);
    let mut b = Remote::new(&mut node, 2);
    let mut c = Remote::new(&mut node, 3);
    let (b_spec, c_spec) = (
        b.spec(PeerKind::Rovy, &["10.0.0.2/32"]),
        c.spec(PeerKind::WireGuard, &["10.0.0.3/32"]),
    );
    node.set(&[b_spec, c_spec.clone()], secs(1));
    let sent = node.transmit(secs(1));
    b.connect(&mut node, &sent, secs(1));
    c.connect(&mut node, &sent, secs(1));
    let b_slot = node.slot(&b);
    let b_index = node.session_index(&b).unwrap();
    let c_index = node.session_index(&c).unwrap();
    let c_shared = Arc::clone(node.links.tunnel(node.slot(&c)).unwrap().shared());
    let index = node.links.index_table();
    assert!(index.contains(b_index) && index.contains(c_index));

    let applied = node.set(&[c_spec], secs(2));
    assert_eq!(applied.removed, 1);
    assert!(!index.contains(b_index), "data for b's session is refused");
    assert!(node.links.tunnel(b_slot).is_none());
    assert!(node.dataplane.tables().peer(b_slot.0 as u16).is_none());
    assert_eq!(node.routed("10.0.0.2"), None);
    assert!(index.contains(c_index), "c's session is untouched");
    assert_eq!(node.session_index(&c), Some(c_index));
    assert!(Arc::ptr_eq(
        node.dataplane
            .tables()
            .peer(node.slot(&c).0 as u16)
            .unwrap(),
        &c_shared
    ));
    assert_eq!(node.routed("10.0.0.3"), Some(node.slot(&c).0 as u16));
    // Minutes of timers: keepalives and rekeys for c, nothing ever for b.
    for t in 3..400 {
        for (dst, _) in node.transmit(secs(t)) {
            assert_ne!(dst, LinkAddr::Udp(b.addr), "at {t} s");
        }
    }
}

#[test]
fn allowed_ips_listed_in_another_order_are_no_change() {
    let mut node = Node::new(9);
    let b = Remote::new(&mut node, 2);
    let spec = b.spec(
        PeerKind::WireGuard,
        &["10.0.0.2/32", "10.8.0.0/16", "fd00::/64"],
    );
    node.set(std::slice::from_ref(&spec), secs(1));
    let mut reordered = spec.clone();
    reordered.config.allowed_ips.reverse();
    assert_eq!(node.set(&[reordered], secs(2)), Applied::default());
    let mut fewer = spec;
    fewer.config.allowed_ips.pop();
    let applied = node.set(&[fewer], secs(3));
    assert_eq!(applied.changed, 1, "a prefix gone is a change");
    assert_eq!(node.routed("fd00::1"), None);
}

#[test]
fn a_removed_peers_slot_rests_before_another_peer_gets_it() {
    let mut node = Node::new(3);
    let b = Remote::new(&mut node, 2);
    let c = Remote::new(&mut node, 3);
    let d = Remote::new(&mut node, 4);
    let e = Remote::new(&mut node, 5);
    let spec = |r: &Remote| r.spec(PeerKind::Rovy, &[]);
    node.set(&[spec(&b), spec(&c)], secs(1));
    assert_eq!(node.slot(&b), TunnelId(0));
    node.set(&[spec(&c), spec(&d)], secs(1));
    assert_eq!(node.slot(&d), TunnelId(2), "b's slot is resting");
    node.transmit(secs(1) + SLOT_REST);
    node.set(&[spec(&c), spec(&d), spec(&e)], secs(1) + SLOT_REST);
    assert_eq!(node.slot(&e), TunnelId(0), "rested, it is given again");
    let tables = node.dataplane.tables();
    assert!(Arc::ptr_eq(
        tables.peer(0).unwrap(),
        node.links.tunnel(TunnelId(0)).unwrap().shared()
    ));
}

#[test]
fn a_changed_peer_keeps_its_session_and_an_unchanged_one_is_not_touched() {
    let mut node = Node::new(4);
    let mut b = Remote::new(&mut node, 2);
    let mut c = Remote::new(&mut node, 3);
    let (b_spec, c_spec) = (
        b.spec(PeerKind::Rovy, &["10.0.0.2/32"]),
        c.spec(PeerKind::Rovy, &["10.0.0.3/32"]),
    );
    node.set(&[b_spec.clone(), c_spec.clone()], secs(1));
    let sent = node.transmit(secs(1));
    b.connect(&mut node, &sent, secs(1));
    c.connect(&mut node, &sent, secs(1));
    let (b_index, c_index) = (node.session_index(&b), node.session_index(&c));

    let mut changed = b_spec.clone();
    changed.config.allowed_ips = vec!["10.0.1.0/24".parse::<IpPrefix>().unwrap()];
    changed.config.persistent_keepalive = Some(secs(5));
    changed.config.preshared_key = Some(PresharedKey::from_bytes([7; 32]));
    let applied = node.set(&[changed.clone(), c_spec.clone()], secs(2));
    assert_eq!(
        applied,
        Applied {
            changed: 1,
            ..Applied::default()
        }
    );
    assert_eq!(node.session_index(&b), b_index, "b's session stays");
    assert_eq!(node.session_index(&c), c_index);
    assert_eq!(node.routed("10.0.0.2"), None);
    assert_eq!(node.routed("10.0.1.77"), Some(node.slot(&b).0 as u16));
    assert_eq!(node.book.get(node.slot(&b)), Some(&changed));
    let keepalive_at = (2..8).find(|&t| {
        node.transmit(secs(t))
            .iter()
            .any(|(dst, msg)| *dst == LinkAddr::Udp(b.addr) && msg.len() == 32)
    });
    assert_eq!(
        keepalive_at,
        Some(7),
        "persistent keepalive every 5 s from 2 s"
    );

    assert!(node.set(&[changed, c_spec], secs(8)) == Applied::default());
}

#[test]
fn a_new_endpoint_is_used_at_once_and_dialled_when_idle() {
    let mut node = Node::new(5);
    let b = Remote::new(&mut node, 2);
    let mut spec = b.spec(PeerKind::Rovy, &[]);
    spec.config.endpoint = None;
    spec.resolved = None;
    node.set(std::slice::from_ref(&spec), secs(1));
    assert!(node.transmit(secs(1)).is_empty(), "nowhere to dial");
    let moved = SocketAddr::from(([10, 9, 0, 7], 7));
    spec.config.endpoint = Some(Endpoint::Addr(moved));
    spec.resolved = Some(moved);
    assert_eq!(node.set(&[spec.clone()], secs(2)).changed, 1);
    let sent = node.transmit(secs(2));
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].0, LinkAddr::Udp(moved));

    // The same endpoint again changes nothing, unless it is to be reset (`wg set … endpoint`).
    let again = PeerUpdate {
        peers: vec![spec.clone()],
        ..PeerUpdate::default()
    };
    assert_eq!(node.update(&again, secs(3)).unwrap(), Applied::default());
    let reset = PeerUpdate {
        peers: vec![spec],
        reset_endpoints: [b.key.public_key()].into(),
    };
    assert_eq!(node.update(&reset, secs(3)).unwrap().changed, 1);
}

#[test]
fn a_rovy_peer_made_wireguard_leaves_the_overlay() {
    let mut node = Node::new(6);
    let mut b = Remote::new(&mut node, 2);
    let spec = b.spec(PeerKind::Rovy, &[]);
    node.set(std::slice::from_ref(&spec), secs(1));
    let sent = node.transmit(secs(1));
    b.connect(&mut node, &sent, secs(1));
    node.overlay.turn(secs(1), |_, _| {});
    let b_slot = node.slot(&b).0 as u16;
    assert_eq!(node.overlay.router().links().count(), 1, "b's link is up");
    assert!(node.dataplane.tables().links.slot_of(b_slot).is_some());

    let mut plain = spec;
    plain.config.kind = PeerKind::WireGuard;
    node.set(&[plain], secs(2));
    node.overlay.turn(secs(2), |_, _| {});
    assert_eq!(node.overlay.router().links().count(), 0);
    let tables = node.dataplane.tables();
    assert!(tables.links.slot_of(b_slot).is_none());
    assert!(!tables.is_rovy(b_slot) && tables.peer(b_slot).is_some());
    let b_address = b.key.public_key().address().unwrap();
    assert_eq!(node.routed(&b_address.to_string()), None);
}

#[test]
fn a_refused_update_changes_nothing() {
    let mut node = Node::new(7);
    let b = Remote::new(&mut node, 2);
    let c = Remote::new(&mut node, 3);
    let b_spec = b.spec(PeerKind::Rovy, &["10.0.0.0/24"]);
    node.set(std::slice::from_ref(&b_spec), secs(1));
    let before = Arc::clone(&*node.dataplane.tables());

    let own = PeerSpec {
        config: PeerConfig {
            public_key: node.key.public_key(),
            ..b_spec.config.clone()
        },
        resolved: None,
    };
    let mut no_address = c.spec(PeerKind::Rovy, &[]);
    let plain_key = (0u8..)
        .map(|i| PrivateKey::from_bytes([i; 32]).public_key())
        .find(|k| k.address().is_none())
        .unwrap();
    no_address.config.public_key = plain_key;
    let cases: Vec<(Vec<PeerSpec>, &str)> = vec![
        (vec![b_spec.clone(), own], "is this node's own public key"),
        (vec![b_spec.clone(), b_spec.clone()], "is listed twice"),
        (vec![b_spec.clone(), no_address], "has no fc00::/8 address"),
        (
            vec![
                b_spec.clone(),
                c.spec(PeerKind::WireGuard, &["10.0.0.0/24"]),
            ],
            "10.0.0.0/24 is already an allowed IP of peer",
        ),
    ];
    for (peers, problem) in cases {
        let update = PeerUpdate {
            peers,
            ..PeerUpdate::default()
        };
        let error = node.update(&update, secs(2)).unwrap_err();
        assert!(error.problem.contains(problem), "{error}");
    }
    let low_mtu = Peers {
        book: &mut node.book,
        links: &mut node.links,
        dataplane: &node.dataplane,
        overlay: None,
        routes: None,
    }
    .update(
        &PeerUpdate {
            peers: vec![b_spec.clone(), c.spec(PeerKind::Rovy, &[])],
            ..PeerUpdate::default()
        },
        &node.key,
        1300,
        secs(2),
    );
    assert!(
        low_mtu
            .unwrap_err()
            .problem
            .contains("mtu of at least 1328")
    );
    assert!(Arc::ptr_eq(&before, &node.dataplane.tables()));
    assert_eq!(node.book.count(), 1);
    assert_eq!(node.links.tunnel_count(), 1);

    // Overlapping prefixes are fine, the longest wins; a /32 inside b's /24 goes to c.
    node.set(
        &[b_spec, c.spec(PeerKind::WireGuard, &["10.0.0.9/32"])],
        secs(3),
    );
    assert_eq!(node.routed("10.0.0.9"), Some(node.slot(&c).0 as u16));
    assert_eq!(node.routed("10.0.0.8"), Some(node.slot(&b).0 as u16));
}

/// Overlapping allowed IPs of two peers route by longest prefix in the workers' table, and the
/// kernel's routes into the TUN follow every update: added with a peer's prefixes, removed
/// when it loses them or goes, untouched by a refused update.
#[test]
fn overlapping_allowed_ips_route_by_longest_prefix_and_tun_routes_follow_updates() {
    let mut node = Node::new(9);
    let table = Recorded::default();
    let installed = Arc::clone(&table.routes);
    let policy = Arc::clone(&table.policy);
    let own: Vec<IpPrefix> = vec!["10.20.0.1/24".parse().unwrap()];
    node.routes = Some(TunRoutes::new(Box::new(table), "rf0", &own, true, None));
    let routes = || {
        let mut list: Vec<String> = installed
            .lock()
            .unwrap()
            .iter()
            .map(ToString::to_string)
            .collect();
        list.sort();
        list
    };
    let gateway = Remote::new(&mut node, 2);
    let host = Remote::new(&mut node, 3);
    let wide = gateway.spec(PeerKind::WireGuard, &["0.0.0.0/0", "10.9.0.0/16"]);
    let narrow = host.spec(PeerKind::WireGuard, &["10.9.0.7/32", "10.20.0.9/32"]);
    node.set(&[wide.clone(), narrow.clone()], secs(1));
    let (g, h) = (node.slot(&gateway).0 as u16, node.slot(&host).0 as u16);
    assert_eq!(node.routed("10.9.0.7"), Some(h));
    assert_eq!(node.routed("10.9.0.8"), Some(g));
    assert_eq!(node.routed("192.0.2.1"), Some(g), "the default route");
    assert_eq!(
        routes(),
        ["10.9.0.0/16", "10.9.0.7/32"],
        "none in main for /0 or the own subnet"
    );
    let default_route = "add 0.0.0.0/0 table 51820".to_owned();
    assert!(
        policy.lock().unwrap().contains(&default_route),
        "/0 has a table of its own"
    );

    let mut more = narrow.clone();
    more.config
        .allowed_ips
        .push("10.50.0.0/24".parse().unwrap());
    node.set(&[wide.clone(), more], secs(2));
    assert_eq!(routes(), ["10.50.0.0/24", "10.9.0.0/16", "10.9.0.7/32"]);

    let twice = PeerUpdate {
        peers: vec![
            wide.clone(),
            host.spec(PeerKind::WireGuard, &["10.9.0.0/16"]),
        ],
        ..PeerUpdate::default()
    };
    let refused = node.update(&twice, secs(3)).unwrap_err();
    assert!(
        refused.problem.contains("already an allowed IP"),
        "{refused}"
    );
    assert_eq!(routes(), ["10.50.0.0/24", "10.9.0.0/16", "10.9.0.7/32"]);

    node.set(std::slice::from_ref(&wide), secs(4));
    assert_eq!(routes(), ["10.9.0.0/16"], "the host's routes went with it");
    assert_eq!(node.routed("10.9.0.7"), Some(g));
    node.set(&[], secs(5));
    assert!(routes().is_empty());
    assert_eq!(
        policy.lock().unwrap().last().unwrap(),
        "remove 0.0.0.0/0 table 51820",
        "the default route went with the gateway"
    );
}
