//! The report's tables, as plain data ([`Table`]) that the Markdown and HTML renderers share.
//!
//! Layout rule for the accuracy tables, from the experiment's layout axes (every non-seed axis
//! with more than one value, in the grid's axis order, which is the order of the hyperparameter
//! table, `sweep_common::grid::Param`):
//! - two axes: pivot tables (test, train, gap) whose columns are the FIRST axis and rows the
//!   SECOND (lab 1 part 1: columns ReLU/Tanh/Sigmoid, rows hidden layers 1/2/3, as the lab);
//! - otherwise (none, one, three or more): one table with a column per axis and a column per
//!   metric, one row per configuration.
//!
//! With repeats each cell is `mean ± sample std (n=N)` over the seeds that succeeded.

use super::analysis::{Config, Stat, View, label};
use sweep_common::architecture::Architecture;
use sweep_common::grid::{Param, Value};
use sweep_common::results::Trial;

/// A table: a header row and body rows of text cells.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    /// Column headers.
    pub header: Vec<String>,
    /// Body rows, each as long as the header.
    pub rows: Vec<Vec<String>>,
    /// Per column: true when it holds numbers (right-aligned).
    pub numeric: Vec<bool>,
}

impl Table {
    /// True when column `i` holds numbers.
    pub fn is_numeric(&self, i: usize) -> bool {
        self.numeric.get(i).copied().unwrap_or(false)
    }
}

/// Columns `from..len` numeric, the others text.
fn numeric_from(len: usize, from: usize) -> Vec<bool> {
    (0..len).map(|i| i >= from).collect()
}

/// A final metric of a trial.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    /// Final test accuracy (%).
    Test,
    /// Final training accuracy (%).
    Train,
    /// Train minus test accuracy (percentage points).
    Gap,
}

impl Metric {
    /// Every metric, in table order.
    pub const ALL: [Metric; 3] = [Metric::Test, Metric::Train, Metric::Gap];

    /// Its column header or table caption.
    pub fn title(self) -> &'static str {
        match self {
            Metric::Test => "Test accuracy (%)",
            Metric::Train => "Training accuracy (%)",
            Metric::Gap => "Train - test gap (points)",
        }
    }

    /// Its value for one trial.
    pub fn of(self, t: &Trial<'_>) -> Option<f64> {
        match self {
            Metric::Test => t.test_accuracy,
            Metric::Train => t.train_accuracy,
            Metric::Gap => t.gap(),
        }
    }
}

/// Two decimals, like the lab; with repeats also the sample std and the count. `unit` goes
/// after the numbers (`" %"` in prose, empty in tables whose header names the unit).
pub fn fmt_stat(s: &Stat, repeats: bool, unit: &str) -> String {
    match (repeats, s.std) {
        (false, _) => format!("{:.2}{unit}", s.mean),
        (true, Some(sd)) => format!("{:.2} ± {:.2}{unit} (n={})", s.mean, sd, s.n),
        (true, None) => format!("{:.2}{unit} (n={})", s.mean, s.n),
    }
}

/// A configuration's cell for `metric`: the value, `failed` when every trial failed, else `-`.
pub fn cell(config: Option<&Config>, metric: Metric, repeats: bool) -> String {
    match config {
        None => "-".into(),
        Some(c) => match c.stat(metric) {
            Some(s) => fmt_stat(&s, repeats, ""),
            None if c.all_failed() => "failed".into(),
            None => "-".into(),
        },
    }
}

/// A pivot table of `metric`: columns = `view.axes[0]`, rows = `view.axes[1]`.
/// `None` unless the view has exactly two layout axes.
pub fn pivot(view: &View<'_>, metric: Metric) -> Option<Table> {
    if view.axes.len() != 2 {
        return None;
    }
    pivot_slice(view, metric, &[])
}

/// The pivots of `metric` when the grid file names the layout and more than two axes vary: one
/// per combination of the other axes' values, with a caption naming that combination.
pub fn pivot_slices(view: &View<'_>, metric: Metric) -> Vec<(String, Table)> {
    if view.axes.len() < 3 || view.experiment.table.is_none() {
        return Vec::new();
    }
    let rest = &view.axes[2..];
    let mut combos: Vec<Vec<Value>> = vec![Vec::new()];
    for axis in rest {
        combos = combos
            .into_iter()
            .flat_map(|c| {
                axis.values.iter().map(move |v| {
                    let mut c = c.clone();
                    c.push(*v);
                    c
                })
            })
            .collect();
    }
    combos
        .into_iter()
        .filter_map(|combo| {
            let caption = rest
                .iter()
                .zip(&combo)
                .map(|(a, v)| format!("{} {}", label(a.param), a.show(*v)))
                .collect::<Vec<_>>()
                .join(", ");
            pivot_slice(view, metric, &combo).map(|t| (caption, t))
        })
        .collect()
}

