//! The sweep coordinator: expands a grid file into trials, leases them to workers over gRPC
//! (`sweep.v1`), records their metrics and results, and writes the sweep's results when every
//! trial has ended.
//!
//! The scheduling logic is the pure state machine in [`state`]; [`actor`] owns it, [`service`]
//! is the thin tonic shell, [`results`] writes the outputs. [`run`] wires them together.

pub mod actor;
pub mod artifacts;
mod error;
pub mod report;
pub mod results;
pub mod service;
pub mod state;

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use sweep_common::grid::Grid;
use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tracing::info;

pub use error::Error;

/// Validated settings of a coordinator run.
#[derive(Debug, Clone)]
pub struct Options {
    /// The grid file.
    pub grid_file: PathBuf,
    /// Address to serve gRPC on (port 0 picks a free port).
    pub listen: SocketAddr,
    /// Folder for results (created if missing).
    pub out_dir: PathBuf,
    /// A lease not renewed for this long expires.
    pub lease_ttl: Duration,
    /// How often workers heartbeat.
    pub heartbeat_interval: Duration,
    /// After the sweep ends, how long to keep answering workers so they learn it ended.
    pub linger: Duration,
    /// How often a progress line is logged while nothing ends.
    pub progress_every: Duration,
}

impl Options {
    /// Default timings: heartbeat every 5 s, lease TTL 30 s, linger 10 s, progress every 30 s.
    pub fn new(grid_file: PathBuf, listen: SocketAddr, out_dir: PathBuf) -> Self {
        Self {
            grid_file,
            listen,
            out_dir,
            lease_ttl: Duration::from_secs(30),
            heartbeat_interval: Duration::from_secs(5),
            linger: Duration::from_secs(10),
            progress_every: Duration::from_secs(30),
        }
    }
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
}

/// Runs a sweep of `grid` until every trial has ended (or `shutdown` resolves), serving workers
/// on `options.listen`. `on_listen` is called with the bound address once the server listens.
pub async fn run(
    options: Options,
    grid: Grid,
    on_listen: impl FnOnce(SocketAddr),
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<Summary, Error> {
    std::fs::create_dir_all(&options.out_dir).map_err(|source| Error::Io {
        action: "cannot create the output folder",
        path: options.out_dir.display().to_string(),
        source,
    })?;
    let listener = TcpListener::bind(options.listen)
        .await
        .map_err(|source| Error::Bind {
            addr: options.listen.to_string(),
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| Error::Bind {
        addr: options.listen.to_string(),
        source,
    })?;

    let config = state::Config {
        lease_ttl: options.lease_ttl,
        max_attempts: grid.max_attempts,
        retry_after: options.heartbeat_interval.min(Duration::from_secs(1)),
    };
    let scheduler = state::Scheduler::new(grid.trials().cloned(), config);
    info!(sweep = %grid.name, trials = grid.len(), experiments = grid.experiments.len(), "grid expanded");
    let sweep = grid.name.clone();
    let (handle, mut finished, actor_task) = actor::spawn(actor::Actor {
        scheduler,
        grid,
        grid_file: options.grid_file.display().to_string(),
        out_dir: options.out_dir.clone(),
        tick: (options.lease_ttl / 10).clamp(Duration::from_millis(20), Duration::from_secs(1)),
        progress_every: options.progress_every,
    });

    let service = service::Service::new(
        handle.clone(),
        options.out_dir.clone(),
        sweep,
        options.heartbeat_interval,
        options.lease_ttl,
    );
    let server = sweep_proto::SweepServiceServer::new(service)
        .max_decoding_message_size(sweep_proto::MAX_MESSAGE_BYTES)
        .max_encoding_message_size(sweep_proto::MAX_MESSAGE_BYTES);
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server_task = tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(server)
            .serve_with_incoming_shutdown(TcpListenerStream::new(listener), async {
                let _ = stop_rx.await;
            }),
    );
    info!(%addr, "listening");
    on_listen(addr);

    // Wait for the end of the sweep (or a shutdown request), then linger until the workers have
    // been told, so they exit on their own.
    let stopped_early = tokio::select! {
        _ = finished.wait_for(|done| *done) => false,
        () = shutdown => true,
    };
    if !stopped_early {
        let deadline = tokio::time::Instant::now() + options.linger;
        while tokio::time::Instant::now() < deadline {
            match handle.progress().await {
                Ok(p) if p.workers_told => break,
                Ok(_) => tokio::time::sleep(Duration::from_millis(50)).await,
                Err(_) => break,
            }
        }
    }
    let progress = handle.progress().await?;
    let _ = stop_tx.send(());
    drop(handle);
    match server_task.await {
        Ok(result) => result?,
        Err(e) => tracing::error!(error = %e, "grpc server task failed"),
    }
    let _ = actor_task.await;
    let c = progress.counts;
    Ok(Summary {
        succeeded: c.succeeded,
        failed: progress.failed,
        unfinished: c.pending + c.leased,
        results: options.out_dir.join("results.json"),
        summary: options.out_dir.join("summary.md"),
    })
}
