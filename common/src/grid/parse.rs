//! The grid file as TOML deserializes it: every value with its span, unknown keys rejected.
//! The hyperparameters of `[experiment.fixed]` and `[experiment.grid]` are read by key from the
//! table, each as the TOML type its domain takes; range checks happen in `expand`.

use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;
use std::ops::Deref;

use serde::Deserialize;
use serde::de::{DeserializeSeed, Deserializer, MapAccess, Visitor};
use toml::Spanned;

use super::params::Param;
use super::{Domain, GridError, Raw, diagnose};

/// The whole file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawFile {
    pub sweep: Spanned<Table<RawSweep>>,
    #[serde(rename = "experiment")]
    pub experiments: Spanned<Vec<Spanned<Table<RawExperiment>>>>,
}

/// `[sweep]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSweep {
    pub name: Spanned<String>,
    pub seed: Option<Spanned<i64>>,
    pub max_attempts: Option<Spanned<i64>>,
    pub max_trials: Option<Spanned<i64>>,
    pub repeats: Option<Spanned<i64>>,
    pub max_hours: Option<Spanned<f64>>,
}

/// `[[experiment]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawExperiment {
    pub name: Spanned<String>,
    pub title: Option<Spanned<String>>,
    pub dataset: Spanned<String>,
    pub trial_name: Option<Spanned<String>>,
    pub split_ratio: Option<Spanned<f64>>,
    pub checkpoint_every: Option<Spanned<i64>>,
    pub table: Option<Spanned<Table<RawTable>>>,
    #[serde(default)]
    pub fixed: Table<RawFixed>,
    pub grid: Option<Spanned<Table<RawAxes>>>,
    pub stopping: Option<Spanned<Table<RawStopping>>>,
    pub sample: Option<Spanned<Table<RawSample>>>,
    pub repeats: Option<Spanned<i64>>,
    /// A program experiment's keys (issue 19), checked in `program`.
    pub program: Option<Spanned<Vec<Spanned<String>>>>,
    pub workdir: Option<Spanned<String>>,
    pub env: Option<Spanned<super::program::RawEnv>>,
    pub params: Option<Spanned<super::program::RawParams>>,
}

impl RawExperiment {
    /// `[experiment.grid]`, when the experiment has one.
    pub fn axes(&self) -> Option<&RawAxes> {
        self.grid.as_ref().map(|g| &g.get_ref().0)
    }
}

/// `table = { rows = "...", columns = "..." }`: the axes of the report's accuracy pivots.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTable {
    pub rows: Spanned<String>,
    pub columns: Spanned<String>,
}

/// `[experiment.stopping]`: an early-stopping rule; which keys a rule takes is checked in
/// `search`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawStopping {
    pub rule: Spanned<String>,
    pub metric: Option<Spanned<String>>,
    pub mode: Option<Spanned<String>>,
    pub min_epochs: Option<Spanned<i64>>,
    pub reduction: Option<Spanned<i64>>,
    pub brackets: Option<Spanned<i64>>,
    pub min_trials: Option<Spanned<i64>>,
}

/// `[experiment.sample]`: a budget, a method, a seed, and `[experiment.sample.space]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSample {
    pub trials: Spanned<i64>,
    pub method: Option<Spanned<String>>,
    pub seed: Option<Spanned<i64>>,
    pub space: Spanned<Table<RawSpace>>,
}

/// `[experiment.sample.space]`: a distribution per sampled hyperparameter, in axis order.
#[derive(Debug, Default)]
pub(super) struct RawSpace(pub BTreeMap<Param, Spanned<Table<RawDistribution>>>);

impl<'de> Deserialize<'de> for RawSpace {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer
            .deserialize_map(ParamsVisitor(PhantomData))
            .map(RawSpace)
    }
}

