//! Simulated workers: each registers, then leases trials one at a time, "trains" each by
//! sleeping the epoch time and reporting plausible metrics, and completes it with a result the
//! coordinator accepts, while a task of its own heartbeats the lease it holds. They speak the
//! real protocol; only the training is pretend.
//!
//! Every call's latency goes into the shared [`Stats`]; every failed call is counted by RPC and
//! status code (and the first few are printed), never ignored.
//!
//! With `--metrics-from`, a worker reports the metrics a finished sweep recorded for the leased
//! trial's configuration ([`Table`]) instead of made-up ones; a trial the table does not have
//! ends the run ([`Shared::fatal`]).

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use sweep_common::{ConfusionMatrix, TrialSpec};
use sweep_proto::v1::{self, complete_request, lease_response};
use sweep_proto::{Bearer, Client};
use tokio::sync::watch;
use tonic::transport::Channel;
use tonic::{Code, Response, Status};

use crate::table::{Recorded, Table};

/// Tries of a call that failed with an error that may pass (see [`sweep_proto::transient`]).
const TRIES: u32 = 3;
/// Pause before trying a failed call again.
const RETRY_DELAY: Duration = Duration::from_millis(100);
/// How long a worker waits after the coordinator's rate limit refused a call (RESOURCE_EXHAUSTED:
/// "slow down"); such calls are tried again without limit and counted apart from errors.
const THROTTLED_DELAY: Duration = Duration::from_millis(10);
/// Lease calls failing in a row after which a worker gives up.
const MAX_LEASE_FAILURES: u32 = 20;
/// Failed calls printed as they happen (the rest are only counted).
const ERRORS_PRINTED: u64 = 20;

/// The RPCs, for statistics.
#[derive(Debug, Clone, Copy)]
pub enum Rpc {
    Register,
    Lease,
    ReportEpoch,
    Complete,
    Heartbeat,
}

/// What the simulated workers measured.
pub struct Stats {
    /// Latency (microseconds) of each successful call, by RPC.
    pub register: Histogram<u64>,
    pub lease: Histogram<u64>,
    /// Of the Lease calls that returned an assignment only.
    pub lease_assigned: Histogram<u64>,
    pub report_epoch: Histogram<u64>,
    pub complete: Histogram<u64>,
    pub heartbeat: Histogram<u64>,
    /// Failed calls, by `"Rpc: Code"`.
    pub errors: BTreeMap<String, u64>,
    /// Calls the coordinator's per-worker rate limit refused (and that were tried again).
    pub throttled: u64,
    /// Leases a heartbeat answer revoked.
    pub revoked: u64,
    /// With --asha: calls refused because the rule had stopped the trial (another seed's
    /// report stopped its configuration).
    pub stopped_elsewhere: u64,
    /// Leases abandoned because a call about them was refused.
    pub lost: u64,
    /// When the first Lease call was sent.
    pub first_lease: Option<Instant>,
    /// When the last Complete was acknowledged.
    pub last_complete: Option<Instant>,
}

impl Stats {
    fn new() -> Stats {
        // 1 us to 10 min, 3 significant digits.
        let h = || Histogram::new_with_bounds(1, 600_000_000, 3).expect("valid histogram bounds");
        Stats {
            register: h(),
            lease: h(),
            lease_assigned: h(),
            report_epoch: h(),
            complete: h(),
            heartbeat: h(),
            errors: BTreeMap::new(),
            throttled: 0,
            stopped_elsewhere: 0,
            revoked: 0,
            lost: 0,
            first_lease: None,
            last_complete: None,
        }
    }

    fn histogram(&mut self, rpc: Rpc) -> &mut Histogram<u64> {
        match rpc {
            Rpc::Register => &mut self.register,
            Rpc::Lease => &mut self.lease,
            Rpc::ReportEpoch => &mut self.report_epoch,
            Rpc::Complete => &mut self.complete,
            Rpc::Heartbeat => &mut self.heartbeat,
        }
    }

    /// Total failed calls.
    pub fn error_count(&self) -> u64 {
        self.errors.values().sum()
    }
}

