//! `coordinator`: runs a sweep from a grid file. See README.md.

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use sweep_common::files::{MAX_PEM_FILE_BYTES, read_small};
use sweep_common::grid::Grid;
use sweep_common::text::terminal;
use sweep_coordinator::{Console, Exit, Listening, Options, run};

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
    /// Folder for the sweep's database and checkpoints [default: OUT/state]. Running the same
    /// command again on it resumes the sweep: finished trials are kept.
    #[arg(long, value_name = "DIR")]
    state_dir: Option<PathBuf>,
    /// A lease not renewed for this long expires and its trial is leased again.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = humantime::parse_duration)]
    lease_ttl: Duration,
    /// How often workers heartbeat their leases.
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = humantime::parse_duration)]
    heartbeat: Duration,
    /// After the sweep ends, how long to keep answering so workers learn that it ended.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = humantime::parse_duration)]
    linger: Duration,
    /// How often to log a progress line while no trial ends, when stderr is not a terminal (on
    /// a terminal a status block is redrawn in place instead); more than 0.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = humantime::parse_duration)]
    progress_every: Duration,
    /// Serve a live web view of the sweep on ADDR (HOST:PORT, or a PORT on 127.0.0.1; port 0
    /// picks a free one). It has no authentication: keep it on loopback unless the network is
    /// trusted.
    #[arg(long, value_name = "ADDR", value_parser = parse_http_addr)]
    http: Option<SocketAddr>,
    /// File holding the token workers must present (or set SWEEP_WORKER_TOKEN to the token).
    #[arg(long, value_name = "FILE")]
    worker_token_file: Option<PathBuf>,
    /// File holding the token `coordinator status`, `cancel` and `retry` must present (or set
    /// SWEEP_OPERATOR_TOKEN). A worker token cannot do what it allows.
    #[arg(long, value_name = "FILE")]
    operator_token_file: Option<PathBuf>,
    /// TLS: the server's certificate chain (PEM).
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// TLS: the server's private key (PEM).
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Mutual TLS: accept only clients presenting a certificate signed by this CA (PEM).
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    tls_client_ca: Option<PathBuf>,
    /// Listen on a non-loopback address without TLS and a worker token. Anyone who reaches the
    /// port can then take trials, report results and read the sweep: only on a network you
    /// trust (or behind a service mesh that adds mTLS).
    #[arg(long)]
    insecure: bool,
    /// On a sweep recorded in the state directory, put the trials that failed for good back in
    /// the queue before serving (cancelled ones stay cancelled; `coordinator retry --trial NAME`
    /// retries those). Their earlier attempts stay in the results.
    #[arg(long)]
    retry_failed: bool,
    #[command(flatten)]
    local: LocalArgs,
}

/// Workers started by the coordinator itself, on this machine.
#[derive(Debug, clap::Args)]
struct LocalArgs {
    /// Start N CPU workers as children of the coordinator (on loopback; each gets the cores
    /// divided by N as --threads), restarted when they crash and stopped at the end. Remote
    /// workers can still join.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=256))]
    local_workers: Option<u32>,
    /// Start one worker per GPU as children of the coordinator (`--gpu N --slots auto`): `all`
    /// (the GPUs nvidia-smi lists) or a list, `0,1`.
    #[arg(long, value_name = "all|LIST", value_parser = parse_gpus)]
    local_gpus: Option<Gpus>,
    /// The worker executable for local workers [default: `worker` next to the coordinator's].
    #[arg(long, value_name = "FILE", env = "SWEEP_WORKER_BIN")]
    worker_bin: Option<PathBuf>,
    /// --data-dir for local workers [default: the worker's, `data` or SWEEP_DATA_DIR].
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// One more argument for every local worker (repeatable): `--local-worker-arg=--offline`.
    #[arg(long, value_name = "ARG", allow_hyphen_values = true)]
    local_worker_arg: Vec<String>,
}

/// `--local-gpus`: every GPU, or these.
#[derive(Debug, Clone)]
enum Gpus {
    All,
    List(Vec<u32>),
}

fn parse_gpus(s: &str) -> Result<Gpus, String> {
    if s == "all" {
        return Ok(Gpus::All);
    }
    let mut list = Vec::new();
    for part in s.split(',') {
        let n: u32 = part.trim().parse().map_err(|_| {
            format!("{part:?} is not a GPU number: give `all` or a list such as 0,1")
        })?;
        if list.contains(&n) {
            return Err(format!("GPU {n} is listed twice"));
        }
        list.push(n);
    }
    Ok(Gpus::List(list))
}

