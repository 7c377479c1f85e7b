//! Harness of the end-to-end tests: runs the real `coordinator` and `worker` binaries as child
//! processes on 127.0.0.1, writes their grid files and dataset fixtures into a temporary folder,
//! and reads back what they produce.
//!
//! Every process is killed when its guard drops, and a failing test prints the output of every
//! process it started and the `results.json` it got (see [`Process`] and [`Sweep`]).
//!
//! Set `SWEEP_TESTS_LOGS=1` to print them for passing tests too (with `--nocapture`).
//!
//! The binaries are looked for in `$SWEEP_BIN_DIR`, else next to the test executable's `deps/`
//! folder (`target/release/` for `cargo test --release`): build them first with
//! `cargo build --release --bins`.

pub mod faults;
pub mod k8s;
mod process;
pub mod python;
pub mod results;

use std::net::SocketAddr;
use std::ops::{Deref, DerefMut};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

pub use nix::sys::signal::Signal;
pub use process::{Output, Process, describe, find_line};
pub use results::{Results, ResultsExt, TrialExt};

/// Tokens the security tests give the binaries: the harness fails any test whose processes
/// print one of them (see `Process`'s drop).
pub const SENTINEL_TOKENS: [&str; 2] = [
    "sentinel-worker-token-4f9c2a7e51",
    "sentinel-operator-token-8b3d6e0f27",
];

/// How long a process may take to start serving or to register.
pub const START_TIMEOUT: Duration = Duration::from_secs(60);

/// True when `SWEEP_TESTS_LOGS` asks for the logs of passing tests too.
pub fn show_logs() -> bool {
    std::env::var_os("SWEEP_TESTS_LOGS").is_some_and(|v| !v.is_empty() && v != "0")
}

/// The folder holding the `coordinator`, `worker` and `loadgen` binaries.
pub fn bin_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("SWEEP_BIN_DIR") {
        return PathBuf::from(dir);
    }
    // target/<profile>/deps/<test executable>: the binaries are in target/<profile>/.
    let exe = std::env::current_exe().expect("the path of the test executable");
    exe.parent()
        .and_then(|deps| {
            if deps.ends_with("deps") {
                deps.parent()
            } else {
                Some(deps)
            }
        })
        .map(Path::to_path_buf)
        .unwrap_or_else(|| panic!("cannot tell the build folder from {}", exe.display()))
}

/// The path of the binary `name` (`coordinator`, `worker` or `loadgen`), which must exist.
pub fn bin(name: &str) -> PathBuf {
    let path = bin_dir().join(name);
    assert!(
        path.is_file(),
        "{} not found: build the binaries first with `cargo build --release --bins` (same \
         profile as the tests), or point SWEEP_BIN_DIR at the folder holding them",
        path.display()
    );
    path
}

/// A sweep's files: a temporary folder holding the grid file, the output folder and any data
/// folders. When a test fails while it is alive, it prints `results.json` if there is one; the
/// folder is removed when it drops.
pub struct Sweep {
    dir: tempfile::TempDir,
    grid: PathBuf,
    out: PathBuf,
}

impl Sweep {
    /// A new temporary folder with `grid` written as `grid.toml` in it.
    pub fn new(grid: &str) -> Sweep {
        let dir = tempfile::Builder::new()
            .prefix("sweep-e2e-")
            .tempdir()
            .expect("a temporary folder");
        let path = dir.path().join("grid.toml");
        std::fs::write(&path, grid).expect("write the grid file");
        let out = dir.path().join("out");
        Sweep {
            dir,
            grid: path,
            out,
        }
    }

    /// The temporary folder.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The grid file.
    pub fn grid(&self) -> &Path {
        &self.grid
    }

    /// The coordinator's output folder.
    pub fn out(&self) -> &Path {
        &self.out
    }

    /// A new empty folder `name` in the temporary folder.
    pub fn mkdir(&self, name: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::create_dir_all(&path).expect("create a folder");
        path
    }

