//! Origin proofs: forged seqnos change nothing, proofs are verified once, travel where they
//! are missing and are asked for when lost.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use x25519_dalek::{PublicKey, StaticSecret};

use super::*;
use crate::routing::origin::{VERIFY_BURST, signed_message};

/// A real X25519 identity: (public key, private key).
fn identity(seed: u8) -> (NodeKey, [u8; 32]) {
    let private = [seed; 32];
    (
        PublicKey::from(&StaticSecret::from(private)).to_bytes(),
        private,
    )
}

fn xeddsa_router(seed: u8) -> Router {
    let (public, private) = identity(seed);
    Router::new(
        public,
        UNIX,
        T0,
        Box::new(XeddsaOrigins::new(public, &private)),
    )
}

fn real_entry(
    key: NodeKey,
    seqno: u32,
    metric: u16,
    l: &[u8],
    proof: Option<Proof>,
) -> UpdateEntry {
    UpdateEntry {
        key,
        seqno,
        metric,
        label: label(l),
        proof,
    }
}

fn route_requests_on(sent: &[(Slot, Vec<u8>)], slot: Slot) -> Vec<RouteRequest> {
    sent.iter()
        .filter(|(s, _)| *s == slot)
        .filter_map(|(_, b)| match Message::decode(b).unwrap() {
            Message::RouteRequest(r) => Some(r),
            _ => None,
        })
        .collect()
}

/// Every link heard from at `now`, so none dies of silence while a test jumps ahead.
fn hear_all(r: &mut Router, now: Duration) {
    let slots: Vec<Slot> = r.links().map(|(slot, _)| slot).collect();
    for slot in slots {
        r.link_heard(slot, now);
    }
}

#[test]
fn xeddsa_proofs_verify_for_their_key_and_seqno_only() {
    let (victim, victim_private) = identity(1);
    let (attacker, attacker_private) = identity(2);
    let mut signer = XeddsaOrigins::new(victim, &victim_private);
    let proof = signer.sign(77);
    assert!(signer.verify(&victim, &proof));
    assert!(!signer.verify(&attacker, &proof), "another key");
    assert!(
        !signer.verify(&victim, &Proof { seqno: 78, ..proof }),
        "another seqno"
    );
    let forged = XeddsaOrigins::new(victim, &attacker_private).sign(77);
    assert!(
        !signer.verify(&victim, &forged),
        "signed with the wrong private key"
    );
    assert_eq!(&signed_message(&victim, 77)[32..], &77u32.to_le_bytes());
}

#[test]
fn a_neighbour_announcing_another_key_with_a_huge_seqno_changes_nothing() {
    let (victim, victim_private) = identity(1);
    let (honest, honest_private) = identity(2);
    let (attacker, attacker_private) = identity(3);
    let mut me = xeddsa_router(9);
    let via_honest = me.link_up(honest, T0).unwrap();
    let via_attacker = me.link_up(attacker, T0).unwrap();
    let mut honest_signer = XeddsaOrigins::new(honest, &honest_private);
    let mut attacker_signer = XeddsaOrigins::new(attacker, &attacker_private);
    let mut victim_signer = XeddsaOrigins::new(victim, &victim_private);
    send(
        &mut me,
        via_honest,
        &[real_entry(honest, 10, 0, &[], Some(honest_signer.sign(10)))],
        T0,
    );
    send(
        &mut me,
        via_attacker,
        &[real_entry(
            attacker,
            10,
            0,
            &[],
            Some(attacker_signer.sign(10)),
        )],
        T0,
    );
    let seqno = 500;
    send(
        &mut me,
        via_honest,
        &[real_entry(
            victim,
            seqno,
            1,
            &[4],
            Some(victim_signer.sign(seqno)),
        )],
        T0,
    );
    let honest_route = me.route(&victim).expect("the honest route");
    assert_eq!(honest_route.next_hop, via_honest);
    drain(&mut me, T0);

    // The attacker announces the victim one hop away, at a seqno far beyond the victim's:
    // with a proof signed by its own key, then with none.
    let huge = seqno + 1_000_000;
    let forged = XeddsaOrigins::new(victim, &attacker_private).sign(huge);
    send(
        &mut me,
        via_attacker,
        &[real_entry(victim, huge, 0, &[7], Some(forged))],
        T0,
    );
    assert_eq!(me.stats().proofs_invalid, 1);
    send(
        &mut me,
        via_attacker,
        &[real_entry(victim, huge, 0, &[7], None)],
        T0,
    );
    assert_eq!(me.stats().entries_unproven, 1);
    assert_eq!(me.route(&victim), Some(honest_route), "nothing changed");
    let sent = drain(&mut me, T0);
    assert!(
        entries_on(&sent, via_honest).is_empty(),
        "nothing to tell anyone"
    );
    assert_eq!(
        route_requests_on(&sent, via_attacker),
        [RouteRequest::Key(victim)],
        "the missing proof is asked for"
    );

    // The victim's own next seqno still counts: the forged one left no trace.
    let t = T0 + Duration::from_secs(1);
    send(
        &mut me,
        via_honest,
        &[real_entry(
            victim,
            seqno + 1,
            3,
            &[4],
            Some(victim_signer.sign(seqno + 1)),
        )],
        t,
    );
    assert_eq!(me.route(&victim).map(|r| r.metric), Some(4));
    // And the attacker's genuine announcement of the victim at a proven seqno is an ordinary
    // (worse-or-better) route, no more.
    send(
        &mut me,
        via_attacker,
        &[real_entry(victim, seqno + 1, 0, &[7], None)],
        t,
    );
    assert_eq!(me.route(&victim).map(|r| r.next_hop), Some(via_attacker));
    assert_eq!(me.stats().entries_unproven, 1);
}

