use super::*;

const fn s(secs: u64) -> Duration {
    Duration::from_secs(secs)
}
const fn ms(millis: u64) -> Duration {
    Duration::from_millis(millis)
}

fn actions(t: &mut Timers, now: Duration) -> Vec<TimerAction> {
    t.poll(now).iter().collect()
}

#[test]
fn constants_are_the_whitepapers() {
    assert_eq!(MAX_TIMER_HANDSHAKES, 18);
    assert_eq!(ZERO_KEYS_AFTER, s(540));
    assert_eq!(REKEY_ON_RECEIVE_AGE, s(165));
    assert_eq!(REKEY_AFTER_TIME, s(120));
    assert_eq!(REJECT_AFTER_TIME, s(180));
}

#[test]
fn retransmits_every_rekey_timeout_plus_jitter_then_gives_up_after_90s() {
    let mut t = Timers::new(None);
    let jitter = ms(200);
    let start = s(1000);
    t.on_handshake_initiated(start, jitter);
    let mut now = start;
    let mut sent = 0;
    loop {
        let deadline = t.next_deadline().expect("retransmit armed");
        assert_eq!(deadline, now + REKEY_TIMEOUT + jitter);
        assert!(actions(&mut t, deadline - ms(1)).is_empty(), "fires early");
        now = deadline;
        let fired = actions(&mut t, now);
        if fired == [TimerAction::GiveUp] {
            break;
        }
        assert_eq!(fired, [TimerAction::SendInitiation { retry: true }]);
        sent += 1;
        t.on_handshake_initiated(now, jitter);
    }
    assert_eq!(sent, 18, "18 retransmissions after the first initiation");
    // 19 intervals of 5.2 s after the first attempt: the 90 s attempt time plus jitter.
    assert_eq!(now - start, (REKEY_TIMEOUT + jitter) * 19);
    assert!(now - start >= REKEY_ATTEMPT_TIME);
    // Giving up schedules key erasure and nothing else.
    assert_eq!(t.next_deadline(), Some(now + ZERO_KEYS_AFTER));
    assert_eq!(
        actions(&mut t, now + ZERO_KEYS_AFTER),
        [TimerAction::ZeroKeys]
    );
    assert_eq!(t.next_deadline(), None);
}

#[test]
fn jitter_is_capped() {
    let mut t = Timers::new(None);
    t.on_handshake_initiated(s(0), s(3));
    assert_eq!(t.next_deadline(), Some(REKEY_TIMEOUT + MAX_JITTER));
}

#[test]
fn completed_handshake_stops_retransmission_and_resets_attempts() {
    let mut t = Timers::new(None);
    t.on_handshake_initiated(s(0), ms(0));
    assert_eq!(
        actions(&mut t, s(5)),
        [TimerAction::SendInitiation { retry: true }]
    );
    t.on_handshake_initiated(s(5), ms(0));
    assert_eq!(t.handshake_attempts(), 1);
    t.on_handshake_complete();
    t.on_session_derived(s(6));
    assert_eq!(t.handshake_attempts(), 0);
    assert!(actions(&mut t, s(100)).is_empty());
    assert_eq!(t.next_deadline(), Some(s(6) + ZERO_KEYS_AFTER));
}

#[test]
fn keys_zeroed_540s_after_the_last_session_unless_renewed() {
    let mut t = Timers::new(None);
    t.on_session_derived(s(10));
    assert!(actions(&mut t, s(549)).is_empty());
    t.on_session_derived(s(100));
    assert!(
        actions(&mut t, s(550)).is_empty(),
        "renewed keys push erasure back"
    );
    assert!(actions(&mut t, s(639)).is_empty());
    assert_eq!(actions(&mut t, s(640)), [TimerAction::ZeroKeys]);
}

#[test]
fn passive_keepalive_10s_after_receiving_without_sending() {
    let mut t = Timers::new(None);
    t.on_data_received(s(1));
    assert!(actions(&mut t, ms(10_999)).is_empty());
    assert_eq!(actions(&mut t, s(11)), [TimerAction::SendKeepalive]);
    assert!(
        actions(&mut t, s(30)).is_empty(),
        "one keepalive per receipt"
    );
}

#[test]
fn sending_anything_cancels_the_passive_keepalive() {
    let mut t = Timers::new(None);
    t.on_data_received(s(1));
    t.on_authenticated_sent(s(5));
    assert!(actions(&mut t, s(20)).is_empty());
}

#[test]
fn data_received_while_keepalive_pending_rearms_after_it_fires() {
    let mut t = Timers::new(None);
    t.on_data_received(s(0));
    t.on_data_received(s(4));
    assert_eq!(actions(&mut t, s(10)), [TimerAction::SendKeepalive]);
    assert_eq!(t.next_deadline(), Some(s(20)));
    assert_eq!(actions(&mut t, s(20)), [TimerAction::SendKeepalive]);
    assert_eq!(t.next_deadline(), None);
}

#[test]
fn new_handshake_when_sent_data_gets_no_reply_for_15s() {
    let mut t = Timers::new(None);
    t.on_data_sent(s(0), ms(100));
    t.on_data_sent(s(3), ms(100)); // does not push the deadline back
    assert!(actions(&mut t, ms(15_099)).is_empty());
    assert_eq!(
        actions(&mut t, ms(15_100)),
        [TimerAction::SendInitiation { retry: false }]
    );
}

#[test]
fn reply_cancels_the_new_handshake_timer() {
    let mut t = Timers::new(None);
    t.on_data_sent(s(0), ms(0));
    t.on_authenticated_received(s(2));
    assert!(actions(&mut t, s(60)).is_empty());
}

#[test]
fn persistent_keepalive_after_interval_of_silence_both_ways() {
    let mut t = Timers::new(Some(s(25)));
    t.on_authenticated_sent(s(0));
    assert!(actions(&mut t, s(24)).is_empty());
    t.on_authenticated_received(s(20));
    assert!(actions(&mut t, s(44)).is_empty(), "traffic re-arms it");
    assert_eq!(actions(&mut t, s(45)), [TimerAction::SendKeepalive]);
    t.set_persistent_keepalive(s(46), None);
    assert!(actions(&mut t, s(500)).is_empty());
}

#[test]
fn one_keepalive_when_passive_and_persistent_fire_together() {
    let mut t = Timers::new(Some(s(10)));
    t.on_authenticated_received(s(0));
    t.on_data_received(s(0));
    assert_eq!(actions(&mut t, s(10)), [TimerAction::SendKeepalive]);
}

#[test]
fn stop_all_disarms_but_keeps_the_interval() {
    let mut t = Timers::new(Some(s(25)));
    t.on_handshake_initiated(s(0), ms(0));
    t.on_session_derived(s(0));
    t.on_data_received(s(0));
    t.stop_all();
    assert_eq!(t.next_deadline(), None);
    t.on_authenticated_sent(s(1));
    assert_eq!(t.next_deadline(), Some(s(26)));
}
