//! The live view's accuracy tables, laid out by the report's own code ([`crate::report`]) from
//! the typed records of `results.json` ([`sweep_common::results`]), so that they fill in during
//! the sweep exactly as the final report will show them: pivots of final test and training
//! accuracy when an experiment has two layout axes, else one row per configuration.
//!
//! Bounded, and mostly off the state owner's task: the owner copies only what the tables need
//! ([`input`]: name, hyperparameters, state and final accuracies) of experiments of at most
//! [`TABLE_MAX_TRIALS`] trials, [`TABLE_TRIALS_IN_ALL`] in all; [`make`] lays them out elsewhere
//! and shows at most [`TABLE_MAX_ROWS`] rows and [`TABLE_MAX_COLUMNS`] value columns of each.
//! A larger experiment's tables are in the report when the sweep ends; its row says so.
//!
//! Made once per change, for every caller: [`Shared`] keeps the tables made for the trials as
//! they are now ([`Index::version`]), so the web view, `coordinator status` and the gRPC
//! `Status` of any number of clients copy and lay them out once until a trial changes.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;

use sweep_common::grid::Grid;
use sweep_common::results::{self as model, Experiment, Results};
use tokio::sync::Mutex;

use super::index::Index;
use super::{Snapshot, TableView, finite, phase};
use crate::report::analysis;
use crate::report::tables::{self, Metric, Table};
use crate::results;
use crate::state::Scheduler;

/// Trials an experiment may have for its tables to be made live.
pub const TABLE_MAX_TRIALS: usize = 1000;
/// Trials the tables of one snapshot are made from, at most.
pub const TABLE_TRIALS_IN_ALL: usize = 5000;
/// Rows of a table shown at most (the first).
pub const TABLE_MAX_ROWS: usize = 50;
/// Columns of a table shown at most besides the first (the first).
pub const TABLE_MAX_COLUMNS: usize = 20;

/// The grid's experiments as `results.json` records them (made once: they do not change).
pub fn experiments_of(grid: &Grid) -> Arc<[Experiment]> {
    results::experiment_records(grid).into()
}

/// What the tables of one experiment row need.
struct Item {
    /// Its name.
    name: String,
    /// Its trials in all.
    total: u32,
    /// The experiment, as `results.json` records it.
    experiment: Option<Experiment>,
    /// Its trials as `results.json` records them, with what the tables show (state, final
    /// accuracies), when its tables are made.
    trials: Option<Vec<model::Trial<'static>>>,
}

/// What [`make`] needs, copied from the state (see the module's documentation).
pub struct Input {
    items: Vec<Item>,
}

/// The record of trial `t` with what the tables show of it.
fn record(t: &crate::state::Trial) -> model::Trial<'static> {
    let r = t.scores();
    model::Trial {
        id: t.spec.id,
        experiment: Cow::Owned(t.spec.experiment.clone()),
        name: Cow::Owned(t.spec.name.clone()),
        dataset: t.spec.dataset,
        params: Cow::Owned(t.spec.params.clone()),
        split: t.spec.split,
        status: phase(t),
        attempts: t.attempts,
        worker: None,
        wall_seconds: None,
        train_seconds: None,
        epochs: Cow::Borrowed(&[]),
        train_accuracy: r.and_then(|r| finite(r.train_accuracy)),
        test_accuracy: r.and_then(|r| finite(r.test_accuracy)),
        train_confusion: None,
        test_confusion: None,
        dataset_images: None,
        weights: None,
        logs: Vec::new(),
        failure: None,
        failed_attempts: Cow::Borrowed(&[]),
        stopped: None,
        promoted_epochs: None,
    }
}

/// Copies what the tables of `snap`'s experiments need from the state.
pub fn input(experiments: &[Experiment], s: &Scheduler, index: &Index, snap: &Snapshot) -> Input {
    let mut budget = TABLE_TRIALS_IN_ALL;
    let items = snap
        .experiments
        .iter()
        .map(|e| {
            let experiment = experiments.iter().find(|m| m.name == e.name).cloned();
            let n = e.counts.total as usize;
            let x = index.experiment(&e.name).map(|(x, _)| x);
            let trials = (n <= TABLE_MAX_TRIALS && n <= budget).then(|| {
                budget -= n;
                index
                    .matching(None, x)
                    .filter_map(|pos| s.trials().get(pos))
                    .map(record)
                    .collect()
            });
            Item {
                name: e.name.clone(),
                total: e.counts.total,
                experiment,
                trials,
            }
        })
        .collect();
    Input { items }
}

fn view(caption: &str, mut t: Table) -> TableView {
    let (rows, columns) = (t.rows.len(), t.header.len());
    let mut cut = Vec::new();
    if rows > TABLE_MAX_ROWS {
        t.rows.truncate(TABLE_MAX_ROWS);
        cut.push(format!("the first {TABLE_MAX_ROWS} of {rows} rows"));
    }
    if columns > TABLE_MAX_COLUMNS + 1 {
        let keep = TABLE_MAX_COLUMNS + 1;
        t.header.truncate(keep);
        t.numeric.truncate(keep);
        for row in &mut t.rows {
            row.truncate(keep);
        }
        cut.push(format!(
            "the first {TABLE_MAX_COLUMNS} of {} columns",
            columns - 1
        ));
    }
    let caption = if cut.is_empty() {
        caption.to_owned()
    } else {
        format!("{caption} ({}; the report has them all)", cut.join(", "))
    };
    TableView {
        caption,
        numeric: (0..t.header.len()).map(|i| t.is_numeric(i)).collect(),
        header: t.header,
        rows: t.rows,
    }
}

