//! A program trial (issue 19): the user's own program, run as the worker's child the way a
//! supervisor runs one (kubelet, tini). It gets its own process group and a clean environment
//! (a few variables of the worker's, the grid's `env`, the trial's `SWEEP_*` and
//! `CUDA_VISIBLE_DEVICES`; never the worker's token); its stdout and stderr go to bounded log
//! files; told to stop, the whole group gets SIGTERM, then SIGKILL after the grace period, and
//! whatever is left of the group is killed when the program ends, so no orphan survives it.
//!
//! With the client library (`clients/python`), the program reports its epochs, asks whether to
//! stop and marks checkpoints over a Unix socket ([`channel`]); a checkpoint folder is packed
//! and uploaded ([`pack`]), and an attempt resuming from it finds it unpacked in
//! `SWEEP_RESUME_DIR`. The program runs under a [`supervisor`] that kills its whole process
//! group when the worker dies, so a worker killed outright leaves none of it running.
//!
//! Without the client library, the exit status decides: 0 succeeds, and a last stdout line that
//! is a JSON object with `test_accuracy` (and optionally `train_accuracy`, `train_loss`, in
//! percent and a loss) is the trial's one epoch of metrics. A non-zero status, or a signal the
//! worker did not send, fails the trial (`program_failed`) with the last lines of stderr; a
//! SIGKILL the worker did not send is taken for the kernel's out-of-memory killer.

use std::collections::VecDeque;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use sweep_common::grid::Value;
use sweep_common::program::ProgramSpec;
use sweep_common::{
    ConfusionMatrix, EpochMetrics, FailureKind, FinalMetrics, TrialResult, TrialSpec,
    trial::LogStream,
};
use tracing::{info, warn};

use crate::train::{Control, Progress, TrainError, Trained};

pub mod channel;
pub mod log;
pub mod pack;
pub mod supervisor;

/// Lines of stderr quoted in a failure's message.
const TAIL_LINES: usize = 20;
/// Largest final weights file read back, in bytes.
const MAX_WEIGHTS: u64 = 1 << 30;
/// How often the supervisor looks at the child and at its orders.
const POLL: Duration = Duration::from_millis(10);
/// The worker's variables a program inherits (the rest of its environment stays behind).
const INHERITED: &[&str] = &["PATH", "HOME", "LANG", "LC_ALL", "TZ", "TMPDIR", "USER"];

/// How a program runs on this worker.
#[derive(Debug, Clone)]
pub struct Options {
    /// The GPU it may use (`CUDA_VISIBLE_DEVICES`); none: the CPU (an empty
    /// `CUDA_VISIBLE_DEVICES`, so the program sees no GPU).
    pub gpu: Option<usize>,
    /// Between SIGTERM and SIGKILL.
    pub grace: Duration,
    /// Where the per-trial logs go.
    pub log_dir: PathBuf,
}

/// The checkpoint an attempt resumes from: the epoch it ends, and its archive ([`pack`]).
#[derive(Debug, Clone, Copy)]
pub struct Resume<'a> {
    /// The last epoch it holds.
    pub epoch: u32,
    /// The archive.
    pub archive: &'a [u8],
}

/// The trial's own files, in a temporary folder that goes when the trial ends.
struct Scratch {
    _dir: tempfile::TempDir,
    params: PathBuf,
    weights: PathBuf,
    socket: PathBuf,
    checkpoint: PathBuf,
    /// Where the checkpoint resumed from is unpacked, and the epoch it ends.
    resume: Option<(PathBuf, u32)>,
}

impl Scratch {
    fn new(resumed_from: Option<u32>) -> Result<Self, TrainError> {
        let dir = tempfile::Builder::new()
            .prefix("sweep-trial-")
            .tempdir()
            .map_err(|e| internal(format!("cannot make the trial's folder: {e}")))?;
        let at = |name: &str| dir.path().join(name);
        let checkpoint = at("checkpoint");
        let resume = resumed_from.map(|epoch| (at("resume"), epoch));
        for d in std::iter::once(&checkpoint).chain(resume.as_ref().map(|(d, _)| d)) {
            std::fs::create_dir(d)
                .map_err(|e| internal(format!("cannot make {}: {e}", d.display())))?;
        }
        Ok(Self {
            params: at("params.json"),
            weights: at("weights"),
            socket: at("channel.sock"),
            checkpoint,
            resume,
            _dir: dir,
        })
    }
}