impl LocalArgs {
    /// The local workers asked for, checked (the worker executable found), if any.
    fn spec(
        self,
        worker_token_file: Option<&Path>,
        tls: bool,
    ) -> anyhow::Result<Option<sweep_coordinator::local::Spec>> {
        use sweep_coordinator::local::{Device, Spec, all_gpus, find_worker};
        let gpus = match &self.local_gpus {
            None => Vec::new(),
            Some(Gpus::All) => all_gpus().map_err(anyhow::Error::msg)?,
            Some(Gpus::List(l)) => l.clone(),
        };
        let cpus = self.local_workers.unwrap_or(0);
        if cpus == 0 && gpus.is_empty() {
            if !self.local_worker_arg.is_empty() || self.data_dir.is_some() {
                anyhow::bail!(
                    "--data-dir and --local-worker-arg are for local workers: add \
                     --local-workers N or --local-gpus"
                );
            }
            return Ok(None);
        }
        if tls {
            anyhow::bail!(
                "local workers connect on loopback without TLS, and this coordinator serves \
                 TLS only: drop --tls-cert for a one-machine sweep, or start workers by hand \
                 with --tls-ca"
            );
        }
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let threads = u32::try_from(cores / cpus.max(1) as usize)
            .unwrap_or(1)
            .max(1);
        let mut devices: Vec<Device> = (0..cpus).map(|_| Device::Cpu { threads }).collect();
        devices.extend(gpus.into_iter().map(Device::Gpu));
        Ok(Some(Spec {
            devices,
            program: find_worker(self.worker_bin).map_err(anyhow::Error::msg)?,
            data_dir: self.data_dir,
            token_file: worker_token_file.map(Path::to_owned),
            args: self.local_worker_arg,
        }))
    }
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Prints what a grid will cost, without training: per experiment the trials, epochs,
    /// parameters per model and memory per trial, and with --from the compute and wall time.
    Plan {
        /// The grid file.
        #[arg(long, value_name = "FILE")]
        grid: PathBuf,
        /// Only this experiment (repeatable) [default: all].
        #[arg(long = "only", value_name = "EXPERIMENT")]
        only: Vec<String>,
        /// The output folder of an earlier sweep on these machines: its results.json's epoch
        /// times give the rate of the time estimate.
        #[arg(long, value_name = "DIR")]
        from: Option<PathBuf>,
        /// The workers to estimate the wall time for: cpu:N and gpu:N, comma-separated.
        #[arg(long, value_name = "SET", default_value = "cpu:2")]
        workers: String,
        /// Time a few training steps of each distinct model on this machine (`worker
        /// --calibrate`, per kind of worker in --workers) and estimate from those.
        #[arg(long, conflicts_with = "from")]
        calibrate: bool,
        /// The worker executable --calibrate runs [default: the one next to this program].
        #[arg(long, value_name = "FILE", env = "SWEEP_WORKER_BIN")]
        worker_bin: Option<PathBuf>,
    },
    /// Runs a grid's stopping rule ([experiment.stopping]) over the recorded curves of a
    /// finished full sweep, in virtual time, without training: prints the trials it would stop,
    /// the epochs it would train against the full grid's, and the best configuration it would
    /// find against the full sweep's.
    Replay {
        /// The finished sweep's results.json (every trial of the grid's experiment, to its end).
        #[arg(long, value_name = "FILE")]
        results: PathBuf,
        /// The grid file whose experiment the results are, with its [experiment.stopping].
        #[arg(long, value_name = "FILE")]
        grid: PathBuf,
        /// Workers to simulate [default: the number of workers the results name, else 1].
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
        workers: Option<u32>,
        /// Only this experiment [default: every one with a stopping rule].
        #[arg(long, value_name = "NAME")]
        experiment: Option<String>,
        /// Print the replays as JSON (a list, one per experiment).
        #[arg(long)]
        json: bool,
    },
    /// Remakes the report (report.md, report.html, CSVs, figures) from DIR/results.json,
    /// without retraining.
    Report {
        /// The sweep's output folder (the one given to --out when it ran).
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
    },
    /// Prints the status of a running coordinator: trials by state, what each worker trains,
    /// throughput, ETA and the best trial so far; with --trials (or a filter), a page of trials.
    Status {
        /// Print the status as JSON (the same document as the web view's /api/status): the
        /// summary with the listed trials' curves and the experiments' tables.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        trials: TrialArgs,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Cancels trials of a running sweep: pending ones end at once, running ones are stopped by
    /// their workers within a heartbeat. Cancelled trials count as failed and are not retried.
    #[command(group(clap::ArgGroup::new("which").required(true).multiple(true).args(["trial", "experiment", "all"])))]
    Cancel {
        /// A trial to cancel, by name or id (repeatable).
        #[arg(long, value_name = "TRIAL")]
        trial: Vec<String>,
        /// Cancel every trial of this experiment (repeatable).
        #[arg(long, value_name = "EXPERIMENT")]
        experiment: Vec<String>,
        /// Cancel every trial not ended yet.
        #[arg(long)]
        all: bool,
        /// Why (kept as the trials' failure reason).
        #[arg(long, value_name = "TEXT", default_value = "")]
        reason: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Puts trials of a running sweep that failed for good back in the queue; their earlier
    /// attempts stay in the results. For a sweep that has ended, rerun the coordinator with
    /// --retry-failed instead.
    #[command(group(clap::ArgGroup::new("which").required(true).multiple(true).args(["trial", "experiment", "failed"])))]
    Retry {
        /// A failed or cancelled trial to retry, by name or id (repeatable).
        #[arg(long, value_name = "TRIAL")]
        trial: Vec<String>,
        /// Retry the failed trials of this experiment (repeatable).
        #[arg(long, value_name = "EXPERIMENT")]
        experiment: Vec<String>,
        /// Retry every trial that failed.
        #[arg(long)]
        failed: bool,
        /// With --experiment or --failed, cancelled trials too (by default they stay cancelled).
        #[arg(long)]
        include_cancelled: bool,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Resumes trials of a running sweep that early stopping stopped, from their checkpoints,
    /// with every seed of their configuration; the stopping rule judges them again at the
    /// rungs above. With --epochs N, the trials named (stopped, or succeeded with their latest
    /// checkpoint kept) continue up to N epochs: a decision kept across restarts, and no
    /// stopping rule stops them below N.
    #[command(group(clap::ArgGroup::new("which").required(true).multiple(true).args(["trial", "experiment"])))]
    Promote {
        /// A stopped trial to resume, by name or id (repeatable).
        #[arg(long, value_name = "TRIAL")]
        trial: Vec<String>,
        /// Resume every stopped trial of this experiment (repeatable).
        #[arg(long, value_name = "EXPERIMENT", conflicts_with = "epochs")]
        experiment: Vec<String>,
        /// Train the trials named up to N epochs (more than they have), continuing from their
        /// latest checkpoint; only for lr_schedule constant or step, not program trials.
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
        epochs: Option<u32>,
        #[command(flatten)]
        client: ClientArgs,
    },
}

/// Which trials `coordinator status` lists: a page of them, in grid order.
#[derive(Debug, clap::Args)]
struct TrialArgs {
    /// List the trials page by page instead of the summary's (the running ones and the best).
    #[arg(long)]
    trials: bool,
    /// Only trials in this state (implies --trials).
    #[arg(long, value_name = "STATE", value_parser = clap::builder::PossibleValuesParser::new(
        sweep_common::results::Status::ALL.map(sweep_common::results::Status::name)
    ))]
    state: Option<String>,
    /// Only trials of this experiment (implies --trials).
    #[arg(long, value_name = "NAME")]
    experiment: Option<String>,
    /// Only this trial, by name or id (implies --trials).
    #[arg(long, value_name = "TRIAL")]
    trial: Option<String>,
    /// Skip this many matching trials (implies --trials).
    #[arg(long, value_name = "N")]
    offset: Option<u32>,
    /// List at most this many trials (implies --trials).
    #[arg(long, value_name = "N", default_value_t = sweep_coordinator::status::PAGE_DEFAULT,
          value_parser = clap::value_parser!(u32).range(1..=i64::from(sweep_coordinator::status::MAX_PAGE)))]
    limit: u32,
}

