//! A child process run by a test: its stdout and stderr captured by background threads, waited on
//! with timeouts (by polling, never by sleeping a fixed time), killed when dropped, and its logs
//! printed when the test fails.

use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Read};
use std::os::unix::process::ExitStatusExt;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// How often a condition is checked while waiting for it.
const POLL: Duration = Duration::from_millis(10);

/// What a process wrote so far.
#[derive(Debug, Default, Clone)]
pub struct Output {
    /// Everything read from stdout.
    pub stdout: String,
    /// Everything read from stderr.
    pub stderr: String,
}

/// A running (or exited) child process. Dropping it kills the child (SIGKILL) if it still runs,
/// reaps it, and, when the thread is panicking (a failed test) or `SWEEP_TESTS_LOGS` is set,
/// prints everything it wrote.
pub struct Process {
    label: String,
    child: Child,
    output: Arc<Mutex<Output>>,
    readers: Vec<JoinHandle<()>>,
    status: Option<ExitStatus>,
}

impl Process {
    /// Starts `command` with stdin closed and stdout and stderr captured. `label` names the
    /// process in messages (`coordinator`, `worker A`).
    pub fn spawn(label: impl Into<String>, mut command: Command) -> Process {
        let label = label.into();
        command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .env("RUST_BACKTRACE", "1");
        let mut child = command
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {label} ({command:?}): {e}"));
        let output = Arc::new(Mutex::new(Output::default()));
        let mut readers = Vec::new();
        if let Some(stdout) = child.stdout.take() {
            readers.push(capture(stdout, Arc::clone(&output), |o| &mut o.stdout));
        }
        if let Some(stderr) = child.stderr.take() {
            readers.push(capture(stderr, Arc::clone(&output), |o| &mut o.stderr));
        }
        Process {
            label,
            child,
            output,
            readers,
            status: None,
        }
    }

    /// The name given at spawn.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// The operating system's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// A copy of what the process wrote so far.
    pub fn output(&self) -> Output {
        self.lock().clone()
    }

    /// What the process wrote to stdout so far.
    pub fn stdout(&self) -> String {
        self.lock().stdout.clone()
    }

    /// What the process wrote to stderr so far.
    pub fn stderr(&self) -> String {
        self.lock().stderr.clone()
    }

    /// Its exit status, if it has exited (reaping it if it just did).
    pub fn try_status(&mut self) -> Option<ExitStatus> {
        if self.status.is_none() {
            match self.child.try_wait() {
                Ok(Some(status)) => self.exited(status),
                Ok(None) => {}
                Err(e) => panic!("cannot query {}: {e}", self.label),
            }
        }
        self.status
    }

    /// Sends `signal` to the process, which must not have been reaped yet (so its pid cannot have
    /// been reused).
    pub fn signal(&mut self, signal: Signal) {
        if let Some(status) = self.try_status() {
            panic!(
                "cannot send {signal} to {}: it already exited ({})",
                self.label,
                describe(status)
            );
        }
        let pid = Pid::from_raw(i32::try_from(self.pid()).unwrap_or(i32::MAX));
        kill(pid, signal).unwrap_or_else(|e| panic!("cannot send {signal} to {}: {e}", self.label));
    }

    /// Kills the process with SIGKILL (if it still runs) and reaps it.
    pub fn kill(&mut self) -> ExitStatus {
        if self.try_status().is_none() {
            // Fails only if it already exited; `wait` then reaps it all the same.
            let _ = self.child.kill();
            match self.child.wait() {
                Ok(status) => self.exited(status),
                Err(e) => panic!("cannot reap {}: {e}", self.label),
            }
        }
        self.status.unwrap_or_else(|| unreachable!("reaped above"))
    }

