//! Validation of a deserialized grid file and its expansion into trials.

use std::collections::{BTreeMap, HashMap};
use std::ops::Range;

use toml::Spanned;

use super::parse::{RawAxes, RawExperiment, RawFile, RawFixed, RawList};
use super::{
    Axis, DEFAULT_CHECKPOINT_EVERY, DEFAULT_MAX_ATTEMPTS, DEFAULT_MAX_TRIALS, DEFAULT_SPLIT_RATIO,
};
use super::{Experiment, Grid, GridError, Param, TableLayout};
use crate::dataset::DatasetKind;
use crate::ids::TrialId;
use crate::trial::{Activation, HyperParams, SplitSpec, TrialSpec};

/// Largest number of hidden layers.
pub const MAX_HIDDEN_LAYERS: i64 = 64;
/// Largest hidden width.
pub const MAX_HIDDEN_WIDTH: i64 = 65_536;
/// Largest batch size.
pub const MAX_BATCH_SIZE: i64 = 1 << 20;
/// Largest number of epochs.
pub const MAX_EPOCHS: i64 = 100_000;
/// Largest learning rate.
pub const MAX_LEARNING_RATE: f64 = 10.0;
/// Largest `max_attempts`.
pub const MAX_ATTEMPTS: i64 = 100;
/// Largest `max_trials` a grid file may set.
pub const MAX_TRIALS_LIMIT: i64 = 10_000_000;
/// Longest name (sweep, experiment, trial).
pub const MAX_NAME_LEN: usize = 128;

/// A typed parameter value.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Value {
    Activation(Activation),
    Int(u64),
    Float(f64),
}

impl Value {
    fn display(self) -> String {
        match self {
            Value::Activation(a) => a.display_name().to_owned(),
            Value::Int(i) => i.to_string(),
            Value::Float(f) => f.to_string(),
        }
    }
}

/// Checks on one source text; every error names `origin`, line, column and key.
struct Checker<'a> {
    text: &'a str,
    origin: &'a str,
}

impl Checker<'_> {
    fn err(&self, span: &Range<usize>, key: &str, message: impl Into<String>) -> GridError {
        GridError::at(self.origin, self.text, span.start, key, message)
    }

    fn name(&self, value: &Spanned<String>, key: &str) -> Result<String, GridError> {
        let name = value.get_ref();
        let ok = !name.is_empty()
            && name.len() <= MAX_NAME_LEN
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
        if ok {
            Ok(name.clone())
        } else {
            Err(self.err(
                &value.span(),
                key,
                format!(
                    "invalid name {:?}: use 1 to {MAX_NAME_LEN} letters, digits, '_', '-' or '.'",
                    truncate(name)
                ),
            ))
        }
    }

    fn int(&self, v: &Spanned<i64>, key: &str, min: i64, max: i64) -> Result<u64, GridError> {
        let x = *v.get_ref();
        if (min..=max).contains(&x) {
            // In range and min >= 0, so the conversion is exact.
            Ok(x.unsigned_abs())
        } else {
            Err(self.err(
                &v.span(),
                key,
                format!("must be an integer from {min} to {max}, got {x}"),
            ))
        }
    }

    fn value(
        &self,
        param: Param,
        text: Spanned<RawValue<'_>>,
        key: &str,
    ) -> Result<Value, GridError> {
        let span = text.span();
        let bad = |what: String| Err(self.err(&span, key, what));
        match (param, text.into_inner()) {
            (Param::Activation, RawValue::Str(s)) => match s.parse::<Activation>() {
                Ok(a) => Ok(Value::Activation(a)),
                Err(e) => bad(e.to_string()),
            },
            (Param::HiddenLayers, RawValue::Int(i)) => self
                .int(&Spanned::new(span.clone(), i), key, 0, MAX_HIDDEN_LAYERS)
                .map(Value::Int),
            (Param::HiddenWidth, RawValue::Int(i)) => self
                .int(&Spanned::new(span.clone(), i), key, 1, MAX_HIDDEN_WIDTH)
                .map(Value::Int),
            (Param::BatchSize, RawValue::Int(i)) => self
                .int(&Spanned::new(span.clone(), i), key, 1, MAX_BATCH_SIZE)
                .map(Value::Int),
            (Param::Epochs, RawValue::Int(i)) => self
                .int(&Spanned::new(span.clone(), i), key, 1, MAX_EPOCHS)
                .map(Value::Int),
            (Param::Seed, RawValue::Int(i)) => self
                .int(&Spanned::new(span.clone(), i), key, 0, i64::MAX)
                .map(Value::Int),
            (Param::LearningRate, RawValue::Float(f)) => {
                if f.is_finite() && f > 0.0 && f <= MAX_LEARNING_RATE {
                    Ok(Value::Float(f))
                } else {
                    bad(format!(
                        "must be a number greater than 0 and at most {MAX_LEARNING_RATE}, got {f}"
                    ))
                }
            }
            (Param::TrainFraction, RawValue::Float(f)) => {
                if f.is_finite() && f > 0.0 && f <= 1.0 {
                    Ok(Value::Float(f))
                } else {
                    bad(format!("must be a fraction in (0, 1], got {f}"))
                }
            }
            // The raw structs give each parameter its type, so no other pair can occur.
            (param, _) => bad(format!("wrong type of value for {param}")),
        }
    }
}

