//! The sweep's outputs on disk: `results.json` (one record per trial) and `summary.md`.
//!
//! Both are written atomically (temporary file, then rename). While the sweep runs,
//! `results.json` is rewritten a slice of trials at a time ([`RollingWrite`]), so that the copy
//! of a sweep of 100 000 trials never holds up the state owner for more than a few milliseconds;
//! it is written whole when the sweep ends or the coordinator stops. (The state database holds
//! every result the moment it is acknowledged; `results.json` is its readable copy.)

use std::borrow::Cow;
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use sweep_common::grid::Grid;
use sweep_common::results::{Experiment, Results, Status, Stopped, Trial as TrialRecord};

use crate::Error;
use crate::state::{Scheduler, Trial, TrialState};

/// Builds the `results.json` document from the current state (borrowing it), for the output
/// folder `out` (a program trial's logs are named only once they are there).
pub fn collect<'a>(grid: &Grid, grid_file: &str, s: &'a Scheduler, out: &Path) -> Results<'a> {
    Results {
        trials: s.trials().iter().map(|t| record(s, t, out)).collect(),
        ..header(grid, grid_file, s)
    }
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

/// The record of trial `t`, whose outputs are in `out`.
fn record<'a>(s: &Scheduler, t: &'a Trial, out: &Path) -> TrialRecord<'a> {
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
    let r = t.state.success().map(|s| &s.result);
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
        epochs: Cow::from(t.epochs.as_slice()),
        train_accuracy: r.map(|r| r.train_accuracy),
        test_accuracy: r.map(|r| r.test_accuracy),
        train_confusion: r.map(|r| Cow::Borrowed(&r.train_confusion)),
        test_confusion: r.map(|r| Cow::Borrowed(&r.test_confusion)),
        dataset_images: r.map(|r| r.dataset_images),
        weights: t.state.weights().map(Cow::from),
        logs: program_logs(t, |file| out.join(file).is_file()),
        failure,
        failed_attempts: Cow::from(t.failures.as_slice()),
        stopped,
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

/// Writes `results.json` into `out`, streamed (a sweep of 100 000 trials makes a file of about a
/// gigabyte, which is never held in memory).
pub fn write_results(out: &Path, results: &Results<'_>) -> Result<PathBuf, Error> {
    let path = out.join("results.json");
    write_atomic_with(&path, |f| {
        serde_json::to_writer_pretty(&mut *f, results).map_err(std::io::Error::other)?;
        f.flush()
    })?;
    Ok(path)
}

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
}

impl RollingWrite {
    /// Starts a new copy of `results.json` in `out`: everything but the trials.
    pub fn start(out: &Path, grid: &Grid, grid_file: &str, s: &Scheduler) -> Result<Self, Error> {
        let path = out.join("results.json");
        let tmp = path.with_extension("tmp");
        let io = |source| Error::Io {
            action: "cannot write",
            path: tmp.display().to_string(),
            source,
        };
        let mut file = std::io::BufWriter::new(std::fs::File::create(&tmp).map_err(io)?);
        let head = serde_json::to_string(&header(grid, grid_file, s))
            .map_err(|e| io(std::io::Error::other(e)))?;
        // `..."trials":[]}`: everything up to the trials' opening bracket.
        let open = head.strip_suffix("]}").unwrap_or(&head);
        file.write_all(open.as_bytes()).map_err(io)?;
        Ok(RollingWrite {
            out: out.to_owned(),
            path,
            tmp,
            file,
            next: 0,
        })
    }

    /// Writes the records of the next `count` trials; once all are written, finishes the file
    /// (synced, then renamed over `results.json`) and returns true.
    pub fn step(&mut self, s: &Scheduler, count: usize) -> Result<bool, Error> {
        let io = |source| Error::Io {
            action: "cannot write",
            path: self.tmp.display().to_string(),
            source,
        };
        let trials = s.trials();
        let end = (self.next + count).min(trials.len());
        for (i, t) in trials.iter().enumerate().take(end).skip(self.next) {
            if i > 0 {
                self.file.write_all(b",").map_err(io)?;
            }
            serde_json::to_writer(&mut self.file, &record(s, t, &self.out))
                .map_err(|e| io(std::io::Error::other(e)))?;
        }
        self.next = end;
        if end < trials.len() {
            return Ok(false);
        }
        self.file.write_all(b"]}").map_err(io)?;
        self.file.flush().map_err(io)?;
        self.file.get_ref().sync_all().map_err(io)?;
        std::fs::rename(&self.tmp, &self.path).map_err(io)?;
        Ok(true)
    }
}

