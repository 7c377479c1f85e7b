//! The grid file: a TOML description of a sweep, validated and expanded into trial specs.
//!
//! A grid file has one `[sweep]` table and one or more `[[experiment]]` tables. Each experiment
//! names a dataset, fixes some hyperparameters (`[experiment.fixed]`) and varies others along
//! axes (`[experiment.grid]`); its trials are the cartesian product of its axes. See README.md
//! for the format and `lab1.toml` for an example.
//!
//! Expansion is deterministic: experiments in file order, axes in the fixed order of [`Param`]
//! (not the file's), values in the order the file lists them, the first axis outermost. Trial ids
//! are content-derived ([`crate::TrialId`]), so the same cell has the same id whatever the order.
//!
//! Every hyperparameter is one row of the table in `params.rs` ([`Param::def`]); the modules
//! read it rather than name hyperparameters. Their imports run one way: `define` (what a row
//! is) <- `params` (the table) <- `suggest` <- `rules` (what each key allows) <- `diagnose` <-
//! `parse` <- `check` <- `search` (the stopping and sample tables) <- `expand`.
//!
//! An experiment may also give `[experiment.stopping]` (an early-stopping rule) and
//! `[experiment.sample]` (configurations drawn from distributions, each crossed with the grid's
//! axes); see [`crate::search`]. Without them, expansion is exactly as above. `repeats = N`
//! (in `[sweep]` or an experiment) is shorthand for a seed axis (`repeats.rs`).

mod budget;
mod check;
mod define;
mod diagnose;
mod error;
mod expand;
mod files;
mod model;
mod params;
mod parse;
mod program;
mod repeats;
mod rules;
mod search;
mod suggest;

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::dataset::{DatasetKind, NoOwnData, OwnDataReader};
use crate::search::{SampleSpec, StoppingSpec};
use crate::trial::TrialSpec;

pub use define::{
    Bound, Canonical, Choice, Domain, Fallback, Field, Identity, ParamDef, Raw, UnknownChoice,
    Value,
};
pub use error::GridError;
pub use expand::{BuildError, TrialBuilder};
pub use params::{
    Activation, HyperParams, LrSchedule, LrScheduleUnit, Normalize, Optimizer, Param, ParamError,
};

/// An experiment name that the grid does not have (`--only`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "--only {given:?}: the grid has no experiment of that name{}; its experiments are: {}",
    suggest::did_you_mean(given, &known.iter().map(String::as_str).collect::<Vec<_>>(), suggest::Quote::Double),
    known.join(", ")
)]
pub struct UnknownExperiment {
    /// The name asked for.
    pub given: String,
    /// The grid's experiments.
    pub known: Vec<String>,
}

/// Largest grid file, in bytes: far more than any grid needs (`lab1.toml` is under 2 KiB, a
/// list of 100 000 seeds about 600 KiB), and little enough to read whole.
pub const MAX_GRID_FILE_BYTES: u64 = 4 * 1024 * 1024;

/// Default `[sweep] max_attempts`: leases of one trial before it fails for good.
pub const DEFAULT_MAX_ATTEMPTS: u32 = 3;
/// Default `[sweep] max_trials`: a grid expanding to more trials is refused before expansion.
pub const DEFAULT_MAX_TRIALS: u64 = 100_000;
/// Default `checkpoint_every`: the lab's notebook saved a checkpoint every 3 epochs.
pub const DEFAULT_CHECKPOINT_EVERY: u32 = 3;
/// Default `split_ratio`: the lab's 70:30 split of the official training set.
pub const DEFAULT_SPLIT_RATIO: f64 = 0.7;

/// One axis of an experiment: a parameter and the values it takes, in file order, as text
/// (the way trial names and reports show them).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Axis {
    /// The parameter that varies.
    pub param: Param,
    /// Its values, formatted for display (`ReLU`, `0.2`, `1024`).
    pub values: Vec<String>,
}

/// Which axes lay out an experiment's accuracy tables in reports: a pivot with `rows` down and
/// `columns` across (one pivot per combination of any other axes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableLayout {
    /// The axis down the rows.
    pub rows: Param,
    /// The axis across the columns.
    pub columns: Param,
}

/// One `[[experiment]]` of a grid, expanded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Experiment {
    /// Unique name within the sweep.
    pub name: String,
    /// Optional title for reports.
    pub title: Option<String>,
    /// Dataset of every trial of the experiment.
    pub dataset: DatasetKind,
    /// The axes that vary, in axis order.
    pub axes: Vec<Axis>,
    /// The report's table layout, when the grid file names one.
    pub table: Option<TableLayout>,
    /// The trials, in expansion order.
    pub trials: Vec<TrialSpec>,
    /// `[experiment.stopping]`, when given. Not persisted: it is read from the grid file.
    #[serde(skip)]
    pub stopping: Option<StoppingSpec>,
    /// `[experiment.sample]`, when given. Not persisted: it is read from the grid file.
    #[serde(skip)]
    pub sample: Option<SampleSpec>,
    /// What its trials are made from, for configurations proposed while the sweep runs (TPE).
    /// Not persisted: it is read from the grid file.
    #[serde(skip)]
    pub builder: Option<Box<TrialBuilder>>,
}

/// A validated, expanded grid file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Grid {
    /// The sweep's name.
    pub name: String,
    /// The sweep's seed: the train/test split, and the trials' seed unless a `seed` is given.
    pub seed: u64,
    /// Leases of one trial before it fails for good.
    pub max_attempts: u32,
    /// `[sweep] max_hours`: the device-hours the sweep may spend (see `budget.rs`); `None`:
    /// no budget.
    #[serde(default)]
    pub max_hours: Option<f64>,
    /// The experiments, in file order.
    pub experiments: Vec<Experiment>,
}

