//! The handle the gRPC handlers hold: a cheap clone that sends commands to the state owner and
//! awaits their answers.

use std::sync::{Arc, Mutex};

use sweep_common::{EpochMetrics, TrialId, TrialSpec, WorkerId};
use tokio::sync::{mpsc, oneshot, watch};

use crate::Error;
use crate::state::{
    CancelSelector, Checkpoint, Counts, LeaseKey, LeaseOutcome, Outcome, Promoted, RetrySelector,
    StateError, Storage,
};
use crate::status::{self, Snapshot, View, tables};
use crate::store::Reader;

pub(super) type Reply<T> = oneshot::Sender<Result<T, StateError>>;

/// A status as the state owner answers it: the snapshot, its accuracy tables to lay out, and
/// the rows whose history is to be read from the database (row, trial).
pub(super) type StatusReply = (Snapshot, Option<tables::Tables>, Vec<(usize, TrialId)>);

/// A request to the state owner.
pub(super) enum Command {
    Register {
        name: String,
        device: String,
        slots: u32,
        reply: oneshot::Sender<WorkerId>,
    },
    Lease {
        worker: WorkerId,
        reply: Reply<LeaseOutcome>,
    },
    Heartbeat {
        worker: WorkerId,
        leases: Vec<(TrialId, u32)>,
        memory: Option<(u64, u64)>,
        reply: Reply<Vec<(TrialId, u32)>>,
    },
    ReportEpoch {
        key: LeaseKey,
        epochs: Vec<EpochMetrics>,
        reply: Reply<Option<Stop>>,
    },
    Complete {
        key: LeaseKey,
        outcome: Outcome,
        reply: Reply<()>,
    },
    Progress {
        reply: oneshot::Sender<Progress>,
    },
    Status {
        view: View,
        reply: oneshot::Sender<StatusReply>,
    },
    CheckLease {
        key: LeaseKey,
        reply: Reply<TrialSpec>,
    },
    RecordWeights {
        key: LeaseKey,
        path: String,
        reply: Reply<()>,
    },
    RecordCheckpoint {
        worker: WorkerId,
        trial: TrialId,
        checkpoint: Checkpoint,
        reply: Reply<()>,
    },
    ResumeCheckpoint {
        key: LeaseKey,
        reply: Reply<Checkpoint>,
    },
    Cancel {
        selector: CancelSelector,
        reply: oneshot::Sender<(usize, Vec<String>)>,
    },
    Retry {
        selector: RetrySelector,
        reply: Reply<(usize, Vec<String>)>,
    },
    Promote {
        trials: Vec<String>,
        experiments: Vec<String>,
        epochs: Option<u32>,
        reply: Reply<Promoted>,
    },
    /// Storing `what` failed (with this message) or, `None`, worked.
    Storage {
        what: Storage,
        failure: Option<String>,
    },
}

/// How the end of a sweep went: `None` until its outputs were written (or failed to be), then
/// what could not be written (empty: everything was).
pub type Ended = Option<Vec<String>>;

/// An epoch report's stop: the epoch whose report made the stopping rule stop the trial, and
/// why (for the worker's log).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stop {
    pub epoch: u32,
    pub reason: String,
}

/// A snapshot of the sweep's progress.
#[derive(Debug, Clone)]
pub struct Progress {
    /// Trials by state.
    pub counts: Counts,
    /// True once every trial has ended.
    pub finished: bool,
    /// True when every recently seen worker has been told that the sweep is finished.
    pub workers_told: bool,
    /// (name, reason) of every trial that failed for good.
    pub failed: Vec<(String, String)>,
}

/// A cheap, cloneable handle to the state owner.
#[derive(Clone)]
pub struct Handle {
    pub(super) tx: mpsc::Sender<Command>,
    pub(super) changes: watch::Receiver<u64>,
    pub(super) tables: Arc<tables::Shared>,
    /// A read-only connection to the database, for the histories of archived trials.
    pub(super) reader: Option<Arc<Mutex<Reader>>>,
}

