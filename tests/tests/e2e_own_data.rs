//! A user's own `.npz` (issue 18) through the real coordinator and worker: the grid names it
//! relative to itself, the coordinator reads its facts at load, a worker on the same machine
//! trains on it (x_train, tested on x_test), the class names reach the results; a worker that
//! cannot find the file (elsewhere, its --data-dir without it) says where it looked and stops,
//! and one with the file in its --data-dir finishes the sweep.

use std::time::Duration;

use sweep_data::fixtures::{OwnNpz, write_own_npz, write_own_npz_f32};
use sweep_tests::{Sweep, Worker};

const GRID: &str = r#"
[sweep]
name = "own"
seed = 3
max_attempts = 1

[[experiment]]
name = "own"
dataset = "data/mine.npz"
trial_name = "own_{model}"

[experiment.fixed]
batch_size = 16
epochs = 2
learning_rate = 0.01

[experiment.grid]
model = ["mlp", "conv(4,3,p=1) bn relu maxpool(2) flatten linear(3)"]
"#;

const NAMES: [&str; 3] = ["circle", "square", "star"];

fn own_npz() -> OwnNpz {
    OwnNpz {
        hwc: [8, 8, 2],
        classes: 3,
        train: 120,
        test: 30,
        class_names: Some(NAMES.map(String::from).to_vec()),
        seed: 5,
    }
}

#[test]
fn a_sweep_on_my_own_npz() {
    let sweep = Sweep::new(GRID);
    let data = sweep.mkdir("data");
    write_own_npz(&data.join("mine.npz"), &own_npz()).expect("write the .npz");
    let empty = sweep.mkdir("empty");

    let mut c = sweep.start_coordinator(&[]);
    // Same machine: it reads the file where the coordinator did, whatever its --data-dir.
    let mut w = Worker::start("W", &c, &empty, 1);
    c.expect_exit_code(0, Duration::from_secs(120));
    w.expect_exit_code(0, Duration::from_secs(30));

    let results = sweep.results();
    let e = &results.experiments[0];
    assert_eq!(e.dataset.name(), "data/mine.npz");
    assert_eq!(e.classes, NAMES);
    assert_eq!(results.trials.len(), 2);
    for t in &results.trials {
        assert_eq!(
            t.status,
            sweep_common::results::Status::Succeeded,
            "{}",
            t.name
        );
        // x_train and x_test were loaded; the test part is x_test, whatever split_ratio says.
        assert_eq!(t.dataset_images, Some(150), "{}", t.name);
        let test = t.test_confusion.as_ref().expect("a test confusion matrix");
        assert_eq!(test.total(), 30, "{}", t.name);
        let train = t
            .train_confusion
            .as_ref()
            .expect("a train confusion matrix");
        assert_eq!(train.total(), 120, "{}", t.name);
        let acc = t.test_accuracy.unwrap_or_default();
        assert!(
            acc > 60.0,
            "{}: test accuracy {acc} % (chance 33 %)",
            t.name
        );
    }
    // The report's confusion matrices name the classes.
    let report = std::fs::read_to_string(sweep.out().join("report.html")).expect("report.html");
    assert!(
        NAMES.iter().all(|n| report.contains(n)),
        "class names in report.html"
    );
}

#[test]
fn a_worker_without_the_file_says_where_it_looked() {
    let sweep = Sweep::new(GRID);
    let data = sweep.mkdir("data");
    let file = data.join("mine.npz");
    write_own_npz(&file, &own_npz()).expect("write the .npz");
    let mut c = sweep.start_coordinator(&[]);
    // As on another machine: not where the coordinator read it, nor in the worker's folder.
    let elsewhere = sweep.mkdir("elsewhere");
    std::fs::rename(&file, elsewhere.join("mine.npz")).expect("move the file");
    let empty = sweep.mkdir("empty");
    let mut bad = Worker::start("Bad", &c, &empty, 1);
    bad.expect_exit_code(3, Duration::from_secs(60));
    let log = bad.stderr();
    for part in [
        "cannot run data/mine.npz trials: data/mine.npz training set not found".to_owned(),
        file.display().to_string(),
        empty.join("mine.npz").display().to_string(),
        "--data-dir".to_owned(),
    ] {
        assert!(log.contains(&part), "{part:?} not in:\n{log}");
    }
    // With the file in its --data-dir (checked by its SHA-256), a worker finishes the sweep.
    let mut good = Worker::start("Good", &c, &elsewhere, 1);
    c.expect_exit_code(0, Duration::from_secs(120));
    good.expect_exit_code(0, Duration::from_secs(30));
    let results = sweep.results();
    assert!(
        results
            .trials
            .iter()
            .all(|t| t.status == sweep_common::results::Status::Succeeded)
    );
}

/// `examples/own-data.toml`'s grid (an MLP and a small CNN, per-channel normalisation) on a
/// float32 `.npz`: the images are taken as given and both models learn them.
#[test]
fn a_sweep_on_float32_images() {
    let grid = r#"
[sweep]
name = "own-float"
seed = 0
max_attempts = 1

[[experiment]]
name = "own"
dataset = "data/floats.npz"
table = { rows = "model", columns = "learning_rate" }

[experiment.fixed]
optimizer = "adam"
batch_size = 32
epochs = 3
normalize = "dataset"

[experiment.grid]
model = ["mlp", "conv(8,3,p=1) bn relu maxpool(2) conv(16,3,p=1) bn relu gap linear(4)"]
learning_rate = [0.01]
"#;
    let sweep = Sweep::new(grid);
    let data = sweep.mkdir("data");
    write_own_npz_f32(&data.join("floats.npz"), &OwnNpz::example()).expect("write the .npz");
    let mut c = sweep.start_coordinator(&[]);
    let mut w = Worker::start("W", &c, &data, 1);
    c.expect_exit_code(0, Duration::from_secs(120));
    w.expect_exit_code(0, Duration::from_secs(30));
    let results = sweep.results();
    assert_eq!(results.trials.len(), 2);
    for t in &results.trials {
        assert_eq!(
            t.status,
            sweep_common::results::Status::Succeeded,
            "{}",
            t.name
        );
        assert_eq!(t.dataset_images, Some(600), "{}", t.name);
        let acc = t.test_accuracy.unwrap_or_default();
        assert!(
            acc > 60.0,
            "{}: test accuracy {acc} % (chance 25 %)",
            t.name
        );
    }
}
