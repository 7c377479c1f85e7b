//! The sweep's outputs on disk: `results.json` (one record per trial) and `summary.md`.
//!
//! Both are written atomically (temporary file, then rename). While the sweep runs,
//! `results.json` is rewritten a slice of trials at a time ([`RollingWrite`]), so that the copy
//! of a sweep of 100 000 trials never holds up the state owner for more than a few milliseconds;
//! it is written whole when the sweep ends or the coordinator stops, one record at a time. (The
//! state database holds every result the moment it is acknowledged; `results.json` is its
//! readable copy.) An archived trial's curve and confusion matrices are read from the database
//! as its record is written (`store::Reader`), so no more than one of them is in memory at once.

use std::borrow::Cow;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use sweep_common::grid::Grid;
use sweep_common::results::{Experiment, Results, Status, Stopped, Trial as TrialRecord};

use crate::Error;
use crate::state::{Scheduler, Trial, TrialState};
use crate::store::{Reader, Stored};

/// Builds the `results.json` document from the current state (borrowing it; an archived trial's
/// curve and matrices read from `reader`), for the output folder `out` (a program trial's logs
/// are named only once they are there). Every trial's record at once: for tests and small
/// sweeps; [`write_results`] streams.
pub fn collect<'a>(
    grid: &Grid,
    grid_file: &str,
    s: &'a Scheduler,
    out: &Path,
    reader: Option<&Reader>,
) -> Result<Results<'a>, Error> {
    Ok(Results {
        trials: s
            .trials()
            .iter()
            .map(|t| full_record(s, t, out, reader))
            .collect::<Result<_, _>>()?,
        ..header(grid, grid_file, s)
    })
}

/// The document without its trials.
fn header(grid: &Grid, grid_file: &str, s: &Scheduler) -> Results<'static> {
    Results {
        format: sweep_common::results::FORMAT,
        sweep: grid.name.clone(),
        grid_file: grid_file.to_owned(),
        finished: s.is_finished(),
        experiments: experiment_records(grid),
        trials: Vec::new(),
    }
}

/// The records of `grid`'s experiments.
pub fn experiment_records(grid: &Grid) -> Vec<Experiment> {
    grid.experiments
        .iter()
        .map(|e| Experiment {
            name: e.name.clone(),
            title: e.title.clone(),
            dataset: e.dataset,
            classes: e
                .dataset
                .class_names()
                .iter()
                .map(|c| (*c).to_owned())
                .collect(),
            axes: e.axes.clone(),
            table: e.table,
        })
        .collect()
}

/// The record of trial `t`, whole: an archived trial's curve and matrices read from `reader`
/// (an error without one: its record would be wrong).
fn full_record<'a>(
    s: &Scheduler,
    t: &'a Trial,
    out: &Path,
    reader: Option<&Reader>,
) -> Result<TrialRecord<'a>, Error> {
    let stored = match (t.is_archived(), reader) {
        (false, _) => None,
        (true, Some(r)) => Some(r.stored(t.spec.id)?),
        (true, None) => {
            return Err(Error::Io {
                action: "cannot read the archived curve of",
                path: t.spec.name.clone(),
                source: std::io::Error::other("no connection to the state database"),
            });
        }
    };
    Ok(record(s, t, out, stored))
}