/// Records `took` (saturating at the histogram's top).
fn record(h: &mut Histogram<u64>, took: Duration) {
    h.saturating_record(u64::try_from(took.as_micros()).unwrap_or(u64::MAX).max(1));
}

/// What every simulated worker shares.
pub struct Shared {
    /// How long each simulated epoch takes.
    pub epoch_time: Duration,
    /// Each epoch takes `epoch_time` times a factor in [1 - jitter, 1 + jitter].
    pub jitter: f64,
    /// Calls that start before this are not in the latency histograms (--warmup).
    pub measure_from: Instant,
    /// Trials in the sweep.
    pub trials: u64,
    /// The coordinator's process id, to read its CPU time when the last trial is acknowledged.
    pub coordinator_pid: String,
    /// Early stopping is on (--asha): a lease that ends because the rule stopped the trial's
    /// configuration (FAILED_PRECONDITION on a call about it) is a stopped trial, not an error.
    pub asha: bool,
    /// Epochs sent in one ReportEpoch (--epochs-per-call), at most what the coordinator takes.
    pub epochs_per_call: u32,
    /// --metrics-from: the recorded outcomes reported instead of made-up metrics.
    pub table: Option<Table>,
    /// Why the run cannot go on (a leased trial the table does not have), once one says so.
    fatal: OnceLock<String>,
    stats: Mutex<Stats>,
    completed: AtomicU64,
    epoch_reports: AtomicU64,
    report_calls: AtomicU64,
    cpu_at_end: OnceLock<f64>,
    peak_rss_at_end: OnceLock<u64>,
}

impl Shared {
    pub fn new(
        epoch_time: Duration,
        jitter: f64,
        warmup: Duration,
        trials: u64,
        coordinator_pid: String,
        asha: bool,
        epochs_per_call: u32,
    ) -> Shared {
        Shared {
            epoch_time,
            jitter,
            measure_from: Instant::now() + warmup,
            trials,
            coordinator_pid,
            asha,
            epochs_per_call,
            table: None,
            fatal: OnceLock::new(),
            stats: Mutex::new(Stats::new()),
            completed: AtomicU64::new(0),
            epoch_reports: AtomicU64::new(0),
            report_calls: AtomicU64::new(0),
            cpu_at_end: OnceLock::new(),
            peak_rss_at_end: OnceLock::new(),
        }
    }

    /// Reports the metrics `table` recorded instead of made-up ones (--metrics-from).
    pub fn with_table(self, table: Option<Table>) -> Shared {
        Shared { table, ..self }
    }

    /// The statistics so far.
    pub fn stats(&self) -> MutexGuard<'_, Stats> {
        self.stats
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Epochs reported and acknowledged (warm-up included).
    pub fn epoch_reports(&self) -> u64 {
        self.epoch_reports.load(Ordering::Relaxed)
    }

    /// ReportEpoch calls acknowledged (warm-up included).
    pub fn report_calls(&self) -> u64 {
        self.report_calls.load(Ordering::Relaxed)
    }

    /// Trials whose Complete was acknowledged.
    pub fn completed(&self) -> u64 {
        self.completed.load(Ordering::Relaxed)
    }

    /// Why the run cannot go on, once a worker found out.
    pub fn fatal(&self) -> Option<&str> {
        self.fatal.get().map(String::as_str)
    }

    /// The coordinator's CPU seconds read right after the last trial was acknowledged.
    pub fn cpu_at_end(&self) -> Option<f64> {
        self.cpu_at_end.get().copied()
    }

    /// The coordinator's peak resident memory (VmHWM) read right after the last trial was
    /// acknowledged: what serving the sweep took, before the final results and report.
    pub fn peak_rss_at_end(&self) -> Option<u64> {
        self.peak_rss_at_end.get().copied()
    }

    fn error(&self, rpc: Rpc, status: &Status) {
        let mut stats = self.stats();
        *stats
            .errors
            .entry(format!("{rpc:?}: {:?}", status.code()))
            .or_default() += 1;
        if stats.error_count() <= ERRORS_PRINTED {
            eprintln!(
                "loadgen: {rpc:?} failed: {:?}: {}",
                status.code(),
                status.message()
            );
        }
    }

