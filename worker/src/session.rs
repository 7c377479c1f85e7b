//! The worker's conversation with the coordinator: register, then K slots that each lease a
//! trial, train it on a thread of its own (from the checkpoint an earlier attempt left, if any),
//! report its epochs, upload its checkpoints, keep its lease alive and complete it, until the
//! coordinator says the sweep is finished or the worker is told to stop.
//!
//! A lease that cannot be renewed within its TTL is given up by the worker itself: the trial
//! stops, and nothing more is sent about it. Told to stop, the worker drains: each trial finishes
//! its epoch, uploads a checkpoint of it and gives its lease back, or is stopped outright when
//! the drain timeout runs out first.
//!
//! This module holds what the slots share and the lease loop; [`trial`] runs one leased trial,
//! [`transfer`] moves its files (the checkpoint it resumes from, its uploads).

mod transfer;
mod trial;

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::{Duration, Instant};

use sweep_common::{TrialId, WorkerId};
use sweep_proto::{Client, DeviceMemory, v1::lease_response};
use tokio::sync::watch;
use tonic::Status;
use tracing::{info, warn};

use crate::data_cache::DataCache;

/// A lease, as the worker names it in every call about its trial: (trial, attempt).
type Lease = (TrialId, u32);

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
    /// The most epochs one report may carry (1 with a coordinator from before batches).
    pub epochs_per_report: usize,
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
    fn memory_now(&self) -> Option<DeviceMemory> {
        self.memory
            .borrow()
            // A reading that cannot be true is not sent: the coordinator refuses it.
            .filter(|r| r.used <= r.total && r.free <= r.total)
            .map(|r| DeviceMemory {
                used: r.used,
                free: r.free,
                total: r.total,
            })
    }

    /// The device's memory now, read off the async threads; None when it cannot be read.
    async fn read_memory(&self) -> Option<crate::memory::Reading> {
        let device = self.device;
        tokio::task::spawn_blocking(move || crate::memory::read(device))
            .await
            .ok()
            .flatten()
    }

    /// After an out-of-memory failure: one slot fewer may lease, but at least one. Returns how
    /// many may now.
    fn fewer_slots(&self) -> u32 {
        let before = self
            .slots_allowed
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |k| {
                Some(k.saturating_sub(1).max(1))
            })
            .unwrap_or(1);
        before.saturating_sub(1).max(1)
    }

    /// `--slots auto`: the trial that was alone on the device has trained an epoch; `baseline`
    /// was the device's memory before it started. Sizes the slots from what it took.
    async fn calibrate(&self, baseline: crate::memory::Reading) {
        let Some(cap) = self.auto_slots else { return };
        if self.calibrated.swap(true, Ordering::Relaxed) {
            return;
        }
        let Some(now) = self.read_memory().await else {
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
        let request = sweep_proto::lease_request(session.worker_id);
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
                trial::run(&session, index, a, &mut shutdown, &never).await;
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