/// The record of trial `t`, whose outputs are in `out`; `stored`: its archived curve and final
/// metrics, as the database holds them.
fn record<'a>(s: &Scheduler, t: &'a Trial, out: &Path, stored: Option<Stored>) -> TrialRecord<'a> {
    let worker_name = |id| {
        s.workers()
            .get(&id)
            .map_or_else(|| format!("{id}"), |w| format!("{} ({})", w.name, id))
    };
    let (status, worker, wall_seconds, failure) = match &t.state {
        TrialState::Pending { .. } => (Status::Pending, None, None, None),
        TrialState::Leased { lease, .. } => {
            (Status::Running, Some(worker_name(lease.worker)), None, None)
        }
        TrialState::Succeeded(s) => (
            Status::Succeeded,
            Some(worker_name(s.worker)),
            Some(s.wall_seconds),
            None,
        ),
        TrialState::Failed { reason, .. } => {
            (Status::Failed, None, None, Some(Cow::from(reason.as_str())))
        }
        TrialState::Stopped { .. } => (Status::Stopped, None, None, None),
    };
    let stopped = match &t.state {
        TrialState::Stopped { epoch, reason, .. } => Some(Stopped {
            epoch: *epoch,
            reason: Cow::from(reason.as_str()),
        }),
        _ => None,
    };
    let r = t.scores();
    let (epochs, confusion) = match stored {
        Some(Stored { epochs, result }) => (
            Cow::Owned(epochs),
            result.map(|r| (Cow::Owned(r.train_confusion), Cow::Owned(r.test_confusion))),
        ),
        None => (
            Cow::from(t.epochs.as_slice()),
            t.state
                .success()
                .and_then(|s| s.matrices.as_deref())
                .map(|m| (Cow::Borrowed(&m.train), Cow::Borrowed(&m.test))),
        ),
    };
    let (train_confusion, test_confusion) = confusion.unzip();
    TrialRecord {
        id: t.spec.id,
        experiment: Cow::from(t.spec.experiment.as_str()),
        name: Cow::from(t.spec.name.as_str()),
        dataset: t.spec.dataset,
        params: Cow::Borrowed(&t.spec.params),
        split: t.spec.split,
        status,
        attempts: t.attempts,
        worker,
        wall_seconds,
        train_seconds: r.map(|r| r.train_seconds),
        epochs,
        train_accuracy: r.map(|r| r.train_accuracy),
        test_accuracy: r.map(|r| r.test_accuracy),
        train_confusion,
        test_confusion,
        dataset_images: r.map(|r| r.dataset_images),
        weights: t.state.weights().map(Cow::from),
        logs: program_logs(t, |file| out.join(file).is_file()),
        failure,
        failed_attempts: Cow::from(t.failures.as_slice()),
        stopped,
        promoted_epochs: s.promoted_epochs(&t.spec),
    }
}

/// A program trial's logs that an attempt of it uploaded, relative to the output folder:
/// derived from the folder (`landed` says whether a file is there), not recorded, so that no
/// link is dead (an upload that failed, or that came after the lease ended and was refused,
/// left no file). None for a native trial or before any attempt.
fn program_logs(t: &Trial, landed: impl Fn(&str) -> bool) -> Vec<String> {
    if t.spec.program.is_none() || t.attempts == 0 {
        return Vec::new();
    }
    sweep_common::trial::LogStream::ALL
        .iter()
        .map(|&stream| sweep_common::trial::log_file(&t.spec.name, stream))
        .filter(|file| landed(file))
        .collect()
}

/// Writes `contents` to `path` atomically.
pub fn write_atomic(path: &Path, contents: &[u8]) -> Result<(), Error> {
    write_atomic_with(path, |f| f.write_all(contents))
}

/// Writes what `write` writes to `path` atomically (a temporary file, synced, then renamed).
fn write_atomic_with(
    path: &Path,
    write: impl FnOnce(&mut std::io::BufWriter<std::fs::File>) -> std::io::Result<()>,
) -> Result<(), Error> {
    let io = |source| Error::Io {
        action: "cannot write",
        path: path.display().to_string(),
        source,
    };
    let tmp: PathBuf = path.with_extension("tmp");
    let mut f = std::io::BufWriter::new(std::fs::File::create(&tmp).map_err(io)?);
    write(&mut f).map_err(io)?;
    let f = f.into_inner().map_err(|e| io(e.into_error()))?;
    f.sync_all().map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)
}

/// Writes `results.json` into `out`, pretty-printed and streamed: one record at a time, an
/// archived trial's read from `reader` (a sweep of 100 000 trials makes a file of about a
/// gigabyte, which is never held in memory, nor are its trials' curves).
pub fn write_results(
    out: &Path,
    grid: &Grid,
    grid_file: &str,
    s: &Scheduler,
    reader: Option<&Reader>,
) -> Result<PathBuf, Error> {
    let mut w = RollingWrite::begin(out, grid, grid_file, s, Layout::Pretty)?;
    w.step(s, reader, usize::MAX)?;
    Ok(w.path)
}

/// How `results.json` is laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Layout {
    /// On one line (the copies written while the sweep runs).
    Compact,
    /// As `serde_json::to_writer_pretty` writes it, byte for byte (the last one).
    Pretty,
}

/// Inside `"trials": [...]`, a pretty record's lines are indented by this (its depth, 2).
const PRETTY_INDENT: &[u8] = b"\n    ";

/// `results.json` rewritten a slice of trials per call of [`RollingWrite::step`] (compact JSON;
/// the whole file at the end is pretty-printed). Each trial's record is as it was when its slice
/// was written.
#[derive(Debug)]
pub struct RollingWrite {
    out: PathBuf,
    path: PathBuf,
    tmp: PathBuf,
    file: std::io::BufWriter<std::fs::File>,
    next: usize,
    layout: Layout,
}

