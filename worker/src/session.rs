//! The worker's conversation with the coordinator: register, then K slots that each lease a
//! trial, train it on a thread of its own (from the checkpoint an earlier attempt left, if any),
//! report its epochs, upload its checkpoints, keep its lease alive and complete it, until the
//! coordinator says the sweep is finished or the worker is told to stop.
//!
//! A lease that cannot be renewed within its TTL is given up by the worker itself: the trial
//! stops, and nothing more is sent about it. Told to stop, the worker drains: each trial finishes
//! its epoch, uploads a checkpoint of it and gives its lease back, or is stopped outright when
//! the drain timeout runs out first.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::{Duration, Instant};

use sweep_common::{EpochMetrics, FailureKind, TrialSpec, WorkerId};
use sweep_proto::v1::{self, complete_request, lease_response};
use sweep_proto::{Client, lease_ref, parse_lease};
use tokio::sync::{mpsc, oneshot, watch};
use tonic::{Code, Status};
use tracing::{info, warn};

use crate::data_cache::{DataCache, LoadError};
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

/// What trains the trials.
pub enum Engine {
    /// libtorch, on the datasets resident on the device.
    Torch(DataCache),
    /// The deterministic stand-in of fault-injection tests ([`crate::fake`]), this long per
    /// epoch.
    Test(Duration),
}

/// What every slot shares.
pub struct Session {
    /// The gRPC client (cheap to clone).
    pub client: Client,
    /// Our id at the coordinator.
    pub worker_id: WorkerId,
    /// How often to heartbeat a lease.
    pub heartbeat: Duration,
    /// How long the coordinator keeps a lease without news.
    pub lease_ttl: Duration,
    /// How long to keep retrying when the coordinator is unreachable.
    pub patience: Duration,
    /// The coordinator's address, for messages.
    pub addr: String,
    /// What trains.
    pub engine: Engine,
    /// Told to stop, how long a trial may take to finish its epoch and checkpoint it.
    pub drain_timeout: Duration,
    /// Slots that may lease (raised once `--slots auto` has measured a trial, lowered after an
    /// out-of-memory failure).
    pub slots_allowed: AtomicU32,
    /// With `--slots auto`: the most slots it may allow.
    pub auto_slots: Option<u32>,
    /// With `--slots auto`: whether a trial's memory use was measured yet.
    pub calibrated: AtomicBool,
    /// The training device.
    pub device: tch::Device,
    /// Its memory, refreshed in the background (sent with heartbeats).
    pub memory: watch::Receiver<Option<crate::memory::Reading>>,
}

impl Session {
    /// The device memory reading to send with a heartbeat.
    fn memory_now(&self) -> Option<v1::DeviceMemory> {
        self.memory
            .borrow()
            // A reading that cannot be true is not sent: the coordinator refuses it.
            .filter(|r| r.used <= r.total && r.free <= r.total)
            .map(|r| v1::DeviceMemory {
                used_bytes: r.used,
                free_bytes: r.free,
                total_bytes: r.total,
            })
    }

    /// `--slots auto`: the trial that was alone on the device has trained an epoch; `baseline`
    /// was the device's memory before it started. Sizes the slots from what it took.
    async fn calibrate(&self, baseline: crate::memory::Reading) {
        let Some(cap) = self.auto_slots else { return };
        if self.calibrated.swap(true, Ordering::Relaxed) {
            return;
        }
        let device = self.device;
        let now = tokio::task::spawn_blocking(move || crate::memory::read(device))
            .await
            .ok()
            .flatten();
        let Some(now) = now else {
            warn!("--slots auto: the device's memory cannot be read; training one trial at a time");
            return;
        };
        let per_trial = now.used.saturating_sub(baseline.used).max(1 << 20);
        let k = crate::memory::auto_slots(per_trial, now.free, cap);
        self.slots_allowed.store(k, Ordering::Relaxed);
        info!(
            per_trial_mib = per_trial >> 20,
            free_mib = now.free >> 20,
            slots = k,
            cap,
            "--slots auto: one trial's memory measured"
        );
    }
}

