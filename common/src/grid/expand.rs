//! Validation of a deserialized grid file and its expansion into trials.

use std::collections::{BTreeMap, HashMap};
use std::ops::Range;

use toml::Spanned;

mod trials;

pub use trials::{BuildError, TrialBuilder};

use super::check::Checker;
use super::params::Param;
use super::parse::{RawAxes, RawExperiment, RawFile, RawList};
use super::rules::{
    MAX_ATTEMPTS, MAX_CHECKPOINT_EVERY, MAX_TRIALS_LIMIT, SPLIT_RATIO_RULE, allowed, integer,
};
use super::{
    Axis, DEFAULT_CHECKPOINT_EVERY, DEFAULT_MAX_ATTEMPTS, DEFAULT_MAX_TRIALS, DEFAULT_SPLIT_RATIO,
};
use super::{Experiment, Grid, GridError, Value};
use crate::dataset::{DatasetKind, OwnDataReader};
use crate::search::sample::Sampler;
use crate::search::{Distribution, SampleSpec};
use crate::trial::SplitSpec;

/// The axes of `[experiment.grid]`, in axis order.
fn axis_values(g: Option<&RawAxes>) -> impl Iterator<Item = (Param, &RawList)> {
    g.into_iter().flat_map(|g| g.0.iter().map(|(p, l)| (*p, l)))
}

/// Validates `raw` and expands it.
pub(super) fn expand(
    raw: RawFile,
    text: &str,
    origin: &str,
    own: &dyn OwnDataReader,
) -> Result<Grid, GridError> {
    let c = Checker { text, origin, own };
    let sweep = raw.sweep.get_ref();
    let name = c.name(&sweep.name, "sweep.name")?;
    let seed = match &sweep.seed {
        Some(s) => c.int(s, "sweep.seed", 0, i64::MAX)?,
        None => 0,
    };
    let max_attempts = match &sweep.max_attempts {
        Some(m) => {
            let n = c.int(m, "sweep.max_attempts", 1, MAX_ATTEMPTS)?;
            // At most MAX_ATTEMPTS, so it fits.
            u32::try_from(n).map_err(|_| c.err(&m.span(), "sweep.max_attempts", "too large"))?
        }
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
            "a grid needs at least one [[experiment]] table",
        ));
    }
    let max_hours = super::budget::max_hours(&c, sweep.max_hours.as_ref())?;
    let sweep_repeats = super::repeats::sweep(&c, sweep.repeats.as_ref())?;
    count_trials(&c, &raw, max_trials, sweep_repeats)?;

    let mut experiments = Vec::with_capacity(raw.experiments.get_ref().len());
    let mut experiment_names: HashMap<String, usize> = HashMap::new();
    let mut trial_names: HashMap<String, (usize, String)> = HashMap::new();
    for (i, e) in raw.experiments.get_ref().iter().enumerate() {
        let exp = experiment(&c, i, e.get_ref(), seed, sweep_repeats)?;
        if let Some(first) = experiment_names.insert(exp.name.clone(), i) {
            return Err(c.err(
                &e.get_ref().name.span(),
                &format!("experiment[{i}].name"),
                format!(
                    "duplicate experiment name {:?} (also experiment[{first}]); experiment names must be unique",
                    exp.name
                ),
            ));
        }
        for t in &exp.trials {
            if let Some((j, other)) = trial_names.insert(t.name.clone(), (i, exp.name.clone())) {
                return Err(duplicate_trial_name(
                    &c,
                    i,
                    e.get_ref(),
                    &exp,
                    &t.name,
                    j,
                    &other,
                ));
            }
        }
        experiments.push(exp);
    }
    super::files::check_unique(&c, &raw, &experiments)?;
    Ok(Grid {
        name,
        seed,
        max_attempts,
        max_hours,
        experiments,
    })
}