fn pct(x: Option<f64>) -> String {
    x.map_or_else(|| "-".to_owned(), |x| format!("{x:.2}"))
}

/// Renders `summary.md`: per experiment, one row per trial and the best trial. Every name and
/// message is written as Markdown text (`sweep_common::text::markdown`), so that none can break
/// a table or add markup.
pub fn render_summary(results: &Results<'_>) -> String {
    use sweep_common::text::{markdown, markdown_code};

    let mut md = String::new();
    let ok = results.trials.iter().filter(|t| t.succeeded()).count();
    let failed = results.trials.iter().filter(|t| t.failed()).count();
    let _ = writeln!(md, "# Sweep `{}`\n", markdown_code(&results.sweep));
    let _ = writeln!(
        md,
        "Grid file `{}`: {} trials, {ok} succeeded, {failed} failed. Accuracies in %; \
         \"test\" is the held-out part of the official training set.\n",
        markdown_code(&results.grid_file),
        results.trials.len()
    );
    for e in &results.experiments {
        let _ = writeln!(
            md,
            "## {}\n",
            markdown(e.title.as_deref().unwrap_or(&e.name))
        );
        let _ = writeln!(
            md,
            "Experiment `{}`, dataset {}.\n",
            markdown_code(&e.name),
            e.dataset
        );
        let trials: Vec<&TrialRecord<'_>> = results
            .trials
            .iter()
            .filter(|t| t.experiment == e.name.as_str())
            .collect();
        summary_trials(&mut md, &trials);
        summary_best(&mut md, &trials);
        summary_curves(&mut md, &trials);
        md.push('\n');
    }
    md
}

/// The summary's table of an experiment's trials: one row per trial.
fn summary_trials(md: &mut String, trials: &[&TrialRecord<'_>]) {
    use sweep_common::text::markdown;

    let _ = writeln!(
        md,
        "| trial | status | test acc | train acc | gap | epochs | attempts | wall s | worker |"
    );
    let _ = writeln!(md, "|---|---|---:|---:|---:|---:|---:|---:|---|");
    for t in trials {
        let gap = t.train_accuracy.zip(t.test_accuracy).map(|(a, b)| a - b);
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            markdown(&t.name),
            t.failure.as_deref().map_or_else(
                || t.status.name().to_owned(),
                |f| format!("failed: {}", markdown(f))
            ),
            pct(t.test_accuracy),
            pct(t.train_accuracy),
            pct(gap),
            t.epochs.len(),
            t.attempts,
            t.wall_seconds
                .map_or_else(|| "-".to_owned(), |w| format!("{w:.1}")),
            t.worker.as_deref().map_or_else(|| "-".to_owned(), markdown),
        );
    }
}

