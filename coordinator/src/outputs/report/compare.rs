//! The data behind the comparison views of `report.html` (parallel coordinates over the
//! hyperparameters and the metric, each hyperparameter's importance, the trial table): every
//! trial's varying hyperparameters and results, columnar and compact, and per experiment the
//! importance of its hyperparameters ([`super::importance`]) for the final test accuracy.
//!
//! Pure: made from the parsed results only. The page's script (`views/compare.js`) draws it.

use serde::Serialize;
use sweep_common::grid::{Domain, Param, Value};
use sweep_common::results::Trial;
use sweep_common::trial::HyperParams;

use super::analysis;
use super::importance::{self, Column, Importance, Unavailable};
use super::summary::{Summaries, Summary};

/// A hyperparameter some experiment varies.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ParamInfo {
    /// Its key (`learning_rate`).
    pub key: &'static str,
    /// Its report label (`Learning rate`).
    pub label: String,
    /// True when its values are numbers (else choices, shown as text).
    pub numeric: bool,
}

/// An experiment as the views show it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ExperimentInfo {
    /// Its name.
    pub name: String,
    /// Its title, or its name.
    pub title: String,
    /// The hyperparameters it varies, as indexes into [`Data::params`].
    pub params: Vec<usize>,
    /// Their importance for the final test accuracy, in the order of `params`.
    pub importance: Option<Importance>,
    /// Why there is none, if there is none.
    pub importance_note: Option<String>,
}

/// A trial's row: `[name, experiment, status, test accuracy, train accuracy, wall seconds,
/// value of each of `params`...]` (an experiment's index into `experiments`; `null` for a value
/// the trial does not have).
pub type Row = Vec<serde_json::Value>;

/// Everything the comparison views draw.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Data {
    /// The metric compared.
    pub metric: &'static str,
    /// Names of a row's fixed columns, before the hyperparameters'.
    pub columns: [&'static str; 6],
    /// The hyperparameters any experiment varies, in the grid's axis order.
    pub params: Vec<ParamInfo>,
    /// The experiments.
    pub experiments: Vec<ExperimentInfo>,
    /// Every trial, in grid order.
    pub trials: Vec<Row>,
}

/// The label of the metric the views compare.
pub const METRIC: &str = "Test accuracy (%)";

/// True when `param`'s values are numbers.
pub fn numeric(param: Param) -> bool {
    !matches!(param.def().domain, Domain::Choice(_))
}

fn number(x: Option<f64>) -> serde_json::Value {
    x.filter(|x| x.is_finite())
        .map_or(serde_json::Value::Null, serde_json::Value::from)
}

/// The hyperparameters whose value differs between `trials`, in the grid's axis order.
pub fn varied_among<'a>(trials: impl Iterator<Item = &'a HyperParams> + Clone) -> Vec<Param> {
    Param::ALL
        .into_iter()
        .filter(|&p| {
            let mut values = trials.clone().map(|h| h.get(p).display());
            let first = values.next();
            values.any(|v| Some(v) != first)
        })
        .collect()
}

/// The importance of `params` for a metric, from each trial's hyperparameters and metric (a
/// trial whose metric is not finite is left out).
pub fn importance_over<'a>(
    params: &[Param],
    trials: impl Iterator<Item = (&'a HyperParams, f64)>,
) -> Result<Importance, Unavailable> {
    let mut columns: Vec<Column> = params
        .iter()
        .map(|&p| {
            if numeric(p) {
                Column::Numeric(Vec::new())
            } else {
                Column::Categorical(Vec::new())
            }
        })
        .collect();
    let mut metric = Vec::new();
    for (h, y) in trials {
        for (column, &p) in columns.iter_mut().zip(params) {
            match (column, h.get(p)) {
                (Column::Numeric(v), Value::Int(i)) => v.push(i as f64),
                (Column::Numeric(v), Value::Float(x)) => v.push(x),
                (Column::Numeric(v), Value::Choice(_) | Value::Text(_)) => v.push(f64::NAN),
                (Column::Categorical(v), value) => v.push(value.display()),
            }
        }
        metric.push(y);
    }
    importance::importance(&columns, &metric)
}