/// Refuses a grid that expands to more than `max_trials` trials, from the axis sizes alone,
/// before anything is allocated per trial.
fn count_trials(
    c: &Checker<'_>,
    raw: &RawFile,
    max_trials: u64,
    sweep_repeats: u64,
) -> Result<(), GridError> {
    let mut total: u64 = 0;
    for (i, e) in raw.experiments.get_ref().iter().enumerate() {
        let count = Count::of(e.get_ref(), sweep_repeats);
        let sum = count.product.and_then(|p| total.checked_add(p));
        if sum.is_some_and(|s| s <= max_trials) {
            total = sum.unwrap_or(u64::MAX);
            continue;
        }
        let this = count.describe();
        let what = match (total, sum) {
            (0, _) | (_, None) => format!("expands to {this}"),
            (_, Some(sum)) => format!(
                "expands to {this}; with the {total} trials of the experiments above, the sweep \
                 has {sum}"
            ),
        };
        let (span, key, shrink) = match (&e.get_ref().sample, &e.get_ref().grid) {
            (Some(s), _) => (
                s.get_ref().trials.span(),
                "sample.trials",
                "sample fewer configurations, shrink the axes,",
            ),
            (None, grid) => (
                grid.as_ref().map_or_else(|| e.span(), Spanned::span),
                "grid",
                "shrink the axes",
            ),
        };
        return Err(c.err(
            &span,
            &format!("experiment[{i}].{key}"),
            format!(
                "{what}, more than sweep.max_trials = {max_trials}; {shrink} or raise \
                 max_trials (at most {MAX_TRIALS_LIMIT})"
            ),
        ));
    }
    Ok(())
}

/// How many trials one experiment expands to, from its axis sizes alone.
struct Count<'a> {
    /// Its grid axes.
    axes: Vec<(Param, &'a RawList)>,
    /// Sampled configurations (1 without `[experiment.sample]`).
    sampled: u64,
    /// Seeds per configuration (`repeats`).
    repeats: u64,
    /// A program experiment's cells of its own axes (`None`: too many to count).
    program_cells: Option<u64>,
    /// The trials (`None`: more than `u64::MAX`).
    product: Option<u64>,
}

impl<'a> Count<'a> {
    fn of(e: &'a RawExperiment, sweep_repeats: u64) -> Self {
        let axes: Vec<(Param, &RawList)> = axis_values(e.axes()).collect();
        // A sampled experiment runs its grid cells once per sampled configuration.
        let sampled = e
            .sample
            .as_ref()
            .map_or(1, |s| s.get_ref().trials.get_ref().unsigned_abs().max(1));
        let repeats = super::repeats::count(e, sweep_repeats);
        // A program experiment's own axes multiply the built-in ones.
        let program_cells = super::program::raw_cells(e);
        let start = program_cells.and_then(|n| n.checked_mul(sampled));
        let product = start
            .and_then(|start| {
                axes.iter().try_fold(start, |acc, (_, values)| {
                    acc.checked_mul(values.get_ref().len() as u64)
                })
            })
            .and_then(|p| p.checked_mul(repeats));
        Count {
            axes,
            sampled,
            repeats,
            program_cells,
            product,
        }
    }

    /// `120 trials (3 x 40 values of hidden_width, seed)` and the like.
    fn describe(&self) -> String {
        let mut sizes: Vec<String> = self
            .axes
            .iter()
            .map(|(_, v)| v.get_ref().len().to_string())
            .collect();
        let mut names: Vec<&str> = self.axes.iter().map(|(p, _)| p.key()).collect();
        if self.repeats > 1 {
            sizes.push(self.repeats.to_string());
            names.push("seed (repeats)");
        }
        let count = match self.product {
            Some(p) => format!("{p} trials"),
            None => format!("more than {} trials", u64::MAX),
        };
        let times = if sizes.is_empty() { "" } else { " x " };
        if self.sampled > 1 {
            format!(
                "{count} ({} sampled configurations{times}{})",
                self.sampled,
                sizes.join(" x ")
            )
        } else if self.program_cells != Some(1) {
            format!(
                "{count} ({} program cells of [experiment.params]{times}{})",
                self.program_cells
                    .map_or_else(|| "too many".to_owned(), |n| n.to_string()),
                sizes.join(" x ")
            )
        } else if sizes.is_empty() {
            "1 trial (no axis varies)".to_owned()
        } else {
            format!(
                "{count} ({} values of {})",
                sizes.join(" x "),
                names.join(", ")
            )
        }
    }
}

