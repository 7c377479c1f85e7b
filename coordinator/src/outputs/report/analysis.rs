//! Aggregation for the report, pure and deterministic: trials grouped into configurations (the
//! trials of an experiment that differ only by seed), mean and sample standard deviation across
//! repeats, the best trial, the most confused class pairs and the learning curves' data.

use std::collections::BTreeMap;

use sweep_common::architecture;
use sweep_common::grid::{Identity, Param, Value};
use sweep_common::model::Model;
use sweep_common::results::{Experiment, Results, Trial};
use sweep_common::{ConfusionMatrix, DatasetKind};

use super::tables::Metric;

/// A human label for a parameter, used for table headers and legend titles.
pub fn label(param: Param) -> String {
    param.def().label.to_owned()
}

/// The plural phrase for a parameter, for titles ("different training split ratios").
pub fn plural(param: Param) -> String {
    param.def().plural.to_owned()
}

/// Mean, sample standard deviation (n - 1; `None` for one value) and count of finite values.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stat {
    /// Mean.
    pub mean: f64,
    /// Sample standard deviation; `None` when `n < 2`.
    pub std: Option<f64>,
    /// Number of values.
    pub n: usize,
}

/// The statistics of the finite values of `values`, `None` when there are none.
pub fn stat(values: impl IntoIterator<Item = f64>) -> Option<Stat> {
    let v: Vec<f64> = values.into_iter().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return None;
    }
    let n = v.len();
    let mean = v.iter().sum::<f64>() / n as f64;
    let std = (n > 1).then(|| {
        let ss: f64 = v.iter().map(|x| (x - mean).powi(2)).sum();
        (ss / (n - 1) as f64).sqrt()
    });
    Some(Stat { mean, std, n })
}

/// An axis that lays out tables and legends: a hyperparameter and its values, typed, in the
/// grid file's order.
#[derive(Debug, Clone, PartialEq)]
pub struct LayoutAxis {
    /// The hyperparameter.
    pub param: Param,
    /// Its values (those of the file's that are values of the hyperparameter).
    pub values: Vec<Value>,
    /// Each value as tables, legends and captions show it ([`shown_values`]), distinct between
    /// distinct values.
    pub shown: Vec<String>,
}

impl LayoutAxis {
    /// The axis of `param` over `values` on `dataset`.
    pub fn new(param: Param, values: Vec<Value>, dataset: DatasetKind) -> Self {
        let shown = shown_values(param, &values, dataset);
        Self {
            param,
            values,
            shown,
        }
    }

    /// Where `value` is among the axis's values.
    pub fn position(&self, value: Value) -> Option<usize> {
        self.values
            .iter()
            .position(|v| v.identity() == value.identity())
    }

    /// `value` as the report shows it (its [`Value::display`] when it is none of the axis's).
    pub fn show(&self, value: Value) -> String {
        self.position(value)
            .and_then(|i| self.shown.get(i).cloned())
            .unwrap_or_else(|| value.display())
    }
}

/// The values of an axis of `param` as the report shows them: a model by its one-line summary
/// and parameter count, distinct between models (`sweep_common::architecture::model_labels`;
/// a spec is too long for a legend or a header, and two specs may share a long prefix), any
/// other value by its [`Value::display`].
pub fn shown_values(param: Param, values: &[Value], dataset: DatasetKind) -> Vec<String> {
    let models: Vec<Model> = values
        .iter()
        .filter_map(|v| match v {
            Value::Text(t) if param == Param::Model => Some(Model(t)),
            _ => None,
        })
        .collect();
    if models.is_empty() || models.len() != values.len() {
        return values.iter().map(|v| v.display()).collect();
    }
    architecture::model_labels(&models, dataset)
}

/// What joins a configuration's values in one label (a legend entry) and the axes' names in a
/// legend's title: `, `, or ` | ` when a value is shown with a comma of its own (a model's
/// label, `2 conv 32-64, 1 linear 10, 20234 params`), so that `0 | 2 conv ...` does not read as
/// three values.
pub fn separator(axes: &[LayoutAxis]) -> &'static str {
    if axes.iter().flat_map(|a| &a.shown).any(|s| s.contains(',')) {
        " | "
    } else {
        ", "
    }
}

