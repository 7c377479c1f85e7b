//! Messages for what the TOML parser and serde refuse: syntax errors, unknown and missing keys,
//! values of the wrong type or out of range. Each names what the key allows, and what to write
//! instead when the mistake is a common one.

use super::params::Param;
use super::rules::{
    MAX_ATTEMPTS, MAX_CHECKPOINT_EVERY, MAX_REPEATS, MAX_TRIALS_LIMIT, SPLIT_RATIO_RULE, allowed,
    integer, name_rule, one_of, truncate,
};
use super::suggest::{Quote, did_you_mean};
use super::{GridError, search};
use crate::dataset::DatasetKind;

/// The keys of `[[experiment]]`, as serde lists them.
const EXPERIMENT_KEYS: &[&str] = &[
    "name",
    "title",
    "dataset",
    "trial_name",
    "split_ratio",
    "checkpoint_every",
    "table",
    "fixed",
    "grid",
    "stopping",
    "sample",
    "repeats",
    "program",
    "workdir",
    "env",
    "params",
];

/// Refuses what no grid file holds before the TOML parser sees it: control characters, which
/// TOML forbids and which would garble the message that quotes them.
pub(super) fn control_characters(text: &str, origin: &str) -> Result<(), GridError> {
    let found = text
        .char_indices()
        .find(|(_, c)| c.is_control() && !matches!(c, '\t' | '\n' | '\r'));
    match found {
        Some((offset, c)) => Err(GridError::at(
            origin,
            text,
            offset,
            "",
            format!(
                "control character U+{:04X} is not allowed in a grid file; use printable text \
                 (TOML writes it in a string as \\u{:04X})",
                u32::from(c),
                u32::from(c)
            ),
        )),
        None => Ok(()),
    }
}

/// A TOML syntax error.
pub(super) fn syntax(text: &str, origin: &str, e: &toml::de::Error) -> GridError {
    let offset = match e.span() {
        Some(s) => s.start,
        // The parser does not say where it gave up on a too deeply dotted key; it is the line
        // that nests most.
        None if e.message().contains("recursion") => deepest_line(text),
        None => 0,
    };
    let line = line_at(text, offset);
    let m = e.message().trim();
    let (key, message) = if m.contains("duplicate key") {
        duplicate_key(line, token_at(text, offset))
    } else if m.contains("recursion") {
        (String::new(), "values are nested too deeply".to_owned())
    } else if m.starts_with("string values must be quoted") || m.starts_with("invalid boolean") {
        (String::new(), unquoted(text, offset))
    } else if m.starts_with("carriage return") {
        (
            String::new(),
            "a carriage return (\\r) must be followed by a newline (\\n); save the file with \
             Unix or Windows line endings"
                .to_owned(),
        )
    } else if m.starts_with("unclosed table") || m.starts_with("unclosed array table") {
        (
            String::new(),
            "unclosed table header, expected `]` before the end of the line".to_owned(),
        )
    } else if m.starts_with("invalid basic string") && m.contains("expected `\"`") {
        (
            String::new(),
            "unclosed string: a string ends with `\"` on the same line".to_owned(),
        )
    } else if m.starts_with("invalid literal string") && m.contains("expected `'`") {
        (
            String::new(),
            "unclosed string: a string ends with `'` on the same line".to_owned(),
        )
    } else {
        (String::new(), alternatives(m))
    };
    let hint = if message.contains("in array") {
        "; is the `]` or a `,` of a list above missing?"
    } else {
        ""
    };
    let message = message.replace("in array", "in a list");
    GridError::at(
        origin,
        text,
        offset,
        &key,
        format!("invalid TOML: {message}{hint}"),
    )
}

/// The offset of the line with the most nesting characters.
fn deepest_line(text: &str) -> usize {
    let mut best = (0, 0);
    let mut offset = 0;
    for line in text.split('\n') {
        let depth = line.matches(['.', '[', '{']).count();
        if depth > best.0 {
            best = (depth, offset);
        }
        offset += line.len() + 1;
    }
    best.1
}

/// `a, expected b, c` -> `a, expected b or c`.
fn alternatives(m: &str) -> String {
    match m.split_once(", expected ") {
        Some((what, expected)) => {
            let options: Vec<&str> = expected
                .split(", ")
                .map(|o| if o == "value" { "a value" } else { o })
                .collect();
            match options.split_last() {
                Some((last, rest)) if !rest.is_empty() => {
                    format!("{what}, expected {} or {last}", rest.join(", "))
                }
                _ => m.to_owned(),
            }
        }
        None => m.to_owned(),
    }
}