    /// `out/results.json`, parsed.
    pub fn results(&self) -> Results {
        results::read(&self.out.join("results.json"))
    }

    /// `out/summary.md`.
    pub fn summary(&self) -> String {
        let path = self.out.join("summary.md");
        std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
    }

    /// The command that starts a coordinator on this sweep, listening on a free port of
    /// 127.0.0.1, with `args` added.
    pub fn coordinator_command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(bin("coordinator"));
        command
            .arg("--grid")
            .arg(&self.grid)
            .args(["--listen", "127.0.0.1:0"])
            .arg("--out")
            .arg(&self.out)
            .args(args);
        command
    }

    /// Starts a coordinator on this sweep (see [`Sweep::coordinator_command`]) and waits until it
    /// serves.
    pub fn start_coordinator(&self, args: &[&str]) -> Coordinator {
        Coordinator::start(self.coordinator_command(args))
    }
}

impl Drop for Sweep {
    fn drop(&mut self) {
        if std::thread::panicking() || show_logs() {
            let path = self.out.join("results.json");
            if let Ok(text) = std::fs::read_to_string(&path) {
                eprintln!("----- {} -----\n{text}", path.display());
            }
        }
    }
}

/// A running coordinator (derefs to its [`Process`]).
pub struct Coordinator {
    process: Process,
    addr: SocketAddr,
}

impl Coordinator {
    /// Runs `command` (a coordinator) and waits until it serves.
    pub fn start(command: Command) -> Coordinator {
        let mut process = Process::spawn("coordinator", command);
        let line = process.wait_for_stdout_line("listening on ", START_TIMEOUT);
        let addr = line
            .rsplit(' ')
            .next()
            .and_then(|a| a.trim().parse().ok())
            .unwrap_or_else(|| panic!("no address in the coordinator's line {line:?}"));
        Coordinator { process, addr }
    }

    /// The address it serves on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Its URL, for `worker --coordinator`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The trials its status (`coordinator status --json`, the public `Status` call) lists in
    /// `state` (`running`, `pending`, ...), at most 500 of them in grid order, each as the JSON
    /// object printed; none while the call fails (not serving yet, or gone).
    pub fn trials_in(&self, state: &str) -> Vec<serde_json::Value> {
        let out = self.operator(&["status", "--json", "--state", state, "--limit", "500"]);
        if !out.status.success() {
            return Vec::new();
        }
        serde_json::from_slice::<serde_json::Value>(&out.stdout)
            .ok()
            .and_then(|v| v.get("trials")?.as_array().cloned())
            .unwrap_or_default()
    }

