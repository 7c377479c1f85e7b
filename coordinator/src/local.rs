//! Local workers: `coordinator --local-workers N` and `--local-gpus LIST` start `worker`
//! processes as the coordinator's children, on loopback, so that one command runs a sweep on
//! one machine. Each runs in a process group of its own (a Ctrl-C on the terminal reaches the
//! coordinator only, which then stops them in order), writes its log to `OUT/logs/NAME.log`,
//! is restarted when it crashes (bounded, [`restart`]), and is stopped at the end: given time to
//! exit on its own after the sweep ends, then SIGTERM to its group (it drains: finishes its
//! epoch, checkpoints it, gives its lease back), a grace period, then SIGKILL to the group.
//! Every child is reaped before the coordinator exits. Remote workers can join as well.

pub mod calibrate;
pub mod restart;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::sync::{mpsc, oneshot, watch};
use tracing::{error, info, warn};

use restart::{Decision, Ended, Restarts};

/// How long a worker told to stop (SIGTERM) may take before its group is killed: its own drain
/// timeout (the worker's `--drain-timeout`, 20 s by default) and a margin.
pub const GRACE: Duration = Duration::from_secs(30);

/// One local worker's device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Device {
    /// The CPU, with this many libtorch threads.
    Cpu {
        /// `--threads`.
        threads: u32,
    },
    /// CUDA device N, with `--slots auto`.
    Gpu(u32),
}

/// What local workers to start, and how.
#[derive(Debug, Clone)]
pub struct Spec {
    /// One entry per worker.
    pub devices: Vec<Device>,
    /// The `worker` executable.
    pub program: PathBuf,
    /// `--data-dir` for every worker (none: the worker's default, or `SWEEP_DATA_DIR`).
    pub data_dir: Option<PathBuf>,
    /// The worker token's file, when the coordinator reads its token from one.
    pub token_file: Option<PathBuf>,
    /// More arguments for every worker.
    pub args: Vec<String>,
}

impl Spec {
    /// The workers' names, in order: `local-cpu-1`, ..., `local-gpu-0`, ...
    pub fn names(&self) -> Vec<String> {
        let mut cpu = 0;
        self.devices
            .iter()
            .map(|d| match d {
                Device::Cpu { .. } => {
                    cpu += 1;
                    format!("local-cpu-{cpu}")
                }
                Device::Gpu(n) => format!("local-gpu-{n}"),
            })
            .collect()
    }
}

/// The address a local worker reaches a coordinator bound to `addr` at: the same port on
/// loopback when it is bound to every address.
pub fn loopback_url(addr: SocketAddr) -> String {
    let ip = match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    format!("http://{}", SocketAddr::new(ip, addr.port()))
}

/// The `worker` executable: `given` (`--worker-bin`, `SWEEP_WORKER_BIN`), else the one next to
/// this program's.
pub fn find_worker(given: Option<PathBuf>) -> Result<PathBuf, String> {
    let (path, how) = match given {
        Some(p) => (p, "--worker-bin (or SWEEP_WORKER_BIN)"),
        None => {
            let me = std::env::current_exe()
                .map_err(|e| format!("cannot tell where the coordinator's executable is: {e}"))?;
            let dir = me.parent().unwrap_or(Path::new("."));
            (dir.join("worker"), "next to the coordinator")
        }
    };
    if path.is_file() {
        Ok(path)
    } else {
        Err(format!(
            "local workers need the worker executable: {} ({how}) is not a file; build it \
             (cargo build --release --bins) or give --worker-bin PATH",
            path.display()
        ))
    }
}

