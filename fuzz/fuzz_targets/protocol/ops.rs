//! The ops of the script, each with the outcome the protocol says it must have.

use super::*;
use rovy_dataplane::buf::{PACKET_AT, buffer_len};
use rovy_dataplane::session::sealed_len;
use rovy_fuzz::script::{Op, RAW_FIX_MAC1, RAW_LIVE_INDEX, RAW_ZERO_EPHEMERAL};

/// Where a handshake message's ephemeral key starts.
const INITIATION_EPHEMERAL: usize = 8;
const RESPONSE_EPHEMERAL: usize = 12;

impl Harness {
    pub fn play(&mut self, op: Op) {
        match op {
            Op::Initiate { peer, src, ts } => self.initiate(peer, src, ts),
            Op::Respond { peer, src, which } => self.respond(peer, src, which),
            Op::CookieFromPeer { peer, response } => self.cookie_from_peer(peer, response),
            Op::Data { peer, src, len } => self.data(peer, src, len),
            Op::Send { peer, len } => self.send(peer, len),
            Op::WeInitiate { peer } => {
                let key = self.peers[usize::from(peer) % PEERS].public;
                if let Some(id) = self.us.tunnel_by_key(&key) {
                    self.us.initiate(id);
                }
            }
            Op::AdvanceMs(ms) => self.advance_to(self.now + Duration::from_millis(ms.into())),
            Op::AdvanceSecs(s) => self.advance_to(self.now + Duration::from_secs(s.into())),
            Op::ToDeadline => {
                let next = self.us.poll_timeout().unwrap_or(self.now);
                self.advance_to(next.max(self.now));
            }
            Op::Load(on) => self.under_load = on,
            Op::Replay {
                which,
                flip_at,
                xor,
                fix_mac1,
            } => self.replay(which, flip_at, xor, fix_mac1),
            Op::Raw { kind, flags, bytes } => self.raw(kind, flags, bytes),
        }
        self.drain();
    }

    fn initiate(&mut self, peer: u8, src: u8, ts: u8) {
        let (i, src) = (
            usize::from(peer) % PEERS,
            SOURCES[usize::from(src) % SOURCES.len()],
        );
        let p = &mut self.peers[i];
        let ts = match ts {
            0 => p.last_ts,
            1 => {
                let mut older = *p.last_ts.as_bytes();
                let seconds = u64::from_be_bytes(older[..8].try_into().unwrap());
                older[..8].copy_from_slice(&seconds.saturating_sub(1).to_be_bytes());
                Tai64n::from_bytes(older)
            }
            _ => Tai64n::from_unix(self.wall),
        };
        p.last_ts = ts;
        let index = p.next_index;
        p.next_index = p.next_index.wrapping_add(1);
        let mut msg = [0u8; INITIATION_LEN];
        let pending = noise::write_initiation(
            noise::IDENTIFIER,
            &p.private,
            &self.our_public,
            &p.psk,
            index,
            ts.as_bytes(),
            &mut msg,
        )
        .expect("the peer writes an initiation");
        let had_cookie = p.jar.has_valid_cookie(self.now);
        p.jar
            .stamp(self.now, &mut msg, INITIATION_MAC1_OFFSET)
            .unwrap();
        if p.pending.len() == KEPT {
            p.pending.remove(0);
        }
        p.pending.push(pending);
        let expected = self.expected_initiation(i, ts);
        let (result, out, _) = self.deliver(src, &msg);
        self.check_policy(result, expected, self.mac2_valid(i, src, had_cookie));
        match result {
            Ok(Received::HandshakeResponse { .. }) => {
                self.initiation_answered(i, index, ts, &out[..RESPONSE_LEN]);
            }
            Ok(Received::CookieReply) => self.cookie_received(i, src, &out),
            _ => {}
        }
        self.remember(Sent {
            bytes: msg.to_vec(),
            src,
            peer: i,
            ts: Some(ts),
            accepted: result.is_ok_and(|r| r != Received::CookieReply),
        });
    }