/// `fut`, or DEADLINE_EXCEEDED (which counts as transient) after `limit`: a call on a connection
/// that went dead must not hang the trial's loop.
async fn within<T>(
    limit: Duration,
    fut: impl Future<Output = Result<T, Status>>,
) -> Result<T, Status> {
    tokio::time::timeout(limit, fut)
        .await
        .unwrap_or_else(|_| Err(Status::deadline_exceeded("no answer in time")))
}

/// Calls `f` until it succeeds, fails for good, `patience` runs out or `stop` turns true.
pub async fn retry<T, F, Fut>(
    patience: Duration,
    stop: &watch::Receiver<bool>,
    f: F,
) -> Result<T, Status>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, Status>>,
{
    retry_if(patience, stop, sweep_proto::transient, f).await
}

/// [`retry`], trying again only after the errors `again` accepts.
async fn retry_if<T, F, Fut>(
    patience: Duration,
    stop: &watch::Receiver<bool>,
    again: fn(&Status) -> bool,
    mut f: F,
) -> Result<T, Status>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, Status>>,
{
    let started = Instant::now();
    let mut delay = Duration::from_millis(50);
    loop {
        match f().await {
            Ok(v) => return Ok(v),
            Err(status) if again(&status) && started.elapsed() < patience && !*stop.borrow() => {
                tokio::time::sleep(delay.min(patience.saturating_sub(started.elapsed()))).await;
                delay = (delay * 2).min(Duration::from_secs(2));
            }
            Err(status) => return Err(status),
        }
    }
}

/// How one slot ended.
#[derive(Debug)]
pub enum SlotEnd {
    /// The coordinator said the sweep is finished.
    Finished,
    /// The worker was told to stop.
    Stopped,
    /// The coordinator said this worker cannot run any trial left, and why.
    CannotRun(String),
}

