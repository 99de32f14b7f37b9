//! One router, driven by hand-written messages from its neighbours.

use super::*;

const ME: u8 = 0xAA;

fn router() -> Router {
    Router::new(key(ME), UNIX, T0, Box::new(SimulatedOrigins::new(key(ME))))
}

fn seqno_requests_on(sent: &[(Slot, Vec<u8>)], slot: Slot) -> Vec<SeqnoRequest> {
    sent.iter()
        .filter(|(s, _)| *s == slot)
        .filter_map(|(_, b)| match Message::decode(b).unwrap() {
            Message::SeqnoRequest(r) => Some(r),
            _ => None,
        })
        .collect()
}

fn events(r: &mut Router) -> Vec<RouteEvent> {
    std::iter::from_fn(|| r.poll_event()).collect()
}

/// Runs every deadline up to `until`, returning what was sent.
fn run(r: &mut Router, until: Duration) -> Vec<(Duration, Slot, Vec<u8>)> {
    let mut sent = Vec::new();
    while let Some(at) = r.poll_timeout().filter(|&at| at <= until) {
        r.handle_timeout(at);
        sent.extend(drain(r, at).into_iter().map(|(s, b)| (at, s, b)));
    }
    sent
}

/// A router with neighbours `1..=n` up and announcing themselves (seqno 10).
fn with_neighbours(n: u8) -> (Router, Vec<Slot>) {
    let mut r = router();
    let slots: Vec<Slot> = (1..=n).map(|k| r.link_up(key(k), T0).unwrap()).collect();
    for (k, &slot) in (1..=n).zip(&slots) {
        send(&mut r, slot, &[entry(k, 10, 0, &[])], T0);
    }
    drain(&mut r, T0);
    events(&mut r);
    (r, slots)
}

#[test]
fn a_new_link_gets_hello_table_request_and_full_table_at_once() {
    let (mut r, slots) = with_neighbours(1);
    let s2 = r.link_up(key(2), T0).unwrap();
    let sent = drain(&mut r, T0);
    let kinds: Vec<_> = sent
        .iter()
        .filter(|(s, _)| *s == s2)
        .map(|(_, b)| std::mem::discriminant(&Message::decode(b).unwrap()))
        .collect();
    let hello = Message::Hello(Hello {
        seq: 0,
        time_ms: 0,
        echo: None,
    });
    assert_eq!(kinds[0], std::mem::discriminant(&hello));
    assert!(sent.iter().any(|(s, b)| *s == s2 && b == &[0x23]));
    let table = entries_on(&sent, s2);
    assert!(table.contains(&entry(ME, UNIX as u32, 0, &[])));
    assert!(table.contains(&entry(1, 10, 1, &[slots[0].get()])));
}

#[test]
fn neighbour_announcement_installs_label_and_triggers_an_update() {
    let mut r = router();
    let s1 = r.link_up(key(1), T0).unwrap();
    let s2 = r.link_up(key(2), T0).unwrap();
    drain(&mut r, T0);
    send(
        &mut r,
        s1,
        &[entry(1, 10, 0, &[]), entry(5, 3, 2, &[4, 6])],
        T0,
    );
    let route = r.route(&key(5)).unwrap();
    assert_eq!(route.label.as_slice(), &[s1.get(), 4, 6]);
    assert_eq!(route.metric, 3);
    assert_eq!(route.next_hop, s1);
    let ev = events(&mut r);
    assert!(ev.contains(&RouteEvent::Installed { key: key(5), route }));
    let sent = drain(&mut r, T0);
    assert!(entries_on(&sent, s2).contains(&entry(5, 3, 3, &[s1.get(), 4, 6])));
    assert!(entries_on(&sent, s2).contains(&entry(1, 10, 1, &[s1.get()])));
}

#[test]
fn entries_that_cannot_be_extended_or_impersonate_are_refused() {
    let (mut r, slots) = with_neighbours(1);
    let bad = [
        entry(5, 1, 14, &[1; MAX_LABEL_LEN]),
        entry(6, 1, 0, &[]),
        entry(1, 11, 1, &[3]),
    ];
    send(&mut r, slots[0], &bad, T0);
    assert_eq!(r.stats().entries_refused, 3);
    assert_eq!(r.destinations(), 1);
    assert_eq!(r.route(&key(1)).unwrap().metric, 1);
}