/// The error for two trials with one name: which axes the template leaves out, or that two
/// experiments' templates give the same name.
fn duplicate_trial_name(
    c: &Checker<'_>,
    i: usize,
    e: &RawExperiment,
    exp: &Experiment,
    name: &str,
    j: usize,
    other: &str,
) -> GridError {
    let span = e.trial_name.as_ref().map_or(e.name.span(), Spanned::span);
    let template = e.trial_name.as_ref().map(|t| t.get_ref().as_str());
    let message = if i == j {
        let missing: Vec<String> = exp
            .axes
            .iter()
            .filter(|a| template.is_some_and(|t| !t.contains(&format!("{{{}}}", a.param))))
            .map(|a| format!("{{{}}}", a.param))
            .collect();
        let axes = if missing.len() == 1 { "axis" } else { "axes" };
        format!(
            "two trials of this experiment are named {name:?}; trial names must be unique: add \
             the varying {axes} {} to the template",
            missing.join(", ")
        )
    } else {
        format!(
            "trial name {name:?} is also a trial of experiment[{j}] {other:?}; trial names must \
             be unique across the sweep: add {{experiment}} to the template"
        )
    };
    c.err(&span, &format!("experiment[{i}].trial_name"), message)
}

/// What `[experiment]`'s scalar settings say.
struct Settings {
    split_ratio: f64,
    checkpoint_every: u32,
    title: Option<String>,
}

fn settings(
    c: &Checker<'_>,
    at: &dyn Fn(&str) -> String,
    e: &RawExperiment,
) -> Result<Settings, GridError> {
    let split_ratio = match &e.split_ratio {
        Some(r) => c.fraction(
            &r.span(),
            &at("split_ratio"),
            *r.get_ref(),
            SPLIT_RATIO_RULE,
            false,
        )?,
        None => DEFAULT_SPLIT_RATIO,
    };
    let checkpoint_every = match &e.checkpoint_every {
        Some(every) => match u32::try_from(*every.get_ref()) {
            Ok(n) if u64::from(n) <= MAX_CHECKPOINT_EVERY => n,
            _ => {
                return Err(c.err(
                    &every.span(),
                    &at("checkpoint_every"),
                    format!(
                        "must be {} (0: never), got {}",
                        integer(0, MAX_CHECKPOINT_EVERY),
                        every.get_ref()
                    ),
                ));
            }
        },
        None => DEFAULT_CHECKPOINT_EVERY,
    };
    let title = match &e.title {
        Some(t) => Some(c.title(t, &at("title"))?),
        None => None,
    };
    Ok(Settings {
        split_ratio,
        checkpoint_every,
        title,
    })
}

/// Every key's values (fixed ones, grid axes, then defaults), the axes that vary and the keys
/// that are fixed.
type Values = (
    BTreeMap<Param, Vec<Value>>,
    Vec<Axis>,
    HashMap<Param, Range<usize>>,
);

fn values(
    c: &Checker<'_>,
    at: &dyn Fn(&str) -> String,
    e: &RawExperiment,
    dataset: DatasetKind,
    sweep_seed: u64,
    repeats: u64,
) -> Result<Values, GridError> {
    let mut values: BTreeMap<Param, Vec<Value>> = BTreeMap::new();
    let mut fixed_params: HashMap<Param, Range<usize>> = HashMap::new();
    for (&param, v) in &e.fixed.0.0 {
        fixed_params.insert(param, v.span());
        let value = c.value(param, v, &at(&format!("fixed.{param}")))?;
        c.model_fits(value, dataset, &v.span(), &at(&format!("fixed.{param}")))?;
        values.insert(param, vec![value]);
    }
    let mut axes = Vec::new();
    for (param, list) in axis_values(e.axes()) {
        let axis = axis(c, at, param, list, dataset, &fixed_params)?;
        axes.push(Axis {
            param,
            values: axis.iter().map(|v| v.display()).collect(),
        });
        values.insert(param, axis);
    }
    let repeats_span = e.repeats.as_ref().map_or(e.name.span(), Spanned::span);
    if let Some(seeds) =
        super::repeats::seeds(c, &repeats_span, &at("repeats"), sweep_seed, repeats)?
    {
        axes.push(Axis {
            param: Param::Seed,
            values: seeds.iter().map(|v| v.display()).collect(),
        });
        axes.sort_by_key(|a| a.param);
        values.insert(Param::Seed, seeds);
    }
    for param in Param::ALL {
        values
            .entry(param)
            .or_insert_with(|| vec![param.def().default.value(sweep_seed)]);
    }
    Ok((values, axes, fixed_params))
}