impl RollingWrite {
    /// Starts a new copy of `results.json` in `out`: everything but the trials.
    pub fn start(out: &Path, grid: &Grid, grid_file: &str, s: &Scheduler) -> Result<Self, Error> {
        Self::begin(out, grid, grid_file, s, Layout::Compact)
    }

    fn begin(
        out: &Path,
        grid: &Grid,
        grid_file: &str,
        s: &Scheduler,
        layout: Layout,
    ) -> Result<Self, Error> {
        let path = out.join("results.json");
        let tmp = path.with_extension("tmp");
        let io = |source| Error::Io {
            action: "cannot write",
            path: tmp.display().to_string(),
            source,
        };
        let mut file = std::io::BufWriter::new(std::fs::File::create(&tmp).map_err(io)?);
        let head = header(grid, grid_file, s);
        let head = match layout {
            Layout::Compact => serde_json::to_string(&head),
            Layout::Pretty => serde_json::to_string_pretty(&head),
        }
        .map_err(|e| io(std::io::Error::other(e)))?;
        // `..."trials": []}`: everything up to the trials' opening bracket (the last field).
        let open = head.trim_end_matches(['}', '\n']).trim_end_matches(']');
        file.write_all(open.as_bytes()).map_err(io)?;
        Ok(RollingWrite {
            out: out.to_owned(),
            path,
            tmp,
            file,
            next: 0,
            layout,
        })
    }

    /// Writes the records of the next `count` trials (an archived trial's curve and matrices
    /// read from `reader`); once all are written, finishes the file (synced, then renamed over
    /// `results.json`) and returns true.
    pub fn step(
        &mut self,
        s: &Scheduler,
        reader: Option<&Reader>,
        count: usize,
    ) -> Result<bool, Error> {
        let trials = s.trials();
        let end = self.next.saturating_add(count).min(trials.len());
        for (i, t) in trials.iter().enumerate().take(end).skip(self.next) {
            let record = full_record(s, t, &self.out, reader)?;
            self.write_record(i, &record).map_err(|e| self.io(e))?;
        }
        self.next = end;
        if end < trials.len() {
            return Ok(false);
        }
        let close: &[u8] = match (self.layout, trials.is_empty()) {
            (Layout::Compact, _) => b"]}",
            (Layout::Pretty, true) => b"]\n}",
            (Layout::Pretty, false) => b"\n  ]\n}",
        };
        self.file.write_all(close).map_err(|e| self.io(e))?;
        self.file.flush().map_err(|e| self.io(e))?;
        self.file.get_ref().sync_all().map_err(|e| self.io(e))?;
        // What stops the rename is at the destination (a folder in the way): name it.
        std::fs::rename(&self.tmp, &self.path).map_err(|source| Error::Io {
            action: "cannot write",
            path: self.path.display().to_string(),
            source,
        })?;
        Ok(true)
    }

    /// Writes the record of the trial at `i`, with its separator.
    fn write_record(&mut self, i: usize, record: &TrialRecord<'_>) -> std::io::Result<()> {
        if i > 0 {
            self.file.write_all(b",")?;
        }
        match self.layout {
            Layout::Compact => serde_json::to_writer(&mut self.file, record)?,
            Layout::Pretty => {
                // JSON text holds no raw newline (strings escape it): each one is a line break.
                let text = serde_json::to_vec_pretty(record)?;
                for line in text.split(|&b| b == b'\n') {
                    self.file.write_all(PRETTY_INDENT)?;
                    self.file.write_all(line)?;
                }
            }
        }
        Ok(())
    }

    fn io(&self, source: std::io::Error) -> Error {
        Error::Io {
            action: "cannot write",
            path: self.tmp.display().to_string(),
            source,
        }
    }
}

mod summary;