    /// Waits until the coordinator's status shows the worker named `worker` training a trial of
    /// which it has reported at least `epoch` epochs, and returns the trial's name.
    pub fn wait_for_epoch_on(&self, worker: &str, epoch: u32, timeout: Duration) -> String {
        let end = Instant::now() + timeout;
        loop {
            let running = self.trials_in("running");
            let found = running.iter().find(|t| {
                t["worker"].as_str() == Some(worker)
                    && t["epoch"].as_u64().is_some_and(|e| e >= u64::from(epoch))
            });
            if let Some(name) = found.and_then(|t| t["name"].as_str()) {
                return name.to_owned();
            }
            assert!(
                Instant::now() < end,
                "timed out waiting for worker {worker} to report epoch {epoch} of a trial; \
                 running: {running:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits until the coordinator's status counts at least `n` succeeded trials.
    pub fn wait_for_succeeded(&self, n: u64, timeout: Duration) {
        let end = Instant::now() + timeout;
        loop {
            let out = self.operator(&["status", "--json"]);
            let counted = serde_json::from_slice::<serde_json::Value>(&out.stdout)
                .ok()
                .and_then(|v| v["counts"]["succeeded"].as_u64());
            if out.status.success() && counted.is_some_and(|c| c >= n) {
                return;
            }
            assert!(
                Instant::now() < end,
                "timed out waiting for {n} succeeded trials; the status counts {counted:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The coordinator's status row of the trial named `trial` (the JSON object `coordinator
    /// status --json --trial NAME` prints), if the call succeeds.
    pub fn trial_status(&self, trial: &str) -> Option<serde_json::Value> {
        let out = self.operator(&["status", "--json", "--trial", trial]);
        if !out.status.success() {
            return None;
        }
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
        v.get("trials")?
            .as_array()?
            .iter()
            .find(|t| t["name"].as_str() == Some(trial))
            .cloned()
    }

    /// Waits until `done` holds of the trial's status row (see [`Coordinator::trial_status`]);
    /// `what` says what is waited for, in the message of a timeout.
    pub fn wait_for_trial(
        &self,
        trial: &str,
        what: &str,
        timeout: Duration,
        done: impl Fn(&serde_json::Value) -> bool,
    ) {
        let end = Instant::now() + timeout;
        loop {
            let row = self.trial_status(trial);
            if row.as_ref().is_some_and(&done) {
                return;
            }
            assert!(
                Instant::now() < end,
                "timed out waiting for {trial} {what}; its status: {row:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Runs an operator command (`coordinator status ...`, `cancel`, `promote`) against it
    /// and returns what it printed.
    pub fn operator(&self, args: &[&str]) -> std::process::Output {
        Command::new(bin("coordinator"))
            .args(args)
            .args(["--addr", &self.url()])
            .output()
            .expect("run the coordinator's operator command")
    }
}

/// Coordinator flags for tests that kill things: leases that expire in 2 s, heartbeats every
/// 200 ms, and 1 s of linger before the coordinator exits.
pub const QUICK_LEASES: &[&str] = &[
    "--lease-ttl",
    "2s",
    "--heartbeat",
    "200ms",
    "--linger",
    "1s",
];

/// A command's output as trimmed text (lossy), for assertions and messages.
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).trim().to_owned()
}

impl Deref for Coordinator {
    type Target = Process;

    fn deref(&self) -> &Process {
        &self.process
    }
}

impl DerefMut for Coordinator {
    fn deref_mut(&mut self) -> &mut Process {
        &mut self.process
    }
}

/// A running worker on the CPU (derefs to its [`Process`]).
pub struct Worker {
    process: Process,
    name: String,
}

impl Worker {
    /// Starts `worker --cpu --offline` named `name`, on `coordinator`, reading datasets from
    /// `data_dir`, with `threads` libtorch threads and one slot. Offline: no test may reach the
    /// internet, and a missing dataset must be an error, not a download.
    pub fn start(name: &str, coordinator: &Coordinator, data_dir: &Path, threads: u32) -> Worker {
        let mut command = Command::new(bin("worker"));
        command
            .args(["--cpu", "--coordinator", &coordinator.url(), "--name", name])
            .arg("--data-dir")
            .arg(data_dir)
            .args([
                "--threads",
                &threads.to_string(),
                "--slots",
                "1",
                "--offline",
            ])
            .env_remove("SWEEP_DATA_DIR")
            .env_remove("SWEEP_MIRROR");
        Worker::from_command(name, command)
    }

    /// Runs `command` (a worker) as the worker named `name`.
    pub fn from_command(name: &str, mut command: Command) -> Worker {
        command
            .env_remove("SWEEP_DATA_DIR")
            .env_remove("SWEEP_MIRROR");
        Worker {
            process: Process::spawn(format!("worker {name}"), command),
            name: name.to_owned(),
        }
    }

    /// The name it was given.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Waits until it has registered and returns the id the coordinator gave it.
    pub fn id(&mut self) -> String {
        let line = self.wait_for_stderr_line(" registered ", START_TIMEOUT);
        field(&line, "worker")
            .unwrap_or_else(|| panic!("no worker id in the line {line:?}"))
            .to_owned()
    }

    /// What it logged when epoch `epoch` of `trial` ended (`loss 0.3190, train 93.14 %, test
    /// 100.00 %`, the timing left out), the last time it trained that trial.
    pub fn logged_epoch(&self, trial: &str, epoch: u32) -> Option<String> {
        let marker = format!("epoch {epoch}/");
        self.stderr()
            .lines()
            .rev()
            .filter(|l| field(l, "trial") == Some(trial))
            .find_map(|l| {
                let rest = &l[l.find(&marker)? + marker.len()..];
                let metrics = &rest[rest.find(": ")? + 2..];
                Some(metrics[..metrics.find(" (")?].to_owned())
            })
    }

    /// Names of the trials it trained to the end, from its log.
    pub fn trials_trained(&self) -> Vec<String> {
        self.stderr()
            .lines()
            .filter(|l| l.contains(" trial trained "))
            .filter_map(|l| field(l, "trial").map(str::to_owned))
            .collect()
    }
}

impl Deref for Worker {
    type Target = Process;

    fn deref(&self) -> &Process {
        &self.process
    }
}

impl DerefMut for Worker {
    fn deref_mut(&mut self) -> &mut Process {
        &mut self.process
    }
}

/// The value of the structured field `key=value` in a log line (values without spaces).
pub fn field<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    let prefix = format!("{key}=");
    line.split_whitespace()
        .find_map(|word| word.strip_prefix(prefix.as_str()))
}

/// The official CIFAR-10 distributions, as the fixture writers write them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cifar10 {
    /// The extracted binary version, `cifar-10-batches-bin/`.
    BinDir,
    /// The extracted python version, `cifar-10-batches-py/`.
    PyDir,
    /// The binary version's archive, `cifar-10-binary.tar.gz`.
    BinTarGz,
    /// The python version's archive, `cifar-10-python.tar.gz`.
    PyTarGz,
}

impl Cifar10 {
    /// Writes this distribution into `dir`: 5 training batches of `per_batch` images made from
    /// `seed` (the same images whatever the distribution). Returns the training set's size.
    pub fn write(self, dir: &Path, per_batch: usize, seed: u64) -> u64 {
        use sweep_data::fixtures;
        let written = match self {
            Cifar10::BinDir => fixtures::write_cifar10_bin(dir, per_batch, seed),
            Cifar10::PyDir => fixtures::write_cifar10_py(dir, per_batch, seed),
            Cifar10::BinTarGz => fixtures::write_cifar10_bin_tar_gz(dir, per_batch, seed),
            Cifar10::PyTarGz => fixtures::write_cifar10_py_tar_gz(dir, per_batch, seed),
        };
        let set = written.unwrap_or_else(|e| panic!("cannot write CIFAR-10 {self:?}: {e}"));
        set.labels.len() as u64
    }
}

/// Where the real data is: `$SWEEP_FASHION_MNIST` (set by scripts/setup), else Debian's place.
pub fn real_fashion_mnist_dir() -> PathBuf {
    let dir = std::env::var_os("SWEEP_FASHION_MNIST").map_or_else(
        || PathBuf::from("/usr/share/datasets/fashion-mnist"),
        PathBuf::from,
    );
    assert!(
        dir.join("train-images-idx3-ubyte.gz").is_file()
            && dir.join("train-labels-idx1-ubyte.gz").is_file(),
        "the real Fashion-MNIST is not in {}: install the Debian package dataset-fashion-mnist \
         (`sudo apt-get install dataset-fashion-mnist`; `source scripts/setup` does it when run \
         as root), or point SWEEP_FASHION_MNIST at a folder holding train-images-idx3-ubyte.gz \
         and train-labels-idx1-ubyte.gz",
        dir.display()
    );
    dir
}

/// Writes a Fashion-MNIST training set of `n` images made from `seed` (gzipped IDX files, the
/// official names) into `dir`. Returns `n`.
pub fn write_fashion_mnist(dir: &Path, n: usize, seed: u64) -> u64 {
    let set = sweep_data::fixtures::write_fashion_mnist(dir, n, seed)
        .unwrap_or_else(|e| panic!("cannot write Fashion-MNIST: {e}"));
    set.labels.len() as u64
}
