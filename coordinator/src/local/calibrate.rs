//! `coordinator plan --calibrate`: runs `worker --calibrate` on this machine to time each
//! distinct model of a grid (the protocol is `sweep_common::calibration`'s). One worker process
//! per model, so that each measures its model's memory from a fresh start; CPU models are timed
//! as many at once as the plan has CPU workers (at most the cores), each with the threads a
//! local worker would get, so that they share the cores and memory as the sweep's workers
//! will; GPU models one at a time on CUDA device 0.

use std::collections::HashMap;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use sweep_common::TrialSpec;
use sweep_common::calibration::{Calibration, Outcome};

use crate::plan::{Kind, cost_key};

/// Most of a failed worker's standard error kept for the message.
const STDERR_TAIL: usize = 400;

/// How the workers of one kind are calibrated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lanes {
    /// The kind.
    pub kind: Kind,
    /// Worker processes at once.
    pub at_once: usize,
    /// `--threads` of each (CPU).
    pub threads: u32,
}

impl Lanes {
    /// What `--workers` with `cpu` CPU workers means on this machine: each with the threads a
    /// local worker gets (the cores divided among them, at least 1), as many at once as there
    /// are workers, at most the cores.
    pub fn cpu(cpu: usize, cores: usize) -> Self {
        let cores = cores.max(1);
        Lanes {
            kind: Kind::Cpu,
            at_once: cpu.clamp(1, cores),
            threads: u32::try_from(cores / cpu.max(1)).unwrap_or(1).max(1),
        }
    }

    /// GPU workers: one at a time, on CUDA device 0.
    pub fn gpu() -> Self {
        Lanes {
            kind: Kind::Gpu,
            at_once: 1,
            threads: 0,
        }
    }

    /// The words the plan's output uses for it.
    pub fn describe(&self) -> String {
        match self.kind {
            Kind::Cpu => format!(
                "cpu: {} thread{} per worker, {} at once",
                self.threads,
                if self.threads == 1 { "" } else { "s" },
                self.at_once
            ),
            Kind::Gpu => "gpu: CUDA device 0, one at a time".to_owned(),
        }
    }
}

/// The outcome for each distinct model ([`cost_key`]) of `trials` on workers of `lanes`.
/// An error only when the worker cannot be run at all; a model it cannot measure is an
/// [`Outcome::Failed`].
pub fn calibrate<'a>(
    worker: &Path,
    trials: impl IntoIterator<Item = &'a TrialSpec>,
    lanes: Lanes,
) -> Result<HashMap<String, Outcome>, String> {
    let mut models: Vec<(String, &TrialSpec)> = Vec::new();
    for t in trials {
        let key = cost_key(t);
        if t.program.is_none() && !models.iter().any(|(k, _)| *k == key) {
            models.push((key, t));
        }
    }
    let next = AtomicUsize::new(0);
    let found = Mutex::new(HashMap::new());
    let fatal = Mutex::new(None);
    std::thread::scope(|scope| {
        for _ in 0..lanes.at_once.min(models.len()) {
            scope.spawn(|| {
                while let Some((key, spec)) = models.get(next.fetch_add(1, Ordering::Relaxed)) {
                    match one(worker, spec, lanes) {
                        Ok(outcome) => {
                            if let Ok(mut f) = found.lock() {
                                f.insert(key.clone(), outcome);
                            }
                        }
                        Err(e) => {
                            if let Ok(mut f) = fatal.lock() {
                                f.get_or_insert(e);
                            }
                            return;
                        }
                    }
                }
            });
        }
    });
    if let Some(e) = fatal.into_inner().ok().flatten() {
        return Err(e);
    }
    found
        .into_inner()
        .map_err(|_| "a calibration thread panicked".to_owned())
}

/// Runs one worker process for `spec`.
fn one(worker: &Path, spec: &TrialSpec, lanes: Lanes) -> Result<Outcome, String> {
    let mut command = Command::new(worker);
    match lanes.kind {
        Kind::Cpu => command.args(["--cpu", "--threads", &lanes.threads.to_string()]),
        Kind::Gpu => command.args(["--gpu", "0"]),
    };
    let mut child = command
        .arg("--calibrate")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run {}: {e}", worker.display()))?;
    let request = serde_json::to_string(spec).map_err(|e| e.to_string())? + "\n";
    if let Some(mut stdin) = child.stdin.take() {
        // A worker that exits at once closes its end: what it says on stderr tells why.
        let _ = stdin.write_all(request.as_bytes());
    }
    // Both pipes read at once: a worker blocked on a full stderr pipe cannot answer.
    let output = child
        .wait_with_output()
        .map_err(|e| format!("waiting for {}: {e}", worker.display()))?;
    let status = output.status;
    let answer = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    match serde_json::from_str::<Calibration>(answer.lines().next().unwrap_or("").trim()) {
        Ok(c) if c.id == spec.id => Ok(c.outcome),
        _ => {
            let tail: String = {
                let t = stderr.trim();
                let start = t.len().saturating_sub(STDERR_TAIL);
                let start = (start..=t.len())
                    .find(|&i| t.is_char_boundary(i))
                    .unwrap_or(t.len());
                t[start..].to_owned()
            };
            Err(format!(
                "`{} {}` gave no calibration ({status}): {}",
                worker.display(),
                match lanes.kind {
                    Kind::Cpu => "--cpu --calibrate",
                    Kind::Gpu => "--gpu 0 --calibrate",
                },
                if tail.is_empty() { "no message" } else { &tail }
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_lanes_share_the_cores_like_local_workers() {
        assert_eq!(
            Lanes::cpu(2, 2),
            Lanes {
                kind: Kind::Cpu,
                at_once: 2,
                threads: 1
            }
        );
        assert_eq!(Lanes::cpu(1, 16).threads, 16);
        let many = Lanes::cpu(8, 2);
        assert_eq!((many.at_once, many.threads), (2, 1));
        assert_eq!(Lanes::cpu(3, 16).threads, 5);
        assert!(
            Lanes::cpu(2, 2)
                .describe()
                .contains("1 thread per worker, 2 at once")
        );
    }

    #[test]
    fn a_worker_that_cannot_run_is_an_error_naming_it() {
        let grid = sweep_common::grid::Grid::parse(
            "[sweep]\nname = \"t\"\n[[experiment]]\nname = \"e\"\ndataset = \"mnist\"\n",
            "t.toml",
        )
        .expect("grid");
        let trials = &grid.experiments[0].trials;
        let e = calibrate(Path::new("/nonexistent/worker"), trials, Lanes::cpu(1, 1))
            .expect_err("no worker");
        assert!(e.contains("cannot run /nonexistent/worker"), "{e}");
        // `false` runs and answers nothing: its status is in the message.
        let e =
            calibrate(Path::new("/bin/false"), trials, Lanes::cpu(1, 1)).expect_err("no answer");
        assert!(e.contains("gave no calibration"), "{e}");
    }
}
