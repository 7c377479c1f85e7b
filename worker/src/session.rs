//! The worker's conversation with the coordinator: register, then K slots that each lease a
//! trial, train it on a thread of its own, report its epochs, keep its lease alive and complete
//! it, until the coordinator says the sweep is finished or the worker is told to stop.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use sweep_common::{EpochMetrics, TrialSpec, WorkerId};
use sweep_proto::v1::{self, complete_request, lease_response};
use sweep_proto::{SweepServiceClient, lease_ref, parse_lease};
use tokio::sync::{mpsc, oneshot, watch};
use tonic::transport::Channel;
use tonic::{Code, Status};
use tracing::{info, warn};

use crate::data_cache::DataCache;
use crate::train::{Progress, TrainError, Trained, train};

/// Forwards the trainer's progress from its thread to the async side.
struct ToSession {
    epochs: mpsc::Sender<EpochMetrics>,
}

impl Progress for ToSession {
    fn epoch(&mut self, metrics: &EpochMetrics) {
        let _ = self.epochs.blocking_send(metrics.clone());
    }

    fn checkpoint(&mut self, epoch: u32, bytes: Vec<u8>) {
        // Storing checkpoints where another attempt can find them is the fault-tolerance work
        // (uploading to the coordinator); until then they are only counted.
        tracing::debug!(epoch, bytes = bytes.len(), "checkpoint made");
    }
}

/// What every slot shares.
pub struct Session {
    /// The gRPC client (cheap to clone).
    pub client: SweepServiceClient<Channel>,
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
    /// Datasets on the device.
    pub data: DataCache,
}

/// Whether a failed call may succeed if tried again.
fn transient(status: &Status) -> bool {
    matches!(
        status.code(),
        Code::Unavailable
            | Code::DeadlineExceeded
            | Code::Unknown
            | Code::ResourceExhausted
            | Code::Aborted
    )
}

