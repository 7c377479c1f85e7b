//! The one row type of the `trials` table (what the state machine writes: everything but what
//! the grid sets), read back at a restart and written after every change, and the conversions
//! between it and a [`Trial`].

use std::sync::LazyLock;
use std::time::Instant;

use sweep_common::{EpochMetrics, FinalMetrics, TrialId, TrialSpec, WorkerId};
use thin_vec::ThinVec;

use crate::state::{
    AttemptFailure, Checkpoint, Checkpoints, Lease, SetAside, Success, Trial, TrialState,
};

/// The columns of a [`TrialRow`], in the order of its fields (after `num`, the key).
const COLUMNS: [&str; 22] = [
    "state",
    "attempts",
    "counted_attempts",
    "lease_worker",
    "lease_attempt",
    "success_attempt",
    "success_worker",
    "wall_seconds",
    "result",
    "reason",
    "failures",
    "weights",
    "checkpoint",
    "resumed_from",
    "unstarted_attempts",
    "previous_checkpoint",
    "set_aside",
    "cancelled",
    "lease_granted",
    "stopped_epoch",
    "queued_ahead",
    "spec",
];

/// Reads every trial's row: `id`, then [`COLUMNS`].
pub(super) static SELECT: LazyLock<String> =
    LazyLock::new(|| format!("SELECT id, {} FROM trials", COLUMNS.join(", ")));

/// Writes a trial's row (but its spec, which the grid sets): `num` is `?1`, then [`COLUMNS`].
static UPDATE: LazyLock<String> = LazyLock::new(|| {
    let set: Vec<String> = COLUMNS[..COLUMNS.len() - 1]
        .iter()
        .enumerate()
        .map(|(i, c)| match *c {
            // An archived trial's row keeps the result it was committed with: its matrices are
            // no longer in memory (`?` after the columns: `TrialRow::keep_result`).
            "result" => format!(
                "result = CASE WHEN ?{} THEN result ELSE ?{} END",
                COLUMNS.len() + 1,
                i + 2
            ),
            _ => format!("{c} = ?{}", i + 2),
        })
        .collect();
    format!("UPDATE trials SET {} WHERE num = ?1", set.join(", "))
});

/// A trial's row as stored: the state machine's columns, and the spec (read back, never written
/// here: the grid sets it).
#[derive(Debug)]
pub(super) struct TrialRow {
    pub(super) id: TrialId,
    state: String,
    attempts: u32,
    counted_attempts: u32,
    lease_worker: Option<String>,
    lease_attempt: Option<u32>,
    success_attempt: Option<u32>,
    success_worker: Option<String>,
    wall_seconds: Option<f64>,
    result: Option<String>,
    reason: Option<String>,
    failures: String,
    weights: Option<String>,
    checkpoint: Option<String>,
    resumed_from: u32,
    unstarted_attempts: u32,
    previous_checkpoint: Option<String>,
    set_aside: Option<String>,
    cancelled: bool,
    lease_granted: Option<f64>,
    /// The rung a stopped trial was stopped at.
    stopped_epoch: Option<u32>,
    /// A pending trial's place when it was queued ahead of the grid's order.
    queued_ahead: Option<i64>,
    /// Empty when written (the grid sets the spec).
    spec: String,
    /// Written only: the trial is archived, so the stored result (with its matrices) stays.
    keep_result: bool,
}

impl TrialRow {
    /// Reads a row of [`SELECT`]; a row whose id does not decode is an error naming it.
    pub(super) fn read(r: &rusqlite::Row<'_>) -> rusqlite::Result<Result<TrialRow, String>> {
        let id: String = r.get(0)?;
        let Ok(trial) = id.parse::<TrialId>() else {
            return Ok(Err(id));
        };
        Ok(Ok(TrialRow {
            id: trial,
            state: r.get(1)?,
            attempts: r.get(2)?,
            counted_attempts: r.get(3)?,
            lease_worker: r.get(4)?,
            lease_attempt: r.get(5)?,
            success_attempt: r.get(6)?,
            success_worker: r.get(7)?,
            wall_seconds: r.get(8)?,
            result: r.get(9)?,
            reason: r.get(10)?,
            failures: r.get(11)?,
            weights: r.get(12)?,
            checkpoint: r.get(13)?,
            resumed_from: r.get(14)?,
            unstarted_attempts: r.get(15)?,
            previous_checkpoint: r.get(16)?,
            set_aside: r.get(17)?,
            cancelled: r.get(18)?,
            lease_granted: r.get(19)?,
            stopped_epoch: r.get(20)?,
            queued_ahead: r.get(21)?,
            spec: r.get(22)?,
            keep_result: false,
        }))
    }