/// The key (or table) set twice, and what to do about it.
fn duplicate_key(line: &str, token: &str) -> (String, String) {
    let trimmed = line.trim();
    if let Some(header) = trimmed
        .strip_prefix("[[")
        .and_then(|h| h.split_once("]]"))
        .map(|(h, _)| h.trim())
    {
        let message = format!(
            "[[{header}]] comes after `{header}` was made a single table (by [{header}] or by a \
             sub-table such as [{header}.fixed] with no [[{header}]] above it); start each \
             {header} with [[{header}]], then its sub-tables"
        );
        return (header.to_owned(), message);
    }
    if let Some(header) = trimmed
        .strip_prefix('[')
        .and_then(|h| h.split_once(']'))
        .map(|(h, _)| h.trim())
    {
        let same = if header.contains('.') {
            " (a new experiment starts with [[experiment]])"
        } else {
            ""
        };
        let message = format!("table [{header}] is defined twice; merge the two{same}");
        return (header.to_owned(), message);
    }
    (
        token.to_owned(),
        format!("duplicate key `{token}`: a key is set once per table"),
    )
}

/// A value the parser could not read as any TOML value.
fn unquoted(text: &str, offset: usize) -> String {
    let rest = &text[floor_char_boundary(text, offset)..];
    let rest = rest
        .split(['\n', '#'])
        .next()
        .unwrap_or_default()
        .trim_end();
    let token = token_at(text, offset);
    if rest.is_empty() {
        "missing value after `=`".to_owned()
    } else if token.eq_ignore_ascii_case("true") || token.eq_ignore_ascii_case("false") {
        format!(
            "`{}` is not a value; booleans are true and false, in lowercase",
            truncate(token)
        )
    } else if token.parse::<f64>().is_ok() {
        format!(
            "`{}` is not one value; write a list as [a, b]",
            truncate(rest)
        )
    } else {
        let t = truncate(token);
        format!("`{t}` is not a value; strings are written in quotes: \"{t}\"")
    }
}

/// The line of `text` that holds byte `offset`.
fn line_at(text: &str, offset: usize) -> &str {
    let offset = floor_char_boundary(text, offset);
    let start = text[..offset].rfind('\n').map_or(0, |i| i + 1);
    let end = text[offset..].find('\n').map_or(text.len(), |i| offset + i);
    &text[start..end]
}

/// The word (key, bare value) that starts at byte `offset`.
fn token_at(text: &str, offset: usize) -> &str {
    let offset = floor_char_boundary(text, offset);
    let rest = &text[offset..];
    let end = rest
        .find([' ', '\t', ',', ']', '}', '#', '\r', '\n', '='])
        .unwrap_or(rest.len());
    &rest[..end]
}

fn floor_char_boundary(text: &str, offset: usize) -> usize {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    offset
}