    /// Waits up to `timeout` for the process to exit; returns its status once all its output has
    /// been read. Panics on timeout.
    pub fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.try_status() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "{} did not exit within {timeout:?}",
                self.label
            );
            std::thread::sleep(POLL);
        }
    }

    /// Waits up to `timeout` for the process to exit with exit code `code`.
    pub fn expect_exit_code(&mut self, code: i32, timeout: Duration) {
        let status = self.wait_exit(timeout);
        assert_eq!(
            status.code(),
            Some(code),
            "{} ended with {}, expected exit code {code}",
            self.label,
            describe(status)
        );
    }

    /// Waits up to `timeout` until `check` returns `Some` on the output so far, and returns that.
    /// `what` says what is awaited, for the message. Panics on timeout, or if the process exits
    /// without its output ever satisfying `check`.
    pub fn wait_for<T>(
        &mut self,
        what: &str,
        timeout: Duration,
        mut check: impl FnMut(&Output) -> Option<T>,
    ) -> T {
        let deadline = Instant::now() + timeout;
        loop {
            // Read the status first: once it has exited, every byte it wrote has been read.
            let status = self.try_status();
            if let Some(found) = check(&self.lock()) {
                return found;
            }
            if let Some(status) = status {
                panic!("{} exited ({}) before {what}", self.label, describe(status));
            }
            assert!(
                Instant::now() < deadline,
                "timed out after {timeout:?} waiting for {what} from {}",
                self.label
            );
            std::thread::sleep(POLL);
        }
    }

    /// Waits up to `timeout` for a line of stderr containing `pattern`; returns the line.
    pub fn wait_for_stderr_line(&mut self, pattern: &str, timeout: Duration) -> String {
        self.wait_for(
            &format!("a stderr line containing {pattern:?}"),
            timeout,
            |o| find_line(&o.stderr, pattern),
        )
    }

    /// Waits up to `timeout` for a line of stdout containing `pattern`; returns the line.
    pub fn wait_for_stdout_line(&mut self, pattern: &str, timeout: Duration) -> String {
        self.wait_for(
            &format!("a stdout line containing {pattern:?}"),
            timeout,
            |o| find_line(&o.stdout, pattern),
        )
    }

    /// Everything the process wrote, framed with its label and status, for failure reports.
    pub fn logs(&self) -> String {
        let output = self.lock();
        let status = self.status.map_or_else(|| "running".to_owned(), describe);
        let mut text = String::new();
        for (stream, content) in [("stdout", &output.stdout), ("stderr", &output.stderr)] {
            let _ = writeln!(
                text,
                "----- {} (pid {}, {status}): {stream} -----",
                self.label,
                self.child.id()
            );
            text.push_str(content);
            if !content.is_empty() && !content.ends_with('\n') {
                text.push('\n');
            }
        }
        text
    }

    fn exited(&mut self, status: ExitStatus) {
        self.status = Some(status);
        // The pipes close when the process exits: the readers finish with everything it wrote.
        for reader in self.readers.drain(..) {
            let _ = reader.join();
        }
    }

    fn lock(&self) -> MutexGuard<'_, Output> {
        self.output
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if self.status.is_none() {
            let _ = self.child.kill();
            if let Ok(status) = self.child.wait() {
                self.exited(status);
            }
        }
        if std::thread::panicking() || crate::show_logs() {
            eprint!("{}", self.logs());
        }
        // No process of the suite may ever print a token (the security tests use these).
        if !std::thread::panicking() {
            let logs = self.logs();
            for token in crate::SENTINEL_TOKENS {
                assert!(
                    !logs.contains(token),
                    "{} printed a token in its output:\n{logs}",
                    self.label
                );
            }
        }
    }
}

/// The first line of `text` containing `pattern`.
pub fn find_line(text: &str, pattern: &str) -> Option<String> {
    text.lines()
        .find(|line| line.contains(pattern))
        .map(str::to_owned)
}

/// An exit status in words: `exit code 2`, `signal 9`.
pub fn describe(status: ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit code {code}"),
        (None, Some(signal)) => format!("killed by signal {signal}"),
        (None, None) => format!("{status}"),
    }
}

/// Appends every line read from `stream` to the part of `output` that `part` selects, until the
/// stream ends.
fn capture(
    stream: impl Read + Send + 'static,
    output: Arc<Mutex<Output>>,
    part: fn(&mut Output) -> &mut String,
) -> JoinHandle<()> {
    std::thread::spawn(move || {
        let mut reader = BufReader::new(stream);
        let mut line = Vec::new();
        loop {
            line.clear();
            match reader.read_until(b'\n', &mut line) {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    let mut o = output
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner);
                    part(&mut o).push_str(&String::from_utf8_lossy(&line));
                }
            }
        }
    })
}