#[test]
fn a_fourteen_byte_route_is_used_but_not_announced() {
    let (mut r, slots) = with_neighbours(2);
    send(
        &mut r,
        slots[0],
        &[entry(5, 1, 13, &[2; MAX_ANNOUNCED_LABEL_LEN])],
        T0,
    );
    assert_eq!(r.route(&key(5)).unwrap().label.len(), MAX_LABEL_LEN);
    let sent = drain(&mut r, T0);
    assert!(entries_on(&sent, slots[1]).iter().all(|e| e.key != key(5)));
}

#[test]
fn selection_switches_only_for_a_route_ten_percent_better() {
    let (mut r, slots) = with_neighbours(2);
    send(&mut r, slots[0], &[entry(5, 1, 10, &[3; 10])], T0);
    assert_eq!(r.route(&key(5)).unwrap().metric, 11);
    send(&mut r, slots[1], &[entry(5, 1, 9, &[3; 9])], T0);
    assert_eq!(
        r.route(&key(5)).unwrap().next_hop,
        slots[0],
        "10 is not 10 % better than 11"
    );
    send(&mut r, slots[1], &[entry(5, 1, 8, &[3; 8])], T0);
    assert_eq!(r.route(&key(5)).unwrap().next_hop, slots[1]);
    assert_eq!(r.route(&key(5)).unwrap().metric, 9);
}

#[test]
fn unfeasible_route_is_never_selected_and_starvation_asks_the_origin() {
    let (mut r, slots) = with_neighbours(2);
    send(&mut r, slots[0], &[entry(5, 7, 1, &[3])], T0);
    // Same seqno, neighbour not strictly closer than our distance 2: unfeasible.
    send(&mut r, slots[1], &[entry(5, 7, 2, &[3, 3])], T0);
    drain(&mut r, T0);
    events(&mut r);
    send(&mut r, slots[0], &[entry(5, 7, METRIC_INFINITY, &[])], T0);
    assert_eq!(r.route(&key(5)), None);
    assert!(events(&mut r).contains(&RouteEvent::Removed { key: key(5) }));
    let sent = drain(&mut r, T0);
    let asked = seqno_requests_on(&sent, slots[1]);
    assert_eq!(
        asked,
        [SeqnoRequest {
            key: key(5),
            seqno: 8,
            hops: SEQNO_REQUEST_HOPS
        }]
    );
    // Repeated once a second while starving.
    let later = run(&mut r, T0 + Duration::from_millis(1500));
    let repeats: Vec<_> = later
        .iter()
        .filter(|(_, s, b)| *s == slots[1] && b[0] == 0x22)
        .map(|(at, _, _)| *at)
        .collect();
    assert_eq!(repeats, [T0 + SEQNO_REQUEST_INTERVAL]);
    // The origin's newer seqno makes the same route feasible.
    send(
        &mut r,
        slots[1],
        &[entry(5, 8, 2, &[3, 3])],
        T0 + Duration::from_secs(2),
    );
    assert_eq!(r.route(&key(5)).unwrap().next_hop, slots[1]);
}

#[test]
fn a_dead_link_fails_over_to_a_kept_alternate_at_once() {
    let (mut r, slots) = with_neighbours(3);
    send(&mut r, slots[0], &[entry(5, 1, 1, &[7])], T0);
    send(&mut r, slots[1], &[entry(5, 1, 1, &[8])], T0);
    send(&mut r, slots[2], &[entry(5, 1, 1, &[9])], T0);
    events(&mut r);
    assert_eq!(r.route(&key(5)).unwrap().next_hop, slots[0]);
    let info = r.routes(T0).find(|i| *i.key == key(5)).unwrap();
    assert_eq!(info.alternates().count(), 2);
    assert!(info.alternates().all(|a| a.feasible));
    r.link_down(slots[0], T0).unwrap();
    let route = r.route(&key(5)).unwrap();
    assert_eq!(route.label.as_slice(), &[slots[1].get(), 8]);
    assert!(events(&mut r).contains(&RouteEvent::Changed { key: key(5), route }));
}

#[test]
fn a_route_error_moves_the_destination_to_its_next_route_at_once() {
    let (mut r, slots) = with_neighbours(2);
    send(&mut r, slots[0], &[entry(5, 1, 1, &[7])], T0);
    send(&mut r, slots[1], &[entry(5, 1, 1, &[8])], T0);
    events(&mut r);
    let broken = r.route(&key(5)).unwrap().label;
    assert_eq!(broken.as_slice(), &[slots[0].get(), 7]);
    let other = Label::new(&[slots[1].get(), 9]).unwrap();
    assert_eq!(
        r.route_failed(&other, T0),
        0,
        "no destination uses that label"
    );
    assert_eq!(r.route_failed(&broken, T0), 1);
    let route = r.route(&key(5)).unwrap();
    assert_eq!(route.label.as_slice(), &[slots[1].get(), 8]);
    assert!(events(&mut r).contains(&RouteEvent::Changed { key: key(5), route }));
    assert!(
        r.route(&key(1)).is_some(),
        "the neighbour itself, on a label of its own, keeps its route"
    );
}