impl Grid {
    /// Reads, validates and expands the grid file at `path`. Anything but a regular file (a
    /// FIFO, a device), and a file larger than [`MAX_GRID_FILE_BYTES`], is refused without
    /// being read.
    ///
    /// A dataset that names a `.npz` file is refused here: see [`Grid::from_file_with`].
    pub fn from_file(path: &Path) -> Result<Grid, GridError> {
        Self::from_file_with(path, &NoOwnData)
    }

    /// [`Grid::from_file`], with `own` reading the `.npz` files datasets name (relative to the
    /// grid file's folder) when the grid loads, so a bad file is refused with the location of
    /// its `dataset` entry.
    pub fn from_file_with(path: &Path, own: &dyn OwnDataReader) -> Result<Grid, GridError> {
        let origin = path.display().to_string();
        let file = crate::files::read_small(path, "grid file", MAX_GRID_FILE_BYTES).map_err(
            |e| match e {
                crate::files::FileError::TooLarge { limit, .. } => GridError::TooLarge {
                    path: origin.clone(),
                    limit,
                },
                crate::files::FileError::Io { message, .. } => GridError::Io {
                    path: origin.clone(),
                    message,
                },
                crate::files::FileError::NotRegular { kind, .. } => GridError::Io {
                    path: origin.clone(),
                    message: format!("it is {kind}, not a regular file"),
                },
            },
        )?;
        Self::from_bytes_with(file.bytes, &origin, own)
    }

    /// Validates and expands the bytes of a grid file; `origin` names it in errors.
    pub fn from_bytes(bytes: Vec<u8>, origin: &str) -> Result<Grid, GridError> {
        Self::from_bytes_with(bytes, origin, &NoOwnData)
    }

    fn from_bytes_with(
        bytes: Vec<u8>,
        origin: &str,
        own: &dyn OwnDataReader,
    ) -> Result<Grid, GridError> {
        check_size(bytes.len(), origin)?;
        match String::from_utf8(bytes) {
            Ok(text) => Self::parse_with(&text, origin, own),
            Err(e) => Err(not_utf8(origin, e)),
        }
    }

    /// Validates and expands grid file text; `origin` names it in errors (usually its path).
    pub fn parse(text: &str, origin: &str) -> Result<Grid, GridError> {
        Self::parse_with(text, origin, &NoOwnData)
    }

    /// [`Grid::parse`], with `own` reading the `.npz` files datasets name, relative to the
    /// folder of `origin` (the grid file's path).
    pub fn parse_with(
        text: &str,
        origin: &str,
        own: &dyn OwnDataReader,
    ) -> Result<Grid, GridError> {
        check_size(text.len(), origin)?;
        diagnose::control_characters(text, origin)?;
        let raw = parse::parse(text, origin)?;
        expand::expand(raw, text, origin, own)
    }

    /// Every trial of every experiment, in expansion order.
    pub fn trials(&self) -> impl Iterator<Item = &TrialSpec> {
        self.experiments.iter().flat_map(|e| e.trials.iter())
    }

    /// Number of trials.
    pub fn len(&self) -> usize {
        self.experiments.iter().map(|e| e.trials.len()).sum()
    }

    /// True when the grid has no trials (never true for a validated grid).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Keeps only the experiments named in `names` (all of them when `names` is empty).
    pub fn select(&mut self, names: &[String]) -> Result<(), UnknownExperiment> {
        if names.is_empty() {
            return Ok(());
        }
        if let Some(missing) = names.iter().find(|n| self.experiment(n).is_none()) {
            return Err(UnknownExperiment {
                given: missing.clone(),
                known: self.experiments.iter().map(|e| e.name.clone()).collect(),
            });
        }
        self.experiments.retain(|e| names.contains(&e.name));
        Ok(())
    }

    /// The experiment named `name`.
    pub fn experiment(&self, name: &str) -> Option<&Experiment> {
        self.experiments.iter().find(|e| e.name == name)
    }
}

/// Refuses more than [`MAX_GRID_FILE_BYTES`].
fn check_size(len: usize, origin: &str) -> Result<(), GridError> {
    if len as u64 > MAX_GRID_FILE_BYTES {
        return Err(GridError::TooLarge {
            path: origin.to_owned(),
            limit: MAX_GRID_FILE_BYTES,
        });
    }
    Ok(())
}

/// The error for a file that is not UTF-8: where the first bad byte is, and what the file
/// probably is instead.
fn not_utf8(origin: &str, e: std::string::FromUtf8Error) -> GridError {
    let valid = e.utf8_error().valid_up_to();
    let bytes = e.into_bytes();
    let prefix = String::from_utf8_lossy(&bytes[..valid]);
    let message = if bytes.starts_with(&[0xff, 0xfe]) || bytes.starts_with(&[0xfe, 0xff]) {
        "the file is UTF-16 text (it starts with a UTF-16 byte order mark); save it as UTF-8"
            .to_owned()
    } else {
        format!(
            "invalid UTF-8 (byte 0x{:02x}): a grid file is UTF-8 text; save it as UTF-8",
            bytes.get(valid).copied().unwrap_or_default()
        )
    };
    GridError::at(origin, &prefix, valid, "", message)
}

#[cfg(test)]
mod tests;