    /// One trial acknowledged at `now`.
    fn trial_done(&self, now: Instant) {
        if self.completed.fetch_add(1, Ordering::Relaxed) + 1 == self.trials {
            if let Ok(cpu) = crate::coordinator::cpu_seconds(&self.coordinator_pid) {
                let _ = self.cpu_at_end.set(cpu);
            }
            if let Ok(rss) = crate::coordinator::memory(&self.coordinator_pid, "VmHWM") {
                let _ = self.peak_rss_at_end.set(rss);
            }
        }
        let mut stats = self.stats();
        stats.last_complete = stats.last_complete.max(Some(now));
    }

    /// With --asha: whether `status` says the lease ended because the stopping rule stopped the
    /// trial (a decision about another seed of its configuration).
    pub fn stopped_elsewhere(&self, status: &Status) -> bool {
        self.asha && status.code() == Code::FailedPrecondition
    }

    /// Calls `f` (one `rpc` call), records its latency if it succeeds and counts its error if
    /// not; tries again, up to [`TRIES`] times, an error that may pass.
    async fn call<T, F, Fut>(&self, rpc: Rpc, mut f: F) -> Result<(T, Duration), Status>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<Response<T>, Status>>,
    {
        let mut tries = 0;
        loop {
            let started = Instant::now();
            match f().await {
                Ok(response) => {
                    let took = started.elapsed();
                    if matches!(rpc, Rpc::ReportEpoch) {
                        self.report_calls.fetch_add(1, Ordering::Relaxed);
                    }
                    if started >= self.measure_from {
                        record(self.stats().histogram(rpc), took);
                    }
                    return Ok((response.into_inner(), took));
                }
                Err(status) if self.stopped_elsewhere(&status) => {
                    self.stats().stopped_elsewhere += 1;
                    return Err(status);
                }
                Err(status) if status.code() == Code::ResourceExhausted => {
                    self.stats().throttled += 1;
                    tokio::time::sleep(THROTTLED_DELAY).await;
                }
                Err(status) => {
                    self.error(rpc, &status);
                    tries += 1;
                    if !sweep_proto::transient(&status) || tries >= TRIES {
                        return Err(status);
                    }
                    tokio::time::sleep(RETRY_DELAY).await;
                }
            }
        }
    }
}

/// The lease a worker holds, as its trial loop and its heartbeat task share it.
#[derive(Default)]
struct Held {
    lease: Option<v1::LeaseRef>,
    /// A heartbeat answer revoked `lease`.
    revoked: bool,
}

/// A registered simulated worker (clones share its lease).
#[derive(Clone)]
struct Worker {
    shared: Arc<Shared>,
    client: Client,
    id: String,
    held: Arc<Mutex<Held>>,
    /// Epochs in one ReportEpoch: --epochs-per-call, at most what the coordinator said it takes.
    epochs_per_call: usize,
}

/// Runs one simulated worker named `name` on `channel` until the coordinator says the sweep is
/// finished (or it cannot go on: then the errors say why).
pub async fn run(shared: Arc<Shared>, channel: Channel, name: String) {
    let Some((worker, heartbeat)) = Worker::register(shared, channel, name).await else {
        return;
    };
    let (stop, stopped) = watch::channel(false);
    let heartbeats = tokio::spawn(worker.clone().heartbeats(heartbeat, stopped));
    worker.lease_until_finished().await;
    let _ = stop.send(true);
    let _ = heartbeats.await;
}

impl Worker {
    /// Registers as `name`; returns the worker and its heartbeat interval.
    async fn register(
        shared: Arc<Shared>,
        channel: Channel,
        name: String,
    ) -> Option<(Worker, Duration)> {
        let anonymous = sweep_proto::auth::client(channel.clone(), Bearer::none());
        let request = v1::RegisterRequest {
            protocol_version: sweep_proto::PROTOCOL_VERSION.into(),
            worker_name: name,
            device: Some(v1::Device {
                kind: v1::DeviceKind::Cpu.into(),
                index: 0,
                name: "simulated".to_owned(),
                memory_bytes: 0,
            }),
            slots: 1,
        };
        let (registered, _) = shared
            .call(Rpc::Register, || {
                let mut c = anonymous.clone();
                let r = request.clone();
                async move { c.register(r).await }
            })
            .await
            .ok()?;
        let Some(bearer) = Bearer::none().with_worker_secret(&registered.worker_secret) else {
            shared.error(
                Rpc::Register,
                &Status::invalid_argument("the worker secret is not a header value"),
            );
            return None;
        };
        let heartbeat = Duration::from_millis(registered.heartbeat_interval_ms.max(10).into());
        let taken = registered.max_epochs_per_report.max(1);
        let worker = Worker {
            epochs_per_call: shared.epochs_per_call.clamp(1, taken) as usize,
            shared,
            client: sweep_proto::auth::client(channel, bearer),
            id: registered.worker_id,
            held: Arc::default(),
        };
        Some((worker, heartbeat))
    }

