//! `coordinator`: runs a sweep from a grid file. See README.md.

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use sweep_common::grid::Grid;
use sweep_coordinator::{Options, run};

/// Runs a hyperparameter sweep: expands the grid file into trials and hands them to workers.
#[derive(Debug, Parser)]
#[command(name = "coordinator", version)]
struct Cli {
    /// The grid file (TOML) describing the sweep.
    #[arg(long, value_name = "FILE")]
    grid: PathBuf,
    /// Address to serve workers on; use 0.0.0.0:50051 to accept workers from other machines.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:50051")]
    listen: SocketAddr,
    /// Folder for results.json and summary.md [default: runs/<sweep name>].
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// A lease not renewed for this long expires and its trial is leased again.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = humantime::parse_duration)]
    lease_ttl: Duration,
    /// How often workers heartbeat their leases.
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = humantime::parse_duration)]
    heartbeat: Duration,
    /// After the sweep ends, how long to keep answering so workers learn that it ended.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = humantime::parse_duration)]
    linger: Duration,
    /// How often to log a progress line while no trial ends.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = humantime::parse_duration)]
    progress_every: Duration,
}

impl TryFrom<Cli> for (Options, Grid) {
    type Error = anyhow::Error;

    fn try_from(cli: Cli) -> anyhow::Result<(Options, Grid)> {
        let grid = Grid::from_file(&cli.grid)?;
        if cli.heartbeat.is_zero() || cli.heartbeat >= cli.lease_ttl {
            anyhow::bail!(
                "--heartbeat ({}) must be greater than 0 and shorter than --lease-ttl ({})",
                humantime::format_duration(cli.heartbeat),
                humantime::format_duration(cli.lease_ttl)
            );
        }
        let out = cli
            .out
            .unwrap_or_else(|| PathBuf::from("runs").join(&grid.name));
        let mut options = Options::new(cli.grid, cli.listen, out);
        options.lease_ttl = cli.lease_ttl;
        options.heartbeat_interval = cli.heartbeat;
        options.linger = cli.linger;
        options.progress_every = cli.progress_every;
        Ok((options, grid))
    }
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = ctrl_c => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
    tracing::warn!("signal received: stopping (results so far are saved)");
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .init();
    let (options, grid) = match <(Options, Grid)>::try_from(Cli::parse()) {
        Ok(x) => x,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(run(
        options,
        grid,
        |addr| println!("listening on {addr}"),
        shutdown_signal(),
    ));
    match result {
        Ok(s) => {
            println!("results: {}", s.results.display());
            if s.unfinished > 0 {
                println!(
                    "stopped with {} trials unfinished ({} succeeded, {} failed)",
                    s.unfinished,
                    s.succeeded,
                    s.failed.len()
                );
                return ExitCode::from(130);
            }
            println!("summary: {}", s.summary.display());
            if s.failed.is_empty() {
                println!("sweep finished: {} trials succeeded", s.succeeded);
                ExitCode::SUCCESS
            } else {
                println!(
                    "sweep finished: {} succeeded, {} failed:",
                    s.succeeded,
                    s.failed.len()
                );
                for (name, reason) in &s.failed {
                    println!("  {name}: {reason}");
                }
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