/// A raw value before its meaning is checked.
enum RawValue<'a> {
    Str(&'a str),
    Int(i64),
    Float(f64),
}

fn truncate(s: &str) -> String {
    s.chars().take(64).collect()
}

/// Collects (param, fixed value) from `[experiment.fixed]`.
fn fixed_values(f: &RawFixed) -> Vec<(Param, Spanned<RawValue<'_>>)> {
    fn s<'a, T, F: Fn(&'a T) -> RawValue<'a>>(
        v: &'a Option<Spanned<T>>,
        f: F,
    ) -> Option<Spanned<RawValue<'a>>> {
        v.as_ref().map(|v| Spanned::new(v.span(), f(v.get_ref())))
    }
    [
        (Param::Activation, s(&f.activation, |x| RawValue::Str(x))),
        (
            Param::HiddenLayers,
            s(&f.hidden_layers, |x| RawValue::Int(*x)),
        ),
        (
            Param::HiddenWidth,
            s(&f.hidden_width, |x| RawValue::Int(*x)),
        ),
        (
            Param::LearningRate,
            s(&f.learning_rate, |x| RawValue::Float(*x)),
        ),
        (Param::BatchSize, s(&f.batch_size, |x| RawValue::Int(*x))),
        (Param::Epochs, s(&f.epochs, |x| RawValue::Int(*x))),
        (
            Param::TrainFraction,
            s(&f.train_fraction, |x| RawValue::Float(*x)),
        ),
        (Param::Seed, s(&f.seed, |x| RawValue::Int(*x))),
    ]
    .into_iter()
    .filter_map(|(p, v)| v.map(|v| (p, v)))
    .collect()
}

/// A list's span and its values, each with its span.
type AxisValues<'a> = (Range<usize>, Vec<Spanned<RawValue<'a>>>);

/// Collects (param, axis values) from `[experiment.grid]`.
fn axis_values(g: &RawAxes) -> Vec<(Param, AxisValues<'_>)> {
    fn l<'a, T, F: Fn(&'a T) -> RawValue<'a>>(v: &'a RawList<T>, f: F) -> Option<AxisValues<'a>> {
        v.as_ref().map(|list| {
            let values = list
                .get_ref()
                .iter()
                .map(|x| Spanned::new(x.span(), f(x.get_ref())))
                .collect();
            (list.span(), values)
        })
    }
    [
        (Param::Activation, l(&g.activation, |x| RawValue::Str(x))),
        (
            Param::HiddenLayers,
            l(&g.hidden_layers, |x| RawValue::Int(*x)),
        ),
        (
            Param::HiddenWidth,
            l(&g.hidden_width, |x| RawValue::Int(*x)),
        ),
        (
            Param::LearningRate,
            l(&g.learning_rate, |x| RawValue::Float(*x)),
        ),
        (Param::BatchSize, l(&g.batch_size, |x| RawValue::Int(*x))),
        (Param::Epochs, l(&g.epochs, |x| RawValue::Int(*x))),
        (
            Param::TrainFraction,
            l(&g.train_fraction, |x| RawValue::Float(*x)),
        ),
        (Param::Seed, l(&g.seed, |x| RawValue::Int(*x))),
    ]
    .into_iter()
    .filter_map(|(p, v)| v.map(|v| (p, v)))
    .collect()
}