    fn held(&self) -> MutexGuard<'_, Held> {
        self.held
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Leases and trains trials until the sweep is finished.
    async fn lease_until_finished(&self) {
        let request = v1::LeaseRequest {
            worker_id: self.id.clone(),
        };
        let mut failures = 0;
        loop {
            {
                let mut stats = self.shared.stats();
                let now = Instant::now();
                stats.first_lease = Some(stats.first_lease.map_or(now, |t| t.min(now)));
            }
            let response = self
                .shared
                .call(Rpc::Lease, || {
                    let mut c = self.client.clone();
                    let r = request.clone();
                    async move { c.lease(r).await }
                })
                .await;
            let (response, took) = match response {
                Ok(r) => r,
                Err(_) if failures < MAX_LEASE_FAILURES => {
                    failures += 1;
                    tokio::time::sleep(RETRY_DELAY).await;
                    continue;
                }
                Err(_) => {
                    eprintln!("loadgen: a worker gives up after {failures} failed Lease calls");
                    return;
                }
            };
            failures = 0;
            match response.outcome {
                Some(lease_response::Outcome::Assignment(a)) => {
                    if took < self.shared.measure_from.elapsed() {
                        record(&mut self.shared.stats().lease_assigned, took);
                    }
                    self.train(a).await;
                }
                Some(lease_response::Outcome::Wait(w)) => {
                    let wait = Duration::from_millis(w.retry_after_ms.clamp(10, 60_000).into());
                    tokio::time::sleep(wait).await;
                }
                Some(lease_response::Outcome::Finished(_)) => return,
                // Simulated workers fail nothing of their own: never said to them.
                Some(lease_response::Outcome::CannotRun(c)) => {
                    let e = Status::internal(format!("told it cannot run trials: {}", c.reason));
                    self.shared.error(Rpc::Lease, &e);
                    return;
                }
                None => {
                    self.shared.error(
                        Rpc::Lease,
                        &Status::internal("a lease response without an outcome"),
                    );
                    tokio::time::sleep(RETRY_DELAY).await;
                }
            }
        }
    }

    /// Trains the trial of `a` for pretend and completes it, unless its lease is revoked or a
    /// call about it is refused: then it is abandoned (and counted).
    async fn train(&self, a: v1::Assignment) {
        let (Some(lease), Some(spec)) = (a.lease, a.trial.as_ref()) else {
            let e = Status::internal("an assignment without its lease or trial");
            self.shared.error(Rpc::Lease, &e);
            return;
        };
        let spec = match TrialSpec::try_from(spec) {
            Ok(s) => s,
            Err(e) => {
                let e = Status::internal(format!("an assignment with a bad trial: {e}"));
                self.shared.error(Rpc::Lease, &e);
                return;
            }
        };
        let replayed = match self.replayed(&spec) {
            Ok(r) => r,
            Err(e) => {
                let _ = self.shared.fatal.set(format!("trial {}: {e}", spec.name));
                return;
            }
        };
        *self.held() = Held {
            lease: Some(lease.clone()),
            revoked: false,
        };
        let started = Instant::now();
        let mut epochs = Vec::with_capacity(spec.params.epochs as usize);
        let mut sent = 0;
        for epoch in 1..=spec.params.epochs {
            let epoch_started = Instant::now();
            if !self.shared.epoch_time.is_zero() {
                let factor =
                    1.0 + self.shared.jitter * spread(&self.id, &spec.id.to_string(), epoch);
                tokio::time::sleep(self.shared.epoch_time.mul_f64(factor)).await;
            }
            epochs.push(match replayed {
                Some(r) => (&r.epochs[epoch as usize - 1]).into(),
                None => metrics(&spec, epoch, epoch_started.elapsed()),
            });
            if epochs.len() - sent < self.epochs_per_call && epoch < spec.params.epochs {
                continue;
            }
            if !self.report(&lease, &epochs[sent..]).await {
                return;
            }
            sent = epochs.len();
        }
        let result = match replayed {
            Some(r) => recorded_result(r, epochs, started.elapsed()),
            None => result(&spec, epochs, started.elapsed()),
        };
        self.complete(lease, result).await;
    }

