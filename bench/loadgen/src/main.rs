//! `loadgen`: a load generator for the coordinator. Runs the real `coordinator` binary on a
//! grid of T trials and drives it with N simulated workers speaking the real gRPC protocol over
//! loopback, all in one tokio runtime; then reports throughput, call latencies, the
//! coordinator's CPU, memory and database size, and every error. Exits non-zero unless every
//! trial succeeded without an error.
//!
//! ```text
//! loadgen --workers 1000 --trials 20000 --epochs 30 --json load.json
//! ```
//!
//! With `--grid G --metrics-from R`, it runs the grid file G instead of a generated one, and
//! its workers report the metrics a finished sweep recorded in R (`results.json`) for each
//! leased trial's configuration: a sampler measured through the live coordinator on a real
//! objective, without training (`bench/search/live`).

mod coordinator;
mod report;
mod table;
mod workers;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Parser;
use tokio::task::JoinSet;
use tonic::transport::{Channel, Endpoint};

use coordinator::{Coordinator, cpu_seconds, memory};
use report::{CoordinatorFigures, Latencies, Report};
use sweep_common::grid::Grid;
use table::Table;
use workers::{Shared, Stats};

/// Drives a real coordinator with simulated workers and measures it.
#[derive(Debug, Parser)]
#[command(name = "loadgen")]
struct Cli {
    /// Simulated workers (one slot each).
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..))]
    workers: u32,
    /// Trials in the sweep.
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    trials: u64,
    /// Epochs per trial.
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    epochs: u32,
    /// How long a simulated epoch takes (0s: report at once).
    #[arg(long, value_name = "DURATION", default_value = "0s", value_parser = humantime::parse_duration)]
    epoch_time: Duration,
    /// Each simulated epoch takes --epoch-time times a factor drawn uniformly from
    /// [1 - JITTER, 1 + JITTER], so that workers do not report in lockstep (as real ones do not).
    #[arg(long, default_value_t = 0.2, value_parser = jitter)]
    jitter: f64,
    /// Leave calls that start within this long of the first Register out of the latency
    /// histograms (the start-up burst: every worker registers and leases at the same instant).
    #[arg(long, value_name = "DURATION", default_value = "0s", value_parser = humantime::parse_duration)]
    warmup: Duration,
    /// The coordinator's --heartbeat (how often workers heartbeat their lease).
    #[arg(long, value_name = "DURATION", default_value = "1s", value_parser = humantime::parse_duration)]
    heartbeat: Duration,
    /// The coordinator's --lease-ttl.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = humantime::parse_duration)]
    lease_ttl: Duration,
    /// HTTP/2 connections the workers share, round-robin: a number, or `per-worker` for one
    /// each, as real workers have [default: one per 16 workers, which lets one loadgen thread
    /// drive thousands of workers].
    #[arg(long, value_name = "C|per-worker", value_parser = parse_connections)]
    connections: Option<Connections>,
    /// Threads of the load generator's runtime (the coordinator gets the other cores).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..))]
    threads: u16,
    /// Early stopping: ASHA over the hidden widths (`min_epochs = 1`, `reduction = 3`); trials
    /// stop when a report's answer says so, and count as done.
    #[arg(long)]
    asha: bool,
    /// Epochs a worker sends in one ReportEpoch (the last call of a trial carries what is left),
    /// at most what the coordinator says it takes (1 for one from before batches). A real worker
    /// batches the epochs that ended while its previous call was in flight: with zero-length
    /// epochs, the first alone and then the rest, as many calls as --epochs-per-call 15 for 30.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=256))]
    epochs_per_call: u32,
    /// A sampled search instead of a grid: one experiment of --trials configurations (one
    /// seed each) drawn at random or proposed by TPE from a hidden width in 1..65536 and a
    /// log-uniform learning rate.
    #[arg(long, value_name = "METHOD")]
    sample: Option<Method>,
    /// Run this grid file instead of a generated grid; its trials (a sampled experiment's
    /// budget included) and epochs replace --trials and --epochs.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["trials", "epochs", "sample", "asha"])]
    grid: Option<PathBuf>,
    /// Report, for each leased trial, the metrics this finished sweep's results.json (or
    /// .json.gz) recorded for its configuration (the same hyperparameters but the seed), instead
    /// of made-up ones; a trial whose configuration it does not have ends the run with an error.
    #[arg(long, value_name = "FILE")]
    metrics_from: Option<PathBuf>,
    /// Also write the report as JSON to FILE.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Run in DIR (grid.toml, coordinator.log, out/) and keep it, instead of a temporary folder.
    #[arg(long, value_name = "DIR")]
    keep: Option<PathBuf>,
    /// The coordinator binary [default: `coordinator` beside this executable].
    #[arg(long, value_name = "FILE")]
    coordinator_bin: Option<PathBuf>,
    /// An extra argument for the coordinator (repeatable).
    #[arg(
        long = "coordinator-arg",
        value_name = "ARG",
        allow_hyphen_values = true
    )]
    coordinator_args: Vec<String>,
    /// Give up if the sweep has not ended after this long.
    #[arg(long, value_name = "DURATION", default_value = "1h", value_parser = humantime::parse_duration)]
    timeout: Duration,
    /// Give up if the coordinator does not listen after this long (a grid of a million trials
    /// takes about 15 s on an idle 2-core machine, longer on a busy one).
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = humantime::parse_duration)]
    start_timeout: Duration,
}