/// Default value of each parameter not fixed or varied; `seed` defaults to the sweep's seed.
fn default_value(param: Param, sweep_seed: u64) -> Value {
    match param {
        Param::Activation => Value::Activation(Activation::Relu),
        Param::HiddenLayers => Value::Int(1),
        Param::HiddenWidth => Value::Int(256),
        Param::LearningRate => Value::Float(0.001),
        Param::BatchSize => Value::Int(64),
        Param::Epochs => Value::Int(10),
        Param::TrainFraction => Value::Float(1.0),
        Param::Seed => Value::Int(sweep_seed),
    }
}

/// Validates `raw` and expands it.
pub(super) fn expand(raw: RawFile, text: &str, origin: &str) -> Result<Grid, GridError> {
    let c = Checker { text, origin };
    let sweep = raw.sweep.get_ref();
    let name = c.name(&sweep.name, "sweep.name")?;
    let seed = match &sweep.seed {
        Some(s) => c.int(s, "sweep.seed", 0, i64::MAX)?,
        None => 0,
    };
    let max_attempts = match &sweep.max_attempts {
        Some(m) => u32::try_from(c.int(m, "sweep.max_attempts", 1, MAX_ATTEMPTS)?)
            .unwrap_or(DEFAULT_MAX_ATTEMPTS),
        None => DEFAULT_MAX_ATTEMPTS,
    };
    let max_trials = match &sweep.max_trials {
        Some(m) => c.int(m, "sweep.max_trials", 1, MAX_TRIALS_LIMIT)?,
        None => DEFAULT_MAX_TRIALS,
    };
    if raw.experiments.get_ref().is_empty() {
        return Err(c.err(
            &raw.experiments.span(),
            "experiment",
            "a grid needs at least one [[experiment]]",
        ));
    }

    // Count before allocating anything per trial.
    let mut total: u64 = 0;
    for (i, e) in raw.experiments.get_ref().iter().enumerate() {
        let product = axis_values(&e.get_ref().grid)
            .iter()
            .fold(1u64, |acc, (_, (_, values))| {
                acc.saturating_mul(values.len() as u64)
            });
        total = total.saturating_add(product);
        if total > max_trials {
            return Err(c.err(
                &e.span(),
                &format!("experiment[{i}].grid"),
                format!(
                    "the grid expands to more than {max_trials} trials (sweep.max_trials); \
                     shrink the axes or raise max_trials"
                ),
            ));
        }
    }

    let mut experiments = Vec::with_capacity(raw.experiments.get_ref().len());
    let mut experiment_names: HashMap<String, usize> = HashMap::new();
    let mut trial_names: HashMap<String, (usize, String)> = HashMap::new();
    for (i, e) in raw.experiments.get_ref().iter().enumerate() {
        let exp = experiment(&c, i, e.get_ref(), seed)?;
        if let Some(first) = experiment_names.insert(exp.name.clone(), i) {
            return Err(c.err(
                &e.get_ref().name.span(),
                &format!("experiment[{i}].name"),
                format!(
                    "duplicate experiment name {:?} (also experiment[{first}])",
                    exp.name
                ),
            ));
        }
        for t in &exp.trials {
            if let Some((j, other)) = trial_names.insert(t.name.clone(), (i, exp.name.clone())) {
                let span = e
                    .get_ref()
                    .trial_name
                    .as_ref()
                    .map_or(e.get_ref().name.span(), Spanned::span);
                return Err(c.err(
                    &span,
                    &format!("experiment[{i}].trial_name"),
                    format!(
                        "two trials are named {:?} (the other in experiment[{j}] {other:?}); \
                         trial names must be unique: put every varying axis in the template",
                        t.name
                    ),
                ));
            }
        }
        experiments.push(exp);
    }
    Ok(Grid {
        name,
        seed,
        max_attempts,
        experiments,
    })
}