/// Values an [`Accum`] keeps before it folds them into running sums: up to this many repeats
/// its statistics are computed from the values as [`stat`] does (the same bits), past it by
/// Welford's running mean and sum of squares, so that its memory stays bounded.
pub const EXACT_VALUES: usize = 256;

/// The statistics of a stream of values, in bounded memory ([`EXACT_VALUES`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Accum {
    values: Vec<f64>,
    folded: bool,
    n: usize,
    mean: f64,
    m2: f64,
}

impl Accum {
    /// Adds `x` if it is finite.
    pub fn add(&mut self, x: f64) {
        if !x.is_finite() {
            return;
        }
        if self.folded {
            self.welford(x);
            return;
        }
        self.values.push(x);
        if self.values.len() > EXACT_VALUES {
            self.folded = true;
            for v in std::mem::take(&mut self.values) {
                self.welford(v);
            }
        }
    }

    fn welford(&mut self, x: f64) {
        self.n += 1;
        let d = x - self.mean;
        self.mean += d / self.n as f64;
        self.m2 += d * (x - self.mean);
    }

    /// Mean, sample standard deviation and count of the values added.
    pub fn stat(&self) -> Option<Stat> {
        if !self.folded {
            return stat(self.values.iter().copied());
        }
        (self.n > 0).then(|| Stat {
            mean: self.mean,
            std: (self.n > 1).then(|| (self.m2.max(0.0) / (self.n - 1) as f64).sqrt()),
            n: self.n,
        })
    }
}

/// A metric's values by epoch, summed as they come.
pub type ByEpoch = BTreeMap<u32, Accum>;

/// Which learning curve: the test accuracy, the training loss, or a program's scalar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Series<'n> {
    /// Test accuracy by epoch.
    TestAccuracy,
    /// Training loss by epoch.
    TrainLoss,
    /// A scalar a program reported, by name.
    Scalar(&'n str),
}

/// One configuration (the trials equal on every non-seed axis), summed a trial at a time: its
/// final metrics over the succeeded trials and its curves by epoch over every trial.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// The values of the experiment's layout axes, in [`View::axes`] order.
    pub key: Vec<Value>,
    /// The key's values as shown ([`LayoutAxis::show`]).
    pub shown: Vec<String>,
    /// What joins them in [`Config::label`] ([`separator`]).
    pub separator: &'static str,
    /// Its trials (one per seed).
    pub trials: usize,
    /// The name of its first trial.
    pub first: String,
    failed: usize,
    finals: [Accum; 3],
    test: ByEpoch,
    loss: ByEpoch,
    scalars: BTreeMap<String, ByEpoch>,
}

impl Config {
    fn new(key: Vec<Value>, shown: Vec<String>, separator: &'static str) -> Self {
        Config {
            key,
            shown,
            separator,
            trials: 0,
            first: String::new(),
            failed: 0,
            finals: Default::default(),
            test: ByEpoch::new(),
            loss: ByEpoch::new(),
            scalars: BTreeMap::new(),
        }
    }

    /// Counts `t` in.
    pub fn add(&mut self, t: &Trial<'_>) {
        if self.trials == 0 {
            self.first = t.name.to_string();
        }
        self.trials += 1;
        if t.failed() {
            self.failed += 1;
        }
        if t.succeeded() {
            for (acc, m) in self.finals.iter_mut().zip(Metric::ALL) {
                if let Some(v) = m.of(t) {
                    acc.add(v);
                }
            }
        }
        for e in t.epochs.iter() {
            if e.test_accuracy.is_finite() {
                self.test.entry(e.epoch).or_default().add(e.test_accuracy);
            }
            if e.train_loss.is_finite() {
                self.loss.entry(e.epoch).or_default().add(e.train_loss);
            }
            for (name, v) in e.scalars.iter() {
                if v.is_finite() {
                    let by_epoch = match self.scalars.get_mut(name) {
                        Some(b) => b,
                        None => self.scalars.entry(name.to_owned()).or_default(),
                    };
                    by_epoch.entry(e.epoch).or_default().add(v);
                }
            }
        }
    }

