//! A program experiment (issue 19): `program = [...]` (argv, no shell, `{key}` placeholders),
//! `workdir`, `env`, and `[experiment.params]`, the program's own hyperparameters.
//!
//! A key of `[experiment.params]` is any name (letters, digits, `_`); its value is one value (a
//! fixed value: an integer, a number, a string or a boolean), a list of values (a grid axis), or
//! a table with `value` or `values` and, for numbers, `min` and `max` (closed bounds). The
//! built-in hyperparameters keep their tables and their meaning (`epochs` is how many epochs the
//! program reports, `seed` its seed). The program's axes vary inside the built-in ones, in key
//! order; each cell is a trial whose id includes what runs ([`ProgramSpec::canonical`]).

use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;
use std::ops::Range;

use serde::Deserialize;
use serde::de::{Deserializer, MapAccess, SeqAccess, Visitor};
use toml::Spanned;

use super::check::Checker;
use super::params::Param;
use super::parse::{RawExperiment, Table};
use super::suggest::{Quote, did_you_mean};
use super::{GridError, Value};
use crate::dataset::DatasetKind;
use crate::program::{
    MAX_ARG_BYTES, MAX_ARGS, MAX_ENV, MAX_PARAMS, ProgramSpec, ProgramValue, valid_env_name,
    valid_key,
};

/// `env = { NAME = "value" }`.
pub(super) type RawEnv = Table<BTreeMap<String, Spanned<String>>>;

/// `[experiment.params]`: the program's hyperparameters, by key.
pub(super) type RawParams = Table<BTreeMap<String, Spanned<RawParam>>>;

/// One scalar of the program's, of whichever TOML type the file gives.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct RawScalar(pub ProgramValue);

impl<'de> Deserialize<'de> for RawScalar {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = RawScalar;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an integer, a number, a string or a boolean")
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<RawScalar, E> {
                Ok(RawScalar(ProgramValue::Int(v)))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<RawScalar, E> {
                i64::try_from(v)
                    .map(|v| RawScalar(ProgramValue::Int(v)))
                    .map_err(|_| {
                        E::custom(format!("integer {v} is too large (at most {})", i64::MAX))
                    })
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<RawScalar, E> {
                Ok(RawScalar(ProgramValue::Float(v)))
            }
            fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<RawScalar, E> {
                Ok(RawScalar(ProgramValue::Bool(v)))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<RawScalar, E> {
                Ok(RawScalar(ProgramValue::Text(v.to_owned())))
            }
        }
        deserializer.deserialize_any(V)
    }
}

/// A list of scalars with the span of each.
pub(super) type RawScalars = Vec<Spanned<RawScalar>>;

/// `{ value = ..., min = ..., max = ... }` or `{ values = [...], min = ..., max = ... }`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRanged {
    pub value: Option<Spanned<RawScalar>>,
    pub values: Option<Spanned<RawScalars>>,
    pub min: Option<Spanned<f64>>,
    pub max: Option<Spanned<f64>>,
}

/// What `[experiment.params]` holds per key.
#[derive(Debug)]
pub(super) enum RawParam {
    /// One value: fixed.
    One(RawScalar),
    /// A list: a grid axis.
    List(RawScalars),
    /// A table, with a range.
    Ranged(RawRanged),
}

