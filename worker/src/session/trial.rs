//! One leased trial: its inputs (the checkpoint an earlier attempt left, the resident dataset),
//! its trainer on a thread of its own, its epoch reports, checkpoint uploads and heartbeats
//! while it trains, then its final weights and the completion that ends the lease.
//!
//! Errors talking to the coordinator are logged: the lease then expires and the coordinator
//! leases the trial again.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use sweep_common::{EpochMetrics, FailureKind, TrialSpec};
use sweep_proto::{Artifact, Completion, parse_lease, v1};
use tokio::sync::{mpsc, oneshot, watch};
use tonic::Code;
use tracing::{info, warn};

use super::transfer::{WeightsUpload, fetch_checkpoint, upload, upload_logs, upload_weights};
use super::{Engine, Lease, Session, retry, within};
use crate::data_cache::DeviceData;
use crate::train::{Control, Progress, TrainError, Trained, train};

/// What the trainer's thread tells the async side, in order.
enum FromTrainer {
    Epoch(EpochMetrics),
    Checkpoint { epoch: u32, bytes: Vec<u8> },
}

/// Forwards the trainer's progress from its thread to the async side.
struct ToSession {
    tx: mpsc::Sender<FromTrainer>,
}

impl Progress for ToSession {
    fn epoch(&mut self, metrics: &EpochMetrics) {
        let _ = self.tx.blocking_send(FromTrainer::Epoch(metrics.clone()));
    }

    fn checkpoint(&mut self, epoch: u32, bytes: Vec<u8>) {
        let _ = self
            .tx
            .blocking_send(FromTrainer::Checkpoint { epoch, bytes });
    }
}

/// What the trainer's thread sends when it ends: the trainer's answer, or its panic.
type Answer = std::thread::Result<Result<Trained, TrainError>>;

/// How the trainer's thread ended: with an [`Answer`], or without a word (it vanished).
type Finished = Result<Answer, oneshot::error::RecvError>;

/// Trains one leased trial and ends its lease.
pub(super) async fn run(
    session: &Session,
    slot: usize,
    a: v1::Assignment,
    shutdown: &mut watch::Receiver<bool>,
    never: &watch::Receiver<bool>,
) {
    let lease = match parse_lease(a.lease.as_ref()) {
        Ok(l) => l,
        Err(e) => {
            warn!(slot, error = %e, "malformed assignment; ignoring it");
            return;
        }
    };
    let end = |completion| complete(session, lease, never, completion);
    let spec = match a.trial.as_ref().map(TrialSpec::try_from) {
        Some(Ok(spec)) => spec,
        Some(Err(e)) => return end(failed(FailureKind::InvalidSpec, e.to_string())).await,
        None => {
            let message = "assignment without a trial".to_owned();
            return end(failed(FailureKind::InvalidSpec, message)).await;
        }
    };
    let resume_from = a.resume.as_ref().map_or(0, |r| r.epoch);
    info!(slot, trial = %spec.name, id = %spec.id.short(), attempt = lease.1, resume_from, "training");
    let inputs = match inputs(session, lease, &spec, a.resume.as_ref(), shutdown).await {
        Ok(inputs) => inputs,
        Err((kind, message)) => return end(failed(kind, message)).await,
    };
    // --slots auto: the device's memory before the first trial, to measure what it takes.
    let baseline = match session.auto_slots {
        Some(_) if !session.calibrated.load(Ordering::Relaxed) => session.read_memory().await,
        _ => None,
    };
    let control = Arc::new(Control::default());
    let program = crate::program::Options {
        gpu: match session.device {
            tch::Device::Cuda(i) => Some(i),
            _ => None,
        },
        grace: session.drain_timeout,
        log_dir: std::env::temp_dir().join("sweep-program-logs"),
    };
    let log_dir = program.log_dir.clone();
    let (progress, done) = match spawn_trainer(&spec, inputs, &control, program) {
        Ok(channels) => channels,
        Err(e) => {
            let message = format!("cannot start a training thread: {e}");
            return end(failed(FailureKind::Internal, message)).await;
        }
    };
    let mut live = Live {
        session,
        spec: &spec,
        lease,
        never,
        control: &control,
        baseline,
        call_limit: call_limit(session),
        last_renewed: Instant::now(),
        revoked: false,
    };
    let finished = live.watch(progress, done, shutdown).await;
    if live.revoked {
        return;
    }
    if spec.program.is_some() {
        upload_logs(session, lease, &spec, &log_dir, never).await;
    }
    end(finish(session, &spec, lease, finished, never, shutdown).await).await;
}