/// The checked values of the grid axis `param`.
fn axis(
    c: &Checker<'_>,
    at: &dyn Fn(&str) -> String,
    param: Param,
    list: &RawList,
    dataset: DatasetKind,
    fixed_params: &HashMap<Param, Range<usize>>,
) -> Result<Vec<Value>, GridError> {
    let key = at(&format!("grid.{param}"));
    let list_span = list.span();
    let raw_values = list.get_ref();
    if fixed_params.contains_key(&param) {
        return Err(c.err(
            &list_span,
            &key,
            format!(
                "{param} is both fixed and a grid axis; keep it in one of [experiment.fixed] \
                 or [experiment.grid]"
            ),
        ));
    }
    if raw_values.is_empty() {
        return Err(c.err(
            &list_span,
            &key,
            format!(
                "an axis needs at least one value, each {}; or remove the axis",
                allowed(&param.def().domain)
            ),
        ));
    }
    let mut axis: Vec<Value> = Vec::with_capacity(raw_values.len());
    let mut seen = HashMap::with_capacity(raw_values.len());
    for (j, v) in raw_values.iter().enumerate() {
        let value = c.value(param, v, &format!("{key}[{j}]"))?;
        c.model_fits(value, dataset, &v.span(), &format!("{key}[{j}]"))?;
        if let Some(first) = seen.insert(value.identity(), j) {
            return Err(c.err(
                &v.span(),
                &format!("{key}[{j}]"),
                format!(
                    "duplicate value {} (already at index {first}); each value of an axis \
                     must be different",
                    value.display()
                ),
            ));
        }
        axis.push(value);
    }
    Ok(axis)
}

/// `[experiment.sample]`, checked against the fixed and grid keys and the dataset's model.
fn sample(
    c: &Checker<'_>,
    at: &dyn Fn(&str) -> String,
    e: &RawExperiment,
    dataset: DatasetKind,
    sweep_seed: u64,
    fixed_or_grid: &HashMap<Param, &'static str>,
) -> Result<Option<SampleSpec>, GridError> {
    let Some(raw) = &e.sample else {
        return Ok(None);
    };
    let spec = c.sample(raw, &at("sample"), sweep_seed, fixed_or_grid)?;
    for (param, dist) in &spec.space {
        if let Distribution::Choice(values) = dist {
            for v in values {
                c.model_fits(*v, dataset, &raw.span(), &at(&format!("sample.{param}")))?;
            }
        }
    }
    Ok(Some(spec))
}

/// The trial name template: the file's (with `{seed}` added for repeats) or the default one.
fn template(
    c: &Checker<'_>,
    at: &dyn Fn(&str) -> String,
    e: &RawExperiment,
    repeats: u64,
    axes: &[Axis],
    sample: Option<&SampleSpec>,
    program: Option<&super::program::ProgramGrid>,
) -> Result<String, GridError> {
    let program_keys = program.map(|p| p.keys()).unwrap_or_default();
    Ok(match &e.trial_name {
        Some(t) => {
            c.template_with(t, &at("trial_name"), &program_keys)?;
            if repeats > 1 {
                super::repeats::template(t.get_ref().clone())
            } else {
                t.get_ref().clone()
            }
        }
        None => {
            let mut t = default_template(axes, sample);
            for key in program.iter().flat_map(|p| p.axes()) {
                t.push_str(&format!("_{key}-{{{key}}}"));
            }
            t
        }
    })
}

