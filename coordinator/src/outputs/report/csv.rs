//! `results.csv` (one row per trial) and `epochs.csv` (one row per trial per epoch), for pandas
//! and spreadsheets: RFC 4180 quoting, full-precision numbers, empty cells for missing values,
//! and no cell that a spreadsheet would run as a formula.

use sweep_common::grid::Param;

use super::model::{Results, Trial};

/// One CSV field: see `sweep_common::text::csv` (quoted when needed; text starting with `=`,
/// `+`, `-` or `@` that is not a number gets a `'` in front).
pub fn field(s: &str) -> String {
    sweep_common::text::csv(s).into_owned()
}

fn num(x: Option<f64>) -> String {
    x.filter(|x| x.is_finite())
        .map_or_else(String::new, |x| x.to_string())
}

fn line(cells: &[String]) -> String {
    let cells: Vec<String> = cells.iter().map(|c| field(c)).collect();
    format!("{}\n", cells.join(","))
}

/// The hyperparameter columns: every known parameter in axis order, then any other key found
/// in the trials' params, sorted.
pub fn param_columns(trials: &[Trial]) -> Vec<String> {
    let mut cols: Vec<String> = Param::ALL.iter().map(|p| p.key().to_owned()).collect();
    let mut extra: Vec<String> = trials
        .iter()
        .flat_map(|t| t.params.keys())
        .filter(|k| !cols.contains(k))
        .cloned()
        .collect();
    extra.sort();
    extra.dedup();
    cols.extend(extra);
    cols
}

/// The header of `results.csv` for these parameter columns.
pub fn results_header(params: &[String]) -> Vec<String> {
    let mut h: Vec<String> = ["id", "experiment", "name", "dataset"]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
    h.extend(params.iter().cloned());
    h.extend(
        [
            "status",
            "attempts",
            "worker",
            "train_accuracy",
            "test_accuracy",
            "gap",
            "wall_seconds",
            "train_seconds",
            "epochs_completed",
            "failure",
        ]
        .iter()
        .map(|s| (*s).to_owned()),
    );
    h
}

/// One `results.csv` row.
pub fn results_row(t: &Trial, params: &[String]) -> Vec<String> {
    let mut row = vec![
        t.id.clone(),
        t.experiment.clone(),
        t.name.clone(),
        t.dataset.clone(),
    ];
    row.extend(params.iter().map(|k| t.param_raw(k)));
    row.extend([
        t.status.clone(),
        t.attempts.to_string(),
        t.worker.clone().unwrap_or_default(),
        num(t.train_accuracy),
        num(t.test_accuracy),
        num(t.gap()),
        num(t.wall_seconds),
        num(t.train_seconds),
        t.epochs.len().to_string(),
        t.failure.clone().unwrap_or_default(),
    ]);
    row
}

/// `results.csv`.
pub fn results_csv(results: &Results) -> String {
    let params = param_columns(&results.trials);
    let mut s = line(&results_header(&params));
    for t in &results.trials {
        s.push_str(&line(&results_row(t, &params)));
    }
    s
}

/// The header of `epochs.csv`.
pub const EPOCHS_HEADER: [&str; 9] = [
    "id",
    "experiment",
    "name",
    "epoch",
    "train_loss",
    "train_accuracy",
    "test_accuracy",
    "seconds",
    "status",
];

/// `epochs.csv`: every epoch every trial reported, in grid order, then epoch order.
pub fn epochs_csv(results: &Results) -> String {
    let header: Vec<String> = EPOCHS_HEADER.iter().map(|s| (*s).to_owned()).collect();
    let mut s = line(&header);
    for t in &results.trials {
        for e in &t.epochs {
            s.push_str(&line(&[
                t.id.clone(),
                t.experiment.clone(),
                t.name.clone(),
                e.epoch.to_string(),
                num(e.train_loss),
                num(e.train_accuracy),
                num(e.test_accuracy),
                num(e.seconds),
                t.status.clone(),
            ]));
        }
    }
    s
}
