//! `results.csv` (one row per trial) and `epochs.csv` (one row per trial per epoch), for pandas
//! and spreadsheets: RFC 4180 quoting, full-precision numbers, empty cells for missing values,
//! and no cell that a spreadsheet would run as a formula.

use sweep_common::grid::{Param, Value};
use sweep_common::results::{Results, Trial};

/// One CSV field: see `sweep_common::text::csv` (quoted when needed; text starting with `=`,
/// `+`, `-` or `@` that is not a number gets a `'` in front).
pub fn field(s: &str) -> String {
    sweep_common::text::csv(s).into_owned()
}

fn num(x: Option<f64>) -> String {
    x.filter(|x| x.is_finite())
        .map_or_else(String::new, |x| x.to_string())
}

/// One CSV line of `cells`, with its newline.
pub fn line(cells: &[String]) -> String {
    let cells: Vec<String> = cells.iter().map(|c| field(c)).collect();
    format!("{}\n", cells.join(","))
}

/// A hyperparameter's value as `results.json` writes it: a choice's name, an integer, a number
/// as JSON writes it (`1.0`, `0.001`).
fn param_cell(value: Value) -> String {
    match value {
        Value::Choice(c) => c.name.to_owned(),
        Value::Text(t) => t.to_owned(),
        Value::Int(i) => i.to_string(),
        Value::Float(x) => {
            serde_json::Number::from_f64(x).map_or_else(String::new, |n| n.to_string())
        }
    }
}

/// The header of `results.csv`: a column per hyperparameter, in axis order, among the trial's.
pub fn results_header() -> Vec<String> {
    let mut h: Vec<String> = ["id", "experiment", "name", "dataset"]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
    h.extend(Param::KEYS.iter().map(|k| (*k).to_owned()));
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
pub fn results_row(t: &Trial<'_>) -> Vec<String> {
    let mut row = vec![
        t.id.to_string(),
        t.experiment.to_string(),
        t.name.to_string(),
        t.dataset.name().to_owned(),
    ];
    row.extend(t.params.values().map(|(_, v)| param_cell(v)));
    row.extend([
        t.status.name().to_owned(),
        t.attempts.to_string(),
        t.worker.clone().unwrap_or_default(),
        num(t.train_accuracy),
        num(t.test_accuracy),
        num(t.gap()),
        num(t.wall_seconds),
        num(t.train_seconds),
        t.epochs.len().to_string(),
        t.failure.as_deref().unwrap_or_default().to_owned(),
    ]);
    row
}

/// `results.csv`.
pub fn results_csv(results: &Results<'_>) -> String {
    let mut s = line(&results_header());
    for t in &results.trials {
        s.push_str(&line(&results_row(t)));
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
pub fn epochs_csv(results: &Results<'_>) -> String {
    let header: Vec<String> = EPOCHS_HEADER.iter().map(|s| (*s).to_owned()).collect();
    let mut s = line(&header);
    for t in &results.trials {
        for row in epoch_rows(t) {
            s.push_str(&line(&row));
        }
    }
    s
}

/// `t`'s rows of `epochs.csv`, in epoch order.
pub fn epoch_rows<'t>(t: &'t Trial<'_>) -> impl Iterator<Item = Vec<String>> + 't {
    t.epochs.iter().map(move |e| {
        vec![
            t.id.to_string(),
            t.experiment.to_string(),
            t.name.to_string(),
            e.epoch.to_string(),
            num(Some(e.train_loss)),
            num(Some(e.train_accuracy)),
            num(Some(e.test_accuracy)),
            num(Some(e.seconds)),
            t.status.name().to_owned(),
        ]
    })
}