/// The pivot over the configurations whose other axes (after the first two) take `rest`.
fn pivot_slice(view: &View<'_>, metric: Metric, rest: &[Value]) -> Option<Table> {
    let [cols, rows, ..] = view.axes.as_slice() else {
        return None;
    };
    let mut header = vec![format!("{} / {}", label(rows.param), label(cols.param))];
    header.extend(cols.shown.iter().cloned());
    let body = rows
        .values
        .iter()
        .zip(&rows.shown)
        .map(|(r, shown)| {
            let mut row = vec![shown.clone()];
            row.extend(cols.values.iter().map(|c| {
                let key: Vec<Value> = [*c, *r].into_iter().chain(rest.iter().copied()).collect();
                let config = view.configs.iter().find(|k| k.is(&key));
                cell(config, metric, view.repeats)
            }));
            row
        })
        .collect();
    Some(Table {
        numeric: numeric_from(header.len(), 1),
        header,
        rows: body,
    })
}

/// The caption of [`models`]' table.
pub const MODELS_CAPTION: &str = "Models, as the tables and figures name them";

/// The key to a model axis: each model as the report names it and its layers as the grid file
/// writes them. `None` without a model axis, or when every model is shown as written.
pub fn models(view: &View<'_>) -> Option<Table> {
    let axis = view.axes.iter().find(|a| a.param == Param::Model)?;
    let written: Vec<String> = axis.values.iter().map(|v| v.display()).collect();
    if written == axis.shown {
        return None;
    }
    Some(Table {
        header: vec!["Model".into(), "Layers".into()],
        rows: axis
            .shown
            .iter()
            .zip(written)
            .map(|(shown, written)| vec![shown.clone(), written])
            .collect(),
        numeric: vec![false, false],
    })
}

/// One row per configuration: a column per layout axis, then test, train and gap.
pub fn configurations(view: &View<'_>) -> Table {
    let mut header: Vec<String> = view.axes.iter().map(|a| label(a.param)).collect();
    let lead = if view.axes.is_empty() {
        header.push("Configuration".into());
        1
    } else {
        header.len()
    };
    header.extend(Metric::ALL.iter().map(|m| m.title().to_owned()));
    let rows = view
        .configs
        .iter()
        .map(|c| {
            let mut row = if view.axes.is_empty() {
                vec![match c.trials {
                    1 => c.first.clone(),
                    n => format!("all {n} trials"),
                }]
            } else {
                c.shown.clone()
            };
            row.extend(Metric::ALL.iter().map(|m| cell(Some(c), *m, view.repeats)));
            row
        })
        .collect();
    Table {
        numeric: numeric_from(header.len(), lead),
        header,
        rows,
    }
}

fn opt(x: Option<f64>, decimals: usize) -> String {
    x.filter(|x| x.is_finite())
        .map_or_else(|| "-".into(), |x| format!("{x:.decimals$}"))
}

/// A scalar a program reported, in a table cell: 4 decimals, or 4 significant digits where
/// those would show too little.
fn scalar(x: Option<f64>) -> String {
    match x.filter(|x| x.is_finite()) {
        Some(x) if x != 0.0 && !(1e-3..1e6).contains(&x.abs()) => format!("{x:.3e}"),
        x => opt(x, 4),
    }
}

/// One row per trial: its model (a one-line summary and the parameter count), status, final
/// metrics, epochs, attempts, timings and worker; then the last value of each scalar a program
/// reported (the first [`super::analysis::MAX_SCALAR_NAMES`] names; none for native trials).
pub fn trials(trials: &[&Trial<'_>]) -> Table {
    let (names, _) = super::analysis::scalar_names(trials);
    let header = [
        "Trial",
        "Model",
        "Parameters",
        "Status",
        "Test acc (%)",
        "Train acc (%)",
        "Gap",
        "Epochs",
        "Attempts",
        "Wall (s)",
        "Train (s)",
        "Worker",
    ];
    let rows = trials
        .iter()
        .map(|t| {
            let arch = Architecture::of(&t.params, t.dataset);
            vec![
                t.name.to_string(),
                arch.summary.clone(),
                arch.parameters_text(),
                t.status.name().to_owned(),
                opt(t.test_accuracy, 2),
                opt(t.train_accuracy, 2),
                opt(t.gap(), 2),
                t.epochs.len().to_string(),
                t.attempts.to_string(),
                opt(t.wall_seconds, 1),
                opt(t.train_seconds, 1),
                t.worker.clone().unwrap_or_else(|| "-".into()),
            ]
            .into_iter()
            .chain(
                names
                    .iter()
                    .map(|n| scalar(super::analysis::last_scalar(t, n))),
            )
            .collect::<Vec<String>>()
        })
        .collect();
    let mut numeric = numeric_from(header.len() + names.len(), 4);
    numeric[2] = true;
    numeric[header.len() - 1] = false;
    Table {
        header: header
            .iter()
            .map(|h| (*h).to_owned())
            .chain(names.iter().map(|n| format!("{n} (last)")))
            .collect(),
        rows,
        numeric,
    }
}

fn md_cell(s: &str) -> String {
    sweep_common::text::markdown(s)
}

/// The table in GitHub Markdown: text columns left-aligned, numeric columns right-aligned.
pub fn to_markdown(t: &Table) -> String {
    let mut md = String::new();
    let line = |cells: &[String]| {
        let cells: Vec<String> = cells.iter().map(|c| md_cell(c)).collect();
        format!("| {} |\n", cells.join(" | "))
    };
    md.push_str(&line(&t.header));
    md.push('|');
    for i in 0..t.header.len() {
        md.push_str(if t.is_numeric(i) { "---:|" } else { "---|" });
    }
    md.push('\n');
    for row in &t.rows {
        md.push_str(&line(row));
    }
    md
}
