//! What the report's document needs of an experiment's trials, summed a trial at a time, so
//! that its memory grows with the configurations and the bounded sets (the trials table's best
//! and worst, the confusion figures' trials, the scatters' points), not with the trials: the
//! counts by status, the best trial, the configurations' final metrics and curves
//! ([`analysis::Grouping`]), the failures and logs, early stopping ([`stopping::Tally`]), the
//! scatters' points, the confusion matrices ([`ConfusionTally`]) and the importance's inputs
//! (a number per succeeded trial and varied hyperparameter). [`Summaries`] holds one per
//! experiment, in the document's order; [`super::doc`] lays them out.

use std::collections::{BTreeMap, BTreeSet};

use sweep_common::grid::{Param, Value};
use sweep_common::results::{Experiment, Results, Status, Trial};

use super::analysis::{self, Grouping, View};
use super::compare;
use super::doc::{MAX_CONFUSION_FIGURES, MAX_TRIAL_ROWS, Span};
use super::importance::{self, Column, Importance, Unavailable};
use super::pass::ConfusionTally;
use super::stopping;

/// Points an experiment's scatters draw (the first trials that ended, in grid order).
pub const MAX_SCATTER_POINTS: usize = 10_000;
/// Most program trials whose logs the report lists (the rest are in `results.json`).
pub const MAX_LOG_LINKS: usize = 200;
/// Numeric hyperparameters with at least this many distinct values among an experiment's trials
/// get a scatter against the metric (sampled keys; long axes).
pub const SCATTER_MIN_VALUES: usize = 5;

/// Trials by status.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// All trials.
    pub trials: usize,
    /// Succeeded.
    pub succeeded: usize,
    /// Failed for good.
    pub failed: usize,
    /// Running.
    pub running: usize,
    /// Pending.
    pub pending: usize,
    /// Stopped (by a rule or the budget).
    pub stopped: usize,
    /// Stopped by the budget before they ran.
    pub budget: usize,
}

impl Counts {
    fn add(&mut self, t: &Trial<'_>) {
        self.trials += 1;
        match t.status {
            Status::Succeeded => self.succeeded += 1,
            Status::Failed => self.failed += 1,
            Status::Running => self.running += 1,
            Status::Pending => self.pending += 1,
            Status::Stopped => self.stopped += 1,
        }
        if t.stopped_by_budget() {
            self.budget += 1;
        }
    }

    /// The sum of `self` and `other`.
    pub fn plus(self, o: Counts) -> Counts {
        Counts {
            trials: self.trials + o.trials,
            succeeded: self.succeeded + o.succeeded,
            failed: self.failed + o.failed,
            running: self.running + o.running,
            pending: self.pending + o.pending,
            stopped: self.stopped + o.stopped,
            budget: self.budget + o.budget,
        }
    }
}

/// The best trial: its name, test and training accuracy.
#[derive(Debug, Clone, PartialEq)]
pub struct Best {
    /// Its name.
    pub name: String,
    /// Its final test accuracy.
    pub test: f64,
    /// Its final training accuracy.
    pub train: Option<f64>,
}

/// A trial's place in the trials table's ranking: finite test accuracies first, highest first;
/// ties (and trials without one) in grid order.
#[derive(Debug, Clone, Copy)]
struct Rank {
    accuracy: Option<f64>,
    index: usize,
}

impl PartialEq for Rank {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other).is_eq()
    }
}

impl Eq for Rank {}

impl PartialOrd for Rank {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Rank {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        match (self.accuracy, other.accuracy) {
            (Some(a), Some(b)) => b.total_cmp(&a),
            (a, b) => b.is_some().cmp(&a.is_some()),
        }
        .then(self.index.cmp(&other.index))
    }
}

/// The trials the trials table lists: the best and the worst [`MAX_TRIAL_ROWS`]` / 2` by test
/// accuracy, which are every trial up to [`MAX_TRIAL_ROWS`] trials.
#[derive(Debug, Clone, Default)]
pub struct Ranked {
    seen: usize,
    best: BTreeMap<Rank, Trial<'static>>,
    worst: BTreeMap<Rank, Trial<'static>>,
}

