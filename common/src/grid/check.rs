//! Checks of single values of a grid file (names, ranges, templates, table layouts), and the
//! words every message uses for what a key allows.

use std::ops::Range;

use toml::Spanned;

use super::parse::{RawTable, Table};
use super::suggest::{Quote, did_you_mean};
use super::{Axis, GridError, Param, TableLayout, limits};
use crate::dataset::DatasetKind;
use crate::trial::Activation;

/// Largest number of hidden layers.
pub(super) const MAX_HIDDEN_LAYERS: i64 = limits::HIDDEN_LAYERS as i64;
/// Largest hidden width.
pub(super) const MAX_HIDDEN_WIDTH: i64 = limits::HIDDEN_WIDTH as i64;
/// Largest batch size.
pub(super) const MAX_BATCH_SIZE: i64 = limits::BATCH_SIZE as i64;
/// Largest number of epochs (and `checkpoint_every`).
pub(super) const MAX_EPOCHS: i64 = limits::EPOCHS as i64;
/// Largest learning rate.
pub(super) const MAX_LEARNING_RATE: f64 = limits::LEARNING_RATE;
/// Largest `max_attempts`.
pub(super) const MAX_ATTEMPTS: i64 = 100;
/// Longest name (sweep, experiment); trial names may be twice as long.
pub(super) const MAX_NAME_LEN: usize = 128;
/// Longest trial name, in bytes.
pub(super) const MAX_TRIAL_NAME_LEN: usize = 2 * MAX_NAME_LEN;
/// Longest title, in characters (a longer one is refused).
pub(super) const MAX_TITLE_LEN: usize = 64;

/// What a parameter allows, as messages say it: "an integer from 1 to 100000".
pub(super) fn allowed(param: Param) -> String {
    match param {
        Param::Activation => one_of(&Activation::ALL.map(Activation::name)),
        Param::HiddenLayers => integer(0, MAX_HIDDEN_LAYERS),
        Param::HiddenWidth => integer(1, MAX_HIDDEN_WIDTH),
        Param::LearningRate => {
            format!("a number greater than 0 and at most {MAX_LEARNING_RATE}")
        }
        Param::BatchSize => integer(1, MAX_BATCH_SIZE),
        Param::Epochs => integer(1, MAX_EPOCHS),
        Param::TrainFraction => "a fraction in (0, 1]".to_owned(),
        Param::Seed => integer(0, i64::MAX),
    }
}

/// "an integer from MIN to MAX".
pub(super) fn integer(min: i64, max: i64) -> String {
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

/// `c` as a message quotes it: itself when it is visible ASCII, else its code point.
fn quote_char(c: char) -> String {
    if c.is_ascii_graphic() || c == ' ' {
        format!("{c:?}")
    } else {
        format!("U+{:04X}", u32::from(c))
    }
}

/// What a name allows: "1 to 128 letters, digits, '_', '-' or '.'".
pub(super) fn name_rule() -> String {
    format!("1 to {MAX_NAME_LEN} letters, digits, '_', '-' or '.'")
}

/// The split ratio's range and meaning.
pub(super) const SPLIT_RATIO_RULE: &str =
    "a fraction in (0, 1) (the train part of the official training set)";

/// At most 64 characters of `s`, for quoting user text in messages.
pub(super) fn truncate(s: &str) -> String {
    let mut out: String = s.chars().take(64).collect();
    if out.len() < s.len() {
        out.push_str("...");
    }
    out
}

/// A typed parameter value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Value {
    Activation(Activation),
    Int(u64),
    Float(f64),
}

impl Value {
    pub(super) fn display(self) -> String {
        match self {
            Value::Activation(a) => a.display_name().to_owned(),
            Value::Int(i) => i.to_string(),
            Value::Float(f) => f.to_string(),
        }
    }

    /// A key equal for equal values (floats by their bits; checked values are never NaN or -0).
    pub(super) fn identity(self) -> (u8, u64) {
        match self {
            Value::Activation(a) => (0, a as u64),
            Value::Int(i) => (1, i),
            Value::Float(f) => (2, f.to_bits()),
        }
    }
}

/// A raw value before its meaning is checked.
pub(super) enum RawValue<'a> {
    Str(&'a str),
    Int(i64),
    Float(f64),
}

