//! TPE end to end (issue 17), with the workers' test trainer: an experiment of 16 sampled
//! configurations, the first 10 drawn at random when the grid is loaded and the other 6 proposed
//! by TPE while the sweep runs, from the results so far. Two workers of two slots lease at once
//! and the coordinator is SIGKILLed at random points: the sweep still ends with exactly 16
//! trials, no configuration twice, every one trained to its end.

use std::collections::BTreeSet;
use std::time::Duration;

use sweep_common::grid::Param;
use sweep_common::results::{Results, Status};
use sweep_common::rng::SplitMix64;
use sweep_tests::{Sweep, Worker};

const EPOCH: Duration = Duration::from_millis(30);
const ARGS: &[&str] = sweep_tests::QUICK_LEASES;
const BUDGET: usize = 16;

const GRID: &str = r#"
[sweep]
name = "tpe-e2e"
seed = 3

[[experiment]]
name = "e"
dataset = "fashion-mnist"
trial_name = "lr{learning_rate}_w{hidden_width}"
checkpoint_every = 1

[experiment.fixed]
hidden_layers = 1
epochs = 4

[experiment.sample]
trials = 16
method = "tpe"
seed = 5

[experiment.sample.space]
learning_rate = { loguniform = [0.0001, 0.1] }
hidden_width = { int = [8, 64] }
"#;

fn results(sweep: &Sweep) -> Results<'static> {
    let text = std::fs::read_to_string(sweep.out().join("results.json")).expect("results.json");
    serde_json::from_str(&text).expect("results.json parses")
}

/// The sampled configurations of a finished sweep, checked: exactly the budget, all trained to
/// their end, none twice.
fn configurations(r: &Results<'_>) -> BTreeSet<(u64, u64)> {
    assert_eq!(r.trials.len(), BUDGET, "exactly the budget of trials");
    let mut seen = BTreeSet::new();
    for t in &r.trials {
        assert_eq!(t.status, Status::Succeeded, "{}", t.name);
        assert_eq!(t.epochs.len(), 4, "{}", t.name);
        let lr = t.params.get(Param::LearningRate).display();
        let width = t.params.get(Param::HiddenWidth).display();
        let key = (
            lr.parse::<f64>().expect("a number").to_bits(),
            width.parse::<u64>().expect("an integer"),
        );
        assert!(seen.insert(key), "configuration {lr}, {width} twice");
    }
    seen
}

#[test]
fn tpe_proposes_the_rest_of_its_budget_at_run_time_through_coordinator_kills() {
    // Uninterrupted, one worker of one slot.
    let sweep = Sweep::new(GRID);
    let mut c = sweep.start_coordinator_at("127.0.0.1:0", ARGS);
    let mut w = Worker::start_test("w", &c.url(), EPOCH, 1);
    c.expect_exit_code(0, Duration::from_secs(120));
    w.expect_exit_code(0, Duration::from_secs(30));
    configurations(&results(&sweep));

    // Two workers of two slots each, the coordinator SIGKILLed three times.
    let sweep = Sweep::new(GRID);
    let mut c = sweep.start_coordinator_at("127.0.0.1:0", ARGS);
    let listen = c.addr().to_string();
    let mut workers = [
        Worker::start_test("a", &c.url(), EPOCH, 2),
        Worker::start_test("b", &c.url(), EPOCH, 2),
    ];
    let mut rng = SplitMix64::new(23);
    let mut dead = Vec::new();
    for _ in 0..3 {
        std::thread::sleep(Duration::from_millis(200 + rng.next_u64() % 500));
        if c.try_status().is_some() {
            break; // the sweep ended first: the kills so far are the test
        }
        c.kill();
        dead.push(c);
        c = sweep.start_coordinator_at(&listen, ARGS);
    }
    c.expect_exit_code(0, Duration::from_secs(120));
    for w in &mut workers {
        w.expect_exit_code(0, Duration::from_secs(30));
    }
    configurations(&results(&sweep));
}