impl TrialArgs {
    /// The page asked for, if any.
    fn query(&self) -> Option<sweep_coordinator::status::Query> {
        let asked = self.trials
            || self.state.is_some()
            || self.experiment.is_some()
            || self.trial.is_some()
            || self.offset.is_some();
        asked.then(|| sweep_coordinator::status::Query {
            offset: self.offset.unwrap_or(0),
            limit: self.limit,
            state: self.state.as_deref().and_then(|s| s.parse().ok()),
            experiment: self.experiment.clone(),
            trial: self.trial.clone(),
            ..Default::default()
        })
    }
}

/// How an operator command reaches the coordinator.
#[derive(Debug, clap::Args)]
struct ClientArgs {
    /// The coordinator's gRPC address: http:// or https:// URL, or HOST:PORT.
    #[arg(long, value_name = "URL", default_value = "http://127.0.0.1:50051", value_parser = sweep_proto::auth::coordinator_url)]
    addr: String,
    /// File holding the operator token (or set SWEEP_OPERATOR_TOKEN to the token).
    #[arg(long, value_name = "FILE")]
    token_file: Option<PathBuf>,
    /// TLS: the CA certificate (PEM) that signed the coordinator's (the URL is then https://).
    #[arg(long, value_name = "FILE")]
    tls_ca: Option<PathBuf>,
}

