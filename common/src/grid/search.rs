//! Checks of `[experiment.stopping]` and `[experiment.sample]` into the typed specs of
//! [`crate::search`], each error located in the file. A sampled key is checked against its row
//! of the hyperparameter table like a grid value: its bounds and choices must be values the
//! key may take.

use std::collections::{BTreeMap, HashMap};
use std::ops::Range;

use toml::Spanned;

use super::check::Checker;
use super::diagnose::Place;
use super::params::{MAX_EPOCHS, Param};
use super::parse::{RawDistribution, RawSample, RawScalar, RawStopping, Table};
use super::rules::{self, MAX_TRIALS_LIMIT, allowed, integer, one_of, truncate};
use super::suggest::{Quote, did_you_mean};
use super::{Domain, GridError, Raw, Value};
use crate::search::sample::space_size;
use crate::search::{
    Distribution, Method, Metric, Mode, Objective, Rule, SampleSpec, StoppingSpec,
};

/// Default `reduction` (η) of ASHA and Hyperband, as in Ray Tune and the ASHA paper.
pub(super) const DEFAULT_REDUCTION: u32 = 3;
/// Largest `reduction`.
pub(super) const MAX_REDUCTION: i64 = 100;
/// Default `brackets` of Hyperband.
pub(super) const DEFAULT_BRACKETS: u32 = 3;
/// Largest `brackets`.
pub(super) const MAX_BRACKETS: i64 = 16;
/// Default `min_trials` of the median rule (Ray Tune's `min_samples_required`).
pub(super) const DEFAULT_MIN_TRIALS: u32 = 3;
/// Largest `min_trials`.
pub(super) const MAX_MIN_TRIALS: i64 = 10_000;

/// The keys each rule takes besides `rule`, `metric` and `mode`.
fn rule_keys(rule: &str) -> &'static [&'static str] {
    match rule {
        "asha" => &["min_epochs", "reduction"],
        "hyperband" => &["min_epochs", "reduction", "brackets"],
        _ => &["min_epochs", "min_trials"],
    }
}

/// What a key of the stopping and sample tables allows, for the parser's messages.
pub(super) fn allows(place: Place<'_>) -> Option<String> {
    let names = |n: &[&str]| one_of(n);
    Some(match place {
        Place::Stopping => format!(
            "a table: [experiment.stopping] with rule = {}",
            names(&Rule::NAMES)
        ),
        Place::StoppingKey("rule") => names(&Rule::NAMES),
        Place::StoppingKey("metric") => names(&Metric::ALL.map(Metric::name)),
        Place::StoppingKey("mode") => names(&Mode::ALL.map(Mode::name)),
        Place::StoppingKey("min_epochs") => integer(1, MAX_EPOCHS),
        Place::StoppingKey("reduction") => integer(2, MAX_REDUCTION),
        Place::StoppingKey("brackets") => integer(1, MAX_BRACKETS),
        Place::StoppingKey("min_trials") => integer(1, MAX_MIN_TRIALS),
        Place::Sample => {
            "a table: [experiment.sample] with trials = N and [experiment.sample.space]".to_owned()
        }
        Place::SampleKey("trials") => integer(1, MAX_TRIALS_LIMIT),
        Place::SampleKey("method") => names(&Method::ALL.map(Method::name)),
        Place::SampleKey("seed") => integer(0, i64::MAX),
        Place::SampleKey("space") => {
            "a table of hyperparameters, one distribution each: [experiment.sample.space]"
                .to_owned()
        }
        Place::Distribution(_) => format!(
            "a table of one distribution, such as {{ loguniform = [0.0001, 0.1] }}: {}",
            names(&Distribution::NAMES)
        ),
        Place::DistributionKind(k, "choice") => format!(
            "a list of values, each {}",
            allowed(&Param::from_key(k)?.def().domain)
        ),
        Place::DistributionKind(_, "int") => "a list of two integers, [low, high]".to_owned(),
        Place::DistributionKind(..) => "a list of two numbers, [low, high]".to_owned(),
        _ => return None,
    })
}