impl Ranked {
    fn add(&mut self, t: &Trial<'static>) {
        let half = MAX_TRIAL_ROWS / 2;
        let rank = Rank {
            accuracy: t.test_accuracy.filter(|a| a.is_finite()),
            index: self.seen,
        };
        self.seen += 1;
        let slim = || {
            let mut t = t.clone();
            t.train_confusion = None;
            t.test_confusion = None;
            t
        };
        if self.best.len() < half || self.best.last_key_value().is_some_and(|(r, _)| rank < *r) {
            self.best.insert(rank, slim());
            if self.best.len() > half {
                self.best.pop_last();
            }
        }
        if self.worst.len() < half || self.worst.first_key_value().is_some_and(|(r, _)| rank > *r) {
            self.worst.insert(rank, slim());
            if self.worst.len() > half {
                self.worst.pop_first();
            }
        }
    }

    /// The listed trials in grid order.
    pub fn shown(&self) -> Vec<&Trial<'static>> {
        let by_index: BTreeMap<usize, &Trial<'static>> = self
            .best
            .iter()
            .chain(&self.worst)
            .map(|(r, t)| (r.index, t))
            .collect();
        by_index.into_values().collect()
    }
}

/// The program trials' log links, failed trials first ([`MAX_LOG_LINKS`]).
#[derive(Debug, Clone, Default)]
pub struct Logs {
    failed: Vec<Vec<Span>>,
    other: Vec<Vec<Span>>,
    /// Trials with logs.
    pub trials: usize,
}

impl Logs {
    fn add(&mut self, t: &Trial<'_>) {
        if t.logs.is_empty() {
            return;
        }
        self.trials += 1;
        let list = if t.failed() {
            &mut self.failed
        } else {
            &mut self.other
        };
        if list.len() >= MAX_LOG_LINKS {
            return;
        }
        let mut item = vec![Span::Strong(t.name.to_string()), Span::Text(": ".into())];
        for (i, file) in t.logs.iter().enumerate() {
            if i > 0 {
                item.push(Span::Text(", ".into()));
            }
            let stream = file.rsplit('.').nth(1).unwrap_or("log");
            item.push(Span::Link {
                text: stream.to_owned(),
                href: file.clone(),
            });
        }
        list.push(item);
    }

    /// The items listed: the failed trials' first.
    pub fn items(&self) -> Vec<Vec<Span>> {
        self.failed
            .iter()
            .chain(&self.other)
            .take(MAX_LOG_LINKS)
            .cloned()
            .collect()
    }
}

/// The range of a numeric hyperparameter among the trials that ended.
#[derive(Debug, Clone, Default)]
struct Range {
    /// Its distinct values, up to [`SCATTER_MIN_VALUES`].
    distinct: Vec<f64>,
    lo: Option<f64>,
    hi: Option<f64>,
}

impl Range {
    fn add(&mut self, x: f64) {
        if self.distinct.len() < SCATTER_MIN_VALUES && !self.distinct.contains(&x) {
            self.distinct.push(x);
        }
        self.lo = Some(self.lo.map_or(x, |lo| lo.min_by_total(x)));
        self.hi = Some(self.hi.map_or(x, |hi| hi.max_by_total(x)));
    }
}

trait TotalMinMax {
    fn min_by_total(self, x: f64) -> f64;
    fn max_by_total(self, x: f64) -> f64;
}

impl TotalMinMax for f64 {
    fn min_by_total(self, x: f64) -> f64 {
        if x.total_cmp(&self).is_lt() { x } else { self }
    }
    fn max_by_total(self, x: f64) -> f64 {
        if x.total_cmp(&self).is_gt() { x } else { self }
    }
}

/// A scatter's point: the hyperparameter's value, the test accuracy, and whether the trial was
/// stopped.
pub type Point = (f64, f64, bool);

/// The scatters' points: each ended trial's numeric hyperparameters, its last test accuracy and
/// whether it was stopped, for the first [`MAX_SCATTER_POINTS`]; every such trial's range.
#[derive(Debug, Clone)]
pub struct Scatter {
    points: Vec<(Vec<Option<f64>>, f64, bool)>,
    ranges: Vec<Range>,
    /// Trials that ended with a finite test accuracy.
    pub ended: usize,
}

impl Default for Scatter {
    fn default() -> Self {
        Scatter {
            points: Vec::new(),
            ranges: vec![Range::default(); Param::ALL.len()],
            ended: 0,
        }
    }
}