/// A sampled experiment's method (`[experiment.sample] method`).
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum Method {
    Random,
    Sobol,
    Tpe,
}

impl Method {
    fn name(self) -> &'static str {
        match self {
            Method::Random => "random",
            Method::Sobol => "sobol",
            Method::Tpe => "tpe",
        }
    }
}

/// How many HTTP/2 connections the workers share.
#[derive(Debug, Clone, Copy)]
enum Connections {
    PerWorker,
    Count(usize),
}

fn parse_connections(s: &str) -> Result<Connections, String> {
    if s == "per-worker" {
        return Ok(Connections::PerWorker);
    }
    match s.parse() {
        Ok(0) | Err(_) => Err("expected a positive number or `per-worker`".to_owned()),
        Ok(n) => Ok(Connections::Count(n)),
    }
}

/// Workers per connection by default.
const WORKERS_PER_CONNECTION: usize = 16;
/// How long the coordinator may take to exit after the last trial (linger, results, report).
const EXIT_TIMEOUT: Duration = Duration::from_secs(600);

impl Cli {
    fn connections(&self) -> usize {
        let workers = self.workers as usize;
        match self.connections {
            Some(Connections::PerWorker) => workers,
            Some(Connections::Count(n)) => n.min(workers),
            None => workers.div_ceil(WORKERS_PER_CONNECTION),
        }
    }
}

/// The `[experiment.stopping]` table of `--asha`, or nothing.
fn stopping(asha: bool) -> &'static str {
    if asha {
        "\n[experiment.stopping]\nrule = \"asha\"\nmin_epochs = 1\nreduction = 3\n"
    } else {
        ""
    }
}

/// A sampled experiment of exactly `trials` configurations of `epochs` epochs, one seed each.
fn sampled(trials: u64, epochs: u32, method: Method, asha: bool) -> String {
    format!(
        "[sweep]\nname = \"loadgen\"\nseed = 7\nmax_attempts = 3\nmax_trials = {trials}\n\n\
         [[experiment]]\nname = \"load\"\ndataset = \"fashion-mnist\"\n\n\
         [experiment.fixed]\nhidden_layers = 1\nepochs = {epochs}\nseed = 1\n\n\
         [experiment.sample]\ntrials = {trials}\nmethod = \"{}\"\nseed = 1\n\n\
         [experiment.sample.space]\nhidden_width = {{ int = [1, 65536] }}\n\
         learning_rate = {{ loguniform = [0.0001, 0.1] }}\n{}",
        method.name(),
        stopping(asha)
    )
}

