//! The timer machine on a virtual clock: any sequence of the events a peer reports, with time
//! moving forward in between, keeps its invariants. After every `poll(now)` no deadline is left
//! at or before `now`; a poll before the next deadline does nothing; each action comes at most
//! once per poll; retransmissions are counted and stop after `MAX_TIMER_HANDSHAKES`, when the
//! machine gives up and schedules key erasure; and `stop_all` disarms everything.
#![no_main]

use std::time::Duration;

use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use rovy_control::timers::{MAX_TIMER_HANDSHAKES, TimerAction, Timers, ZERO_KEYS_AFTER};

#[derive(Debug, Arbitrary)]
enum Event {
    Initiated {
        jitter_ms: u16,
    },
    Complete,
    SessionDerived,
    DataSent {
        jitter_ms: u16,
    },
    DataReceived,
    AuthenticatedSent,
    AuthenticatedReceived,
    SetPersistent(Option<u16>),
    StopAll,
    /// Let time pass (milliseconds, or to just before / exactly at the next deadline), then
    /// poll.
    Advance {
        ms: u32,
        to_deadline: Option<bool>,
    },
}

fuzz_target!(|input: (Option<u16>, Vec<Event>)| {
    let (persistent, events) = input;
    let seconds = |s: Option<u16>| {
        s.filter(|&s| s > 0)
            .map(|s| Duration::from_secs(u64::from(s)))
    };
    let mut timers = Timers::new(seconds(persistent));
    let mut now = Duration::from_secs(1_000);
    for event in events.into_iter().take(2048) {
        match event {
            Event::Initiated { jitter_ms } => {
                let jitter = Duration::from_millis(u64::from(jitter_ms));
                timers.on_handshake_initiated(now, jitter);
                let deadline = timers.next_deadline().expect("retransmission armed");
                assert!(deadline > now);
            }
            Event::Complete => {
                timers.on_handshake_complete();
                assert_eq!(timers.handshake_attempts(), 0);
            }
            Event::SessionDerived => timers.on_session_derived(now),
            Event::DataSent { jitter_ms } => {
                timers.on_data_sent(now, Duration::from_millis(u64::from(jitter_ms)))
            }
            Event::DataReceived => timers.on_data_received(now),
            Event::AuthenticatedSent => timers.on_authenticated_sent(now),
            Event::AuthenticatedReceived => timers.on_authenticated_received(now),
            Event::SetPersistent(interval) => {
                timers.set_persistent_keepalive(now, seconds(interval))
            }
            Event::StopAll => {
                timers.stop_all();
                assert_eq!(
                    timers.next_deadline(),
                    None,
                    "stop_all leaves a deadline armed"
                );
                assert_eq!(timers.handshake_attempts(), 0);
            }
            Event::Advance { ms, to_deadline } => {
                let target = match (to_deadline, timers.next_deadline()) {
                    (Some(exact), Some(deadline)) if deadline > now => {
                        if exact {
                            deadline
                        } else {
                            deadline - Duration::from_nanos(1)
                        }
                    }
                    _ => now + Duration::from_millis(u64::from(ms)),
                };
                now = target.max(now);
                poll_and_check(&mut timers, now);
            }
        }
        assert!(timers.handshake_attempts() <= MAX_TIMER_HANDSHAKES);
    }
});

fn poll_and_check(timers: &mut Timers, now: Duration) {
    let before = timers.next_deadline();
    let attempts = timers.handshake_attempts();
    let actions = timers.poll(now);
    let fired: Vec<TimerAction> = actions.iter().collect();
    if before.is_none_or(|deadline| deadline > now) {
        assert!(fired.is_empty(), "fired before its deadline: {fired:?}");
        assert_eq!(
            timers.next_deadline(),
            before,
            "a poll before the deadline changed it"
        );
    }
    for (i, action) in fired.iter().enumerate() {
        assert!(!fired[..i].contains(action), "{action:?} twice in one poll");
        assert!(actions.contains(*action));
    }
    assert_eq!(actions.is_empty(), fired.is_empty());
    if let Some(deadline) = timers.next_deadline() {
        assert!(
            deadline > now,
            "deadline {deadline:?} left in the past at {now:?}"
        );
        // Nothing is scheduled further out than key erasure or the longest persistent interval.
        assert!(deadline <= now + ZERO_KEYS_AFTER.max(Duration::from_secs(65_535)));
    }
    if fired.contains(&TimerAction::SendInitiation { retry: true }) {
        assert_eq!(timers.handshake_attempts(), attempts + 1);
    }
    if fired.contains(&TimerAction::GiveUp) {
        assert_eq!(
            attempts, MAX_TIMER_HANDSHAKES,
            "gave up before the last retry"
        );
        assert_eq!(timers.handshake_attempts(), 0);
        assert!(
            timers.next_deadline().is_some() || fired.contains(&TimerAction::ZeroKeys),
            "giving up neither erased keys nor scheduled it"
        );
        assert!(!fired.contains(&TimerAction::SendInitiation { retry: true }));
    }
}
