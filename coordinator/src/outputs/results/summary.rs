//! `summary.md`: per experiment, its trials (every one of an experiment of at most
//! [`SUMMARY_TRIALS`], else its best), the best trial and the test accuracy after each epoch.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use sweep_common::grid::Grid;
use sweep_common::results::{Results, Trial as TrialRecord};

use super::{full_record, header, write_atomic};
use crate::Error;
use crate::state::Scheduler;
use crate::store::Reader;

fn pct(x: Option<f64>) -> String {
    x.map_or_else(|| "-".to_owned(), |x| format!("{x:.2}"))
}

/// `summary.md` lists every trial of an experiment of at most this many trials; of a larger
/// one, its best this many by test accuracy (every trial is in `results.json` and the report's
/// CSVs), so that writing it holds at most this many curves per experiment.
pub const SUMMARY_TRIALS: usize = 1_000;

/// How many trials the sweep and each experiment have in all (the summary may list fewer).
#[derive(Debug, Default)]
struct Totals {
    trials: usize,
    succeeded: usize,
    failed: usize,
    per_experiment: HashMap<String, usize>,
}

impl Totals {
    fn of(trials: &[TrialRecord<'_>]) -> Totals {
        let mut t = Totals {
            trials: trials.len(),
            succeeded: trials.iter().filter(|t| t.succeeded()).count(),
            failed: trials.iter().filter(|t| t.failed()).count(),
            per_experiment: HashMap::new(),
        };
        for r in trials {
            *t.per_experiment
                .entry(r.experiment.to_string())
                .or_default() += 1;
        }
        t
    }
}

/// Renders `summary.md`: per experiment, one row per trial and the best trial. Every name and
/// message is written as Markdown text (`sweep_common::text::markdown`), so that none can break
/// a table or add markup.
pub fn render_summary(results: &Results<'_>) -> String {
    render_listed(results, &Totals::of(&results.trials))
}

/// [`render_summary`] of `results`, whose trials may be some of the sweep's (`totals` says how
/// many it has).
fn render_listed(results: &Results<'_>, totals: &Totals) -> String {
    use sweep_common::text::{markdown, markdown_code};

    let mut md = String::new();
    let _ = writeln!(md, "# Sweep `{}`\n", markdown_code(&results.sweep));
    let _ = writeln!(
        md,
        "Grid file `{}`: {} trials, {} succeeded, {} failed. Accuracies in %; \
         \"test\" is the held-out part of the official training set.\n",
        markdown_code(&results.grid_file),
        totals.trials,
        totals.succeeded,
        totals.failed,
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
        let all = totals.per_experiment.get(&e.name).copied().unwrap_or(0);
        if all > trials.len() {
            let _ = writeln!(
                md,
                "{all} trials: the {} best by test accuracy are listed; every trial is in \
                 `results.json` and the report's `results.csv`.\n",
                trials.len()
            );
        }
        summary_trials(&mut md, &trials);
        summary_best(&mut md, &trials);
        summary_curves(&mut md, &trials);
        md.push('\n');
    }
    md
}

/// The positions of the trials `summary.md` lists, in grid order: every trial of an experiment
/// of at most [`SUMMARY_TRIALS`], else its best [`SUMMARY_TRIALS`] succeeded ones.
fn summary_positions(s: &Scheduler) -> Vec<usize> {
    let mut by_experiment: HashMap<&str, Vec<usize>> = HashMap::new();
    for (i, t) in s.trials().iter().enumerate() {
        by_experiment
            .entry(t.spec.experiment.as_str())
            .or_default()
            .push(i);
    }
    let accuracy = |i: &usize| {
        s.trials()[*i]
            .scores()
            .map_or(f64::NAN, |r| r.test_accuracy)
    };
    let mut listed = Vec::new();
    for (_, mut positions) in by_experiment {
        if positions.len() > SUMMARY_TRIALS {
            positions.retain(|i| accuracy(i).is_finite());
            // The best first; the earliest in grid order on ties.
            positions.sort_by(|a, b| accuracy(b).total_cmp(&accuracy(a)).then(a.cmp(b)));
            positions.truncate(SUMMARY_TRIALS);
        }
        listed.extend(positions);
    }
    listed.sort_unstable();
    listed
}

/// Writes `summary.md` into `out` from the state (see [`SUMMARY_TRIALS`]; an archived trial's
/// curve read from `reader`).
pub fn write_summary(
    out: &Path,
    grid: &Grid,
    grid_file: &str,
    s: &Scheduler,
    reader: Option<&Reader>,
) -> Result<PathBuf, Error> {
    let counts = s.counts();
    let mut totals = Totals {
        trials: s.trials().len(),
        succeeded: counts.succeeded,
        failed: counts.failed,
        per_experiment: HashMap::new(),
    };
    for t in s.trials() {
        *totals
            .per_experiment
            .entry(t.spec.experiment.clone())
            .or_default() += 1;
    }
    let trials = summary_positions(s)
        .into_iter()
        .map(|i| full_record(s, &s.trials()[i], out, reader))
        .collect::<Result<_, _>>()?;
    let doc = Results {
        trials,
        ..header(grid, grid_file, s)
    };
    let path = out.join("summary.md");
    write_atomic(&path, render_listed(&doc, &totals).as_bytes())?;
    Ok(path)
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

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::super::collect;
    use super::super::tests::leased;
    use super::*;
    use crate::state::{Config, Scheduler};

    #[test]
    fn a_summary_of_a_large_experiment_lists_its_best_trials() {
        let seeds: Vec<String> = (0..SUMMARY_TRIALS + 5).map(|i| i.to_string()).collect();
        let text = format!(
            "[sweep]\nname='r'\n[[experiment]]\nname='e'\ndataset='cifar10'\n\
             [experiment.fixed]\nepochs=3\n[experiment.grid]\nseed=[{}]\n",
            seeds.join(",")
        );
        let grid = Grid::parse(&text, "g.toml").unwrap();
        let config = Config {
            lease_ttl: Duration::from_secs(30),
            max_attempts: 2,
            retry_after: Duration::from_millis(100),
        };
        let s = Scheduler::new(grid.trials().cloned(), config);
        let out = tempfile::tempdir().unwrap();
        write_summary(out.path(), &grid, "g.toml", &s, None).unwrap();
        let md = std::fs::read_to_string(out.path().join("summary.md")).unwrap();
        assert!(md.contains(&format!(
            "`g.toml`: {} trials, 0 succeeded",
            SUMMARY_TRIALS + 5
        )));
        // None succeeded: none is among the best, and no row is listed.
        assert!(
            md.contains(&format!("{} trials: the 0 best", SUMMARY_TRIALS + 5)),
            "{md}"
        );
        assert_eq!(
            md.lines().filter(|l| l.starts_with("| ")).count(),
            1,
            "{md}"
        );
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
        let md =
            render_summary(&collect(&grid, "g.toml", &s, Path::new("/nonexistent"), None).unwrap());
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
}
