//! The sweep coordinator: expands a grid file into trials, leases them to workers over gRPC
//! (`sweep.v1`), records their metrics and results, and writes the sweep's results when every
//! trial has ended.
//!
//! The scheduling logic is the pure state machine in [`state`]; [`actor`] owns it, [`service`]
//! is the thin tonic shell, [`results`] and [`report`] write the outputs. [`status`] computes
//! what people see while it runs, shown by [`console`] (the terminal), the `Status` RPC and
//! [`web`] (the live web view). [`local`] starts and supervises workers as children of the
//! coordinator. [`run`] wires them together.
//!
//! The folders show the architecture: `engine/` is the core (state machine, its owner, the
//! database), `serve/` the ways in (gRPC service, authentication, uploads, web view, metrics),
//! `outputs/` the ways out (results, report, status, console). Every module is also re-exported
//! at the crate's root under its old path (`crate::state`, ...).

mod engine;
mod error;
pub mod exit;
pub mod local;
mod outputs;
mod serve;

pub use engine::{actor, lock, state, store};
use engine::{lineage, private, startup};
pub use outputs::{console, plan, replay, report, results, status, tensorboard};
pub use serve::{artifacts, auth, metrics, service, web};

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use sweep_common::TrialId;
use sweep_common::grid::Grid;
use tokio::net::TcpListener;
use tracing::{info, warn};

pub use console::Console;
pub use error::Error;
pub use exit::Exit;

/// Most concurrent calls (HTTP/2 streams) one connection may have open.
const MAX_STREAMS_PER_CONNECTION: u32 = 256;

/// How long the web view may take to close its connections when the coordinator stops.
const HTTP_SHUTDOWN: Duration = Duration::from_secs(5);

/// Validated settings of a coordinator run.
#[derive(Debug, Clone)]
pub struct Options {
    /// The grid file.
    pub grid_file: PathBuf,
    /// Address to serve gRPC on (port 0 picks a free port).
    pub listen: SocketAddr,
    /// Folder for results (created if missing).
    pub out_dir: PathBuf,
    /// Folder for the state database and checkpoints (`None`: `out_dir/state`).
    pub state_dir: Option<PathBuf>,
    /// A lease not renewed for this long expires.
    pub lease_ttl: Duration,
    /// How often workers heartbeat.
    pub heartbeat_interval: Duration,
    /// After the sweep ends, how long to keep answering workers so they learn it ended.
    pub linger: Duration,
    /// How often a progress line is logged while nothing ends (when the console is not live).
    pub progress_every: Duration,
    /// Address to serve the live web view on; `None`: no web view.
    pub http: Option<SocketAddr>,
    /// The terminal: a live console draws the status block instead of logging progress lines.
    pub console: Console,
    /// Tokens calls must present (none: every call is let through).
    pub tokens: auth::Tokens,
    /// TLS for the gRPC server (none: plain HTTP/2).
    pub tls: Option<Tls>,
    /// Serving a non-loopback address without TLS and a worker token, as asked (`--insecure`).
    pub insecure: bool,
    /// Put the trials that failed for good (cancelled ones aside) back in the queue before
    /// serving (`--retry-failed`).
    pub retry_failed: bool,
    /// Workers to start as children (`--local-workers`, `--local-gpus`); none: only remote ones.
    pub local: Option<local::Spec>,
}

/// The gRPC server's TLS settings, as PEM.
#[derive(Debug, Clone)]
pub struct Tls {
    /// The server's certificate chain.
    pub cert: Vec<u8>,
    /// Its private key.
    pub key: Vec<u8>,
    /// When set, clients must present a certificate signed by this CA (mutual TLS).
    pub client_ca: Option<Vec<u8>>,
}

impl Options {
    /// Default timings: heartbeat every 5 s, lease TTL 30 s, linger 10 s, progress every 30 s.
    pub fn new(grid_file: PathBuf, listen: SocketAddr, out_dir: PathBuf) -> Self {
        Self {
            grid_file,
            listen,
            out_dir,
            state_dir: None,
            lease_ttl: Duration::from_secs(30),
            heartbeat_interval: Duration::from_secs(5),
            linger: Duration::from_secs(10),
            progress_every: Duration::from_secs(30),
            http: None,
            tokens: auth::Tokens::default(),
            tls: None,
            insecure: false,
            retry_failed: false,
            local: None,
            console: Console::new(false),
        }
    }
}