/// Where in the grid file's structure a key path points.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Place<'a> {
    /// The file itself.
    Root,
    /// `[sweep]`.
    Sweep,
    /// A key of `[sweep]`.
    SweepKey(&'a str),
    /// `experiment`, the array of `[[experiment]]` tables.
    Experiments,
    /// One `[[experiment]]`.
    Experiment,
    /// A key of an `[[experiment]]`.
    ExperimentKey(&'a str),
    /// `table = { ... }`.
    Table,
    /// A key of `table`.
    TableKey(&'a str),
    /// `[experiment.fixed]`.
    Fixed,
    /// A key of `[experiment.fixed]`.
    FixedKey(&'a str),
    /// `[experiment.grid]`.
    Grid,
    /// A key of `[experiment.grid]`: a whole axis.
    Axis(&'a str),
    /// One value of an axis.
    AxisValue(&'a str),
    /// `[experiment.stopping]`.
    Stopping,
    /// A key of `[experiment.stopping]`.
    StoppingKey(&'a str),
    /// `[experiment.sample]`.
    Sample,
    /// A key of `[experiment.sample]`.
    SampleKey(&'a str),
    /// A key of `[experiment.sample.space]`: a sampled hyperparameter's distribution.
    Distribution(&'a str),
    /// A distribution's bounds or values (`loguniform`, `choice`, ...) of a sampled key.
    DistributionKind(&'a str, &'a str),
    /// Anything else.
    Other,
}

/// Reads a key path such as `experiment[0].grid.seed[2]`.
fn place(path: &str) -> Place<'_> {
    if path.is_empty() {
        return Place::Root;
    }
    let segments: Vec<(&str, bool)> = path
        .split('.')
        .map(|s| match s.find('[') {
            Some(i) => (&s[..i], true),
            None => (s, false),
        })
        .collect();
    match segments.as_slice() {
        [("sweep", _)] => Place::Sweep,
        [("sweep", _), (k, _)] => Place::SweepKey(k),
        [("experiment", false)] => Place::Experiments,
        [("experiment", true)] => Place::Experiment,
        [("experiment", _), ("table", _)] => Place::Table,
        [("experiment", _), ("table", _), (k, _)] => Place::TableKey(k),
        [("experiment", _), ("fixed", _)] => Place::Fixed,
        [("experiment", _), ("fixed", _), (k, _)] => Place::FixedKey(k),
        [("experiment", _), ("grid", _)] => Place::Grid,
        [("experiment", _), ("grid", _), (k, false)] => Place::Axis(k),
        [("experiment", _), ("grid", _), (k, true)] => Place::AxisValue(k),
        [("experiment", _), ("stopping", _)] => Place::Stopping,
        [("experiment", _), ("stopping", _), (k, _)] => Place::StoppingKey(k),
        [("experiment", _), ("sample", _)] => Place::Sample,
        [("experiment", _), ("sample", _), ("space", _), (k, _)] => Place::Distribution(k),
        [
            ("experiment", _),
            ("sample", _),
            ("space", _),
            (k, _),
            (d, _),
        ] => Place::DistributionKind(k, d),
        [("experiment", _), ("sample", _), (k, _)] => Place::SampleKey(k),
        [("experiment", _), (k, _)] => Place::ExperimentKey(k),
        _ => Place::Other,
    }
}

fn param(key: &str) -> Option<Param> {
    Param::from_key(key)
}

/// What the key at `place` allows.
fn allows(place: Place<'_>) -> Option<String> {
    let datasets = || one_of(&DatasetKind::ALL.map(DatasetKind::name));
    Some(match place {
        Place::Root | Place::Other => return None,
        Place::Sweep => "a table: [sweep]".to_owned(),
        Place::SweepKey("name") => format!("a name of {}", name_rule()),
        Place::SweepKey("seed") => integer(0, i64::MAX),
        Place::SweepKey("max_attempts") => integer(1, MAX_ATTEMPTS),
        Place::SweepKey("max_trials") => integer(1, MAX_TRIALS_LIMIT),
        Place::SweepKey("repeats") | Place::ExperimentKey("repeats") => {
            format!("{} (seeds per configuration)", integer(1, MAX_REPEATS))
        }
        Place::SweepKey(_) => return None,
        Place::Experiments => "tables, each written [[experiment]]".to_owned(),
        Place::Experiment => "a table: [[experiment]]".to_owned(),
        Place::ExperimentKey("name") => format!("a name of {}", name_rule()),
        Place::ExperimentKey("title") => "a string".to_owned(),
        Place::ExperimentKey("dataset") => datasets(),
        Place::ExperimentKey("trial_name") => {
            "a string, a template such as \"run_{activation}\"".to_owned()
        }
        Place::ExperimentKey("split_ratio") => SPLIT_RATIO_RULE.to_owned(),
        Place::ExperimentKey("checkpoint_every") => {
            format!("{} (0: never)", integer(0, MAX_CHECKPOINT_EVERY))
        }
        Place::ExperimentKey(_) => return None,
        Place::Table => {
            "a table of two grid axes: { rows = \"AXIS\", columns = \"AXIS\" }".to_owned()
        }
        Place::TableKey(_) => "the name of one of the experiment's grid axes".to_owned(),
        Place::Fixed => "a table of hyperparameters, one value each".to_owned(),
        Place::Grid => "a table of hyperparameters, a list of values each".to_owned(),
        Place::FixedKey(k) | Place::AxisValue(k) => allowed(&param(k)?.def().domain),
        Place::Axis(k) => format!(
            "a list of values, each {}",
            allowed(&param(k)?.def().domain)
        ),
        Place::Stopping
        | Place::StoppingKey(_)
        | Place::Sample
        | Place::SampleKey(_)
        | Place::Distribution(_)
        | Place::DistributionKind(..) => return search::allows(place),
    })
}

/// A value of the wrong shape: an unknown or missing key, the wrong type, out of range.
pub(super) fn shape(text: &str, origin: &str, key: &str, e: &toml::de::Error) -> GridError {
    let span = e.span().unwrap_or(0..0);
    let source = text
        .get(span.clone())
        .map(str::trim)
        .filter(|s| !s.is_empty() && s.chars().count() <= 40 && !s.contains('\n'));
    let m = e.message().trim();
    let at = place(key);
    let (key, message) = if let Some(rest) = m.strip_prefix("unknown field `") {
        (key.to_owned(), unknown_key(at, rest))
    } else if let Some(rest) = m.strip_prefix("missing field `") {
        let field = rest.split('`').next().unwrap_or_default();
        missing_key(text, key, at, field)
    } else if let Some(number) = out_of_range(m) {
        let got = source.unwrap_or(number);
        let message = match allows(at) {
            Some(a) => format!("must be {a}, got {got}"),
            None => format!("{got} is out of range"),
        };
        (key.to_owned(), message)
    } else if m == "floating-point number overflowed" {
        let got = source.unwrap_or("a number");
        let a = allows(at).unwrap_or_else(|| "a number".to_owned());
        (
            key.to_owned(),
            format!("must be {a}, got {got}, which is too large to be a number"),
        )
    } else if let Some((got, expected)) = m
        .strip_prefix("invalid type: ")
        .and_then(|r| r.rsplit_once(", expected "))
    {
        (key.to_owned(), wrong_type(at, got, expected, source))
    } else {
        (key.to_owned(), rust_types(m))
    };
    GridError::at(origin, text, span.start, &key, message)
}

/// An integer that does not fit an i64 (`integer `N` as i128`, `invalid value: integer `N``).
fn out_of_range(m: &str) -> Option<&str> {
    if m == "integer number overflowed" {
        return Some("an integer too large");
    }
    let rest = m
        .strip_prefix("invalid type: integer `")
        .filter(|r| r.contains("` as i128") || r.contains("` as u128"))
        .or_else(|| m.strip_prefix("invalid value: integer `"))?;
    rest.split('`').next()
}

fn unknown_key(at: Place<'_>, rest: &str) -> String {
    let given = rest.split('`').next().unwrap_or_default();
    // serde lists the allowed keys in backticks after "expected".
    let known: Vec<&str> = rest
        .split_once("expected")
        .map(|(_, list)| list.split('`').skip(1).step_by(2).collect())
        .unwrap_or_default();
    let guess = did_you_mean(given, &known, Quote::Backtick);
    let is_param = param(given).is_some();
    let hint = match at {
        Place::Root | Place::Other => {
            return format!(
                "unknown key `{}`{guess}; a grid file holds a [sweep] table and [[experiment]] \
                 tables, nothing else",
                truncate(given)
            );
        }
        Place::ExperimentKey(_) if is_param => {
            "; hyperparameters go in [experiment.fixed] (one value) or [experiment.grid] (a list \
             of values)"
        }
        Place::FixedKey(_) | Place::Axis(_) | Place::AxisValue(_)
            if EXPERIMENT_KEYS.contains(&given) =>
        {
            "; it is a key of the experiment: write it under [[experiment]], before \
             [experiment.fixed] and [experiment.grid]"
        }
        Place::SweepKey(_) if is_param || EXPERIMENT_KEYS.contains(&given) => {
            "; it belongs to an experiment: write it after [[experiment]]"
        }
        Place::SweepKey("experiment") => "; write each experiment as a [[experiment]] table",
        Place::Sample | Place::SampleKey(_) if is_param => {
            "; sampled hyperparameters go in [experiment.sample.space], each with a distribution"
        }
        _ => "",
    };
    format!(
        "unknown key `{}`{guess}{hint}; allowed: {}",
        truncate(given),
        known.join(", ")
    )
}

fn missing_key(text: &str, key: &str, at: Place<'_>, field: &str) -> (String, String) {
    if at == Place::Root && field == "sweep" {
        let blank = text
            .lines()
            .all(|l| l.trim().is_empty() || l.trim_start().starts_with('#'));
        let message = if blank {
            "the file is empty; a grid file needs a [sweep] table with the sweep's name, and one \
             or more [[experiment]] tables"
        } else {
            "no [sweep] table; a grid file starts with [sweep] and the sweep's name"
        };
        let key = if blank { "" } else { "sweep" };
        return (key.to_owned(), message.to_owned());
    }
    if at == Place::Root && field == "experiment" {
        return (
            "experiment".to_owned(),
            "no [[experiment]] table; a grid needs at least one".to_owned(),
        );
    }
    let child = if key.is_empty() {
        field.to_owned()
    } else {
        format!("{key}.{field}")
    };
    let message = match allows(place(&child)) {
        Some(a) => format!("missing key `{field}`: it must be {a}"),
        None => format!("missing key `{field}`"),
    };
    (key.to_owned(), message)
}

/// What a serde "invalid type" says, in the file's terms, with a fix for common mistakes.
fn wrong_type(at: Place<'_>, got: &str, expected: &str, source: Option<&str>) -> String {
    let date = got == "map" && source.is_some_and(|s| s.starts_with(|c: char| c.is_ascii_digit()));
    let shown = match source {
        Some(s) if date => format!("{s} (a date)"),
        Some(s) => s.to_owned(),
        None => noun(got).to_owned(),
    };
    let list = got == "sequence";
    let expected_text = allows(at).unwrap_or_else(|| rust_types(expected));
    // A number in quotes, of the kind expected.
    let unquoted = got
        .strip_prefix("string \"")
        .and_then(|s| s.strip_suffix('"'))
        .map(str::trim)
        .filter(|s| {
            if expected_text.contains("integer") {
                s.parse::<i64>().is_ok()
            } else {
                expected_text.contains("number") && s.parse::<f64>().is_ok()
            }
        });
    let hint = match at {
        Place::FixedKey(k) if list && param(k).is_some() => {
            format!("; to vary {k}, move the list to [experiment.grid]")
        }
        Place::Axis(k) if !list && param(k).is_some() => match source {
            Some(s) => {
                format!("; an axis is a list: write {k} = [{s}], or move it to [experiment.fixed]")
            }
            None => "; an axis is a list of values".to_owned(),
        },
        Place::ExperimentKey("dataset") if list => {
            "; an experiment has one dataset: write one [[experiment]] per dataset".to_owned()
        }
        Place::Experiments if got == "map" => {
            "; write [[experiment]] (two pairs of brackets) above each experiment".to_owned()
        }
        Place::Sweep if list => {
            "; write [sweep] with one pair of brackets: a grid has one sweep".to_owned()
        }
        Place::Fixed | Place::Grid if list => {
            "; write [experiment.fixed] and [experiment.grid] with one pair of brackets".to_owned()
        }
        _ if unquoted.is_some() => "; remove the quotes".to_owned(),
        _ => String::new(),
    };
    format!("must be {expected_text}, got {shown}{hint}")
}

/// serde's name of a kind of value, in TOML's terms.
fn noun(got: &str) -> &str {
    match got.split(' ').next().unwrap_or_default() {
        "sequence" => "a list",
        "map" => "a table",
        "string" => "a string",
        "integer" => "an integer",
        "floating" => "a number",
        "boolean" => "a boolean",
        _ => got,
    }
}

/// Rust's names of types, said the way a TOML user thinks of them.
fn rust_types(m: &str) -> String {
    m.replace("i64", "an integer")
        .replace("f64", "a number")
        .replace("a sequence", "a list")
        .replace("sequence", "a list")
        .replace("missing field", "missing key")
        .replace("unknown field", "unknown key")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_name_places() {
        assert_eq!(place(""), Place::Root);
        assert_eq!(place("sweep.name"), Place::SweepKey("name"));
        assert_eq!(place("experiment"), Place::Experiments);
        assert_eq!(place("experiment[3]"), Place::Experiment);
        assert_eq!(place("experiment[0].grid.seed"), Place::Axis("seed"));
        assert_eq!(
            place("experiment[0].grid.seed[2]"),
            Place::AxisValue("seed")
        );
        assert_eq!(place("experiment[0].fixed.lr"), Place::FixedKey("lr"));
        assert_eq!(place("experiment[0].table.rows"), Place::TableKey("rows"));
        assert_eq!(place("a.b.c.d"), Place::Other);
    }

    #[test]
    fn helpers_stay_inside_the_text() {
        let text = "a = é\nb";
        for offset in 0..=text.len() + 2 {
            let _ = line_at(text, offset);
            let _ = token_at(text, offset);
            let _ = unquoted(text, offset);
        }
        assert_eq!(line_at(text, 7), "b");
        assert_eq!(token_at(text, 0), "a");
        assert_eq!(alternatives("x, expected a, b, c"), "x, expected a, b or c");
    }
}
