//! A worker told to stop (SIGTERM) in the middle of a trial gives its lease back and exits 130
//! (stopped before the end, not a finished sweep: issue 14, item 8); the other worker trains the
//! trial again and the sweep completes.

use std::time::Duration;

use sweep_tests::{Cifar10, Signal, Sweep, Worker, field};
use sweep_tests::{ResultsExt as _, TrialExt as _};

/// Four CIFAR-10 trials of about a second each (six epochs of about 0.2 s on one thread).
const GRID: &str = r#"
[sweep]
name = "term"
seed = 4
max_attempts = 3

[[experiment]]
name = "cifar"
dataset = "cifar10"
trial_name = "t_{activation}_{seed}"

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
fn sigterm_gives_the_lease_back() {
    let sweep = Sweep::new(GRID);
    // The two extracted folders: each worker can only have trained from its own.
    let data_a = sweep.mkdir("data-a");
    let data_b = sweep.mkdir("data-b");
    let images = Cifar10::PyDir.write(&data_a, PER_BATCH, 6);
    Cifar10::BinDir.write(&data_b, PER_BATCH, 6);

    // A long lease TTL: only A's giving the lease back can make the trial move on quickly, and
    // an expiry would show as `lease_expired`, failing the test.
    let mut coordinator = sweep.start_coordinator(&["--lease-ttl", "60s", "--heartbeat", "1s"]);
    let mut a = Worker::start("A", &coordinator, &data_a, 1);
    let mut b = Worker::start("B", &coordinator, &data_b, 1);
    let a_id = a.id();
    b.id();

    // Once the coordinator's status shows A has reported the first epoch of a trial (of 6).
    let victim = coordinator.wait_for_epoch_on("A", 1, Duration::from_secs(60));
    a.signal(Signal::SIGTERM);
    a.expect_exit_code(130, Duration::from_secs(30));
    let stderr = a.stderr();
    assert!(
        stderr.contains(
            "shutting down: finishing the epoch, checkpointing it and giving the lease back"
        ),
        "A's log:\n{stderr}"
    );
    coordinator.expect_exit_code(0, Duration::from_secs(120));
    b.expect_exit_code(0, Duration::from_secs(30));

    let results = sweep.results();
    assert!(results.finished);
    assert_eq!(results.trials.len(), 4);
    for t in &results.trials {
        t.assert_consistent_result();
        assert_eq!(t.dataset_images, Some(images), "{}", t.name);
        if t.name != victim {
            assert_eq!(t.attempts, 1, "{}: attempts", t.name);
            assert!(
                t.failed_attempts.is_empty(),
                "{}: {:?}",
                t.name,
                t.failed_attempts
            );
        }
    }
    let t = results.trial(&victim);
    assert_eq!(t.attempts, 2, "{victim}: attempts");
    assert_eq!(
        t.worker_name(),
        Some("B"),
        "{victim} was trained again by B"
    );
    assert_eq!(
        t.failed_attempts.len(),
        1,
        "{victim}: {:?}",
        t.failed_attempts
    );
    // A drained: it finished its epoch and checkpointed it before leaving, as its failed
    // attempt in results.json says ("worker shut down after epoch N (checkpointed)").
    let drained_after: u32 = t.failed_attempts[0]
        .message
        .split("after epoch ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("{victim}: {:?}", t.failed_attempts));
    assert!(
        drained_after >= 1,
        "A checkpointed the epoch it had reported"
    );
    // B resumed from A's checkpoint: it trained only the epochs after it, and the learning
    // curve keeps A's epochs, one point per epoch.
    let b_log = b.stderr();
    assert!(
        b_log.lines().any(|l| l.contains(" training ")
            && field(l, "trial") == Some(victim.as_str())
            && field(l, "resume_from") == Some(drained_after.to_string().as_str())),
        "B did not resume {victim} after epoch {drained_after}:\n{b_log}"
    );
    assert_eq!(b.logged_epoch(&victim, drained_after), None);
    assert!(b.logged_epoch(&victim, drained_after + 1).is_some());
    assert_eq!(t.epochs.len(), 6);
    for e in t.epochs.iter() {
        let logged = if e.epoch <= drained_after { &a } else { &b };
        assert_eq!(
            logged.logged_epoch(&victim, e.epoch),
            Some(format!(
                "loss {:.4}, train {:.2} %, test {:.2} %",
                e.train_loss, e.train_accuracy, e.test_accuracy
            )),
            "epoch {} of {victim}",
            e.epoch
        );
    }
    let failed = &t.failed_attempts[0];
    assert_eq!(failed.attempt, 1);
    assert_eq!(failed.kind, sweep_common::FailureKind::WorkerShutdown);
    assert!(
        failed.message.contains("checkpointed"),
        "{}",
        failed.message
    );
    assert_eq!(
        failed.worker.to_string(),
        a_id,
        "the lease given back was A's"
    );
}
