//! What each key of a grid file allows, in the words every message uses, and the checks of one
//! hyperparameter value against its row of the table. Everything that checks or explains a
//! value reads this module (the parser's diagnostics, the grid checks, the wire's decoding);
//! it reads only the table and "did you mean".

use std::collections::BTreeMap;
use std::fmt::Display;

use super::params::{HyperParams, MAX_EPOCHS, Param, ParamError};
use super::suggest::{Quote, did_you_mean};
use super::{Bound, Domain, ParamDef, Raw, Value};

/// Largest `max_attempts`.
pub(super) const MAX_ATTEMPTS: i64 = 100;
/// Largest `checkpoint_every` (an epoch count).
pub(super) const MAX_CHECKPOINT_EVERY: u64 = MAX_EPOCHS;
/// Longest name (sweep, experiment); trial names may be twice as long.
pub(super) const MAX_NAME_LEN: usize = 128;
/// Largest `max_trials` a grid file may set. Expansion costs about 6 us and 400 bytes per trial
/// before the coordinator keeps any state for it: a million trials take 6 s and 400 MB, ten
/// million (from a 50 KB file) a minute and 4 GB, which no sweep of trained models needs.
pub(super) const MAX_TRIALS_LIMIT: i64 = 1_000_000;

/// Largest `repeats` (seeds per configuration).
pub(super) const MAX_REPEATS: i64 = 1000;

/// The split ratio's range and meaning.
pub(super) const SPLIT_RATIO_RULE: &str =
    "a fraction in (0, 1) (the train part of the official training set)";

/// What a hyperparameter allows, as messages say it: "an integer from 1 to 100000".
pub(super) fn allowed(domain: &Domain) -> String {
    match domain {
        Domain::Choice(choices) => one_of(&choices.iter().map(|c| c.name).collect::<Vec<_>>()),
        Domain::Int { min, max } => integer(min, max),
        Domain::Float { min, max } => {
            let low = match min {
                Bound::Closed(b) => format!("at least {b}"),
                Bound::Open(b) => format!("greater than {b}"),
            };
            let high = match max {
                Bound::Closed(b) => format!("at most {b}"),
                Bound::Open(b) => format!("less than {b}"),
            };
            format!("a number {low} and {high}")
        }
        Domain::Fraction => "a fraction in (0, 1]".to_owned(),
        Domain::Model => {
            "a model: mlp, or layers (conv(16,3,p=1) bn relu ... linear(10))".to_owned()
        }
    }
}

/// "an integer from MIN to MAX".
pub(super) fn integer(min: impl Display, max: impl Display) -> String {
    format!("an integer from {min} to {max}")
}

/// `"a", "b" or "c"`.
pub(super) fn one_of(names: &[&str]) -> String {
    let quoted: Vec<String> = names.iter().map(|n| format!("{n:?}")).collect();
    match quoted.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} or {last}", rest.join(", ")),
        _ => quoted.join(""),
    }
}

/// Whether a name (sweep, experiment, and the literal text of a trial name) may hold `c`:
/// names are also file and folder names, and two names must never look alike, so no space, no
/// punctuation that a shell or a file system treats specially, and nothing invisible.
pub(super) fn name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')
}

/// What a name allows: "1 to 128 letters, digits, '_', '-' or '.'".
pub(super) fn name_rule() -> String {
    format!("1 to {MAX_NAME_LEN} letters, digits, '_', '-' or '.'")
}

/// At most 64 characters of `s`, for quoting user text in messages.
pub(super) fn truncate(s: &str) -> String {
    let mut out: String = s.chars().take(64).collect();
    if out.len() < s.len() {
        out.push_str("...");
    }
    out
}