    /// The key as one label (`ReLU, 2`), or `all` when nothing varies.
    pub fn label(&self) -> String {
        if self.key.is_empty() {
            "all".into()
        } else {
            self.shown.join(self.separator)
        }
    }

    /// True when the configuration's key is `key` (compared as values).
    pub fn is(&self, key: &[Value]) -> bool {
        self.key.len() == key.len()
            && self
                .key
                .iter()
                .zip(key)
                .all(|(a, b)| a.identity() == b.identity())
    }

    /// Statistics of `metric` over the succeeded trials.
    pub fn stat(&self, metric: Metric) -> Option<Stat> {
        let i = Metric::ALL.iter().position(|&m| m == metric)?;
        self.finals[i].stat()
    }

    /// True when every trial failed for good (none is left to run).
    pub fn all_failed(&self) -> bool {
        self.trials > 0 && self.failed == self.trials
    }

    /// `series` by epoch.
    pub fn series(&self, series: Series<'_>) -> Option<&ByEpoch> {
        match series {
            Series::TestAccuracy => Some(&self.test),
            Series::TrainLoss => Some(&self.loss),
            Series::Scalar(name) => self.scalars.get(name),
        }
    }
}

/// An experiment's trials grouped into configurations a trial at a time.
#[derive(Debug, Clone)]
pub struct Grouping {
    axes: Vec<LayoutAxis>,
    separator: &'static str,
    groups: BTreeMap<Vec<Identity>, Config>,
}

impl Grouping {
    /// The grouping of `experiment`'s trials, none added yet.
    pub fn new(experiment: &Experiment) -> Self {
        let axes = layout_axes(experiment);
        Grouping {
            separator: separator(&axes),
            axes,
            groups: BTreeMap::new(),
        }
    }

    /// The layout axes.
    pub fn axes(&self) -> &[LayoutAxis] {
        &self.axes
    }

    /// Adds `t` to its configuration.
    pub fn add(&mut self, t: &Trial<'_>) {
        let key: Vec<Value> = self.axes.iter().map(|a| t.params.get(a.param)).collect();
        let identity = identities(&key);
        match self.groups.get_mut(&identity) {
            Some(c) => c.add(t),
            None => {
                let shown = key
                    .iter()
                    .zip(&self.axes)
                    .map(|(v, a)| a.show(*v))
                    .collect();
                self.groups
                    .entry(identity)
                    .or_insert(Config::new(key, shown, self.separator))
                    .add(t)
            }
        }
    }

    /// The layout axes, the configurations in the axes' value order, and whether some
    /// configuration ran more than once.
    pub fn finish(&self) -> (Vec<LayoutAxis>, Vec<Config>, bool) {
        let axes = self.axes.clone();
        let order = |key: &[Value]| -> Vec<usize> {
            key.iter()
                .zip(&axes)
                .map(|(v, a)| a.position(*v).unwrap_or(usize::MAX))
                .collect()
        };
        let mut configs: Vec<Config> = self.groups.values().cloned().collect();
        configs.sort_by(|a, b| {
            order(&a.key)
                .cmp(&order(&b.key))
                .then_with(|| identities(&a.key).cmp(&identities(&b.key)))
        });
        let repeats = configs.iter().any(|c| c.trials > 1);
        (axes, configs, repeats)
    }
}

/// One experiment, its trials and their configurations.
#[derive(Debug, Clone)]
pub struct View<'a> {
    /// The experiment.
    pub experiment: Experiment,
    /// Its trials, in grid order.
    pub trials: Vec<&'a Trial<'a>>,
    /// The axes that lay out tables and legends: every non-seed axis with more than one value,
    /// sorted in the grid's axis order (the order of [`Param`]).
    pub axes: Vec<LayoutAxis>,
    /// The configurations, sorted by the axes' value order.
    pub configs: Vec<Config>,
    /// True when some configuration ran more than once (a seed axis, or repeats).
    pub repeats: bool,
}