/// The epochs of the checkpoint `resume`, unpacked into `dir`: those 1..=`resume.epoch`.
fn unpack_resume(resume: Resume<'_>, dir: &Path) -> Result<Vec<EpochMetrics>, TrainError> {
    let meta = pack::unpack(resume.archive, dir).map_err(|e| TrainError::Resume(e.to_string()))?;
    #[derive(serde::Deserialize)]
    struct Meta {
        epochs: Vec<EpochMetrics>,
    }
    let meta: Meta = serde_json::from_slice(&meta)
        .map_err(|e| TrainError::Resume(format!("not a program's checkpoint: {e}")))?;
    let numbered = meta.epochs.iter().zip(1..).all(|(m, i)| m.epoch == i);
    if !numbered || meta.epochs.len() != resume.epoch as usize {
        return Err(TrainError::Resume(format!(
            "the checkpoint of epoch {} does not hold epochs 1..={}",
            resume.epoch, resume.epoch
        )));
    }
    Ok(meta.epochs)
}

/// Runs `program` for `spec` to its end, or until `control` stops it; from the checkpoint
/// `resume` when given.
pub fn run(
    spec: &TrialSpec,
    program: &ProgramSpec,
    opts: &Options,
    progress: &mut dyn Progress,
    control: &Control,
    resume: Option<Resume<'_>>,
) -> Result<Trained, TrainError> {
    let started = Instant::now();
    let Prepared {
        scratch,
        done,
        listener,
        out_log,
        err_log,
    } = prepare(spec, program, opts, resume)?;
    let mut cmd = command(spec, program, opts, &scratch);
    let mut child = cmd.spawn().map_err(|e| TrainError::Program {
        kind: FailureKind::ProgramFailed,
        message: format!("cannot start {:?}: {e}", program.argv[0]),
    })?;
    // The child is the program's supervisor, a member of the program's process group.
    let pid = i32::try_from(child.id()).unwrap_or(i32::MAX);
    let group = process_group(pid);
    info!(trial = %spec.name, pid, group, "program started");
    let stdout = child
        .stdout
        .take()
        .map(|s| log::capture(s, &out_log, log::LOG_LIMIT, 1));
    let stderr = child
        .stderr
        .take()
        .map(|s| log::capture(s, &err_log, log::LOG_LIMIT, TAIL_LINES));

    let classes = spec.dataset.num_classes();
    let mut served = Served {
        listener,
        reports: channel::Reports {
            resumed_from: resume.map_or(0, |r| r.epoch),
            epochs: spec.params.epochs,
            classes,
            checkpoint_dir: scratch.checkpoint.clone(),
            done,
            confusion: None,
            reported: false,
        },
        progress,
        refused: None,
    };
    let (status, stopped) = supervise(&mut child, (pid, group), opts.grace, control, &mut served);
    let last_out = stdout.and_then(|h| h.join().ok()).unwrap_or_default();
    let tail = stderr.and_then(|h| h.join().ok()).unwrap_or_default();
    info!(trial = %spec.name, ?status, logs = %opts.log_dir.display(), "program ended");

    if stopped {
        // A lost lease's answer is never sent; a drained worker gives the lease back, free.
        return Err(TrainError::Stopped { epoch: 0 });
    }
    if let Some(refused) = served.refused {
        return Err(TrainError::Program {
            kind: FailureKind::ProgramFailed,
            message: format!("the program's client sent {refused}"),
        });
    }
    let status = status.map_err(|e| internal(format!("cannot wait for the program: {e}")))?;
    if !status.success() {
        return Err(failure(status, &tail));
    }
    let Served {
        reports, progress, ..
    } = served;
    let last_line = last_out.back().map(String::as_str);
    let weights = read_weights(&scratch.weights)?;
    Ok(trained(reports, progress, last_line, weights, started))
}

/// What a program trial needs before its program starts.
struct Prepared {
    /// Its scratch folder.
    scratch: Scratch,
    /// The epochs done before it, when it resumes.
    done: Vec<EpochMetrics>,
    /// The socket its client connects to.
    listener: channel::Listener,
    /// Where its standard output and error are kept.
    out_log: PathBuf,
    err_log: PathBuf,
}

