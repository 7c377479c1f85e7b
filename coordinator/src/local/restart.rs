//! Whether a local worker that exited is started again: the pure policy, which takes `now`.
//!
//! A worker that exits 0 was told the sweep is finished: it is done. One that exits 2 (a bad
//! flag) or 3 (it cannot run trials: its data folder, its device) would exit the same way
//! again: it is given up at once. Anything else (a crash, a signal, a lost coordinator) is
//! restarted after a backoff of 1 s, 2 s, 4 s, ..., at most [`MAX_RESTARTS`] times within
//! [`WINDOW`]; one more crash within the window gives it up.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Most restarts of one local worker within [`WINDOW`].
pub const MAX_RESTARTS: usize = 3;
/// The window [`MAX_RESTARTS`] counts in: a worker that crashes once an hour is always
/// restarted, one that crashes in a loop is not.
pub const WINDOW: Duration = Duration::from_secs(600);
/// The first backoff; each restart within the window doubles it.
const FIRST_BACKOFF: Duration = Duration::from_secs(1);

/// How a worker process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// It exited with this code.
    Code(i32),
    /// A signal ended it.
    Signal(i32),
}

impl std::fmt::Display for Ended {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Ended::Code(c) => write!(f, "exit status {c}"),
            Ended::Signal(s) => write!(f, "signal {s}"),
        }
    }
}

/// What to do about a worker that ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// It finished (the sweep is over for it).
    Done,
    /// Start it again after this long.
    Restart {
        /// The backoff.
        after: Duration,
    },
    /// Do not start it again, for this reason.
    GiveUp {
        /// Why, for the log and the error.
        why: String,
    },
}

/// The restarts of one local worker.
#[derive(Debug, Default)]
pub struct Restarts {
    /// When it was restarted within the window, oldest first.
    recent: VecDeque<Instant>,
}

impl Restarts {
    /// The decision for a worker that ended as `ended` at `now`; a restart is counted.
    pub fn on_exit(&mut self, ended: Ended, now: Instant) -> Decision {
        match ended {
            Ended::Code(0) => return Decision::Done,
            Ended::Code(2) => {
                return Decision::GiveUp {
                    why: "it refused its arguments (exit status 2): check --local-worker-arg"
                        .to_owned(),
                };
            }
            Ended::Code(3) => {
                return Decision::GiveUp {
                    why: "it cannot run trials (exit status 3: its data folder, its device or \
                          its disk)"
                        .to_owned(),
                };
            }
            Ended::Code(_) | Ended::Signal(_) => {}
        }
        while self
            .recent
            .front()
            .is_some_and(|&t| now.saturating_duration_since(t) >= WINDOW)
        {
            self.recent.pop_front();
        }
        if self.recent.len() >= MAX_RESTARTS {
            return Decision::GiveUp {
                why: format!(
                    "it ended ({ended}) after {MAX_RESTARTS} restarts within {} minutes",
                    WINDOW.as_secs() / 60
                ),
            };
        }
        let after = FIRST_BACKOFF * (1 << self.recent.len());
        self.recent.push_back(now);
        Decision::Restart { after }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_finished_worker_is_done_and_a_misconfigured_one_given_up_at_once() {
        let mut r = Restarts::default();
        let now = Instant::now();
        assert_eq!(r.on_exit(Ended::Code(0), now), Decision::Done);
        assert!(matches!(
            r.on_exit(Ended::Code(2), now),
            Decision::GiveUp { .. }
        ));
        assert!(matches!(
            r.on_exit(Ended::Code(3), now),
            Decision::GiveUp { .. }
        ));
    }

    #[test]
    fn crashes_are_restarted_with_backoff_then_given_up() {
        let mut r = Restarts::default();
        let t0 = Instant::now();
        let after = |d: Decision| match d {
            Decision::Restart { after } => after.as_secs(),
            other => panic!("{other:?}"),
        };
        assert_eq!(after(r.on_exit(Ended::Signal(9), t0)), 1);
        assert_eq!(
            after(r.on_exit(Ended::Code(1), t0 + Duration::from_secs(5))),
            2
        );
        assert_eq!(
            after(r.on_exit(Ended::Code(130), t0 + Duration::from_secs(9))),
            4
        );
        match r.on_exit(Ended::Code(4), t0 + Duration::from_secs(20)) {
            Decision::GiveUp { why } => assert!(why.contains("after 3 restarts"), "{why}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn crashes_far_apart_are_always_restarted() {
        let mut r = Restarts::default();
        let t0 = Instant::now();
        for k in 0..10u32 {
            let d = r.on_exit(Ended::Signal(9), t0 + WINDOW * k);
            assert_eq!(
                d,
                Decision::Restart {
                    after: FIRST_BACKOFF
                },
                "crash {k}"
            );
        }
    }
}