/// Calls `f` until it succeeds, fails for good, `patience` runs out or `stop` turns true.
pub async fn retry<T, F, Fut>(
    patience: Duration,
    stop: &watch::Receiver<bool>,
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
            Err(status)
                if transient(&status) && started.elapsed() < patience && !*stop.borrow() =>
            {
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
}

/// Runs one slot until the sweep is finished or `shutdown` turns true.
pub async fn slot(
    session: Arc<Session>,
    index: usize,
    mut shutdown: watch::Receiver<bool>,
) -> Result<SlotEnd, crate::Error> {
    let never = watch::channel(false).1;
    loop {
        if *shutdown.borrow() {
            return Ok(SlotEnd::Stopped);
        }
        let request = v1::LeaseRequest {
            worker_id: session.worker_id.to_string(),
        };
        let response = retry(session.patience, &shutdown, || {
            let mut c = session.client.clone();
            let r = request.clone();
            async move { c.lease(r).await }
        })
        .await;
        let outcome = match response {
            Ok(r) => r.into_inner().outcome,
            Err(status) if *shutdown.borrow() => {
                info!(slot = index, code = ?status.code(), "stopping");
                return Ok(SlotEnd::Stopped);
            }
            Err(status) if transient(&status) => {
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
            None => {
                warn!(slot = index, "empty lease response; asking again");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

/// Uploads `bytes` as an artifact of `lease`, in chunks, retrying transient errors.
async fn upload(
    session: &Session,
    lease: &v1::LeaseRef,
    kind: v1::ArtifactKind,
    bytes: Vec<u8>,
    stop: &watch::Receiver<bool>,
) -> Result<v1::ArtifactReceipt, Status> {
    use sha2::Digest as _;
    let header = v1::ArtifactHeader {
        worker_id: session.worker_id.to_string(),
        lease: Some(lease.clone()),
        kind: kind.into(),
        size: bytes.len() as u64,
        sha256: format!("{:x}", sha2::Sha256::digest(&bytes)),
        epoch: 0,
    };
    let bytes = Arc::new(bytes);
    let response = retry(session.patience, stop, || {
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

/// Failure kinds as the wire names them.
fn failure(kind: v1::FailureKind, message: String) -> complete_request::Outcome {
    complete_request::Outcome::Failure(v1::TrialFailure {
        kind: kind.into(),
        message,
    })
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
    let complete = |outcome: complete_request::Outcome| {
        let request = v1::CompleteRequest {
            worker_id: session.worker_id.to_string(),
            lease: Some(lease.clone()),
            outcome: Some(outcome),
        };
        async move {
            let r = retry(session.patience, never, || {
                let mut c = session.client.clone();
                let r = request.clone();
                async move { c.complete(r).await }
            })
            .await;
            if let Err(status) = r {
                warn!(trial = %trial_id.short(), code = ?status.code(), message = status.message(), "completion not accepted");
            }
        }
    };
    let spec = match a.trial.as_ref().map(TrialSpec::try_from) {
        Some(Ok(spec)) => spec,
        Some(Err(e)) => {
            return complete(failure(v1::FailureKind::InvalidSpec, e.to_string())).await;
        }
        None => {
            return complete(failure(
                v1::FailureKind::InvalidSpec,
                "assignment without a trial".into(),
            ))
            .await;
        }
    };
    info!(slot, trial = %spec.name, id = %spec.id.short(), attempt, "training");
    let data = match session.data.get(spec.dataset).await {
        Ok(d) => d,
        Err(e) => {
            warn!(trial = %spec.name, error = %e, "dataset unavailable");
            return complete(failure(v1::FailureKind::Data, e.to_string())).await;
        }
    };

    let stop = Arc::new(AtomicBool::new(false));
    let (epoch_tx, mut epoch_rx) = mpsc::channel::<EpochMetrics>(64);
    let (done_tx, mut done_rx) = oneshot::channel();
    let thread_spec = spec.clone();
    let thread_stop = Arc::clone(&stop);
    let spawned = std::thread::Builder::new()
        .name(format!("trial-{}", spec.id.short()))
        .spawn(move || {
            let mut progress = ToSession { epochs: epoch_tx };
            let r = std::panic::catch_unwind(AssertUnwindSafe(|| {
                train(&thread_spec, &data, &mut progress, &thread_stop, None)
            }));
            let _ = done_tx.send(r);
        });
    if let Err(e) = spawned {
        return complete(failure(
            v1::FailureKind::Internal,
            format!("cannot start a training thread: {e}"),
        ))
        .await;
    }

    let mut heartbeat = tokio::time::interval(session.heartbeat);
    heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_renewed = Instant::now();
    let mut revoked = false;
    let mut shutting_down = false;
    let total = spec.params.epochs;
    let finished = loop {
        tokio::select! {
            // In this order: the trainer sends every epoch before its result, so the epochs still
            // queued when the result arrives are logged and reported first.
            biased;
            Some(m) = epoch_rx.recv() => {
                info!(
                    trial = %spec.name,
                    "epoch {}/{total}: loss {:.4}, train {:.2} %, test {:.2} % ({:.2} s)",
                    m.epoch, m.train_loss, m.train_accuracy, m.test_accuracy, m.seconds
                );
                let request = v1::ReportEpochRequest {
                    worker_id: session.worker_id.to_string(),
                    lease: Some(lease.clone()),
                    metrics: Some((&m).into()),
                };
                let r = retry(session.lease_ttl, never, || {
                    let mut c = session.client.clone();
                    let r = request.clone();
                    async move { c.report_epoch(r).await }
                }).await;
                match r {
                    Ok(_) => last_renewed = Instant::now(),
                    Err(status) if !transient(&status) => {
                        warn!(trial = %spec.name, message = status.message(), "lease lost; stopping the trial");
                        revoked = true;
                        stop.store(true, Ordering::Relaxed);
                    }
                    Err(_) => {}
                }
            }
            _ = heartbeat.tick() => {
                let mut c = session.client.clone();
                let r = c.heartbeat(v1::HeartbeatRequest {
                    worker_id: session.worker_id.to_string(),
                    leases: vec![lease.clone()],
                }).await;
                match r {
                    Ok(resp) if resp.get_ref().revoked.is_empty() => last_renewed = Instant::now(),
                    Ok(_) => {
                        warn!(trial = %spec.name, "lease revoked by the coordinator; stopping the trial");
                        revoked = true;
                        stop.store(true, Ordering::Relaxed);
                    }
                    Err(status) if !transient(&status) => {
                        warn!(trial = %spec.name, message = status.message(), "heartbeat refused; stopping the trial");
                        revoked = true;
                        stop.store(true, Ordering::Relaxed);
                    }
                    Err(status) => {
                        if last_renewed.elapsed() > session.lease_ttl && !revoked {
                            warn!(trial = %spec.name, message = status.message(), "lease could not be renewed within its TTL; stopping the trial");
                            revoked = true;
                            stop.store(true, Ordering::Relaxed);
                        }
                    }
                }
            }
            _ = shutdown.changed(), if !shutting_down => {
                info!(trial = %spec.name, "shutting down: stopping the trial and giving its lease back");
                shutting_down = true;
                stop.store(true, Ordering::Relaxed);
            }
            r = &mut done_rx => break r,
        }
    };
    let outcome = match finished {
        Ok(Ok(Ok(Trained { result, weights }))) => {
            // The weights go first, while the lease is live; the result ends the lease.
            match upload(
                session,
                &lease,
                v1::ArtifactKind::FinalWeights,
                weights,
                never,
            )
            .await
            {
                Ok(receipt) => {
                    info!(trial = %spec.name, bytes = receipt.size, "final weights uploaded")
                }
                Err(status) => {
                    warn!(trial = %spec.name, message = status.message(), "final weights not stored")
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
        Ok(Ok(Err(TrainError::Stopped { epoch }))) => {
            if revoked {
                return;
            }
            failure(
                v1::FailureKind::WorkerShutdown,
                format!("worker shut down during epoch {epoch}"),
            )
        }
        Ok(Ok(Err(e @ TrainError::NonFiniteLoss { .. }))) => {
            failure(v1::FailureKind::NonFiniteLoss, e.to_string())
        }
        Ok(Ok(Err(e @ TrainError::Invalid(_)))) => {
            failure(v1::FailureKind::InvalidSpec, e.to_string())
        }
        Ok(Ok(Err(e @ TrainError::Checkpoint(_)))) => {
            failure(v1::FailureKind::Internal, e.to_string())
        }
        Ok(Ok(Err(e @ TrainError::Torch(_)))) => {
            let message = e.to_string();
            if message.contains("out of memory") {
                failure(v1::FailureKind::OutOfMemory, message)
            } else {
                failure(v1::FailureKind::Internal, message)
            }
        }
        Ok(Err(panic)) => failure(
            v1::FailureKind::Internal,
            format!("the trainer panicked: {}", panic_message(panic.as_ref())),
        ),
        Err(_) => failure(
            v1::FailureKind::Internal,
            "the training thread vanished".into(),
        ),
    };
    if revoked {
        return;
    }
    complete(outcome).await;
}