/// The scratch folder (with the checkpoint to resume from unpacked), the hyperparameters file,
/// the client's socket and the log folder of `spec`'s program.
fn prepare(
    spec: &TrialSpec,
    program: &ProgramSpec,
    opts: &Options,
    resume: Option<Resume<'_>>,
) -> Result<Prepared, TrainError> {
    let scratch = Scratch::new(resume.map(|r| r.epoch))?;
    let params = &scratch.params;
    let done = match (resume, &scratch.resume) {
        (Some(r), Some((dir, _))) => unpack_resume(r, dir)?,
        _ => Vec::new(),
    };
    std::fs::write(params, params_json(spec, program).to_string())
        .map_err(|e| internal(format!("cannot write the hyperparameters file: {e}")))?;
    let listener = channel::Listener::bind(&scratch.socket)
        .map_err(|e| internal(format!("cannot make the program's socket: {e}")))?;
    std::fs::create_dir_all(&opts.log_dir).map_err(|e| {
        internal(format!(
            "cannot make the log folder {}: {e}",
            opts.log_dir.display()
        ))
    })?;
    let out_log = log::path(&opts.log_dir, spec, LogStream::Stdout);
    let err_log = log::path(&opts.log_dir, spec, LogStream::Stderr);

    Ok(Prepared {
        scratch,
        done,
        listener,
        out_log,
        err_log,
    })
}

/// The result of a program that ended well: the epochs its client reported, else the metrics
/// of its last line of standard output (given to `progress` as its only epoch).
fn trained(
    reports: channel::Reports,
    progress: &mut dyn Progress,
    last_line: Option<&str>,
    weights: Vec<u8>,
    started: Instant,
) -> Trained {
    let classes = reports.classes;
    let epochs = if reports.reported {
        reports.done
    } else {
        let epochs = final_metrics(last_line)
            .map(|m| vec![m])
            .unwrap_or_default();
        for m in &epochs {
            progress.epoch(m);
        }
        epochs
    };
    let last = epochs.last();
    let (train_accuracy, test_accuracy) =
        last.map_or((0.0, 0.0), |m| (m.train_accuracy, m.test_accuracy));
    Trained {
        result: TrialResult {
            epochs,
            last: FinalMetrics {
                train_accuracy,
                test_accuracy,
                // The program's own split is not the sweep's: an empty training matrix, and the
                // test matrix it last reported, if any.
                train_confusion: ConfusionMatrix::zeros(classes),
                test_confusion: reports
                    .confusion
                    .unwrap_or_else(|| ConfusionMatrix::zeros(classes)),
                train_seconds: started.elapsed().as_secs_f64(),
                dataset_images: 0,
            },
        },
        weights,
    }
}

fn internal(message: String) -> TrainError {
    TrainError::Program {
        kind: FailureKind::Internal,
        message,
    }
}

/// The hyperparameters file: the built-in ones the trial names, and the program's own.
fn params_json(spec: &TrialSpec, program: &ProgramSpec) -> serde_json::Value {
    let mut all = serde_json::Map::new();
    for (param, value) in spec.params.named() {
        let v = match value {
            Value::Choice(c) => serde_json::Value::from(c.name),
            Value::Text(t) => serde_json::Value::from(t),
            Value::Int(i) => serde_json::Value::from(i),
            Value::Float(x) => serde_json::Value::from(x),
        };
        all.insert(param.key().to_owned(), v);
    }
    if let serde_json::Value::Object(own) = program.params_json() {
        all.extend(own);
    }
    serde_json::Value::Object(all)
}