/// A fraction in (0, 1], or in (0, 1) unless `one` is allowed; the message says `rule` and,
/// for what looks like a percentage, the fraction meant.
pub(super) fn fraction(x: f64, rule: &str, one: bool) -> Result<f64, String> {
    if x.is_finite() && x > 0.0 && (x < 1.0 || (one && x == 1.0)) {
        return Ok(x);
    }
    let hint = if x > 1.0 && x <= 100.0 && x.fract() == 0.0 {
        format!(" (a fraction, not a percentage: {x} % is {})", x / 100.0)
    } else {
        String::new()
    };
    Err(format!("must be {rule}, got {x}{hint}"))
}

/// Checks `raw` against the row `def`: the value, or what is wrong and what is allowed.
pub(super) fn check(def: &ParamDef, raw: Raw<'_>) -> Result<Value, String> {
    match (def.domain, raw) {
        (Domain::Choice(choices), Raw::Str(s)) => match def.domain.choice(s) {
            Some(c) => Ok(Value::Choice(c)),
            None => {
                let names: Vec<&str> = choices.iter().map(|c| c.name).collect();
                Err(format!(
                    "unknown {} {:?}{}; allowed: {}",
                    def.key,
                    truncate(s),
                    did_you_mean(s, &names, Quote::Double),
                    names.join(", ")
                ))
            }
        },
        (Domain::Int { min, max }, Raw::Int(i)) => match u64::try_from(i) {
            Ok(u) if (min..=max).contains(&u) => Ok(Value::Int(u)),
            _ => Err(format!("must be {}, got {i}", integer(min, max))),
        },
        (Domain::Float { .. }, Raw::Float(x)) if def.domain.contains(Value::Float(x)) => {
            Ok(Value::Float(x))
        }
        (Domain::Model, Raw::Str(s)) => crate::model::Model::parse(s).map(|m| Value::Text(m.0)),
        (Domain::Fraction, Raw::Float(x)) => {
            fraction(x, &allowed(&def.domain), true).map(Value::Float)
        }
        (domain, raw) => Err(format!("must be {}, got {raw}", allowed(&domain))),
    }
}

impl Param {
    /// Checks one value of this hyperparameter given as an integer (a command line's
    /// `--epochs`) against its row: the value, or what is wrong and what is allowed.
    pub fn check_int(self, n: u64) -> Result<Value, String> {
        check(self.def(), Raw::Int(i128::from(n)))
    }
}