fn experiment(
    c: &Checker<'_>,
    i: usize,
    e: &RawExperiment,
    sweep_seed: u64,
) -> Result<Experiment, GridError> {
    let at = |k: &str| format!("experiment[{i}].{k}");
    let name = c.name(&e.name, &at("name"))?;
    let dataset: DatasetKind =
        e.dataset
            .get_ref()
            .parse()
            .map_err(|err: crate::dataset::UnknownDataset| {
                c.err(&e.dataset.span(), &at("dataset"), err.to_string())
            })?;
    let split_ratio = match &e.split_ratio {
        Some(r) => {
            let x = *r.get_ref();
            if !(x.is_finite() && x > 0.0 && x < 1.0) {
                return Err(c.err(
                    &r.span(),
                    &at("split_ratio"),
                    format!("must be a fraction in (0, 1) (the train part of the official training set), got {x}"),
                ));
            }
            x
        }
        None => DEFAULT_SPLIT_RATIO,
    };
    let checkpoint_every = match &e.checkpoint_every {
        Some(every) => {
            u32::try_from(c.int(every, &at("checkpoint_every"), 0, MAX_EPOCHS)?).unwrap_or(0)
        }
        None => DEFAULT_CHECKPOINT_EVERY,
    };
    let title = e.title.as_ref().map(|t| truncate(t.get_ref()));

    let mut values: BTreeMap<Param, Vec<Value>> = BTreeMap::new();
    let mut fixed_params: HashMap<Param, Range<usize>> = HashMap::new();
    for (param, v) in fixed_values(&e.fixed) {
        fixed_params.insert(param, v.span());
        let value = c.value(param, v, &at(&format!("fixed.{param}")))?;
        values.insert(param, vec![value]);
    }
    let mut axes = Vec::new();
    for (param, (list_span, raw_values)) in axis_values(&e.grid) {
        let key = at(&format!("grid.{param}"));
        if fixed_params.contains_key(&param) {
            return Err(c.err(
                &list_span,
                &key,
                format!(
                    "{param} is both fixed and a grid axis; keep it in one of [fixed] or [grid]"
                ),
            ));
        }
        if raw_values.is_empty() {
            return Err(c.err(&list_span, &key, "an axis needs at least one value"));
        }
        let mut axis: Vec<Value> = Vec::with_capacity(raw_values.len());
        for (j, v) in raw_values.into_iter().enumerate() {
            let span = v.span();
            let value = c.value(param, v, &format!("{key}[{j}]"))?;
            if let Some(first) = axis.iter().position(|x| *x == value) {
                return Err(c.err(
                    &span,
                    &format!("{key}[{j}]"),
                    format!(
                        "duplicate value {} (already at index {first})",
                        value.display()
                    ),
                ));
            }
            axis.push(value);
        }
        axes.push(Axis {
            param,
            values: axis.iter().map(|v| v.display()).collect(),
        });
        values.insert(param, axis);
    }
    for param in Param::ALL {
        values
            .entry(param)
            .or_insert_with(|| vec![default_value(param, sweep_seed)]);
    }

    let table = match &e.table {
        Some(t) => Some(table_layout(c, t, &axes, &at("table"))?),
        None => None,
    };
    let template = match &e.trial_name {
        Some(t) => {
            check_template(c, t, &at("trial_name"))?;
            t.get_ref().clone()
        }
        None => default_template(&axes),
    };

    let split = SplitSpec {
        train_ratio: split_ratio,
        seed: sweep_seed,
    };
    let columns: Vec<(Param, Vec<Value>)> = values.into_iter().collect();
    let count: usize = columns.iter().map(|(_, v)| v.len()).product();
    let mut trials = Vec::with_capacity(count);
    for n in 0..count {
        // Mixed-radix decomposition of n, the first axis outermost.
        let mut rest = n;
        let mut chosen: BTreeMap<Param, Value> = BTreeMap::new();
        for (param, vals) in columns.iter().rev() {
            chosen.insert(*param, vals[rest % vals.len()]);
            rest /= vals.len();
        }
        let params = hyper_params(&chosen);
        let canonical = TrialSpec::canonical(&name, dataset, &params, &split);
        let trial_name = render(&template, &name, dataset, &chosen);
        if trial_name.len() > MAX_NAME_LEN * 2 {
            let span = e.trial_name.as_ref().map_or(e.name.span(), Spanned::span);
            return Err(c.err(
                &span,
                &at("trial_name"),
                "trial names may be at most 256 bytes",
            ));
        }
        trials.push(TrialSpec {
            id: TrialId::from_content(&canonical),
            experiment: name.clone(),
            name: trial_name,
            dataset,
            params,
            split,
            checkpoint_every,
        });
    }
    Ok(Experiment {
        name,
        title,
        dataset,
        axes,
        table,
        trials,
    })
}