#[test]
fn idle_link_gets_hellos_and_a_silent_one_dies_at_3_5_s() {
    let (mut r, slots) = with_neighbours(1);
    let sent = run(&mut r, T0 + Duration::from_secs(5));
    let hellos: Vec<_> = sent
        .iter()
        .filter(|(_, _, b)| b[0] == 0x20)
        .map(|(at, _, _)| *at)
        .collect();
    let secs = |s: u64| T0 + Duration::from_secs(s);
    assert_eq!(hellos, [secs(1), secs(2), secs(3)]);
    assert!(events(&mut r).contains(&RouteEvent::LinkDead { slot: slots[0] }));
    assert_eq!(r.route(&key(1)), None);
    assert_eq!(r.links().count(), 0);
    assert!(r.handle_message(slots[0], &[0x23], secs(5)).is_err());
}

#[test]
fn a_link_heard_from_stays_alive() {
    let (mut r, slots) = with_neighbours(1);
    for ms in (500..10_000).step_by(500) {
        let at = T0 + Duration::from_millis(ms);
        run(&mut r, at);
        r.link_heard(slots[0], at);
    }
    assert_eq!(r.links().count(), 1);
    assert!(events(&mut r).is_empty());
}

#[test]
fn a_retraction_is_sent_three_times_200_ms_apart() {
    let (mut r, slots) = with_neighbours(2);
    send(&mut r, slots[0], &[entry(5, 4, 1, &[7])], T0);
    drain(&mut r, T0);
    send(&mut r, slots[0], &[entry(5, 4, METRIC_INFINITY, &[])], T0);
    let mut sent: Vec<_> = drain(&mut r, T0)
        .into_iter()
        .map(|(s, b)| (T0, s, b))
        .collect();
    sent.extend(run(&mut r, T0 + Duration::from_secs(2)));
    let retractions: Vec<_> = sent
        .iter()
        .filter(|(_, s, _)| *s == slots[1])
        .filter(|(_, _, b)| {
            entries_on(&[(slots[1], b.clone())], slots[1]).contains(&entry(
                5,
                4,
                METRIC_INFINITY,
                &[],
            ))
        })
        .map(|(at, _, _)| *at)
        .collect();
    let ms = |m: u64| T0 + Duration::from_millis(m);
    assert_eq!(retractions, [ms(0), ms(200), ms(400)]);
}

#[test]
fn a_route_not_refreshed_for_28_s_expires() {
    let (mut r, slots) = with_neighbours(1);
    send(&mut r, slots[0], &[entry(5, 4, 1, &[7])], T0);
    for s in 1..40 {
        r.link_heard(slots[0], T0 + Duration::from_secs(s));
        run(&mut r, T0 + Duration::from_secs(s));
        let expected = s < ROUTE_EXPIRY.as_secs();
        assert_eq!(r.route(&key(5)).is_some(), expected, "at +{s} s");
        if s == 20 {
            send(
                &mut r,
                slots[0],
                &[entry(1, 10, 0, &[])],
                T0 + Duration::from_secs(s),
            );
        }
    }
    assert!(r.route(&key(1)).is_some(), "refreshed at +20 s");
}

#[test]
fn the_origin_raises_its_seqno_at_most_once_a_second() {
    let (mut r, slots) = with_neighbours(1);
    let ask = |seqno| {
        let mut b = [0; SEQNO_REQ_LEN];
        SeqnoRequest {
            key: key(ME),
            seqno,
            hops: 5,
        }
        .encode(&mut b)
        .unwrap();
        b
    };
    let t = T0 + Duration::from_secs(5);
    let first = UNIX as u32;
    r.handle_message(slots[0], &ask(first + 1), t).unwrap();
    assert_eq!(r.seqno(), first + 5, "max(last + 1, unix seconds)");
    assert!(entries_on(&drain(&mut r, t), slots[0]).contains(&entry(ME, first + 5, 0, &[])));
    r.handle_message(slots[0], &ask(first + 6), t + Duration::from_millis(500))
        .unwrap();
    assert_eq!(r.seqno(), first + 5);
    r.handle_message(slots[0], &ask(first + 6), t + Duration::from_secs(1))
        .unwrap();
    assert_eq!(r.seqno(), first + 6);
    // An old seqno is answered with the current one.
    r.handle_message(slots[0], &ask(first), t + Duration::from_secs(1))
        .unwrap();
    let sent = drain(&mut r, t + Duration::from_secs(1));
    assert!(entries_on(&sent, slots[0]).contains(&entry(ME, first + 6, 0, &[])));
}