    fn respond(&mut self, peer: u8, src: u8, which: u8) {
        let (i, src) = (
            usize::from(peer) % PEERS,
            SOURCES[usize::from(src) % SOURCES.len()],
        );
        let p = &mut self.peers[i];
        let Some(count) = std::num::NonZeroUsize::new(p.from_us.len()) else {
            return;
        };
        let initiation = p.from_us[count.get() - 1 - usize::from(which) % count.get()];
        let received = noise::read_initiation(noise::IDENTIFIER, &p.private, &initiation)
            .expect("the peer reads the endpoint's initiation");
        let index = p.next_index;
        p.next_index = p.next_index.wrapping_add(1);
        let mut msg = [0u8; RESPONSE_LEN];
        let keys = received
            .write_response(&p.psk, index, &mut msg)
            .expect("the peer writes a response");
        let had_cookie = p.jar.has_valid_cookie(self.now);
        p.jar
            .stamp(self.now, &mut msg, RESPONSE_MAC1_OFFSET)
            .unwrap();
        let psk_agrees = p.psk_agrees;
        let tunnel = self.us.tunnel_by_key(&p.public).expect("a tunnel sent it");
        let ours = u32::from_le_bytes(initiation[4..8].try_into().unwrap());
        let answers_pending = self.us.tunnel(tunnel).unwrap().handshake_in_flight()
            && self.tunnels[tunnel.0].last_initiation == Some(ours);
        let expected = match (answers_pending, psk_agrees) {
            (true, true) => Ok(Received::HandshakeComplete { tunnel }),
            (true, false) => Err(DropReason::HandshakeFailed),
            (false, _) => Err(DropReason::UnexpectedHandshake),
        };
        let (result, out, _) = self.deliver(src, &msg);
        self.check_policy(result, expected, self.mac2_valid(i, src, had_cookie));
        match result {
            Ok(Received::HandshakeComplete { .. }) => {
                self.peers[i].slots.install(session(&keys, false, self.now));
            }
            Ok(Received::CookieReply) => self.cookie_received(i, src, &out),
            _ => {}
        }
        self.remember(Sent {
            bytes: msg.to_vec(),
            src,
            peer: i,
            ts: None,
            accepted: result.is_ok_and(|r| r != Received::CookieReply),
        });
    }

    fn cookie_from_peer(&mut self, peer: u8, response: bool) {
        let i = usize::from(peer) % PEERS;
        let p = &self.peers[i];
        let (msg, mac1_at) = match (response, p.from_us.last(), p.last_response) {
            (false, Some(initiation), _) => (initiation.to_vec(), INITIATION_MAC1_OFFSET),
            (true, _, Some(response)) => (response.to_vec(), RESPONSE_MAC1_OFFSET),
            _ => return,
        };
        let sender = u32::from_le_bytes(msg[4..8].try_into().unwrap());
        let mac1: [u8; 16] = msg[mac1_at..mac1_at + 16].try_into().unwrap();
        self.nonce = self.nonce.wrapping_add(1);
        let reply = p.checker.make_cookie_reply(
            sender,
            &mac1,
            US.cookie_input().as_bytes(),
            [self.nonce; 24],
        );
        let tunnel = self.us.tunnel_by_key(&p.public).expect("a tunnel sent it");
        let expected = match self.holder(sender) {
            None => Err(DropReason::UnexpectedHandshake),
            Some(holder) => {
                assert_eq!(holder, tunnel);
                if self.tunnels[tunnel.0].last_stamped == Some(mac1) {
                    Ok(Received::CookieAccepted { tunnel })
                } else {
                    Err(DropReason::InvalidCookieReply)
                }
            }
        };
        let (result, _, _) = self.deliver(SOURCES[i], &reply);
        assert_eq!(result, expected);
        self.remember(Sent {
            bytes: reply.to_vec(),
            src: SOURCES[i],
            peer: i,
            ts: None,
            accepted: result.is_ok(),
        });
    }

