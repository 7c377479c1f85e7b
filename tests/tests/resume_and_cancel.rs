//! Rerunning the same command resumes a sweep from its state directory: after a clean end (an
//! edited grid file schedules only its new cells and keeps the finished ones), and after the
//! coordinator was stopped with SIGTERM mid-sweep. And `coordinator cancel` ends trials.

use std::collections::BTreeSet;
use std::process::Command;
use std::time::Duration;

use sweep_common::results::Status;
use sweep_tests::ResultsExt as _;
use sweep_tests::faults;
use sweep_tests::{Signal, Sweep, Worker, bin};

const EPOCH: Duration = Duration::from_millis(30);

/// The trials `results.json` says the worker named `worker` trained.
fn trained(sweep: &Sweep, worker: &str) -> BTreeSet<String> {
    sweep.results().trained_by(worker).into_iter().collect()
}

fn names(list: &[&str]) -> BTreeSet<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

#[test]
fn edited_grid_trains_only_new_cells() {
    let sweep = Sweep::new(&faults::grid("edit", 4, 3, 0));
    let mut c = sweep.start_coordinator_at("127.0.0.1:0", &["--linger", "1s"]);
    let mut w = Worker::start_test("W1", &c.url(), EPOCH, 2);
    c.expect_exit_code(0, Duration::from_secs(60));
    w.wait_exit(Duration::from_secs(30));
    assert_eq!(trained(&sweep, "W1"), names(&["t_1", "t_2", "t_3", "t_4"]));
    let first = sweep.results();

    // Same command on a finished sweep: nothing to do, the report is written again.
    let mut again = sweep.start_coordinator_at("127.0.0.1:0", &["--linger", "1s"]);
    again.expect_exit_code(0, Duration::from_secs(30));
    // It resumed the finished sweep from its database: the same results, nothing trained again.
    let resumed = sweep.results();
    faults::assert_same_results(&resumed, &first);
    for (t, before) in resumed.trials.iter().zip(&first.trials) {
        assert_eq!(
            t.attempts, before.attempts,
            "{} was not trained again",
            t.name
        );
    }

    // t_1 dropped, t_5 and t_6 added.
    let edited = faults::grid("edit", 6, 3, 0).replace("seed = [1, ", "seed = [");
    std::fs::write(sweep.grid(), edited).expect("edit the grid file");
    let mut c = sweep.start_coordinator_at("127.0.0.1:0", &["--linger", "1s"]);
    let mut w = Worker::start_test("W2", &c.url(), EPOCH, 2);
    c.expect_exit_code(0, Duration::from_secs(60));
    w.wait_exit(Duration::from_secs(30));
    assert_eq!(
        trained(&sweep, "W2"),
        names(&["t_5", "t_6"]),
        "only the new cells are trained"
    );
    let log = c.stderr();
    assert!(
        log.contains("no longer in the grid file") && log.contains("trials=t_1"),
        "the dropped cell is reported:\n{log}"
    );
    let second = sweep.results();
    assert_eq!(second.trials.len(), 5);
    for t in &second.trials {
        assert_eq!(t.status, Status::Succeeded, "{}", t.name);
        if let Some(before) = first.trials.iter().find(|b| b.id == t.id) {
            assert_eq!(t.attempts, 1, "{} was not trained again", t.name);
            assert_eq!(t.test_confusion, before.test_confusion, "{}", t.name);
        }
    }
    // The dropped trial is still in the database, with its result.
    let kept = faults::recorded(&sweep.database(), "t_1");
    assert!(
        matches!(&kept[..], [t] if !t.in_grid && t.state == "succeeded"),
        "t_1 kept: {kept:?}"
    );
}

#[test]
fn sigterm_then_rerun_resumes_without_retraining() {
    let grid = faults::grid("stop", 10, 6, 2);
    let epoch = Duration::from_millis(100);
    let (baseline, _) = faults::fault_free_run(&grid, 1, 2, epoch);
    let sweep = Sweep::new(&grid);
    let mut c = sweep.start_coordinator_at("127.0.0.1:0", sweep_tests::QUICK_LEASES);
    let listen = c.addr().to_string();
    let mut w = Worker::start_test("W", &c.url(), epoch, 2);
    c.wait_for_succeeded(3, Duration::from_secs(90));
    c.signal(Signal::SIGTERM);
    c.expect_exit_code(130, Duration::from_secs(10));
    assert!(c.stdout().contains("trials unfinished"), "{}", c.stdout());
    let mut c = sweep.start_coordinator_at(&listen, sweep_tests::QUICK_LEASES);
    c.expect_exit_code(0, Duration::from_secs(60));
    w.wait_exit(Duration::from_secs(30));
    let trained = w.trials_trained();
    assert_eq!(
        trained.len(),
        10,
        "each trial trained to the end once: {trained:?}"
    );
    faults::assert_same_results(&sweep.results(), &baseline);
    faults::audit(&sweep.database(), 10, 6);
}

#[test]
fn cancel_ends_pending_and_running_trials() {
    let sweep = Sweep::new(&faults::grid("cancel", 6, 20, 0));
    let mut c =
        sweep.start_coordinator_at("127.0.0.1:0", &["--heartbeat", "200ms", "--linger", "1s"]);
    let mut w = Worker::start_test("W", &c.url(), Duration::from_millis(100), 1);
    c.wait_for_epoch_on("W", 1, Duration::from_secs(30));
    let cancel = |args: &[&str]| {
        Command::new(bin("coordinator"))
            .args(["cancel", "--addr", &c.url()])
            .args(args)
            .output()
            .expect("run coordinator cancel")
    };
    let out = cancel(&["--trial", "t_1", "--trial", "t_4", "--reason", "not needed"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "cancelled 2 trials"
    );
    let out = cancel(&["--trial", "t_99"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no trial or experiment named t_99"));
    // The running trial stops at its next call (an epoch report or a heartbeat).
    w.wait_for_stderr_line("stopping the trial trial=t_1 ", Duration::from_secs(10));
    let out = cancel(&["--all", "--reason", "enough"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    c.expect_exit_code(1, Duration::from_secs(30));
    w.wait_exit(Duration::from_secs(30));
    let results = sweep.results();
    let t1 = results.trial("t_1");
    assert_eq!(t1.status, Status::Failed);
    assert_eq!(t1.failure.as_deref(), Some("cancelled: not needed"));
    assert_eq!(
        results.trial("t_6").failure.as_deref(),
        Some("cancelled: enough")
    );
    assert!(!sweep.results().trained_by("W").contains(&"t_1".to_owned()));
}