impl ClientArgs {
    fn access(&self) -> anyhow::Result<sweep_coordinator::status::client::Access> {
        let bearer = match token(self.token_file.as_deref(), "SWEEP_OPERATOR_TOKEN")? {
            Some(t) => sweep_proto::Bearer::new(&t.value)
                .ok_or_else(|| anyhow::anyhow!("the token has characters a header cannot carry"))?,
            None => sweep_proto::Bearer::none(),
        };
        let tls_ca = match &self.tls_ca {
            Some(p) => Some(read_file(p, "CA certificate")?),
            None => None,
        };
        Ok(sweep_coordinator::status::client::Access { bearer, tls_ca })
    }
}

/// A PEM file, by the bounded reader (a regular file of at most 1 MiB).
fn read_file(path: &Path, what: &str) -> anyhow::Result<Vec<u8>> {
    Ok(read_small(path, what, MAX_PEM_FILE_BYTES)?.bytes)
}

/// The token in `file` or `env` (see `sweep_proto::auth::read_token`), its warning logged.
fn token(file: Option<&Path>, env: &str) -> anyhow::Result<Option<sweep_proto::auth::Token>> {
    let token = sweep_proto::auth::read_token(file, env).map_err(anyhow::Error::msg)?;
    if let Some(w) = token.as_ref().and_then(|t| t.warning.as_deref()) {
        tracing::warn!("{w}");
    }
    Ok(token)
}

fn secret(
    file: Option<&Path>,
    env: &str,
) -> anyhow::Result<Option<sweep_coordinator::auth::Secret>> {
    let Some(token) = token(file, env)? else {
        return Ok(None);
    };
    let source = file.map_or_else(|| env.to_owned(), |p| p.display().to_string());
    sweep_coordinator::auth::Secret::new(&token.value, &source)
        .map(Some)
        .map_err(anyhow::Error::msg)
}

/// `8080` means `127.0.0.1:8080`; anything else must be a socket address.
fn parse_http_addr(s: &str) -> Result<SocketAddr, String> {
    if let Ok(port) = s.parse::<u16>() {
        return Ok(SocketAddr::from(([127, 0, 0, 1], port)));
    }
    s.parse()
        .map_err(|_| format!("{s:?} is neither HOST:PORT (127.0.0.1:8080) nor a port"))
}

impl TryFrom<Cli> for (Options, Grid) {
    type Error = anyhow::Error;