#[test]
fn a_seqno_request_goes_towards_the_origin_once_per_second() {
    let (mut r, slots) = with_neighbours(2);
    send(&mut r, slots[1], &[entry(5, 4, 1, &[7])], T0);
    drain(&mut r, T0);
    let mut b = [0; SEQNO_REQ_LEN];
    SeqnoRequest {
        key: key(5),
        seqno: 5,
        hops: 3,
    }
    .encode(&mut b)
    .unwrap();
    r.handle_message(slots[0], &b, T0).unwrap();
    r.handle_message(slots[0], &b, T0 + Duration::from_millis(10))
        .unwrap();
    let sent = drain(&mut r, T0);
    assert_eq!(
        seqno_requests_on(&sent, slots[1]),
        [SeqnoRequest {
            key: key(5),
            seqno: 5,
            hops: 2
        }]
    );
    // A route already that new is answered directly.
    SeqnoRequest {
        key: key(5),
        seqno: 4,
        hops: 3,
    }
    .encode(&mut b)
    .unwrap();
    r.handle_message(slots[0], &b, T0).unwrap();
    assert!(entries_on(&drain(&mut r, T0), slots[0]).contains(&entry(
        5,
        4,
        2,
        &[slots[1].get(), 7]
    )));
}

#[test]
fn a_seqno_request_from_the_next_hop_goes_on_through_another_route() {
    // Found by the simulator: on a ring, a node that lost its route asked its neighbour on
    // the other side, whose selected route still went back through the asker (the request
    // travels ahead of the retraction); the request was dropped and traffic waited a second
    // for the repeat.
    let (mut r, slots) = with_neighbours(2);
    send(&mut r, slots[0], &[entry(5, 4, 1, &[7])], T0);
    send(&mut r, slots[1], &[entry(5, 4, 3, &[8, 9, 10])], T0);
    drain(&mut r, T0);
    assert_eq!(r.route(&key(5)).unwrap().next_hop, slots[0]);
    let mut b = [0; SEQNO_REQ_LEN];
    SeqnoRequest {
        key: key(5),
        seqno: 5,
        hops: 3,
    }
    .encode(&mut b)
    .unwrap();
    r.handle_message(slots[0], &b, T0).unwrap();
    let sent = drain(&mut r, T0);
    assert_eq!(seqno_requests_on(&sent, slots[0]), []);
    assert_eq!(
        seqno_requests_on(&sent, slots[1]),
        [SeqnoRequest {
            key: key(5),
            seqno: 5,
            hops: 2
        }]
    );
}

#[test]
fn a_seqno_request_with_more_hops_left_goes_on_within_the_second() {
    // Found by the simulator: on a ring, the first request to reach a node had come the long
    // way and ran out of hops short of the origin; the nearer nodes' own requests were taken
    // for its repeats and dropped, so traffic waited a second for the next round.
    let (mut r, slots) = with_neighbours(2);
    send(&mut r, slots[1], &[entry(5, 4, 1, &[7])], T0);
    drain(&mut r, T0);
    let mut forwarded_hops = Vec::new();
    for hops in [3, 2, 10, 9, 10] {
        let mut b = [0; SEQNO_REQ_LEN];
        SeqnoRequest {
            key: key(5),
            seqno: 5,
            hops,
        }
        .encode(&mut b)
        .unwrap();
        r.handle_message(slots[0], &b, T0).unwrap();
        let sent = drain(&mut r, T0);
        forwarded_hops.extend(seqno_requests_on(&sent, slots[1]).iter().map(|r| r.hops));
    }
    assert_eq!(forwarded_hops, [2, 9]);
}

