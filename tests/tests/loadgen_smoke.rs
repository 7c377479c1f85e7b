//! The load generator (`loadgen`) runs a small sweep through the real coordinator with simulated
//! workers: it exits 0, and its JSON report says every trial completed, with no failed call and
//! no lease taken back. No timing is checked.

use std::process::Command;
use std::time::Duration;

use sweep_tests::{Process, bin};

/// Runs `loadgen` with `args` and returns its JSON report.
fn loadgen(args: &[&str]) -> serde_json::Value {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let json = dir.path().join("report.json");
    let mut command = Command::new(bin("loadgen"));
    command
        .arg("--coordinator-bin")
        .arg(bin("coordinator"))
        .arg("--json")
        .arg(&json)
        .args(["--timeout", "5m"])
        .args(args);
    let mut process = Process::spawn("loadgen", command);
    process.expect_exit_code(0, Duration::from_secs(600));
    let text = std::fs::read_to_string(&json).expect("the JSON report");
    serde_json::from_str(&text).expect("a JSON report")
}

fn assert_clean(report: &serde_json::Value, trials: u64) {
    assert_eq!(report["trials_completed"], trials, "{report:#}");
    assert_eq!(report["trials_succeeded"], trials, "{report:#}");
    assert_eq!(report["lease_expiries"], 0, "{report:#}");
    assert_eq!(report["leases_revoked"], 0, "{report:#}");
    assert_eq!(report["leases_lost"], 0, "{report:#}");
    assert_eq!(report["errors"], serde_json::json!({}), "{report:#}");
    assert_eq!(report["problems"], serde_json::json!([]), "{report:#}");
    assert_eq!(report["epoch_reports"], trials * 5, "{report:#}");
}

#[test]
fn loadgen_completes_every_trial_on_shared_connections() {
    let report = loadgen(&["--workers", "20", "--trials", "200", "--epochs", "5"]);
    assert_clean(&report, 200);
    assert_eq!(report["config"]["connections"], 2, "{report:#}");
}

#[test]
fn loadgen_completes_every_trial_with_a_connection_per_worker_and_heartbeats() {
    let report = loadgen(&[
        "--workers",
        "10",
        "--trials",
        "30",
        "--epochs",
        "5",
        "--epoch-time",
        "20ms",
        "--heartbeat",
        "50ms",
        "--connections",
        "per-worker",
    ]);
    assert_clean(&report, 30);
    assert_eq!(report["config"]["connections"], 10, "{report:#}");
}

#[test]
fn loadgen_drives_a_tpe_search_to_its_exact_budget() {
    // Ten configurations are drawn with the grid, the other 30 proposed by TPE at run time,
    // fitted on the results so far.
    let report = loadgen(&[
        "--workers",
        "8",
        "--trials",
        "40",
        "--epochs",
        "5",
        "--sample",
        "tpe",
    ]);
    assert_clean(&report, 40);
}

#[test]
fn loadgen_sends_epochs_in_batches_when_asked() {
    // 5 epochs two at a time: calls of 2, 2 and 1.
    let report = loadgen(&[
        "--workers",
        "10",
        "--trials",
        "50",
        "--epochs",
        "5",
        "--epochs-per-call",
        "2",
    ]);
    assert_clean(&report, 50);
    assert_eq!(report["report_epoch_calls"], 50 * 3, "{report:#}");
}