impl Handle {
    async fn call<T>(&self, make: impl FnOnce(oneshot::Sender<T>) -> Command) -> Result<T, Error> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(make(reply))
            .await
            .map_err(|_| Error::ShuttingDown)?;
        rx.await.map_err(|_| Error::ShuttingDown)
    }

    /// Registers a worker; returns its new id.
    pub async fn register(
        &self,
        name: String,
        device: String,
        slots: u32,
    ) -> Result<WorkerId, Error> {
        self.call(|reply| Command::Register {
            name,
            device,
            slots,
            reply,
        })
        .await
    }

    /// Leases a trial to `worker`.
    pub async fn lease(&self, worker: WorkerId) -> Result<LeaseOutcome, Error> {
        Ok(self
            .call(|reply| Command::Lease { worker, reply })
            .await??)
    }

    /// Renews leases (and notes the worker's device memory: used, total bytes); returns the
    /// revoked ones.
    pub async fn heartbeat(
        &self,
        worker: WorkerId,
        leases: Vec<(TrialId, u32)>,
        memory: Option<(u64, u64)>,
    ) -> Result<Vec<(TrialId, u32)>, Error> {
        Ok(self
            .call(|reply| Command::Heartbeat {
                worker,
                leases,
                memory,
                reply,
            })
            .await??)
    }

    /// Records consecutive epochs, judged in order; answers at which epoch and why the stopping
    /// rule stopped the trial, if one of them made it.
    pub async fn report_epochs(
        &self,
        key: LeaseKey,
        epochs: Vec<EpochMetrics>,
    ) -> Result<Option<Stop>, Error> {
        Ok(self
            .call(|reply| Command::ReportEpoch { key, epochs, reply })
            .await??)
    }

    /// Ends a lease.
    pub async fn complete(&self, key: LeaseKey, outcome: Outcome) -> Result<(), Error> {
        Ok(self
            .call(|reply| Command::Complete {
                key,
                outcome,
                reply,
            })
            .await??)
    }

    /// Checks that the lease is live (for an upload under it); returns the trial.
    pub async fn check_lease(&self, key: LeaseKey) -> Result<TrialSpec, Error> {
        Ok(self
            .call(|reply| Command::CheckLease { key, reply })
            .await??)
    }

    /// Records where the final weights of a live lease were stored.
    pub async fn record_weights(&self, key: LeaseKey, path: String) -> Result<(), Error> {
        Ok(self
            .call(|reply| Command::RecordWeights { key, path, reply })
            .await??)
    }

    /// Records a checkpoint uploaded under a live lease.
    pub async fn record_checkpoint(
        &self,
        worker: WorkerId,
        trial: TrialId,
        checkpoint: Checkpoint,
    ) -> Result<(), Error> {
        Ok(self
            .call(|reply| Command::RecordCheckpoint {
                worker,
                trial,
                checkpoint,
                reply,
            })
            .await??)
    }

    /// The checkpoint a live lease resumes from.
    pub async fn resume_checkpoint(&self, key: LeaseKey) -> Result<Checkpoint, Error> {
        Ok(self
            .call(|reply| Command::ResumeCheckpoint { key, reply })
            .await??)
    }

    /// Cancels trials; returns how many were cancelled and the names that matched nothing.
    pub async fn cancel(&self, selector: CancelSelector) -> Result<(usize, Vec<String>), Error> {
        self.call(|reply| Command::Cancel { selector, reply }).await
    }

    /// Puts failed trials back in the queue; returns how many and the names that matched
    /// nothing. Refused once the sweep has finished.
    pub async fn retry(&self, selector: RetrySelector) -> Result<(usize, Vec<String>), Error> {
        Ok(self
            .call(|reply| Command::Retry { selector, reply })
            .await??)
    }

    /// Resumes stopped trials (with their configurations' other seeds); returns which, and the
    /// names that matched nothing or no stopped trial. Refused once the sweep has finished.
    /// With `epochs`, the trials named (stopped or succeeded) continue up to that many epochs,
    /// all or none (`state::MoreEpochs`).
    pub async fn promote(
        &self,
        trials: Vec<String>,
        experiments: Vec<String>,
        epochs: Option<u32>,
    ) -> Result<Promoted, Error> {
        Ok(self
            .call(|reply| Command::Promote {
                trials,
                experiments,
                epochs,
                reply,
            })
            .await??)
    }

    /// Notes that storing `what` failed: the status says so until storing it works again.
    pub async fn storage_failed(&self, what: Storage, message: String) {
        let failure = Some(message);
        let _ = self.tx.send(Command::Storage { what, failure }).await;
    }

    /// Notes that storing `what` worked.
    pub async fn storage_worked(&self, what: Storage) {
        let failure = None;
        let _ = self.tx.send(Command::Storage { what, failure }).await;
    }

    /// The sweep's progress.
    pub async fn progress(&self) -> Result<Progress, Error> {
        self.call(|reply| Command::Progress { reply }).await
    }

    /// The sweep's status now, as `view` asks. The accuracy tables of a detailed one are laid
    /// out here, on a blocking thread, not on the state owner's task, once per change of the
    /// trials for every caller ([`tables::Shared`]).
    pub async fn status(&self, view: View) -> Result<Snapshot, Error> {
        let (mut snapshot, tables, stored) =
            self.call(|reply| Command::Status { view, reply }).await?;
        self.read_histories(&mut snapshot, stored).await;
        if let Some(tables) = tables {
            let filled = self
                .tables
                .resolve(tables)
                .await
                .ok_or(Error::ShuttingDown)?;
            tables::fill(&mut snapshot, &filled);
        }
        Ok(snapshot)
    }

    /// Fills in the histories of the rows `stored` names (archived trials) from the database,
    /// on a blocking thread; a row whose curve cannot be read keeps an empty one (logged).
    async fn read_histories(&self, snapshot: &mut Snapshot, stored: Vec<(usize, TrialId)>) {
        let Some(reader) = self.reader.as_ref().filter(|_| !stored.is_empty()) else {
            return;
        };
        let reader = Arc::clone(reader);
        let read = tokio::task::spawn_blocking(move || {
            let r = reader
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            stored
                .into_iter()
                .map(|(row, id)| (row, r.curve(id)))
                .collect::<Vec<_>>()
        })
        .await;
        for (row, curve) in read.into_iter().flatten() {
            match (curve, snapshot.trials.get_mut(row)) {
                (Ok(curve), Some(row)) => status::set_history(row, &curve),
                (Err(e), _) => tracing::warn!(error = %e, "cannot read an archived trial's curve"),
                (Ok(_), None) => {}
            }
        }
    }

    /// A receiver whose value changes whenever the status visibly changes.
    pub fn changes(&self) -> watch::Receiver<u64> {
        self.changes.clone()
    }
}