    fn try_from(cli: Cli) -> anyhow::Result<(Options, Grid)> {
        let grid_file = cli
            .grid
            .ok_or_else(|| anyhow::anyhow!("--grid FILE is required to run a sweep"))?;
        let mut grid = Grid::from_file_with(&grid_file, &sweep_data::npz::GridReader)?;
        grid.select(&cli.only)?;
        if cli.progress_every.is_zero() {
            anyhow::bail!(
                "--progress-every must be greater than 0 (it is how often a progress line is logged)"
            );
        }
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
        options.state_dir = cli.state_dir;
        options.tokens = sweep_coordinator::auth::Tokens {
            worker: secret(cli.worker_token_file.as_deref(), "SWEEP_WORKER_TOKEN")?,
            operator: secret(cli.operator_token_file.as_deref(), "SWEEP_OPERATOR_TOKEN")?,
        };
        if let (Some(w), Some(o)) = (&options.tokens.worker, &options.tokens.operator)
            && w.same_token(o)
        {
            anyhow::bail!(
                "the worker token and the operator token are the same: every worker could then \
                 cancel trials and read the sweep; make two tokens (openssl rand -hex 32)"
            );
        }
        if let (Some(cert), Some(key)) = (&cli.tls_cert, &cli.tls_key) {
            options.tls = Some(sweep_coordinator::Tls {
                cert: read_file(cert, "certificate")?,
                key: read_file(key, "private key")?,
                client_ca: cli
                    .tls_client_ca
                    .as_deref()
                    .map(|p| read_file(p, "client CA certificate"))
                    .transpose()?,
            });
        }
        // Fail closed: reachable from other machines means TLS and a worker token, or a
        // deliberate --insecure.
        let exposed = !cli.listen.ip().is_loopback();
        let protected = options.tls.is_some() && options.tokens.worker.is_some();
        if exposed && !protected && !cli.insecure {
            let mut missing = Vec::new();
            if options.tls.is_none() {
                missing.push("TLS (--tls-cert, --tls-key)");
            }
            if options.tokens.worker.is_none() {
                missing.push("a worker token (--worker-token-file or SWEEP_WORKER_TOKEN)");
            }
            anyhow::bail!(
                "--listen {} is not a loopback address, and {} missing: anyone who can reach it \
                 could take trials and report results. Add them, or pass --insecure on a network \
                 you trust",
                cli.listen,
                missing.join(" and ") + if missing.len() > 1 { " are" } else { " is" }
            );
        }
        options.insecure = exposed && !protected;
        options.lease_ttl = cli.lease_ttl;
        options.heartbeat_interval = cli.heartbeat;
        options.linger = cli.linger;
        options.progress_every = cli.progress_every;
        options.http = cli.http;
        options.retry_failed = cli.retry_failed;
        options.local = cli
            .local
            .spec(cli.worker_token_file.as_deref(), options.tls.is_some())?;
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

/// `coordinator report --out DIR`: prints every file written, or the error (see [`Exit`]);
/// writes nothing while a coordinator runs on DIR (it writes the report itself when its sweep
/// ends).
fn report(out: &Path) -> Exit {
    let _lock = if out.is_dir() {
        match sweep_coordinator::lock::DirLock::acquire(out, "output folder") {
            Ok(lock) => Some(lock),
            Err(e) => {
                eprintln!("error: {e}");
                return Exit::of_error(&e, false);
            }
        }
    } else {
        None
    };
    match sweep_coordinator::report::write(out) {
        Ok(paths) => {
            for p in paths.all() {
                println!("{}", p.display());
            }
            Exit::Success
        }
        Err(e) => {
            eprintln!("error: {e}");
            Exit::of_report_error(&e)
        }
    }
}

/// Where `coordinator plan` takes the workers' speed from.
enum SpeedFrom<'a> {
    /// Nowhere: no time estimate.
    Nothing,
    /// `--from DIR`: an earlier sweep's recorded epochs.
    Recorded(&'a Path),
    /// `--calibrate`: the models timed on this machine by this worker executable (`None`: the
    /// one next to the coordinator).
    Calibration(Option<PathBuf>),
}

/// `coordinator plan --grid FILE [--from DIR | --calibrate] [--workers SET]`: prints the plan,
/// or the error.
fn plan(grid_file: &Path, only: &[String], speed: SpeedFrom<'_>, workers: &str) -> Exit {
    use sweep_coordinator::plan;
    let fail = |e: &dyn std::fmt::Display| {
        eprintln!("error: {e}");
        Exit::CannotStart
    };
    let mut grid = match Grid::from_file_with(grid_file, &sweep_data::npz::GridReader) {
        Ok(g) => g,
        Err(e) => return fail(&e),
    };
    if let Err(e) = grid.select(only) {
        return fail(&e);
    }
    let kinds = match plan::parse_workers(workers) {
        Ok(w) => w,
        Err(e) => return fail(&format!("--workers {workers:?}: {e}")),
    };
    let (speed, source) = match speed {
        SpeedFrom::Nothing => (plan::Speed::Unknown, None),
        SpeedFrom::Recorded(dir) => match recorded_speed(dir) {
            Ok(found) => found,
            Err(e) => return fail(&e),
        },
        SpeedFrom::Calibration(worker) => match calibrated_speed(&grid, &kinds, worker) {
            Ok(found) => found,
            Err(e) => return fail(&e),
        },
    };
    let p = plan::plan(&grid, &speed, &kinds);
    print!("{}", plan::text(&p, workers, source.as_deref()));
    Exit::Success
}

/// `plan --from DIR`: the rate of the earlier sweep's recorded epochs, and the words for it.
fn recorded_speed(dir: &Path) -> Result<(sweep_coordinator::plan::Speed, Option<String>), String> {
    use sweep_coordinator::plan::Speed;
    let path = dir.join("results.json");
    let text = std::fs::read_to_string(&path)
        .map_err(|e| format!("--from: cannot read {}: {e}", path.display()))?;
    let results = sweep_coordinator::report::parse(&text, &path).map_err(|e| e.to_string())?;
    let (rate, epochs) = sweep_coordinator::plan::rate(&results)
        .ok_or_else(|| "--from: that sweep recorded no epoch to measure".to_owned())?;
    let source = format!(
        "from {epochs} epochs recorded in {}: {rate:.3e} s per parameter x image; every worker \
         assumed as fast as that sweep's",
        sweep_common::text::terminal(&dir.display().to_string())
    );
    Ok((Speed::Recorded(rate), Some(source)))
}

/// `plan --calibrate`: each distinct model timed by `worker --calibrate` on this machine, for
/// each kind of worker in `kinds`, and the words for it.
fn calibrated_speed(
    grid: &Grid,
    kinds: &[sweep_coordinator::plan::Kind],
    worker: Option<PathBuf>,
) -> Result<(sweep_coordinator::plan::Speed, Option<String>), String> {
    use sweep_coordinator::local::calibrate::{Lanes, calibrate};
    use sweep_coordinator::plan::{Kind, Speed};
    let worker = sweep_coordinator::local::find_worker(worker)?;
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let trials: Vec<_> = grid.experiments.iter().flat_map(|e| &e.trials).collect();
    let mut costs = std::collections::HashMap::new();
    let mut said = Vec::new();
    let mut failed = Vec::new();
    for kind in [Kind::Cpu, Kind::Gpu] {
        let count = kinds.iter().filter(|&&k| k == kind).count();
        if count == 0 {
            continue;
        }
        let lanes = match kind {
            Kind::Cpu => Lanes::cpu(count, cores),
            Kind::Gpu => Lanes::gpu(),
        };
        let outcomes = calibrate(&worker, trials.iter().copied(), lanes)?;
        said.push(format!("{} ({} models)", lanes.describe(), outcomes.len()));
        for (key, outcome) in outcomes {
            match outcome {
                sweep_common::calibration::Outcome::Measured(cost) => {
                    costs.insert((kind, key), cost);
                }
                sweep_common::calibration::Outcome::Failed { error } => {
                    failed.push(format!("{}: {error}", kind.name()));
                }
            }
        }
    }
    for f in &failed {
        eprintln!("warning: a model could not be calibrated: {f}");
    }
    let source = format!(
        "calibrated on this machine by {}: {}",
        worker.display(),
        said.join("; ")
    );
    Ok((Speed::Calibrated(costs), Some(source)))
}

/// `coordinator replay --results FILE --grid FILE [--workers N] [--experiment NAME] [--json]`:
/// prints what the grid's stopping rule would have done to the recorded sweep, or the error.
fn replay(
    results_file: &Path,
    grid_file: &Path,
    workers: Option<u32>,
    only: Option<&str>,
    json: bool,
) -> Exit {
    use sweep_coordinator::replay;
    let fail = |e: &dyn std::fmt::Display| {
        eprintln!("error: {e}");
        Exit::CannotStart
    };
    let grid = match Grid::from_file_with(grid_file, &sweep_data::npz::GridReader) {
        Ok(g) => g,
        Err(e) => return fail(&e),
    };
    let text = match std::fs::read_to_string(results_file) {
        Ok(t) => t,
        Err(e) => {
            return fail(&format!(
                "--results: cannot read {}: {e}",
                results_file.display()
            ));
        }
    };
    let results = match sweep_coordinator::report::parse(&text, results_file) {
        Ok(r) => r,
        Err(e) => return fail(&e),
    };
    let (grid_name, results_name) = (
        grid_file.display().to_string(),
        results_file.display().to_string(),
    );
    let experiments = match replay::experiments(&grid, &grid_name, only) {
        Ok(e) => e,
        Err(e) => return fail(&e),
    };
    let workers = workers.map_or_else(|| replay::recorded_workers(&results), |n| n as usize);
    let mut replays = Vec::with_capacity(experiments.len());
    for e in experiments {
        // `experiments` returns only experiments with a rule.
        let Some(spec) = e.stopping else { continue };
        match replay::recorded(e, &spec, &results, &results_name, &grid_name) {
            Ok(trials) => replays.push(replay::run(&e.name, &spec, &trials, workers)),
            Err(e) => return fail(&e),
        }
    }
    if json {
        match serde_json::to_string_pretty(&replays) {
            Ok(j) => println!("{j}"),
            Err(e) => return fail(&e),
        }
    } else {
        let texts: Vec<String> = replays.iter().map(replay::text).collect();
        print!("{}", texts.join("\n"));
    }
    Exit::Success
}

fn runtime() -> Option<tokio::runtime::Runtime> {
    match tokio::runtime::Runtime::new() {
        Ok(rt) => Some(rt),
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            None
        }
    }
}

/// `coordinator status --addr URL [--json] [--trials ...]`: prints the status (and a page of
/// trials), or the error (see [`Exit`]).
fn status(json: bool, trials: &TrialArgs, client: &ClientArgs) -> Exit {
    let addr = client.addr.as_str();
    let access = match client.access() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("error: {e}");
            return Exit::CannotStart;
        }
    };
    let Some(runtime) = runtime() else {
        return Exit::CannotStart;
    };
    let view = sweep_coordinator::status::View {
        detail: json,
        trials: trials.query(),
    };
    let snapshot = match runtime.block_on(sweep_coordinator::status::client::fetch(
        addr, &view, &access,
    )) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {}", terminal(&e.to_string()));
            return Exit::of_error(&e, false);
        }
    };
    if json {
        match serde_json::to_string_pretty(&snapshot) {
            Ok(text) => println!("{text}"),
            Err(e) => {
                eprintln!("error: cannot encode the status: {e}");
                return Exit::StoppedByError;
            }
        }
    } else {
        print!("{}", sweep_coordinator::status::text::block(&snapshot));
        if snapshot.page.is_some() {
            print!("{}", sweep_coordinator::status::text::trials(&snapshot));
        }
    }
    Exit::Success
}

