//! A coordinator started on an output folder that already holds a sweep's results (with no state
//! database, or an empty one) refuses to run, and leaves those results untouched.

use std::time::Duration;

use sweep_tests::{Process, Sweep};

const GRID: &str = r#"[sweep]
name = "again"

[[experiment]]
name = "e"
dataset = "fashion-mnist"

[experiment.fixed]
epochs = 1
"#;

#[test]
fn results_are_never_overwritten() {
    let sweep = Sweep::new(GRID);
    std::fs::create_dir_all(sweep.out()).unwrap();
    let previous = r#"{"format": 1, "sweep": "earlier", "trials": []}"#;
    let results = sweep.out().join("results.json");
    std::fs::write(&results, previous).unwrap();

    let mut coordinator = Process::spawn("coordinator", sweep.coordinator_command(&[]));
    // It could not start (README.md, "Exit statuses").
    coordinator.expect_exit_code(2, Duration::from_secs(30));
    let output = coordinator.output();
    assert!(
        !output.stdout.contains("listening on"),
        "it served:\n{}",
        output.stdout
    );
    assert!(
        output
            .stderr
            .contains("already holds the results of a sweep (results.json)"),
        "stderr:\n{}",
        output.stderr
    );
    assert_eq!(std::fs::read_to_string(&results).unwrap(), previous);
}

/// An empty `sweep.db` (or any file without the sweep's schema) beside a finished `results.json`
/// is not taken for a fresh start: the coordinator exits 2 and touches neither file.
#[test]
fn an_empty_database_beside_results_is_refused() {
    let sweep = Sweep::new(GRID);
    let state = sweep.out().join("state");
    std::fs::create_dir_all(&state).unwrap();
    let previous = r#"{"format": 1, "sweep": "again", "trials": []}"#;
    let results = sweep.out().join("results.json");
    std::fs::write(&results, previous).unwrap();
    let db = state.join("sweep.db");
    std::fs::write(&db, b"").unwrap();

    let mut coordinator = Process::spawn("coordinator", sweep.coordinator_command(&[]));
    coordinator.expect_exit_code(2, Duration::from_secs(30));
    let output = coordinator.output();
    assert!(
        !output.stdout.contains("listening on"),
        "it served:\n{}",
        output.stdout
    );
    assert!(
        output.stderr.contains("is not a sweep's state database")
            && output.stderr.contains(&db.display().to_string()),
        "stderr:\n{}",
        output.stderr
    );
    assert_eq!(std::fs::read_to_string(&results).unwrap(), previous);
    assert_eq!(std::fs::metadata(&db).unwrap().len(), 0);
}