/// Runs one slot until the sweep is finished or `shutdown` turns true.
pub async fn slot(
    session: Arc<Session>,
    index: usize,
    mut shutdown: watch::Receiver<bool>,
) -> Result<SlotEnd, crate::Error> {
    let never = watch::channel(false).1;
    let call_limit = session.lease_ttl.max(Duration::from_secs(1));
    loop {
        if *shutdown.borrow() {
            return Ok(SlotEnd::Stopped);
        }
        if index as u32 >= session.slots_allowed.load(Ordering::Relaxed) {
            // Not allowed to lease now (--slots auto not measured yet, or fewer slots after an
            // out-of-memory failure): idle until that changes or the worker stops.
            tokio::select! {
                () = tokio::time::sleep(Duration::from_millis(250)) => {}
                _ = shutdown.changed() => {}
            }
            continue;
        }
        let request = v1::LeaseRequest {
            worker_id: session.worker_id.to_string(),
        };
        let response = retry(session.patience, &shutdown, || {
            let mut c = session.client.clone();
            let r = request.clone();
            within(call_limit, async move { c.lease(r).await })
        })
        .await;
        let outcome = match response {
            Ok(r) => r.into_inner().outcome,
            Err(status) if *shutdown.borrow() => {
                info!(slot = index, code = ?status.code(), "stopping");
                return Ok(SlotEnd::Stopped);
            }
            Err(status) if sweep_proto::transient(&status) => {
                return Err(crate::Error::Unreachable {
                    addr: session.addr.clone(),
                    seconds: session.patience.as_secs_f64(),
                    message: status.message().to_owned(),
                });
            }
            Err(status) => return Err(crate::Error::Refused(status.message().to_owned())),
        };
        match outcome {
            Some(lease_response::Outcome::Assignment(a)) => {
                run_trial(&session, index, a, &mut shutdown, &never).await;
            }
            Some(lease_response::Outcome::Wait(w)) => {
                let wait = Duration::from_millis(u64::from(w.retry_after_ms).clamp(10, 60_000));
                tokio::select! {
                    () = tokio::time::sleep(wait) => {}
                    _ = shutdown.changed() => {}
                }
            }
            Some(lease_response::Outcome::Finished(_)) => return Ok(SlotEnd::Finished),
            Some(lease_response::Outcome::CannotRun(c)) => {
                // Shown on the terminal and in the exit message: one clean line.
                let reason =
                    sweep_common::text::one_line(&c.reason, sweep_proto::MAX_MESSAGE_CHARS);
                return Ok(SlotEnd::CannotRun(reason));
            }
            None => {
                warn!(slot = index, "empty lease response; asking again");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

/// Whether the coordinator could not store an upload now (its disk is full, a folder is not
/// writable: RESOURCE_EXHAUSTED, which also asks a worker calling too fast to slow down). What
/// to do then is the caller's choice: a checkpoint is skipped (the next one tries again), the
/// final weights wait.
fn not_stored_now(status: &Status) -> bool {
    status.code() == Code::ResourceExhausted
}

/// Uploads `bytes` as an artifact of `lease`, in chunks, retrying transient errors, except that
/// the coordinator cannot store it now ([`not_stored_now`]), which is answered at once.
async fn upload(
    session: &Session,
    lease: &v1::LeaseRef,
    kind: v1::ArtifactKind,
    epoch: u32,
    bytes: Arc<Vec<u8>>,
    stop: &watch::Receiver<bool>,
) -> Result<v1::ArtifactReceipt, Status> {
    use sha2::Digest as _;
    let header = v1::ArtifactHeader {
        worker_id: session.worker_id.to_string(),
        lease: Some(lease.clone()),
        kind: kind.into(),
        size: bytes.len() as u64,
        sha256: format!("{:x}", sha2::Sha256::digest(bytes.as_slice())),
        epoch,
    };
    let again: fn(&Status) -> bool = |s| sweep_proto::transient(s) && !not_stored_now(s);
    let response = retry_if(session.patience, stop, again, || {
        let mut c = session.client.clone();
        let header = header.clone();
        let bytes = Arc::clone(&bytes);
        async move {
            let chunks: Vec<v1::ArtifactChunk> = if bytes.is_empty() {
                vec![v1::ArtifactChunk {
                    header: Some(header),
                    data: Vec::new(),
                }]
            } else {
                bytes
                    .chunks(sweep_proto::ARTIFACT_CHUNK_BYTES)
                    .enumerate()
                    .map(|(i, data)| v1::ArtifactChunk {
                        header: (i == 0).then(|| header.clone()),
                        data: data.to_vec(),
                    })
                    .collect()
            };
            c.upload_artifact(tokio_stream::iter(chunks)).await
        }
    })
    .await?;
    Ok(response.into_inner())
}

/// How uploading the final weights ended.
enum WeightsUpload {
    /// Stored.
    Stored(v1::ArtifactReceipt),
    /// Refused, or the coordinator could not be reached within the patience.
    NotStored(Status),
    /// The worker was told to stop while the coordinator could not store them.
    Stopped,
}

/// Uploads a trial's final weights. While the coordinator cannot store them now (its storage
/// failed: the operator sees it in the status), keeps the result and tries again with backoff,
/// for as long as it takes: every try renews the lease (so the backoff stops at the heartbeat
/// interval), and nothing is trained again. Told to stop meanwhile, gives up.
async fn upload_weights(
    session: &Session,
    lease: &v1::LeaseRef,
    name: &str,
    weights: Vec<u8>,
    never: &watch::Receiver<bool>,
    shutdown: &mut watch::Receiver<bool>,
) -> WeightsUpload {
    let weights = Arc::new(weights);
    let mut delay = Duration::from_millis(100);
    let mut failures: u64 = 0;
    loop {
        let kind = v1::ArtifactKind::FinalWeights;
        let status = match upload(session, lease, kind, 0, Arc::clone(&weights), never).await {
            Ok(receipt) => {
                if failures > 0 {
                    info!(trial = %name, tries = failures + 1, "the coordinator stored the final weights");
                }
                return WeightsUpload::Stored(receipt);
            }
            Err(status) if not_stored_now(&status) => status,
            Err(status) => return WeightsUpload::NotStored(status),
        };
        if failures == 0 {
            warn!(trial = %name, message = status.message(), "the coordinator cannot store the final weights now; keeping the result and trying again");
        }
        failures += 1;
        if *shutdown.borrow() {
            return WeightsUpload::Stopped;
        }
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            _ = shutdown.changed() => return WeightsUpload::Stopped,
        }
        delay = (delay * 2).min(session.heartbeat);
    }
}

/// Downloads the checkpoint `resume` names for `lease` and checks its size and SHA-256. A
/// checkpoint the coordinator says is damaged (`DATA_LOSS`), or that arrives damaged, is
/// `CheckpointUnusable` (the coordinator sets it aside); not getting it at all is `Internal`.
async fn fetch_checkpoint(
    session: &Session,
    lease: &v1::LeaseRef,
    resume: &v1::CheckpointRef,
    stop: &watch::Receiver<bool>,
) -> Result<Vec<u8>, (FailureKind, String)> {
    use sha2::Digest as _;
    use tokio_stream::StreamExt as _;
    let request = v1::FetchCheckpointRequest {
        worker_id: session.worker_id.to_string(),
        lease: Some(lease.clone()),
    };
    let bytes = retry(session.patience, stop, || {
        let mut c = session.client.clone();
        let r = request.clone();
        async move {
            let mut stream = c.fetch_checkpoint(r).await?.into_inner();
            let mut bytes = Vec::new();
            while let Some(chunk) = stream.next().await {
                bytes.extend_from_slice(&chunk?.data);
                if bytes.len() as u64 > resume.size {
                    break;
                }
            }
            Ok(bytes)
        }
    })
    .await
    .map_err(|s| {
        let kind = if s.code() == Code::DataLoss {
            FailureKind::CheckpointUnusable
        } else {
            FailureKind::Internal
        };
        (
            kind,
            format!(
                "cannot fetch the checkpoint to resume from: {}",
                s.message()
            ),
        )
    })?;
    let sha256 = format!("{:x}", sha2::Sha256::digest(&bytes));
    if bytes.len() as u64 != resume.size || sha256 != resume.sha256 {
        return Err((
            FailureKind::CheckpointUnusable,
            format!(
                "the checkpoint to resume from arrived damaged: {} bytes with SHA-256 {sha256}, expected {} bytes with {}",
                bytes.len(),
                resume.size,
                resume.sha256
            ),
        ));
    }
    Ok(bytes)
}

/// A failed attempt's outcome, on the wire, its message made one line of at most
/// `sweep_proto::MAX_MESSAGE_CHARS` (a libtorch error carries a multi-line backtrace; the
/// coordinator refuses control characters).
fn failure(kind: FailureKind, message: String) -> complete_request::Outcome {
    complete_request::Outcome::Failure(v1::TrialFailure {
        kind: v1::FailureKind::from(kind).into(),
        message: sweep_common::text::one_line(&message, sweep_proto::MAX_MESSAGE_CHARS),
    })
}

/// Whether a libtorch error says the device failed (rather than the trial: those are caught
/// before training, as invalid specs). Out of memory is not a device failure.
fn device_failed(message: &str) -> bool {
    !message.contains("out of memory")
        && [
            "CUDA error",
            "CUBLAS_STATUS",
            "CUDNN_STATUS",
            "cudaError",
            "NCCL error",
        ]
        .iter()
        .any(|m| message.contains(m))
}

/// Who a failure to make the dataset resident belongs to: a missing or corrupt file, or a failed
/// download, is this worker's data folder's (other workers may have it); the device running out
/// of memory is retried; a device failure is the worker's.
fn load_failure(e: &LoadError) -> FailureKind {
    match e {
        LoadError::Data(_) | LoadError::Offline { .. } | LoadError::Download { .. } => {
            FailureKind::Data
        }
        LoadError::Torch(t) if t.to_string().contains("out of memory") => FailureKind::OutOfMemory,
        LoadError::Torch(t) if device_failed(&t.to_string()) => FailureKind::Device,
        LoadError::Torch(_) | LoadError::Join(_) => FailureKind::Internal,
    }
}

/// The text of a panic payload.
fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".to_owned())
}

/// Trains one leased trial and ends its lease. Errors talking to the coordinator are logged:
/// the lease then expires and the coordinator leases the trial again.
async fn run_trial(
    session: &Session,
    slot: usize,
    a: v1::Assignment,
    shutdown: &mut watch::Receiver<bool>,
    never: &watch::Receiver<bool>,
) {
    let (trial_id, attempt) = match parse_lease(a.lease.as_ref()) {
        Ok(l) => l,
        Err(e) => {
            warn!(slot, error = %e, "malformed assignment; ignoring it");
            return;
        }
    };
    let lease = lease_ref(trial_id, attempt);
    let call_limit = (session.lease_ttl / 2).max(Duration::from_millis(200));
    let complete = |outcome: complete_request::Outcome| {
        let succeeded = matches!(outcome, complete_request::Outcome::Result(_));
        let request = v1::CompleteRequest {
            worker_id: session.worker_id.to_string(),
            lease: Some(lease.clone()),
            outcome: Some(outcome),
        };
        async move {
            let r = retry(session.patience, never, || {
                let mut c = session.client.clone();
                let r = request.clone();
                within(call_limit, async move { c.complete(r).await })
            })
            .await;
            match r {
                Ok(_) => {
                    info!(trial = %trial_id.short(), attempt, succeeded, "completion acknowledged")
                }
                Err(status) => {
                    warn!(trial = %trial_id.short(), code = ?status.code(), message = status.message(), "completion not accepted");
                }
            }
        }
    };
    let spec = match a.trial.as_ref().map(TrialSpec::try_from) {
        Some(Ok(spec)) => spec,
        Some(Err(e)) => {
            return complete(failure(FailureKind::InvalidSpec, e.to_string())).await;
        }
        None => {
            return complete(failure(
                FailureKind::InvalidSpec,
                "assignment without a trial".into(),
            ))
            .await;
        }
    };
    let resume_from = a.resume.as_ref().map_or(0, |r| r.epoch);
    info!(slot, trial = %spec.name, id = %spec.id.short(), attempt, resume_from, "training");
    let resume = match &a.resume {
        Some(r) => match fetch_checkpoint(session, &lease, r, shutdown).await {
            Ok(bytes) => Some(bytes),
            Err((kind, message)) => {
                warn!(trial = %spec.name, %kind, %message, "cannot resume");
                return complete(failure(kind, message)).await;
            }
        },
        None => None,
    };
    let engine = match &session.engine {
        Engine::Torch(cache) => match cache.get(spec.dataset).await {
            Ok(d) => Ok(d),
            Err(e) => {
                let kind = load_failure(&e);
                warn!(trial = %spec.name, %kind, error = %e, "dataset unavailable");
                return complete(failure(kind, e.to_string())).await;
            }
        },
        Engine::Test(epoch_time) => Err(*epoch_time),
    };

    // --slots auto: the device's memory before the first trial, to measure what it takes.
    let mut baseline = None;
    if session.auto_slots.is_some() && !session.calibrated.load(Ordering::Relaxed) {
        let device = session.device;
        baseline = tokio::task::spawn_blocking(move || crate::memory::read(device))
            .await
            .ok()
            .flatten();
    }
    let control = Arc::new(Control::default());
    let (tx, mut rx) = mpsc::channel::<FromTrainer>(64);
    let (done_tx, mut done_rx) = oneshot::channel();
    let thread_spec = spec.clone();
    let thread_control = Arc::clone(&control);
    let spawned = std::thread::Builder::new()
        .name(format!("trial-{}", spec.id.short()))
        .spawn(move || {
            let mut progress = ToSession { tx };
            let r = std::panic::catch_unwind(AssertUnwindSafe(|| match &engine {
                Ok(data) => train(
                    &thread_spec,
                    data,
                    &mut progress,
                    &thread_control,
                    resume.as_deref(),
                ),
                Err(epoch_time) => crate::fake::train(
                    &thread_spec,
                    *epoch_time,
                    &mut progress,
                    &thread_control,
                    resume.as_deref(),
                ),
            }));
            let _ = done_tx.send(r);
        });
    if let Err(e) = spawned {
        return complete(failure(
            FailureKind::Internal,
            format!("cannot start a training thread: {e}"),
        ))
        .await;
    }

    let mut heartbeat = tokio::time::interval(session.heartbeat);
    heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_renewed = Instant::now();
    let mut revoked = false;
    let mut draining = false;
    let drain_deadline = tokio::time::sleep(Duration::MAX / 4);
    tokio::pin!(drain_deadline);
    let total = spec.params.epochs;
    let give_up = |revoked: &mut bool, why: &str, message: &str| {
        if !*revoked {
            warn!(trial = %spec.name, attempt, %message, "{why}; stopping the trial");
        }
        *revoked = true;
        control.stop.store(true, Ordering::Relaxed);
    };
    let finished = loop {
        tokio::select! {
            // In this order: the trainer sends every epoch and checkpoint before its result, so
            // those still queued when the result arrives are reported first.
            biased;
            Some(msg) = rx.recv() => match msg {
                FromTrainer::Epoch(m) => {
                    if let Some(b) = baseline.take() {
                        session.calibrate(b).await;
                    }
                    info!(
                        trial = %spec.name,
                        "epoch {}/{total}: loss {:.4}, train {:.2} %, test {:.2} % ({:.2} s)",
                        m.epoch, m.train_loss, m.train_accuracy, m.test_accuracy, m.seconds
                    );
                    if revoked {
                        continue;
                    }
                    let request = v1::ReportEpochRequest {
                        worker_id: session.worker_id.to_string(),
                        lease: Some(lease.clone()),
                        metrics: Some((&m).into()),
                    };
                    let r = retry(session.lease_ttl, never, || {
                        let mut c = session.client.clone();
                        let r = request.clone();
                        within(call_limit, async move { c.report_epoch(r).await })
                    }).await;
                    match r {
                        Ok(_) => last_renewed = Instant::now(),
                        Err(status) if !sweep_proto::transient(&status) => {
                            give_up(&mut revoked, "epoch report refused", status.message());
                        }
                        Err(status) => {
                            if last_renewed.elapsed() > session.lease_ttl {
                                give_up(&mut revoked, "lease could not be renewed within its TTL", status.message());
                            }
                        }
                    }
                }
                FromTrainer::Checkpoint { epoch, bytes } => {
                    if revoked {
                        continue;
                    }
                    match upload(session, &lease, v1::ArtifactKind::Checkpoint, epoch, Arc::new(bytes), never).await {
                        Ok(receipt) => {
                            last_renewed = Instant::now();
                            info!(trial = %spec.name, epoch, bytes = receipt.size, "checkpoint uploaded");
                        }
                        Err(status) if !sweep_proto::transient(&status) && status.code() != Code::InvalidArgument => {
                            give_up(&mut revoked, "checkpoint refused", status.message());
                        }
                        Err(status) => warn!(trial = %spec.name, epoch, message = status.message(), "checkpoint not stored"),
                    }
                }
            },
            _ = heartbeat.tick(), if !revoked => {
                let mut c = session.client.clone();
                let r = within(call_limit, c.heartbeat(v1::HeartbeatRequest {
                    worker_id: session.worker_id.to_string(),
                    leases: vec![lease.clone()],
                    memory: session.memory_now(),
                })).await;
                match r {
                    Ok(resp) if resp.get_ref().revoked.is_empty() => last_renewed = Instant::now(),
                    Ok(_) => give_up(&mut revoked, "lease revoked by the coordinator", "cancelled, expired or superseded"),
                    Err(status) if !sweep_proto::transient(&status) => {
                        give_up(&mut revoked, "heartbeat refused", status.message());
                    }
                    Err(status) => {
                        if last_renewed.elapsed() > session.lease_ttl {
                            give_up(&mut revoked, "lease could not be renewed within its TTL", status.message());
                        }
                    }
                }
            }
            _ = shutdown.changed(), if !draining => {
                info!(trial = %spec.name, seconds = session.drain_timeout.as_secs_f64(), "shutting down: finishing the epoch, checkpointing it and giving the lease back");
                draining = true;
                control.drain.store(true, Ordering::Relaxed);
                drain_deadline.as_mut().reset(tokio::time::Instant::now() + session.drain_timeout);
            }
            () = &mut drain_deadline, if draining => {
                warn!(trial = %spec.name, "the epoch did not end within the drain timeout: stopping it");
                control.stop.store(true, Ordering::Relaxed);
                drain_deadline.as_mut().reset(tokio::time::Instant::now() + Duration::MAX / 4);
            }
            r = &mut done_rx => break r,
        }
    };
    if revoked {
        return;
    }
    let outcome = match finished {
        Ok(Ok(Ok(Trained { result, weights }))) => {
            // The weights go first, while the lease is live; the result ends the lease.
            match upload_weights(session, &lease, &spec.name, weights, never, shutdown).await {
                WeightsUpload::Stored(receipt) => {
                    info!(trial = %spec.name, bytes = receipt.size, "final weights uploaded")
                }
                WeightsUpload::NotStored(status) => {
                    warn!(trial = %spec.name, message = status.message(), "final weights not stored")
                }
                WeightsUpload::Stopped => {
                    // Given back, free: trained again elsewhere (from its last checkpoint).
                    return complete(failure(
                        FailureKind::WorkerShutdown,
                        "worker shut down while the coordinator could not store the final weights"
                            .into(),
                    ))
                    .await;
                }
            }
            info!(
                trial = %spec.name,
                test_accuracy = format!("{:.2}", result.test_accuracy),
                train_accuracy = format!("{:.2}", result.train_accuracy),
                seconds = format!("{:.1}", result.train_seconds),
                "trial trained"
            );
            complete_request::Outcome::Result((&result).into())
        }
        Ok(Ok(Err(TrainError::Stopped { epoch }))) => failure(
            FailureKind::WorkerShutdown,
            format!("worker shut down during epoch {epoch}"),
        ),
        Ok(Ok(Err(TrainError::Drained { epoch }))) => failure(
            FailureKind::WorkerShutdown,
            format!("worker shut down after epoch {epoch} (checkpointed)"),
        ),
        Ok(Ok(Err(e @ TrainError::NonFiniteLoss { .. }))) => {
            failure(FailureKind::NonFiniteLoss, e.to_string())
        }
        Ok(Ok(Err(e @ TrainError::Invalid(_)))) => failure(FailureKind::InvalidSpec, e.to_string()),
        Ok(Ok(Err(e @ TrainError::Resume(_)))) => {
            warn!(trial = %spec.name, error = %e, "the checkpoint to resume from cannot be loaded");
            failure(FailureKind::CheckpointUnusable, e.to_string())
        }
        Ok(Ok(Err(e @ TrainError::Checkpoint(_)))) => failure(FailureKind::Internal, e.to_string()),
        Ok(Ok(Err(e @ TrainError::Torch(_)))) => {
            let message = e.to_string();
            if message.contains("out of memory") {
                // Not the trial's fault: it is leased again, and this worker trains fewer at once.
                let allowed = session
                    .slots_allowed
                    .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |k| {
                        Some(k.saturating_sub(1).max(1))
                    })
                    .unwrap_or(1);
                warn!(trial = %spec.name, slots = allowed.saturating_sub(1).max(1), "out of device memory: training fewer trials at once");
                failure(FailureKind::OutOfMemory, message)
            } else if device_failed(&message) {
                // Not the trial's fault either: it goes to another worker, and this one takes
                // no more trials (the coordinator tells it so at its next lease).
                tracing::error!(trial = %spec.name, %message, "the device failed");
                failure(FailureKind::Device, message)
            } else {
                failure(FailureKind::Internal, message)
            }
        }
        Ok(Err(panic)) => failure(
            FailureKind::Panic,
            format!("the trainer panicked: {}", panic_message(panic.as_ref())),
        ),
        Err(_) => failure(FailureKind::Internal, "the training thread vanished".into()),
    };
    complete(outcome).await;
}

#[cfg(test)]
mod tests {
    use sweep_common::DatasetKind;
    use sweep_data::DataError;

    use super::*;

    #[test]
    fn each_failure_goes_to_whom_it_belongs() {
        // libtorch's words for a failed device; running out of memory is not one.
        assert!(device_failed(
            "CUDA error: an illegal memory access was encountered"
        ));
        assert!(device_failed(
            "CUBLAS_STATUS_EXECUTION_FAILED when calling cublasSgemm"
        ));
        assert!(!device_failed("CUDA error: out of memory"));
        assert!(!device_failed(
            "shape '[2, 3]' is invalid for input of size 7"
        ));
        // A dataset this worker cannot find or read is its own data folder's problem.
        let not_found = || DataError::NotFound {
            dataset: DatasetKind::Cifar10,
            tried: vec!["/data/cifar-10-batches-bin".into()],
            expected: "the batches".into(),
        };
        assert_eq!(
            load_failure(&LoadError::Data(not_found())),
            FailureKind::Data
        );
        let offline = LoadError::Offline {
            not_found: Box::new(not_found()),
            hint: "put it there".into(),
        };
        assert_eq!(load_failure(&offline), FailureKind::Data);
        assert_eq!(
            load_failure(&LoadError::Join("panicked".into())),
            FailureKind::Internal
        );
    }
}