impl HyperParams {
    /// Hyperparameters given by key (as the wire gives them), each checked against its row:
    /// every key known and given once with a value; every hyperparameter given, but those that
    /// may be absent ([`ParamDef::omitted`]). `None` is an entry without a value.
    pub fn from_pairs<'a>(
        pairs: impl IntoIterator<Item = (&'a str, Option<Raw<'a>>)>,
    ) -> Result<HyperParams, ParamError> {
        let mut given: BTreeMap<Param, Value> = BTreeMap::new();
        for (key, raw) in pairs {
            let param = Param::from_key(key).ok_or_else(|| ParamError::Unknown(truncate(key)))?;
            let value = match raw {
                Some(raw) => check(param.def(), raw),
                None => Err(format!(
                    "has no value; it must be {}",
                    allowed(&param.def().domain)
                )),
            }
            .map_err(|message| ParamError::Invalid { param, message })?;
            if given.insert(param, value).is_some() {
                return Err(ParamError::Duplicate(param));
            }
        }
        HyperParams::from_values(|p| given.get(&p).copied())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_read_as_prose() {
        assert_eq!(one_of(&["a"]), "\"a\"");
        assert_eq!(one_of(&["a", "b"]), "\"a\" or \"b\"");
        assert_eq!(one_of(&["a", "b", "c"]), "\"a\", \"b\" or \"c\"");
        assert_eq!(truncate(&"x".repeat(70)), format!("{}...", "x".repeat(64)));
    }

    #[test]
    fn every_domain_says_what_it_allows() {
        let say = |p: Param| allowed(&p.def().domain);
        assert_eq!(say(Param::Activation), "\"relu\", \"tanh\" or \"sigmoid\"");
        assert_eq!(say(Param::HiddenLayers), "an integer from 0 to 64");
        assert_eq!(
            say(Param::LearningRate),
            "a number greater than 0 and at most 10"
        );
        assert_eq!(say(Param::TrainFraction), "a fraction in (0, 1]");
        assert_eq!(say(Param::Seed), "an integer from 0 to 9223372036854775807");
    }

    #[test]
    fn float_bounds_read_as_prose() {
        let say = |min, max| allowed(&Domain::Float { min, max });
        assert_eq!(
            say(Bound::Closed(0.0), Bound::Open(1.0)),
            "a number at least 0 and less than 1"
        );
        let d = Domain::Float {
            min: Bound::Closed(0.0),
            max: Bound::Open(1.0),
        };
        assert!(d.contains(Value::Float(0.0)));
        assert!(!d.contains(Value::Float(-0.0)));
        assert!(!d.contains(Value::Float(1.0)));
    }

    #[test]
    fn values_are_checked_against_their_rows() {
        let check = |p: Param, raw| check(p.def(), raw);
        assert_eq!(check(Param::Epochs, Raw::Int(3)), Ok(Value::Int(3)));
        assert_eq!(
            check(Param::Epochs, Raw::Int(-1)),
            Err("must be an integer from 1 to 100000, got -1".to_owned())
        );
        assert_eq!(
            check(Param::Epochs, Raw::Float(3.0)),
            Err("must be an integer from 1 to 100000, got 3".to_owned())
        );
        assert_eq!(
            check(Param::Activation, Raw::Str("sigmod")),
            Err("unknown activation \"sigmod\" (did you mean \"sigmoid\"?); allowed: relu, tanh, sigmoid".to_owned())
        );
        assert_eq!(
            check(Param::TrainFraction, Raw::Float(20.0)),
            Err(
                "must be a fraction in (0, 1], got 20 (a fraction, not a percentage: 20 % is 0.2)"
                    .to_owned()
            )
        );
        for bad in [0.0, -0.0, f64::NAN, f64::INFINITY, 10.5] {
            assert!(
                check(Param::LearningRate, Raw::Float(bad)).is_err(),
                "{bad}"
            );
        }
        assert_eq!(
            check(Param::LearningRate, Raw::Float(10.0)),
            Ok(Value::Float(10.0))
        );
    }

    #[test]
    fn pairs_are_checked_by_key() {
        let d = HyperParams::defaults(5).unwrap();
        let pairs: Vec<(&str, Option<Raw<'_>>)> = d
            .named()
            .map(|(p, v)| {
                let raw = match v {
                    Value::Choice(c) => Raw::Str(c.name),
                    Value::Text(t) => Raw::Str(t),
                    Value::Int(i) => Raw::Int(i128::from(i)),
                    Value::Float(x) => Raw::Float(x),
                };
                (p.key(), Some(raw))
            })
            .collect();
        assert_eq!(HyperParams::from_pairs(pairs.clone()), Ok(d.clone()));
        let mut twice = pairs.clone();
        twice.push(pairs[1]);
        assert_eq!(
            HyperParams::from_pairs(twice),
            Err(ParamError::Duplicate(Param::HiddenLayers))
        );
        assert_eq!(
            HyperParams::from_pairs(pairs[1..].to_vec()),
            Err(ParamError::Missing(Param::Activation))
        );
        let mut unknown = pairs.clone();
        unknown.push(("temperature", Some(Raw::Float(0.9))));
        assert_eq!(
            HyperParams::from_pairs(unknown).unwrap_err().to_string(),
            "unknown hyperparameter \"temperature\""
        );
        let mut empty = pairs;
        empty[0].1 = None;
        assert_eq!(
            HyperParams::from_pairs(empty).unwrap_err().to_string(),
            "activation: has no value; it must be \"relu\", \"tanh\" or \"sigmoid\""
        );
    }
}