/// Checks `table`: two different grid axes of the experiment, neither of them `seed`.
fn table_layout(
    c: &Checker<'_>,
    t: &Spanned<super::parse::RawTable>,
    axes: &[Axis],
    key: &str,
) -> Result<TableLayout, GridError> {
    let varying: Vec<&str> = axes
        .iter()
        .filter(|a| a.param != Param::Seed)
        .map(|a| a.param.key())
        .collect();
    let axis = |v: &Spanned<String>, which: &str| -> Result<Param, GridError> {
        Param::ALL
            .into_iter()
            .find(|p| p.key() == v.get_ref() && *p != Param::Seed && varying.contains(&p.key()))
            .ok_or_else(|| {
                c.err(
                    &v.span(),
                    &format!("{key}.{which}"),
                    format!(
                        "{:?} is not a grid axis of this experiment; allowed: {}",
                        truncate(v.get_ref()),
                        if varying.is_empty() {
                            "none (no axis varies)".to_owned()
                        } else {
                            varying.join(", ")
                        }
                    ),
                )
            })
    };
    let t = t.get_ref();
    let rows = axis(&t.rows, "rows")?;
    let columns = axis(&t.columns, "columns")?;
    if rows == columns {
        return Err(c.err(
            &t.columns.span(),
            &format!("{key}.columns"),
            "rows and columns must be different axes",
        ));
    }
    Ok(TableLayout { rows, columns })
}

fn hyper_params(chosen: &BTreeMap<Param, Value>) -> HyperParams {
    let int = |p: Param| match chosen.get(&p) {
        Some(Value::Int(i)) => *i,
        _ => 0,
    };
    let float = |p: Param| match chosen.get(&p) {
        Some(Value::Float(f)) => *f,
        _ => 0.0,
    };
    let small = |p: Param| u32::try_from(int(p)).unwrap_or(u32::MAX);
    HyperParams {
        activation: match chosen.get(&Param::Activation) {
            Some(Value::Activation(a)) => *a,
            _ => Activation::Relu,
        },
        hidden_layers: small(Param::HiddenLayers),
        hidden_width: small(Param::HiddenWidth),
        learning_rate: float(Param::LearningRate),
        batch_size: small(Param::BatchSize),
        epochs: small(Param::Epochs),
        train_fraction: float(Param::TrainFraction),
        seed: int(Param::Seed),
    }
}

/// Placeholders a `trial_name` template may use.
const PLACEHOLDERS: &str = "{experiment}, {dataset}, {activation}, {hidden_layers}, {hidden_width}, \
     {learning_rate}, {batch_size}, {epochs}, {train_fraction}, {seed}";

fn check_template(c: &Checker<'_>, t: &Spanned<String>, key: &str) -> Result<(), GridError> {
    let text = t.get_ref();
    if text.is_empty() {
        return Err(c.err(&t.span(), key, "a trial_name template cannot be empty"));
    }
    let mut rest = text.as_str();
    while let Some(open) = rest.find(['{', '}']) {
        if rest[open..].starts_with('}') {
            return Err(c.err(&t.span(), key, "unmatched '}' in trial_name template"));
        }
        let after = &rest[open + 1..];
        let Some(close) = after.find('}') else {
            return Err(c.err(&t.span(), key, "unclosed '{' in trial_name template"));
        };
        let placeholder = &after[..close];
        let known = placeholder == "experiment"
            || placeholder == "dataset"
            || Param::ALL.iter().any(|p| p.key() == placeholder);
        if !known {
            return Err(c.err(
                &t.span(),
                key,
                format!(
                    "unknown placeholder {{{}}}; allowed: {PLACEHOLDERS}",
                    truncate(placeholder)
                ),
            ));
        }
        rest = &after[close + 1..];
    }
    Ok(())
}

/// `{experiment}_{axis}-{value}...` over the varying axes.
fn default_template(axes: &[Axis]) -> String {
    let mut t = String::from("{experiment}");
    for a in axes {
        t.push_str(&format!("_{0}-{{{0}}}", a.param.key()));
    }
    t
}

fn render(
    template: &str,
    experiment: &str,
    dataset: DatasetKind,
    chosen: &BTreeMap<Param, Value>,
) -> String {
    let mut out = template
        .replace("{experiment}", experiment)
        .replace("{dataset}", dataset.name());
    for (param, value) in chosen {
        out = out.replace(&format!("{{{}}}", param.key()), &value.display());
    }
    out
}
