//! The grid file as TOML deserializes it: every value with its span, unknown keys rejected.
//! Range checks happen in `expand`, where the meaning of each value is known.

use serde::Deserialize;
use toml::Spanned;

use super::GridError;

/// The whole file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawFile {
    pub sweep: Spanned<RawSweep>,
    #[serde(rename = "experiment")]
    pub experiments: Spanned<Vec<Spanned<RawExperiment>>>,
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
    pub table: Option<Spanned<RawTable>>,
    #[serde(default)]
    pub fixed: RawFixed,
    #[serde(default)]
    pub grid: RawAxes,
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

/// Deserializes `text`, turning TOML and serde errors into located grid errors.
pub(super) fn parse(text: &str, origin: &str) -> Result<RawFile, GridError> {
    let de = toml::Deserializer::parse(text).map_err(|e| {
        let offset = e.span().map_or(0, |s| s.start);
        let key = e
            .span()
            .and_then(|s| text.get(s))
            .filter(|k| !k.is_empty() && k.len() <= 64 && !k.contains('\n'))
            .unwrap_or_default();
        GridError::at(
            origin,
            text,
            offset,
            key,
            format!("invalid TOML: {}", clean_message(e.message())),
        )
    })?;
    serde_path_to_error::deserialize(de).map_err(|e| {
        let key = clean_path(&e.path().to_string());
        let inner = e.into_inner();
        let offset = inner.span().map_or(0, |s| s.start);
        GridError::at(origin, text, offset, &key, clean_message(inner.message()))
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

/// serde names expected types as Rust types; say them the way a TOML user thinks of them.
fn clean_message(message: &str) -> String {
    let m = message
        .trim()
        .replace("expected i64", "expected an integer")
        .replace("expected f64", "expected a number")
        .replace("expected a sequence", "expected an array of values")
        .replace("missing field", "missing key")
        .replace("unknown field", "unknown key");
    m.replace("expected one of `", "allowed: `")
        .replace("expected `", "allowed: `")
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
