//! The grid file as TOML deserializes it: every value with its span, unknown keys rejected.
//! Range checks happen in `expand`, where the meaning of each value is known.

use std::fmt;
use std::marker::PhantomData;
use std::ops::Deref;

use serde::Deserialize;
use serde::de::{Deserializer, MapAccess, Visitor};
use toml::Spanned;

use super::{GridError, diagnose};

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

/// `[experiment.fixed]`: one value per parameter.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawFixed {
    pub activation: Option<Spanned<String>>,
    pub hidden_layers: Option<Spanned<i64>>,
    pub hidden_width: Option<Spanned<i64>>,
    pub learning_rate: Option<Spanned<f64>>,
    pub batch_size: Option<Spanned<i64>>,
    pub epochs: Option<Spanned<i64>>,
    pub train_fraction: Option<Spanned<f64>>,
    pub seed: Option<Spanned<i64>>,
}

/// A list of values with the span of the whole list and of each value.
pub(super) type RawList<T> = Option<Spanned<Vec<Spanned<T>>>>;

/// `[experiment.grid]`: a list of values per varying parameter.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAxes {
    pub activation: RawList<String>,
    pub hidden_layers: RawList<i64>,
    pub hidden_width: RawList<i64>,
    pub learning_rate: RawList<f64>,
    pub batch_size: RawList<i64>,
    pub epochs: RawList<i64>,
    pub train_fraction: RawList<f64>,
    pub seed: RawList<i64>,
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
