//! More scalars of an epoch, by name: what a program trial reports beyond the accuracies and
//! the loss (issue 19, part 5: `trial.report(epoch, test_accuracy=..., my_metric=...)`). Native
//! trials have none. The limits and the rule for names live here, so that the worker (reading
//! the program's channel) and the coordinator (decoding the wire) refuse the same things.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Most scalars one epoch may carry.
pub const MAX_SCALARS: usize = 32;

/// Longest scalar name, in bytes.
pub const MAX_SCALAR_NAME: usize = 64;

/// The names an epoch's own fields have: not available as scalar names.
pub const RESERVED_NAMES: [&str; 5] = [
    "epoch",
    "train_loss",
    "train_accuracy",
    "test_accuracy",
    "seconds",
];

/// An epoch's scalars by name, in name order. Eight bytes when empty (every native epoch): the
/// map is boxed, and an empty one is never kept.
#[derive(Debug, Clone, Default, PartialEq)]
// The box is the point: a pointer (8 bytes) in every epoch instead of a map (24).
#[allow(clippy::box_collection)]
pub struct Scalars(Option<Box<BTreeMap<String, f64>>>);

impl Scalars {
    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_none()
    }

    /// How many there are.
    pub fn len(&self) -> usize {
        self.0.as_ref().map_or(0, |m| m.len())
    }

    /// The scalar named `name`, if reported.
    pub fn get(&self, name: &str) -> Option<f64> {
        self.0.as_ref()?.get(name).copied()
    }

    /// Every scalar, in name order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, f64)> {
        self.0
            .iter()
            .flat_map(|m| m.iter().map(|(k, v)| (k.as_str(), *v)))
    }

    /// Checks the count, every name and every value; the error names the offending scalar.
    pub fn check(&self) -> Result<(), String> {
        if self.len() > MAX_SCALARS {
            return Err(format!(
                "{} scalars, more than {MAX_SCALARS} per epoch",
                self.len()
            ));
        }
        self.iter().try_for_each(|(name, value)| check(name, value))
    }
}

/// Checks one scalar: a name of 1 to [`MAX_SCALAR_NAME`] ASCII letters, digits, `_`, `-`, `.`
/// or `/` that is not a [reserved name](RESERVED_NAMES), and a finite value.
pub fn check(name: &str, value: f64) -> Result<(), String> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '/');
    if name.is_empty() || name.len() > MAX_SCALAR_NAME || !name.chars().all(allowed) {
        let shown: String = name.chars().take(MAX_SCALAR_NAME).collect();
        return Err(format!(
            "scalar name {shown:?}: a name is 1 to {MAX_SCALAR_NAME} ASCII letters, digits, \
             '_', '-', '.' or '/'"
        ));
    }
    if RESERVED_NAMES.contains(&name) {
        return Err(format!(
            "scalar name {name:?} is an epoch's own field ({}); report it as that",
            RESERVED_NAMES.join(", ")
        ));
    }
    if !value.is_finite() {
        return Err(format!("scalar {name:?} is {value}, not a finite number"));
    }
    Ok(())
}

impl<S: Into<String>> FromIterator<(S, f64)> for Scalars {
    fn from_iter<I: IntoIterator<Item = (S, f64)>>(iter: I) -> Self {
        let map: BTreeMap<String, f64> = iter.into_iter().map(|(k, v)| (k.into(), v)).collect();
        Scalars((!map.is_empty()).then(|| Box::new(map)))
    }
}

impl Serialize for Scalars {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.iter())
    }
}

impl<'de> Deserialize<'de> for Scalars {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Ok(BTreeMap::<String, f64>::deserialize(deserializer)?
            .into_iter()
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_scalars_take_no_map_and_read_back() {
        let none: Scalars = Vec::<(String, f64)>::new().into_iter().collect();
        assert!(none.is_empty());
        assert_eq!(none, Scalars::default());
        assert_eq!(std::mem::size_of::<Scalars>(), 8);
        let some: Scalars = [("val_loss", 0.5), ("lr", 0.01)].into_iter().collect();
        let json = serde_json::to_string(&some).unwrap();
        assert_eq!(json, r#"{"lr":0.01,"val_loss":0.5}"#);
        assert_eq!(serde_json::from_str::<Scalars>(&json).unwrap(), some);
        assert_eq!(some.get("lr"), Some(0.01));
        assert_eq!(some.get("nope"), None);
    }

    #[test]
    fn bad_names_values_and_counts_are_refused() {
        for (name, value, says) in [
            ("", 1.0, "1 to 64"),
            ("a b", 1.0, "ASCII letters"),
            ("test_accuracy", 1.0, "epoch's own field"),
            ("ok", f64::NAN, "not a finite"),
            ("ok", f64::INFINITY, "not a finite"),
        ] {
            let e = check(name, value).unwrap_err();
            assert!(e.contains(says), "{name:?} {value}: {e}");
        }
        assert!(check(&"x".repeat(MAX_SCALAR_NAME + 1), 1.0).is_err());
        assert!(check("val/loss-2.b_c", -3.0).is_ok());
        let many: Scalars = (0..=MAX_SCALARS).map(|i| (format!("m{i}"), 1.0)).collect();
        assert!(many.check().unwrap_err().contains("more than 32"));
        let fine: Scalars = (0..MAX_SCALARS).map(|i| (format!("m{i}"), 1.0)).collect();
        assert!(fine.check().is_ok());
    }
}