    /// With --metrics-from, the recorded trial that `spec` replays (it has `spec`'s epochs).
    fn replayed(&self, spec: &TrialSpec) -> Result<Option<&Recorded>, String> {
        let Some(table) = &self.shared.table else {
            return Ok(None);
        };
        let r = table.lookup(&spec.params)?;
        if r.epochs.len() != spec.params.epochs as usize {
            return Err(format!(
                "the recorded trial {} has {} epochs, the leased one {}",
                r.name,
                r.epochs.len(),
                spec.params.epochs
            ));
        }
        Ok(Some(r))
    }

    /// Reports `batch` (one epoch in `metrics`, more in `batch`); false when the lease is over
    /// (revoked, refused, or the trial stopped: then it is counted).
    async fn report(&self, lease: &v1::LeaseRef, batch: &[v1::EpochMetrics]) -> bool {
        let (metrics, batch) = match batch {
            [one] => (Some(one.clone()), Vec::new()),
            many => (None, many.to_vec()),
        };
        let n = batch.len().max(1) as u64;
        let request = v1::ReportEpochRequest {
            worker_id: self.id.clone(),
            lease: Some(lease.clone()),
            metrics,
            batch,
        };
        if !self.still_held() {
            return false;
        }
        let reported = self
            .shared
            .call(Rpc::ReportEpoch, || {
                let mut c = self.client.clone();
                let r = request.clone();
                async move { c.report_epoch(r).await }
            })
            .await;
        match reported {
            Err(e) if self.shared.stopped_elsewhere(&e) => {
                *self.held() = Held::default();
                self.shared.trial_done(Instant::now());
                false
            }
            Err(_) => {
                self.abandon();
                false
            }
            // Early stopping ended the trial (and its lease) with an epoch of this report.
            Ok((answer, _)) if !answer.stopped.is_empty() => {
                let stopped_at = u64::from(answer.stopped_at);
                let recorded = match request.batch.first() {
                    Some(first) if stopped_at > 0 => stopped_at + 1 - u64::from(first.epoch),
                    _ => n,
                };
                self.shared
                    .epoch_reports
                    .fetch_add(recorded, Ordering::Relaxed);
                *self.held() = Held::default();
                self.shared.trial_done(Instant::now());
                false
            }
            Ok(_) => {
                self.shared.epoch_reports.fetch_add(n, Ordering::Relaxed);
                true
            }
        }
    }

    /// Completes the trial of `lease` with `result`, unless the lease was revoked meanwhile.
    async fn complete(&self, lease: v1::LeaseRef, result: v1::TrialResult) {
        let request = v1::CompleteRequest {
            worker_id: self.id.clone(),
            lease: Some(lease),
            outcome: Some(complete_request::Outcome::Result(result)),
        };
        if !self.still_held() {
            return;
        }
        let completed = self
            .shared
            .call(Rpc::Complete, || {
                let mut c = self.client.clone();
                let r = request.clone();
                async move { c.complete(r).await }
            })
            .await;
        match completed {
            Ok(_) => {
                *self.held() = Held::default();
                self.shared.trial_done(Instant::now());
            }
            Err(e) if self.shared.stopped_elsewhere(&e) => {
                *self.held() = Held::default();
                self.shared.trial_done(Instant::now());
            }
            Err(_) => self.abandon(),
        }
    }

    /// False (and the lease dropped and counted) once a heartbeat answer revoked it.
    fn still_held(&self) -> bool {
        let mut held = self.held();
        if !held.revoked {
            return true;
        }
        *held = Held::default();
        drop(held);
        self.shared.stats().revoked += 1;
        false
    }