impl Scatter {
    fn add(&mut self, t: &Trial<'_>) {
        if !matches!(t.status, Status::Succeeded | Status::Stopped) {
            return;
        }
        let Some(acc) = t.epochs.last().map(|e| e.test_accuracy) else {
            return;
        };
        if !acc.is_finite() {
            return;
        }
        self.ended += 1;
        let xs: Vec<Option<f64>> = Param::ALL
            .into_iter()
            .map(|p| match t.params.get(p) {
                Value::Int(i) => Some(i as f64),
                Value::Float(x) => Some(x),
                Value::Choice(_) | Value::Text(_) => None,
            })
            .collect();
        for (range, x) in self.ranges.iter_mut().zip(&xs) {
            if let Some(x) = x {
                range.add(*x);
            }
        }
        if self.points.len() < MAX_SCATTER_POINTS {
            self.points.push((xs, acc, t.status == Status::Stopped));
        }
    }

    /// `param`'s points and its range (lowest, highest), when it took at least
    /// [`SCATTER_MIN_VALUES`] values.
    pub fn of(&self, param: Param) -> Option<(Vec<Point>, f64, f64)> {
        let i = Param::ALL.iter().position(|&p| p == param)?;
        let range = &self.ranges[i];
        if range.distinct.len() < SCATTER_MIN_VALUES {
            return None;
        }
        let points = self
            .points
            .iter()
            .filter_map(|(xs, acc, stopped)| Some((xs[i]?, *acc, *stopped)))
            .collect();
        Some((points, range.lo?, range.hi?))
    }

    /// Points drawn, of [`Scatter::ended`].
    pub fn drawn(&self) -> usize {
        self.points.len()
    }
}

/// A value of a hyperparameter as the importance reads it.
#[derive(Debug, Clone, PartialEq)]
enum Cell {
    Number(f64),
    Text(String),
}

impl Cell {
    fn of(param: Param, value: Value) -> Cell {
        if !compare::numeric(param) {
            return Cell::Text(value.display());
        }
        Cell::Number(match value {
            Value::Int(i) => i as f64,
            Value::Float(x) => x,
            Value::Choice(_) | Value::Text(_) => f64::NAN,
        })
    }

    fn same(&self, other: &Cell) -> bool {
        match (self, other) {
            (Cell::Number(a), Cell::Number(b)) => a.to_bits() == b.to_bits(),
            (Cell::Text(a), Cell::Text(b)) => a == b,
            _ => false,
        }
    }
}

/// One hyperparameter's values over the succeeded trials: one value and a count while they are
/// all equal, else the column.
#[derive(Debug, Clone)]
enum Lazy {
    Same(Option<Cell>, usize),
    Column(Column),
}

impl Lazy {
    fn push(&mut self, cell: Cell) {
        match self {
            Lazy::Same(first, n) => match first {
                None => {
                    *first = Some(cell);
                    *n = 1;
                }
                Some(f) if f.same(&cell) => *n += 1,
                Some(f) => {
                    let mut column = repeated(f, *n);
                    push(&mut column, cell);
                    *self = Lazy::Column(column);
                }
            },
            Lazy::Column(c) => push(c, cell),
        }
    }

    fn column(self, numeric: bool) -> Column {
        match self {
            Lazy::Column(c) => c,
            Lazy::Same(Some(f), n) => repeated(&f, n),
            Lazy::Same(None, _) if numeric => Column::Numeric(Vec::new()),
            Lazy::Same(None, _) => Column::Categorical(Vec::new()),
        }
    }
}

fn repeated(cell: &Cell, n: usize) -> Column {
    match cell {
        Cell::Number(x) => Column::Numeric(vec![*x; n]),
        Cell::Text(s) => Column::Categorical(vec![s.clone(); n]),
    }
}

fn push(column: &mut Column, cell: Cell) {
    match (column, cell) {
        (Column::Numeric(v), Cell::Number(x)) => v.push(x),
        (Column::Categorical(v), Cell::Text(s)) => v.push(s),
        (Column::Numeric(v), Cell::Text(_)) => v.push(f64::NAN),
        (Column::Categorical(v), Cell::Number(x)) => v.push(x.to_string()),
    }
}

/// Which hyperparameters vary among the trials (whatever their status), and the importance's
/// inputs: each hyperparameter's values and the test accuracy over the succeeded trials.
#[derive(Debug, Clone)]
struct Varying {
    first: Vec<Option<String>>,
    differs: Vec<bool>,
    columns: Vec<Lazy>,
    metric: Vec<f64>,
}