/// Counts verifications, and accepts what [`SimulatedOrigins`] accepts.
#[derive(Debug)]
struct Counting {
    inner: SimulatedOrigins,
    verified: Arc<AtomicUsize>,
}

impl Origins for Counting {
    fn sign(&mut self, seqno: u32) -> Proof {
        self.inner.sign(seqno)
    }

    fn verify(&self, key: &NodeKey, proof: &Proof) -> bool {
        self.verified.fetch_add(1, Ordering::Relaxed);
        self.inner.verify(key, proof)
    }
}

fn counting_router() -> (Router, Arc<AtomicUsize>, Vec<Slot>) {
    let verified = Arc::new(AtomicUsize::new(0));
    let origins = Counting {
        inner: SimulatedOrigins::new(key(0xAA)),
        verified: Arc::clone(&verified),
    };
    let mut r = Router::new(key(0xAA), UNIX, T0, Box::new(origins));
    let slots: Vec<Slot> = (1..=2).map(|k| r.link_up(key(k), T0).unwrap()).collect();
    for (k, &slot) in (1..=2).zip(&slots) {
        r.handle_message(slot, &encode_update(&[entry(k, 10, 0, &[])]), T0)
            .unwrap();
    }
    (r, verified, slots)
}

#[test]
fn a_proof_is_verified_once_and_covers_older_seqnos() {
    let (mut r, verified, slots) = counting_router();
    assert_eq!(
        verified.load(Ordering::Relaxed),
        2,
        "each neighbour's own entry"
    );
    send(&mut r, slots[0], &[entry(5, 40, 2, &[3])], T0);
    send(&mut r, slots[1], &[entry(5, 40, 3, &[3])], T0);
    send(&mut r, slots[0], &[entry(5, 40, 2, &[3])], T0);
    assert_eq!(
        verified.load(Ordering::Relaxed),
        3,
        "one more for key 5 at seqno 40"
    );
    let older = UpdateEntry {
        proof: None,
        ..entry(5, 39, 1, &[3])
    };
    send(&mut r, slots[1], &[older], T0);
    assert_eq!(
        r.stats().entries_unproven,
        0,
        "seqno 39 is covered by the proof for 40"
    );
    assert_eq!(verified.load(Ordering::Relaxed), 3);
}