    fn data(&mut self, peer: u8, src: u8, len: u8) {
        let (i, src) = (
            usize::from(peer) % PEERS,
            SOURCES[usize::from(src) % SOURCES.len()],
        );
        let len = usize::from(len);
        let payload: Vec<u8> = (0..len).map(|k| (k as u8) ^ 0xa5).collect();
        let mut buf = vec![0u8; sealed_len(len, MTU)];
        buf[16..16 + len].copy_from_slice(&payload);
        let Ok(n) = self.peers[i]
            .slots
            .encapsulate(self.now, &mut buf, len, MTU)
        else {
            return;
        };
        let msg = buf[..n].to_vec();
        let receiver = u32::from_le_bytes(msg[4..8].try_into().unwrap());
        let held = self.us.tunnels().find_map(|(id, t)| {
            let s = t.sessions();
            let next = s.next().is_some_and(|s| s.local_index() == receiver);
            s.local_indices().any(|index| index == receiver).then(|| {
                let created = [s.previous(), s.current(), s.next()]
                    .into_iter()
                    .flatten()
                    .find(|s| s.local_index() == receiver)
                    .map(Session::created);
                (id, created.unwrap(), next)
            })
        });
        let expected = match held {
            None => Err(DropReason::UnknownIndex),
            Some((_, created, _)) if self.now - created >= REJECT_AFTER_TIME => {
                Err(DropReason::SessionExpired)
            }
            Some((tunnel, _, _)) => Ok(Received::Data {
                tunnel,
                len: n - KEEPALIVE_LEN,
            }),
        };
        let (result, _, packet) = self.deliver(src, &msg);
        assert_eq!(result, expected);
        if let (Ok(_), Some((tunnel, _, next))) = (result, held) {
            assert_eq!(packet[16..16 + len], payload[..]);
            assert!(packet[16 + len..n - 16].iter().all(|&b| b == 0), "padding");
            if next {
                let t = self.us.tunnel(tunnel).unwrap();
                let current = t.sessions().current().map(Session::local_index);
                assert_eq!(current, Some(receiver), "data on next did not confirm it");
            }
        }
        self.remember(Sent {
            bytes: msg,
            src,
            peer: i,
            ts: None,
            accepted: result.is_ok(),
        });
    }

    fn send(&mut self, peer: u8, len: u8) {
        let i = usize::from(peer) % PEERS;
        let Some(id) = self.us.tunnel_by_key(&self.peers[i].public) else {
            return;
        };
        let len = usize::from(len);
        let t = self.us.tunnel(id).unwrap();
        let endpoint = t.endpoint();
        let usable = t
            .sessions()
            .current()
            .is_some_and(|s| self.now - s.created() < REJECT_AFTER_TIME);
        let mut buf = vec![0u8; buffer_len(MTU)];
        for (k, b) in buf[PACKET_AT..PACKET_AT + len].iter_mut().enumerate() {
            *b = k as u8;
        }
        let sent = self
            .us
            .encapsulate(self.now, id, &mut buf, len, MTU, &mut self.rng);
        match (endpoint, usable, sent) {
            (Some(endpoint), true, Ok((range, dst))) => {
                assert_eq!(dst, endpoint);
                let msg = buf[range].to_vec();
                assert_eq!(msg.len(), sealed_len(len, MTU));
                if len > 0 {
                    let model = &mut self.tunnels[id.0];
                    model.packets.1 += 1;
                    model.bytes.1 += len as u64;
                }
                self.peer_opens(i, id, &msg, len);
            }
            (None, _, Err(e)) => assert_eq!(e, DropReason::NoEndpoint),
            (Some(_), false, Err(e)) => assert_eq!(e, DropReason::NoSession),
            other => panic!("encapsulate: {other:?}"),
        }
    }

    fn replay(&mut self, which: u8, flip_at: u16, xor: u8, fix_mac1: bool) {
        let Some(count) = std::num::NonZeroUsize::new(self.history.len()) else {
            return;
        };
        let at = count.get() - 1 - usize::from(which) % count.get();
        let sent = &self.history[at];
        let (src, i, ts, was_accepted) = (sent.src, sent.peer, sent.ts, sent.accepted);
        let mut msg = sent.bytes.clone();
        // A handshake message's sender index as its peer wrote it, whatever the flip makes of it.
        let sender = u32::from_le_bytes(msg[4..8].try_into().unwrap());
        let flip = usize::from(flip_at) % msg.len();
        msg[flip] ^= xor;
        let kind = message_type(&sent.bytes);
        let mac1_at = match kind {
            Ok(MessageType::Initiation) => Some(INITIATION_MAC1_OFFSET),
            Ok(MessageType::Response) => Some(RESPONSE_MAC1_OFFSET),
            _ => None,
        };
        if let (true, Some(m)) = (fix_mac1, mac1_at) {
            let mac1 = mac::mac1(&self.our_public, &msg[..m]);
            msg[m..m + 16].copy_from_slice(&mac1);
        }
        // Where a flip may leave the message acceptable: the unauthenticated sender index
        // (when mac1 is fixed up after it), mac1 itself when it is recomputed, and mac2.
        let harmless = xor == 0
            || mac1_at.is_some_and(|m| {
                (fix_mac1 && ((4..8).contains(&flip) || (m..m + 16).contains(&flip)))
                    || (m + 16..m + 32).contains(&flip)
            });
        let expected_initiation = ts.map(|ts| self.expected_initiation(i, ts));
        let (result, out, _) = self.deliver(src, &msg);
        let accepted = result.is_ok_and(|r| r != Received::CookieReply);
        if accepted {
            assert!(
                harmless,
                "tampered message accepted: byte {flip} ^ {xor:#x}"
            );
        }
        if let (Some(expected), 0, false) = (expected_initiation, xor, self.under_load) {
            assert_eq!(result, expected, "replayed initiation");
        }
        match (kind, result) {
            (Ok(MessageType::Initiation), Ok(r @ Received::HandshakeResponse { .. })) => {
                assert_eq!(
                    expected_initiation,
                    Some(Ok(r)),
                    "replayed initiation accepted"
                );
                self.initiation_answered(i, sender, ts.unwrap(), &out[..RESPONSE_LEN]);
            }
            (Ok(MessageType::Response), Ok(Received::HandshakeComplete { tunnel })) => {
                assert!(!was_accepted, "{kind:?} accepted twice");
                let t = self.us.tunnel(tunnel).unwrap();
                let current = t
                    .sessions()
                    .current()
                    .map(|s| (s.local_index(), s.remote_index()));
                let (local, remote) = current.expect("a completed handshake's session");
                if remote != sender {
                    self.tunnels[tunnel.0].misdirected.push(local);
                }
            }
            (_, Ok(r)) if r != Received::CookieReply => {
                assert!(!was_accepted, "{kind:?} accepted twice");
            }
            (_, Ok(_)) => {
                // The peer's jar opens it only if this is (a copy of) its last message.
                let reply = &out[..COOKIE_REPLY_LEN];
                if self.peers[i].jar.consume_reply(self.now, reply).is_ok() {
                    self.peers[i].cookie = Some((src, self.epoch));
                }
            }
            _ => {}
        }
        if accepted {
            self.history[at].accepted = true;
        }
    }

