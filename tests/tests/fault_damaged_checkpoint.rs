//! Damaged checkpoints (issue 14, item 3). A sweep is stopped with its trials checkpointed, then
//! the newest checkpoint of one trial is truncated (the coordinator's size and SHA-256 check
//! catches it) and another's is replaced by bytes that are not a checkpoint, with the size and
//! SHA-256 recorded for them (only the worker's trainer can tell). Rerun with
//! `max_attempts = 1`: each unusable checkpoint is set aside (kept in
//! `checkpoints/set-aside/`, recorded, never offered again), its trial resumes from the
//! checkpoint before it, those attempts use up no attempt, and every number is the fault-free
//! run's, bit for bit.

use std::time::Duration;

use sha2::{Digest, Sha256};
use sweep_common::FailureKind;
use sweep_tests::ResultsExt as _;
use sweep_tests::faults::{self, assert_same_results, audit, fault_free_run};
use sweep_tests::{Signal, Sweep, Worker};

const TRIALS: usize = 4;
const EPOCHS: u32 = 10;
const EPOCH: Duration = Duration::from_millis(100);
const FLAGS: &[&str] = sweep_tests::QUICK_LEASES;

/// (latest, previous) checkpoints of trial `name` as recorded: their JSON.
fn checkpoints(db: &std::path::Path, name: &str) -> (serde_json::Value, serde_json::Value) {
    let (latest, previous) = faults::recorded_in_grid(db, name).checkpoints;
    let some = |c: Option<serde_json::Value>, what: &str| {
        c.unwrap_or_else(|| panic!("{name} has no {what} checkpoint"))
    };
    (some(latest, "latest"), some(previous, "previous"))
}

fn epoch_of(c: &serde_json::Value) -> u32 {
    c["epoch"].as_u64().expect("epoch") as u32
}

#[test]
fn damaged_checkpoints_are_set_aside_and_the_trials_resume_from_the_previous_ones() {
    let grid =
        faults::grid("damaged", TRIALS, EPOCHS, 2).replace("max_attempts = 50", "max_attempts = 1");
    let (baseline, _) = fault_free_run(&grid, 1, TRIALS as u32, EPOCH);

    let sweep = Sweep::new(&grid);
    let mut c = sweep.start_coordinator_at("127.0.0.1:0", FLAGS);
    let listen = c.addr().to_string();
    let mut w = Worker::start_test("W", &c.url(), EPOCH, TRIALS as u32);
    // Every trial has checkpoints after epochs 2 and 4; then the worker drains (one more
    // checkpoint each, after the epoch in progress) and the coordinator stops.
    let stored = sweep.out().join("state").join("checkpoints");
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let after_4 = std::fs::read_dir(&stored)
            .map(|d| {
                d.filter_map(Result::ok)
                    .filter(|e| e.file_name().to_string_lossy().ends_with("-e4.safetensors"))
                    .count()
            })
            .unwrap_or(0);
        if after_4 >= TRIALS {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no checkpoint after epoch 4 of every trial within 60 s: {}",
            c.stderr()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    w.signal(Signal::SIGTERM);
    w.expect_exit_code(130, Duration::from_secs(30));
    c.signal(Signal::SIGTERM);
    c.expect_exit_code(130, Duration::from_secs(30));

    // Damage two trials' newest checkpoints.
    let db = sweep.database();
    let dir = sweep.out().join("state").join("checkpoints");
    let (truncated, (latest_a, previous_a)) = ("t_1", checkpoints(&db, "t_1"));
    let (garbled, (latest_b, previous_b)) = ("t_2", checkpoints(&db, "t_2"));
    let file_a = dir.join(latest_a["file"].as_str().expect("file"));
    let bytes = std::fs::read(&file_a).expect("read the checkpoint");
    std::fs::write(&file_a, &bytes[..bytes.len() / 2]).expect("truncate it");
    let garbage = b"{\"this is\": \"not a checkpoint\"}".to_vec();
    let file_b = dir.join(latest_b["file"].as_str().expect("file"));
    std::fs::write(&file_b, &garbage).expect("replace it");
    let mut recorded = latest_b.clone();
    recorded["size"] = garbage.len().into();
    recorded["sha256"] = format!("{:x}", Sha256::digest(&garbage)).into();
    // Its size and SHA-256 recorded: only the trainer can tell.
    faults::record_latest_checkpoint(&db, garbled, &recorded);

    let mut c = sweep.start_coordinator_at(&listen, FLAGS);
    let mut w2 = Worker::start_test("W2", &c.url(), EPOCH, TRIALS as u32);
    c.expect_exit_code(0, Duration::from_secs(120));
    w2.expect_exit_code(0, Duration::from_secs(30));

    assert_same_results(&sweep.results(), &baseline);
    let a = audit(&db, TRIALS, EPOCHS);
    assert_eq!(a.set_aside, 2, "{a:?}");
    let set_aside = faults::set_aside_checkpoints(&db);
    for (trial, latest, reason_has) in [
        (truncated, &latest_a, "SHA-256"),
        (garbled, &latest_b, "unreadable test checkpoint"),
    ] {
        let (_, file, epoch, reason) = set_aside
            .iter()
            .find(|(name, ..)| name == trial)
            .unwrap_or_else(|| panic!("{trial}: nothing set aside: {set_aside:?}"));
        assert_eq!(file, latest["file"].as_str().expect("file"), "{trial}");
        assert_eq!(*epoch, epoch_of(latest), "{trial}");
        assert!(reason.contains(reason_has), "{trial}: {reason}");
    }
    // The truncated file is kept as it was found.
    let kept = dir
        .join("set-aside")
        .join(file_a.file_name().expect("a file name"));
    assert_eq!(
        std::fs::metadata(&kept).expect("kept").len() as usize,
        bytes.len() / 2
    );

    // Each resumed from the checkpoint before the damaged one; the attempts that could not
    // use theirs cost nothing.
    for (trial, previous) in [(truncated, &previous_a), (garbled, &previous_b)] {
        let t = faults::recorded_in_grid(&db, trial);
        let (resumed_from, counted) = (t.resumed_from, t.counted_attempts);
        assert_eq!(resumed_from, epoch_of(previous), "{trial}");
        assert_eq!(counted, 0, "{trial}");
    }
    let results = sweep.results();
    for trial in [truncated, garbled] {
        let t = results.trial(trial);
        assert!(
            t.failed_attempts
                .iter()
                .any(|f| f.kind == FailureKind::CheckpointUnusable),
            "{trial}: {:?}",
            t.failed_attempts
        );
    }
}
