//! Checks of single values of a grid file (names, hyperparameter values, templates, table
//! layouts), each error located in the file; what each key allows is in `rules`.

use std::ops::Range;

use toml::Spanned;

use super::params::Param;
use super::parse::{RawTable, RawValue, Table};
use super::rules::{self, MAX_NAME_LEN, name_char, name_rule, one_of, truncate};
use super::suggest::{Quote, did_you_mean};
use super::{Axis, GridError, TableLayout, Value};
use crate::dataset::{DatasetKind, OwnData, OwnDataReader};

/// Longest trial name, in bytes.
pub(super) const MAX_TRIAL_NAME_LEN: usize = 2 * MAX_NAME_LEN;
/// Longest title, in characters (a longer one is refused).
pub(super) const MAX_TITLE_LEN: usize = 64;

/// `c` as a message quotes it: itself when it is visible ASCII, else its code point.
fn quote_char(c: char) -> String {
    if c.is_ascii_graphic() || c == ' ' {
        format!("{c:?}")
    } else {
        format!("U+{:04X}", u32::from(c))
    }
}

/// Checks on one source text; every error names `origin`, line, column and key. `own` reads
/// the `.npz` files datasets name (relative to `origin`'s folder).
pub(super) struct Checker<'a> {
    pub text: &'a str,
    pub origin: &'a str,
    pub own: &'a dyn OwnDataReader,
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
                format!("must be {}, got {x}", rules::integer(min, max)),
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
        rules::fraction(x, rule, one).map_err(|message| self.err(span, key, message))
    }

    /// A hyperparameter's value, checked against its row of the table.
    pub(super) fn value(
        &self,
        param: Param,
        value: &Spanned<RawValue>,
        key: &str,
    ) -> Result<Value, GridError> {
        rules::check(param.def(), value.get_ref().raw())
            .map_err(|message| self.err(&value.span(), key, message))
    }

    /// A built-in dataset's name, or the path of a `.npz` file (relative to the grid file),
    /// whose facts `own` reads and checks now.
    pub(super) fn dataset(
        &self,
        value: &Spanned<String>,
        key: &str,
    ) -> Result<DatasetKind, GridError> {
        let given = value.get_ref();
        if given.ends_with(".npz") {
            return self
                .own_dataset(given)
                .map_err(|message| self.err(&value.span(), key, message));
        }
        given.parse().map_err(|_| {
            let names = DatasetKind::ALL.map(DatasetKind::name);
            self.err(
                &value.span(),
                key,
                format!(
                    "unknown dataset {:?}{}; allowed: {}, or the path of a .npz file",
                    truncate(given),
                    did_you_mean(given, &names, Quote::Double),
                    names.join(", ")
                ),
            )
        })
    }

    fn own_dataset(&self, file: &str) -> Result<DatasetKind, String> {
        crate::text::check(file, crate::dataset::MAX_OWN_PATH_CHARS).map_err(|e| e.to_string())?;
        let base = std::path::Path::new(self.origin)
            .parent()
            .unwrap_or(std::path::Path::new(""));
        let facts = self.own.read(&base.join(file), file)?;
        OwnData::new(facts).map(DatasetKind::Own)
    }

    /// Checks a `trial_name` template: known placeholders, balanced braces, printable text.
    /// `extra` are further keys it may name (a program's hyperparameters).
    pub(super) fn template_with(
        &self,
        t: &Spanned<String>,
        key: &str,
        extra: &[&str],
    ) -> Result<(), GridError> {
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
            let mut names = placeholder_names();
            names.extend(extra);
            let known = names.contains(&placeholder);
            if !known {
                return Err(self.err(
                    &at(offset + open),
                    key,
                    format!(
                        "unknown placeholder {{{}}}{}; allowed: {}",
                        truncate(placeholder),
                        did_you_mean(placeholder, &names, Quote::Brace),
                        names
                            .iter()
                            .map(|p| format!("{{{p}}}"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                ));
            }
            offset += open + 1 + close + 1;
            rest = &after[close + 1..];
        }
        self.template_characters(t, key)
    }

    /// Outside its placeholders, a trial name is made of name characters, like sweep and
    /// experiment names: `run` and `ru\u{200b}n` cannot both exist and look the same.
    fn template_characters(&self, t: &Spanned<String>, key: &str) -> Result<(), GridError> {
        let at = |i: usize| self.inside(t, i);
        let text = t.get_ref();
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
    pub(super) fn inside(&self, value: &Spanned<String>, i: usize) -> Range<usize> {
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

/// The placeholders a `trial_name` template may use, without braces: the experiment, the
/// dataset and every hyperparameter.
fn placeholder_names() -> Vec<&'static str> {
    let mut names = vec!["experiment", "dataset"];
    names.extend(Param::KEYS);
    names
}

/// Placeholders a `trial_name` template may use, as messages list them.
fn placeholders() -> String {
    let braced: Vec<String> = placeholder_names()
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
        let names = placeholder_names();
        assert_eq!(names[..2], ["experiment", "dataset"]);
        assert_eq!(names[2..], Param::KEYS[..]);
        assert!(placeholders().starts_with("{experiment}, {dataset}, {activation}"));
    }
}