/// Where a coordinator serves, once it does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Listening {
    /// The gRPC address for workers and `coordinator status`.
    pub grpc: SocketAddr,
    /// The live web view's address, if it was asked for.
    pub http: Option<SocketAddr>,
}

/// How a sweep ended.
#[derive(Debug, Clone)]
pub struct Summary {
    /// Trials that succeeded.
    pub succeeded: usize,
    /// (name, reason) of trials that failed for good.
    pub failed: Vec<(String, String)>,
    /// Trials not ended (the coordinator was stopped first).
    pub unfinished: usize,
    /// Path of `results.json`.
    pub results: PathBuf,
    /// Path of `summary.md` (written only when the sweep finished).
    pub summary: PathBuf,
    /// The state database.
    pub database: PathBuf,
}

impl Options {
    /// The state directory.
    pub fn state_dir(&self) -> PathBuf {
        self.state_dir
            .clone()
            .unwrap_or_else(|| self.out_dir.join("state"))
    }
}

/// Opens the state database and merges it with the grid: trials already recorded keep their
/// state (finished ones stay finished, leased ones stay leased to their worker for a TTL),
/// trials new to the grid are pending, and recorded trials the grid no longer has are kept in
/// the database but not scheduled (and reported).
fn open_state(
    options: &Options,
    grid: &mut Grid,
    config: state::Config,
) -> Result<(store::Store, state::Scheduler), Error> {
    let state_dir = options.state_dir();
    let db = state_dir.join(store::DATABASE);
    // Nothing computed is lost: results without a database to resume them are never overwritten.
    if !db.exists() && options.out_dir.join("results.json").exists() {
        return Err(Error::OutputInUse {
            path: options.out_dir.display().to_string(),
        });
    }
    startup::check_writable(options)?;
    make_private(&state_dir, &db)?;
    let mut store = store::Store::open(&state_dir)?;
    store.claim(&grid.name)?;
    let mut loaded = store.load(&state::KeepCurves::of(grid))?;
    let recorded = loaded.trials.len();
    // Operators' promotions to more epochs hold before the grid meets what was recorded.
    let raised = lineage::apply_promotions(
        grid.experiments
            .iter_mut()
            .flat_map(|e| e.trials.iter_mut()),
        &loaded.promotions,
    );
    if raised > 0 {
        info!(
            trials = raised,
            "trials an operator promoted to more epochs than the grid file gives keep them"
        );
    }
    let (mut trials, unrecorded) = merge_recorded(grid, &mut loaded.trials, recorded > 0);
    // Trials asking for more epochs than recorded ones continue them (`lineage`).
    let adopted = startup::adopt_grown(
        &store,
        &mut trials,
        &unrecorded,
        &mut loaded,
        &options.out_dir,
    )?;
    // Configurations TPE proposed before a restart follow, in the order they were proposed.
    trials.extend(state::restore_proposals(
        grid,
        &loaded.order,
        &mut loaded.trials,
    ));
    let removed = store.record_grid_adopting(&trials, &adopted)?;
    // What is left of `loaded.trials` is no longer in the grid.
    startup::keep_weights_of_removed_trials(&mut store, &loaded.trials, &trials, &options.out_dir)?;
    // A worker still training a restored lease renews it within a few heartbeats of the
    // restart; one that does not is gone, and its trial should not wait a whole TTL.
    let grace = options.heartbeat_interval * 3;
    let mut scheduler =
        state::Scheduler::restore(trials, loaded.workers, config, grace, Instant::now());
    scheduler.set_promotions(loaded.promotions);
    configure(&mut scheduler, grid, &loaded.decisions);
    if options.retry_failed {
        retry_failed(&mut store, &mut scheduler)?;
    }
    startup::retrain_missing_weights(&mut scheduler, &options.out_dir);
    log_resumed(&scheduler, &db, recorded > 0, &removed);
    Ok((store, scheduler))
}

/// The grid's trials, each the recorded trial of its id (taken out of `recorded`) or a new
/// pending one, and the positions of the new ones when the database had trials (a new sweep has
/// nothing to continue). The specs move into the scheduler (one copy of a million trials is
/// enough); the grid keeps its experiments' descriptions.
fn merge_recorded(
    grid: &mut Grid,
    recorded: &mut HashMap<TrialId, state::Trial>,
    resuming: bool,
) -> (Vec<state::Trial>, Vec<usize>) {
    // Sized once: grown by doubling, a million trials' buffer (336 bytes each) would be copied
    // into one twice its size at the end, the old one still held: a few hundred MiB of peak.
    let total = grid.experiments.iter().map(|e| e.trials.len()).sum();
    let mut trials = Vec::with_capacity(total);
    let mut unrecorded = Vec::new();
    for spec in grid
        .experiments
        .iter_mut()
        .flat_map(|e| std::mem::take(&mut e.trials))
    {
        match recorded.remove(&spec.id) {
            Some(mut t) => {
                // The id covers what is trained; settings outside it (checkpoint_every) follow
                // the grid file as it is now.
                t.spec = spec;
                trials.push(t);
            }
            None => {
                if resuming {
                    unrecorded.push(trials.len());
                }
                trials.push(state::Trial::new(spec));
            }
        }
    }
    (trials, unrecorded)
}