/// The program's command: its own process group, a clean environment, no stdin; it dies with
/// the thread that starts it.
fn command(spec: &TrialSpec, program: &ProgramSpec, opts: &Options, scratch: &Scratch) -> Command {
    let mut cmd = Command::new(&program.argv[0]);
    cmd.args(&program.argv[1..])
        .env_clear()
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    supervisor::install(&mut cmd);
    for var in INHERITED {
        if let Some(v) = std::env::var_os(var) {
            cmd.env(var, v);
        }
    }
    cmd.envs(&program.env);
    let gpu = opts.gpu.map(|g| g.to_string()).unwrap_or_default();
    cmd.env("CUDA_VISIBLE_DEVICES", gpu)
        .env("SWEEP_PARAMS", &scratch.params)
        .env("SWEEP_WEIGHTS", &scratch.weights)
        .env("SWEEP_SOCKET", &scratch.socket)
        .env("SWEEP_CHECKPOINT_DIR", &scratch.checkpoint)
        .env("SWEEP_TRIAL_ID", spec.id.to_string())
        .env("SWEEP_TRIAL_NAME", &spec.name)
        .env("SWEEP_EXPERIMENT", &spec.experiment)
        .env("SWEEP_EPOCHS", spec.params.epochs.to_string())
        .env("SWEEP_SEED", spec.params.seed.to_string());
    if let Some((dir, epoch)) = &scratch.resume {
        cmd.env("SWEEP_RESUME_DIR", dir)
            .env("SWEEP_RESUME_EPOCH", epoch.to_string());
    }
    if let Some(w) = &program.workdir {
        cmd.current_dir(w);
    }
    cmd
}

/// The program's side of the trial while it runs: its channel, what it reported, and the
/// first request refused.
struct Served<'a> {
    listener: channel::Listener,
    reports: channel::Reports,
    progress: &'a mut dyn Progress,
    refused: Option<String>,
}

impl Served<'_> {
    /// Answers the program's next request within `wait`, if any; a refusal is kept (the first
    /// one is the trial's failure).
    fn serve(&mut self, wait: Duration, control: &Control) {
        let Some(mut call) = self.listener.next(wait) else {
            return;
        };
        let request = std::mem::replace(&mut call.request, Err(String::new()));
        let answer = request.and_then(|r| self.reports.handle(r, &mut *self.progress));
        let answer = match answer {
            Ok(()) => {
                Ok(control.stop.load(Ordering::Relaxed) || control.drain.load(Ordering::Relaxed))
            }
            Err(e) => {
                warn!(error = %e, "the program's request is refused: stopping it");
                self.refused.get_or_insert_with(|| e.clone());
                Err(e)
            }
        };
        call.answer(answer);
    }
}

/// Waits for the program, stopping it when `control` says so (the lease is lost, the trial
/// cancelled, the worker draining) or when it sent a request that was refused, and answering
/// its requests meanwhile; then kills what is left of its group. `child` is the program's
/// [`supervisor`] (`pid`), a member of its process `group`. Answers its exit status (the
/// program's) and whether the worker stopped it for `control`.
fn supervise(
    child: &mut Child,
    (pid, group): (i32, i32),
    grace: Duration,
    control: &Control,
    served: &mut Served<'_>,
) -> (std::io::Result<ExitStatus>, bool) {
    let told = || control.stop.load(Ordering::Relaxed) || control.drain.load(Ordering::Relaxed);
    let mut stopped: Option<Instant> = None;
    let mut killed = false;
    loop {
        match exited(pid) {
            Ok(true) => break,
            Ok(false) => {}
            Err(e) => {
                signal_group(group, libc::SIGKILL);
                let _ = child.wait();
                return (Err(e), stopped.is_some() && told());
            }
        }
        match stopped {
            None => {
                if told() || served.refused.is_some() {
                    signal_group(group, libc::SIGTERM);
                    stopped = Some(Instant::now());
                }
            }
            Some(since) if !killed && since.elapsed() >= grace => {
                warn!(
                    pid = group,
                    "the program did not end within its grace period: killing it"
                );
                signal_group(group, libc::SIGKILL);
                killed = true;
            }
            Some(_) => {}
        }
        served.serve(POLL, control);
    }
    // The supervisor killed the rest of the group as the program ended; should it have been
    // killed alone (by the out-of-memory killer, say), the group goes now.
    signal_group(group, libc::SIGKILL);
    (child.wait(), stopped.is_some() && told())
}

/// The process group of our child `pid` (itself if it has none we can read).
#[allow(unsafe_code)]
fn process_group(pid: i32) -> i32 {
    // SAFETY: getpgid(2) only reads; `pid` is our child, not reaped yet.
    let group = unsafe { libc::getpgid(pid) };
    if group > 1 { group } else { pid }
}

