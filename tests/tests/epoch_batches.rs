//! Epoch batches end to end (issue 20 part 3): the real worker's test trainer with zero-length
//! epochs sends the epochs that ended while its previous report was in flight in one call; the
//! coordinator judges them one by one, so an ASHA sweep ends with the same statuses, stops and
//! curves as with epochs slow enough to go one a call. One worker of one slot, so the
//! coordinator sees the epochs in one order either way.

use std::collections::BTreeMap;
use std::time::Duration;

use sweep_common::results::{Results, Status};
use sweep_tests::{Sweep, Worker};

/// Twelve widths x two seeds, 20 epochs, no checkpoints (a checkpoint ends a batch).
const GRID: &str = r#"
[sweep]
name = "batches"
seed = 7

[[experiment]]
name = "e"
dataset = "fashion-mnist"
trial_name = "w{hidden_width}_s{seed}"
checkpoint_every = 0
repeats = 2

[experiment.fixed]
hidden_layers = 1
epochs = 20

[experiment.grid]
hidden_width = [8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19]

[experiment.stopping]
rule = "asha"
min_epochs = 1
reduction = 3
"#;

/// Per trial: status, the rung it stopped at, and its curve's numbers (without wall times).
type Outcome = BTreeMap<String, (Status, Option<u32>, Vec<(u32, u64, u64)>)>;

/// Runs the grid to the end with one worker of one slot whose epochs take `epoch`.
fn run(epoch: Duration) -> Outcome {
    let sweep = Sweep::new(GRID);
    let mut c = sweep.start_coordinator_at("127.0.0.1:0", sweep_tests::QUICK_LEASES);
    let mut w = Worker::start_test("w", &c.url(), epoch, 1);
    c.expect_exit_code(0, Duration::from_secs(120));
    w.expect_exit_code(0, Duration::from_secs(30));
    let text = std::fs::read_to_string(sweep.out().join("results.json")).expect("results.json");
    let results: Results<'_> = serde_json::from_str(&text).expect("results.json parses");
    results
        .trials
        .iter()
        .map(|t| {
            let curve = t
                .epochs
                .iter()
                .map(|m| (m.epoch, m.train_loss.to_bits(), m.test_accuracy.to_bits()));
            let stop = t.stopped.as_ref().map(|s| s.epoch);
            (t.name.to_string(), (t.status, stop, curve.collect()))
        })
        .collect()
}

#[test]
fn batched_epochs_are_judged_as_if_each_came_alone() {
    let batched = run(Duration::ZERO);
    let one_a_call = run(Duration::from_millis(20));
    assert_eq!(batched.len(), 24);
    assert_eq!(batched, one_a_call);
    let stopped = batched.values().filter(|o| o.0 == Status::Stopped).count();
    assert!(stopped >= 8, "ASHA with reduction 3 stops many: {stopped}");
    for (name, (status, _, curve)) in &batched {
        let numbers: Vec<u32> = curve.iter().map(|p| p.0).collect();
        let expected: Vec<u32> = (1..=numbers.len() as u32).collect();
        assert_eq!(numbers, expected, "{name}: every epoch once, in order");
        if *status == Status::Succeeded {
            assert_eq!(curve.len(), 20, "{name}");
        }
    }
}
