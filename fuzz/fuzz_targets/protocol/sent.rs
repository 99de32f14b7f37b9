//! What the endpoint sends, and the clock that makes it: each transmission checked and handed
//! to the peer it is for.

use super::*;

impl Harness {
    /// Moves the clock to `now` and fires the timers: none is left due.
    pub(super) fn advance_to(&mut self, now: Duration) {
        self.wall += now - self.now;
        self.now = now;
        self.us.handle_timeout(self.now, &mut self.rng);
        if let Some(deadline) = self.us.poll_timeout() {
            assert!(
                deadline > self.now,
                "deadline {deadline:?} left at {:?}",
                self.now
            );
        }
    }

    /// What the endpoint sends now, as its control loop takes it: the workers' activity, then
    /// every queued message (at most two per tunnel), each checked and handed to its peer.
    pub(super) fn drain(&mut self) {
        self.us.sync_activity(&mut self.rng);
        let mut out = [0u8; HANDSHAKE_BUF_LEN];
        for _ in 0..=2 * self.us.tunnel_count() {
            match self
                .us
                .poll_transmit(self.now, self.wall, &mut self.rng, &mut out)
            {
                Some(t) => self.transmitted(t, &out),
                None => break,
            }
        }
        assert_eq!(
            self.us
                .poll_transmit(self.now, self.wall, &mut self.rng, &mut out),
            None,
            "poll_transmit does not run dry"
        );
        for (id, model) in self.tunnels.iter().enumerate() {
            assert!(
                !model.owes_keepalive,
                "no key confirmation from tunnel {id}"
            );
        }
    }

    pub(super) fn transmitted(&mut self, t: Transmit<LinkAddr>, out: &[u8; HANDSHAKE_BUF_LEN]) {
        let tunnel = self.us.tunnel(t.tunnel).expect("transmit for a tunnel");
        assert_eq!(Some(t.dst), tunnel.endpoint());
        let i = self.identity(t.tunnel);
        let msg = &out[..t.len];
        match message_type(msg) {
            Ok(MessageType::Initiation) => {
                let sender = u32::from_le_bytes(msg[4..8].try_into().unwrap());
                assert!(tunnel.handshake_in_flight());
                assert_eq!(self.holder(sender), Some(t.tunnel));
                let mac1 = &msg[INITIATION_MAC1_OFFSET..INITIATION_MAC2_OFFSET];
                assert_eq!(
                    mac1,
                    mac::mac1(&self.peers[i].public, &msg[..INITIATION_MAC1_OFFSET])
                );
                self.check_mac2(t.tunnel, msg, INITIATION_MAC1_OFFSET);
                let p = &mut self.peers[i];
                let read =
                    noise::read_initiation(noise::IDENTIFIER, &p.private, msg.try_into().unwrap())
                        .expect("the peer reads the endpoint's initiation");
                assert_eq!(read.peer_public, self.our_public);
                assert_eq!(read.remote_index, sender);
                let ts = Tai64n::from_bytes(read.timestamp);
                assert_eq!(ts, Tai64n::from_unix(self.wall));
                let model = &mut self.tunnels[t.tunnel.0];
                assert!(
                    model.last_initiation_ts.is_none_or(|last| ts > last),
                    "timestamp"
                );
                model.last_initiation_ts = Some(ts);
                model.last_initiation = Some(sender);
                model.last_stamped = Some(mac1.try_into().unwrap());
                if p.from_us.len() == KEPT {
                    p.from_us.remove(0);
                }
                p.from_us.push(msg.try_into().unwrap());
            }
            Ok(MessageType::Data) => {
                assert_eq!(t.len, KEEPALIVE_LEN);
                self.tunnels[t.tunnel.0].owes_keepalive = false;
                self.peer_opens(i, t.tunnel, msg, 0);
            }
            other => panic!("transmitted {other:?}"),
        }
    }

    /// Peer `i` opens a data message from the endpoint, sealed on `tunnel`'s current session,
    /// whose plaintext starts with `payload`: it does, unless it no longer holds that session
    /// or the session expired. A misdirected session's message it never opens: the index it
    /// goes to is unknown to the peer or names another session, whose keys and counters do
    /// not take it.
    pub(super) fn peer_opens(&mut self, i: usize, tunnel: TunnelId, msg: &[u8], payload: usize) {
        let sealed_by = self
            .us
            .tunnel(tunnel)
            .unwrap()
            .sessions()
            .current()
            .map(|s| (s.local_index(), s.remote_index()));
        let receiver = u32::from_le_bytes(msg[4..8].try_into().unwrap());
        let (local, remote) = sealed_by.expect("sealed on a session");
        assert_eq!(remote, receiver, "sealed on another session");
        let misdirected = self.tunnels[tunnel.0].misdirected.contains(&local);
        let mut packet = msg.to_vec();
        let p = &mut self.peers[i];
        let opened = p.slots.decapsulate(self.now, &mut packet);
        if misdirected {
            assert!(opened.is_err(), "peer opened a misdirected session's data");
            return;
        }
        match opened {
            Ok(r) => {
                assert!(r.plaintext_len >= payload);
                if r.confirmed_next {
                    assert!(p.slots.promote_next(r.local_index));
                }
            }
            Err(e) => assert!(
                matches!(e, DropReason::UnknownIndex | DropReason::SessionExpired),
                "peer cannot open the endpoint's data: {e:?}"
            ),
        }
    }
}