/// The GPUs `nvidia-smi` lists, for `--local-gpus all`.
pub fn all_gpus() -> Result<Vec<u32>, String> {
    let out = std::process::Command::new("nvidia-smi")
        .args(["--query-gpu=index", "--format=csv,noheader"])
        .output()
        .map_err(|e| {
            format!("--local-gpus all: cannot run nvidia-smi to list the GPUs ({e}); name them: --local-gpus 0,1")
        })?;
    if !out.status.success() {
        return Err(format!(
            "--local-gpus all: nvidia-smi failed ({}); name the GPUs: --local-gpus 0,1",
            out.status
        ));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let gpus: Vec<u32> = text.lines().filter_map(|l| l.trim().parse().ok()).collect();
    if gpus.is_empty() {
        return Err("--local-gpus all: nvidia-smi lists no GPU".to_owned());
    }
    Ok(gpus)
}

/// The local workers of a running coordinator.
pub struct Supervisor {
    /// `Some(wait)`: stop, after waiting this long for each worker to exit on its own.
    stop: watch::Sender<Option<Duration>>,
    /// A message from each worker given up.
    gave_up: mpsc::UnboundedReceiver<String>,
    /// How many workers have not been given up.
    alive: usize,
    /// One task per worker.
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Supervisor {
    /// Starts the workers of `spec` against the coordinator at `url`, logging into `logs`.
    pub fn start(spec: &Spec, url: &str, logs: &Path) -> Supervisor {
        let (stop, stopped) = watch::channel(None);
        let (gave_up_tx, gave_up) = mpsc::unbounded_channel();
        if let Err(e) = std::fs::create_dir_all(logs) {
            warn!(path = %logs.display(), error = %e, "cannot create the local workers' log folder");
        }
        let tasks = spec
            .names()
            .into_iter()
            .zip(&spec.devices)
            .map(|(name, device)| {
                let slot = Slot {
                    command: command(spec, *device, &name, url),
                    log: logs.join(format!("{name}.log")),
                    name,
                };
                tokio::spawn(supervise(slot, stopped.clone(), gave_up_tx.clone()))
            })
            .collect();
        Supervisor {
            stop,
            gave_up,
            alive: spec.devices.len(),
            tasks,
        }
    }

    /// Resolves when every local worker has been given up, with why.
    pub async fn all_gave_up(&mut self) -> String {
        let mut reasons = Vec::new();
        while self.alive > 0 {
            match self.gave_up.recv().await {
                Some(why) => {
                    reasons.push(why);
                    self.alive -= 1;
                }
                // Every task ended without giving up: they finished; never resolve.
                None => std::future::pending::<()>().await,
            }
        }
        reasons.join("; ")
    }

    /// Stops the workers: waits up to `wait` for each to exit on its own, then SIGTERM, the
    /// grace period, SIGKILL; returns when every one has been reaped.
    pub async fn stop(self, wait: Duration) {
        let _ = self.stop.send(Some(wait));
        for task in self.tasks {
            if let Err(e) = task.await {
                error!(error = %e, "a local worker's task failed");
            }
        }
    }
}

/// One local worker.
struct Slot {
    name: String,
    command: Command,
    log: PathBuf,
}

/// The command that starts one worker.
fn command(spec: &Spec, device: Device, name: &str, url: &str) -> Command {
    let mut c = Command::new(&spec.program);
    match device {
        Device::Cpu { threads } => c.args(["--cpu", "--threads", &threads.to_string()]),
        Device::Gpu(n) => c.args(["--gpu", &n.to_string(), "--slots", "auto"]),
    };
    c.args(["--coordinator", url, "--name", name]);
    if let Some(d) = &spec.data_dir {
        c.arg("--data-dir").arg(d);
    }
    match &spec.token_file {
        Some(f) => {
            c.arg("--token-file").arg(f);
        }
        None => {
            // The worker reads its token from SWEEP_TOKEN, the coordinator from
            // SWEEP_WORKER_TOKEN: the same token.
            if let Some(t) = std::env::var_os("SWEEP_WORKER_TOKEN") {
                c.env("SWEEP_TOKEN", t);
            }
        }
    }
    c.args(&spec.args)
        .stdin(Stdio::null())
        // Its own process group: the terminal's Ctrl-C reaches the coordinator only.
        .process_group(0);
    c
}

/// Runs one worker until it is done, given up, or stopped.
async fn supervise(
    mut slot: Slot,
    mut stop: watch::Receiver<Option<Duration>>,
    gave_up: mpsc::UnboundedSender<String>,
) {
    let mut restarts = Restarts::default();
    loop {
        let (pid, mut exit) = match spawn(&mut slot) {
            Ok(c) => c,
            Err(why) => {
                error!(worker = %slot.name, "cannot start the local worker: {why}");
                let _ = gave_up.send(format!("{}: {why}", slot.name));
                return;
            }
        };
        info!(worker = %slot.name, pid, log = %slot.log.display(), "local worker started");
        let ended = tokio::select! {
            s = &mut exit => exited(s),
            wait = stopped(&mut stop) => {
                end(pid, exit, &slot.name, wait).await;
                return;
            }
        };
        match restarts.on_exit(ended, Instant::now()) {
            Decision::Done => {
                info!(worker = %slot.name, pid, "local worker finished");
                return;
            }
            Decision::Restart { after } => {
                warn!(worker = %slot.name, pid, how = %ended, restart_in = ?after, log = %slot.log.display(), "local worker ended: restarting it");
                tokio::select! {
                    () = tokio::time::sleep(after) => {}
                    _ = stopped(&mut stop) => return,
                }
            }
            Decision::GiveUp { why } => {
                error!(worker = %slot.name, pid, log = %slot.log.display(), "local worker given up: {why}");
                let _ = gave_up.send(format!("{}: {why}; see {}", slot.name, slot.log.display()));
                return;
            }
        }
    }
}

/// Resolves with the wait asked for once the supervisor is told to stop (or dropped).
async fn stopped(stop: &mut watch::Receiver<Option<Duration>>) -> Duration {
    match stop.wait_for(Option::is_some).await {
        Ok(wait) => wait.unwrap_or_default(),
        Err(_) => Duration::ZERO,
    }
}

/// A child's exit, sent by the thread that waits for it.
type Exit = oneshot::Receiver<std::io::Result<ExitStatus>>;

/// Starts the worker, its output appended to its log; returns its pid and its exit, which a
/// blocking thread waits for (so it is always reaped).
fn spawn(slot: &mut Slot) -> Result<(u32, Exit), String> {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&slot.log)
        .map_err(|e| format!("cannot open its log {}: {e}", slot.log.display()))?;
    let err = log
        .try_clone()
        .map_err(|e| format!("cannot open its log {}: {e}", slot.log.display()))?;
    slot.command.stdout(log).stderr(err);
    let mut child = slot.command.spawn().map_err(|e| {
        format!(
            "cannot run {}: {e}",
            slot.command.get_program().to_string_lossy()
        )
    })?;
    let pid = child.id();
    let (tx, rx) = oneshot::channel();
    tokio::task::spawn_blocking(move || {
        let _ = tx.send(child.wait());
    });
    Ok((pid, rx))
}

/// How a child ended, from what its waiting thread sent.
fn exited(r: Result<std::io::Result<ExitStatus>, oneshot::error::RecvError>) -> Ended {
    use std::os::unix::process::ExitStatusExt;
    match r {
        Ok(Ok(status)) => match (status.code(), status.signal()) {
            (Some(c), _) => Ended::Code(c),
            (None, Some(s)) => Ended::Signal(s),
            (None, None) => Ended::Signal(0),
        },
        Ok(Err(e)) => {
            error!(error = %e, "cannot wait for a local worker");
            Ended::Signal(0)
        }
        Err(_) => Ended::Signal(0),
    }
}

/// Ends a running worker: up to `wait` for it to exit on its own, then SIGTERM to its group,
/// [`GRACE`], then SIGKILL to its group; it is reaped in every case.
async fn end(pid: u32, mut exit: Exit, name: &str, wait: Duration) {
    if let Ok(s) = tokio::time::timeout(wait, &mut exit).await {
        match exited(s) {
            Ended::Code(0) => info!(worker = %name, pid, "local worker finished"),
            how => warn!(worker = %name, pid, %how, "local worker exited"),
        }
        return;
    }
    let Ok(raw) = i32::try_from(pid) else {
        return;
    };
    // Not reaped yet (its thread waits for it), so the group is still its own.
    let group = Pid::from_raw(raw);
    info!(worker = %name, pid, "stopping the local worker (SIGTERM: it drains its trials)");
    if let Err(e) = killpg(group, Signal::SIGTERM) {
        warn!(worker = %name, pid, error = %e, "cannot signal the local worker");
    }
    match tokio::time::timeout(GRACE, &mut exit).await {
        Ok(s) => info!(worker = %name, how = %exited(s), "local worker stopped"),
        Err(_) => {
            warn!(worker = %name, pid, grace = ?GRACE, "the local worker did not stop in time: killing it");
            let _ = killpg(group, Signal::SIGKILL);
            let _ = exit.await;
        }
    }
}