impl Default for Varying {
    fn default() -> Self {
        let n = Param::ALL.len();
        Varying {
            first: vec![None; n],
            differs: vec![false; n],
            columns: vec![Lazy::Same(None, 0); n],
            metric: Vec::new(),
        }
    }
}

impl Varying {
    fn add(&mut self, t: &Trial<'_>) {
        for (i, p) in Param::ALL.into_iter().enumerate() {
            if self.differs[i] {
                continue;
            }
            let shown = t.params.get(p).display();
            match &self.first[i] {
                None => self.first[i] = Some(shown),
                Some(f) => self.differs[i] = *f != shown,
            }
        }
        if t.succeeded() {
            for (column, p) in self.columns.iter_mut().zip(Param::ALL) {
                column.push(Cell::of(p, t.params.get(p)));
            }
            self.metric.push(t.test_accuracy.unwrap_or(f64::NAN));
        }
    }
}

/// One experiment's summary.
#[derive(Debug, Clone)]
pub struct Summary {
    /// The experiment.
    pub experiment: Experiment,
    grouping: Grouping,
    /// Its trials by status.
    pub counts: Counts,
    /// Its best succeeded trial.
    pub best: Option<Best>,
    /// The trials its trials table lists.
    pub ranked: Ranked,
    /// Its failed trials and failed attempts, as list items.
    pub failures: Vec<Vec<Span>>,
    /// Its program trials' logs.
    pub logs: Logs,
    /// Its early stopping (the trials the budget stopped left out).
    pub stopping: stopping::Tally,
    /// The scalar names its trials reported.
    pub scalar_names: BTreeSet<String>,
    /// Its scatters' points.
    pub scatter: Scatter,
    /// Its first [`MAX_CONFUSION_FIGURES`] trials with a confusion matrix.
    pub confusion_trials: Vec<Trial<'static>>,
    /// Its confusion matrices, counted and summed.
    pub confusions: ConfusionTally,
    varying: Varying,
    importance: Option<Result<Importance, Unavailable>>,
}

impl Summary {
    fn new(experiment: Experiment) -> Self {
        Summary {
            grouping: Grouping::new(&experiment),
            experiment,
            counts: Counts::default(),
            best: None,
            ranked: Ranked::default(),
            failures: Vec::new(),
            logs: Logs::default(),
            stopping: stopping::Tally::default(),
            scalar_names: BTreeSet::new(),
            scatter: Scatter::default(),
            confusion_trials: Vec::new(),
            confusions: ConfusionTally::default(),
            varying: Varying::default(),
            importance: None,
        }
    }

    /// Counts `t` in.
    pub fn add(&mut self, t: &Trial<'static>) {
        self.grouping.add(t);
        self.counts.add(t);
        let accuracy = t.test_accuracy.filter(|a| a.is_finite() && t.succeeded());
        if let Some(a) = accuracy.filter(|&a| self.best.as_ref().is_none_or(|b| a > b.test)) {
            self.best = Some(Best {
                name: t.name.to_string(),
                test: a,
                train: t.train_accuracy,
            });
        }
        self.ranked.add(t);
        self.failures.extend(failure_items(t));
        self.logs.add(t);
        if !t.stopped_by_budget() {
            self.stopping.add(t);
        }
        for e in t.epochs.iter() {
            for (name, _) in e.scalars.iter() {
                if !self.scalar_names.contains(name) {
                    self.scalar_names.insert(name.to_owned());
                }
            }
        }
        self.scatter.add(t);
        let has_matrix = t.train_confusion.is_some() || t.test_confusion.is_some();
        if has_matrix && self.confusion_trials.len() < MAX_CONFUSION_FIGURES {
            let mut kept = t.clone();
            kept.epochs = Default::default();
            self.confusion_trials.push(kept);
        }
        self.confusions.add(t);
        self.varying.add(t);
    }