impl Checker<'_> {
    /// A word that must be one of `names`.
    fn word<T>(
        &self,
        value: &Spanned<String>,
        key: &str,
        what: &str,
        names: &[&str],
        parse: impl Fn(&str) -> Option<T>,
    ) -> Result<T, GridError> {
        parse(value.get_ref()).ok_or_else(|| {
            self.err(
                &value.span(),
                key,
                format!(
                    "unknown {what} {:?}{}; allowed: {}",
                    truncate(value.get_ref()),
                    did_you_mean(value.get_ref(), names, Quote::Double),
                    names.join(", ")
                ),
            )
        })
    }

    /// An optional integer key in `min..=max`, `default` when absent.
    fn small(
        &self,
        value: Option<&Spanned<i64>>,
        key: &str,
        min: i64,
        max: i64,
        default: u32,
    ) -> Result<u32, GridError> {
        match value {
            // Every maximum here fits a u32.
            Some(v) => Ok(u32::try_from(self.int(v, key, min, max)?).unwrap_or(u32::MAX)),
            None => Ok(default),
        }
    }

    /// `[experiment.stopping]`; `epochs` is the largest `epochs` of the experiment's trials.
    pub(super) fn stopping(
        &self,
        raw: &Spanned<Table<RawStopping>>,
        at: &str,
        epochs: u64,
    ) -> Result<StoppingSpec, GridError> {
        let s = raw.get_ref();
        let key = |k: &str| format!("{at}.{k}");
        let rule = self.word(&s.rule, &key("rule"), "rule", &Rule::NAMES, |n| {
            Rule::NAMES.contains(&n).then_some(())
        });
        rule?;
        let name = s.rule.get_ref().as_str();
        self.refuse_keys_the_rule_does_not_take(s, name, &key)?;
        let objective = self.objective(s, &key)?;
        let min_epochs = self.small(
            s.min_epochs.as_ref(),
            &key("min_epochs"),
            1,
            MAX_EPOCHS as i64,
            1,
        )?;
        if u64::from(min_epochs) >= epochs {
            let span = s.min_epochs.as_ref().map_or(raw.span(), Spanned::span);
            return Err(self.err(
                &span,
                &key("min_epochs"),
                format!(
                    "min_epochs = {min_epochs} is not below the experiment's epochs ({epochs}), \
                     so the rule could never stop a trial; lower min_epochs or raise epochs"
                ),
            ));
        }
        let reduction = self.small(
            s.reduction.as_ref(),
            &key("reduction"),
            2,
            MAX_REDUCTION,
            DEFAULT_REDUCTION,
        )?;
        let rule = match name {
            "asha" => Rule::Asha {
                min_epochs,
                reduction,
            },
            "hyperband" => Rule::Hyperband {
                min_epochs,
                reduction,
                brackets: self.small(
                    s.brackets.as_ref(),
                    &key("brackets"),
                    1,
                    MAX_BRACKETS,
                    DEFAULT_BRACKETS,
                )?,
            },
            _ => Rule::Median {
                min_epochs,
                min_trials: self.small(
                    s.min_trials.as_ref(),
                    &key("min_trials"),
                    1,
                    MAX_MIN_TRIALS,
                    DEFAULT_MIN_TRIALS,
                )?,
            },
        };
        Ok(StoppingSpec { rule, objective })
    }

    /// Refuses a key of `[experiment.stopping]` that rule `name` does not take.
    fn refuse_keys_the_rule_does_not_take(
        &self,
        s: &RawStopping,
        name: &str,
        key: &dyn Fn(&str) -> String,
    ) -> Result<(), GridError> {
        // A key the rule does not take is refused, not ignored.
        let given: [(&str, Option<Range<usize>>); 4] = [
            ("min_epochs", s.min_epochs.as_ref().map(Spanned::span)),
            ("reduction", s.reduction.as_ref().map(Spanned::span)),
            ("brackets", s.brackets.as_ref().map(Spanned::span)),
            ("min_trials", s.min_trials.as_ref().map(Spanned::span)),
        ];
        let takes = rule_keys(name);
        if let Some((k, span)) = given
            .iter()
            .find_map(|(k, span)| span.clone().filter(|_| !takes.contains(k)).map(|s| (k, s)))
        {
            return Err(self.err(
                &span,
                &key(k),
                format!(
                    "rule {name:?} takes no {k}; it takes {}, with metric and mode",
                    takes.join(", ")
                ),
            ));
        }
        Ok(())
    }

    /// The metric and mode of `[experiment.stopping]` (test accuracy, maximised, by default).
    fn objective(
        &self,
        s: &RawStopping,
        key: &dyn Fn(&str) -> String,
    ) -> Result<Objective, GridError> {
        let metric = match &s.metric {
            Some(m) => self.word(
                m,
                &key("metric"),
                "metric",
                &Metric::ALL.map(Metric::name),
                Metric::from_name,
            )?,
            None => Metric::TestAccuracy,
        };
        let mode = match &s.mode {
            Some(m) => self.word(m, &key("mode"), "mode", &Mode::ALL.map(Mode::name), |n| {
                Mode::from_name(n)
            })?,
            None => metric.natural_mode(),
        };
        Ok(Objective { metric, mode })
    }

    /// `[experiment.sample]`; `fixed_or_grid` are the keys `[experiment.fixed]` and
    /// `[experiment.grid]` give, which a sampled key may not repeat.
    pub(super) fn sample(
        &self,
        raw: &Spanned<Table<RawSample>>,
        at: &str,
        sweep_seed: u64,
        fixed_or_grid: &HashMap<Param, &'static str>,
    ) -> Result<SampleSpec, GridError> {
        let s = raw.get_ref();
        let key = |k: &str| format!("{at}.{k}");
        let trials = self.int(&s.trials, &key("trials"), 1, MAX_TRIALS_LIMIT)?;
        let method = match &s.method {
            Some(m) => self.word(
                m,
                &key("method"),
                "method",
                &Method::ALL.map(Method::name),
                Method::from_name,
            )?,
            None => Method::Random,
        };
        let seed = match &s.seed {
            Some(v) => self.int(v, &key("seed"), 0, i64::MAX)?,
            None => sweep_seed,
        };
        let entries = &s.space.get_ref().0.0;
        if entries.is_empty() {
            return Err(self.err(
                &s.space.span(),
                &key("space"),
                "a sampled space needs at least one hyperparameter, such as learning_rate = { \
                 loguniform = [0.0001, 0.1] }",
            ));
        }
        let mut space = Vec::with_capacity(entries.len());
        for (&param, dist) in entries {
            let k = key(&format!("space.{param}"));
            if let Some(table) = fixed_or_grid.get(&param) {
                return Err(self.err(
                    &dist.span(),
                    &k,
                    format!(
                        "{param} is both sampled and in [experiment.{table}]; keep it in one of \
                         them"
                    ),
                ));
            }
            if param == Param::Seed {
                return Err(self.err(
                    &dist.span(),
                    &k,
                    "seed cannot be sampled: seeds repeat a configuration; give them as a grid \
                     axis, seed = [1, 2, 3], and every sampled configuration runs each",
                ));
            }
            space.push((param, self.distribution(param, dist, &k)?));
        }
        let trials = u32::try_from(trials).unwrap_or(u32::MAX);
        if let Some(size) = space_size(&space).filter(|&n| n < u64::from(trials)) {
            return Err(self.err(
                &s.trials.span(),
                &key("trials"),
                format!(
                    "{trials} trials asked, but the sampled space has only {size} distinct \
                     configurations; ask for at most {size}, or widen the space"
                ),
            ));
        }
        Ok(SampleSpec {
            trials,
            method,
            seed,
            space,
        })
    }

    /// One sampled key's distribution, checked against its row of the table.
    fn distribution(
        &self,
        param: Param,
        raw: &Spanned<Table<RawDistribution>>,
        key: &str,
    ) -> Result<Distribution, GridError> {
        let d = raw.get_ref();
        let kinds: Vec<&str> = [
            d.uniform.as_ref().map(|_| "uniform"),
            d.loguniform.as_ref().map(|_| "loguniform"),
            d.int.as_ref().map(|_| "int"),
            d.choice.as_ref().map(|_| "choice"),
        ]
        .into_iter()
        .flatten()
        .collect();
        if kinds.len() != 1 {
            let got = if kinds.is_empty() {
                "none".to_owned()
            } else {
                kinds.join(" and ")
            };
            return Err(self.err(
                &raw.span(),
                key,
                format!(
                    "give exactly one distribution, {}; got {got}",
                    one_of(&Distribution::NAMES)
                ),
            ));
        }
        let domain = param.def().domain;
        let kind = kinds[0];
        let sub = format!("{key}.{kind}");
        if let (Domain::Choice(_) | Domain::Model, "uniform" | "loguniform" | "int") =
            (domain, kind)
        {
            return Err(self.err(
                &raw.span(),
                &sub,
                format!(
                    "{param} is a choice; sample it with choice = [...], each {}",
                    allowed(&domain)
                ),
            ));
        }
        if let (Domain::Float { .. } | Domain::Fraction, "int") = (domain, kind) {
            return Err(self.err(
                &raw.span(),
                &sub,
                format!(
                    "{param} is a number, not an integer; sample it with uniform or loguniform"
                ),
            ));
        }
        if let Some(list) = &d.choice {
            return self.choices(param, list, &sub);
        }
        if let Some(list) = &d.int {
            return self.int_range(param, list, &sub);
        }
        match (&d.uniform, &d.loguniform) {
            (Some(l), _) => self.real_range(param, l, &sub, false),
            (None, Some(l)) => self.real_range(param, l, &sub, true),
            // Exactly one kind is given.
            (None, None) => Err(self.err(&raw.span(), key, "internal error: no distribution")),
        }
    }

    /// `int = [low, high]` for `param`: both ends in its domain, low not above high.
    fn int_range(
        &self,
        param: Param,
        list: &Spanned<Vec<Spanned<i64>>>,
        sub: &str,
    ) -> Result<Distribution, GridError> {
        let [low, high] = self.pair(list, sub, "two integers")?;
        for (v, i) in [(&low, 0), (&high, 1)] {
            rules::check(param.def(), Raw::Int(i128::from(*v.get_ref())))
                .map_err(|m| self.err(&v.span(), &format!("{sub}[{i}]"), m))?;
        }
        let (l, h) = (*low.get_ref(), *high.get_ref());
        if l > h {
            return Err(self.err(
                &list.span(),
                sub,
                format!("low {l} is above high {h}; write [low, high]"),
            ));
        }
        // Checked against the domain, which is at least 0.
        Ok(Distribution::Int {
            low: l.unsigned_abs(),
            high: h.unsigned_abs(),
        })
    }

    /// `uniform` or (`log`) `loguniform = [low, high]` for `param`: both ends in its domain, low
    /// below high, above 0 on a log scale, an integer between them for an integer key.
    fn real_range(
        &self,
        param: Param,
        list: &Spanned<Vec<Spanned<f64>>>,
        sub: &str,
        log: bool,
    ) -> Result<Distribution, GridError> {
        let domain = param.def().domain;
        let [low, high] = self.pair(list, sub, "two numbers")?;
        let (l, h) = (*low.get_ref(), *high.get_ref());
        for (v, i) in [(&low, 0), (&high, 1)] {
            let x = *v.get_ref();
            let in_domain = match domain {
                Domain::Int { min, max } => x.is_finite() && x >= min as f64 && x <= max as f64,
                Domain::Float { .. } | Domain::Fraction | Domain::Choice(_) | Domain::Model => {
                    domain.contains(Value::Float(x))
                }
            };
            if !in_domain {
                return Err(self.err(
                    &v.span(),
                    &format!("{sub}[{i}]"),
                    format!("must be {}, got {x}", allowed(&domain)),
                ));
            }
        }
        if l >= h {
            return Err(self.err(
                &list.span(),
                sub,
                format!("low {l} is not below high {h}; write [low, high] with low < high"),
            ));
        }
        if log && l <= 0.0 {
            return Err(self.err(
                &low.span(),
                &format!("{sub}[0]"),
                format!("a log-uniform range must start above 0, got {l}"),
            ));
        }
        if matches!(domain, Domain::Int { .. }) && l.ceil() > h.floor() {
            return Err(self.err(
                &list.span(),
                sub,
                format!("{param} is an integer and no integer lies between {l} and {h}"),
            ));
        }
        Ok(if log {
            Distribution::LogUniform { low: l, high: h }
        } else {
            Distribution::Uniform { low: l, high: h }
        })
    }

    /// `[low, high]`.
    fn pair<T: Clone>(
        &self,
        list: &Spanned<Vec<Spanned<T>>>,
        key: &str,
        what: &str,
    ) -> Result<[Spanned<T>; 2], GridError> {
        match list.get_ref().as_slice() {
            [low, high] => Ok([low.clone(), high.clone()]),
            other => Err(self.err(
                &list.span(),
                key,
                format!(
                    "must be {what}, [low, high]; got {} value{}",
                    other.len(),
                    if other.len() == 1 { "" } else { "s" }
                ),
            )),
        }
    }

    /// `choice = [...]`: values of the key, each checked like a grid value, no repeats.
    fn choices(
        &self,
        param: Param,
        list: &Spanned<Vec<Spanned<RawScalar>>>,
        key: &str,
    ) -> Result<Distribution, GridError> {
        let domain = param.def().domain;
        if list.get_ref().is_empty() {
            return Err(self.err(
                &list.span(),
                key,
                format!(
                    "a choice needs at least one value, each {}",
                    allowed(&domain)
                ),
            ));
        }
        let mut values = Vec::with_capacity(list.get_ref().len());
        let mut seen = BTreeMap::new();
        for (j, v) in list.get_ref().iter().enumerate() {
            let raw = match (domain, v.get_ref()) {
                // An integer where a number goes is that number, as in [experiment.grid].
                (Domain::Float { .. } | Domain::Fraction, RawScalar::Int(i)) => {
                    Raw::Float(*i as f64)
                }
                (_, scalar) => scalar.raw(),
            };
            let at = format!("{key}[{j}]");
            let value = rules::check(param.def(), raw).map_err(|m| self.err(&v.span(), &at, m))?;
            if let Some(first) = seen.insert(value.identity(), j) {
                return Err(self.err(
                    &v.span(),
                    &at,
                    format!(
                        "duplicate value {} (already at index {first}); each choice must be \
                         different",
                        value.display()
                    ),
                ));
            }
            values.push(value);
        }
        Ok(Distribution::Choice(values))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use crate::grid::{Grid, Param, Value};
    use crate::search::{Distribution, Method, Metric, Mode, Rule};

    const HEAD: &str = "[sweep]\nname = \"s\"\nseed = 5\n[[experiment]]\nname = \"e\"\n\
                        dataset = \"fashion-mnist\"\n";

    fn parse(rest: &str) -> Grid {
        Grid::parse(&format!("{HEAD}{rest}"), "test.toml").unwrap()
    }

    #[test]
    fn stopping_tables_read_into_rules_with_defaults() {
        let g = parse("[experiment.fixed]\nepochs = 20\n[experiment.stopping]\nrule = \"asha\"\n");
        let s = g.experiments[0].stopping.unwrap();
        assert_eq!(
            s.rule,
            Rule::Asha {
                min_epochs: 1,
                reduction: 3
            }
        );
        assert_eq!(
            (s.objective.metric, s.objective.mode),
            (Metric::TestAccuracy, Mode::Max)
        );
        let g = parse(
            "[experiment.fixed]\nepochs = 20\n[experiment.stopping]\nrule = \"hyperband\"\n\
             metric = \"train_loss\"\nmin_epochs = 2\nreduction = 2\nbrackets = 4\n",
        );
        let s = g.experiments[0].stopping.unwrap();
        assert_eq!(
            s.rule,
            Rule::Hyperband {
                min_epochs: 2,
                reduction: 2,
                brackets: 4
            }
        );
        // A loss is minimised unless the file says otherwise.
        assert_eq!(s.objective.mode, Mode::Min);
        let g = parse(
            "[experiment.fixed]\nepochs = 20\n[experiment.stopping]\nrule = \"median\"\n\
             mode = \"min\"\nmin_trials = 5\n",
        );
        let s = g.experiments[0].stopping.unwrap();
        assert_eq!(
            s.rule,
            Rule::Median {
                min_epochs: 1,
                min_trials: 5
            }
        );
        assert_eq!(s.objective.mode, Mode::Min);
        // Without the tables, nothing changes.
        let g = parse("[experiment.grid]\nseed = [1, 2]\n");
        assert!(g.experiments[0].stopping.is_none() && g.experiments[0].sample.is_none());
    }

    const SPACE: &str = "[experiment.grid]\nseed = [1, 2]\n[experiment.sample]\ntrials = 12\n\
                         method = \"METHOD\"\n[experiment.sample.space]\n\
                         learning_rate = { loguniform = [0.0001, 0.1] }\n\
                         hidden_width = { loguniform = [16, 1024] }\n\
                         hidden_layers = { int = [1, 3] }\n\
                         activation = { choice = [\"relu\", \"tanh\"] }\n\
                         train_fraction = { uniform = [0.5, 1] }\n";

    #[test]
    fn sampled_experiments_cross_each_configuration_with_the_grid() {
        for method in ["random", "sobol"] {
            let g = parse(&SPACE.replace("METHOD", method));
            let e = &g.experiments[0];
            let spec = e.sample.as_ref().unwrap();
            assert_eq!(spec.method, Method::from_name(method).unwrap());
            // The sweep's seed when the table gives none.
            assert_eq!(spec.seed, 5);
            assert_eq!(spec.space.len(), 5);
            assert_eq!(
                spec.space[3],
                (
                    Param::LearningRate,
                    Distribution::LogUniform {
                        low: 0.0001,
                        high: 0.1
                    }
                )
            );
            assert_eq!(e.trials.len(), 24);
            let mut configurations = BTreeSet::new();
            let mut ids = BTreeSet::new();
            let mut names = BTreeSet::new();
            for t in &e.trials {
                let p = &t.params;
                assert!((0.0001..=0.1).contains(&p.learning_rate), "{p:?}");
                assert!((16..=1024).contains(&p.hidden_width), "{p:?}");
                assert!((1..=3).contains(&p.hidden_layers), "{p:?}");
                assert!((0.5..=1.0).contains(&p.train_fraction), "{p:?}");
                assert!([1, 2].contains(&p.seed));
                configurations.insert(format!(
                    "{}|{}|{}|{}|{}",
                    p.learning_rate,
                    p.hidden_width,
                    p.hidden_layers,
                    p.activation,
                    p.train_fraction
                ));
                ids.insert(t.id);
                names.insert(t.name.clone());
                assert!(t.name.contains("_learning_rate-"), "{}", t.name);
            }
            // Twelve configurations, each with both seeds; every trial its own id and name.
            assert_eq!(configurations.len(), 12);
            assert_eq!((ids.len(), names.len()), (24, 24));
            // The same file expands the same way; another seed draws other configurations.
            assert_eq!(
                parse(&SPACE.replace("METHOD", method)).experiments[0].trials,
                e.trials
            );
            let other = parse(
                &SPACE
                    .replace("METHOD", method)
                    .replace("trials = 12", "trials = 12\nseed = 6"),
            );
            assert_ne!(other.experiments[0].trials, e.trials);
        }
        // TPE draws its first configurations now and the rest from results.
        let g = parse(&SPACE.replace("METHOD", "tpe"));
        assert_eq!(g.experiments[0].trials.len(), 20);
    }

    #[test]
    fn a_small_space_is_drawn_without_repeats() {
        let g = parse(
            "[experiment.sample]\ntrials = 6\n[experiment.sample.space]\n\
             activation = { choice = [\"relu\", \"tanh\", \"sigmoid\"] }\n\
             hidden_layers = { int = [1, 2] }\n",
        );
        let drawn: BTreeSet<(String, u32)> = g.experiments[0]
            .trials
            .iter()
            .map(|t| (t.params.activation.to_string(), t.params.hidden_layers))
            .collect();
        assert_eq!(drawn.len(), 6);
    }

    #[test]
    fn choices_take_the_keys_own_values() {
        let g = parse(
            "[experiment.sample]\ntrials = 2\n[experiment.sample.space]\n\
             learning_rate = { choice = [1, 0.5] }\n",
        );
        assert_eq!(
            g.experiments[0].sample.as_ref().unwrap().space[0].1,
            Distribution::Choice(vec![Value::Float(1.0), Value::Float(0.5)])
        );
    }
}

#[cfg(test)]
mod readme {
    use crate::grid::Grid;

    #[test]
    fn the_readme_example_is_a_valid_grid() {
        let readme = include_str!("../../../README.md");
        let section = readme
            .split("### Early stopping and sampled search")
            .nth(1)
            .expect("the README's section");
        let example = section
            .split("```toml\n")
            .nth(1)
            .and_then(|s| s.split("```").next())
            .expect("its toml example");
        let text = format!(
            "[sweep]\nname = \"s\"\n[[experiment]]\nname = \"e\"\ndataset = \"fashion-mnist\"\n\
             [experiment.fixed]\nepochs = 20\n{example}"
        );
        let g = Grid::parse(&text, "README.md").unwrap();
        let e = &g.experiments[0];
        assert_eq!(e.sample.as_ref().map(|s| s.space.len()), Some(5));
        assert!(e.stopping.is_some());
        // TPE's first ten configurations, drawn when the grid is loaded.
        assert_eq!(e.trials.len(), 10);
    }
}
