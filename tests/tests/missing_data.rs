//! A worker without the CIFAR-10 files: the CIFAR-10 trial fails for good with a reason naming
//! the dataset and the paths looked at, the worker goes on (a Fashion-MNIST trial succeeds on
//! it) and exits 0, and the coordinator exits 1 naming the failed trial.

use std::time::Duration;

use sweep_tests::{Sweep, Worker, write_fashion_mnist};

const GRID: &str = r#"
[sweep]
name = "nodata"
seed = 2
max_attempts = 3

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

#[test]
fn missing_data_fails_the_trial_not_the_worker() {
    let sweep = Sweep::new(GRID);
    let data = sweep.mkdir("data");
    let images = write_fashion_mnist(&data, 300, 9);

    let mut coordinator = sweep.start_coordinator(&[]);
    let mut worker = Worker::start("W", &coordinator, &data, 1);

    coordinator.expect_exit_code(1, Duration::from_secs(60));
    worker.expect_exit_code(0, Duration::from_secs(30));

    let results = sweep.results();
    assert!(results.finished);
    let t = results.trial("needs_cifar");
    assert_eq!(t.status, "failed");
    assert_eq!(t.attempts, 1, "a data error is not retried");
    assert_eq!(t.failed_attempts.len(), 1, "{:?}", t.failed_attempts);
    let failed = &t.failed_attempts[0];
    assert_eq!(failed.kind, "data");
    let reason = t.failure.as_deref().unwrap_or_default();
    let data = data.display().to_string();
    for part in [
        "cifar10 training set not found".to_owned(),
        format!("{data}/cifar-10-batches-bin"),
        format!("{data}/cifar-10-batches-py"),
        format!("{data}/cifar-10-binary.tar.gz"),
        format!("{data}/cifar-10-python.tar.gz"),
    ] {
        assert!(
            failed.message.contains(&part),
            "{part:?} not in {:?}",
            failed.message
        );
        assert!(
            reason.contains(&part),
            "{part:?} not in the failure {reason:?}"
        );
    }
    assert!(t.test_accuracy.is_none() && t.epochs.is_empty());

    let ok = results.trial("has_fashion");
    ok.assert_consistent_result();
    assert_eq!(ok.attempts, 1);
    assert_eq!(ok.worker_name(), Some("W"));
    assert_eq!(ok.dataset_images, Some(images));

    let stdout = coordinator.stdout();
    assert!(
        stdout.contains("sweep finished: 1 succeeded, 1 failed:"),
        "coordinator stdout:\n{stdout}"
    );
    let listed = stdout
        .lines()
        .find(|l| l.trim_start().starts_with("needs_cifar: "))
        .unwrap_or_else(|| panic!("the failed trial is not listed:\n{stdout}"));
    assert!(
        listed.contains("cifar10 training set not found"),
        "{listed}"
    );
    let summary = sweep.summary();
    assert!(
        summary.contains("needs_cifar") && summary.contains("has_fashion"),
        "{summary}"
    );
}
