//! The live view's accuracy tables, laid out by the report's own code ([`crate::report`]) so
//! that they fill in during the sweep exactly as the final report will show them: pivots of
//! final test and training accuracy when an experiment has two layout axes, else one row per
//! configuration.
//!
//! Bounded, and mostly off the state owner's task: the owner copies only what the tables need
//! ([`input`]: name, hyperparameters, state and final accuracies) of experiments of at most
//! [`TABLE_MAX_TRIALS`] trials, [`TABLE_TRIALS_IN_ALL`] in all; [`fill`] lays them out elsewhere
//! and shows at most [`TABLE_MAX_ROWS`] rows and [`TABLE_MAX_COLUMNS`] value columns of each.
//! A larger experiment's tables are in the report when the sweep ends; its row says so.

use std::collections::BTreeMap;
use std::sync::Arc;

use sweep_common::HyperParams;
use sweep_common::grid::Grid;

use super::index::Index;
use super::{Phase, Snapshot, TableView, finite, phase};
use crate::report::analysis;
use crate::report::model::{self, Results};
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

/// The grid's experiments as the report reads them (made once: they do not change).
pub fn experiments_of(grid: &Grid) -> Arc<[model::Experiment]> {
    results::experiment_records(grid)
        .iter()
        .filter_map(|e| {
            serde_json::to_value(e)
                .and_then(serde_json::from_value)
                .ok()
        })
        .collect()
}

/// What the tables need of a trial.
struct TableTrial {
    name: String,
    params: HyperParams,
    phase: Phase,
    test_accuracy: Option<f64>,
    train_accuracy: Option<f64>,
}

/// What the tables of one experiment row need.
struct Item {
    /// Its place in [`Snapshot::experiments`].
    row: usize,
    /// The experiment, as the report reads it.
    experiment: Option<model::Experiment>,
    /// Its trials, when its tables are made.
    trials: Option<Vec<TableTrial>>,
}

/// What [`fill`] needs, copied from the state (see the module's documentation).
pub struct Input {
    items: Vec<Item>,
}

/// Copies what the tables of `snap`'s experiments need from the state.
pub fn input(
    experiments: &[model::Experiment],
    s: &Scheduler,
    index: &Index,
    snap: &Snapshot,
) -> Input {
    let mut budget = TABLE_TRIALS_IN_ALL;
    let items = snap
        .experiments
        .iter()
        .enumerate()
        .map(|(row, e)| {
            let experiment = experiments.iter().find(|m| m.name == e.name).cloned();
            let n = e.counts.total as usize;
            let x = index.experiment(&e.name).map(|(x, _)| x);
            let trials = (n <= TABLE_MAX_TRIALS && n <= budget).then(|| {
                budget -= n;
                index
                    .matching(None, x)
                    .filter_map(|pos| s.trials().get(pos))
                    .map(|t| {
                        let r = t.result.as_ref();
                        TableTrial {
                            name: t.spec.name.clone(),
                            params: t.spec.params.clone(),
                            phase: phase(t),
                            test_accuracy: r.and_then(|r| finite(r.test_accuracy)),
                            train_accuracy: r.and_then(|r| finite(r.train_accuracy)),
                        }
                    })
                    .collect()
            });
            Item {
                row,
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

/// `t` as the report reads it.
fn trial(experiment: &str, t: TableTrial) -> model::Trial {
    let params = match serde_json::to_value(&t.params) {
        Ok(serde_json::Value::Object(map)) => map.into_iter().collect(),
        _ => BTreeMap::new(),
    };
    model::Trial {
        experiment: experiment.to_owned(),
        name: t.name,
        params,
        status: t.phase.name().to_owned(),
        test_accuracy: t.test_accuracy,
        train_accuracy: t.train_accuracy,
        ..model::Trial::default()
    }
}

/// The tables of one experiment (`name`), laid out by the report's code.
fn tables_of(
    name: &str,
    experiment: Option<model::Experiment>,
    trials: Vec<TableTrial>,
) -> Vec<TableView> {
    let results = Results {
        format: model::FORMAT,
        sweep: String::new(),
        grid_file: String::new(),
        finished: false,
        experiments: experiment.into_iter().collect(),
        trials: trials.into_iter().map(|t| trial(name, t)).collect(),
    };
    let views = analysis::views(&results);
    let Some(v) = views.iter().find(|v| v.experiment.name == name) else {
        return Vec::new();
    };
    if v.axes.len() == 2 {
        [Metric::Test, Metric::Train]
            .into_iter()
            .filter_map(|m| tables::pivot(v, m).map(|t| view(m.title(), t)))
            .collect()
    } else {
        vec![view("Final accuracies", tables::configurations(v))]
    }
}

/// Fills in the titles and accuracy tables of `snap`'s experiments from `input`.
pub fn fill(snap: &mut Snapshot, input: Input) {
    for item in input.items {
        let Some(row) = snap.experiments.get_mut(item.row) else {
            continue;
        };
        if let Some(e) = &item.experiment {
            row.title.clone_from(&e.title);
        }
        match item.trials {
            Some(trials) => row.tables = tables_of(&row.name, item.experiment, trials),
            None => {
                row.note = Some(format!(
                    "its {} trials are too many for live tables (at most {TABLE_MAX_TRIALS} per \
                     experiment, {TABLE_TRIALS_IN_ALL} in all): the report has them when the \
                     sweep ends; its trials can be listed page by page",
                    row.counts.total
                ));
            }
        }
    }
}