/// Checks on one source text; every error names `origin`, line, column and key.
pub(super) struct Checker<'a> {
    pub text: &'a str,
    pub origin: &'a str,
}

impl Checker<'_> {
    pub(super) fn err(
        &self,
        span: &Range<usize>,
        key: &str,
        message: impl Into<String>,
    ) -> GridError {
        GridError::at(self.origin, self.text, span.start, key, message)
    }

    /// A sweep or experiment name: also a folder name, so never `.` or `..`.
    pub(super) fn name(&self, value: &Spanned<String>, key: &str) -> Result<String, GridError> {
        let name = value.get_ref();
        let problem = if name.is_empty() {
            Some("a name cannot be empty".to_owned())
        } else if name.chars().count() > MAX_NAME_LEN {
            Some(format!(
                "name {:?} is {} characters long",
                truncate(name),
                name.chars().count()
            ))
        } else if let Some(c) = name.chars().find(|&c| !name_char(c)) {
            Some(format!(
                "invalid name {:?}: {c:?} is not allowed",
                truncate(name)
            ))
        } else if name.chars().all(|c| c == '.') {
            Some(format!(
                "invalid name {name:?}: it needs a letter or a digit"
            ))
        } else {
            None
        };
        match problem {
            None => Ok(name.clone()),
            Some(p) => Err(self.err(&value.span(), key, format!("{p}; use {}", name_rule()))),
        }
    }

    /// Free text (a title, a trial name template): no control characters, which would garble
    /// terminals and logs.
    pub(super) fn text(&self, value: &Spanned<String>, key: &str) -> Result<(), GridError> {
        match value.get_ref().chars().find(|c| c.is_control()) {
            Some(c) => Err(self.err(
                &value.span(),
                key,
                format!(
                    "control character U+{:04X} is not allowed; use printable text",
                    u32::from(c)
                ),
            )),
            None => Ok(()),
        }
    }

    /// An experiment's title: free text of at most [`MAX_TITLE_LEN`] characters.
    pub(super) fn title(&self, value: &Spanned<String>, key: &str) -> Result<String, GridError> {
        self.text(value, key)?;
        let chars = value.get_ref().chars().count();
        if chars > MAX_TITLE_LEN {
            return Err(self.err(
                &value.span(),
                key,
                format!(
                    "a title is at most {MAX_TITLE_LEN} characters, this one has {chars}; \
                     shorten it (the experiment's description belongs in a comment)"
                ),
            ));
        }
        Ok(value.get_ref().clone())
    }

    pub(super) fn int(
        &self,
        v: &Spanned<i64>,
        key: &str,
        min: i64,
        max: i64,
    ) -> Result<u64, GridError> {
        let x = *v.get_ref();
        if (min..=max).contains(&x) {
            // In range and min >= 0, so the conversion is exact.
            Ok(x.unsigned_abs())
        } else {
            Err(self.err(
                &v.span(),
                key,
                format!("must be {}, got {x}", integer(min, max)),
            ))
        }
    }

    /// A fraction in (0, 1], or in (0, 1) unless `one` is allowed.
    pub(super) fn fraction(
        &self,
        span: &Range<usize>,
        key: &str,
        x: f64,
        rule: &str,
        one: bool,
    ) -> Result<f64, GridError> {
        if x.is_finite() && x > 0.0 && (x < 1.0 || (one && x == 1.0)) {
            return Ok(x);
        }
        let hint = if x > 1.0 && x <= 100.0 && x.fract() == 0.0 {
            format!(" (a fraction, not a percentage: {x} % is {})", x / 100.0)
        } else {
            String::new()
        };
        Err(self.err(span, key, format!("must be {rule}, got {x}{hint}")))
    }

    pub(super) fn value(
        &self,
        param: Param,
        text: Spanned<RawValue<'_>>,
        key: &str,
    ) -> Result<Value, GridError> {
        let span = text.span();
        let int = |i: i64, min: i64, max: i64| {
            self.int(&Spanned::new(span.clone(), i), key, min, max)
                .map(Value::Int)
        };
        match (param, text.into_inner()) {
            (Param::Activation, RawValue::Str(s)) => match s.parse::<Activation>() {
                Ok(a) => Ok(Value::Activation(a)),
                Err(_) => {
                    let names = Activation::ALL.map(Activation::name);
                    Err(self.err(
                        &span,
                        key,
                        format!(
                            "unknown activation {:?}{}; allowed: {}",
                            truncate(s),
                            did_you_mean(s, &names, Quote::Double),
                            names.join(", ")
                        ),
                    ))
                }
            },
            (Param::HiddenLayers, RawValue::Int(i)) => int(i, 0, MAX_HIDDEN_LAYERS),
            (Param::HiddenWidth, RawValue::Int(i)) => int(i, 1, MAX_HIDDEN_WIDTH),
            (Param::BatchSize, RawValue::Int(i)) => int(i, 1, MAX_BATCH_SIZE),
            (Param::Epochs, RawValue::Int(i)) => int(i, 1, MAX_EPOCHS),
            (Param::Seed, RawValue::Int(i)) => int(i, 0, i64::MAX),
            (Param::LearningRate, RawValue::Float(f)) => {
                if f.is_finite() && f > 0.0 && f <= MAX_LEARNING_RATE {
                    Ok(Value::Float(f))
                } else {
                    Err(self.err(
                        &span,
                        key,
                        format!("must be {}, got {f}", allowed(Param::LearningRate)),
                    ))
                }
            }
            (Param::TrainFraction, RawValue::Float(f)) => self
                .fraction(&span, key, f, &allowed(Param::TrainFraction), true)
                .map(Value::Float),
            // The raw structs give each parameter its type, so no other pair can occur.
            (param, _) => Err(self.err(&span, key, format!("must be {}", allowed(param)))),
        }
    }

    pub(super) fn dataset(
        &self,
        value: &Spanned<String>,
        key: &str,
    ) -> Result<DatasetKind, GridError> {
        value.get_ref().parse().map_err(|_| {
            let names = DatasetKind::ALL.map(DatasetKind::name);
            self.err(
                &value.span(),
                key,
                format!(
                    "unknown dataset {:?}{}; allowed: {}",
                    truncate(value.get_ref()),
                    did_you_mean(value.get_ref(), &names, Quote::Double),
                    names.join(", ")
                ),
            )
        })
    }

    /// Checks a `trial_name` template: known placeholders, balanced braces, printable text.
    pub(super) fn template(&self, t: &Spanned<String>, key: &str) -> Result<(), GridError> {
        let text = t.get_ref();
        if text.is_empty() {
            return Err(self.err(
                &t.span(),
                key,
                format!(
                    "a trial_name template cannot be empty; it may use {}",
                    placeholders()
                ),
            ));
        }
        self.text(t, key)?;
        let at = |i: usize| self.inside(t, i);
        let mut rest = text.as_str();
        let mut offset = 0;
        while let Some(open) = rest.find(['{', '}']) {
            if rest[open..].starts_with('}') {
                return Err(self.err(
                    &at(offset + open),
                    key,
                    "unmatched '}' in trial_name template",
                ));
            }
            let after = &rest[open + 1..];
            let Some(close) = after
                .find(['}', '{'])
                .filter(|&c| after[c..].starts_with('}'))
            else {
                return Err(self.err(
                    &at(offset + open),
                    key,
                    "unclosed '{' in trial_name template",
                ));
            };
            let placeholder = &after[..close];
            let known = PLACEHOLDER_NAMES.contains(&placeholder);
            if !known {
                return Err(self.err(
                    &at(offset + open),
                    key,
                    format!(
                        "unknown placeholder {{{}}}{}; allowed: {}",
                        truncate(placeholder),
                        did_you_mean(placeholder, PLACEHOLDER_NAMES, Quote::Brace),
                        placeholders()
                    ),
                ));
            }
            offset += open + 1 + close + 1;
            rest = &after[close + 1..];
        }
        // Outside its placeholders, a trial name is made of name characters, like sweep and
        // experiment names: `run` and `ru\u{200b}n` cannot both exist and look the same.
        let mut placeholder = false;
        for (i, c) in text.char_indices() {
            match c {
                '{' => placeholder = true,
                '}' => placeholder = false,
                c if !placeholder && !name_char(c) => {
                    return Err(self.err(
                        &at(i),
                        key,
                        format!(
                            "character {} is not allowed in a trial name; outside its \
                             placeholders a trial_name template uses letters, digits, '_', '-' \
                             or '.'",
                            quote_char(c)
                        ),
                    ));
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// The span of byte `i` of a string value, when the file writes it without escapes;
    /// otherwise the span of the whole value.
    fn inside(&self, value: &Spanned<String>, i: usize) -> Range<usize> {
        let span = value.span();
        let raw = self.text.get(span.clone()).unwrap_or_default();
        let plain = raw.len() == value.get_ref().len() + 2
            && (raw.starts_with('"') || raw.starts_with('\''))
            && raw.get(1..raw.len() - 1) == Some(value.get_ref().as_str());
        if plain {
            span.start + 1 + i..span.start + 2 + i
        } else {
            span
        }
    }

    /// Checks `table`: two different grid axes of the experiment, neither of them `seed`.
    pub(super) fn table_layout(
        &self,
        t: &Spanned<Table<RawTable>>,
        axes: &[Axis],
        key: &str,
    ) -> Result<TableLayout, GridError> {
        let varying: Vec<&str> = axes
            .iter()
            .filter(|a| a.param != Param::Seed)
            .map(|a| a.param.key())
            .collect();
        let axis = |v: &Spanned<String>, which: &str| -> Result<Param, GridError> {
            let given = v.get_ref();
            Param::ALL
                .into_iter()
                .find(|p| p.key() == given && varying.contains(&p.key()))
                .ok_or_else(|| {
                    let why = if given == Param::Seed.key() {
                        "seed cannot lay out a table (tables average over seeds)".to_owned()
                    } else if Param::ALL.iter().any(|p| p.key() == given) {
                        format!("{given:?} is not a grid axis of this experiment")
                    } else {
                        format!(
                            "{:?} is not a hyperparameter{}",
                            truncate(given),
                            did_you_mean(given, &varying, Quote::Double)
                        )
                    };
                    let allowed = if varying.is_empty() {
                        "no axis varies, so remove `table`".to_owned()
                    } else {
                        format!("allowed: the experiment's grid axes {}", one_of(&varying))
                    };
                    self.err(
                        &v.span(),
                        &format!("{key}.{which}"),
                        format!("{why}; {allowed}"),
                    )
                })
        };
        let t = t.get_ref();
        let rows = axis(&t.rows, "rows")?;
        let columns = axis(&t.columns, "columns")?;
        if rows == columns {
            return Err(self.err(
                &t.columns.span(),
                &format!("{key}.columns"),
                format!(
                    "rows and columns must be different axes, both are {:?}",
                    rows.key()
                ),
            ));
        }
        Ok(TableLayout { rows, columns })
    }
}

/// The placeholders a `trial_name` template may use, without braces.
const PLACEHOLDER_NAMES: &[&str] = &[
    "experiment",
    "dataset",
    "activation",
    "hidden_layers",
    "hidden_width",
    "learning_rate",
    "batch_size",
    "epochs",
    "train_fraction",
    "seed",
];

/// Placeholders a `trial_name` template may use, as messages list them.
fn placeholders() -> String {
    let braced: Vec<String> = PLACEHOLDER_NAMES
        .iter()
        .map(|p| format!("{{{p}}}"))
        .collect();
    braced.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_the_experiment_the_dataset_and_every_parameter() {
        let params: Vec<&str> = Param::ALL.iter().map(|p| p.key()).collect();
        assert_eq!(PLACEHOLDER_NAMES[..2], ["experiment", "dataset"]);
        assert_eq!(PLACEHOLDER_NAMES[2..], params[..]);
        assert!(placeholders().starts_with("{experiment}, {dataset}, {activation}"));
    }

    #[test]
    fn lists_read_as_prose() {
        assert_eq!(one_of(&["a"]), "\"a\"");
        assert_eq!(one_of(&["a", "b"]), "\"a\" or \"b\"");
        assert_eq!(one_of(&["a", "b", "c"]), "\"a\", \"b\" or \"c\"");
        assert_eq!(truncate(&"x".repeat(70)), format!("{}...", "x".repeat(64)));
    }
}