/// The experiment of `t` when the document does not list it: its name and dataset, no axes, no
/// class names.
pub fn unlisted(t: &Trial<'_>) -> Experiment {
    Experiment {
        name: t.experiment.to_string(),
        title: None,
        dataset: t.dataset,
        classes: Vec::new(),
        table: None,
        axes: Vec::new(),
    }
}

/// Every experiment of `results`, with trials whose experiment is not listed gathered under
/// their experiment's name (no axes, no class names).
pub fn views<'a>(results: &'a Results<'a>) -> Vec<View<'a>> {
    let mut experiments = results.experiments.clone();
    for t in &results.trials {
        if !experiments.iter().any(|e| e.name == t.experiment) {
            experiments.push(unlisted(t));
        }
    }
    experiments
        .into_iter()
        .map(|e| {
            let trials = results
                .trials
                .iter()
                .filter(|t| t.experiment == e.name)
                .collect();
            view(e, trials)
        })
        .collect()
}

/// Groups `trials` of `experiment` into configurations, matching each trial's hyperparameters
/// to the axes' values as typed values.
pub fn view<'a>(experiment: Experiment, trials: Vec<&'a Trial<'a>>) -> View<'a> {
    let mut grouping = Grouping::new(&experiment);
    for t in &trials {
        grouping.add(t);
    }
    let (axes, configs, repeats) = grouping.finish();
    View {
        experiment,
        trials,
        axes,
        configs,
        repeats,
    }
}

/// The axes that lay out `experiment`'s tables and legends ([`View::axes`]).
fn layout_axes(experiment: &Experiment) -> Vec<LayoutAxis> {
    let mut axes: Vec<LayoutAxis> = experiment
        .axes
        .iter()
        .filter(|a| a.param != Param::Seed && a.values.len() > 1)
        .map(|a| {
            let values = a.typed_values().into_iter().flatten().collect();
            LayoutAxis::new(a.param, values, experiment.dataset)
        })
        .collect();
    axes.sort_by_key(|a| a.param);
    // A layout named in the grid file puts its columns first and its rows second (the pivots'
    // order); the other axes follow, one pivot per combination of their values.
    if let Some(t) = &experiment.table {
        let columns = axes.iter().position(|a| a.param == t.columns);
        let rows = axes.iter().position(|a| a.param == t.rows);
        if let (Some(c), Some(r)) = (columns, rows) {
            let (c, r) = (axes[c].clone(), axes[r].clone());
            axes.retain(|a| a.param != t.columns && a.param != t.rows);
            axes.insert(0, r);
            axes.insert(0, c);
        }
    }
    axes
}

fn identities(key: &[Value]) -> Vec<Identity> {
    key.iter().map(|v| v.identity()).collect()
}

/// The succeeded trial with the highest finite test accuracy (ties: the first in grid order).
pub fn best_trial<'a>(trials: &[&'a Trial<'a>]) -> Option<(&'a Trial<'a>, f64)> {
    let mut best: Option<(&Trial<'_>, f64)> = None;
    for t in trials.iter().filter(|t| t.succeeded()) {
        let Some(a) = t.test_accuracy.filter(|a| a.is_finite()) else {
            continue;
        };
        if best.is_none_or(|(_, b)| a > b) {
            best = Some((t, a));
        }
    }
    best
}

/// The configuration with the highest mean test accuracy (ties: the first in order).
pub fn best_config(configs: &[Config]) -> Option<(&Config, Stat)> {
    let mut best: Option<(&Config, Stat)> = None;
    for c in configs {
        let Some(s) = c.stat(Metric::Test) else {
            continue;
        };
        if best.is_none_or(|(_, b)| s.mean > b.mean) {
            best = Some((c, s));
        }
    }
    best
}

/// A class confused for another: `count` samples of `truth` predicted as `predicted`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfusedPair {
    /// The true class's name.
    pub truth: String,
    /// The predicted class's name.
    pub predicted: String,
    /// How many samples.
    pub count: u64,
}

impl std::fmt::Display for ConfusedPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} -> {}: {}", self.truth, self.predicted, self.count)
    }
}

