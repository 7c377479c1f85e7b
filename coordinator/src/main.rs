//! `coordinator`: runs a sweep from a grid file. See README.md.

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use sweep_common::grid::Grid;
use sweep_coordinator::{Options, run};

/// Runs a hyperparameter sweep: expands the grid file into trials and hands them to workers.
#[derive(Debug, Parser)]
#[command(
    name = "coordinator",
    version,
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true
)]
struct Cli {
    /// Something other than running a sweep.
    #[command(subcommand)]
    command: Option<Command>,
    /// The grid file (TOML) describing the sweep.
    #[arg(long, value_name = "FILE", required = true)]
    grid: Option<PathBuf>,
    /// Run only this experiment of the grid file (repeatable) [default: all].
    #[arg(long = "only", value_name = "EXPERIMENT")]
    only: Vec<String>,
    /// Address to serve workers on; use 0.0.0.0:50051 to accept workers from other machines.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:50051")]
    listen: SocketAddr,
    /// Folder for results.json, summary.md and the report [default: runs/<sweep name>].
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

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Remakes the report (report.md, report.html, CSVs, figures) from DIR/results.json,
    /// without retraining.
    Report {
        /// The sweep's output folder (the one given to --out when it ran).
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
    },
}

impl TryFrom<Cli> for (Options, Grid) {
    type Error = anyhow::Error;

    fn try_from(cli: Cli) -> anyhow::Result<(Options, Grid)> {
        let grid_file = cli
            .grid
            .ok_or_else(|| anyhow::anyhow!("--grid FILE is required to run a sweep"))?;
        let mut grid = Grid::from_file(&grid_file)?;
        grid.select(&cli.only)?;
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
        let mut options = Options::new(grid_file, cli.listen, out);
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

/// `coordinator report --out DIR`: prints every file written, or the error and exits 1.
fn report(out: &Path) -> ExitCode {
    match sweep_coordinator::report::write(out) {
        Ok(paths) => {
            for p in paths.all() {
                println!("{}", p.display());
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
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
    let cli = Cli::parse();
    if let Some(Command::Report { out }) = &cli.command {
        return report(out);
    }
    let (options, grid) = match <(Options, Grid)>::try_from(cli) {
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
