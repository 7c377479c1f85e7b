//! The scheduling state machine: which trial is pending, leased to whom, or ended.
//!
//! Pure and synchronous: every transition takes `now` as an argument and does no I/O, so it is
//! unit- and property-tested without a network. The actor loop (`server`) owns the only
//! instance and performs the effects that transitions return.
//!
//! Trial states: `Pending -> Leased -> Succeeded | Failed | Stopped`, and `Leased -> Pending` when a lease
//! expires or fails in a way that is not the trial's fault, as the failure kind's policy says
//! ([`sweep_common::failure`]); `Failed -> Pending` when an operator retries it; `Pending |
//! Leased -> Stopped` when the experiment's stopping rule stops the trial's configuration, and
//! `Stopped -> Pending` when the rule or an operator promotes it (`stopping.rs`). Invariant: a
//! trial has at most one live lease, and only that lease's (worker, attempt) can write to the
//! trial.
//!
//! Every transition also notes what it changed in a journal ([`Change`]) that the owner drains
//! with [`Scheduler::take_changes`] and commits to the database before it answers the callers,
//! so nothing is acknowledged that a crash could lose. [`Scheduler::restore`] rebuilds the state
//! from what was committed.

mod archive;
mod budget;
mod failures;
mod more_epochs;
mod queue;
mod reports;
mod retry;
mod scheduler;
mod search;
mod stopping;
mod types;

pub use archive::KeepCurves;
pub use budget::{Budget, REASON_PREFIX as BUDGET_REASON_PREFIX, stopped_by_budget};
pub use more_epochs::MoreEpochs;
pub use reports::Reported;
pub use retry::RetrySelector;
pub use scheduler::Scheduler;
pub use search::{restore_proposals, searches_of};
pub use stopping::{Judged, Promoted, Rule, Stopping};
pub use sweep_common::FailureKind;
pub use sweep_common::failure::AttemptFailure;
pub use types::{
    CancelSelector, Change, Checkpoint, Checkpoints, Config, Counts, CurveTotals, Effect, Lease,
    LeaseKey, LeaseOutcome, Matrices, Outcome, Scores, SetAside, StateError, Storage,
    StorageFailure, Success, Trial, TrialState, Worker, nanos,
};

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_batch;
#[cfg(test)]
mod tests_budget;
#[cfg(test)]
mod tests_failures;
#[cfg(test)]
mod tests_more_epochs;
#[cfg(test)]
mod tests_search;
#[cfg(test)]
mod tests_stopping;
