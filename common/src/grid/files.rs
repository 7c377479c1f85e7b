//! No two trials of a sweep may share a file. Files named after a trial (its final weights, its
//! figures) keep only letters, digits, `_`, `-` and `.` of its name ([`crate::trial::file_stem`]),
//! and some file systems ignore case, so two different trial names can still name one file:
//! such a grid is refused here, at load time, naming both trials.

use std::hash::{DefaultHasher, Hasher as _};

use toml::Spanned;

use super::check::Checker;
use super::parse::RawFile;
use super::rules::truncate;
use super::{Experiment, GridError};
use crate::trial::{file_key_chars, file_stem};

/// A trial's place: (experiment index, trial index).
type At = (u32, u32);

/// The hash of a trial name's file key (deterministic: SipHash with fixed keys), made in `buf`.
fn key_hash(name: &str, buf: &mut String) -> u64 {
    buf.clear();
    buf.extend(file_key_chars(name));
    let mut h = DefaultHasher::new();
    h.write(buf.as_bytes());
    h.finish()
}

fn same_key(a: &str, b: &str) -> bool {
    file_key_chars(a).eq(file_key_chars(b))
}

/// Refuses a grid in which two trials' names give one file name. Trials with equal names were
/// refused before (`expand`); this catches names that differ only in characters a file name
/// replaces, or in case. O(trials) memory of 16 bytes each, O(trials log trials) time.
pub(super) fn check_unique(
    c: &Checker<'_>,
    raw: &RawFile,
    experiments: &[Experiment],
) -> Result<(), GridError> {
    let mut keyed: Vec<(u64, At)> =
        Vec::with_capacity(experiments.iter().map(|e| e.trials.len()).sum());
    let mut buf = String::new();
    for (i, e) in experiments.iter().enumerate() {
        for (j, t) in e.trials.iter().enumerate() {
            let at = (
                u32::try_from(i).unwrap_or(u32::MAX),
                u32::try_from(j).unwrap_or(u32::MAX),
            );
            keyed.push((key_hash(&t.name, &mut buf), at));
        }
    }
    // By hash, then in grid order: a group of equal hashes holds every trial that may collide.
    keyed.sort_unstable();
    let name = |(i, j): At| experiments[i as usize].trials[j as usize].name.as_str();
    // The collision whose later trial comes first in grid order.
    let mut found: Option<(At, At)> = None;
    for group in keyed.chunk_by(|a, b| a.0 == b.0).filter(|g| g.len() > 1) {
        for (k, &(_, later)) in group.iter().enumerate().skip(1) {
            if let Some(&(_, earlier)) = group[..k]
                .iter()
                .find(|(_, earlier)| same_key(name(*earlier), name(later)))
            {
                if found.is_none_or(|(_, f)| later < f) {
                    found = Some((earlier, later));
                }
                break;
            }
        }
    }
    let Some((earlier, later)) = found else {
        return Ok(());
    };
    let i = later.0 as usize;
    let e = raw.experiments.get_ref()[i].get_ref();
    let span = e.trial_name.as_ref().map_or(e.name.span(), Spanned::span);
    let other = if earlier.0 == later.0 {
        String::new()
    } else {
        format!(
            " of experiment[{}] {:?}",
            earlier.0, experiments[earlier.0 as usize].name
        )
    };
    let (a, b) = (name(later), name(earlier));
    let (stem_a, stem_b) = (file_stem(a), file_stem(b));
    let message = if stem_a == stem_b {
        format!(
            "trial names {:?} and {:?}{other} would be saved under one file name, {:?} (file \
             names keep letters, digits, '_', '-' and '.' and replace every other character \
             with '_'); make the names differ in those characters",
            truncate(a),
            truncate(b),
            truncate(&stem_a),
        )
    } else {
        format!(
            "trial names {:?} and {:?}{other} differ only in case: their files ({:?}, {:?}) \
             would be one file on file systems that ignore case (macOS, Windows); make the \
             names differ in more than case",
            truncate(a),
            truncate(b),
            truncate(&stem_a),
            truncate(&stem_b),
        )
    };
    Err(c.err(&span, &format!("experiment[{i}].trial_name"), message))
}
