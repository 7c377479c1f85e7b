//! The one owner of the scheduling state: a task that takes commands from the gRPC handlers over
//! a channel, applies them to the state machine, and performs the effects (writing results,
//! logging progress, signalling the end of the sweep). No lock is ever held across an `.await`.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use sweep_common::grid::Grid;
use sweep_common::{EpochMetrics, TrialId, TrialSpec, WorkerId};
use tokio::sync::{mpsc, oneshot, watch};
use tracing::{info, warn};

use crate::Error;
use crate::results;
use crate::state::{Counts, Effect, LeaseOutcome, Outcome, Scheduler, StateError, TrialState};

type Reply<T> = oneshot::Sender<Result<T, StateError>>;

/// A request to the state owner.
enum Command {
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
        reply: Reply<Vec<(TrialId, u32)>>,
    },
    ReportEpoch {
        worker: WorkerId,
        trial: TrialId,
        attempt: u32,
        metrics: EpochMetrics,
        reply: Reply<()>,
    },
    Complete {
        worker: WorkerId,
        trial: TrialId,
        attempt: u32,
        outcome: Outcome,
        reply: Reply<()>,
    },
    Progress {
        reply: oneshot::Sender<Progress>,
    },
    CheckLease {
        worker: WorkerId,
        trial: TrialId,
        attempt: u32,
        reply: Reply<TrialSpec>,
    },
    RecordWeights {
        worker: WorkerId,
        trial: TrialId,
        attempt: u32,
        path: String,
        reply: Reply<()>,
    },
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
    tx: mpsc::Sender<Command>,
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

    /// Renews leases; returns the revoked ones.
    pub async fn heartbeat(
        &self,
        worker: WorkerId,
        leases: Vec<(TrialId, u32)>,
    ) -> Result<Vec<(TrialId, u32)>, Error> {
        Ok(self
            .call(|reply| Command::Heartbeat {
                worker,
                leases,
                reply,
            })
            .await??)
    }

    /// Records an epoch.
    pub async fn report_epoch(
        &self,
        worker: WorkerId,
        trial: TrialId,
        attempt: u32,
        metrics: EpochMetrics,
    ) -> Result<(), Error> {
        Ok(self
            .call(|reply| Command::ReportEpoch {
                worker,
                trial,
                attempt,
                metrics,
                reply,
            })
            .await??)
    }

    /// Ends a lease.
    pub async fn complete(
        &self,
        worker: WorkerId,
        trial: TrialId,
        attempt: u32,
        outcome: Outcome,
    ) -> Result<(), Error> {
        Ok(self
            .call(|reply| Command::Complete {
                worker,
                trial,
                attempt,
                outcome,
                reply,
            })
            .await??)
    }

    /// Checks that the lease is live (for an upload under it); returns the trial.
    pub async fn check_lease(
        &self,
        worker: WorkerId,
        trial: TrialId,
        attempt: u32,
    ) -> Result<TrialSpec, Error> {
        Ok(self
            .call(|reply| Command::CheckLease {
                worker,
                trial,
                attempt,
                reply,
            })
            .await??)
    }

    /// Records where the final weights of a live lease were stored.
    pub async fn record_weights(
        &self,
        worker: WorkerId,
        trial: TrialId,
        attempt: u32,
        path: String,
    ) -> Result<(), Error> {
        Ok(self
            .call(|reply| Command::RecordWeights {
                worker,
                trial,
                attempt,
                path,
                reply,
            })
            .await??)
    }

    /// The sweep's progress.
    pub async fn progress(&self) -> Result<Progress, Error> {
        self.call(|reply| Command::Progress { reply }).await
    }
}

/// What the state owner needs besides the state.
pub struct Actor {
    /// The state machine.
    pub scheduler: Scheduler,
    /// The expanded grid (for the results' experiment records).
    pub grid: Grid,
    /// The grid file's path as given.
    pub grid_file: String,
    /// Where results go.
    pub out_dir: PathBuf,
    /// How often leases are checked for expiry.
    pub tick: Duration,
    /// How often a progress line is logged while nothing ends.
    pub progress_every: Duration,
}

