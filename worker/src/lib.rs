//! The sweep worker: registers with a coordinator, leases trials, trains each one with
//! libtorch on the CPU or a CUDA GPU, reports each epoch's metrics as it ends (one unary call
//! per epoch, like every call but the artifact upload and the checkpoint download) and ends the
//! lease with the result, until the coordinator says the sweep is finished.
//!
//! [`train`] is the synchronous trainer; [`session`] the gRPC conversation; [`failure`] says
//! whose fault a failed trial is; [`data_cache`] keeps datasets resident on the device;
//! [`device`] checks and tunes the device.

pub mod calibrate;
pub mod data_cache;
pub mod device;
pub mod download;
mod error;
pub mod exit;
pub mod failure;
pub mod fake;
pub mod memory;
mod probe;
pub mod program;
pub mod session;
pub mod train;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sweep_proto::{Bearer, v1};
use tokio::sync::watch;
use tonic::transport::{Channel, Endpoint};
use tracing::info;

pub use device::DeviceChoice;
pub use error::Error;
pub use exit::Exit;

/// Validated settings of a worker.
#[derive(Debug, Clone)]
pub struct Options {
    /// The coordinator's URL (`http://host:50051`).
    pub coordinator: String,
    /// The device to train on.
    pub device: DeviceChoice,
    /// Where the datasets are.
    pub data_dir: PathBuf,
    /// Whether and from where a dataset missing from `data_dir` is downloaded.
    pub downloads: download::Downloads,
    /// Trials trained at once.
    pub slots: Slots,
    /// libtorch intra-op threads (None: libtorch's default, all cores).
    pub threads: Option<usize>,
    /// On a GPU, one CUDA stream per trial (else all on the default stream).
    pub cuda_streams: bool,
    /// Name shown in the coordinator's logs and results.
    pub name: String,
    /// How long to keep trying to reach the coordinator.
    pub patience: Duration,
    /// Told to stop, how long a trial may take to finish and checkpoint its epoch.
    pub drain_timeout: Duration,
    /// Tests only: train with the deterministic stand-in ([`fake`]), this long per epoch.
    pub test_trainer: Option<Duration>,
    /// The token every call presents (none: calls carry no token).
    pub bearer: Bearer,
    /// TLS towards the coordinator (its URL is then `https://`).
    pub tls: Option<ClientTls>,
}

/// A worker's TLS settings, as PEM.
#[derive(Debug, Clone)]
pub struct ClientTls {
    /// The CA that signed the coordinator's certificate.
    pub ca: Vec<u8>,
    /// The worker's own certificate and key, for a coordinator that asks for them (mutual TLS).
    pub identity: Option<(Vec<u8>, Vec<u8>)>,
}

/// How many trials a worker trains at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Slots {
    /// Exactly this many.
    Fixed(u32),
    /// As many as fit: one trial first, then as many as the free device memory holds at the
    /// memory that trial was measured to use (at most [`memory::MAX_AUTO_SLOTS`] on a GPU; on
    /// the CPU at most the cores divided by `--threads`).
    Auto,
}

/// How a worker's run ended without an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// The coordinator said the sweep is finished.
    Finished,
    /// `shutdown` turned true first (the leases were given back).
    Stopped,
}

impl End {
    /// The exit code it means.
    pub fn exit(self) -> Exit {
        match self {
            End::Finished => Exit::Finished,
            End::Stopped => Exit::Stopped,
        }
    }
}