/// A grid of exactly `trials` trials of `epochs` epochs: `seed` x `hidden_width` (about
/// sqrt(trials) each), plus a second experiment for the remainder.
fn grid(trials: u64, epochs: u32, asha: bool) -> String {
    let list = |n: u64| {
        (1..=n)
            .map(|i| i.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let width = trials.isqrt();
    let (seeds, rest) = (trials / width, trials % width);
    let experiment = |name: &str, seeds: u64, widths: u64| {
        format!(
            "\n[[experiment]]\nname = \"{name}\"\ndataset = \"fashion-mnist\"\n\n\
             [experiment.fixed]\nhidden_layers = 1\nepochs = {epochs}\n\n\
             [experiment.grid]\nseed = [{}]\nhidden_width = [{}]\n{}",
            list(seeds),
            list(widths),
            stopping(asha)
        )
    };
    let mut text = format!(
        "[sweep]\nname = \"loadgen\"\nseed = 7\nmax_attempts = 3\nmax_trials = {trials}\n{}",
        experiment("load", seeds, width)
    );
    if rest > 0 {
        text.push_str(&experiment("rest", rest, 1));
    }
    text
}

/// Trials a grid will run: its expanded trials, and for a TPE experiment, whose trials past its
/// first draws are proposed while the sweep runs, its whole budget (times the cells each
/// configuration is crossed with).
fn planned_trials(grid: &Grid) -> u64 {
    grid.experiments
        .iter()
        .map(|e| {
            let expanded = e.trials.len() as u64;
            match &e.sample {
                Some(s) if s.up_front() > 0 && s.up_front() < s.trials => {
                    expanded / u64::from(s.up_front()) * u64::from(s.trials)
                }
                _ => expanded,
            }
        })
        .sum()
}

/// `--grid`'s text, with --trials and --epochs set to what it runs.
fn given_grid(cli: &mut Cli, path: &Path) -> anyhow::Result<String> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read --grid {}", path.display()))?;
    let grid = Grid::from_file(path).map_err(|e| anyhow::anyhow!("--grid: {e}"))?;
    if let Some(e) = grid.experiments.iter().find(|e| e.stopping.is_some()) {
        bail!(
            "--grid {}: experiment {} has [experiment.stopping], which the simulated workers \
             do not follow with --grid (use --asha on a generated grid)",
            path.display(),
            e.name
        );
    }
    cli.trials = planned_trials(&grid);
    cli.epochs = grid.trials().map(|t| t.params.epochs).max().unwrap_or(0);
    Ok(text)
}

/// The coordinator binary: `--coordinator-bin`, else `coordinator` beside this executable.
fn coordinator_bin(cli: &Cli) -> anyhow::Result<PathBuf> {
    if let Some(path) = &cli.coordinator_bin {
        return Ok(path.clone());
    }
    let exe = std::env::current_exe().context("cannot tell where this executable is")?;
    Ok(exe.with_file_name("coordinator"))
}

/// Opens `n` connections to `addr`.
async fn connect(addr: std::net::SocketAddr, n: usize) -> anyhow::Result<Vec<Channel>> {
    let endpoint = Endpoint::from_shared(format!("http://{addr}"))?.tcp_nodelay(true);
    let mut channels = Vec::with_capacity(n);
    for _ in 0..n {
        channels.push(endpoint.connect().await.context("cannot connect")?);
    }
    Ok(channels)
}

/// What driving the sweep measured.
struct Driven {
    shared: Arc<Shared>,
    coordinator_cpu: f64,
    peak_rss: u64,
}

/// Runs the simulated workers against `coordinator` until they have all finished; fails if it
/// exits first or `--timeout` runs out.
async fn drive(cli: &Cli, coordinator: &mut Coordinator) -> anyhow::Result<Driven> {
    let channels = connect(coordinator.addr, cli.connections()).await?;
    let pid = coordinator.pid();
    let table = match &cli.metrics_from {
        Some(path) => Some(Table::read(path)?),
        None => None,
    };
    let shared = Arc::new(
        Shared::new(
            cli.epoch_time,
            cli.jitter,
            cli.warmup,
            cli.trials,
            pid.clone(),
            cli.asha,
            cli.epochs_per_call,
        )
        .with_table(table),
    );
    let cpu_before = cpu_seconds(&pid)?;
    let deadline = Instant::now() + cli.timeout;
    let mut workers = JoinSet::new();
    for i in 0..cli.workers as usize {
        let channel = channels[i % channels.len()].clone();
        workers.spawn(workers::run(
            Arc::clone(&shared),
            channel,
            format!("sim-{i}"),
        ));
    }
    let mut peak_rss = coordinator.rss_after_startup;
    loop {
        tokio::select! {
            joined = workers.join_next() => match joined {
                None => break,
                Some(Ok(())) => {}
                Some(Err(e)) => bail!("a simulated worker failed: {e}"),
            },
            () = tokio::time::sleep(Duration::from_millis(200)) => {
                if let Some(why) = shared.fatal() {
                    bail!("--metrics-from: {why}");
                }
                // VmHWM only grows: the last reading before it exits is the peak.
                peak_rss = memory(&pid, "VmHWM").unwrap_or(peak_rss).max(peak_rss);
                if let Some(status) = coordinator.try_exited()? {
                    bail!(
                        "the coordinator exited ({status}) while workers still ran; its log ends:\n{}",
                        coordinator.log_tail()
                    );
                }
                if Instant::now() >= deadline {
                    bail!(
                        "the sweep has not ended after --timeout {:?}: {} of {} trials completed",
                        cli.timeout,
                        shared.completed(),
                        cli.trials
                    );
                }
            }
        }
    }
    if let Some(why) = shared.fatal() {
        bail!("--metrics-from: {why}");
    }
    peak_rss = memory(&pid, "VmHWM").unwrap_or(peak_rss).max(peak_rss);
    let cpu_after = match shared.cpu_at_end() {
        Some(cpu) => cpu,
        None => cpu_seconds(&pid)?,
    };
    Ok(Driven {
        shared,
        coordinator_cpu: cpu_after - cpu_before,
        peak_rss,
    })
}

/// What `results.json` says: trials that succeeded, attempts that failed with `lease_expired`,
/// and trials recorded.
fn read_results(path: &Path) -> anyhow::Result<(u64, u64, usize)> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let results: sweep_common::results::Results<'static> = serde_json::from_str(&text)
        .with_context(|| format!("{} is not a valid results file", path.display()))?;
    // Stopped by early stopping (--asha) is done too.
    let succeeded = results
        .trials
        .iter()
        .filter(|t| t.succeeded() || t.status == sweep_common::results::Status::Stopped)
        .count();
    let expired = results
        .trials
        .iter()
        .flat_map(|t| t.failed_attempts.iter())
        .filter(|a| a.kind == sweep_common::failure::FailureKind::LeaseExpired)
        .count();
    Ok((succeeded as u64, expired as u64, results.trials.len()))
}