/// The tables of one experiment (`name`), laid out by the report's code.
fn tables_of(
    name: &str,
    experiment: Option<Experiment>,
    trials: Vec<model::Trial<'static>>,
) -> Vec<TableView> {
    let results = Results {
        format: model::FORMAT,
        sweep: String::new(),
        grid_file: String::new(),
        finished: false,
        experiments: experiment.into_iter().collect(),
        trials,
    };
    let views = analysis::views(&results);
    let Some(v) = views.iter().find(|v| v.experiment.name == name) else {
        return Vec::new();
    };
    let mut made: Vec<TableView> = if v.axes.len() == 2 {
        [Metric::Test, Metric::Train]
            .into_iter()
            .filter_map(|m| tables::pivot(v, m).map(|t| view(m.title(), t)))
            .collect()
    } else {
        vec![view("Final accuracies", tables::configurations(v))]
    };
    // The key from the names the tables give models to their layers.
    made.extend(tables::models(v).map(|t| view(tables::MODELS_CAPTION, t)));
    made
}

/// The title, tables and note of one experiment row.
#[derive(Debug)]
struct Made {
    name: String,
    title: Option<String>,
    tables: Vec<TableView>,
    note: Option<String>,
}

/// The titles and accuracy tables of a status's experiment rows, laid out.
#[derive(Debug)]
pub struct Filled {
    rows: Vec<Made>,
}

/// Lays out the tables `input` holds the trials of.
pub fn make(input: Input) -> Filled {
    let rows = input
        .items
        .into_iter()
        .map(|item| {
            let title = item.experiment.as_ref().and_then(|e| e.title.clone());
            let (tables, note) = match item.trials {
                Some(trials) => (tables_of(&item.name, item.experiment, trials), None),
                None => (
                    Vec::new(),
                    Some(format!(
                        "its {} trials are too many for live tables (at most {TABLE_MAX_TRIALS} \
                         per experiment, {TABLE_TRIALS_IN_ALL} in all): the report has them \
                         when the sweep ends; its trials can be listed page by page",
                        item.total
                    )),
                ),
            };
            Made {
                name: item.name,
                title,
                tables,
                note,
            }
        })
        .collect();
    Filled { rows }
}

/// Fills in the titles and accuracy tables of `snap`'s experiments from `filled`.
pub fn fill(snap: &mut Snapshot, filled: &Filled) {
    for row in &mut snap.experiments {
        if let Some(made) = filled.rows.iter().find(|m| m.name == row.name) {
            row.title.clone_from(&made.title);
            row.tables.clone_from(&made.tables);
            row.note.clone_from(&made.note);
        }
    }
}

/// The tables of a status: made already, or what making them needs.
pub enum Tables {
    /// Made for the trials as they are.
    Ready(Arc<Filled>),
    /// Not made yet for the trials as they are.
    Make {
        /// The version of the trials ([`Index::version`]).
        version: u64,
        /// The experiment the status is limited to, if any (its rows).
        only: Option<String>,
        /// What making them needs.
        input: Input,
    },
}

/// The tables made for the latest version of the trials, by the experiment a status is limited
/// to (`None`: every experiment shown), shared by every caller of the state owner's handle.
#[derive(Default)]
pub struct Shared {
    made: Mutex<Versioned>,
}

/// The tables made for one version of the trials, by the experiment a status is limited to.
#[derive(Default)]
struct Versioned {
    version: u64,
    by_only: HashMap<Option<String>, Arc<Filled>>,
}

impl Versioned {
    fn get(&self, version: u64, only: &Option<String>) -> Option<Arc<Filled>> {
        (self.version == version)
            .then(|| self.by_only.get(only).cloned())
            .flatten()
    }
}

impl Shared {
    /// On the state owner's task: the tables of `snap` (a detailed status limited to `only`),
    /// if they were made for the trials as they are; else a copy of what making them needs.
    /// Never waits: while another caller is making tables, this one copies its own input.
    pub fn tables(
        &self,
        experiments: &[Experiment],
        s: &Scheduler,
        index: &Index,
        snap: &Snapshot,
        only: Option<&str>,
    ) -> Tables {
        let version = index.version();
        let only = only.map(str::to_owned);
        if let Some(filled) = self
            .made
            .try_lock()
            .ok()
            .and_then(|made| made.get(version, &only))
        {
            return Tables::Ready(filled);
        }
        Tables::Make {
            version,
            only,
            input: input(experiments, s, index, snap),
        }
    }

    /// Off the state owner's task: the tables `tables` stands for, laid out on a blocking
    /// thread unless a concurrent caller has just made them. `None` if the runtime is shutting
    /// down.
    pub async fn resolve(&self, tables: Tables) -> Option<Arc<Filled>> {
        let (version, only, input) = match tables {
            Tables::Ready(filled) => return Some(filled),
            Tables::Make {
                version,
                only,
                input,
            } => (version, only, input),
        };
        let mut made = self.made.lock().await;
        if let Some(filled) = made.get(version, &only) {
            return Some(filled);
        }
        let filled = Arc::new(
            tokio::task::spawn_blocking(move || make(input))
                .await
                .ok()?,
        );
        // Kept only for the newest version asked for (an older one is already out of date).
        if version > made.version || made.by_only.is_empty() {
            *made = Versioned {
                version,
                by_only: HashMap::new(),
            };
        }
        if made.version == version {
            made.by_only.insert(only, Arc::clone(&filled));
        }
        Some(filled)
    }
}
