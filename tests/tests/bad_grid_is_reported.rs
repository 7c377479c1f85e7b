//! A grid file the coordinator cannot use: it exits 2 before serving anything, with an error that
//! names the file, line, column and key.

use std::time::Duration;

use sweep_tests::{Process, Sweep};

/// Line 9 holds the bad value; `%LR%` is replaced per case.
const GRID: &str = r#"[sweep]
name = "bad"

[[experiment]]
name = "e"
dataset = "fashion-mnist"

[experiment.fixed]
%LR%
epochs = 1
"#;

/// Runs the coordinator on `grid` and checks that it exits 2 without ever serving and without
/// writing anything; returns its stderr.
fn rejected(grid: &str) -> (Sweep, String) {
    let sweep = Sweep::new(grid);
    let mut coordinator = Process::spawn("coordinator", sweep.coordinator_command(&[]));
    coordinator.expect_exit_code(2, Duration::from_secs(30));
    let output = coordinator.output();
    assert!(
        !output.stdout.contains("listening on"),
        "it served:\n{}",
        output.stdout
    );
    assert!(
        !sweep.out().exists(),
        "it created its output folder {}",
        sweep.out().display()
    );
    assert!(output.stderr.starts_with("error: "), "{}", output.stderr);
    (sweep, output.stderr)
}

#[test]
fn bad_grid_is_reported() {
    // An invalid value: file, line 9, column of the value, key path, reason.
    let (sweep, stderr) = rejected(&GRID.replace("%LR%", "learning_rate = -1"));
    let expected = format!(
        "{}:9:17: experiment[0].fixed.learning_rate: must be a number greater than 0",
        sweep.grid().display()
    );
    assert!(
        stderr.contains(&expected),
        "expected {expected:?} in:\n{stderr}"
    );

    // An unknown key: named, with where it is.
    let (sweep, stderr) = rejected(&GRID.replace("%LR%", "learning_rat = 0.1"));
    let expected = format!("{}:9:1: ", sweep.grid().display());
    assert!(
        stderr.contains(&expected) && stderr.contains("unknown key `learning_rat`"),
        "expected {expected:?} and the unknown key in:\n{stderr}"
    );

    // A file that is not there.
    let sweep = Sweep::new("");
    std::fs::remove_file(sweep.grid()).expect("remove the grid file");
    let mut coordinator = Process::spawn("coordinator", sweep.coordinator_command(&[]));
    coordinator.expect_exit_code(2, Duration::from_secs(30));
    let stderr = coordinator.stderr();
    assert!(
        stderr.contains("cannot read grid file")
            && stderr.contains(&*sweep.grid().to_string_lossy()),
        "{stderr}"
    );
}