pub use summary::{SUMMARY_TRIALS, render_summary, write_summary};

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use sweep_common::{EpochMetrics, WorkerId};

    use super::*;
    use crate::state::{Config, LeaseKey, LeaseOutcome};

    pub(super) const GRID: &str = "[sweep]\nname='r'\n[[experiment]]\nname='e'\ndataset='cifar10'\n\
                        [experiment.fixed]\nepochs=3\n[experiment.grid]\nseed=[1,2,3,4,5,6,7]\n";

    /// The grid [`GRID`], its scheduler with one worker named `worker`, and that worker's first
    /// lease (its key), at `now`.
    pub(super) fn leased(worker: &str, slots: u32, now: Instant) -> (Grid, Scheduler, LeaseKey) {
        let grid = Grid::parse(GRID, "g.toml").unwrap();
        let config = Config {
            lease_ttl: Duration::from_secs(30),
            max_attempts: 2,
            retry_after: Duration::from_millis(100),
        };
        let mut s = Scheduler::new(grid.trials().cloned(), config);
        let w = WorkerId::random();
        s.register(w, worker.into(), "cpu".into(), slots, now);
        let Ok(LeaseOutcome::Assigned { spec, attempt, .. }) = s.lease(w, now) else {
            panic!("a lease")
        };
        (grid, s, LeaseKey::new(w, spec.id, attempt))
    }

    #[test]
    fn a_rolling_copy_is_the_same_document_as_a_whole_one() {
        let now = Instant::now();
        let (grid, mut s, key) = leased("w", 2, now);
        let metrics = EpochMetrics {
            epoch: 1,
            train_loss: 0.5,
            train_accuracy: 60.0,
            test_accuracy: 55.0,
            seconds: 1.0,
            scalars: Default::default(),
        };
        s.report_epoch(key, metrics, now).unwrap();
        let out = tempfile::tempdir().unwrap();
        let mut rolling = RollingWrite::start(out.path(), &grid, "g.toml", &s).unwrap();
        let mut steps = 1;
        while !rolling.step(&s, None, 3).unwrap() {
            steps += 1;
        }
        assert_eq!(steps, 3, "7 trials, 3 at a time");
        let text = std::fs::read_to_string(out.path().join("results.json")).unwrap();
        let rolled: serde_json::Value = serde_json::from_str(&text).unwrap();
        let whole =
            serde_json::to_value(collect(&grid, "g.toml", &s, out.path(), None).unwrap()).unwrap();
        assert_eq!(rolled, whole);
        assert!(!out.path().join("results.tmp").exists());
    }

    #[test]
    fn the_whole_file_is_streamed_as_serde_pretty_prints_it() {
        let now = Instant::now();
        let (grid, mut s, key) = leased("w", 2, now);
        let metrics = EpochMetrics {
            epoch: 1,
            train_loss: f64::NAN,
            train_accuracy: 60.0,
            test_accuracy: 55.0,
            seconds: 1.0,
            scalars: Default::default(),
        };
        s.report_epoch(key, metrics, now).unwrap();
        let out = tempfile::tempdir().unwrap();
        write_results(out.path(), &grid, "g.toml", &s, None).unwrap();
        let text = std::fs::read_to_string(out.path().join("results.json")).unwrap();
        let whole =
            serde_json::to_string_pretty(&collect(&grid, "g.toml", &s, out.path(), None).unwrap());
        assert_eq!(text, whole.unwrap());
    }

    #[test]
    fn a_programs_logs_are_named_only_once_they_landed() {
        let grid = Grid::parse(
            "[sweep]\nname='p'\n[[experiment]]\nname='e'\ndataset='fashion-mnist'\n\
             program=['true']\n[experiment.fixed]\nepochs=1\n",
            "g.toml",
        )
        .unwrap();
        let config = Config {
            lease_ttl: Duration::from_secs(30),
            max_attempts: 2,
            retry_after: Duration::from_millis(100),
        };
        let mut s = Scheduler::new(grid.trials().cloned(), config);
        let out = tempfile::tempdir().unwrap();
        let logs = |s: &Scheduler| {
            collect(&grid, "g.toml", s, out.path(), None)
                .unwrap()
                .trials[0]
                .logs
                .clone()
        };
        assert!(logs(&s).is_empty(), "no attempt yet");
        let (w, now) = (WorkerId::random(), Instant::now());
        s.register(w, "w".into(), "cpu".into(), 1, now);
        assert!(matches!(s.lease(w, now), Ok(LeaseOutcome::Assigned { .. })));
        assert!(
            logs(&s).is_empty(),
            "leased, nothing uploaded: no dead link"
        );
        std::fs::create_dir_all(out.path().join("logs")).unwrap();
        std::fs::write(out.path().join("logs/e.stderr.log"), "oops").unwrap();
        assert_eq!(
            logs(&s),
            ["logs/e.stderr.log"],
            "only the stream that landed"
        );
        std::fs::write(out.path().join("logs/e.stdout.log"), "hi").unwrap();
        assert_eq!(logs(&s), ["logs/e.stdout.log", "logs/e.stderr.log"]);
    }
}