/// Says what a restart resumed, and which recorded trials the grid file no longer has.
fn log_resumed(scheduler: &state::Scheduler, db: &Path, resuming: bool, removed: &[String]) {
    if resuming {
        let c = scheduler.counts();
        info!(
            database = %db.display(),
            succeeded = c.succeeded,
            failed = c.failed,
            running = c.leased,
            pending = c.pending,
            "resuming the sweep recorded in the state directory"
        );
    }
    if !removed.is_empty() {
        let shown: Vec<&str> = removed.iter().take(10).map(String::as_str).collect();
        warn!(
            count = removed.len(),
            trials = %shown.join(", "),
            "trials recorded in the state database are no longer in the grid file: kept there, not scheduled"
        );
    }
}

/// The grid's early-stopping rules (with the decisions recorded before a restart), sampled
/// searches and budget, set on a restored scheduler.
fn configure(scheduler: &mut state::Scheduler, grid: &Grid, decisions: &[state::Judged]) {
    let rules: Vec<_> = grid
        .experiments
        .iter()
        .filter_map(|e| Some((e.name.clone(), e.stopping?)))
        .collect();
    let dropped = scheduler.set_stopping(&rules, decisions);
    scheduler.set_search(state::searches_of(grid));
    scheduler.set_budget(grid.max_hours);
    if dropped > 0 {
        warn!(
            decisions = dropped,
            "early-stopping decisions about configurations no longer in the grid file: ignored"
        );
    }
}

/// `--retry-failed`: the trials that failed for good queued again, committed.
fn retry_failed(store: &mut store::Store, scheduler: &mut state::Scheduler) -> Result<(), Error> {
    let (requeued, _) = scheduler.retry(&state::RetrySelector {
        failed: true,
        ..state::RetrySelector::default()
    });
    let changes = scheduler.take_changes();
    store.commit(scheduler, &changes)?;
    info!(
        trials = requeued.len(),
        "--retry-failed: trials that had failed for good are queued again"
    );
    Ok(())
}

/// Creates the state directory `0700` (see [`private`]), or tightens it, the database (which
/// `store` creates `0600`) and the checkpoints where an older version left them open (logged). A folder that cannot be made is an error; one
/// that cannot be tightened (another user's) is a warning.
fn make_private(state_dir: &std::path::Path, db: &std::path::Path) -> Result<(), Error> {
    let io = |action: &'static str, path: &std::path::Path| {
        let path = path.display().to_string();
        move |source| Error::Io {
            action,
            path,
            source,
        }
    };
    let mut tightened = Vec::new();
    match private::dir(state_dir) {
        Ok(t) => tightened.extend(t),
        Err(e) if state_dir.is_dir() => {
            warn!(path = %state_dir.display(), error = %e, "cannot make the state directory private (0700): others may read the key behind worker secrets");
        }
        Err(e) => return Err(io("cannot create the folder", state_dir)(e)),
    }
    // Not created here: a `sweep.db` without its schema is refused (`store::Store::open`).
    tightened.extend(private::existing_file(db).map_err(io("cannot open", db))?);
    for suffix in ["-wal", "-shm"] {
        let mut name = db.as_os_str().to_owned();
        name.push(suffix);
        let path = std::path::PathBuf::from(name);
        tightened.extend(private::existing_file(&path).map_err(io("cannot open", &path))?);
    }
    let checkpoints = artifacts::checkpoints_dir(state_dir);
    tightened.extend(private::files_in(&checkpoints).map_err(io("cannot open", &checkpoints))?);
    for t in tightened {
        warn!(path = %t.path.display(), was = %format!("{:04o}", t.was), "made private: the state directory is its owner's alone (folder 0700, files 0600)");
    }
    Ok(())
}