/// How long one call about a trial may take: half its lease, so that a call on a connection
/// that went dead leaves time to try again before the lease expires.
fn call_limit(session: &Session) -> Duration {
    (session.lease_ttl / 2).max(Duration::from_millis(200))
}

/// A failure to report.
fn failed(kind: FailureKind, message: String) -> Completion {
    Completion::Failure { kind, message }
}

/// Ends `lease` with `completion`, retrying transient errors within the patience.
async fn complete(
    session: &Session,
    lease: Lease,
    never: &watch::Receiver<bool>,
    completion: Completion,
) {
    let succeeded = matches!(completion, Completion::Result(_));
    let request = sweep_proto::complete_request(session.worker_id, lease, &completion);
    let limit = call_limit(session);
    let r = retry(session.patience, never, || {
        let mut c = session.client.clone();
        let r = request.clone();
        within(limit, async move { c.complete(r).await })
    })
    .await;
    let (trial, attempt) = lease;
    match r {
        Ok(_) => info!(trial = %trial.short(), attempt, succeeded, "completion acknowledged"),
        Err(status) => {
            warn!(trial = %trial.short(), code = ?status.code(), message = status.message(), "completion not accepted");
        }
    }
}

/// What the trainer's thread needs besides the spec.
struct Inputs {
    /// The resident dataset, or (the test trainer) how long an epoch takes.
    engine: Result<Arc<DeviceData>, Duration>,
    /// The checkpoint to resume from.
    resume: Option<Vec<u8>>,
    /// The epoch it ends (0: none).
    resumed_from: u32,
}

/// Fetches the checkpoint `resume` names, if any, and makes the trial's dataset resident. A
/// failure is reported as the trial's.
async fn inputs(
    session: &Session,
    lease: Lease,
    spec: &TrialSpec,
    resume: Option<&v1::CheckpointRef>,
    shutdown: &watch::Receiver<bool>,
) -> Result<Inputs, (FailureKind, String)> {
    let resumed_from = resume.map_or(0, |r| r.epoch);
    let resume = match resume {
        Some(r) => match fetch_checkpoint(session, lease, r, shutdown).await {
            Ok(bytes) => Some(bytes),
            Err((kind, message)) => {
                warn!(trial = %spec.name, %kind, %message, "cannot resume");
                return Err((kind, message));
            }
        },
        None => None,
    };
    let engine = match &session.engine {
        // A program reads its own data.
        Engine::Torch(_) | Engine::Test(_) if spec.program.is_some() => Err(Duration::ZERO),
        Engine::Torch(cache) => match cache.get(spec.dataset).await {
            Ok(d) => Ok(d),
            Err(e) => {
                let kind = crate::failure::load(&e);
                warn!(trial = %spec.name, %kind, error = %e, "dataset unavailable");
                return Err((kind, e.to_string()));
            }
        },
        Engine::Test(epoch_time) => Err(*epoch_time),
    };
    Ok(Inputs {
        engine,
        resume,
        resumed_from,
    })
}

/// Starts the trainer on a thread of its own. Returns its progress, and its answer (a panic
/// caught).
fn spawn_trainer(
    spec: &TrialSpec,
    inputs: Inputs,
    control: &Arc<Control>,
    program: crate::program::Options,
) -> std::io::Result<(mpsc::Receiver<FromTrainer>, oneshot::Receiver<Answer>)> {
    let (tx, rx) = mpsc::channel::<FromTrainer>(64);
    let (done_tx, done_rx) = oneshot::channel();
    let spec = spec.clone();
    let control = Arc::clone(control);
    std::thread::Builder::new()
        .name(format!("trial-{}", spec.id.short()))
        .spawn(move || {
            let mut progress = ToSession { tx };
            let resume = inputs.resume.as_deref();
            let r = std::panic::catch_unwind(AssertUnwindSafe(|| {
                match (&spec.program, &inputs.engine) {
                    (Some(p), _) => {
                        let resume = resume.map(|archive| crate::program::Resume {
                            epoch: inputs.resumed_from,
                            archive,
                        });
                        crate::program::run(&spec, p, &program, &mut progress, &control, resume)
                    }
                    (None, Ok(data)) => train(&spec, data, &mut progress, &control, resume),
                    (None, Err(epoch_time)) => {
                        crate::fake::train(&spec, *epoch_time, &mut progress, &control, resume)
                    }
                }
            }));
            let _ = done_tx.send(r);
        })?;
    Ok((rx, done_rx))
}

