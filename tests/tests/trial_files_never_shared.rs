//! No two trials share a file, across grid edits too: a grid edited so that its trials are new
//! (another `epochs`, without checkpoints to continue from: `grown_epochs.rs` is the case with
//! them) but keep their names would write its weights over those of the recorded trials it
//! replaced. The coordinator moves those aside first (`models/NAME.SHORTID.safetensors`)
//! and records where they went. (Two trials of one grid that would share a file are refused at
//! load time: `tests/grids/bad/trial_file_names_*.toml`.)

use std::time::Duration;

use sweep_tests::ResultsExt as _;
use sweep_tests::{Sweep, Worker, faults};

const EPOCH: Duration = Duration::from_millis(50);
const ARGS: &[&str] = sweep_tests::QUICK_LEASES;

#[test]
fn an_edited_grid_does_not_overwrite_the_weights_of_the_trials_it_replaced() {
    let sweep = Sweep::new(&faults::grid("edited", 2, 2, 0));
    let mut c = sweep.start_coordinator_at("127.0.0.1:0", ARGS);
    let mut w = Worker::start_test("w", &c.url(), EPOCH, 1);
    c.expect_exit_code(0, Duration::from_secs(120));
    w.wait_exit(Duration::from_secs(30));
    let before = sweep.results();
    let old = before.trial("t_1");
    let old_file = old.weights.as_deref().expect("weights").to_owned();
    let old_bytes = std::fs::read(sweep.out().join(&old_file)).unwrap();

    // Three epochs instead of two: new trials, the same names.
    std::fs::write(sweep.grid(), faults::grid("edited", 2, 3, 0)).unwrap();
    let mut c = sweep.start_coordinator_at("127.0.0.1:0", ARGS);
    let mut w = Worker::start_test("w2", &c.url(), EPOCH, 1);
    c.expect_exit_code(0, Duration::from_secs(120));
    w.wait_exit(Duration::from_secs(30));

    let after = sweep.results();
    let new = after.trial("t_1");
    assert_ne!(new.id, old.id);
    assert_eq!(new.weights.as_deref(), Some(old_file.as_str()));
    let aside = format!(
        "models/t_1.{}.safetensors",
        &old.id.to_string().replace('-', "")[..8]
    );
    assert_eq!(
        std::fs::read(sweep.out().join(&aside)).expect("the old weights, moved aside"),
        old_bytes
    );
    assert_ne!(
        std::fs::read(sweep.out().join(&old_file)).unwrap(),
        old_bytes,
        "the new trial's weights"
    );
    let recorded = faults::recorded(&sweep.database(), "t_1");
    let replaced = recorded
        .iter()
        .find(|t| t.id == old.id.to_string() && !t.in_grid)
        .unwrap_or_else(|| panic!("the replaced t_1 is kept: {recorded:?}"));
    assert_eq!(replaced.weights.as_deref(), Some(aside.as_str()));
}
