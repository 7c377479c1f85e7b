//! Trials that failed for good can be retried (issue 14, item 5): `coordinator retry` on a
//! running sweep, `--retry-failed` when the same command is run again. The earlier attempts stay
//! in the results, cancelled trials stay cancelled unless named, and the retried trials end with
//! the fault-free run's numbers.

use std::time::Duration;

use sweep_common::results::Status;
use sweep_tests::ResultsExt as _;
use sweep_tests::faults::{self, assert_same_results, audit, fault_free_run};
use sweep_tests::{Coordinator, Sweep, Worker, text};

const EPOCH: Duration = Duration::from_millis(50);
const FLAGS: [&str; 6] = [
    "--lease-ttl",
    "1s",
    "--heartbeat",
    "200ms",
    "--linger",
    "1s",
];

/// A grid of `trials` trials of `epochs` epochs, one attempt each.
fn grid(trials: usize, epochs: u32) -> String {
    faults::grid("retry", trials, epochs, 0).replace("max_attempts = 50", "max_attempts = 1")
}

/// Starts worker `name`, lets it report some epochs of its first trial (as the coordinator's
/// status shows them), and kills it: with one attempt allowed, that trial fails for good once
/// its lease expires. Returns the worker and the trial's name.
fn fail_first_trial(name: &str, c: &Coordinator) -> (Worker, String) {
    let mut w = Worker::start_test(name, &c.url(), EPOCH, 1);
    let trial = c.wait_for_epoch_on(name, 3, Duration::from_secs(30));
    w.kill();
    (w, trial)
}

#[test]
fn coordinator_retry_requeues_failed_trials_of_a_running_sweep() {
    let grid = grid(4, 20);
    let (baseline, _) = fault_free_run(&grid, 1, 2, EPOCH);
    let sweep = Sweep::new(&grid);
    let mut c = sweep.start_coordinator_at("127.0.0.1:0", &FLAGS);
    let (_killed, trial) = fail_first_trial("A", &c);
    c.wait_for_trial(&trial, "to fail for good", Duration::from_secs(30), |t| {
        t["state"] == "failed"
    });
    let out = c.operator(&["cancel", "--trial", "t_2"]);
    assert!(out.status.success(), "{}", text(&out.stderr));

    // --failed takes the failed trial, not the cancelled one.
    let out = c.operator(&["retry", "--failed"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "queued 1 failed trials again");
    let out = c.operator(&["retry", "--trial", "t_2", "--trial", "t_3"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "queued 1 failed trials again",
        "t_2 was cancelled, t_3 has not failed"
    );
    let out = c.operator(&["retry", "--trial", "nope"]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("no trial or experiment named nope"),
        "{}",
        text(&out.stderr)
    );

    let mut b = Worker::start_test("B", &c.url(), EPOCH, 2);
    c.expect_exit_code(0, Duration::from_secs(60));
    b.expect_exit_code(0, Duration::from_secs(30));
    let results = sweep.results();
    assert_same_results(&results, &baseline);
    audit(&sweep.database(), 4, 20);
    let t1 = results.trial("t_1");
    assert_eq!(t1.attempts, 2);
    assert_eq!(t1.failed_attempts.len(), 1, "{:?}", t1.failed_attempts);
    assert_eq!(
        t1.failed_attempts[0].kind,
        sweep_common::FailureKind::LeaseExpired
    );
    assert_eq!(results.trial("t_2").status, Status::Succeeded);
}

#[test]
fn retry_failed_flag_requeues_them_when_the_sweep_is_run_again() {
    let grid = grid(2, 10);
    let (baseline, _) = fault_free_run(&grid, 1, 1, EPOCH);
    let sweep = Sweep::new(&grid);
    let mut c = sweep.start_coordinator_at("127.0.0.1:0", &FLAGS);
    let _killed = fail_first_trial("A", &c);
    let mut b = Worker::start_test("B", &c.url(), EPOCH, 1);
    c.expect_exit_code(1, Duration::from_secs(60));
    b.expect_exit_code(0, Duration::from_secs(30));
    assert_eq!(sweep.results().trial("t_1").status, Status::Failed);

    // The same command again: the failed trial stays failed.
    let mut again = sweep.start_coordinator_at("127.0.0.1:0", &FLAGS);
    again.expect_exit_code(1, Duration::from_secs(30));
    assert!(
        again.stdout().contains("1 succeeded, 1 failed"),
        "{}",
        again.stdout()
    );

    // With --retry-failed it is trained again, from the start.
    let mut flags = FLAGS.to_vec();
    flags.push("--retry-failed");
    let mut c = sweep.start_coordinator_at("127.0.0.1:0", &flags);
    let mut w = Worker::start_test("C", &c.url(), EPOCH, 1);
    c.expect_exit_code(0, Duration::from_secs(60));
    w.expect_exit_code(0, Duration::from_secs(30));
    assert_eq!(
        sweep.results().trained_by("C"),
        ["t_1"],
        "only the failed trial"
    );
    let results = sweep.results();
    assert_same_results(&results, &baseline);
    audit(&sweep.database(), 2, 10);
    let t1 = results.trial("t_1");
    assert_eq!(t1.attempts, 2);
    assert_eq!(t1.failed_attempts.len(), 1, "{:?}", t1.failed_attempts);
    assert_eq!(
        t1.failed_attempts[0].kind,
        sweep_common::FailureKind::LeaseExpired
    );
    assert!(
        c.stderr()
            .contains("--retry-failed: trials that had failed for good are queued again"),
        "{}",
        c.stderr()
    );
    // The report shows the earlier failure too.
    let report = std::fs::read_to_string(sweep.out().join("report.md")).expect("report.md");
    assert!(
        report.contains("t_1, attempt 1 (lease_expired): lease expired"),
        "{report}"
    );
}