fn file_len(path: &Path) -> u64 {
    std::fs::metadata(path).map_or(0, |m| m.len())
}

/// The folder a run works in: `--keep`'s (which must not hold a run yet), or a temporary one
/// removed when the returned guard drops.
fn work_dir(cli: &Cli) -> anyhow::Result<(PathBuf, Option<tempfile::TempDir>)> {
    if let Some(dir) = &cli.keep {
        if dir.join("out").exists() {
            bail!("{} already holds a run (out/)", dir.display());
        }
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        return Ok((dir.clone(), None));
    }
    let temp = tempfile::Builder::new()
        .prefix("sweep-loadgen-")
        .tempdir()?;
    Ok((temp.path().to_owned(), Some(temp)))
}

/// Writes the grid `text` into `dir` and starts the coordinator on it, results under `out`.
fn start_coordinator(cli: &Cli, text: &str, dir: &Path, out: &Path) -> anyhow::Result<Coordinator> {
    let grid_file = dir.join("grid.toml");
    std::fs::write(&grid_file, text)?;
    let duration = |d: Duration| format!("{}ms", d.as_millis());
    let mut command = Command::new(coordinator_bin(cli)?);
    command
        .arg("--grid")
        .arg(&grid_file)
        .arg("--out")
        .arg(out)
        .args([
            "--listen",
            "127.0.0.1:0",
            "--linger",
            "2s",
            "--progress-every",
            "1h",
        ])
        .args(["--heartbeat", &duration(cli.heartbeat)])
        .args(["--lease-ttl", &duration(cli.lease_ttl)])
        .args(&cli.coordinator_args);
    Coordinator::start(command, &dir.join("coordinator.log"), cli.start_timeout)
}