    fn raw(&mut self, kind: u8, flags: u8, mut msg: Vec<u8>) {
        let kind = kind % 5;
        let layout = match kind {
            1 => Some((
                INITIATION_LEN,
                None,
                Some(INITIATION_MAC1_OFFSET),
                INITIATION_EPHEMERAL,
            )),
            2 => Some((
                RESPONSE_LEN,
                Some(8),
                Some(RESPONSE_MAC1_OFFSET),
                RESPONSE_EPHEMERAL,
            )),
            3 => Some((COOKIE_REPLY_LEN, Some(4), None, 0)),
            4 => Some((msg.len().max(KEEPALIVE_LEN), Some(4), None, 0)),
            _ => None,
        };
        let mut live_pending = false;
        if let Some((len, receiver_at, mac1_at, ephemeral)) = layout {
            msg.resize(len, 0);
            msg[..4].copy_from_slice(&u32::from(kind).to_le_bytes());
            if flags & RAW_ZERO_EPHEMERAL != 0 && mac1_at.is_some() {
                msg[ephemeral..ephemeral + 32].fill(0);
            }
            if let (true, Some(at)) = (flags & RAW_LIVE_INDEX != 0, receiver_at) {
                let pending = self.tunnels.iter().enumerate().find_map(|(id, m)| {
                    let t = self.us.tunnel(TunnelId(id)).unwrap();
                    m.last_initiation.filter(|_| t.handshake_in_flight())
                });
                let session = self
                    .us
                    .tunnels()
                    .find_map(|(_, t)| t.sessions().local_indices().next());
                if let Some(index) = pending.or(session) {
                    live_pending = pending.is_some();
                    msg[at..at + 4].copy_from_slice(&index.to_le_bytes());
                }
            }
            if let (true, Some(m)) = (flags & RAW_FIX_MAC1 != 0, mac1_at) {
                let mac1 = mac::mac1(&self.our_public, &msg[..m]);
                msg[m..m + 16].copy_from_slice(&mac1);
            }
        }
        let (result, _, _) = self.deliver(SOURCES[0], &msg);
        assert!(
            matches!(result, Err(_) | Ok(Received::CookieReply)),
            "bytes from nowhere accepted: {result:?}"
        );
        let forged_handshake = flags & RAW_FIX_MAC1 != 0 && !self.under_load;
        let zero = flags & RAW_ZERO_EPHEMERAL != 0;
        match kind {
            1 if forged_handshake && zero => assert_eq!(result, Err(DropReason::LowOrderKey)),
            1 if forged_handshake => assert!(matches!(
                result,
                Err(DropReason::HandshakeFailed | DropReason::LowOrderKey)
            )),
            2 if forged_handshake && zero && live_pending => {
                assert_eq!(result, Err(DropReason::LowOrderKey));
            }
            _ => {}
        }
    }
}
