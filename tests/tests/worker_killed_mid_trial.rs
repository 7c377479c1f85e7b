//! A worker killed (SIGKILL) in the middle of a trial: its lease expires, the other worker trains
//! the trial again, and the sweep completes with every trial recorded once.

use std::time::Duration;

use sweep_tests::{Cifar10, Sweep, Worker};
use sweep_tests::{ResultsExt as _, TrialExt as _};

/// Four CIFAR-10 trials of about a second each (six epochs of about 0.2 s on one thread).
const GRID: &str = r#"
[sweep]
name = "kill"
seed = 3
max_attempts = 3

[[experiment]]
name = "cifar"
dataset = "cifar10"
trial_name = "k_{activation}_{seed}"

[experiment.fixed]
hidden_layers = 2
hidden_width = 256
batch_size = 32
epochs = 6

[experiment.grid]
activation = ["relu", "tanh"]
seed = [1, 2]
"#;

const PER_BATCH: usize = 400;

#[test]
fn worker_killed_mid_trial() {
    let sweep = Sweep::new(GRID);
    // The two archives: each worker can only have trained from its own.
    let data_a = sweep.mkdir("data-a");
    let data_b = sweep.mkdir("data-b");
    let images = Cifar10::BinTarGz.write(&data_a, PER_BATCH, 5);
    Cifar10::PyTarGz.write(&data_b, PER_BATCH, 5);

    let mut coordinator = sweep.start_coordinator(&["--lease-ttl", "2s", "--heartbeat", "200ms"]);
    let mut a = Worker::start("A", &coordinator, &data_a, 1);
    let mut b = Worker::start("B", &coordinator, &data_b, 1);
    let a_id = a.id();
    let b_id = b.id();

    // Kill A once the coordinator's status shows it has reported the first epoch of a trial (of
    // 6).
    let victim = coordinator.wait_for_epoch_on("A", 1, Duration::from_secs(60));
    let status = a.kill();
    assert_eq!(status.code(), None, "A was killed, not exited");

    coordinator.expect_exit_code(0, Duration::from_secs(120));
    b.expect_exit_code(0, Duration::from_secs(30));
    let stdout = coordinator.stdout();
    assert!(
        stdout.contains("sweep finished: 4 trials succeeded"),
        "coordinator stdout:\n{stdout}"
    );

    let results = sweep.results();
    assert!(results.finished);
    assert_eq!(results.trials.len(), 4);
    for t in &results.trials {
        t.assert_consistent_result();
        assert_eq!(t.dataset_images, Some(images), "{}", t.name);
        if t.name == victim {
            continue;
        }
        // Every other trial: one attempt, by whichever worker trained it to the end.
        assert_eq!(t.attempts, 1, "{}: attempts", t.name);
        assert!(
            t.failed_attempts.is_empty(),
            "{}: {:?}",
            t.name,
            t.failed_attempts
        );
    }
    let t = results.trial(&victim);
    assert_eq!(t.attempts, 2, "{victim}: attempts");
    assert_eq!(
        t.worker_name(),
        Some("B"),
        "{victim} was trained again by B"
    );
    assert!(
        t.worker.as_deref().is_some_and(|w| w.contains(&b_id)),
        "{victim}: worker {:?}, B is {b_id}",
        t.worker
    );
    assert_eq!(
        t.failed_attempts.len(),
        1,
        "{victim}: {:?}",
        t.failed_attempts
    );
    // B's attempt computed what A's did: training is deterministic on the CPU, and both archives
    // hold the same images.
    let first = a.logged_epoch(&victim, 1);
    assert!(first.is_some(), "A logged epoch 1 of {victim}");
    assert_eq!(
        b.logged_epoch(&victim, 1),
        first,
        "epoch 1 of {victim} on B and on A"
    );
    let failed = &t.failed_attempts[0];
    assert_eq!(failed.attempt, 1);
    assert_eq!(failed.kind, sweep_common::FailureKind::LeaseExpired);
    assert_eq!(failed.worker.to_string(), a_id, "the expired lease was A's");
    assert!(
        failed.message.contains("lease expired"),
        "{victim}: {}",
        failed.message
    );

    // B trained every trial A did not finish, the victim included, and each exactly once: every
    // trial succeeded, by A or B, in one attempt but the victim's (asserted above).
    for t in &results.trials {
        assert!(
            matches!(t.worker_name(), Some("A" | "B")),
            "{}: worker {:?}",
            t.name,
            t.worker
        );
    }
}