/// A trial while it trains: what it reports, and whether its lease is still ours.
struct Live<'a> {
    session: &'a Session,
    spec: &'a TrialSpec,
    lease: Lease,
    /// Never turns true: the calls about a trial are not cut short by a shutdown.
    never: &'a watch::Receiver<bool>,
    control: &'a Control,
    /// `--slots auto`: the device's memory before this trial, until its first epoch.
    baseline: Option<crate::memory::Reading>,
    call_limit: Duration,
    /// When the coordinator last heard of the lease.
    last_renewed: Instant,
    /// Whether the lease is lost (revoked, refused, or not renewed within its TTL): the trial is
    /// stopped and nothing more is sent about it.
    revoked: bool,
}

impl Live<'_> {
    /// Reports the trainer's progress and keeps the lease alive until the trainer ends; told to
    /// stop, drains: the epoch ends and is checkpointed, or the trial is stopped outright when
    /// the drain timeout runs out first.
    async fn watch(
        &mut self,
        mut progress: mpsc::Receiver<FromTrainer>,
        mut done: oneshot::Receiver<Answer>,
        shutdown: &mut watch::Receiver<bool>,
    ) -> Finished {
        let mut heartbeat = tokio::time::interval(self.session.heartbeat);
        heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut draining = false;
        // A message taken from `progress` while gathering a batch, to handle next.
        let mut held: Option<FromTrainer> = None;
        let drain_deadline = tokio::time::sleep(Duration::MAX / 4);
        tokio::pin!(drain_deadline);
        loop {
            tokio::select! {
                // In this order: the trainer sends every epoch and checkpoint before its result,
                // so those still queued when the result arrives are reported first.
                biased;
                Some(msg) = next(&mut held, &mut progress) => match msg {
                    FromTrainer::Epoch(m) => {
                        let limit = self.session.epochs_per_report;
                        let (epochs, after) = batch(m, &mut progress, limit);
                        held = after;
                        self.epochs(&epochs).await;
                    }
                    FromTrainer::Checkpoint { epoch, bytes } => self.checkpoint(epoch, bytes).await,
                },
                _ = heartbeat.tick(), if !self.revoked => self.heartbeat().await,
                _ = shutdown.changed(), if !draining => {
                    draining = true;
                    self.drain();
                    let deadline = tokio::time::Instant::now() + self.session.drain_timeout;
                    drain_deadline.as_mut().reset(deadline);
                }
                () = &mut drain_deadline, if draining => {
                    warn!(trial = %self.spec.name, "the epoch did not end within the drain timeout: stopping it");
                    self.control.stop.store(true, Ordering::Relaxed);
                    let never = tokio::time::Instant::now() + Duration::MAX / 4;
                    drain_deadline.as_mut().reset(never);
                }
                r = &mut done => return r,
            }
        }
    }

    /// Told to stop: the trainer ends its epoch and checkpoints it.
    fn drain(&self) {
        let seconds = self.session.drain_timeout.as_secs_f64();
        info!(trial = %self.spec.name, seconds, "shutting down: finishing the epoch, checkpointing it and giving the lease back");
        self.control.drain.store(true, Ordering::Relaxed);
    }

    /// The lease is lost: stops the trial (saying why, once).
    fn give_up(&mut self, why: &str, message: &str) {
        if !self.revoked {
            let (trial, attempt) = (&self.spec.name, self.lease.1);
            warn!(%trial, attempt, %message, "{why}; stopping the trial");
        }
        self.revoked = true;
        self.control.stop.store(true, Ordering::Relaxed);
    }

    /// A call about the lease failed with `status`: a refusal loses it, and so does a transient
    /// error once the lease has gone without news for its TTL.
    fn call_failed(&mut self, refused: &str, status: &tonic::Status) {
        if !sweep_proto::transient(status) {
            self.give_up(refused, status.message());
        } else if self.last_renewed.elapsed() > self.session.lease_ttl {
            let why = "lease could not be renewed within its TTL";
            self.give_up(why, status.message());
        }
    }

    /// Logs epochs and reports them in one call, which renews the lease.
    async fn epochs(&mut self, epochs: &[EpochMetrics]) {
        if let Some(b) = self.baseline.take() {
            self.session.calibrate(b).await;
        }
        let total = self.spec.params.epochs;
        for m in epochs {
            info!(
                trial = %self.spec.name,
                "epoch {}/{total}: loss {:.4}, train {:.2} %, test {:.2} % ({:.2} s)",
                m.epoch, m.train_loss, m.train_accuracy, m.test_accuracy, m.seconds
            );
        }
        if self.revoked {
            return;
        }
        let request =
            sweep_proto::report_epochs_request(self.session.worker_id, self.lease, epochs);
        let limit = self.call_limit;
        let r = retry(self.session.lease_ttl, self.never, || {
            let mut c = self.session.client.clone();
            let r = request.clone();
            within(limit, async move { c.report_epoch(r).await })
        })
        .await;
        match r {
            Ok(resp) if resp.get_ref().stopped.is_empty() => self.last_renewed = Instant::now(),
            Ok(resp) => {
                let (why, at) = (&resp.get_ref().stopped, resp.get_ref().stopped_at);
                info!(trial = %self.spec.name, reason = %sweep_common::text::terminal(why), at, "stopped early by the coordinator");
                self.revoked = true;
                self.control.stop.store(true, Ordering::Relaxed);
            }
            Err(status) => self.call_failed("epoch report refused", &status),
        }
    }

    /// Uploads a checkpoint, which renews the lease. One the coordinator cannot store now, or
    /// finds invalid, is skipped (the next one tries again).
    async fn checkpoint(&mut self, epoch: u32, bytes: Vec<u8>) {
        if self.revoked {
            return;
        }
        let artifact = Artifact::Checkpoint { epoch };
        let r = upload(
            self.session,
            self.lease,
            artifact,
            Arc::new(bytes),
            self.never,
        )
        .await;
        let name = &self.spec.name;
        match r {
            Ok(receipt) => {
                self.last_renewed = Instant::now();
                info!(trial = %name, epoch, bytes = receipt.size, "checkpoint uploaded");
            }
            Err(status)
                if !sweep_proto::transient(&status) && status.code() != Code::InvalidArgument =>
            {
                self.give_up("checkpoint refused", status.message());
            }
            Err(status) => {
                warn!(trial = %name, epoch, message = status.message(), "checkpoint not stored");
            }
        }
    }

    /// Renews the lease, with the device's memory.
    async fn heartbeat(&mut self) {
        let request = sweep_proto::heartbeat_request(
            self.session.worker_id,
            &[self.lease],
            self.session.memory_now(),
        );
        let mut c = self.session.client.clone();
        match within(self.call_limit, c.heartbeat(request)).await {
            Ok(resp) if resp.get_ref().revoked.is_empty() => self.last_renewed = Instant::now(),
            Ok(_) => {
                let why = "lease revoked by the coordinator";
                self.give_up(why, "cancelled, expired or superseded");
            }
            Err(status) => self.call_failed("heartbeat refused", &status),
        }
    }
}

