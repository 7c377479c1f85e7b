//! `worker`: trains the trials a coordinator hands out. See README.md.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{ArgGroup, Parser};
use sweep_proto::Bearer;
use sweep_worker::download::Downloads;
use sweep_worker::{ClientTls, DeviceChoice, Exit, Options, Slots, run};

/// Trains the trials of a sweep on one device, leasing them from a coordinator.
#[derive(Debug, Parser)]
#[command(name = "worker", version, group(ArgGroup::new("device").required(true).args(["gpu", "cpu"])))]
struct Cli {
    /// Train on CUDA device N (fails if CUDA is not available; never falls back to the CPU).
    #[arg(long, value_name = "N")]
    gpu: Option<usize>,
    /// Train on the CPU.
    #[arg(long)]
    cpu: bool,
    /// The coordinator's address: an http:// or https:// URL, or HOST:PORT.
    #[arg(long, value_name = "URL", default_value = "http://127.0.0.1:50051", value_parser = sweep_proto::auth::coordinator_url)]
    coordinator: String,
    /// Folder holding the datasets (Fashion-MNIST gzip IDX files, CIFAR-10 batches or archives).
    #[arg(
        long,
        value_name = "DIR",
        env = "SWEEP_DATA_DIR",
        default_value = "data"
    )]
    data_dir: PathBuf,
    /// Never download a dataset missing from --data-dir (by default it is downloaded from its
    /// official source, checked against its published MD5 and saved in --data-dir).
    #[arg(long, env = "SWEEP_OFFLINE", value_parser = clap::builder::BoolishValueParser::new())]
    offline: bool,
    /// Download datasets from URL/FILE (e.g. URL/cifar-10-binary.tar.gz) instead of their
    /// official sources; checksums are checked all the same. Ignored with --offline.
    #[arg(long, value_name = "URL", env = "SWEEP_MIRROR", value_parser = parse_mirror)]
    mirror: Option<String>,
    /// Trials to train at once on this device (1-64), or `auto`: one trial first, then as many
    /// as the free device memory holds at the memory that trial was measured to use (on the CPU
    /// at most the cores divided by --threads).
    #[arg(long, value_name = "K|auto", default_value = "1", value_parser = parse_slots)]
    slots: Slots,
    /// libtorch threads [default: all cores].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1024))]
    threads: Option<u32>,
    /// On a GPU, queue every trial's work on the device's default stream instead of giving each
    /// trial a CUDA stream of its own (to measure what separate streams bring with --slots).
    #[arg(long)]
    no_cuda_streams: bool,
    /// Name shown by the coordinator [default: HOST-PID].
    #[arg(long, value_name = "NAME")]
    name: Option<String>,
    /// How long to keep trying to reach the coordinator before giving up.
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = humantime::parse_duration)]
    patience: Duration,
    /// On SIGTERM, how long each trial may take to finish its epoch, upload a checkpoint of it
    /// and give its lease back before it is stopped outright (keep it under Kubernetes'
    /// terminationGracePeriodSeconds).
    #[arg(long, value_name = "DURATION", default_value = "20s", value_parser = humantime::parse_duration)]
    drain_timeout: Duration,
    /// File holding the worker token the coordinator expects (or set SWEEP_TOKEN to the token;
    /// never pass a token as an argument, `ps` shows arguments to everyone).
    #[arg(long, value_name = "FILE")]
    token_file: Option<PathBuf>,
    /// TLS: the CA certificate (PEM) that signed the coordinator's; its URL is then https://.
    #[arg(long, value_name = "FILE")]
    tls_ca: Option<PathBuf>,
    /// Mutual TLS: this worker's certificate (PEM), for a coordinator that asks for one.
    #[arg(long, value_name = "FILE", requires_all = ["tls_key", "tls_ca"])]
    tls_cert: Option<PathBuf>,
    /// Mutual TLS: this worker's private key (PEM).
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Tests only: train nothing, with a deterministic stand-in taking this long per epoch.
    #[arg(long, value_name = "DURATION", hide = true, value_parser = humantime::parse_duration)]
    test_trainer: Option<Duration>,
    /// Connect to no coordinator: time the models of the trial specs given on standard input
    /// (one JSON line each) on this device and print one JSON line of seconds per image each
    /// (what `coordinator plan --calibrate` runs).
    #[arg(long, conflicts_with = "test_trainer")]
    calibrate: bool,
}

/// A PEM file, by the bounded reader (a regular file of at most 1 MiB).
fn read(path: &std::path::Path, what: &str) -> Result<Vec<u8>, String> {
    sweep_common::files::read_small(path, what, sweep_common::files::MAX_PEM_FILE_BYTES)
        .map(|f| f.bytes)
        .map_err(|e| e.to_string())
}

impl TryFrom<Cli> for Options {
    type Error = String;