/// Runs the worker until the sweep is finished or `shutdown` turns true (after giving back its
/// leases). An error says why it stopped otherwise; [`Error::exit`] is its exit code.
pub async fn run(options: Options, shutdown: watch::Receiver<bool>) -> Result<End, Error> {
    let info = open_device(&options)?;
    let channel = connect(&options)?;
    let (slots, auto_cap) = slot_count(&options, info.device);
    let client = sweep_proto::auth::client(channel.clone(), options.bearer.clone());
    let registered = register(&options, client, &info, slots, &shutdown).await?;
    let worker_id = registered.worker_id.parse().map_err(|_| {
        Error::Refused(format!(
            "the coordinator sent an invalid worker id {:?}",
            registered.worker_id
        ))
    })?;
    // Every later call proves it is this worker.
    let bearer = options
        .bearer
        .with_worker_secret(&registered.worker_secret)
        .ok_or_else(|| Error::Refused("the coordinator sent an unusable worker secret".into()))?;
    let heartbeat = Duration::from_millis(u64::from(registered.heartbeat_interval_ms).max(10));
    let lease_ttl = Duration::from_millis(u64::from(registered.lease_ttl_ms).max(100));
    // A coordinator from before batches says 0: one epoch a report.
    let epochs_per_report = registered
        .max_epochs_per_report
        .clamp(1, sweep_proto::MAX_EPOCHS_PER_REPORT) as usize;
    info!(worker = %worker_id, sweep = %registered.sweep, slots, auto = auto_cap.is_some(), "registered");

    let session = Arc::new(session::Session {
        client: sweep_proto::auth::client(channel, bearer),
        worker_id,
        heartbeat,
        lease_ttl,
        epochs_per_report,
        patience: options.patience,
        addr: options.coordinator.clone(),
        engine: match options.test_trainer {
            Some(epoch_time) => session::Engine::Test(epoch_time),
            None => session::Engine::Torch(data_cache::DataCache::new(
                options.data_dir.clone(),
                info.device,
                options.downloads.clone(),
            )),
        },
        drain_timeout: options.drain_timeout,
        // With --slots auto, one trial runs until its memory use is measured.
        slots_allowed: std::sync::atomic::AtomicU32::new(if auto_cap.is_some() {
            1
        } else {
            slots
        }),
        auto_slots: auto_cap,
        calibrated: std::sync::atomic::AtomicBool::new(false),
        device: info.device,
        memory: memory::monitor(info.device),
    });
    run_slots(session, slots as usize, &shutdown).await
}

/// Opens the training device (none for the test trainer) and sets libtorch's threads and CUDA
/// streams.
fn open_device(options: &Options) -> Result<device::DeviceInfo, Error> {
    device::tune_malloc();
    let info = match options.test_trainer {
        Some(_) => device::DeviceInfo {
            device: tch::Device::Cpu,
            name: "test trainer".to_owned(),
            memory_bytes: 0,
        },
        None => device::open(options.device)?,
    };
    if let Some(threads) = options.threads {
        tch::set_num_threads(i32::try_from(threads).unwrap_or(i32::MAX));
    }
    device::set_cuda_streams(options.cuda_streams);
    info!(
        device = ?info.device,
        name = %info.name,
        memory_gib = format!("{:.1}", info.memory_bytes as f64 / f64::from(1u32 << 30)),
        threads = tch::get_num_threads(),
        "device ready"
    );
    Ok(info)
}

/// The channel to the coordinator (connected on first use), over TLS for an `https://` one.
fn connect(options: &Options) -> Result<Channel, Error> {
    let address = |message: String| Error::Address {
        addr: options.coordinator.clone(),
        message,
    };
    let mut endpoint =
        Endpoint::from_shared(options.coordinator.clone()).map_err(|e| address(e.to_string()))?;
    let https = options.coordinator.starts_with("https://");
    match (&options.tls, https) {
        (Some(tls), true) => {
            let mut config = tonic::transport::ClientTlsConfig::new()
                .ca_certificate(tonic::transport::Certificate::from_pem(&tls.ca));
            if let Some((cert, key)) = &tls.identity {
                config = config.identity(tonic::transport::Identity::from_pem(cert, key));
            }
            endpoint = endpoint
                .tls_config(config)
                .map_err(|e| address(format!("TLS: {e}")))?;
        }
        (None, true) => {
            return Err(address(
                "an https:// coordinator needs --tls-ca (the CA that signed its certificate)"
                    .into(),
            ));
        }
        (Some(_), false) => {
            return Err(address(
                "--tls-ca was given, so the coordinator's URL must start with https://".into(),
            ));
        }
        (None, false) => {}
    }
    // Keepalive pings find a connection that went dead (a cut network, a coordinator that
    // vanished) within seconds; the channel then reconnects by itself.
    Ok(endpoint
        .connect_timeout(Duration::from_secs(5))
        .tcp_nodelay(true)
        .http2_keep_alive_interval(Duration::from_secs(2))
        .keep_alive_timeout(Duration::from_secs(4))
        .keep_alive_while_idle(true)
        .connect_lazy())
}

/// How many slots the worker registers, and with `--slots auto` the most it may allow.
fn slot_count(options: &Options, device: tch::Device) -> (u32, Option<u32>) {
    match options.slots {
        Slots::Fixed(k) => (k.max(1), None),
        Slots::Auto => {
            let cap = match device {
                tch::Device::Cuda(_) => memory::MAX_AUTO_SLOTS,
                _ => {
                    let cores = std::thread::available_parallelism().map_or(1, usize::from);
                    let per_trial = options.threads.unwrap_or(cores).max(1);
                    u32::try_from(cores / per_trial).unwrap_or(1).max(1)
                }
            };
            (cap, Some(cap))
        }
    }
}

