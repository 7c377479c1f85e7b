//! Why an attempt ends without a result, and what follows from it: every failure kind and its
//! retry policy, declared once (the coordinator applies the policy, the worker chooses the kind,
//! `sweep_proto` converts it to and from the wire, `/metrics` and `results.json` name it).
//!
//! A failure belongs to one of three parties. The trial's own (its spec, a non-finite loss) is
//! final at once: training it again anywhere would fail the same way. The worker's (its data
//! folder, its device) is retried on other workers, never counted against the trial, and that
//! worker stops taking the trials it cannot run. Anything else (a lost worker, out of memory, an
//! unexplained error) is retried up to the sweep's `max_attempts`.

use serde::{Deserialize, Serialize};

use crate::WorkerId;

/// Why an attempt ended without a result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureKind {
    /// The trial's dataset cannot be loaded on this worker: missing from its data folder (and
    /// not downloadable), corrupt there, or its download failed.
    Data,
    /// The loss became NaN or infinite.
    NonFiniteLoss,
    /// The device ran out of memory.
    OutOfMemory,
    /// Any other error on the worker.
    Internal,
    /// The worker shut down and gave the lease back.
    WorkerShutdown,
    /// The worker could not accept the trial spec.
    InvalidSpec,
    /// The worker stopped heartbeating.
    LeaseExpired,
    /// The trainer panicked (a bug in the worker, or in libtorch).
    Panic,
    /// Someone cancelled the trial.
    Cancelled,
    /// The checkpoint the attempt was to resume from is unusable: damaged on the coordinator's
    /// disk (size or SHA-256), or not a checkpoint of this trial the trainer can load.
    CheckpointUnusable,
    /// The worker's device failed (a CUDA error other than running out of memory).
    Device,
    /// The trial had succeeded, but its final weights were not in the output folder when the
    /// coordinator started (deleted, or never stored): it is trained again.
    WeightsMissing,
    /// A program trial's program exited with a non-zero status, or died of a signal the worker
    /// did not send (issue 19); the message carries the last lines of its stderr.
    ProgramFailed,
}

/// One failed attempt: kept in the state database and listed in `results.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AttemptFailure {
    /// The attempt that failed.
    pub attempt: u32,
    /// The worker that held it.
    pub worker: WorkerId,
    /// What kind of failure.
    pub kind: FailureKind,
    /// The worker's (or the coordinator's) message.
    pub message: String,
}

/// What a failure of some kind does to its trial and its worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    /// The trial's own fault: it fails for good at once.
    Final,
    /// Retried until the trial has used up `max_attempts` on such failures. An attempt that
    /// ended before it reported its first epoch counts against a separate, larger bound
    /// instead ([`UNSTARTED_ATTEMPTS`]): it lost nothing, but must not loop forever.
    Counted,
    /// Retried at once, not counted (the worker left cleanly).
    Free,
    /// The worker's fault: retried on other workers, not counted; the worker gets no more trials
    /// it cannot run (of this dataset, or none at all).
    Worker(Unfit),
    /// The checkpoint's fault: it is set aside (kept, never offered again) and the trial resumes
    /// from the previous checkpoint, or from the start; counted as an attempt that never
    /// started.
    SetAside,
}

/// Which trials a worker can no longer run after a failure that was its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unfit {
    /// Those of the failed trial's dataset.
    Dataset,
    /// Any.
    Everything,
}

/// Attempts a trial may end before reporting an epoch (failures of the `Counted` and
/// `SetAside` policies) before it fails for good.
pub const UNSTARTED_ATTEMPTS: u32 = 10;

impl FailureKind {
    /// Every kind, in the order `/metrics` lists them.
    pub const ALL: [FailureKind; 13] = [
        FailureKind::Data,
        FailureKind::NonFiniteLoss,
        FailureKind::OutOfMemory,
        FailureKind::Internal,
        FailureKind::WorkerShutdown,
        FailureKind::InvalidSpec,
        FailureKind::LeaseExpired,
        FailureKind::Panic,
        FailureKind::Cancelled,
        FailureKind::CheckpointUnusable,
        FailureKind::Device,
        FailureKind::WeightsMissing,
        FailureKind::ProgramFailed,
    ];

    /// Its name in `results.json`, the database and `/metrics` labels.
    pub fn name(self) -> &'static str {
        match self {
            FailureKind::Data => "data",
            FailureKind::NonFiniteLoss => "non_finite_loss",
            FailureKind::OutOfMemory => "out_of_memory",
            FailureKind::Internal => "internal",
            FailureKind::WorkerShutdown => "worker_shutdown",
            FailureKind::InvalidSpec => "invalid_spec",
            FailureKind::LeaseExpired => "lease_expired",
            FailureKind::Panic => "panic",
            FailureKind::Cancelled => "cancelled",
            FailureKind::CheckpointUnusable => "checkpoint_unusable",
            FailureKind::Device => "device",
            FailureKind::WeightsMissing => "weights_missing",
            FailureKind::ProgramFailed => "program_failed",
        }
    }

    /// Its retry policy: the one table of who a failure belongs to.
    pub fn policy(self) -> Policy {
        match self {
            FailureKind::NonFiniteLoss
            | FailureKind::InvalidSpec
            | FailureKind::Panic
            | FailureKind::Cancelled
            | FailureKind::ProgramFailed => Policy::Final,
            FailureKind::OutOfMemory | FailureKind::Internal | FailureKind::LeaseExpired => {
                Policy::Counted
            }
            FailureKind::WorkerShutdown | FailureKind::WeightsMissing => Policy::Free,
            FailureKind::Data => Policy::Worker(Unfit::Dataset),
            FailureKind::Device => Policy::Worker(Unfit::Everything),
            FailureKind::CheckpointUnusable => Policy::SetAside,
        }
    }
}

impl std::fmt::Display for FailureKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_the_serde_names_and_all_lists_every_kind_once() {
        let mut seen = std::collections::HashSet::new();
        for kind in FailureKind::ALL {
            assert!(seen.insert(kind), "{kind:?} twice");
            let json = serde_json::to_string(&kind).unwrap();
            assert_eq!(json, format!("\"{}\"", kind.name()));
            let back: FailureKind = serde_json::from_str(&json).unwrap();
            assert_eq!(back, kind);
        }
    }

    #[test]
    fn only_the_trials_own_faults_are_final() {
        let finals: Vec<FailureKind> = FailureKind::ALL
            .into_iter()
            .filter(|k| k.policy() == Policy::Final)
            .collect();
        assert_eq!(
            finals,
            [
                FailureKind::NonFiniteLoss,
                FailureKind::InvalidSpec,
                FailureKind::Panic,
                FailureKind::Cancelled,
                FailureKind::ProgramFailed
            ]
        );
        assert_eq!(
            FailureKind::Data.policy(),
            Policy::Worker(Unfit::Dataset),
            "a dataset missing or corrupt on one worker is that worker's"
        );
    }
}