/// The summary's line naming an experiment's best trial by test accuracy (none before one).
fn summary_best(md: &mut String, trials: &[&TrialRecord<'_>]) {
    let best = trials
        .iter()
        .filter_map(|t| {
            t.test_accuracy
                .filter(|a| a.is_finite())
                .map(|a| (a, &t.name))
        })
        .max_by(|a, b| a.0.total_cmp(&b.0));
    if let Some((acc, name)) = best {
        let _ = writeln!(
            md,
            "\nBest test accuracy: **{acc:.2} %** ({}).",
            sweep_common::text::markdown(name)
        );
    }
}

/// The summary's table of test accuracy after each epoch: one column per trial with epochs.
fn summary_curves(md: &mut String, trials: &[&TrialRecord<'_>]) {
    use sweep_common::text::markdown;

    let curves: Vec<&&TrialRecord<'_>> = trials.iter().filter(|t| !t.epochs.is_empty()).collect();
    let Some(longest) = curves.iter().map(|t| t.epochs.len()).max() else {
        return;
    };
    let _ = writeln!(md, "\nTest accuracy after each epoch:\n");
    let _ = write!(md, "| epoch |");
    for t in &curves {
        let _ = write!(md, " {} |", markdown(&t.name));
    }
    let _ = write!(md, "\n|---:|");
    for _ in &curves {
        let _ = write!(md, "---:|");
    }
    md.push('\n');
    for epoch in 0..longest {
        let _ = write!(md, "| {} |", epoch + 1);
        for t in &curves {
            let _ = write!(
                md,
                " {} |",
                pct(t.epochs.get(epoch).map(|m| m.test_accuracy))
            );
        }
        md.push('\n');
    }
}

/// Writes `summary.md` into `out`.
pub fn write_summary(out: &Path, results: &Results<'_>) -> Result<PathBuf, Error> {
    let path = out.join("summary.md");
    write_atomic(&path, render_summary(results).as_bytes())?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use sweep_common::{EpochMetrics, WorkerId};

    use super::*;
    use crate::state::{Config, LeaseKey, LeaseOutcome};

    const GRID: &str = "[sweep]\nname='r'\n[[experiment]]\nname='e'\ndataset='cifar10'\n\
                        [experiment.fixed]\nepochs=3\n[experiment.grid]\nseed=[1,2,3,4,5,6,7]\n";

    /// The grid [`GRID`], its scheduler with one worker named `worker`, and that worker's first
    /// lease (its key), at `now`.
    fn leased(worker: &str, slots: u32, now: Instant) -> (Grid, Scheduler, LeaseKey) {
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
        while !rolling.step(&s, 3).unwrap() {
            steps += 1;
        }
        assert_eq!(steps, 3, "7 trials, 3 at a time");
        let text = std::fs::read_to_string(out.path().join("results.json")).unwrap();
        let rolled: serde_json::Value = serde_json::from_str(&text).unwrap();
        let whole = serde_json::to_value(collect(&grid, "g.toml", &s, out.path())).unwrap();
        assert_eq!(rolled, whole);
        assert!(!out.path().join("results.tmp").exists());
    }

    /// The `|` of a Markdown table row that separate cells (not the escaped ones).
    fn separators(line: &str) -> usize {
        let mut n = 0;
        let mut escaped = false;
        for c in line.chars() {
            if c == '|' && !escaped {
                n += 1;
            }
            escaped = c == '\\' && !escaped;
        }
        n
    }

    #[test]
    fn names_and_messages_cannot_break_the_summary() {
        let now = Instant::now();
        // What an older database could hold (the wire refuses it now).
        let (grid, mut s, key) = leased("w | x\n| forged | row |", 1, now);
        let message = "<script>alert(1)</script> | *bold*\n\n# Sweep finished".to_owned();
        s.complete(
            key,
            crate::state::Outcome::Failed {
                // The trial's own failure: final at once.
                kind: crate::state::FailureKind::NonFiniteLoss,
                message,
            },
            now,
        )
        .unwrap();
        let md = render_summary(&collect(&grid, "g.toml", &s, Path::new("/nonexistent")));
        let rows: Vec<&str> = md
            .lines()
            .skip_while(|l| !l.starts_with("| trial |"))
            .take_while(|l| l.starts_with('|'))
            .collect();
        assert_eq!(rows.len(), 2 + 7, "{md}");
        assert!(rows.iter().all(|r| separators(r) == 10), "{md}");
        assert!(
            md.contains(
                "failed: &lt;script>alert(1)&lt;/script> \\| \\*bold\\*\\\\n\\\\n\\# Sweep finished"
            ),
            "{md}"
        );
        assert!(!md.contains("<script>"));
        assert_eq!(md.matches("\n# ").count(), 0, "{md}");
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
            collect(&grid, "g.toml", s, out.path()).trials[0]
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
