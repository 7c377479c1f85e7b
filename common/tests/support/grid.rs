//! What must hold for any outcome of the grid parser, whatever its input. Shared by the property
//! tests (`common/tests/grid_properties.rs`) and the cargo-fuzz target
//! (`fuzz/fuzz_targets/grid.rs`).

use std::collections::HashSet;

use sweep_common::grid::{Grid, GridError};

/// The origin the checked text is parsed under.
pub const ORIGIN: &str = "fuzz.toml";

/// Parses `bytes` as a grid file and checks the outcome.
pub fn check_bytes(bytes: &[u8]) -> Result<(), String> {
    let shown = String::from_utf8_lossy(bytes).into_owned();
    check(&shown, &Grid::from_bytes(bytes.to_vec(), ORIGIN))
}

/// An error is located in `text`; a grid keeps the expansion's invariants.
pub fn check(text: &str, result: &Result<Grid, GridError>) -> Result<(), String> {
    match result {
        Ok(grid) => check_grid(grid),
        Err(GridError::TooLarge { .. })
            if text.len() as u64 > sweep_common::grid::MAX_GRID_FILE_BYTES =>
        {
            Ok(())
        }
        Err(e) => check_error(text, e),
    }
}

fn ensure(ok: bool, what: impl FnOnce() -> String) -> Result<(), String> {
    if ok { Ok(()) } else { Err(what()) }
}

/// An error names the file, a line and column inside `text`, and prints no control character.
pub fn check_error(text: &str, e: &GridError) -> Result<(), String> {
    let shown = e.to_string();
    ensure(!shown.chars().any(char::is_control), || {
        format!("control character in {shown:?}")
    })?;
    let at = e
        .location()
        .ok_or_else(|| format!("no location in {shown:?}"))?;
    ensure(at.origin == ORIGIN, || format!("origin {:?}", at.origin))?;
    let prefix = format!("{ORIGIN}:{}:{}: ", at.line, at.column);
    ensure(shown.starts_with(&prefix), || {
        format!("{shown:?} does not start with {prefix:?}")
    })?;
    let lines: Vec<&str> = text.split('\n').collect();
    ensure(at.line >= 1 && at.line <= lines.len(), || {
        format!("line {} of {} in {shown:?}", at.line, lines.len())
    })?;
    let width = lines[at.line - 1].chars().count();
    ensure(at.column >= 1 && at.column <= width + 1, || {
        format!(
            "column {} of a line of {width} characters in {shown:?}",
            at.column
        )
    })?;
    ensure(!at.message.is_empty(), || {
        format!("empty message in {shown:?}")
    })
}

/// A valid grid's expansion: each experiment is the product of its axes, ids are unique and
/// derived from the content, trial names are unique.
pub fn check_grid(grid: &Grid) -> Result<(), String> {
    ensure(!grid.is_empty(), || "an empty grid".to_owned())?;
    let mut ids = HashSet::new();
    let mut names = HashSet::new();
    for e in &grid.experiments {
        let product: usize = e.axes.iter().map(|a| a.values.len()).product();
        ensure(e.trials.len() == product, || {
            format!("{} trials for axes of {product}", e.trials.len())
        })?;
        for t in &e.trials {
            ensure(t.content_id() == t.id, || {
                format!("trial {} has a foreign id", t.name)
            })?;
            ensure(ids.insert(t.id), || format!("two trials with id {}", t.id))?;
            ensure(names.insert(t.name.clone()), || {
                format!("two trials named {}", t.name)
            })?;
        }
    }
    Ok(())
}