/// `coordinator cancel ...`: prints what was cancelled, or the error (see [`Exit`]).
fn cancel(request: sweep_proto::v1::CancelRequest, client: &ClientArgs) -> Exit {
    let addr = client.addr.as_str();
    // What the coordinator would refuse is refused here, with the same words.
    let checked = sweep_proto::Cancel::try_from(&request).map(drop);
    naming_command(checked, client, |runtime, access| {
        let r = runtime.block_on(sweep_coordinator::status::client::cancel(
            addr, request, &access,
        ))?;
        Ok((format!("cancelled {} trials", r.cancelled), r.unknown))
    })
}

/// `coordinator retry ...`: prints how many trials were queued again, or the error (see [`Exit`]).
fn retry(request: sweep_proto::v1::RetryRequest, client: &ClientArgs) -> Exit {
    let addr = client.addr.as_str();
    let checked = sweep_proto::Retry::try_from(&request).map(drop);
    naming_command(checked, client, |runtime, access| {
        let r = runtime.block_on(sweep_coordinator::status::client::retry(
            addr, request, &access,
        ))?;
        Ok((
            format!("queued {} failed trials again", r.retried),
            r.unknown,
        ))
    })
}

/// `coordinator promote ...`: prints how many stopped trials resume, or the error (see [`Exit`]).
fn promote(request: sweep_proto::v1::PromoteRequest, client: &ClientArgs) -> Exit {
    let addr = client.addr.as_str();
    let checked = sweep_proto::Promote::try_from(&request).map(drop);
    let request_epochs = request.epochs;
    naming_command(checked, client, |runtime, access| {
        let r = runtime.block_on(sweep_coordinator::status::client::promote(
            addr, request, &access,
        ))?;
        let mut unknown = r.unknown;
        unknown.extend(
            r.not_stopped
                .into_iter()
                .map(|n| format!("{n} (not stopped)")),
        );
        let done = match request_epochs {
            0 => format!("promoted {} stopped trials", r.promoted),
            n => format!("promoted {} trials to {n} epochs", r.promoted),
        };
        Ok((done, unknown))
    })
}