impl<'de> Deserialize<'de> for RawParam {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V(PhantomData<()>);
        impl<'de> Visitor<'de> for V {
            type Value = RawParam;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(
                    "a value (an integer, a number, a string or a boolean), a list of values (a \
                     grid axis), or a table { value = ..., min = ..., max = ... } or { values = \
                     [...], min = ..., max = ... }",
                )
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<RawParam, E> {
                Ok(RawParam::One(RawScalar(ProgramValue::Int(v))))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<RawParam, E> {
                i64::try_from(v)
                    .map(|v| RawParam::One(RawScalar(ProgramValue::Int(v))))
                    .map_err(|_| {
                        E::custom(format!("integer {v} is too large (at most {})", i64::MAX))
                    })
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<RawParam, E> {
                Ok(RawParam::One(RawScalar(ProgramValue::Float(v))))
            }
            fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<RawParam, E> {
                Ok(RawParam::One(RawScalar(ProgramValue::Bool(v))))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<RawParam, E> {
                Ok(RawParam::One(RawScalar(ProgramValue::Text(v.to_owned()))))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<RawParam, A::Error> {
                let mut values = Vec::new();
                while let Some(v) = seq.next_element::<Spanned<RawScalar>>()? {
                    values.push(v);
                }
                Ok(RawParam::List(values))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<RawParam, A::Error> {
                RawRanged::deserialize(serde::de::value::MapAccessDeserializer::new(map))
                    .map(RawParam::Ranged)
            }
        }
        deserializer.deserialize_any(V(PhantomData))
    }
}

/// A checked program experiment: what runs, and its hyperparameters' values.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct ProgramGrid {
    argv: Vec<String>,
    workdir: Option<String>,
    env: BTreeMap<String, String>,
    /// Fixed and varying keys, in key order: one value for a fixed key, the axis's otherwise.
    params: Vec<(String, Vec<ProgramValue>)>,
}

impl ProgramGrid {
    /// The keys of the program's hyperparameters.
    pub(super) fn keys(&self) -> Vec<&str> {
        self.params.iter().map(|(k, _)| k.as_str()).collect()
    }

    /// The keys that vary (more than one value).
    pub(super) fn axes(&self) -> impl Iterator<Item = &str> {
        self.params
            .iter()
            .filter(|(_, v)| v.len() > 1)
            .map(|(k, _)| k.as_str())
    }

    /// Every combination of the program's values, the first key outermost.
    pub(super) fn cells(&self) -> Vec<BTreeMap<String, ProgramValue>> {
        let count: usize = self.params.iter().map(|(_, v)| v.len()).product();
        (0..count)
            .map(|n| {
                let mut rest = n;
                let mut cell = BTreeMap::new();
                for (key, values) in self.params.iter().rev() {
                    cell.insert(key.clone(), values[rest % values.len()].clone());
                    rest /= values.len();
                }
                cell
            })
            .collect()
    }

    /// What a trial with the built-in values `chosen` and the program's `cell` runs.
    pub(super) fn resolve(
        &self,
        experiment: &str,
        dataset: DatasetKind,
        chosen: &BTreeMap<Param, Value>,
        cell: &BTreeMap<String, ProgramValue>,
    ) -> ProgramSpec {
        let argv = self
            .argv
            .iter()
            .map(|a| render(a, experiment, dataset, chosen, cell))
            .collect();
        ProgramSpec {
            argv,
            workdir: self.workdir.clone(),
            env: self.env.clone(),
            params: cell.clone(),
        }
    }
}

/// `template` with the placeholders of the built-in values `chosen` and the program's `cell`
/// replaced by their values.
pub(super) fn render(
    template: &str,
    experiment: &str,
    dataset: DatasetKind,
    chosen: &BTreeMap<Param, Value>,
    cell: &BTreeMap<String, ProgramValue>,
) -> String {
    // One pass, so that a value containing braces is never read as a placeholder. `{{` and
    // `}}` are a literal brace.
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(open) = rest.find(['{', '}']) {
        out.push_str(&rest[..open]);
        if rest[open..].starts_with("{{") || rest[open..].starts_with("}}") {
            out.push_str(&rest[open..=open]);
            rest = &rest[open + 2..];
            continue;
        }
        if rest[open..].starts_with('}') {
            out.push('}');
            rest = &rest[open + 1..];
            continue;
        }
        let after = &rest[open + 1..];
        let Some(close) = after.find('}') else {
            out.push_str(&rest[open..]);
            return out;
        };
        let name = &after[..close];
        let value = match name {
            "experiment" => Some(experiment.to_owned()),
            "dataset" => Some(dataset.name().to_owned()),
            _ => Param::from_key(name)
                .and_then(|p| chosen.get(&p).map(|v| v.display()))
                .or_else(|| cell.get(name).map(ProgramValue::display)),
        };
        match value {
            Some(v) => out.push_str(&v),
            None => out.push_str(&rest[open..open + 2 + close]),
        }
        rest = &after[close + 1..];
    }
    out.push_str(rest);
    out
}

/// Number of program cells of a raw experiment (1 without a program), for the count against
/// `max_trials` before anything is expanded; `None` when it overflows.
pub(super) fn raw_cells(e: &RawExperiment) -> Option<u64> {
    let Some(params) = &e.params else {
        return Some(1);
    };
    params.get_ref().0.values().try_fold(1u64, |acc, p| {
        let n = match p.get_ref() {
            RawParam::One(_) => 1,
            RawParam::List(l) => l.len(),
            RawParam::Ranged(r) => r.values.as_ref().map_or(1, |v| v.get_ref().len()),
        };
        acc.checked_mul(n.max(1) as u64)
    })
}

/// Checks an experiment's program keys: `None` for an experiment of the built-in trainer.
pub(super) fn check(
    c: &Checker<'_>,
    at: &dyn Fn(&str) -> String,
    e: &RawExperiment,
) -> Result<Option<ProgramGrid>, GridError> {
    let Some(program) = &e.program else {
        let stray = [
            ("workdir", e.workdir.as_ref().map(Spanned::span)),
            ("env", e.env.as_ref().map(Spanned::span)),
            ("params", e.params.as_ref().map(Spanned::span)),
        ];
        if let Some((key, Some(span))) = stray.into_iter().find(|(_, s)| s.is_some()) {
            return Err(c.err(
                &span,
                &at(key),
                format!(
                    "{key} belongs to a program experiment; add program = [\"python3\", \
                     \"train.py\", ...] to run your own program, or remove {key}"
                ),
            ));
        }
        return Ok(None);
    };
    let params = params(c, at, e)?;
    let argv = argv(c, at, program, &params)?;
    let workdir = match &e.workdir {
        Some(w) => {
            c.text(w, &at("workdir"))?;
            if w.get_ref().is_empty() || w.get_ref().len() > MAX_ARG_BYTES {
                return Err(c.err(
                    &w.span(),
                    &at("workdir"),
                    format!("a working directory is 1 to {MAX_ARG_BYTES} bytes"),
                ));
            }
            Some(w.get_ref().clone())
        }
        None => None,
    };
    let mut env = BTreeMap::new();
    if let Some(table) = &e.env {
        if table.get_ref().0.len() > MAX_ENV {
            return Err(c.err(
                &table.span(),
                &at("env"),
                format!("at most {MAX_ENV} environment variables"),
            ));
        }
        for (name, value) in &table.get_ref().0 {
            let key = at(&format!("env.{name}"));
            if !valid_env_name(name) {
                return Err(c.err(
                    &value.span(),
                    &key,
                    format!(
                        "invalid environment variable name {:?}: use letters, digits and '_' \
                         (at most 64), not starting with a digit; SWEEP_* and \
                         CUDA_VISIBLE_DEVICES are set by the worker",
                        super::rules::truncate(name)
                    ),
                ));
            }
            c.text(value, &key)?;
            if value.get_ref().len() > MAX_ARG_BYTES {
                return Err(c.err(
                    &value.span(),
                    &key,
                    format!("a value is at most {MAX_ARG_BYTES} bytes"),
                ));
            }
            env.insert(name.clone(), value.get_ref().clone());
        }
    }
    Ok(Some(ProgramGrid {
        argv,
        workdir,
        env,
        params,
    }))
}

/// The argv, its placeholders checked against the keys there are.
fn argv(
    c: &Checker<'_>,
    at: &dyn Fn(&str) -> String,
    program: &Spanned<Vec<Spanned<String>>>,
    params: &[(String, Vec<ProgramValue>)],
) -> Result<Vec<String>, GridError> {
    let args = program.get_ref();
    if args.is_empty() || args.len() > MAX_ARGS {
        return Err(c.err(
            &program.span(),
            &at("program"),
            format!(
                "program is the program and its arguments, 1 to {MAX_ARGS} strings: \
                 [\"python3\", \"train.py\", \"--lr\", \"{{learning_rate}}\"] (run without a shell)"
            ),
        ));
    }
    let mut names: Vec<&str> = vec!["experiment", "dataset"];
    names.extend(Param::KEYS);
    names.extend(params.iter().map(|(k, _)| k.as_str()));
    for (j, arg) in args.iter().enumerate() {
        let key = at(&format!("program[{j}]"));
        c.text(arg, &key)?;
        if arg.get_ref().len() > MAX_ARG_BYTES || (j == 0 && arg.get_ref().is_empty()) {
            return Err(c.err(
                &arg.span(),
                &key,
                format!("an argument is at most {MAX_ARG_BYTES} bytes, and the program's name is not empty"),
            ));
        }
        placeholders(c, arg, &key, &names)?;
    }
    Ok(args.iter().map(|a| a.get_ref().clone()).collect())
}

/// Checks the `{key}` placeholders of `text` against `names` (`{{` is a literal brace).
pub(super) fn placeholders(
    c: &Checker<'_>,
    text: &Spanned<String>,
    key: &str,
    names: &[&str],
) -> Result<(), GridError> {
    let s = text.get_ref();
    let mut rest = s.as_str();
    let mut offset = 0;
    while let Some(open) = rest.find('{') {
        if rest[open..].starts_with("{{") {
            offset += open + 2;
            rest = &rest[open + 2..];
            continue;
        }
        let after = &rest[open + 1..];
        let Some(close) = after.find('}') else {
            return Err(c.err(
                &c.inside(text, offset + open),
                key,
                "unclosed '{' in a placeholder; write {key}, or {{ for a literal brace",
            ));
        };
        let name = &after[..close];
        if !names.contains(&name) {
            let braced: Vec<String> = names.iter().map(|n| format!("{{{n}}}")).collect();
            return Err(c.err(
                &c.inside(text, offset + open),
                key,
                format!(
                    "unknown placeholder {{{}}}{}; a placeholder names a key of \
                     [experiment.params], a built-in hyperparameter, {{experiment}} or \
                     {{dataset}}: {}",
                    super::rules::truncate(name),
                    did_you_mean(name, names, Quote::Brace),
                    braced.join(", ")
                ),
            ));
        }
        offset += open + 1 + close + 1;
        rest = &after[close + 1..];
    }
    Ok(())
}

/// `[experiment.params]`, checked: keys, types, ranges, duplicates.
fn params(
    c: &Checker<'_>,
    at: &dyn Fn(&str) -> String,
    e: &RawExperiment,
) -> Result<Vec<(String, Vec<ProgramValue>)>, GridError> {
    let Some(table) = &e.params else {
        return Ok(Vec::new());
    };
    if table.get_ref().0.len() > MAX_PARAMS {
        return Err(c.err(
            &table.span(),
            &at("params"),
            format!("at most {MAX_PARAMS} hyperparameters of the program's"),
        ));
    }
    let mut out = Vec::new();
    for (name, raw) in &table.get_ref().0 {
        let key = at(&format!("params.{name}"));
        if !valid_key(name) {
            return Err(c.err(
                &raw.span(),
                &key,
                format!(
                    "invalid key {:?}: a program's hyperparameter is named with letters, digits \
                     and '_' (at most 64), starting with a letter, so that {{key}} can name it",
                    super::rules::truncate(name)
                ),
            ));
        }
        if Param::from_key(name).is_some() {
            return Err(c.err(
                &raw.span(),
                &key,
                format!(
                    "{name} is a built-in hyperparameter: give it in [experiment.fixed] or \
                     [experiment.grid] (the program gets it as {{{name}}} and in its \
                     hyperparameters file too)"
                ),
            ));
        }
        let (values, min, max) = match raw.get_ref() {
            RawParam::One(v) => (vec![Spanned::new(raw.span(), v.clone())], None, None),
            RawParam::List(l) => (l.clone(), None, None),
            RawParam::Ranged(r) => {
                let values = match (&r.value, &r.values) {
                    (Some(v), None) => vec![v.clone()],
                    (None, Some(vs)) => vs.get_ref().clone(),
                    _ => {
                        return Err(c.err(
                            &raw.span(),
                            &key,
                            "give exactly one of value = ... (fixed) and values = [...] (a grid \
                             axis)",
                        ));
                    }
                };
                (values, r.min.as_ref(), r.max.as_ref())
            }
        };
        out.push((name.clone(), axis(c, &key, raw.span(), &values, min, max)?));
    }
    Ok(out)
}

/// One key's values: at least one, all of one type, in range, none twice.
fn axis(
    c: &Checker<'_>,
    key: &str,
    span: Range<usize>,
    values: &[Spanned<RawScalar>],
    min: Option<&Spanned<f64>>,
    max: Option<&Spanned<f64>>,
) -> Result<Vec<ProgramValue>, GridError> {
    let Some(first) = values.first() else {
        return Err(c.err(
            &span,
            key,
            "an axis needs at least one value; or remove the key",
        ));
    };
    let numeric = matches!(
        first.get_ref().0,
        ProgramValue::Int(_) | ProgramValue::Float(_)
    );
    if let Some(bound) = min.or(max).filter(|_| !numeric) {
        return Err(c.err(
            &bound.span(),
            key,
            format!(
                "min and max bound numbers; this key's values are {}",
                first.get_ref().0.type_name()
            ),
        ));
    }
    let mut out: Vec<ProgramValue> = Vec::with_capacity(values.len());
    for (j, v) in values.iter().enumerate() {
        let at = format!("{key}[{j}]");
        let value = &v.get_ref().0;
        if std::mem::discriminant(value) != std::mem::discriminant(&first.get_ref().0) {
            return Err(c.err(
                &v.span(),
                &at,
                format!(
                    "{value} is {}, but the first value is {}; all values of a key have one type",
                    value.type_name(),
                    first.get_ref().0.type_name()
                ),
            ));
        }
        check_value(c, &at, v, (min, max))?;
        if let Some(i) = out.iter().position(|o| o.same(value)) {
            return Err(c.err(
                &v.span(),
                &at,
                format!(
                    "duplicate value {value} (already at index {i}); each value of an axis must \
                     be different"
                ),
            ));
        }
        out.push(value.clone());
    }
    Ok(out)
}

/// One value of a key: printable text of bounded length, or a finite number within the key's
/// `min` and `max`.
fn check_value(
    c: &Checker<'_>,
    at: &str,
    v: &Spanned<RawScalar>,
    (min, max): (Option<&Spanned<f64>>, Option<&Spanned<f64>>),
) -> Result<(), GridError> {
    let value = &v.get_ref().0;
    let x = match value {
        ProgramValue::Int(i) => Some(*i as f64),
        ProgramValue::Float(x) => Some(*x),
        ProgramValue::Text(s) => {
            if s.len() > MAX_ARG_BYTES || s.chars().any(char::is_control) {
                return Err(c.err(
                    &v.span(),
                    at,
                    format!("a string is printable text of at most {MAX_ARG_BYTES} bytes"),
                ));
            }
            None
        }
        ProgramValue::Bool(_) => None,
    };
    if let Some(x) = x {
        let low = min.map(|m| *m.get_ref());
        let high = max.map(|m| *m.get_ref());
        if !x.is_finite() || low.is_some_and(|l| x < l) || high.is_some_and(|h| x > h) {
            let range = match (low, high) {
                (Some(l), Some(h)) => format!("in [{l}, {h}]"),
                (Some(l), None) => format!("at least {l}"),
                (None, Some(h)) => format!("at most {h}"),
                (None, None) => "a finite number".to_owned(),
            };
            return Err(c.err(&v.span(), at, format!("must be {range}, got {value}")));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