/// Starts the state owner; returns its handle and a receiver that turns true when the sweep is
/// finished (results written).
pub fn spawn(actor: Actor) -> (Handle, watch::Receiver<bool>, tokio::task::JoinHandle<()>) {
    let (tx, rx) = mpsc::channel(1024);
    let (finished_tx, finished_rx) = watch::channel(false);
    let task = tokio::spawn(actor.run(rx, finished_tx));
    (Handle { tx }, finished_rx, task)
}

impl Actor {
    async fn run(mut self, mut rx: mpsc::Receiver<Command>, finished: watch::Sender<bool>) {
        let mut ticker = tokio::time::interval(self.tick);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last_progress = Instant::now();
        let mut finished_at: Option<Instant> = None;
        if self.scheduler.is_finished() {
            self.perform(vec![Effect::SweepFinished], &finished, &mut finished_at);
        }
        loop {
            tokio::select! {
                cmd = rx.recv() => {
                    let Some(cmd) = cmd else { break };
                    let effects = self.handle(cmd, Instant::now(), finished_at);
                    if effects.iter().any(|e| matches!(e, Effect::TrialEnded(_))) {
                        last_progress = Instant::now();
                    }
                    self.perform(effects, &finished, &mut finished_at);
                }
                _ = ticker.tick() => {
                    let now = Instant::now();
                    let effects = self.scheduler.expire_leases(now);
                    self.perform(effects, &finished, &mut finished_at);
                    if finished_at.is_none() && now.duration_since(last_progress) >= self.progress_every {
                        self.log_progress();
                        last_progress = now;
                    }
                }
            }
        }
    }

    fn handle(&mut self, cmd: Command, now: Instant, finished_at: Option<Instant>) -> Vec<Effect> {
        let s = &mut self.scheduler;
        match cmd {
            Command::Register {
                name,
                device,
                slots,
                reply,
            } => {
                let id = WorkerId::random();
                info!(worker = %id, name = %name, device = %device, slots, "worker registered");
                s.register(id, name, device, slots, now);
                let _ = reply.send(id);
                Vec::new()
            }
            Command::Lease { worker, reply } => {
                let outcome = s.lease(worker, now);
                if let Ok(LeaseOutcome::Assigned { spec, attempt }) = &outcome {
                    let name = s.workers().get(&worker).map_or("?", |w| w.name.as_str());
                    info!(trial = %spec.name, id = %spec.id.short(), attempt, worker = %name, "trial leased");
                }
                let _ = reply.send(outcome);
                Vec::new()
            }
            Command::Heartbeat {
                worker,
                leases,
                reply,
            } => {
                let _ = reply.send(s.heartbeat(worker, &leases, now));
                Vec::new()
            }
            Command::ReportEpoch {
                worker,
                trial,
                attempt,
                metrics,
                reply,
            } => {
                let r = s.report_epoch(worker, trial, attempt, metrics, now);
                if let Err(e) = &r {
                    warn!(worker = %worker.short(), error = %e, "epoch report refused");
                }
                let _ = reply.send(r);
                Vec::new()
            }
            Command::Complete {
                worker,
                trial,
                attempt,
                outcome,
                reply,
            } => {
                if let Outcome::Failed { kind, message } = &outcome {
                    warn!(trial = %trial.short(), attempt, ?kind, %message, "attempt failed");
                }
                match s.complete(worker, trial, attempt, outcome, now) {
                    Ok(effects) => {
                        let _ = reply.send(Ok(()));
                        effects
                    }
                    Err(e) => {
                        warn!(worker = %worker.short(), error = %e, "completion refused");
                        let _ = reply.send(Err(e));
                        Vec::new()
                    }
                }
            }
            Command::CheckLease {
                worker,
                trial,
                attempt,
                reply,
            } => {
                let _ = reply.send(s.check_lease(worker, trial, attempt, now).cloned());
                Vec::new()
            }
            Command::RecordWeights {
                worker,
                trial,
                attempt,
                path,
                reply,
            } => {
                let _ = reply.send(s.record_weights(worker, trial, attempt, path, now));
                Vec::new()
            }
            Command::Progress { reply } => {
                // Workers seen within a lease TTL of the end are alive and should hear about it.
                let since =
                    finished_at.map_or(now, |t| t.checked_sub(s.config().lease_ttl).unwrap_or(t));
                let failed = s
                    .trials()
                    .iter()
                    .filter_map(|t| match &t.state {
                        TrialState::Failed { reason } => {
                            Some((t.spec.name.clone(), reason.clone()))
                        }
                        _ => None,
                    })
                    .collect();
                let _ = reply.send(Progress {
                    counts: s.counts(),
                    finished: s.is_finished(),
                    workers_told: s.all_workers_told(since),
                    failed,
                });
                Vec::new()
            }
        }
    }