/// An operator command that names trials and experiments (`cancel`, `retry`, `promote`): refused here when
/// the request is (`checked`); else `call` sends it and answers what it did and the names that
/// matched nothing, which make it end as [`Exit::TrialsFailed`].
fn naming_command(
    checked: Result<(), sweep_proto::DecodeError>,
    client: &ClientArgs,
    call: impl FnOnce(
        &tokio::runtime::Runtime,
        sweep_coordinator::status::client::Access,
    ) -> Result<(String, Vec<String>), sweep_coordinator::Error>,
) -> Exit {
    if let Err(e) = checked {
        eprintln!("error: {e}");
        return Exit::CannotStart;
    }
    let access = match client.access() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("error: {e}");
            return Exit::CannotStart;
        }
    };
    let Some(runtime) = runtime() else {
        return Exit::CannotStart;
    };
    match call(&runtime, access) {
        Ok((done, unknown)) => {
            println!("{done}");
            if unknown.is_empty() {
                Exit::Success
            } else {
                let unknown: Vec<String> =
                    unknown.iter().map(|n| terminal(n).into_owned()).collect();
                eprintln!("error: no trial or experiment named {}", unknown.join(", "));
                Exit::TrialsFailed
            }
        }
        Err(e) => {
            eprintln!("error: {}", terminal(&e.to_string()));
            Exit::of_error(&e, false)
        }
    }
}