fn experiment(
    c: &Checker<'_>,
    i: usize,
    e: &RawExperiment,
    sweep_seed: u64,
    sweep_repeats: u64,
) -> Result<Experiment, GridError> {
    let at = |k: &str| format!("experiment[{i}].{k}");
    let repeats = super::repeats::of_experiment(c, i, e, sweep_repeats)?;
    let name = c.name(&e.name, &at("name"))?;
    let dataset = c.dataset(&e.dataset, &at("dataset"))?;
    let settings = settings(c, &at, e)?;
    let (values, axes, fixed_params) = values(c, &at, e, dataset, sweep_seed, repeats)?;
    let fixed_or_grid: HashMap<Param, &'static str> = fixed_params
        .keys()
        .map(|p| (*p, "fixed"))
        .chain(axes.iter().map(|a| (a.param, "grid")))
        .collect();
    let sample = sample(c, &at, e, dataset, sweep_seed, &fixed_or_grid)?;
    let sample_err = |err: String| {
        let span = e.sample.as_ref().map_or(e.name.span(), Spanned::span);
        c.err(&span, &at("sample"), err)
    };
    let points = match &sample {
        Some(spec) => Sampler::new(spec)
            .draw(spec.up_front())
            .map_err(|err| sample_err(err.to_string()))?,
        None => vec![Vec::new()],
    };
    let table = match &e.table {
        Some(t) => Some(c.table_layout(t, &axes, &at("table"))?),
        None => None,
    };
    let program = super::program::check(c, &at, e)?;
    let template = template(c, &at, e, repeats, &axes, sample.as_ref(), program.as_ref())?;
    let builder = TrialBuilder {
        experiment: name.clone(),
        dataset,
        split: SplitSpec {
            train_ratio: settings.split_ratio,
            seed: sweep_seed,
        },
        checkpoint_every: settings.checkpoint_every,
        template,
        values,
        sampled: sample
            .iter()
            .flat_map(|s| s.space.iter().map(|(p, _)| *p))
            .collect(),
        program,
    };
    let trials = build_trials(c, &at, e, &builder, &points)?;
    let stopping = match &e.stopping {
        Some(s) => {
            let epochs = trials.iter().map(|t| u64::from(t.params.epochs)).max();
            Some(c.stopping(s, &at("stopping"), epochs.unwrap_or(0))?)
        }
        None => None,
    };
    Ok(Experiment {
        name,
        title: settings.title,
        dataset,
        axes,
        table,
        trials,
        stopping,
        sample,
        builder: Some(Box::new(builder)),
    })
}

/// The trials of `builder` at each sampled point (one empty point for an experiment without
/// `[experiment.sample]`); an error names the entry of `e` at fault.
fn build_trials(
    c: &Checker<'_>,
    at: &dyn Fn(&str) -> String,
    e: &RawExperiment,
    builder: &TrialBuilder,
    points: &[Vec<Value>],
) -> Result<Vec<crate::TrialSpec>, GridError> {
    let mut trials = Vec::new();
    for point in points {
        trials.extend(builder.trials(point).map_err(|err| match err {
            BuildError::NameTooLong { .. } => {
                let span = e.trial_name.as_ref().map_or(e.name.span(), Spanned::span);
                c.err(&span, &at("trial_name"), err.to_string())
            }
            // Every value was checked against its domain, which fits its field.
            BuildError::Params(_) | BuildError::PointLength { .. } => {
                c.err(&e.name.span(), &at("name"), err.to_string())
            }
        })?);
    }
    Ok(trials)
}

/// `{experiment}_{axis}-{value}...` over the varying axes and the sampled keys, in axis order.
fn default_template(axes: &[Axis], sample: Option<&SampleSpec>) -> String {
    let mut varying: Vec<Param> = axes.iter().map(|a| a.param).collect();
    varying.extend(sample.iter().flat_map(|s| s.space.iter().map(|(p, _)| *p)));
    varying.sort();
    let mut t = String::from("{experiment}");
    for p in varying {
        t.push_str(&format!("_{0}-{{{0}}}", p.key()));
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
