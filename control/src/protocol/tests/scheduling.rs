//! Deadlines in order: what fires when, and what an idle endpoint costs.

use super::*;
use crate::timers::{KEEPALIVE_TIMEOUT, MAX_JITTER, REKEY_TIMEOUT, ZERO_KEYS_AFTER};

/// A link endpoint with `n` tunnels to peers that never answer, each at its own address.
fn silent_peers(n: usize, rng: &mut StdRng) -> LinkEndpoint {
    let mut node = link(key(rng), rng);
    for i in 0..n {
        let addr = LinkAddr::Udp(std::net::SocketAddr::from(([10, 1, 0, 1], 1000 + i as u16)));
        node.add_tunnel(key(rng), None, Some(addr), None).unwrap();
    }
    node
}

/// Every tunnel's next deadline, the slow way.
fn all_deadlines(node: &LinkEndpoint) -> Vec<Option<Duration>> {
    node.tunnels().map(|(_, t)| t.next_deadline()).collect()
}

/// The tunnels `node` sends to at `now`, in order.
fn senders(node: &mut LinkEndpoint, now: Duration, rng: &mut StdRng) -> Vec<TunnelId> {
    node.sync_activity(rng);
    node.handle_timeout(now, rng);
    let mut out = [0u8; HANDSHAKE_BUF_LEN];
    std::iter::from_fn(|| node.poll_transmit(now, WALL0, rng, &mut out))
        .map(|t| t.tunnel)
        .collect()
}

#[test]
fn the_tunnel_with_the_earliest_deadline_fires_first() {
    let mut rng = StdRng::seed_from_u64(30);
    let mut node = silent_peers(3, &mut rng);
    let t0 = Duration::from_secs(100);
    // Initiations at 102 s, 100 s and 101 s: retries due at +5 s (+ under 334 ms jitter).
    for (id, at) in [(2, 2), (0, 0), (1, 1)] {
        let at = t0 + Duration::from_secs(at);
        node.initiate(TunnelId(id));
        assert_eq!(senders(&mut node, at, &mut rng), [TunnelId(id)]);
    }
    assert_eq!(
        senders(&mut node, t0 + Duration::from_secs(10), &mut rng),
        [TunnelId(0), TunnelId(1), TunnelId(2)],
        "retries in deadline order, not in slot or initiation order"
    );
}

#[test]
fn an_idle_endpoint_reports_the_earliest_deadline_of_many_tunnels() {
    let mut rng = StdRng::seed_from_u64(31);
    let mut node = silent_peers(200, &mut rng);
    assert_eq!(node.poll_timeout(), None, "no tunnel has a timer armed");
    let t0 = Duration::from_secs(100);
    // Initiate in a scrambled order, 7 ms apart.
    for step in 0..200usize {
        let id = TunnelId(step * 67 % 200);
        let at = t0 + Duration::from_millis(7 * step as u64);
        node.initiate(id);
        assert_eq!(senders(&mut node, at, &mut rng), [id]);
    }
    let earliest = all_deadlines(&node).into_iter().flatten().min();
    assert_eq!(node.poll_timeout(), earliest);
    let first = node.poll_timeout().unwrap();
    assert!(first >= t0 + REKEY_TIMEOUT && first < t0 + REKEY_TIMEOUT + MAX_JITTER);

    for _ in 0..50 {
        let at = node.poll_timeout().unwrap();
        let before = all_deadlines(&node);
        let due: Vec<TunnelId> = (0..200)
            .filter(|i| before[*i] == Some(at))
            .map(TunnelId)
            .collect();
        assert!(
            senders(&mut node, at - Duration::from_nanos(1), &mut rng).is_empty(),
            "handle_timeout before the deadline does nothing"
        );
        assert_eq!(all_deadlines(&node), before);
        assert_eq!(node.poll_timeout(), Some(at));
        assert_eq!(
            senders(&mut node, at, &mut rng),
            due,
            "exactly the due tunnels"
        );
        assert_eq!(
            node.poll_timeout(),
            all_deadlines(&node).into_iter().flatten().min()
        );
    }
}