/// The next message to handle: the one `held` back, or the next from the trainer.
async fn next(
    held: &mut Option<FromTrainer>,
    progress: &mut mpsc::Receiver<FromTrainer>,
) -> Option<FromTrainer> {
    match held.take() {
        Some(msg) => Some(msg),
        None => progress.recv().await,
    }
}

/// Epoch `first` and the epochs that follow it already waiting in `progress` (they ended while
/// the previous call was in flight), at most `limit` in all; never waits for one. Returns them
/// and the message taken that is not an epoch (a checkpoint, handled after them), if any.
fn batch(
    first: EpochMetrics,
    progress: &mut mpsc::Receiver<FromTrainer>,
    limit: usize,
) -> (Vec<EpochMetrics>, Option<FromTrainer>) {
    let mut epochs = vec![first];
    while epochs.len() < limit {
        match progress.try_recv() {
            Ok(FromTrainer::Epoch(m)) => epochs.push(m),
            Ok(other) => return (epochs, Some(other)),
            Err(_) => break,
        }
    }
    (epochs, None)
}

/// How the trial ended, to report: a trained trial's final weights are uploaded first, while
/// the lease is live (the result ends the lease).
async fn finish(
    session: &Session,
    spec: &TrialSpec,
    lease: Lease,
    finished: Finished,
    never: &watch::Receiver<bool>,
    shutdown: &mut watch::Receiver<bool>,
) -> Completion {
    let Trained { result, weights } = match finished {
        Ok(Ok(Ok(trained))) => trained,
        Ok(Ok(Err(e))) => return train_failure(session, spec, &e),
        Ok(Err(panic)) => {
            let message = format!("the trainer panicked: {}", panic_message(panic.as_ref()));
            return failed(FailureKind::Panic, message);
        }
        Err(_) => return failed(FailureKind::Internal, "the training thread vanished".into()),
    };
    let name = &spec.name;
    match upload_weights(session, lease, name, weights, never, shutdown).await {
        WeightsUpload::Stored(receipt) => {
            info!(trial = %name, bytes = receipt.size, "final weights uploaded");
        }
        WeightsUpload::NotStored(status) => {
            warn!(trial = %name, message = status.message(), "final weights not stored");
        }
        WeightsUpload::Stopped => {
            // Given back, free: trained again elsewhere (from its last checkpoint).
            let message =
                "worker shut down while the coordinator could not store the final weights";
            return failed(FailureKind::WorkerShutdown, message.into());
        }
    }
    info!(
        trial = %name,
        test_accuracy = format!("{:.2}", result.last.test_accuracy),
        train_accuracy = format!("{:.2}", result.last.train_accuracy),
        seconds = format!("{:.1}", result.last.train_seconds),
        "trial trained"
    );
    Completion::Result(result)
}