    fn perform(
        &mut self,
        effects: Vec<Effect>,
        finished: &watch::Sender<bool>,
        finished_at: &mut Option<Instant>,
    ) {
        if effects.is_empty() {
            return;
        }
        for e in &effects {
            match e {
                Effect::TrialEnded(id) => {
                    if let Some(t) = self.scheduler.trial(*id) {
                        match (&t.state, &t.result) {
                            (TrialState::Succeeded { wall_seconds, .. }, Some(r)) => info!(
                                trial = %t.spec.name,
                                test_accuracy = format!("{:.2}", r.test_accuracy),
                                train_accuracy = format!("{:.2}", r.train_accuracy),
                                wall_seconds = format!("{wall_seconds:.1}"),
                                "trial succeeded"
                            ),
                            (TrialState::Failed { reason }, _) => {
                                warn!(trial = %t.spec.name, %reason, "trial failed for good");
                            }
                            _ => {}
                        }
                    }
                }
                Effect::Requeued(id) => {
                    if let Some(t) = self.scheduler.trial(*id) {
                        info!(trial = %t.spec.name, attempts = t.attempts, "trial queued again");
                    }
                }
                Effect::SweepFinished => {}
            }
        }
        self.log_progress();
        let doc = results::collect(&self.grid, &self.grid_file, &self.scheduler);
        if let Err(e) = results::write_results(&self.out_dir, &doc) {
            tracing::error!(error = %e, "cannot save results");
        }
        if effects.contains(&Effect::SweepFinished) {
            if let Err(e) = results::write_summary(&self.out_dir, &doc) {
                tracing::error!(error = %e, "cannot write the summary");
            }
            match crate::report::write(&self.out_dir) {
                Ok(paths) => info!(report = %paths.html.display(), "report written"),
                Err(e) => tracing::error!(error = %e, "cannot write the report"),
            }
            *finished_at = Some(Instant::now());
            let _ = finished.send(true);
        }
    }

    fn log_progress(&self) {
        let c = self.scheduler.counts();
        let total = self.scheduler.trials().len();
        let best = self
            .scheduler
            .trials()
            .iter()
            .filter_map(|t| t.result.as_ref().map(|r| (r.test_accuracy, &t.spec.name)))
            .filter(|(a, _)| a.is_finite())
            .max_by(|a, b| a.0.total_cmp(&b.0))
            .map_or_else(String::new, |(a, n)| {
                format!("; best test accuracy {a:.2} % ({n})")
            });
        let running: Vec<String> = self
            .scheduler
            .trials()
            .iter()
            .filter(|t| matches!(t.state, TrialState::Leased(_)))
            .map(|t| {
                format!(
                    "{} epoch {}/{}",
                    t.spec.name,
                    t.epochs.len(),
                    t.spec.params.epochs
                )
            })
            .collect();
        info!(
            "progress: {}/{total} done ({} failed), {} running, {} pending, {} workers{best}{}",
            c.succeeded + c.failed,
            c.failed,
            c.leased,
            c.pending,
            self.scheduler.workers().len(),
            if running.is_empty() {
                String::new()
            } else {
                format!(" [{}]", running.join(", "))
            }
        );
    }
}
