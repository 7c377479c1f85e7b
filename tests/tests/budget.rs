//! `[sweep] max_hours` end to end (issue 21), with the workers' test trainer: once the estimate
//! from the measured epochs says the next trial would exceed the budget, the coordinator leases
//! no more, the running trial finishes, the sweep ends cleanly (exit code 0), and the trials
//! left are recorded as stopped by the budget in `results.json` and counted in `report.md`.

use std::time::Duration;

use sweep_common::results::Status;
use sweep_tests::{Sweep, Worker};

const EPOCH: Duration = Duration::from_millis(200);

/// Eight trials of two epochs on a budget of one device-second: the first trial always runs
/// (nothing measured yet), and at most a few fit after it.
const GRID: &str = r#"
[sweep]
name = "budget"
max_hours = 0.000277778

[[experiment]]
name = "e"
dataset = "fashion-mnist"
trial_name = "w{hidden_width}"

[experiment.fixed]
hidden_layers = 1
epochs = 2

[experiment.grid]
hidden_width = [8, 9, 10, 11, 12, 13, 14, 15]
"#;

#[test]
fn the_budget_stops_leasing_and_the_rest_is_reported_as_not_run() {
    let sweep = Sweep::new(GRID);
    let mut c = sweep.start_coordinator_at("127.0.0.1:0", sweep_tests::QUICK_LEASES);
    let mut w = Worker::start_test("w", &c.url(), EPOCH, 1);
    c.expect_exit_code(0, Duration::from_secs(120));
    w.expect_exit_code(0, Duration::from_secs(30));

    let r = sweep.results();
    assert!(r.finished);
    let succeeded = r.trials.iter().filter(|t| t.succeeded()).count();
    let by_budget: Vec<_> = r.trials.iter().filter(|t| t.stopped_by_budget()).collect();
    assert!(succeeded >= 1, "the first trial always runs");
    assert!(
        !by_budget.is_empty(),
        "eight trials of 0.4 s do not fit in 1 s"
    );
    assert_eq!(succeeded + by_budget.len(), r.trials.len());
    for t in &by_budget {
        assert_eq!(t.status, Status::Stopped);
        assert!(t.epochs.is_empty(), "{} ran epochs", t.name);
        let reason = &t.stopped.as_ref().map(|s| s.reason.to_string());
        assert!(
            reason.as_deref().is_some_and(|r| r.contains("max_hours")),
            "{reason:?}"
        );
    }
    let path = sweep.out().join("report.md");
    let summary = std::fs::read_to_string(&path).expect("report.md");
    assert!(
        summary.contains(&format!("{} not run (budget)", by_budget.len())),
        "{summary}"
    );
    assert!(
        summary.contains(&format!("max_hours) stopped {} trial", by_budget.len())),
        "{summary}"
    );
    assert!(!summary.contains("Early stopping"), "{summary}");
}