/// A training failure, as reported, after acting on it: running out of memory is not the
/// trial's fault (it is leased again, and this worker trains fewer at once); nor is a failed
/// device (the trial goes to another worker, and the coordinator tells this one at its next
/// lease that it takes no more).
fn train_failure(session: &Session, spec: &TrialSpec, e: &TrainError) -> Completion {
    let (kind, message) = crate::failure::train(e);
    let trial = &spec.name;
    match kind {
        FailureKind::OutOfMemory => {
            let slots = session.fewer_slots();
            warn!(%trial, slots, "out of device memory: training fewer trials at once");
        }
        FailureKind::Device => tracing::error!(%trial, %message, "the device failed"),
        FailureKind::CheckpointUnusable => {
            warn!(%trial, error = %e, "the checkpoint to resume from cannot be loaded");
        }
        _ => {}
    }
    failed(kind, message)
}

/// The text of a panic payload.
fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn epoch(n: u32) -> FromTrainer {
        FromTrainer::Epoch(EpochMetrics {
            epoch: n,
            train_loss: 0.5,
            train_accuracy: 50.0,
            test_accuracy: 50.0,
            seconds: 0.0,
            scalars: Default::default(),
        })
    }

    fn first() -> EpochMetrics {
        match epoch(1) {
            FromTrainer::Epoch(m) => m,
            FromTrainer::Checkpoint { .. } => unreachable!(),
        }
    }

    fn numbers(epochs: &[EpochMetrics]) -> Vec<u32> {
        epochs.iter().map(|m| m.epoch).collect()
    }

    #[test]
    fn a_batch_takes_only_the_epochs_already_waiting_up_to_the_limit() {
        let (tx, mut rx) = mpsc::channel(16);
        // Nothing waiting: the epoch goes alone, at once.
        let (epochs, held) = batch(first(), &mut rx, 8);
        assert_eq!((numbers(&epochs), held.is_none()), (vec![1], true));

        for n in 2..=4 {
            tx.try_send(epoch(n)).unwrap();
        }
        let (epochs, held) = batch(first(), &mut rx, 3);
        assert_eq!((numbers(&epochs), held.is_none()), (vec![1, 2, 3], true));
        let (epochs, _) = batch(first(), &mut rx, 1);
        assert_eq!(
            numbers(&epochs),
            vec![1],
            "a coordinator without batches: one a call"
        );
        assert!(matches!(rx.try_recv(), Ok(FromTrainer::Epoch(m)) if m.epoch == 4));
    }

    #[test]
    fn a_checkpoint_ends_a_batch_and_is_handled_after_its_epochs() {
        let (tx, mut rx) = mpsc::channel(16);
        tx.try_send(epoch(2)).unwrap();
        tx.try_send(FromTrainer::Checkpoint {
            epoch: 2,
            bytes: vec![1],
        })
        .unwrap();
        tx.try_send(epoch(3)).unwrap();
        let (epochs, held) = batch(first(), &mut rx, 8);
        assert_eq!(numbers(&epochs), vec![1, 2]);
        assert!(matches!(
            held,
            Some(FromTrainer::Checkpoint { epoch: 2, .. })
        ));
        assert!(matches!(rx.try_recv(), Ok(FromTrainer::Epoch(m)) if m.epoch == 3));
    }
}
