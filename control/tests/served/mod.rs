//! A status API server with a stand-in for the control thread: the tests' [`Answers`] answer
//! the calls the API thread hands over, as the control loop does between its turns.

use std::path::Path;
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use rovy_control::api::calls::Limits;
use rovy_control::api::{API_LIMITS, Answers, ApiCalls, ApiServer, answer, serve};
use rovy_dataplane::sys::EventFd;

/// A listening API socket and the calls it hands over.
pub struct Served {
    server: ApiServer,
    calls: ApiCalls,
}

impl Served {
    /// Serves `path` as a node does.
    pub fn bind(path: &Path) -> std::io::Result<Served> {
        Served::bind_with(path, API_LIMITS)
    }

    /// Serves `path` with `limits`.
    pub fn bind_with(path: &Path, limits: Limits) -> std::io::Result<Served> {
        let wake = Arc::new(EventFd::new()?);
        let (server, calls) = serve(path, limits, wake)?;
        Ok(Served { server, calls })
    }

    pub fn path(&self) -> &Path {
        self.server.path()
    }

    /// Answers every call waiting from `answers`; returns how many there were.
    pub fn answer_waiting(&self, answers: &mut impl Answers) -> usize {
        let mut answered = 0;
        while let Some(call) = self.calls.next_call() {
            call.answer_with(|request| answer(answers, request));
            answered += 1;
        }
        answered
    }

    /// Runs `client` on a thread while this thread answers from `answers`.
    pub fn while_serving<T: Send>(
        &self,
        answers: &mut impl Answers,
        client: impl FnOnce() -> T + Send,
    ) -> T {
        thread::scope(|scope| {
            let client = scope.spawn(client);
            while !client.is_finished() {
                self.answer_waiting(answers);
                thread::sleep(Duration::from_millis(1));
            }
            client.join().unwrap()
        })
    }
}