/// The name of class `i`, or its index when `classes` has no name for it.
pub fn class_name(classes: &[String], i: usize) -> String {
    classes.get(i).cloned().unwrap_or_else(|| i.to_string())
}

/// The `top` largest non-zero off-diagonal cells of `m`, largest first (ties: row-major order).
pub fn confused_pairs(m: &ConfusionMatrix, classes: &[String], top: usize) -> Vec<ConfusedPair> {
    if !m.is_square() {
        return Vec::new();
    }
    let n = m.classes;
    let mut cells: Vec<(u64, usize, usize)> = (0..n)
        .flat_map(|i| (0..n).map(move |j| (i, j)))
        .filter(|(i, j)| i != j)
        .map(|(i, j)| (m.get(i, j), i, j))
        .filter(|(c, _, _)| *c > 0)
        .collect();
    cells.sort_by(|a, b| b.0.cmp(&a.0).then((a.1, a.2).cmp(&(b.1, b.2))));
    cells
        .into_iter()
        .take(top)
        .map(|(count, i, j)| ConfusedPair {
            truth: class_name(classes, i),
            predicted: class_name(classes, j),
            count,
        })
        .collect()
}

/// Adds `m` to `sum` cell by cell, so that a sum over many trials is made a matrix at a time:
/// the first valid matrix sets the size, and a matrix of another size or not square is left
/// out.
pub fn add_confusion(sum: &mut Option<ConfusionMatrix>, m: &ConfusionMatrix) {
    if !m.is_square() {
        return;
    }
    match sum {
        None => *sum = Some(m.clone()),
        Some(s) if s.classes == m.classes => {
            for (a, b) in s.counts.iter_mut().zip(&m.counts) {
                *a = a.saturating_add(*b);
            }
        }
        Some(_) => {}
    }
}

/// One point of a learning curve: the mean over a configuration's trials at one epoch.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CurvePoint {
    /// 1-based epoch.
    pub epoch: u32,
    /// Mean over the trials that reached this epoch.
    pub mean: f64,
    /// Sample standard deviation, when two or more trials reached it.
    pub std: Option<f64>,
}

/// A learning curve of one configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Curve {
    /// The configuration's label.
    pub label: String,
    /// Points by epoch, ascending.
    pub points: Vec<CurvePoint>,
}

/// Most scalar names (a program trial's own metrics, issue 19) the report gives a column and a
/// curve, per experiment; every value is in `results.json`.
pub const MAX_SCALAR_NAMES: usize = 8;

/// The scalar names reported by any epoch of `trials`, in name order, the first
/// [`MAX_SCALAR_NAMES`], and how many there are in all. None for native trials.
pub fn scalar_names(trials: &[&Trial<'_>]) -> (Vec<String>, usize) {
    let mut names = std::collections::BTreeSet::new();
    for t in trials {
        for e in t.epochs.iter() {
            names.extend(e.scalars.iter().map(|(k, _)| k));
        }
    }
    let all = names.len();
    let shown = names
        .into_iter()
        .take(MAX_SCALAR_NAMES)
        .map(str::to_owned)
        .collect();
    (shown, all)
}

/// The last value of scalar `name` that trial `t` reported, if any.
pub fn last_scalar(t: &Trial<'_>, name: &str) -> Option<f64> {
    t.epochs.iter().rev().find_map(|e| e.scalars.get(name))
}

/// One curve per configuration with at least one finite value of `series`, from every trial's
/// epochs (a running or failed trial contributes the epochs it reported), labelled by `label`.
pub fn curves(
    configs: &[Config],
    series: Series<'_>,
    label: impl Fn(&Config) -> String,
) -> Vec<Curve> {
    configs
        .iter()
        .filter_map(|c| {
            let points: Vec<CurvePoint> = c
                .series(series)?
                .iter()
                .filter_map(|(&epoch, acc)| {
                    acc.stat().map(|s| CurvePoint {
                        epoch,
                        mean: s.mean,
                        std: s.std,
                    })
                })
                .collect();
            (!points.is_empty()).then(|| Curve {
                label: label(c),
                points,
            })
        })
        .collect()
}