/// One sampled key's distribution, `{ loguniform = [1e-4, 0.1] }`: exactly one of these
/// (checked in `search`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDistribution {
    pub uniform: Option<Spanned<Vec<Spanned<f64>>>>,
    pub loguniform: Option<Spanned<Vec<Spanned<f64>>>>,
    pub int: Option<Spanned<Vec<Spanned<i64>>>>,
    pub choice: Option<Spanned<Vec<Spanned<RawScalar>>>>,
}

/// A value of a `choice` list, of whichever TOML type the file gives; it is checked against
/// the hyperparameter's row like a grid value.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub(super) enum RawScalar {
    Int(i64),
    Float(f64),
    Str(String),
}

impl RawScalar {
    /// The value for the checks.
    pub fn raw(&self) -> Raw<'_> {
        match self {
            RawScalar::Str(s) => Raw::Str(s),
            RawScalar::Int(i) => Raw::Int(i128::from(*i)),
            RawScalar::Float(x) => Raw::Float(*x),
        }
    }
}

/// A hyperparameter's value as the file writes it, read as the TOML type its domain takes
/// (a string for a choice, an integer, a number).
#[derive(Debug, Clone, PartialEq)]
pub(super) enum RawValue {
    Str(String),
    Int(i64),
    Float(f64),
}

impl RawValue {
    /// The value for the checks.
    pub fn raw(&self) -> Raw<'_> {
        match self {
            RawValue::Str(s) => Raw::Str(s),
            RawValue::Int(i) => Raw::Int(i128::from(*i)),
            RawValue::Float(x) => Raw::Float(*x),
        }
    }
}

/// A list of values with the span of the whole list and of each value.
pub(super) type RawList = Spanned<Vec<Spanned<RawValue>>>;

/// `[experiment.fixed]`: one value per hyperparameter, in axis order.
#[derive(Debug, Default)]
pub(super) struct RawFixed(pub BTreeMap<Param, Spanned<RawValue>>);

/// `[experiment.grid]`: a list of values per varying hyperparameter, in axis order.
#[derive(Debug, Default)]
pub(super) struct RawAxes(pub BTreeMap<Param, RawList>);

impl<'de> Deserialize<'de> for RawFixed {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer
            .deserialize_map(ParamsVisitor(PhantomData))
            .map(RawFixed)
    }
}

impl<'de> Deserialize<'de> for RawAxes {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer
            .deserialize_map(ParamsVisitor(PhantomData))
            .map(RawAxes)
    }
}

/// What a table keyed by hyperparameters holds per key: one value or a list of values.
trait Entry: Sized {
    /// Reads the value of `param`'s entry, of the TOML type its domain takes.
    fn read<'de, A: MapAccess<'de>>(param: Param, map: &mut A) -> Result<Self, A::Error>;
}

impl Entry for Spanned<RawValue> {
    fn read<'de, A: MapAccess<'de>>(param: Param, map: &mut A) -> Result<Self, A::Error> {
        fn one<'de, T: Deserialize<'de>, A: MapAccess<'de>>(
            map: &mut A,
            raw: fn(T) -> RawValue,
        ) -> Result<Spanned<RawValue>, A::Error> {
            let v: Spanned<T> = map.next_value()?;
            Ok(Spanned::new(v.span(), raw(v.into_inner())))
        }
        match param.def().domain {
            Domain::Choice(_) | Domain::Model => one(map, RawValue::Str),
            Domain::Int { .. } => one(map, RawValue::Int),
            Domain::Float { .. } | Domain::Fraction => one(map, RawValue::Float),
        }
    }
}

