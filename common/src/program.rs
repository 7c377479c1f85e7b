//! A program trial: the user's own training program, run by a worker instead of the built-in
//! trainer (issue 19). The grid names it (`program = [...]`, `workdir`, `env`, and the program's
//! own hyperparameters in `[experiment.params]`); each trial carries its resolved argv.
//!
//! What runs is part of the trial's content: the argv, the working directory, the environment
//! and the program's hyperparameters all enter the trial's canonical text, so changing any of
//! them makes a new trial (and an existing state directory keeps its ids for every other trial).

use std::collections::BTreeMap;
use std::fmt;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

/// Most arguments in a program's argv (the program's name included).
pub const MAX_ARGS: usize = 256;
/// Longest argument, environment value or string hyperparameter, in bytes.
pub const MAX_ARG_BYTES: usize = 4096;
/// Most extra environment variables.
pub const MAX_ENV: usize = 64;
/// Most hyperparameters of the program's own.
pub const MAX_PARAMS: usize = 64;
/// Longest key of a program's hyperparameter or environment variable, in bytes.
pub const MAX_KEY_BYTES: usize = 64;

/// A value of one of the program's own hyperparameters, typed as the grid file writes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProgramValue {
    /// An integer.
    Int(i64),
    /// A finite number.
    Float(f64),
    /// Text.
    Text(String),
    /// `true` or `false`.
    Bool(bool),
}

impl ProgramValue {
    /// As argv placeholders, trial names and the hyperparameters' JSON show it: `2`, `0.001`,
    /// `adam`, `true`.
    pub fn display(&self) -> String {
        match self {
            ProgramValue::Int(i) => i.to_string(),
            ProgramValue::Float(x) => x.to_string(),
            ProgramValue::Text(s) => s.clone(),
            ProgramValue::Bool(b) => b.to_string(),
        }
    }

    /// The TOML type's name, for messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            ProgramValue::Int(_) => "an integer",
            ProgramValue::Float(_) => "a number",
            ProgramValue::Text(_) => "a string",
            ProgramValue::Bool(_) => "a boolean",
        }
    }

    /// The value as JSON (for the hyperparameters file the program reads).
    pub fn json(&self) -> serde_json::Value {
        match self {
            ProgramValue::Int(i) => serde_json::Value::from(*i),
            ProgramValue::Float(x) => serde_json::Value::from(*x),
            ProgramValue::Text(s) => serde_json::Value::from(s.as_str()),
            ProgramValue::Bool(b) => serde_json::Value::from(*b),
        }
    }

    /// Whether two values are the same for the axis's duplicate check (floats by bits).
    pub fn same(&self, other: &ProgramValue) -> bool {
        match (self, other) {
            (ProgramValue::Float(a), ProgramValue::Float(b)) => a.to_bits() == b.to_bits(),
            _ => self == other,
        }
    }
}

impl fmt::Display for ProgramValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.display())
    }
}

/// What a worker runs for a program trial, resolved: placeholders replaced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProgramSpec {
    /// The program and its arguments, run without a shell; never empty.
    pub argv: Vec<String>,
    /// The working directory on the worker (relative to the worker's own), when given.
    pub workdir: Option<String>,
    /// Extra environment variables, on top of the clean environment the worker gives.
    pub env: BTreeMap<String, String>,
    /// The program's own hyperparameters, by key.
    pub params: BTreeMap<String, ProgramValue>,
}

impl ProgramSpec {
    /// The program's part of the trial's canonical text (appended to the built-in part, so that
    /// a trial without a program keeps its text and its id).
    pub fn canonical(&self) -> String {
        let mut text = String::from("|program=");
        // Writing to a String cannot fail.
        let _ = write!(text, "{:?}", self.argv);
        if let Some(w) = &self.workdir {
            let _ = write!(text, "|workdir={w:?}");
        }
        for (k, v) in &self.env {
            let _ = write!(text, "|env.{k:?}={v:?}");
        }
        for (k, v) in &self.params {
            let _ = write!(text, "|params.{k:?}=");
            let _ = match v {
                ProgramValue::Int(i) => write!(text, "int:{i}"),
                ProgramValue::Float(x) => write!(text, "float:{x:?}"),
                ProgramValue::Text(s) => write!(text, "text:{s:?}"),
                ProgramValue::Bool(b) => write!(text, "bool:{b}"),
            };
        }
        text
    }

    /// The program's hyperparameters as one JSON object (the file named by `SWEEP_PARAMS`).
    pub fn params_json(&self) -> serde_json::Value {
        serde_json::Value::Object(
            self.params
                .iter()
                .map(|(k, v)| (k.clone(), v.json()))
                .collect(),
        )
    }
}

/// Whether `key` may name a program's hyperparameter: what may appear between braces in a
/// placeholder and as a TOML bare key: ASCII letters, digits and `_`, starting with a letter.
pub fn valid_key(key: &str) -> bool {
    key.len() <= MAX_KEY_BYTES
        && key.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Whether `name` may name an environment variable the grid sets: like a key, in any case, and
/// none the worker sets itself (`SWEEP_*`, `CUDA_VISIBLE_DEVICES`).
pub fn valid_env_name(name: &str) -> bool {
    name.len() <= MAX_KEY_BYTES
        && name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !name.starts_with("SWEEP_")
        && name != "CUDA_VISIBLE_DEVICES"
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> ProgramSpec {
        ProgramSpec {
            argv: vec!["python3".into(), "train.py".into(), "0.1".into()],
            workdir: Some("lab".into()),
            env: BTreeMap::from([("OMP_NUM_THREADS".into(), "1".into())]),
            params: BTreeMap::from([
                ("lr".into(), ProgramValue::Float(0.1)),
                ("opt".into(), ProgramValue::Text("adam".into())),
                ("width".into(), ProgramValue::Int(64)),
                ("bn".into(), ProgramValue::Bool(true)),
            ]),
        }
    }

    #[test]
    fn canonical_text_names_everything_that_runs() {
        // Trial ids are the UUID v5 of this text (after the built-in part): it must never
        // change for an existing program trial.
        assert_eq!(
            spec().canonical(),
            "|program=[\"python3\", \"train.py\", \"0.1\"]|workdir=\"lab\"|env.\"OMP_NUM_THREADS\"=\"1\"|params.\"bn\"=bool:true|params.\"lr\"=float:0.1|params.\"opt\"=text:\"adam\"|params.\"width\"=int:64"
        );
        let mut other = spec();
        other
            .params
            .insert("lr".into(), ProgramValue::Text("0.1".into()));
        assert_ne!(other.canonical(), spec().canonical());
    }

    #[test]
    fn params_travel_as_typed_json() {
        assert_eq!(
            spec().params_json().to_string(),
            r#"{"bn":true,"lr":0.1,"opt":"adam","width":64}"#
        );
    }

    #[test]
    fn keys_and_env_names() {
        assert!(valid_key("learning_rate2"));
        assert!(!valid_key("2lr") && !valid_key("l-r") && !valid_key(""));
        assert!(valid_env_name("OMP_NUM_THREADS") && valid_env_name("_x"));
        assert!(!valid_env_name("SWEEP_WORKER_TOKEN") && !valid_env_name("CUDA_VISIBLE_DEVICES"));
        assert!(!valid_env_name("A=B"));
    }
}