/// mimalloc: the coordinator makes and drops a few small allocations per call (HTTP/2 frames,
/// protobuf messages, rows); glibc's malloc spent about 17 % of its time on them at 1 000 workers
/// (BENCHMARKS.md, "Control plane at scale").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let tty = std::io::stderr().is_terminal();
    let console = Console::new(tty);
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_ansi(tty)
        .with_writer(console.clone())
        .init();
    let cli = Cli::parse();
    let exit = match &cli.command {
        Some(command) => subcommand(command),
        None => sweep(cli, &console),
    };
    exit.into()
}

/// Runs one of the commands beside a sweep (`plan`, `status`, `report`, ...).
fn subcommand(command: &Command) -> Exit {
    match command {
        Command::Report { out } => report(out),
        Command::Replay {
            results,
            grid,
            workers,
            experiment,
            json,
        } => replay(results, grid, *workers, experiment.as_deref(), *json),
        Command::Plan {
            grid,
            only,
            from,
            workers,
            calibrate,
            worker_bin,
        } => {
            let speed = match (from, calibrate) {
                (Some(dir), _) => SpeedFrom::Recorded(dir),
                (None, true) => SpeedFrom::Calibration(worker_bin.clone()),
                (None, false) => SpeedFrom::Nothing,
            };
            plan(grid, only, speed, workers)
        }
        Command::Status {
            json,
            trials,
            client,
        } => status(*json, trials, client),
        Command::Cancel {
            trial,
            experiment,
            all,
            reason,
            client,
        } => {
            let request = sweep_proto::v1::CancelRequest {
                trials: trial.clone(),
                experiments: experiment.clone(),
                all: *all,
                reason: reason.clone(),
            };
            cancel(request, client)
        }
        Command::Retry {
            trial,
            experiment,
            failed,
            include_cancelled,
            client,
        } => {
            let request = sweep_proto::v1::RetryRequest {
                trials: trial.clone(),
                experiments: experiment.clone(),
                failed: *failed,
                include_cancelled: *include_cancelled,
            };
            retry(request, client)
        }
        Command::Promote {
            trial,
            experiment,
            epochs,
            client,
        } => {
            let request = sweep_proto::v1::PromoteRequest {
                trials: trial.clone(),
                experiments: experiment.clone(),
                // 0 means none on the wire; clap refuses it on the command line.
                epochs: epochs.unwrap_or(0),
            };
            promote(request, client)
        }
    }
}

/// Runs the sweep `cli` describes; says how it ended (see [`Exit`]).
fn sweep(cli: Cli, console: &Console) -> Exit {
    let (mut options, grid) = match <(Options, Grid)>::try_from(cli) {
        Ok(x) => x,
        Err(e) => {
            eprintln!("error: {e}");
            return Exit::CannotStart;
        }
    };
    options.console = console.clone();
    let Some(runtime) = runtime() else {
        return Exit::CannotStart;
    };
    // Whether it served: an error before that means it could not start.
    let serving = std::cell::Cell::new(false);
    let on_listen = |l: Listening| {
        serving.set(true);
        console.suspend(|| {
            println!("listening on {}", l.grpc);
            if let Some(http) = l.http {
                println!("http on {http}");
            }
        });
    };
    let result = runtime.block_on(run(options, grid, on_listen, shutdown_signal()));
    console.finish();
    match result {
        Ok(s) => {
            println!("results: {}", s.results.display());
            let exit = Exit::of_summary(&s);
            if exit == Exit::Interrupted {
                println!(
                    "stopped with {} trials unfinished ({} succeeded, {} failed)",
                    s.unfinished,
                    s.succeeded,
                    s.failed.len()
                );
                return exit;
            }
            println!("summary: {}", s.summary.display());
            if s.failed.is_empty() {
                println!("sweep finished: {} trials succeeded", s.succeeded);
            } else {
                println!(
                    "sweep finished: {} succeeded, {} failed:",
                    s.succeeded,
                    s.failed.len()
                );
                for (name, reason) in &s.failed {
                    println!("  {}: {}", terminal(name), terminal(reason));
                }
            }
            exit
        }
        Err(e) => {
            let exit = Exit::of_error(&e, serving.get());
            eprintln!("error: {e}");
            exit
        }
    }
}
