//! `OUT/tensorboard/`: a real sweep (local workers, the test trainer) writes TensorBoard event
//! files, and TensorBoard's own Python reader (`EventAccumulator`, the HParams plugin's
//! `plugin_data_pb2`) reads back every trial's curves, equal to `results.json`'s epochs, and its
//! hyperparameters, and the experiment's hyperparameters and metrics.
//!
//! TensorBoard comes from PyPI into a venv under `$SWEEP_CACHE` (default `~/.cache/sweep`),
//! made by this test the first time (pinned in `tests/tensorboard/requirements.txt`). When PyPI
//! cannot be reached the test is skipped with a message, or fails where
//! `SWEEP_REQUIRE_TENSORBOARD` is set.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use sweep_tests::{Sweep, bin, faults};

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ is in the repository")
        .to_path_buf()
}

fn cache_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("SWEEP_CACHE").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    let home = std::env::var_os("HOME").expect("HOME or SWEEP_CACHE is set");
    PathBuf::from(home).join(".cache/sweep")
}

fn pypi_reachable() -> bool {
    Command::new("python3")
        .args([
            "-c",
            "import urllib.request; urllib.request.urlopen('https://pypi.org/simple/tensorboard/', timeout=15)",
        ])
        .status()
        .is_ok_and(|s| s.success())
}

/// The venv's python with TensorBoard, made when missing; `None` (the test skips) when PyPI
/// cannot be reached and `SWEEP_REQUIRE_TENSORBOARD` is not set.
fn tensorboard_python() -> Option<PathBuf> {
    let req = repo_root().join("tests/tensorboard/requirements.txt");
    let text = std::fs::read_to_string(&req).expect("tests/tensorboard/requirements.txt");
    let pin = text
        .lines()
        .find(|l| l.starts_with("tensorboard=="))
        .expect("requirements.txt pins tensorboard")
        .trim_start_matches("tensorboard==")
        .to_owned();
    let venv = cache_dir().join(format!("tensorboard-{pin}"));
    let python = venv.join("bin/python");
    let ready = |python: &Path| {
        Command::new(python)
            .args([
                "-c",
                "import tensorboard.backend.event_processing.event_accumulator",
            ])
            .status()
            .is_ok_and(|s| s.success())
    };
    if ready(&python) {
        return Some(python);
    }
    let _ = std::fs::remove_dir_all(&venv);
    let made = Command::new("python3")
        .arg("-m")
        .arg("venv")
        .arg(&venv)
        .output()
        .expect("python3 runs");
    assert!(
        made.status.success(),
        "python3 -m venv {} failed (Debian: apt-get install python3-venv): {}",
        venv.display(),
        String::from_utf8_lossy(&made.stderr)
    );
    let pip = Command::new(venv.join("bin/pip"))
        .args(["install", "--quiet", "--disable-pip-version-check", "-r"])
        .arg(&req)
        .output()
        .expect("pip runs");
    if pip.status.success() && ready(&python) {
        return Some(python);
    }
    let _ = std::fs::remove_dir_all(&venv);
    let why = String::from_utf8_lossy(&pip.stderr).into_owned();
    let required =
        std::env::var_os("SWEEP_REQUIRE_TENSORBOARD").is_some_and(|v| !v.is_empty() && v != "0");
    if pypi_reachable() || required {
        panic!("pip install -r {} failed: {why}", req.display());
    }
    eprintln!(
        "SKIPPED: TensorBoard is not installed and PyPI (https://pypi.org) cannot be reached, so \
         its reader cannot check the event files (pip said: {why})"
    );
    None
}

fn read_events(python: &Path, logdir: &Path) -> serde_json::Value {
    let out = Command::new(python)
        .arg(repo_root().join("tests/tensorboard/read_events.py"))
        .arg(logdir)
        .output()
        .expect("python runs");
    assert!(
        out.status.success(),
        "TensorBoard's reader failed on {}: {}",
        logdir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("read_events.py prints JSON")
}

#[test]
fn tensorboard_reads_every_trials_curves_and_hyperparameters() {
    let Some(python) = tensorboard_python() else {
        return;
    };
    let sweep = Sweep::new(&faults::grid("tb", 3, 3, 0));
    let worker = bin("worker").display().to_string();
    let mut c = sweep.start_coordinator(&[
        "--local-workers",
        "2",
        "--worker-bin",
        &worker,
        "--local-worker-arg=--test-trainer=10ms",
        "--local-worker-arg=--offline",
        "--local-worker-arg=--patience=10s",
        "--linger",
        "1s",
    ]);
    c.expect_exit_code(0, Duration::from_secs(90));
    let results = sweep.results();
    let runs = read_events(&python, &sweep.out().join("tensorboard"));

    let experiment = &runs["."]["hparams"]["_hparams_/experiment"]["experiment"];
    let metrics: Vec<&str> = experiment["metric_infos"]
        .as_array()
        .expect("metric_infos")
        .iter()
        .filter_map(|m| m["name"]["tag"].as_str())
        .collect();
    assert_eq!(metrics, ["train_loss", "train_accuracy", "test_accuracy"]);
    let seeds = experiment["hparam_infos"]
        .as_array()
        .expect("hparam_infos")
        .iter()
        .find(|h| h["name"] == "seed")
        .expect("seed is a hyperparameter");
    assert_eq!(seeds["domain_discrete"], serde_json::json!([1.0, 2.0, 3.0]));

    assert_eq!(results.trials.len(), 3);
    for t in &results.trials {
        let run = &runs[&*t.name];
        assert!(run.is_object(), "no run {} in {runs}", t.name);
        let start = &run["hparams"]["_hparams_/session_start_info"]["session_start_info"];
        assert_eq!(
            start["hparams"]["seed"],
            serde_json::json!(t.params.seed as f64)
        );
        assert_eq!(start["hparams"]["hidden_width"], serde_json::json!(8.0));
        assert_eq!(
            start["hparams"]["activation"],
            serde_json::json!(t.params.activation)
        );
        let end = &run["hparams"]["_hparams_/session_end_info"]["session_end_info"];
        assert_eq!(end["status"], "STATUS_SUCCESS", "{}", t.name);
        assert_eq!(t.epochs.len(), 3);
        for (tag, value) in [
            (
                "train_loss",
                (|e: &sweep_common::EpochMetrics| e.train_loss) as fn(&_) -> f64,
            ),
            ("train_accuracy", |e| e.train_accuracy),
            ("test_accuracy", |e| e.test_accuracy),
        ] {
            let want: Vec<serde_json::Value> = t
                .epochs
                .iter()
                .map(|e| serde_json::json!([e.epoch, f64::from(value(e) as f32)]))
                .collect();
            assert_eq!(
                run["scalars"][tag],
                serde_json::Value::Array(want),
                "{} {tag}",
                t.name
            );
        }
    }
}