/// The gRPC server's connections: with `TCP_NODELAY`, because workers' calls are small and
/// answered at once, and Nagle's algorithm would hold each answer back until the client's
/// delayed ACK (40 ms); with TCP keepalive, so that connections of machines that vanished are
/// closed.
fn incoming(listener: TcpListener) -> tonic::transport::server::TcpIncoming {
    tonic::transport::server::TcpIncoming::from(listener)
        .with_nodelay(Some(true))
        .with_keepalive(Some(Duration::from_secs(60)))
}

async fn bind(addr: SocketAddr) -> Result<(TcpListener, SocketAddr), Error> {
    let bind = |source| Error::Bind {
        addr: addr.to_string(),
        source,
    };
    let listener = TcpListener::bind(addr).await.map_err(bind)?;
    let local = listener.local_addr().map_err(bind)?;
    Ok((listener, local))
}

/// Runs a sweep of `grid` until every trial has ended (or `shutdown` resolves), serving workers
/// on `options.listen` (and the live web view on `options.http`), with the local workers
/// `options.local` asks for. `on_listen` is called with the bound addresses once both servers
/// listen.
pub async fn run(
    options: Options,
    mut grid: Grid,
    on_listen: impl FnOnce(Listening),
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<Summary, Error> {
    let config = state::Config {
        lease_ttl: options.lease_ttl,
        max_attempts: grid.max_attempts,
        retry_after: options.heartbeat_interval.min(Duration::from_secs(1)),
    };
    // Held until this function returns (the process ends right after).
    let _locks = startup::lock_folders(&options)?;
    let (store, scheduler) = open_state(&options, &mut grid, config)?;
    let database = store.path().to_owned();
    let worker_key = auth::WorkerKey::new(store.worker_key()?);
    let (listener, addr) = bind(options.listen).await?;
    let http = match options.http {
        Some(a) => Some(bind(a).await?),
        None => None,
    };
    let sweep = grid.name.clone();
    let (handle, finished, actor_task) = spawn_owner(&options, grid, scheduler, store);
    let servers = Servers::start(&options, &handle, sweep, worker_key, listener, http).await?;
    info!(%addr, tls = options.tls.is_some(), tokens = options.tokens.enabled(), "listening");
    if options.insecure {
        warn!(%addr, "--insecure: serving a non-loopback address without TLS and a worker token; anyone who reaches it can take trials, report results and read the sweep");
    }
    on_listen(Listening {
        grpc: addr,
        http: servers.http_addr(),
    });
    let mut local = options.local.as_ref().map(|spec| {
        local::Supervisor::start(
            spec,
            &local::loopback_url(addr),
            &options.out_dir.join("logs"),
        )
    });
    let mut actor_task = actor_task;
    let mut finished = finished;
    let end = wait_for_end(&mut finished, shutdown, &mut actor_task, local.as_mut()).await;
    let gave_up = match end {
        End::OwnerStopped(r) => {
            servers.signal_stop();
            stop_local(local, Duration::ZERO).await;
            return Err(owner_stopped(r, &database));
        }
        End::Finished => {
            linger(&handle, options.linger).await;
            // Told that the sweep is finished, local workers exit on their own.
            stop_local(local, options.linger).await;
            None
        }
        End::Stopped { gave_up } => {
            // Stopped while the server still serves, so that they drain: their trials are
            // checkpointed and their leases given back.
            stop_local(local, Duration::ZERO).await;
            gave_up
        }
    };
    let progress = finish(actor_task, servers, handle).await?;
    if let Some(message) = gave_up {
        return Err(Error::LocalWorkers { message });
    }
    // Never "finished" with a path that was not written.
    let not_written = finished.borrow().clone().unwrap_or_default();
    if !not_written.is_empty() {
        return Err(Error::Outputs {
            database: database.display().to_string(),
            errors: not_written.join("; "),
        });
    }
    Ok(summary(&options, progress, database))
}

/// How the wait for the end of a sweep ended.
enum End {
    /// Every trial has ended.
    Finished,
    /// Asked to stop (`shutdown`), or every local worker was given up (why).
    Stopped { gave_up: Option<String> },
    /// The state owner stopped on its own: only a database failure does that.
    OwnerStopped(Result<Result<(), Error>, tokio::task::JoinError>),
}

/// Waits for the end of the sweep, a shutdown request, the state owner's stop, or the end of
/// every local worker.
async fn wait_for_end(
    finished: &mut tokio::sync::watch::Receiver<actor::Ended>,
    shutdown: impl Future<Output = ()>,
    actor_task: &mut tokio::task::JoinHandle<Result<(), Error>>,
    local: Option<&mut local::Supervisor>,
) -> End {
    let gave_up = async {
        match local {
            Some(l) => l.all_gave_up().await,
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = finished.wait_for(Option::is_some) => End::Finished,
        () = shutdown => End::Stopped { gave_up: None },
        r = actor_task => End::OwnerStopped(r),
        why = gave_up => End::Stopped { gave_up: Some(why) },
    }
}

/// Stops the local workers, if any (see [`local::Supervisor::stop`]).
async fn stop_local(local: Option<local::Supervisor>, wait: Duration) {
    if let Some(l) = local {
        l.stop(wait).await;
    }
}

/// Starts the state's owner over `scheduler` and `store`.
fn spawn_owner(
    options: &Options,
    grid: Grid,
    scheduler: state::Scheduler,
    store: store::Store,
) -> (
    actor::Handle,
    tokio::sync::watch::Receiver<actor::Ended>,
    tokio::task::JoinHandle<Result<(), Error>>,
) {
    info!(sweep = %grid.name, trials = scheduler.trials().len(), experiments = grid.experiments.len(), "grid expanded");
    actor::spawn(actor::Actor {
        scheduler,
        grid,
        grid_file: options.grid_file.display().to_string(),
        out_dir: options.out_dir.clone(),
        state_dir: options.state_dir(),
        store,
        tick: (options.lease_ttl / 10).clamp(Duration::from_millis(20), Duration::from_secs(1)),
        progress_every: options.progress_every,
        console: options.console.clone(),
        started: Instant::now(),
    })
}

/// Takes the sweep's last progress, stops the servers and waits for the state's owner.
async fn finish(
    actor_task: tokio::task::JoinHandle<Result<(), Error>>,
    servers: Servers,
    handle: actor::Handle,
) -> Result<actor::Progress, Error> {
    let progress = handle.progress().await?;
    servers.stop().await?;
    drop(handle);
    match actor_task.await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return Err(e),
        Err(e) => tracing::error!(error = %e, "state owner task failed"),
    }
    Ok(progress)
}

/// The gRPC server and the live web view, running.
struct Servers {
    grpc: tokio::task::JoinHandle<Result<(), tonic::transport::Error>>,
    grpc_stop: tokio::sync::oneshot::Sender<()>,
    http: Option<(SocketAddr, tokio::task::JoinHandle<Result<(), Error>>)>,
    http_stop: tokio::sync::watch::Sender<bool>,
}

impl Servers {
    /// Serves gRPC on `listener`, and the web view on `http` when given.
    async fn start(
        options: &Options,
        handle: &actor::Handle,
        sweep: String,
        worker_key: auth::WorkerKey,
        listener: TcpListener,
        http: Option<(TcpListener, SocketAddr)>,
    ) -> Result<Servers, Error> {
        let (grpc, grpc_stop) =
            serve_grpc(options, handle.clone(), sweep, worker_key, listener).await?;
        let (http_stop, http_stopped) = tokio::sync::watch::channel(false);
        let http = http.map(|(listener, http_addr)| {
            serve_http(listener, http_addr, handle.clone(), http_stopped)
        });
        Ok(Servers {
            grpc,
            grpc_stop,
            http,
            http_stop,
        })
    }

    /// The web view's address, when it serves.
    fn http_addr(&self) -> Option<SocketAddr> {
        self.http.as_ref().map(|(a, _)| *a)
    }

    /// Tells both servers to stop, without waiting.
    fn signal_stop(self) {
        let _ = self.grpc_stop.send(());
        let _ = self.http_stop.send(true);
    }

    /// Stops both servers and waits for them.
    async fn stop(self) -> Result<(), Error> {
        let _ = self.grpc_stop.send(());
        let _ = self.http_stop.send(true);
        if let Some((_, task)) = self.http {
            stop_http(task).await;
        }
        match self.grpc.await {
            Ok(result) => result?,
            Err(e) => tracing::error!(error = %e, "grpc server task failed"),
        }
        Ok(())
    }
}

/// What a run that ended leaves, from its last progress.
fn summary(options: &Options, progress: actor::Progress, database: PathBuf) -> Summary {
    let c = progress.counts;
    Summary {
        succeeded: c.succeeded,
        failed: progress.failed,
        unfinished: c.pending + c.leased,
        results: options.out_dir.join("results.json"),
        summary: options.out_dir.join("summary.md"),
        database,
    }
}

/// Why the state owner's task stopped on its own (only a database failure does that).
fn owner_stopped(
    r: Result<Result<(), Error>, tokio::task::JoinError>,
    database: &std::path::Path,
) -> Error {
    match r {
        Ok(Ok(())) => Error::ShuttingDown,
        Ok(Err(e)) => e,
        Err(e) => Error::Io {
            action: "state owner task failed",
            path: database.display().to_string(),
            source: std::io::Error::other(e.to_string()),
        },
    }
}

/// Serves the workers' gRPC service (with `grpc.health.v1`, authentication and TLS as
/// `options` say) on `listener`; returns the server's task and what stops it.
async fn serve_grpc(
    options: &Options,
    handle: actor::Handle,
    sweep: String,
    worker_key: auth::WorkerKey,
    listener: TcpListener,
) -> Result<
    (
        tokio::task::JoinHandle<Result<(), tonic::transport::Error>>,
        tokio::sync::oneshot::Sender<()>,
    ),
    Error,
> {
    let service = service::Service::new(
        handle,
        artifacts::Dirs {
            out: options.out_dir.clone(),
            state: options.state_dir(),
        },
        sweep,
        options.heartbeat_interval,
        options.lease_ttl,
        worker_key,
    );
    let server = sweep_proto::SweepServiceServer::new(service)
        .max_decoding_message_size(sweep_proto::MAX_MESSAGE_BYTES)
        .max_encoding_message_size(sweep_proto::MAX_MESSAGE_BYTES);
    // grpc.health.v1 for Kubernetes' probes: "" and sweep.v1.SweepService are SERVING.
    let (health_reporter, health) = tonic_health::server::health_reporter();
    health_reporter
        .set_serving::<sweep_proto::SweepServiceServer<service::Service>>()
        .await;
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    // Bounded per connection: one client cannot hold the server with endless concurrent calls.
    let mut builder = tonic::transport::Server::builder()
        .max_concurrent_streams(MAX_STREAMS_PER_CONNECTION)
        .concurrency_limit_per_connection(MAX_STREAMS_PER_CONNECTION as usize);
    if let Some(tls) = &options.tls {
        let mut config = tonic::transport::ServerTlsConfig::new()
            .identity(tonic::transport::Identity::from_pem(&tls.cert, &tls.key));
        if let Some(ca) = &tls.client_ca {
            config = config.client_ca_root(tonic::transport::Certificate::from_pem(ca));
        }
        builder = builder.tls_config(config)?;
    }
    let server_task = tokio::spawn(
        builder
            .layer(auth::AuthLayer::new(options.tokens.clone()))
            .add_service(health)
            .add_service(server)
            .serve_with_incoming_shutdown(incoming(listener), async {
                let _ = stop_rx.await;
            }),
    );
    Ok((server_task, stop_tx))
}

/// Serves the live web view on `listener` until `stopped` turns true.
fn serve_http(
    listener: TcpListener,
    http_addr: SocketAddr,
    handle: actor::Handle,
    stopped: tokio::sync::watch::Receiver<bool>,
) -> (SocketAddr, tokio::task::JoinHandle<Result<(), Error>>) {
    if !http_addr.ip().is_loopback() {
        warn!(%http_addr, "the live web view has no authentication: anyone who can reach this address sees the sweep");
    }
    info!(%http_addr, "live web view");
    let task = tokio::spawn(web::serve(listener, handle, stopped));
    (http_addr, task)
}

/// Waits (at most [`HTTP_SHUTDOWN`]) for the live web view to close its connections, then
/// drops them.
async fn stop_http(task: tokio::task::JoinHandle<Result<(), Error>>) {
    let abort = task.abort_handle();
    match tokio::time::timeout(HTTP_SHUTDOWN, task).await {
        Ok(Ok(Ok(()))) => {}
        Ok(Ok(Err(e))) => tracing::error!(error = %e, "live web view failed"),
        Ok(Err(e)) => tracing::error!(error = %e, "live web view task failed"),
        Err(_) => {
            warn!("the live web view did not close its connections in time");
            abort.abort();
        }
    }
}

/// Waits (at most `linger`) until every recently seen worker has been told that the sweep is
/// finished, so that they exit on their own.
async fn linger(handle: &actor::Handle, linger: Duration) {
    let deadline = tokio::time::Instant::now() + linger;
    while tokio::time::Instant::now() < deadline {
        match handle.progress().await {
            Ok(p) if p.workers_told => break,
            Ok(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            Err(_) => break,
        }
    }
}