    fn try_from(cli: Cli) -> Result<Options, String> {
        let token = sweep_proto::auth::read_token(cli.token_file.as_deref(), "SWEEP_TOKEN")?;
        if let Some(w) = token.as_ref().and_then(|t| t.warning.as_deref()) {
            tracing::warn!("{w}");
        }
        let bearer = match token {
            Some(token) => Bearer::new(&token.value)
                .ok_or_else(|| "the token has characters an HTTP header cannot carry".to_owned())?,
            None => Bearer::none(),
        };
        let tls = match &cli.tls_ca {
            Some(ca) => Some(ClientTls {
                ca: read(ca, "CA certificate")?,
                identity: match (&cli.tls_cert, &cli.tls_key) {
                    (Some(c), Some(k)) => Some((read(c, "certificate")?, read(k, "private key")?)),
                    _ => None,
                },
            }),
            None => None,
        };
        let device = match cli.gpu {
            Some(n) => DeviceChoice::Cuda(n),
            None => DeviceChoice::Cpu,
        };
        let name = cli.name.unwrap_or_else(|| {
            let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
                .map(|h| h.trim().to_owned())
                .unwrap_or_else(|_| "worker".to_owned());
            format!("{host}-{}", std::process::id())
        });
        // What the coordinator would refuse at registration.
        sweep_common::text::check(&name, sweep_proto::MAX_NAME_CHARS)
            .map_err(|p| format!("--name {:?}: {p}", sweep_common::text::terminal(&name)))?;
        Ok(Options {
            bearer,
            tls,
            coordinator: cli.coordinator,
            device,
            data_dir: cli.data_dir,
            downloads: Downloads {
                offline: cli.offline,
                mirror: cli.mirror,
                ..Downloads::official()
            },
            slots: cli.slots,
            threads: cli.threads.map(|t| t as usize),
            cuda_streams: !cli.no_cuda_streams,
            name,
            patience: cli.patience,
            drain_timeout: cli.drain_timeout,
            test_trainer: cli.test_trainer,
        })
    }
}

/// `auto` or a number of slots in 1..=64.
fn parse_slots(s: &str) -> Result<Slots, String> {
    if s == "auto" {
        return Ok(Slots::Auto);
    }
    match s.parse::<u32>() {
        Ok(k @ 1..=64) => Ok(Slots::Fixed(k)),
        _ => Err(format!(
            "{s:?} is neither a number of slots from 1 to 64 nor `auto`"
        )),
    }
}

/// A mirror is an http(s) URL.
fn parse_mirror(s: &str) -> Result<String, String> {
    if s.starts_with("http://") || s.starts_with("https://") {
        Ok(s.to_owned())
    } else {
        Err(format!("{s:?} is not an http:// or https:// URL"))
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
    if cli.gpu.is_none() {
        // Before any other thread starts (see its doc).
        sweep_worker::device::single_malloc_arena();
    }
    if cli.calibrate {
        return calibrate(&cli);
    }
    let options = match Options::try_from(cli) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("error: {e}");
            return Exit::Usage.into();
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return Exit::Internal.into();
        }
    };
    // Past the drain timeout, trials are stopped; a few more seconds to tell the coordinator,
    // then the worker exits whatever happens (a coordinator that is gone cannot hold it up; its
    // leases expire by themselves).
    let hard_deadline = options.drain_timeout + Duration::from_secs(10);
    let result = runtime.block_on(async {
        let (tx, rx) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            wait_for_signal().await;
            tracing::warn!("signal received: finishing up (leases are given back)");
            let _ = tx.send(true);
            tokio::time::sleep(hard_deadline).await;
            tracing::error!("could not finish up in time; exiting");
            std::process::exit(Exit::Stopped.code().into());
        });
        run(options, rx).await
    });
    // The one mapping to exit codes: see `sweep_worker::exit`.
    match result {
        Ok(end) => end.exit().into(),
        Err(e) => {
            eprintln!("error: {e}");
            e.exit().into()
        }
    }
}

/// `worker --calibrate`: answers the calibration requests on standard input.
fn calibrate(cli: &Cli) -> ExitCode {
    sweep_worker::device::tune_malloc();
    let choice = match cli.gpu {
        Some(n) => DeviceChoice::Cuda(n),
        None => DeviceChoice::Cpu,
    };
    let info = match sweep_worker::device::open(choice) {
        Ok(i) => i,
        Err(e) => {
            eprintln!("error: {e}");
            return sweep_worker::Error::from(e).exit().into();
        }
    };
    if let Some(threads) = cli.threads {
        tch::set_num_threads(i32::try_from(threads).unwrap_or(i32::MAX));
    }
    let stdin = std::io::stdin().lock();
    let stdout = std::io::stdout().lock();
    match sweep_worker::calibrate::run(info.device, stdin, stdout) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: calibration: {e}");
            Exit::Internal.into()
        }
    }
}

async fn wait_for_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
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