    /// Drops the lease after a call about it failed for good.
    fn abandon(&self) {
        *self.held() = Held::default();
        self.shared.stats().lost += 1;
    }

    /// Every `interval` until `stop`, renews the lease held (if any); marks it revoked when the
    /// answer says so.
    async fn heartbeats(self, interval: Duration, mut stop: watch::Receiver<bool>) {
        let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = ticks.tick() => {}
                _ = stop.changed() => return,
            }
            let Some(lease) = self.held().lease.clone() else {
                continue;
            };
            let request = v1::HeartbeatRequest {
                worker_id: self.id.clone(),
                leases: vec![lease.clone()],
                memory: None,
            };
            let answer = self
                .shared
                .call(Rpc::Heartbeat, || {
                    let mut c = self.client.clone();
                    let r = request.clone();
                    async move { c.heartbeat(r).await }
                })
                .await;
            if let Ok((answer, _)) = answer {
                let mut held = self.held();
                if answer.revoked.contains(&lease) && held.lease.as_ref() == Some(&lease) {
                    held.revoked = true;
                }
            }
        }
    }
}

/// Plausible metrics of epoch `epoch`: the loss falls and the accuracies (percent) rise, the
/// test accuracy higher for wider models (so that early stopping has something to rank).
fn metrics(spec: &TrialSpec, epoch: u32, took: Duration) -> v1::EpochMetrics {
    let e = f64::from(epoch);
    let width = f64::from(spec.params.hidden_width);
    v1::EpochMetrics {
        epoch,
        train_loss: 2.0 / e,
        train_accuracy: 90.0 - 40.0 / e,
        test_accuracy: (88.0 - 40.0 / e) * (0.9 + 0.1 * width / (width + 20.0)),
        seconds: took.as_secs_f64(),
        scalars: Default::default(),
    }
}

/// A result the coordinator accepts for `spec`: every epoch, and confusion matrices whose totals
/// are the split sizes of the official training set and whose accuracies are the ones reported.
fn result(spec: &TrialSpec, epochs: Vec<v1::EpochMetrics>, took: Duration) -> v1::TrialResult {
    let images = spec.dataset.official_train_len();
    let (_, test_len) = spec.split.sizes(images);
    let train_len = spec.train_subset_len(images);
    let classes = spec.dataset.num_classes();
    let train = ConfusionMatrix::stand_in(classes, train_len as u64, 0.9);
    // The test accuracy depends on the grid's hidden width (and a little on the seed), so that
    // the views that compare trials (parallel coordinates, importance) have something to show.
    let width = f64::from(spec.params.hidden_width);
    let seed = spread("", &spec.params.seed.to_string(), 0);
    let test = ConfusionMatrix::stand_in(
        classes,
        test_len as u64,
        0.75 + 0.15 * width / (width + 20.0) + 0.01 * seed,
    );
    v1::TrialResult {
        epochs,
        train_accuracy: train.accuracy(),
        test_accuracy: test.accuracy(),
        train_confusion: Some((&train).into()),
        test_confusion: Some((&test).into()),
        train_seconds: took.as_secs_f64(),
        dataset_images: images as u64,
    }
}

/// The result `r` recorded, with the `epochs` reported (its own) and the time this run took.
fn recorded_result(r: &Recorded, epochs: Vec<v1::EpochMetrics>, took: Duration) -> v1::TrialResult {
    v1::TrialResult {
        epochs,
        train_accuracy: r.train_accuracy,
        test_accuracy: r.test_accuracy,
        train_confusion: Some((&r.train_confusion).into()),
        test_confusion: Some((&r.test_confusion).into()),
        train_seconds: took.as_secs_f64(),
        dataset_images: r.dataset_images,
    }
}

/// A number in [-1, 1] that looks random but is the same for the same worker, trial and epoch.
fn spread(worker: &str, trial: &str, epoch: u32) -> f64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::hash::DefaultHasher::new();
    (worker, trial, epoch).hash(&mut h);
    (h.finish() % 2_001) as f64 / 1_000.0 - 1.0
}
