//! `coordinator replay` end to end: a full sweep of the test trainer run by a real coordinator
//! and two local workers, then its results.json replayed under the grid's stopping rule; and
//! the errors for a missing file, another grid's results and a grid without a rule.

use std::process::Command;
use std::time::Duration;

use sweep_tests::{Sweep, bin};

/// 9 configurations (learning rate x width) x 2 seeds of 6 epochs, with `stopping` (a TOML
/// table body, or none).
fn grid(learning_rates: &str, stopping: Option<&str>) -> String {
    let stopping = stopping.map_or(String::new(), |s| format!("[experiment.stopping]\n{s}\n"));
    format!(
        r#"
[sweep]
name = "replay"
seed = 0

[[experiment]]
name = "e"
dataset = "fashion-mnist"
trial_name = "t_{{learning_rate}}_{{hidden_width}}_{{seed}}"
checkpoint_every = 0

[experiment.fixed]
hidden_layers = 1
epochs = 6

[experiment.grid]
learning_rate = [{learning_rates}]
hidden_width = [8, 16, 32]
seed = [1, 2]

{stopping}"#
    )
}

const ASHA: &str = "rule = \"asha\"\nmin_epochs = 1\nreduction = 3";

fn replay(args: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new(bin("coordinator"))
        .arg("replay")
        .args(args)
        .output()
        .expect("run coordinator replay");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_finished_sweep_replays_under_its_grids_rule() {
    // The full sweep: the rule is not applied while it runs, so every trial trains to its end.
    let sweep = Sweep::new(&grid("0.001, 0.01, 0.1", None));
    let worker = bin("worker").display().to_string();
    let mut c = sweep.start_coordinator(&[
        "--local-workers",
        "2",
        "--worker-bin",
        &worker,
        "--local-worker-arg=--test-trainer=20ms",
        "--local-worker-arg=--offline",
        "--linger",
        "1s",
    ]);
    c.expect_exit_code(0, Duration::from_secs(120));
    let results = sweep.out().join("results.json");
    let recorded: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&results).expect("results.json"))
            .expect("JSON");
    let trials = recorded["trials"].as_array().expect("trials");
    assert_eq!(trials.len(), 18);
    let mut workers: Vec<&str> = trials.iter().filter_map(|t| t["worker"].as_str()).collect();
    workers.sort_unstable();
    workers.dedup();

    let asha = sweep.path().join("asha.toml");
    std::fs::write(&asha, grid("0.001, 0.01, 0.1", Some(ASHA))).expect("write");
    let (results, asha) = (results.display().to_string(), asha.display().to_string());

    let (code, out, err) = replay(&["--results", &results, "--grid", &asha, "--json"]);
    assert_eq!(code, Some(0), "{err}");
    let r: serde_json::Value = serde_json::from_str(&out).expect("JSON");
    let r = &r[0];
    assert_eq!(r["experiment"], "e");
    assert_eq!(r["rule"], "asha (min_epochs = 1, reduction = 3)");
    // The workers default to those the results name.
    assert_eq!(r["workers"], workers.len());
    assert_eq!(
        (r["trials"].as_u64(), r["configurations"].as_u64()),
        (Some(18), Some(9))
    );
    assert_eq!(r["epochs_full"], 18 * 6);
    let trained = r["epochs_trained"].as_u64().expect("a number");
    let stopped = r["stopped"].as_array().expect("stopped");
    assert!(!stopped.is_empty() && trained < 18 * 6, "{r}");
    // A stopped trial trains at most its rung's epochs; the others train all 6.
    let most: u64 = 18 * 6
        - stopped
            .iter()
            .map(|s| 6 - s["rung"].as_u64().expect("a rung"))
            .sum::<u64>();
    assert!(trained <= most, "{trained} > {most}: {r}");
    assert!(r["seconds"].as_f64() < r["seconds_full"].as_f64(), "{r}");
    assert_eq!(r["best_full"]["rank"], 1);
    assert!(r["best"]["rank"].as_u64().is_some(), "{r}");

    // The same replay as text, with 4 workers: the epochs it trains are those of the JSON
    // replay with 4 workers (decisions depend on the order epochs arrive in, so on the workers).
    let (code, out, err) = replay(&[
        "--results",
        &results,
        "--grid",
        &asha,
        "--workers",
        "4",
        "--json",
    ]);
    assert_eq!(code, Some(0), "{err}");
    let r4: serde_json::Value = serde_json::from_str(&out).expect("JSON");
    let trained = r4[0]["epochs_trained"].as_u64().expect("a number");
    let (code, out, err) = replay(&["--results", &results, "--grid", &asha, "--workers", "4"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(
        out.starts_with(
            "experiment e: asha (min_epochs = 1, reduction = 3) on test_accuracy (max), 4 \
             workers, 18 trials (9 configurations)\n"
        ),
        "{out}"
    );
    assert!(
        out.contains(&format!("epochs trained: {trained} of 108 (")),
        "{out}"
    );
    assert!(out.contains("best of the full sweep: "), "{out}");

    // Another grid's results: a learning rate the sweep did not run.
    let other = sweep.path().join("other.toml");
    std::fs::write(&other, grid("0.001, 0.01, 0.2", Some(ASHA))).expect("write");
    let other = other.display().to_string();
    let (code, _, err) = replay(&["--results", &results, "--grid", &other]);
    assert_eq!(code, Some(2));
    assert!(
        err.contains(&format!(
            "{results} has no result for 6 of the 18 trials of experiment \"e\" of {other} \
             (the first: \"t_0.2_8_1\"): are they the results of another grid"
        )),
        "{err}"
    );

    // The grid the sweep ran has no rule.
    let full = sweep.grid().display().to_string();
    let (code, _, err) = replay(&["--results", &results, "--grid", &full]);
    assert_eq!(code, Some(2));
    assert!(
        err.contains(&format!(
            "{full}: no experiment has an [experiment.stopping] table"
        )),
        "{err}"
    );

    // A missing file.
    let (code, _, err) = replay(&["--results", "/nonexistent/results.json", "--grid", &asha]);
    assert_eq!(code, Some(2));
    assert!(
        err.contains("--results: cannot read /nonexistent/results.json"),
        "{err}"
    );
}

/// Runs `grid` to its end with one local test-trainer worker of one slot; returns results.json.
fn run_one_worker(grid: &str) -> (Sweep, serde_json::Value) {
    let sweep = Sweep::new(grid);
    let worker = bin("worker").display().to_string();
    let mut c = sweep.start_coordinator(&[
        "--local-workers",
        "1",
        "--worker-bin",
        &worker,
        "--local-worker-arg=--test-trainer=10ms",
        "--local-worker-arg=--offline",
        "--linger",
        "1s",
    ]);
    c.expect_exit_code(0, Duration::from_secs(120));
    let text = std::fs::read_to_string(sweep.out().join("results.json")).expect("results.json");
    (sweep, serde_json::from_str(&text).expect("JSON"))
}

#[test]
fn a_replay_takes_the_decisions_a_live_run_takes() {
    // One worker of one slot: the live run's order of events is the replay's with one worker.
    let (full_sweep, _) = run_one_worker(&grid("0.001, 0.01, 0.1", None));
    let (_, live) = run_one_worker(&grid("0.001, 0.01, 0.1", Some(ASHA)));
    let trials = live["trials"].as_array().expect("trials");
    assert_eq!(trials.len(), 18);
    // The live run: each configuration it stopped (the trial name without its seed) and the
    // rung, and the epochs it trained in all.
    let config = |name: &str| {
        name.rsplit_once('_')
            .map(|(c, _)| c.to_owned())
            .expect("t_lr_w_seed")
    };
    let mut live_stopped = std::collections::BTreeMap::new();
    for t in trials {
        if t["status"] == "stopped" {
            let rung = t["stopped"]["epoch"].as_u64().expect("stopped.epoch");
            live_stopped.insert(config(t["name"].as_str().expect("name")), rung);
        }
    }
    let live_epochs: usize = trials
        .iter()
        .map(|t| t["epochs"].as_array().map_or(0, Vec::len))
        .sum();
    assert!(!live_stopped.is_empty(), "the rule stopped nothing live");

    let asha = full_sweep.path().join("asha.toml");
    std::fs::write(&asha, grid("0.001, 0.01, 0.1", Some(ASHA))).expect("write");
    let results = full_sweep.out().join("results.json").display().to_string();
    let (code, out, err) = replay(&[
        "--results",
        &results,
        "--grid",
        &asha.display().to_string(),
        "--workers",
        "1",
        "--json",
    ]);
    assert_eq!(code, Some(0), "{err}");
    let r: serde_json::Value = serde_json::from_str(&out).expect("JSON");
    let replayed: std::collections::BTreeMap<String, u64> = r[0]["stopped"]
        .as_array()
        .expect("stopped")
        .iter()
        .map(|s| {
            (
                config(s["trial"].as_str().expect("trial")),
                s["rung"].as_u64().expect("rung"),
            )
        })
        .collect();
    assert_eq!(replayed, live_stopped, "replay {r}");
    assert_eq!(
        r[0]["epochs_trained"].as_u64(),
        Some(live_epochs as u64),
        "{r}"
    );
}