/// Whether the child `pid` has ended, without reaping it (`waitid` with `WNOWAIT`).
#[allow(unsafe_code)]
fn exited(pid: i32) -> std::io::Result<bool> {
    let id = libc::id_t::try_from(pid).map_err(|_| std::io::Error::other("bad pid"))?;
    // SAFETY: `info` is a plain struct waitid fills; the call only reads our child's state.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    let flags = libc::WEXITED | libc::WNOHANG | libc::WNOWAIT;
    // SAFETY: see above; `info` outlives the call.
    let r = unsafe { libc::waitid(libc::P_PID, id, &mut info, flags) };
    if r != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: with WNOHANG, si_pid is 0 until the child has changed state.
    Ok(unsafe { info.si_pid() } != 0)
}

/// Sends `signal` to every process of `group` (none left is fine).
#[allow(unsafe_code)]
fn signal_group(group: i32, signal: i32) {
    if group > 1 {
        // SAFETY: kill(2) with a negative pid signals a process group; it touches no memory.
        unsafe {
            libc::kill(-group, signal);
        }
    }
}

/// The failure of a program that did not exit 0 on its own.
fn failure(status: ExitStatus, tail: &VecDeque<String>) -> TrainError {
    let stderr = if tail.is_empty() {
        "(nothing on stderr)".to_owned()
    } else {
        tail.iter().cloned().collect::<Vec<_>>().join(" | ")
    };
    let (kind, what) = match (status.code(), status.signal()) {
        (Some(code), _) => (
            FailureKind::ProgramFailed,
            format!("the program exited with status {code}"),
        ),
        (None, Some(libc::SIGKILL)) => (
            FailureKind::OutOfMemory,
            "the program was killed by SIGKILL, which the worker did not send (the kernel's \
             out-of-memory killer?)"
                .to_owned(),
        ),
        (None, Some(signal)) => (
            FailureKind::ProgramFailed,
            format!(
                "the program died of signal {signal} ({})",
                signal_name(signal)
            ),
        ),
        (None, None) => (
            FailureKind::ProgramFailed,
            format!("the program ended: {status}"),
        ),
    };
    TrainError::Program {
        kind,
        message: format!("{what}; last lines of stderr: {stderr}"),
    }
}

fn signal_name(signal: i32) -> &'static str {
    match signal {
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGABRT => "SIGABRT",
        libc::SIGTERM => "SIGTERM",
        libc::SIGINT => "SIGINT",
        libc::SIGBUS => "SIGBUS",
        libc::SIGFPE => "SIGFPE",
        libc::SIGILL => "SIGILL",
        _ => "a signal",
    }
}

/// The metrics of a program's last stdout line, when it is a JSON object with `test_accuracy`;
/// its other numbers are scalars by name (those `sweep_common::metrics::check_scalar` accepts,
/// the first `MAX_SCALARS` in name order).
fn final_metrics(line: Option<&str>) -> Option<EpochMetrics> {
    let v: serde_json::Value = serde_json::from_str(line?.trim()).ok()?;
    let number = |key: &str| v.get(key).and_then(serde_json::Value::as_f64);
    let scalars = v
        .as_object()?
        .iter()
        .filter_map(|(k, x)| Some((k.as_str(), x.as_f64()?)))
        .filter(|(k, x)| sweep_common::metrics::check_scalar(k, *x).is_ok())
        .take(sweep_common::metrics::MAX_SCALARS)
        .collect();
    Some(EpochMetrics {
        epoch: 1,
        test_accuracy: number("test_accuracy")?,
        train_accuracy: number("train_accuracy").unwrap_or(0.0),
        train_loss: number("train_loss").unwrap_or(0.0),
        seconds: number("seconds").unwrap_or(0.0),
        scalars,
    })
}

/// The final weights the program wrote at `SWEEP_WEIGHTS`, or none (an empty file).
fn read_weights(path: &Path) -> Result<Vec<u8>, TrainError> {
    match std::fs::metadata(path) {
        Ok(m) if m.len() > MAX_WEIGHTS => Err(TrainError::Program {
            kind: FailureKind::ProgramFailed,
            message: format!(
                "the final weights are {} bytes, more than {MAX_WEIGHTS}",
                m.len()
            ),
        }),
        Ok(_) => {
            std::fs::read(path).map_err(|e| internal(format!("cannot read the final weights: {e}")))
        }
        Err(_) => Ok(Vec::new()),
    }
}

#[cfg(test)]
mod tests;
