//! The corpus of bad grid files (`tests/grids/bad/`): every `NAME.toml` must be refused with
//! exactly the message in `NAME.expected` beside it, its path written as
//! `tests/grids/bad/NAME.toml`.
//!
//! A file whose first line is `# only: EXPERIMENT` is valid, and is refused by `--only
//! EXPERIMENT` (`Grid::select`) instead.
//!
//! `SWEEP_BLESS=1 cargo test -p sweep-common --test bad_grids` rewrites the `.expected` files from
//! what the parser says now; review every change by hand before committing it: a snapshot of a
//! bad message is a defect.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use sweep_common::grid::Grid;

/// Where the corpus lives, and how its paths are written in the snapshots.
const CORPUS: &str = "tests/grids/bad";

/// The fewest cases the corpus may have (a guard against a glob that silently matches nothing).
const MIN_CASES: usize = 50;

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(CORPUS)
}

fn bless() -> bool {
    std::env::var_os("SWEEP_BLESS").is_some_and(|v| !v.is_empty() && v != "0")
}

/// The `.toml` files of the corpus, sorted.
fn cases() -> Vec<PathBuf> {
    let dir = corpus_dir();
    let mut cases: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .map(|entry| entry.expect("a directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    cases.sort();
    cases
}

/// The experiments named by a first line `# only: A B`, if any.
fn only(path: &Path) -> Vec<String> {
    let bytes = std::fs::read(path).expect("read a corpus file");
    let text = String::from_utf8_lossy(&bytes);
    text.lines()
        .next()
        .and_then(|l| l.strip_prefix("# only:"))
        .map(|names| names.split_whitespace().map(str::to_owned).collect())
        .unwrap_or_default()
}

/// What the parser says about the file at `path`, with its path normalised.
fn message(path: &Path) -> Result<String, String> {
    let name = path.file_name().expect("a file name").to_string_lossy();
    let shown = format!("{CORPUS}/{name}");
    let normalise = |m: String| m.replace(&path.display().to_string(), &shown);
    match Grid::from_file_with(path, &sweep_data::npz::GridReader) {
        Err(e) => Ok(normalise(e.to_string())),
        Ok(mut grid) => {
            let only = only(path);
            if only.is_empty() {
                return Err(format!(
                    "{shown} was accepted; every file of the corpus must be refused"
                ));
            }
            match grid.select(&only) {
                Err(e) => Ok(normalise(e.to_string())),
                Ok(()) => Err(format!(
                    "{shown} was accepted with --only {}",
                    only.join(" ")
                )),
            }
        }
    }
}

/// A line diff of two short texts (messages are one or a few lines).
fn diff(expected: &str, got: &str) -> String {
    let mut out = String::new();
    for line in expected.lines() {
        let _ = writeln!(out, "  - {line}");
    }
    for line in got.lines() {
        let _ = writeln!(out, "  + {line}");
    }
    out
}

#[test]
fn every_bad_grid_is_refused_with_its_expected_message() {
    let cases = cases();
    assert!(
        cases.len() >= MIN_CASES,
        "only {} cases in {}",
        cases.len(),
        corpus_dir().display()
    );
    let bless = bless();
    let mut failures = Vec::new();
    for path in &cases {
        let expected_path = path.with_extension("expected");
        let got = match message(path) {
            Ok(m) => format!("{m}\n"),
            Err(e) => {
                failures.push(e);
                continue;
            }
        };
        if bless {
            std::fs::write(&expected_path, &got)
                .unwrap_or_else(|e| panic!("cannot write {}: {e}", expected_path.display()));
            continue;
        }
        match std::fs::read_to_string(&expected_path) {
            Ok(expected) if expected == got => {}
            Ok(expected) => failures.push(format!(
                "{}: the message changed (- expected, + got):\n{}",
                path.display(),
                diff(&expected, &got)
            )),
            Err(e) => failures.push(format!(
                "{}: {e}; the message is:\n{}",
                expected_path.display(),
                diff("", &got)
            )),
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} bad grid files failed:\n\n{}\n\nIf the new messages are better, review them and \
         accept them with SWEEP_BLESS=1 cargo test -p sweep-common --test bad_grids",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

/// Every snapshot has its grid file (a renamed case leaves no stale snapshot behind).
#[test]
fn every_snapshot_has_its_grid_file() {
    let dir = corpus_dir();
    for entry in std::fs::read_dir(&dir).expect("list the corpus") {
        let path = entry.expect("a directory entry").path();
        if path
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with('.'))
        {
            continue;
        }
        let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
        match ext {
            "toml" => {}
            "expected" => assert!(
                path.with_extension("toml").is_file(),
                "{} has no grid file beside it",
                path.display()
            ),
            _ => panic!(
                "{}: the corpus holds only .toml and .expected files",
                path.display()
            ),
        }
    }
}

/// Messages about a place in the file name that place: `FILE:LINE:COLUMN: `, the line and
/// column inside the file.
#[test]
fn every_message_points_into_its_file() {
    for path in cases() {
        let Ok(m) = message(&path) else { continue };
        if !only(&path).is_empty() {
            continue;
        }
        let name = path.file_name().expect("a file name").to_string_lossy();
        let rest = m
            .strip_prefix(&format!("{CORPUS}/{name}:"))
            .unwrap_or_else(|| panic!("{m:?} does not start with its file"));
        let mut parts = rest.splitn(3, ':');
        let line: usize = parts.next().and_then(|l| l.parse().ok()).expect("a line");
        let column: usize = parts.next().and_then(|c| c.parse().ok()).expect("a column");
        let bytes = std::fs::read(&path).expect("read a corpus file");
        let text = String::from_utf8_lossy(&bytes);
        let lines: Vec<&str> = text.split('\n').collect();
        assert!(
            line >= 1 && line <= lines.len(),
            "{m}: line {line} of {}",
            lines.len()
        );
        let width = lines[line - 1].chars().count();
        assert!(
            column >= 1 && column <= width + 1,
            "{m}: column {column} of a line of {width} characters"
        );
    }
}