#[test]
fn proofs_go_with_new_seqnos_and_first_tables_only() {
    let (mut r, _, slots) = counting_router();
    drain(&mut r, T0);
    // A destination's first announcement carries its proof on to the other links ...
    send(&mut r, slots[0], &[entry(5, 40, 2, &[3])], T0);
    let sent = drain(&mut r, T0);
    let out = entries_on(&sent, slots[1]);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].proof, Some(SimulatedOrigins::proof(&key(5), 40)));
    // ... a metric change at the same seqno does not ...
    send(&mut r, slots[0], &[entry(5, 40, 1, &[3])], T0);
    let out = entries_on(&drain(&mut r, T0), slots[1]);
    assert_eq!((out.len(), out[0].metric, out[0].proof), (1, 2, None));
    // ... nor does the periodic table, except this node's own entry.
    let t = T0 + FULL_UPDATE_INTERVAL;
    hear_all(&mut r, t);
    r.handle_timeout(t);
    let table = entries_on(&drain(&mut r, t), slots[1]);
    assert!(table.len() >= 3);
    for e in &table {
        assert_eq!(e.proof.is_some(), e.key == key(0xAA), "{e:?}");
    }
    // A neighbour that asks for everything gets every proof.
    r.handle_message(slots[1], &[0x23], t).unwrap();
    let table = entries_on(&drain(&mut r, t), slots[1]);
    assert!(table.iter().all(|e| e.proof.is_some()), "{table:?}");
}

#[test]
fn a_lost_proof_is_asked_for_and_the_answer_carries_it() {
    // Two real routers: b learns key 5 from a's periodic table, which carries no proofs.
    let (mut a, _, a_slots) = counting_router();
    send(&mut a, a_slots[0], &[entry(5, 40, 2, &[3])], T0);
    let mut b = Router::new(
        key(0xBB),
        UNIX,
        T0,
        Box::new(SimulatedOrigins::new(key(0xBB))),
    );
    let b_to_a = b.link_up(key(0xAA), T0).unwrap();
    let a_to_b = a.link_up(key(0xBB), T0).unwrap();
    drain(&mut a, T0);
    drain(&mut b, T0);
    let t = T0 + FULL_UPDATE_INTERVAL;
    hear_all(&mut a, t);
    a.handle_timeout(t);
    let table: Vec<Vec<u8>> = drain(&mut a, t)
        .into_iter()
        .filter(|(s, m)| *s == a_to_b && m[0] == 0x21)
        .map(|(_, m)| m)
        .collect();
    for m in &table {
        b.handle_message(b_to_a, m, t).unwrap();
    }
    assert_eq!(b.route(&key(5)), None);
    assert_eq!(
        b.stats().entries_unproven,
        3,
        "key 5 and a's two neighbours"
    );
    let asks = drain(&mut b, t);
    assert_eq!(route_requests_on(&asks, b_to_a).len(), 3);
    for (_, m) in asks.iter().filter(|(s, m)| *s == b_to_a && m[0] == 0x23) {
        a.handle_message(a_to_b, m, t).unwrap();
    }
    for (_, m) in drain(&mut a, t).iter().filter(|(s, _)| *s == a_to_b) {
        b.handle_message(b_to_a, m, t).unwrap();
    }
    assert_eq!(b.route(&key(5)).map(|r| r.metric), Some(4));
    assert_eq!(b.stats().entries_unproven, 3, "no more");
}

#[test]
fn a_link_makes_this_node_verify_at_most_its_budget() {
    let (mut r, verified, slots) = counting_router();
    let before = verified.load(Ordering::Relaxed);
    let garbage = |i: u32| {
        let mut k = [0x66; 32];
        k[..4].copy_from_slice(&i.to_le_bytes());
        UpdateEntry {
            key: k,
            seqno: 1,
            metric: 1,
            label: label(&[3]),
            proof: Some(Proof {
                seqno: 1,
                signature: [i as u8; 64],
            }),
        }
    };
    let n = VERIFY_BURST + 500;
    for chunk in (0..n).collect::<Vec<_>>().chunks(10) {
        let batch: Vec<UpdateEntry> = chunk.iter().map(|&i| garbage(i)).collect();
        send(&mut r, slots[0], &batch, T0);
    }
    // The first link's own entry already took one.
    let spent = verified.load(Ordering::Relaxed) - before;
    assert_eq!(spent, VERIFY_BURST as usize - 1);
    assert_eq!(r.stats().proofs_invalid, u64::from(VERIFY_BURST) - 1);
    assert_eq!(r.stats().proofs_deferred, 501);
    assert_eq!(r.destinations(), 2, "no forged destination kept");
    // Another link has its own budget.
    send(&mut r, slots[1], &[garbage(n)], T0);
    assert_eq!(r.stats().proofs_invalid, u64::from(VERIFY_BURST));
}