/// Registers with the coordinator, trying for as long as the patience allows.
async fn register(
    options: &Options,
    client: sweep_proto::Client,
    info: &device::DeviceInfo,
    slots: u32,
    shutdown: &watch::Receiver<bool>,
) -> Result<v1::RegisterResponse, Error> {
    let (kind, index) = match info.device {
        tch::Device::Cuda(i) => (v1::DeviceKind::Cuda, u32::try_from(i).unwrap_or(u32::MAX)),
        _ => (v1::DeviceKind::Cpu, 0),
    };
    let request = v1::RegisterRequest::from(&sweep_proto::Registration {
        name: options.name.clone(),
        device: Some(sweep_proto::Device {
            kind,
            index,
            // As the coordinator accepts it: one line, at most MAX_NAME_CHARS.
            name: sweep_common::text::one_line(&info.name, sweep_proto::MAX_NAME_CHARS),
            memory_bytes: info.memory_bytes,
        }),
        slots,
    });
    let started = Instant::now();
    // Whatever answers plain HTTP/1 there is not a coordinator: say so at once.
    let not_grpc = std::sync::Mutex::new(None);
    let registered = session::retry(options.patience, shutdown, || {
        let mut c = client.clone();
        let r = request.clone();
        let not_grpc = &not_grpc;
        let url = options.coordinator.as_str();
        async move {
            let status = match c.register(r).await {
                Ok(answer) => return Ok(answer),
                Err(status) => status,
            };
            match probe::http1_status_line(url).await {
                Some(line) => {
                    if let Ok(mut found) = not_grpc.lock() {
                        *found = Some(line);
                    }
                    Err(tonic::Status::failed_precondition("not a gRPC server"))
                }
                None => Err(status),
            }
        }
    })
    .await;
    let status = match registered {
        Ok(answer) => return Ok(answer.into_inner()),
        Err(status) => status,
    };
    Err(
        if let Some(line) = not_grpc.lock().ok().and_then(|mut f| f.take()) {
            Error::NotGrpc {
                addr: options.coordinator.clone(),
                detail: format!("it answers plain HTTP: {line}"),
            }
        } else if status.code() == tonic::Code::Unavailable || status.code() == tonic::Code::Unknown
        {
            Error::Unreachable {
                addr: options.coordinator.clone(),
                seconds: started.elapsed().as_secs_f64(),
                message: status.message().to_owned(),
            }
        } else {
            Error::Refused(status.message().to_owned())
        },
    )
}

/// Runs `count` slots until they all end, and says how the worker ends.
async fn run_slots(
    session: Arc<session::Session>,
    count: usize,
    shutdown: &watch::Receiver<bool>,
) -> Result<End, Error> {
    let mut slots = tokio::task::JoinSet::new();
    for i in 0..count {
        slots.spawn(session::slot(Arc::clone(&session), i, shutdown.clone()));
    }
    let mut finished = false;
    let mut cannot_run = None;
    let mut first_error = None;
    while let Some(joined) = slots.join_next().await {
        match joined {
            Ok(Ok(session::SlotEnd::Finished)) => {
                // Every trial has ended, so no other slot holds a lease: stop them all now
                // rather than letting them ask a coordinator that is about to exit.
                info!("the coordinator says the sweep is finished");
                finished = true;
                slots.abort_all();
            }
            Ok(Ok(session::SlotEnd::CannotRun(reason))) => {
                // The other slots hear the same at their next lease (a trial one of them still
                // trains ends first).
                if cannot_run.is_none() {
                    tracing::error!(%reason, "the coordinator says this worker cannot run any trial left; it takes no more");
                }
                cannot_run.get_or_insert(reason);
            }
            Ok(Ok(end)) => info!(?end, "slot done"),
            Err(e) if e.is_cancelled() => {}
            Ok(Err(e)) => {
                tracing::error!(error = %e, "slot failed");
                first_error.get_or_insert(e);
            }
            Err(e) => {
                tracing::error!(error = %e, "slot task failed");
                first_error.get_or_insert(Error::Internal(format!("a slot's task failed: {e}")));
            }
        }
    }
    // The sweep finishing trumps everything; a worker that could run nothing says so before
    // any other error; a worker told to stop has drained.
    if finished {
        info!("sweep finished; worker exiting");
        return Ok(End::Finished);
    }
    if let Some(reason) = cannot_run {
        return Err(Error::CannotRun(reason));
    }
    match first_error {
        Some(e) => Err(e),
        None => {
            info!("stopped; worker exiting");
            Ok(End::Stopped)
        }
    }
}
