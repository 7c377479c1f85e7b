//! The coordinator under load: a child process whose stderr goes to a log file and whose stdout
//! is read line by line (it announces `listening on ADDR` there), killed if the load generator
//! stops before it exits. Also reads a process's CPU time and memory from `/proc`.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

/// A running coordinator. Dropping it kills the process (SIGKILL) unless it has exited.
pub struct Coordinator {
    child: Child,
    lines: mpsc::Receiver<String>,
    log: PathBuf,
    /// The address it serves gRPC on.
    pub addr: SocketAddr,
    /// From spawn to the `listening on` line.
    pub startup: Duration,
    /// Its resident memory (bytes) as soon as it listened.
    pub rss_after_startup: u64,
    exited: Option<ExitStatus>,
}

impl Coordinator {
    /// Runs `command` (a coordinator listening on port 0) with stderr appended to `log`, and
    /// waits up to `timeout` for it to listen.
    pub fn start(mut command: Command, log: &Path, timeout: Duration) -> anyhow::Result<Self> {
        let stderr =
            File::create(log).with_context(|| format!("cannot create {}", log.display()))?;
        let started = Instant::now();
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .with_context(|| format!("cannot start {command:?}"))?;
        let (tx, lines) = mpsc::channel();
        if let Some(stdout) = child.stdout.take() {
            std::thread::spawn(move || {
                for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                    if tx.send(line).is_err() {
                        break;
                    }
                }
            });
        }
        let mut coordinator = Coordinator {
            child,
            lines,
            log: log.to_owned(),
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            startup: Duration::ZERO,
            rss_after_startup: 0,
            exited: None,
        };
        let line = loop {
            let left = timeout.saturating_sub(started.elapsed());
            match coordinator.lines.recv_timeout(left) {
                Ok(line) if line.starts_with("listening on ") => break line,
                Ok(_) => {}
                Err(_) => bail!(
                    "the coordinator did not listen within {timeout:?}; its log:\n{}",
                    coordinator.log_tail()
                ),
            }
        };
        coordinator.startup = started.elapsed();
        coordinator.addr = line
            .rsplit(' ')
            .next()
            .and_then(|a| a.trim().parse().ok())
            .with_context(|| format!("no address in the coordinator's line {line:?}"))?;
        coordinator.rss_after_startup = memory(&coordinator.pid(), "VmRSS")?;
        Ok(coordinator)
    }

    /// Its process id, as `/proc` names it.
    pub fn pid(&self) -> String {
        self.child.id().to_string()
    }

    /// Its exit status if it has exited.
    pub fn try_exited(&mut self) -> anyhow::Result<Option<ExitStatus>> {
        if self.exited.is_none() {
            self.exited = self
                .child
                .try_wait()
                .context("cannot query the coordinator")?;
        }
        Ok(self.exited)
    }

    /// Waits up to `timeout` for it to exit by itself; returns its exit status and its peak
    /// resident memory (VmHWM, bytes) as last read before it exited, which counts what it did
    /// after the sweep (the final results, summary and report), or `None` when it exited
    /// before a reading.
    pub fn wait(&mut self, timeout: Duration) -> anyhow::Result<(ExitStatus, Option<u64>)> {
        let deadline = Instant::now() + timeout;
        let pid = self.pid();
        let mut peak = None;
        loop {
            // Read before reaping: once reaped the process and its figures are gone. VmHWM
            // only grows, so the last reading is the peak up to at most one poll before exit.
            if let Ok(hwm) = memory(&pid, "VmHWM") {
                peak = Some(hwm);
            }
            if let Some(status) = self.try_exited()? {
                return Ok((status, peak));
            }
            if Instant::now() >= deadline {
                bail!("the coordinator did not exit within {timeout:?}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The last lines of its log, for error messages.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }
}

impl Drop for Coordinator {
    fn drop(&mut self) {
        if self.exited.is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// User plus system CPU seconds of process `pid` (a number, or `self`) so far, from
/// `/proc/PID/stat`.
pub fn cpu_seconds(pid: &str) -> anyhow::Result<f64> {
    let path = format!("/proc/{pid}/stat");
    let stat = std::fs::read_to_string(&path).with_context(|| format!("cannot read {path}"))?;
    // The command name (field 2) is in parentheses and may hold spaces: count after it.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    // utime and stime are fields 14 and 15: the 12th and 13th after the name.
    let ticks = |i: usize| -> anyhow::Result<u64> {
        fields
            .get(i)
            .and_then(|f| f.parse().ok())
            .with_context(|| format!("no field {} in {path}", i + 3))
    };
    let per_second = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .filter(|&t| t > 0)
        .context("sysconf(_SC_CLK_TCK) gave no clock tick rate")?;
    Ok((ticks(11)? + ticks(12)?) as f64 / per_second as f64)
}

/// The memory figure `field` (`VmRSS`, `VmHWM`) of process `pid`, in bytes, from
/// `/proc/PID/status`.
pub fn memory(pid: &str, field: &str) -> anyhow::Result<u64> {
    let path = format!("/proc/{pid}/status");
    let status = std::fs::read_to_string(&path).with_context(|| format!("cannot read {path}"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().strip_suffix("kB")?.trim().parse::<u64>().ok())
        .map(|kib| kib * 1024)
        .with_context(|| format!("no {field} in {path}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The peak counts what the process did after its last trial: a stand-in coordinator that
    /// listens, then grows by 64 MB (as the real one does writing its final report) and exits.
    /// The loadgen used to read the peak when its workers stopped, before the report was made.
    #[test]
    fn wait_reads_the_peak_of_what_ran_after_the_sweep() {
        let dir = tempfile::tempdir().unwrap();
        let mut command = Command::new("bash");
        // The trailing `:` keeps bash from exec'ing its last command (sleep, a new process
        // with a peak of its own).
        command.args([
            "-c",
            "echo 'listening on 127.0.0.1:9'; sleep 0.2; \
             x=$(head -c 64000000 /dev/zero | tr '\\0' a); sleep 1; :",
        ]);
        let mut c =
            Coordinator::start(command, &dir.path().join("log"), Duration::from_secs(30)).unwrap();
        let before = c.rss_after_startup;
        let (status, peak) = c.wait(Duration::from_secs(60)).unwrap();
        assert!(status.success());
        let peak = peak.expect("no reading before exit");
        assert!(
            peak >= before + 64_000_000,
            "peak {peak} B, {before} B after start-up"
        );
    }
}