impl Entry for RawList {
    fn read<'de, A: MapAccess<'de>>(param: Param, map: &mut A) -> Result<Self, A::Error> {
        fn list<'de, T: Deserialize<'de>, A: MapAccess<'de>>(
            map: &mut A,
            raw: fn(T) -> RawValue,
        ) -> Result<RawList, A::Error> {
            let list: Spanned<Vec<Spanned<T>>> = map.next_value()?;
            let span = list.span();
            let values = list
                .into_inner()
                .into_iter()
                .map(|v| Spanned::new(v.span(), raw(v.into_inner())))
                .collect();
            Ok(Spanned::new(span, values))
        }
        match param.def().domain {
            Domain::Choice(_) | Domain::Model => list(map, RawValue::Str),
            Domain::Int { .. } => list(map, RawValue::Int),
            Domain::Float { .. } | Domain::Fraction => list(map, RawValue::Float),
        }
    }
}

impl Entry for Spanned<Table<RawDistribution>> {
    fn read<'de, A: MapAccess<'de>>(_: Param, map: &mut A) -> Result<Self, A::Error> {
        map.next_value()
    }
}

/// Reads a table keyed by hyperparameters, as a struct with an optional field per
/// hyperparameter and `deny_unknown_fields` would: an unknown key is serde's "unknown field"
/// error listing every key, raised while reading the key (so located at it).
struct ParamsVisitor<E>(PhantomData<E>);

impl<'de, E: Entry> Visitor<'de> for ParamsVisitor<E> {
    type Value = BTreeMap<Param, E>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a table of hyperparameters")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut out = BTreeMap::new();
        while let Some(param) = map.next_key_seed(Key)? {
            if out.contains_key(&param) {
                return Err(serde::de::Error::duplicate_field(param.key()));
            }
            let entry = E::read(param, &mut map)?;
            out.insert(param, entry);
        }
        Ok(out)
    }
}

/// A hyperparameter's key.
struct Key;

impl<'de> DeserializeSeed<'de> for Key {
    type Value = Param;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Param, D::Error> {
        deserializer.deserialize_identifier(self)
    }
}

impl Visitor<'_> for Key {
    type Value = Param;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a hyperparameter")
    }

    fn visit_str<E: serde::de::Error>(self, key: &str) -> Result<Param, E> {
        Param::from_key(key).ok_or_else(|| E::unknown_field(key, &Param::KEYS))
    }
}

/// What the grid file writes as a TOML table, deserialized as `T`.
///
/// serde also lets a struct be written as an array of its fields, in order, so that
/// `table = ["hidden_layers", "activation"]` or `[[sweep]]` would be read as something else than
/// what they say; a grid file may only write these as tables.
#[derive(Debug, Default)]
pub(super) struct Table<T>(pub T);

impl<T> Deref for Table<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.0
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Table<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct OnlyMaps<T>(PhantomData<T>);

        impl<'de, T: Deserialize<'de>> Visitor<'de> for OnlyMaps<T> {
            type Value = Table<T>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a table")
            }

            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Table<T>, A::Error> {
                T::deserialize(serde::de::value::MapAccessDeserializer::new(map)).map(Table)
            }
        }

        deserializer.deserialize_map(OnlyMaps(PhantomData))
    }
}

/// Deserializes `text`, turning TOML and serde errors into located grid errors.
pub(super) fn parse(text: &str, origin: &str) -> Result<RawFile, GridError> {
    let de = toml::Deserializer::parse(text).map_err(|e| diagnose::syntax(text, origin, &e))?;
    serde_path_to_error::deserialize(de).map_err(|e| {
        let key = clean_path(&e.path().to_string());
        diagnose::shape(text, origin, &key, e.inner())
    })
}

/// Removes serde's private marker from a path: `a.$__serde_spanned_private_value[1]` -> `a[1]`.
fn clean_path(path: &str) -> String {
    let cleaned = path.replace(".$__serde_spanned_private_value", "");
    if cleaned == "." {
        String::new()
    } else {
        cleaned
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_cleaned() {
        assert_eq!(
            clean_path(
                "experiment[0].grid.lr.$__serde_spanned_private_value[1].$__serde_spanned_private_value"
            ),
            "experiment[0].grid.lr[1]"
        );
        assert_eq!(clean_path("."), "");
    }
}