/// A hyperparameter's value as the views show it: a number, or a choice's text.
pub fn cell(value: Value) -> serde_json::Value {
    match value {
        Value::Choice(c) => serde_json::Value::from(c.display),
        Value::Text(t) => serde_json::Value::from(t),
        Value::Int(i) => serde_json::Value::from(i),
        Value::Float(x) => serde_json::Value::from(x),
    }
}

/// The comparison data of the experiments `summaries` describe, without the trials' rows
/// ([`Data::trials`] empty), which [`super::rows`] writes into the page.
pub fn data(summaries: &Summaries) -> Data {
    let varied: Vec<Vec<Param>> = summaries.experiments.iter().map(Summary::varied).collect();
    let params = all_varied(&varied);
    let index = |p: Param| params.iter().position(|&q| q == p).unwrap_or(0);
    let experiments = summaries
        .experiments
        .iter()
        .zip(&varied)
        .map(|(s, own)| {
            let (importance, importance_note) = match s.importance() {
                Ok(i) => (Some(i), None),
                Err(e) => (None, Some(e.to_string())),
            };
            ExperimentInfo {
                name: s.experiment.name.clone(),
                title: s
                    .experiment
                    .title
                    .clone()
                    .unwrap_or_else(|| s.experiment.name.clone()),
                params: own.iter().map(|&p| index(p)).collect(),
                importance,
                importance_note,
            }
        })
        .collect();
    Data {
        metric: METRIC,
        columns: [
            "Trial",
            "Experiment",
            "State",
            "Test accuracy (%)",
            "Train accuracy (%)",
            "Wall time (s)",
        ],
        params: params
            .into_iter()
            .map(|p| ParamInfo {
                key: p.key(),
                label: analysis::label(p),
                numeric: numeric(p),
            })
            .collect(),
        experiments,
        trials: Vec::new(),
    }
}

/// The hyperparameters any of the experiments varies (`varied`, one list each), in the grid's
/// axis order.
pub fn all_varied(varied: &[Vec<Param>]) -> Vec<Param> {
    Param::ALL
        .into_iter()
        .filter(|p| varied.iter().any(|v| v.contains(p)))
        .collect()
}

/// `value` of `param` as the views show it: a text value of one of `axes` (a model) by the label
/// the report's tables and legends give it ([`analysis::LayoutAxis::show`]), else as [`cell`].
fn shown_cell(axes: &[analysis::LayoutAxis], param: Param, value: Value) -> serde_json::Value {
    match (value, axes.iter().find(|a| a.param == param)) {
        (Value::Text(_), Some(axis)) => serde_json::Value::from(axis.show(value)),
        _ => cell(value),
    }
}

/// A trial's row's fixed cells (name, state, test and train accuracy, wall time) and its value
/// of every hyperparameter (in [`Param::ALL`]'s order), as JSON ([`Row`]'s cells but the
/// experiment's), a model of one of its experiment's layout `axes` by its label.
pub fn row_cells(
    t: &Trial<'_>,
    axes: &[analysis::LayoutAxis],
) -> (Vec<serde_json::Value>, Vec<serde_json::Value>) {
    let fixed = vec![
        serde_json::Value::from(t.name.as_ref()),
        serde_json::Value::from(t.status.name()),
        number(t.test_accuracy),
        number(t.train_accuracy),
        number(t.wall_seconds),
    ];
    let params = Param::ALL
        .into_iter()
        .map(|p| shown_cell(axes, p, t.params.get(p)))
        .collect();
    (fixed, params)
}

/// The text `data` (whose rows are empty) embeds around its rows: what comes before the first
/// row and after the last, escaped as [`embedded_json`] escapes.
pub fn embedded_parts(data: &Data) -> (String, String) {
    let json = embedded_json(data);
    match json.strip_suffix("[]}") {
        Some(head) => (format!("{head}["), "]}".to_owned()),
        None => (json, String::new()),
    }
}

/// `s` with `<`, `>` and `&` escaped as JSON `\u` escapes (valid only inside JSON strings,
/// where only they can occur).
pub fn escape_embedded(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            c => out.push(c),
        }
    }
    out
}

/// `data` as JSON that can sit inside a `<script type="application/json">` element (and an XML
/// parser's idea of one): every `<`, `>` and `&` escaped as a JSON `\u` escape, which only
/// strings can hold.
pub fn embedded_json(data: &Data) -> String {
    let json = serde_json::to_string(data).unwrap_or_else(|_| "null".to_owned());
    escape_embedded(&json)
}