#[test]
fn activity_from_the_workers_moves_a_deadline_once_synced() {
    let mut n = net(32);
    n.handshake();
    let zero_keys = n.b.poll_timeout().unwrap();
    assert_eq!(zero_keys, n.now + ZERO_KEYS_AFTER);
    // A worker opens a data message for b, which arms b's passive keepalive.
    n.advance(Duration::from_secs(1));
    let mut data = n.seal_a(b"data").unwrap();
    let shared = Arc::clone(n.b.tunnel(n.b_peer).unwrap().shared());
    shared.decapsulate(n.now, A_ADDR, &mut data).unwrap();
    assert_eq!(
        n.b.poll_timeout(),
        Some(zero_keys),
        "not seen before a sync"
    );
    n.b.sync_activity(&mut n.rng);
    let keepalive = n.now + KEEPALIVE_TIMEOUT;
    assert_eq!(n.b.poll_timeout(), Some(keepalive));
    n.now = keepalive - Duration::from_millis(1);
    assert!(n.poll_b().is_empty());
    n.now = keepalive;
    let sent = n.poll_b();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].len(), 32, "a keepalive");
}

#[test]
fn a_reply_seen_by_the_workers_disarms_a_due_timer() {
    let mut n = net(33);
    n.handshake();
    // a sends data, arming a new handshake in 15 s (+ jitter) unless anything comes back.
    n.seal_a(b"request").unwrap();
    n.poll_a();
    let due = n.a.poll_timeout().unwrap();
    assert!(due < n.now + Duration::from_secs(16));
    // b answers just before, and a's worker opens the answer; no sync tick runs in between.
    n.now = due - Duration::from_millis(1);
    let mut answer = n.seal_b(b"answer").unwrap();
    let shared = Arc::clone(n.a.tunnel(n.a_peer).unwrap().shared());
    shared.decapsulate(n.now, B_ADDR, &mut answer).unwrap();
    n.now = due;
    n.a.handle_timeout(n.now, &mut n.rng);
    let mut out = [0u8; HANDSHAKE_BUF_LEN];
    assert_eq!(
        n.a.poll_transmit(n.now, n.wall, &mut n.rng, &mut out),
        None,
        "the due tunnel replays its activity before firing"
    );
}

#[test]
fn data_sent_before_a_response_does_not_stand_in_for_the_key_confirmation() {
    let mut n = net(34);
    n.handshake();
    n.advance(Duration::from_secs(121));
    n.seal_a(b"x").unwrap();
    let init = n.poll_a();
    assert_eq!(init.len(), 1);
    assert_eq!(init[0].len(), INITIATION_LEN, "rekey");
    // A worker goes on sending on the old keypair; control replays that on its next tick only.
    n.now += Duration::from_millis(1);
    let shared = Arc::clone(n.a.tunnel(n.a_peer).unwrap().shared());
    let mut buf = vec![0u8; buffer_len(1420)];
    shared.seal(n.now, &mut buf, 5, 1420).unwrap();
    n.now += Duration::from_millis(1);
    let (_, response) = n.deliver_b(A_ADDR, &init[0], false).unwrap();
    assert_eq!(
        n.deliver_a(&response, false).unwrap().0,
        Received::HandshakeComplete { tunnel: n.a_peer }
    );
    let sent = n.poll_a();
    assert_eq!(
        sent.len(),
        1,
        "the old-keypair packet does not confirm the new one"
    );
    assert_eq!(sent[0].len(), 32, "a keepalive");
    assert!(n.b.tunnel(n.b_peer).unwrap().sessions().next().is_some());
    n.deliver_b(A_ADDR, &sent[0], false).unwrap();
    assert!(
        n.b.tunnel(n.b_peer).unwrap().sessions().next().is_none(),
        "b's new keypair is confirmed"
    );
}