#[test]
fn losing_the_last_route_asks_every_neighbour_for_a_newer_seqno() {
    // Found by the simulator: when a hub died, a node's three kept routes all ran through it;
    // with nothing left it asked no one, and waited up to 8 s for a full table from the
    // neighbour whose route it had not kept.
    let (mut r, slots) = with_neighbours(4);
    send(&mut r, slots[0], &[entry(5, 4, 1, &[7])], T0);
    send(&mut r, slots[1], &[entry(5, 4, 2, &[7, 8])], T0);
    send(&mut r, slots[2], &[entry(5, 4, 2, &[7, 9])], T0);
    send(&mut r, slots[3], &[entry(5, 4, 3, &[7, 8, 9])], T0);
    send(&mut r, slots[1], &[entry(5, 4, METRIC_INFINITY, &[])], T0);
    send(&mut r, slots[2], &[entry(5, 4, METRIC_INFINITY, &[])], T0);
    drain(&mut r, T0);
    assert_eq!(r.route(&key(5)).unwrap().next_hop, slots[0]);
    r.link_down(slots[0], T0).unwrap();
    assert_eq!(r.route(&key(5)), None);
    let sent = drain(&mut r, T0);
    let asked = SeqnoRequest {
        key: key(5),
        seqno: 5,
        hops: SEQNO_REQUEST_HOPS,
    };
    for &slot in &slots[1..] {
        let for_5: Vec<_> = seqno_requests_on(&sent, slot)
            .into_iter()
            .filter(|r| r.key == key(5))
            .collect();
        assert_eq!(for_5, [asked], "slot {slot}");
    }
    // Once: nothing more is heard, so nothing repeats it.
    let later = run(&mut r, T0 + Duration::from_secs(5));
    assert!(
        later
            .iter()
            .all(|(_, _, b)| !matches!(Message::decode(b).unwrap(), Message::SeqnoRequest(_)))
    );
}

#[test]
fn a_return_path_is_used_only_without_an_announced_route() {
    let (mut r, slots) = with_neighbours(2);
    let back = label(&[slots[1].get(), 4, 4]);
    r.learn_return_path(&key(5), back, T0);
    assert_eq!(r.route(&key(5)).unwrap().label, back);
    let info = r.routes(T0).find(|i| *i.key == key(5)).unwrap();
    assert_eq!(info.route.source, RouteSource::ReturnPath);
    assert!(
        entries_on(&drain(&mut r, T0), slots[0])
            .iter()
            .all(|e| e.key != key(5))
    );
    send(&mut r, slots[0], &[entry(5, 1, 5, &[9; 5])], T0);
    let announced = r.route(&key(5)).unwrap();
    assert_eq!(announced.next_hop, slots[0]);
    assert_eq!(announced.source, RouteSource::Announced);
    send(&mut r, slots[0], &[entry(5, 1, METRIC_INFINITY, &[])], T0);
    assert_eq!(r.route(&key(5)).unwrap().label, back);
    assert_eq!(r.route(&key(5)).unwrap().source, RouteSource::ReturnPath);
    let later = T0 + ROUTE_EXPIRY;
    for &s in &slots {
        r.link_heard(s, later);
    }
    run(&mut r, later);
    assert_eq!(r.route(&key(5)), None);
    // A way back over a slot with no link is ignored.
    r.learn_return_path(&key(6), label(&[200, 1]), later);
    assert_eq!(r.route(&key(6)), None);
}

#[test]
fn destinations_beyond_the_cap_are_refused_and_counted() {
    let (mut r, slots) = with_neighbours(1);
    let mut batch = Vec::new();
    // Each batch comes after the link has earned the verifications its proofs need.
    let mut now = T0;
    for i in 0..MAX_DESTINATIONS as u32 + 9 {
        let mut k = [0x55; 32];
        k[..4].copy_from_slice(&i.to_le_bytes());
        batch.push(UpdateEntry {
            key: k,
            seqno: 1,
            metric: 1,
            label: label(&[3]),
            proof: Some(SimulatedOrigins::proof(&k, 1)),
        });
        if batch.len() == 30 {
            send(&mut r, slots[0], &batch, now);
            batch.clear();
            now += Duration::from_secs(30) / super::super::origin::VERIFY_RATE;
        }
    }
    send(&mut r, slots[0], &batch, now);
    assert_eq!(r.stats().proofs_deferred, 0);
    assert_eq!(r.destinations(), MAX_DESTINATIONS);
    assert_eq!(
        r.stats().destinations_refused,
        10,
        "9 over the cap plus the neighbour's slot"
    );
}