    /// Writes it (but its spec) into row `num`.
    pub(super) fn apply(&self, tx: &rusqlite::Transaction<'_>, num: i64) -> rusqlite::Result<()> {
        tx.prepare_cached(&UPDATE)?
            .execute(rusqlite::params![
                num,
                self.state,
                self.attempts,
                self.counted_attempts,
                self.lease_worker,
                self.lease_attempt,
                self.success_attempt,
                self.success_worker,
                self.wall_seconds,
                self.result,
                self.reason,
                self.failures,
                self.weights,
                self.checkpoint,
                self.resumed_from,
                self.unstarted_attempts,
                self.previous_checkpoint,
                self.set_aside,
                self.cancelled,
                self.lease_granted,
                self.stopped_epoch,
                self.queued_ahead,
                self.keep_result,
            ])
            .map(drop)
    }

    /// The row of trial `t` now (`clock` turns its instants into wall-clock times).
    pub(super) fn new(t: &Trial, clock: &WallClock) -> TrialRow {
        let (lease_worker, lease_attempt, lease_granted) = match t.state.lease() {
            Some(l) => (
                Some(l.worker.to_string()),
                Some(l.attempt),
                Some(clock.seconds_at(l.granted)),
            ),
            None => (None, None, None),
        };
        let success = t.state.success();
        let (reason, cancelled, stopped_epoch) = match &t.state {
            TrialState::Failed {
                reason, cancelled, ..
            } => (Some(reason.clone()), *cancelled, None),
            TrialState::Stopped { epoch, reason, .. } => {
                (Some(reason.clone()), false, Some(*epoch))
            }
            _ => (None, false, None),
        };
        let checkpoints = t.state.checkpoints();
        let checkpoint = |c: Option<&Box<Checkpoint>>| c.map(|c| json(&**c));
        let kept = success.and_then(|s| s.checkpoint.as_ref());
        TrialRow {
            id: t.spec.id,
            state: state_name(&t.state).to_owned(),
            attempts: t.attempts,
            counted_attempts: t.counted_attempts,
            lease_worker,
            lease_attempt,
            success_attempt: success.map(|s| s.attempt),
            success_worker: success.map(|s| s.worker.to_string()),
            wall_seconds: success.and_then(|s| finite(s.wall_seconds)),
            // The result's epochs live in the epochs table (their losses may be non-finite,
            // which JSON cannot hold): this column holds the final metrics.
            // None once archived (`keep_result`: the column keeps what was committed).
            result: success.and_then(Success::final_metrics).map(|r| json(&r)),
            reason,
            failures: json(&t.failures),
            weights: t.state.weights().map(str::to_owned),
            checkpoint: checkpoint(checkpoints.and_then(|c| c.latest.as_ref()).or(kept)),
            resumed_from: t.resumed_from,
            unstarted_attempts: t.unstarted_attempts,
            previous_checkpoint: checkpoint(checkpoints.and_then(|c| c.previous.as_ref())),
            set_aside: (!t.set_aside.is_empty()).then(|| json(&t.set_aside)),
            cancelled,
            lease_granted,
            stopped_epoch,
            queued_ahead: match t.state {
                TrialState::Pending { ahead, .. } => ahead,
                _ => None,
            },
            spec: String::new(),
            keep_result: t.is_archived(),
        }
    }

    /// The trial this row records, with its current `epochs`, as of `now` (a live lease
    /// expires at `now`: the scheduler gives it its grace). Errors say which column is wrong.
    pub(super) fn into_trial(
        self,
        epochs: Vec<EpochMetrics>,
        now: Instant,
    ) -> Result<Trial, String> {
        let spec: TrialSpec = decode(&self.spec, "spec")?;
        let state = self.state(now)?;
        let set_aside: ThinVec<SetAside> = match &self.set_aside {
            Some(text) => decode(text, "set_aside")?,
            None => ThinVec::new(),
        };
        let failures: ThinVec<AttemptFailure> = decode(&self.failures, "failures")?;
        Ok(Trial {
            spec,
            state,
            attempts: self.attempts,
            counted_attempts: self.counted_attempts,
            unstarted_attempts: self.unstarted_attempts,
            epochs: epochs.into(),
            failures,
            set_aside,
            resumed_from: self.resumed_from,
        })
    }