impl From<&Cli> for report::Config {
    fn from(cli: &Cli) -> Self {
        report::Config {
            workers: cli.workers,
            trials: cli.trials,
            epochs: cli.epochs,
            epoch_time_ms: cli.epoch_time.as_secs_f64() * 1e3,
            jitter: cli.jitter,
            warmup_seconds: cli.warmup.as_secs_f64(),
            heartbeat_ms: cli.heartbeat.as_secs_f64() * 1e3,
            lease_ttl_ms: cli.lease_ttl.as_secs_f64() * 1e3,
            connections: cli.connections(),
            threads: cli.threads.into(),
            epochs_per_call: cli.epochs_per_call,
        }
    }
}

/// What went wrong in a run, from `results.json`, the coordinator's exit and the call
/// statistics; returns the problems and the trials `results.json` records as succeeded and
/// leases it records as expired.
fn problems(
    cli: &Cli,
    out: &Path,
    status: std::process::ExitStatus,
    coordinator: &Coordinator,
    completed: u64,
    stats: &Stats,
) -> (Vec<String>, u64, u64) {
    let mut problems = Vec::new();
    let (succeeded, expired) = match read_results(&out.join("results.json")) {
        Ok((succeeded, expired, recorded)) => {
            if recorded as u64 != cli.trials || succeeded != cli.trials {
                problems.push(format!(
                    "results.json has {succeeded} succeeded trials of {recorded}, expected {}",
                    cli.trials
                ));
            }
            (succeeded, expired)
        }
        Err(e) => {
            problems.push(format!("{e:#}"));
            (0, 0)
        }
    };
    if !status.success() {
        problems.push(format!(
            "the coordinator exited with {status}; its log ends:\n{}",
            coordinator.log_tail()
        ));
    }
    // With early stopping, trials stopped before they were leased are never completed by a
    // worker; results.json (above) says whether every trial ended.
    if completed != cli.trials && !cli.asha {
        problems.push(format!("{completed} of {} trials completed", cli.trials));
    }
    if stats.error_count() > 0 {
        problems.push(format!("{} calls failed", stats.error_count()));
    }
    // With --asha a heartbeat answer revokes the leases of seeds whose configuration another
    // seed's report stopped: that is the rule at work, not a lost lease.
    let revoked = if cli.asha { 0 } else { stats.revoked };
    if revoked + stats.lost + expired > 0 {
        problems.push(format!(
            "leases were taken back: {} revoked, {} refused, {expired} expired",
            stats.revoked, stats.lost
        ));
    }
    (problems, succeeded, expired)
}