#[test]
fn the_full_table_is_split_over_updates_the_buffer_can_hold() {
    let (mut r, slots) = with_neighbours(1);
    let many: Vec<_> = (10..70).map(|k| entry(k, 1, 2, &[4, 4])).collect();
    send(&mut r, slots[0], &many[..30], T0);
    send(&mut r, slots[0], &many[30..], T0);
    drain(&mut r, T0);
    let s2 = r.link_up(key(2), T0).unwrap();
    let mut buf = [0u8; MIN_TRANSMIT_BUF * 3];
    let mut entries = Vec::new();
    while let Some((slot, len)) = r.poll_transmit(T0, &mut buf) {
        assert!(len <= buf.len());
        entries.extend(entries_on(&[(slot, buf[..len].to_vec())], s2));
    }
    assert_eq!(
        entries.len(),
        1 + 1 + many.len(),
        "own entry, neighbour, 60 routes"
    );
    assert!(
        r.poll_transmit(T0, &mut [0; MIN_TRANSMIT_BUF - 1])
            .is_none()
    );
}

#[test]
fn hellos_measure_the_round_trip_time() {
    let mut a = router();
    let mut b = Router::new(key(1), UNIX, T0, Box::new(SimulatedOrigins::new(key(1))));
    let sa = a.link_up(key(1), T0).unwrap();
    let sb = b.link_up(key(ME), T0).unwrap();
    let ms = |m| T0 + Duration::from_millis(m);
    let hello_of =
        |sent: Vec<(Slot, Vec<u8>)>| sent.into_iter().find(|(_, m)| m[0] == 0x20).unwrap().1;
    let from_a = hello_of(drain(&mut a, ms(0)));
    b.handle_message(sb, &from_a, ms(10)).unwrap();
    let from_b = hello_of(drain(&mut b, ms(15)));
    a.handle_message(sa, &from_b, ms(25)).unwrap();
    assert_eq!(a.link_rtt(sa), Some(Duration::from_millis(20)));
}

#[test]
fn a_lost_destination_keeps_its_feasibility_distance_then_is_forgotten() {
    let (mut r, slots) = with_neighbours(2);
    send(&mut r, slots[0], &[entry(5, 4, 1, &[7])], T0);
    send(&mut r, slots[0], &[entry(5, 4, METRIC_INFINITY, &[])], T0);
    let stale = entry(5, 4, 2, &[8, 8]);
    send(&mut r, slots[1], &[stale], T0);
    assert_eq!(r.route(&key(5)), None, "not closer than what was announced");
    send(&mut r, slots[1], &[entry(5, 4, METRIC_INFINITY, &[])], T0);
    assert_eq!(r.destinations(), 3);
    let mut last = T0;
    for s in 1..=FEASIBILITY_HOLD.as_secs() + 1 {
        last = T0 + Duration::from_secs(s);
        for &slot in &slots {
            r.link_heard(slot, last);
        }
        run(&mut r, last);
        events(&mut r);
    }
    assert_eq!(r.destinations(), 2, "only the neighbours remain");
    send(&mut r, slots[1], &[stale], last);
    assert_eq!(r.route(&key(5)).unwrap().next_hop, slots[1]);
}

#[test]
fn refused_messages_name_the_drop_reason_they_are_counted_under() {
    let (mut r, slots) = with_neighbours(1);
    let mut hello = [0u8; HELLO_LEN];
    let hello_len = Hello {
        seq: 1,
        time_ms: 5,
        echo: None,
    }
    .encode(&mut hello)
    .unwrap();
    r.handle_message(slots[0], &hello[..hello_len], T0).unwrap();
    let mut long_label = encode_update(&[entry(1, 1, 1, &[7; MAX_LABEL_LEN])]);
    long_label[UPDATE_HEADER_LEN + ENTRY_MIN_LEN - 1] = MAX_LABEL_LEN as u8 + 1;
    long_label.push(7);
    let mut trailing = hello[..hello_len].to_vec();
    trailing.push(1);
    let refused: [(&[u8], DropReason); 6] = [
        (&hello[..hello_len - 1], DropReason::FrameTruncated),
        (&[0x21], DropReason::FrameTruncated),
        (&trailing, DropReason::BadLength),
        (&long_label, DropReason::BadLabel),
        (&[0x30, 0, 0], DropReason::UnknownFrame),
        (&[], DropReason::FrameTruncated),
    ];
    for (bytes, reason) in refused {
        let error = r.handle_message(slots[0], bytes, T0).unwrap_err();
        assert_eq!(error.drop_reason(), reason, "{bytes:02x?}: {error}");
    }
    let dead = Slot::new(200).unwrap();
    let error = r.handle_message(dead, &hello[..hello_len], T0).unwrap_err();
    assert_eq!(error.drop_reason(), DropReason::DeadSlot);
}