    /// The state the row's columns say, as of `now`.
    fn state(&self, now: Instant) -> Result<TrialState, String> {
        let worker = |s: &Option<String>, what: &str| -> Result<WorkerId, String> {
            s.as_deref()
                .ok_or_else(|| format!("{what} missing"))?
                .parse()
                .map_err(|e| format!("{what}: {e}"))
        };
        let missing = |what: &str| format!("{what} missing");
        let checkpoint = |text: &Option<String>, what| -> Result<_, String> {
            text.as_deref()
                .map(|text| decode::<Checkpoint>(text, what).map(Box::new))
                .transpose()
        };
        // A succeeded trial keeps its latest checkpoint (`Success::checkpoint`); the columns of
        // the other states hold what their next attempt resumes from.
        let checkpoints = || -> Result<Checkpoints, String> {
            Ok(Checkpoints {
                latest: checkpoint(&self.checkpoint, "checkpoint")?,
                previous: checkpoint(&self.previous_checkpoint, "previous_checkpoint")?,
            })
        };
        Ok(match self.state.as_str() {
            "pending" => TrialState::Pending {
                checkpoints: checkpoints()?,
                ahead: self.queued_ahead,
            },
            "leased" => TrialState::Leased {
                lease: Box::new(Lease {
                    worker: worker(&self.lease_worker, "lease_worker")?,
                    attempt: self.lease_attempt.ok_or_else(|| missing("lease_attempt"))?,
                    // Its attempt's time runs on through the restart (rows written before this
                    // column existed count from now).
                    granted: self
                        .lease_granted
                        .and_then(|at| instant_of(at, now))
                        .unwrap_or(now),
                    expires: now,
                }),
                checkpoints: checkpoints()?,
                weights: self.weights.clone(),
            },
            "succeeded" => {
                // Rows written before the final metrics had their own type hold a result with
                // an empty list of epochs, which this reads past.
                let (scores, matrices) = Success::split(decode::<FinalMetrics>(
                    self.result.as_deref().ok_or_else(|| missing("result"))?,
                    "result",
                )?);
                TrialState::Succeeded(Box::new(Success {
                    attempt: self
                        .success_attempt
                        .ok_or_else(|| missing("success_attempt"))?,
                    worker: worker(&self.success_worker, "success_worker")?,
                    wall_seconds: self.wall_seconds.unwrap_or(0.0),
                    scores,
                    matrices,
                    weights: self.weights.clone(),
                    archived: None,
                    checkpoint: checkpoint(&self.checkpoint, "checkpoint")?,
                }))
            }
            "failed" => TrialState::Failed {
                reason: self.reason.clone().unwrap_or_default(),
                cancelled: self.cancelled,
                checkpoints: checkpoints()?,
            },
            "stopped" => TrialState::Stopped {
                epoch: self.stopped_epoch.ok_or_else(|| missing("stopped_epoch"))?,
                reason: self.reason.clone().unwrap_or_default(),
                checkpoints: checkpoints()?,
            },
            other => return Err(format!("unknown state {other:?}")),
        })
    }
}

fn decode<T: serde::de::DeserializeOwned>(text: &str, what: &str) -> Result<T, String> {
    serde_json::from_str(text).map_err(|e| format!("{what}: {e}"))
}

fn state_name(s: &TrialState) -> &'static str {
    match s {
        TrialState::Pending { .. } => "pending",
        TrialState::Leased { .. } => "leased",
        TrialState::Succeeded(_) => "succeeded",
        TrialState::Failed { .. } => "failed",
        TrialState::Stopped { .. } => "stopped",
    }
}

/// `None` for NaN and infinities, which SQLite cannot store as REAL.
pub(super) fn finite(v: f64) -> Option<f64> {
    v.is_finite().then_some(v)
}

/// The state machine's monotonic instants as wall-clock times (seconds since the Unix epoch),
/// which outlive the process: read once per batch of rows.
pub(super) struct WallClock {
    instant: std::time::Instant,
    unix: f64,
}

impl WallClock {
    pub(super) fn now() -> WallClock {
        WallClock {
            instant: std::time::Instant::now(),
            unix: unix_seconds(std::time::SystemTime::now()),
        }
    }

    /// `at` in seconds since the Unix epoch.
    pub(super) fn seconds_at(&self, at: std::time::Instant) -> f64 {
        if at <= self.instant {
            self.unix - self.instant.duration_since(at).as_secs_f64()
        } else {
            self.unix + at.duration_since(self.instant).as_secs_f64()
        }
    }
}

fn unix_seconds(t: std::time::SystemTime) -> f64 {
    t.duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// The instant (of this process) of `unix` seconds since the Unix epoch, as of `now`; `None` if
/// it is in the future (the clock was set back) or not a time.
fn instant_of(unix: f64, now: std::time::Instant) -> Option<std::time::Instant> {
    let ago = unix_seconds(std::time::SystemTime::now()) - unix;
    if !ago.is_finite() || ago < 0.0 {
        return None;
    }
    now.checked_sub(std::time::Duration::try_from_secs_f64(ago).ok()?)
}

/// JSON for the columns that hold it. Our types have string keys only, so encoding cannot fail;
/// if it ever did, the column says why instead of the coordinator stopping.
fn json<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_else(|e| format!("{{\"error\":{:?}}}", e.to_string()))
}
