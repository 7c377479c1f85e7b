//! A dataset missing from a worker's data folder is that worker's problem, not the trial's
//! (issue 14, item 4): the trial goes to another worker, uses up none of its attempts, and the
//! worker stops taking trials of that dataset; once none it can run is left it exits 3, naming
//! what it lacks, and `coordinator status` shows why. The sweep goes on with the workers that
//! have the data.

use std::process::Command;
use std::time::Duration;

use sweep_tests::{Cifar10, Coordinator, Sweep, Worker, bin, write_fashion_mnist};
use sweep_tests::{ResultsExt as _, TrialExt as _};

/// Three Fashion-MNIST trials; one attempt each (any counted failure would be final).
const FASHION: &str = r#"
[sweep]
name = "baddata"
seed = 2
max_attempts = 1

[[experiment]]
name = "fashion"
dataset = "fashion-mnist"
trial_name = "f_{seed}"

[experiment.fixed]
hidden_width = 16
epochs = 1

[experiment.grid]
seed = [1, 2, 3]
"#;

const MIXED: &str = r#"
[sweep]
name = "nodata"
seed = 2
max_attempts = 1

[[experiment]]
name = "cifar"
dataset = "cifar10"
trial_name = "needs_cifar"

[experiment.fixed]
hidden_width = 16
epochs = 1

[[experiment]]
name = "fashion"
dataset = "fashion-mnist"
trial_name = "has_fashion"

[experiment.fixed]
hidden_width = 16
epochs = 1
"#;

/// `coordinator status --json` of `c`.
fn status(c: &Coordinator) -> serde_json::Value {
    let out = Command::new(bin("coordinator"))
        .args(["status", "--json", "--addr", &c.url()])
        .output()
        .expect("run coordinator status");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("status JSON")
}

/// The problem `coordinator status` shows for the worker named `name`.
fn problem(status: &serde_json::Value, name: &str) -> String {
    status["workers"]
        .as_array()
        .expect("workers")
        .iter()
        .find(|w| w["name"] == name)
        .and_then(|w| w["problem"].as_str())
        .unwrap_or_else(|| panic!("no problem shown for {name}: {status}"))
        .to_owned()
}

#[test]
fn a_worker_without_the_data_stops_and_the_sweep_goes_on_without_it() {
    let sweep = Sweep::new(FASHION);
    let empty = sweep.mkdir("wrong-data-dir");
    let data = sweep.mkdir("data");
    let images = write_fashion_mnist(&data, 300, 9);

    let mut c = sweep.start_coordinator(&[]);
    let mut bad = Worker::start("Bad", &c, &empty, 1);
    bad.expect_exit_code(3, Duration::from_secs(60));
    let log = bad.stderr();
    assert!(
        log.contains("error: this worker cannot run the trials left: cannot run fashion-mnist trials: fashion-mnist training set not found")
            && log.contains("--offline"),
        "the bad worker says why:\n{log}"
    );
    assert!(
        c.try_status().is_none(),
        "the coordinator waits for a good worker"
    );
    let shown = problem(&status(&c), "Bad");
    assert!(
        shown.starts_with("cannot run fashion-mnist trials: fashion-mnist training set not found"),
        "{shown}"
    );

    let mut good = Worker::start("Good", &c, &data, 1);
    c.expect_exit_code(0, Duration::from_secs(120));
    good.expect_exit_code(0, Duration::from_secs(30));

    let results = sweep.results();
    let mut retried = 0;
    for t in &results.trials {
        t.assert_consistent_result();
        assert_eq!(t.worker_name(), Some("Good"), "{}", t.name);
        assert_eq!(t.dataset_images, Some(images));
        if let [failed] = &t.failed_attempts[..] {
            assert_eq!(failed.kind, sweep_common::FailureKind::Data);
            assert_eq!(t.attempts, 2, "{}", t.name);
            retried += 1;
        } else {
            assert!(t.failed_attempts.is_empty(), "{:?}", t.failed_attempts);
        }
    }
    assert_eq!(retried, 1, "the bad worker took one trial, then stopped");
}

#[test]
fn a_worker_missing_one_dataset_trains_the_other_then_stops() {
    let sweep = Sweep::new(MIXED);
    let data = sweep.mkdir("data");
    let images = write_fashion_mnist(&data, 300, 9);
    let with_cifar = sweep.mkdir("data-cifar");
    let cifar_images = Cifar10::BinDir.write(&with_cifar, 60, 3);

    let mut c = sweep.start_coordinator(&[]);
    let mut w = Worker::start("W", &c, &data, 1);
    // It fails the CIFAR-10 trial (its data folder's fault), trains the Fashion-MNIST one, and
    // stops: only a trial it cannot run is left.
    w.expect_exit_code(3, Duration::from_secs(60));
    let log = w.stderr();
    let dir = data.display().to_string();
    for part in [
        "cannot run cifar10 trials: cifar10 training set not found".to_owned(),
        format!("{dir}/cifar-10-batches-bin"),
        format!("{dir}/cifar-10-batches-py"),
        format!("{dir}/cifar-10-binary.tar.gz"),
        format!("{dir}/cifar-10-python.tar.gz"),
    ] {
        let said = log
            .lines()
            .find(|l| l.starts_with("error: "))
            .unwrap_or_else(|| panic!("no error line:\n{log}"));
        assert!(said.contains(&part), "{part:?} not in {said:?}");
    }
    assert!(c.try_status().is_none(), "the CIFAR-10 trial waits");
    let s = status(&c);
    assert!(problem(&s, "W").contains(&format!("{dir}/cifar-10-batches-bin")));
    assert_eq!(s["counts"]["pending"], 1, "{s}");
    assert_eq!(s["counts"]["failed"], 0, "{s}");
    let warning = s["warning"].as_str().unwrap_or_default();
    assert!(
        warning.contains("no live worker can run the pending trials (1 cifar10)"),
        "{s}"
    );

    // A worker with CIFAR-10 finishes the sweep.
    let mut v = Worker::start("V", &c, &with_cifar, 1);
    c.expect_exit_code(0, Duration::from_secs(120));
    v.expect_exit_code(0, Duration::from_secs(30));
    let results = sweep.results();
    let t = results.trial("needs_cifar");
    t.assert_consistent_result();
    assert_eq!(t.worker_name(), Some("V"));
    assert_eq!(t.dataset_images, Some(cifar_images));
    assert_eq!(t.attempts, 2);
    assert_eq!(t.failed_attempts.len(), 1, "{:?}", t.failed_attempts);
    assert_eq!(t.failed_attempts[0].kind, sweep_common::FailureKind::Data);
    assert!(
        t.failed_attempts[0]
            .message
            .contains(&format!("{dir}/cifar-10-python.tar.gz")),
        "{:?}",
        t.failed_attempts[0]
    );
    let ok = results.trial("has_fashion");
    ok.assert_consistent_result();
    assert_eq!(ok.attempts, 1);
    assert_eq!(ok.worker_name(), Some("W"));
    assert_eq!(ok.dataset_images, Some(images));
}