/// Runs the load; returns the report (whose `problems` say whether it passed).
fn run(cli: &mut Cli) -> anyhow::Result<Report> {
    let loadgen_cpu_before = cpu_seconds("self")?;
    let text = match (cli.grid.clone(), cli.sample) {
        (Some(path), _) => given_grid(cli, &path)?,
        (None, Some(method)) => sampled(cli.trials, cli.epochs, method, cli.asha),
        (None, None) => grid(cli.trials, cli.epochs, cli.asha),
    };
    let cli = &*cli;
    let (dir, _temp) = work_dir(cli)?;
    let out = dir.join("out");
    let mut coordinator = start_coordinator(cli, &text, &dir, &out)?;

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cli.threads.into())
        .enable_all()
        .build()?;
    let driven = runtime.block_on(drive(cli, &mut coordinator))?;
    let db = out.join("state").join("sweep.db");
    let (db_bytes, wal_bytes) = (file_len(&db), file_len(&db.with_extension("db-wal")));
    let (status, peak_at_exit) = coordinator.wait(EXIT_TIMEOUT)?;
    let exited = Instant::now();
    drop(runtime);

    let stats = driven.shared.stats();
    let completed = driven.shared.completed();
    let wall = match (stats.first_lease, stats.last_complete) {
        (Some(a), Some(b)) => b.duration_since(a).as_secs_f64(),
        _ => 0.0,
    };
    let per_second = |n: u64| if wall > 0.0 { n as f64 / wall } else { 0.0 };
    let (problems, succeeded, expired) =
        problems(cli, &out, status, &coordinator, completed, &stats);
    // Trials that ended: with --asha, results.json's count (trials stopped before any worker
    // leased them are never completed by one).
    let ended = if cli.asha { succeeded } else { completed };
    let epoch_reports = driven.shared.epoch_reports();
    let last_complete = stats.last_complete.unwrap_or(exited);
    Ok(Report {
        config: cli.into(),
        trials_completed: completed,
        trials_succeeded: succeeded,
        wall_seconds: wall,
        trials_per_second: per_second(ended),
        epoch_reports,
        report_epoch_calls: driven.shared.report_calls(),
        epoch_reports_per_second: per_second(epoch_reports),
        metric_points_per_second: per_second(4 * epoch_reports),
        latency_us: Latencies {
            lease_assigned: (&stats.lease_assigned).into(),
            lease: (&stats.lease).into(),
            report_epoch: (&stats.report_epoch).into(),
            complete: (&stats.complete).into(),
            heartbeat: (&stats.heartbeat).into(),
            register: (&stats.register).into(),
        },
        coordinator: CoordinatorFigures {
            startup_seconds: coordinator.startup.as_secs_f64(),
            rss_after_startup_bytes: coordinator.rss_after_startup,
            peak_rss_serving_bytes: driven.shared.peak_rss_at_end().unwrap_or(driven.peak_rss),
            peak_rss_bytes: peak_at_exit.unwrap_or(0).max(driven.peak_rss),
            cpu_seconds: driven.coordinator_cpu,
            cpu_us_per_trial: driven.coordinator_cpu * 1e6 / ended.max(1) as f64,
            db_bytes,
            wal_bytes,
            exit_seconds: exited.duration_since(last_complete).as_secs_f64(),
            exit_code: status.code(),
        },
        loadgen_cpu_seconds: cpu_seconds("self")? - loadgen_cpu_before,
        errors: stats.errors.clone(),
        throttled: stats.throttled,
        leases_revoked: stats.revoked,
        leases_lost: stats.lost,
        lease_expiries: expired,
        problems,
    })
}

fn main() -> ExitCode {
    let mut cli = Cli::parse();
    let report = match run(&mut cli) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("loadgen: error: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    report.print();
    if let Some(path) = &cli.json {
        let written = serde_json::to_string_pretty(&report)
            .map_err(anyhow::Error::from)
            .and_then(|json| Ok(std::fs::write(path, json + "\n")?));
        if let Err(e) = written {
            eprintln!("loadgen: cannot write {}: {e}", path.display());
            return ExitCode::FAILURE;
        }
    }
    if report.problems.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// A --jitter: a fraction in [0, 1].
fn jitter(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(j) if (0.0..=1.0).contains(&j) => Ok(j),
        _ => Err(format!("{text:?} is not a fraction between 0 and 1")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn planned(text: &str) -> u64 {
        planned_trials(&Grid::parse(text, "test.toml").expect("a valid grid"))
    }

    #[test]
    fn a_tpe_budget_counts_the_trials_proposed_while_the_sweep_runs() {
        let head = "[sweep]\nname = \"s\"\n[[experiment]]\nname = \"e\"\n\
                    dataset = \"fashion-mnist\"\n";
        let sample = |method: &str, seeds: &str| {
            format!(
                "{head}[experiment.grid]\nseed = [{seeds}]\n[experiment.sample]\ntrials = 48\n\
                 method = \"{method}\"\n[experiment.sample.space]\n\
                 learning_rate = {{ loguniform = [0.0001, 0.1] }}\n"
            )
        };
        // TPE draws 10 with the grid; the budget is 48 configurations, each crossed with the
        // grid's seeds.
        assert_eq!(planned(&sample("tpe", "1")), 48);
        assert_eq!(planned(&sample("tpe", "1, 2")), 96);
        assert_eq!(planned(&sample("random", "1, 2")), 96);
        assert_eq!(
            planned(&format!(
                "{head}[experiment.grid]\nhidden_width = [8, 16, 32]\n"
            )),
            3
        );
    }
}
