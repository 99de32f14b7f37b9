//! The replay window against its definition: a counter is accepted once, if below the reject
//! limit and no more than the window size below the greatest accepted so far. The model is a
//! `HashSet` of every counter accepted; `check` never changes anything and always predicts
//! `mark`.
#![no_main]

use std::collections::HashSet;

use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use rovy_dataplane::replay::{ReplayWindow, WINDOW_SIZE};
use rovy_dataplane::session::REJECT_AFTER_MESSAGES;

#[derive(Debug, Arbitrary)]
enum Op {
    /// A counter anywhere.
    Absolute(u64),
    /// A counter relative to the greatest seen: around the window's edges and just above.
    Relative(i16),
    /// Near the reject limit.
    NearLimit(u16),
}

#[derive(Default)]
struct Model {
    seen: HashSet<u64>,
    greatest: Option<u64>,
}

impl Model {
    fn accepts(&self, counter: u64) -> bool {
        counter < REJECT_AFTER_MESSAGES
            && !self.seen.contains(&counter)
            && self
                .greatest
                .is_none_or(|g| counter > g || g - counter <= WINDOW_SIZE)
    }
}

fuzz_target!(|ops: Vec<(Op, bool)>| {
    let mut window = ReplayWindow::new();
    let mut model = Model::default();
    for (op, mark) in ops.into_iter().take(4096) {
        let greatest = model.greatest.unwrap_or(0);
        let counter = match op {
            Op::Absolute(c) => c,
            Op::Relative(d) => greatest.wrapping_add_signed(i64::from(d) * 2),
            Op::NearLimit(d) => REJECT_AFTER_MESSAGES.wrapping_sub(u64::from(d)),
        };
        let expected = model.accepts(counter);
        assert_eq!(
            window.check(counter),
            expected,
            "check({counter}) after {greatest}"
        );
        if mark {
            assert_eq!(
                window.mark(counter),
                expected,
                "mark({counter}) after {greatest}"
            );
            if expected {
                model.seen.insert(counter);
                model.greatest = Some(greatest.max(counter));
            }
            assert!(!window.check(counter), "a marked counter is accepted again");
        }
    }
});
