//! A small two-experiment sweep through the real coordinator and two real workers, on fixture
//! datasets in the official formats: every trial succeeds once, with consistent metrics.

use std::collections::BTreeSet;
use std::time::Duration;

use sweep_common::{Activation, DatasetKind};
use sweep_tests::TrialExt as _;
use sweep_tests::{Cifar10, Signal, Sweep, Worker, write_fashion_mnist};

const GRID: &str = r#"
[sweep]
name = "e2e"
seed = 1
max_attempts = 3

[[experiment]]
name = "cifar"
title = "CIFAR-10 fixture"
dataset = "cifar10"
trial_name = "c_{activation}_{hidden_layers}"

[experiment.fixed]
hidden_width = 32
batch_size = 32
epochs = 2

[experiment.grid]
activation = ["relu", "tanh"]
hidden_layers = [1, 2]

[[experiment]]
name = "fashion"
dataset = "fashion-mnist"
trial_name = "f_{train_fraction}"

[experiment.fixed]
hidden_width = 32
batch_size = 32
epochs = 2

[experiment.grid]
train_fraction = [0.5, 1.0]
"#;

const CIFAR_PER_BATCH: usize = 150;
const FASHION_IMAGES: usize = 600;

#[test]
fn e2e_small_grid() {
    let sweep = Sweep::new(GRID);
    // Each worker has its own data folder: the same CIFAR-10 images, as the binary version for A
    // and as the python version for B; the same Fashion-MNIST files for both.
    let data_a = sweep.mkdir("data-a");
    let data_b = sweep.mkdir("data-b");
    let cifar_images = Cifar10::BinDir.write(&data_a, CIFAR_PER_BATCH, 7);
    assert_eq!(
        Cifar10::PyDir.write(&data_b, CIFAR_PER_BATCH, 7),
        cifar_images
    );
    let fashion_images = write_fashion_mnist(&data_a, FASHION_IMAGES, 7);
    write_fashion_mnist(&data_b, FASHION_IMAGES, 7);

    let mut coordinator = sweep.start_coordinator(&["--lease-ttl", "120s", "--heartbeat", "1s"]);
    let mut a = Worker::start("A", &coordinator, &data_a, 1);
    let mut b = Worker::start("B", &coordinator, &data_b, 1);

    // Make sure both workers get work, however fast trials are: freeze A as soon as it starts
    // its first trial, and let it go on once B has started one too. (The lease TTL is far longer
    // than the pause, so A keeps its lease.)
    let timeout = Duration::from_secs(60);
    coordinator.wait_for_epoch_on("A", 0, timeout);
    a.signal(Signal::SIGSTOP);
    coordinator.wait_for_epoch_on("B", 0, timeout);
    a.signal(Signal::SIGCONT);

    coordinator.expect_exit_code(0, Duration::from_secs(120));
    a.expect_exit_code(0, Duration::from_secs(30));
    b.expect_exit_code(0, Duration::from_secs(30));
    let stdout = coordinator.stdout();
    assert!(
        stdout.contains("sweep finished: 6 trials succeeded"),
        "coordinator stdout:\n{stdout}"
    );

    let results = sweep.results();
    assert_eq!(results.format, 1);
    assert_eq!(results.sweep, "e2e");
    assert!(results.finished);
    let experiments: Vec<(&str, &str)> = results
        .experiments
        .iter()
        .map(|e| (e.name.as_str(), e.dataset.name()))
        .collect();
    assert_eq!(
        experiments,
        [("cifar", "cifar10"), ("fashion", "fashion-mnist")]
    );
    assert!(results.experiments.iter().all(|e| e.classes.len() == 10));

    let names: Vec<&str> = results.trials.iter().map(|t| &*t.name).collect();
    assert_eq!(
        names,
        [
            "c_ReLU_1", "c_ReLU_2", "c_Tanh_1", "c_Tanh_2", "f_0.5", "f_1"
        ]
    );
    let ids: BTreeSet<_> = results.trials.iter().map(|t| t.id).collect();
    assert_eq!(ids.len(), 6, "trial ids are unique");

    let mut workers = BTreeSet::new();
    for t in &results.trials {
        t.assert_consistent_result();
        assert_eq!(t.attempts, 1, "{}: attempts", t.name);
        assert!(
            t.failed_attempts.is_empty(),
            "{}: {:?}",
            t.name,
            t.failed_attempts
        );
        assert_eq!(t.params.epochs, 2);
        assert_eq!(t.params.hidden_width, 32);
        assert_eq!(t.split.train_ratio, 0.7);
        let expected_images = if t.dataset == DatasetKind::Cifar10 {
            cifar_images
        } else {
            fashion_images
        };
        assert_eq!(t.dataset_images, Some(expected_images), "{}", t.name);
        let worker = t
            .worker_name()
            .unwrap_or_else(|| panic!("{}: no worker", t.name));
        workers.insert(worker.to_owned());
        // The data is learnable: ReLU models get far above chance (10 %) even this small.
        if t.params.activation == Activation::Relu {
            let acc = t.test_accuracy.unwrap_or_default();
            assert!(acc > 30.0, "{}: test accuracy {acc} %", t.name);
        }
    }
    assert_eq!(
        workers,
        BTreeSet::from(["A".to_owned(), "B".to_owned()]),
        "both workers produced results"
    );
    // Each trial was trained exactly once (one attempt, none failed), by the worker the results
    // name, which logged every epoch as it ended, the last one included.
    for t in &results.trials {
        assert_eq!(t.attempts, 1, "{}: attempts", t.name);
        assert!(
            t.failed_attempts.is_empty(),
            "{}: {:?}",
            t.name,
            t.failed_attempts
        );
        let w = [&a, &b]
            .into_iter()
            .find(|w| t.worker_name() == Some(w.name()))
            .unwrap_or_else(|| panic!("{}: worker {:?}", t.name, t.worker));
        for e in 1..=t.params.epochs {
            assert!(
                w.logged_epoch(&t.name, e).is_some(),
                "worker {} did not log epoch {e}/{} of {}",
                w.name(),
                t.params.epochs,
                t.name
            );
        }
    }

    let summary = sweep.summary();
    for t in &results.trials {
        assert!(
            summary.contains(&*t.name),
            "summary.md lacks {}:\n{summary}",
            t.name
        );
    }
}
