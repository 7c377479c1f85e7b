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
    assert_clean_epochs(report, trials, 5);
}

fn assert_clean_epochs(report: &serde_json::Value, trials: u64, epochs: u64) {
    assert_eq!(report["trials_completed"], trials, "{report:#}");
    assert_eq!(report["trials_succeeded"], trials, "{report:#}");
    assert_eq!(report["lease_expiries"], 0, "{report:#}");
    assert_eq!(report["leases_revoked"], 0, "{report:#}");
    assert_eq!(report["leases_lost"], 0, "{report:#}");
    assert_eq!(report["errors"], serde_json::json!({}), "{report:#}");
    assert_eq!(report["problems"], serde_json::json!([]), "{report:#}");
    assert_eq!(report["epoch_reports"], trials * epochs, "{report:#}");
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

/// `--grid G --metrics-from R` (bench/search/live.py): TPE proposes at run time over the
/// recorded space's values, and every trial reports the metrics the recorded sweep has for its
/// configuration, so results.json's accuracies are the recorded ones.
#[test]
fn loadgen_replays_a_recorded_sweep_for_a_live_sampler() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let recorded = root.join("bench/anchors/data/fashion-space.results.json.gz");
    let dir = tempfile::tempdir().expect("a temporary folder");
    let grid = dir.path().join("live.toml");
    std::fs::write(
        &grid,
        r#"
[sweep]
name = "fashion-space"
seed = 0

[[experiment]]
name = "space"
dataset = "fashion-mnist"
checkpoint_every = 0

[experiment.fixed]
batch_size = 128
epochs = 1
train_fraction = 0.25

[experiment.sample]
trials = 16
method = "tpe"
seed = 3

[experiment.sample.space]
activation = { choice = ["relu", "tanh", "sigmoid"] }
hidden_layers = { choice = [1, 2] }
hidden_width = { choice = [16, 32, 64, 128, 256, 512] }
learning_rate = { choice = [0.0001, 0.0003, 0.001, 0.003, 0.01, 0.03] }
"#,
    )
    .expect("the grid file");
    let kept = dir.path().join("run");
    let report = loadgen(&[
        "--workers",
        "4",
        "--grid",
        grid.to_str().expect("a UTF-8 path"),
        "--metrics-from",
        recorded.to_str().expect("a UTF-8 path"),
        "--keep",
        kept.to_str().expect("a UTF-8 path"),
    ]);
    assert_clean_epochs(&report, 16, 1);

    let read = |path: &std::path::Path| -> serde_json::Value {
        let bytes = std::fs::read(path).expect("a results file");
        let text = if path.extension().is_some_and(|e| e == "gz") {
            let mut text = String::new();
            std::io::Read::read_to_string(
                &mut flate2::read::GzDecoder::new(bytes.as_slice()),
                &mut text,
            )
            .expect("gzipped text");
            text
        } else {
            String::from_utf8(bytes).expect("UTF-8")
        };
        serde_json::from_str(&text).expect("a results.json")
    };
    let key = |t: &serde_json::Value| {
        let p = &t["params"];
        format!(
            "{} {} {} {}",
            p["activation"], p["hidden_layers"], p["hidden_width"], p["learning_rate"]
        )
    };
    let recorded = read(&recorded);
    let by_config: std::collections::HashMap<String, &serde_json::Value> = recorded["trials"]
        .as_array()
        .expect("trials")
        .iter()
        .map(|t| (key(t), &t["test_accuracy"]))
        .collect();
    let live = read(&kept.join("out/results.json"));
    let trials = live["trials"].as_array().expect("trials");
    assert_eq!(trials.len(), 16);
    let mut configs = std::collections::HashSet::new();
    for t in trials {
        assert_eq!(t["status"], "succeeded", "{t:#}");
        assert!(configs.insert(key(t)), "configuration {} twice", key(t));
        assert_eq!(
            Some(&&t["test_accuracy"]),
            by_config.get(&key(t)),
            "trial {} does not report its recorded accuracy",
            t["name"]
        );
    }
}