    /// The experiment's layout: its axes and configurations (no trials).
    pub fn view(&self) -> View<'static> {
        let (axes, configs, repeats) = self.grouping.finish();
        View {
            experiment: self.experiment.clone(),
            trials: Vec::new(),
            axes,
            configs,
            repeats,
        }
    }

    /// The hyperparameters it varies: its axes of more than one value (the seed's included),
    /// else those whose value differs between its trials; in the grid's axis order.
    pub fn varied(&self) -> Vec<Param> {
        Param::ALL
            .into_iter()
            .enumerate()
            .filter(|&(i, p)| {
                let axis = self
                    .experiment
                    .axes
                    .iter()
                    .any(|a| a.param == p && a.values.len() > 1);
                axis || self.varying.differs[i]
            })
            .map(|(_, p)| p)
            .collect()
    }

    /// The importance of the varied hyperparameters for the final test accuracy of the
    /// succeeded trials ([`importance`]), as [`Summaries::settle`] computed it (else computed
    /// now).
    pub fn importance(&self) -> Result<Importance, Unavailable> {
        match &self.importance {
            Some(settled) => settled.clone(),
            None => self.clone().compute_importance(),
        }
    }

    /// Computes the importance from its inputs, which it drops.
    fn compute_importance(&mut self) -> Result<Importance, Unavailable> {
        let varied = self.varied();
        let mut columns = std::mem::take(&mut self.varying.columns);
        let metric = std::mem::take(&mut self.varying.metric);
        let picked: Vec<Column> = Param::ALL
            .into_iter()
            .enumerate()
            .filter(|(_, p)| varied.contains(p))
            .map(|(i, p)| {
                std::mem::replace(&mut columns[i], Lazy::Same(None, 0)).column(compare::numeric(p))
            })
            .collect();
        importance::importance(&picked, &metric)
    }
}

/// `t`'s lines in the failures list: its failure for good, then each failed attempt.
fn failure_items(t: &Trial<'_>) -> Vec<Vec<Span>> {
    let mut items = Vec::new();
    if t.failed() {
        items.push(vec![
            Span::Strong(t.name.to_string()),
            Span::Text(format!(
                " failed after {} attempts: {}",
                t.attempts,
                t.failure.as_deref().unwrap_or("no reason recorded")
            )),
        ]);
    }
    for a in t.failed_attempts.iter() {
        items.push(vec![Span::Text(format!(
            "{}, attempt {} ({}): {}",
            t.name, a.attempt, a.kind, a.message
        ))]);
    }
    items
}

/// Every experiment's summary, in the document's order: the header's experiments, then those
/// only trials name (no axes, no class names), in the order their first trial comes.
#[derive(Debug, Clone, Default)]
pub struct Summaries {
    /// The summaries.
    pub experiments: Vec<Summary>,
    index: BTreeMap<String, usize>,
}

impl Summaries {
    /// The summaries of `experiments`, no trial added yet.
    pub fn new(experiments: &[Experiment]) -> Self {
        let mut s = Summaries::default();
        for e in experiments {
            if !s.index.contains_key(&e.name) {
                s.index.insert(e.name.clone(), s.experiments.len());
            }
            s.experiments.push(Summary::new(e.clone()));
        }
        s
    }

    /// The summaries of `results`.
    pub fn of(results: &Results<'static>) -> Self {
        let mut s = Summaries::new(&results.experiments);
        for t in &results.trials {
            s.add(t);
        }
        s
    }

    /// Adds `t` to its experiment's summary; returns that summary's place.
    pub fn add(&mut self, t: &Trial<'static>) -> usize {
        let x = match self.index.get(t.experiment.as_ref()) {
            Some(&x) => x,
            None => {
                let x = self.experiments.len();
                self.index.insert(t.experiment.to_string(), x);
                self.experiments.push(Summary::new(analysis::unlisted(t)));
                x
            }
        };
        self.experiments[x].add(t);
        x
    }

    /// The layout axes of the experiment at `x` (none when there is no such experiment).
    pub fn axes(&self, x: usize) -> &[analysis::LayoutAxis] {
        self.experiments.get(x).map_or(&[], |s| s.grouping.axes())
    }

    /// Computes each experiment's importance and drops its inputs: the summaries are complete.
    pub fn settle(&mut self) {
        for s in &mut self.experiments {
            if s.importance.is_none() {
                s.importance = Some(s.compute_importance());
            }
        }
    }

    /// Every experiment's counts, summed.
    pub fn counts(&self) -> Counts {
        self.experiments
            .iter()
            .fold(Counts::default(), |c, s| c.plus(s.counts))
    }
}

/// The label a learning curve of `config` gets in an experiment without layout axes.
pub fn unlabelled(config: &analysis::Config) -> String {
    match config.trials {
        1 => config.first.clone(),
        n => format!("mean of {n} trials"),
    }
}
