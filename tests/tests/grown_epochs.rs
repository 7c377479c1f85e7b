//! An edited grid file that asks for more epochs (issue 17 part 2), with the real worker on the
//! CPU: a sweep at `epochs = 2`, then the same `--out` at `epochs = 4`. The trial whose schedule
//! does not span the run (`step`) continues from its checkpoint and ends bit for bit where a
//! fresh 4-epoch sweep ends (curve and final weights); the `cosine` one is trained afresh, and
//! the coordinator says why. Then `epochs = 3`: fewer epochs are trained afresh too.

use std::path::Path;
use std::time::Duration;

use sweep_common::results::Status;
use sweep_tests::results::Point;
use sweep_tests::{ResultsExt as _, Sweep, TrialExt as _, Worker, field, write_fashion_mnist};

fn grid(epochs: u32) -> String {
    format!(
        r#"
[sweep]
name = "grown"
seed = 5

[[experiment]]
name = "e"
dataset = "fashion-mnist"
trial_name = "{{lr_schedule}}"
checkpoint_every = 1

[experiment.fixed]
hidden_width = 16
batch_size = 32
epochs = {epochs}
lr_step_size = 1
lr_gamma = 0.5

[experiment.grid]
lr_schedule = ["step", "cosine"]
"#
    )
}

/// Runs the sweep in `sweep`'s folder to its end with one real worker; returns the
/// coordinator's log.
fn run(sweep: &Sweep, data: &Path) -> String {
    let mut c = sweep.start_coordinator(&["--lease-ttl", "120s", "--heartbeat", "1s"]);
    let mut w = Worker::start("W", &c, data, 1);
    c.expect_exit_code(0, Duration::from_secs(120));
    w.expect_exit_code(0, Duration::from_secs(30));
    c.stderr()
}

/// Per trial name: attempts, curve and final weights' bytes.
fn outcome(sweep: &Sweep, name: &str) -> (u32, Vec<Point>, Vec<u8>) {
    let results = sweep.results();
    assert_eq!(results.trials.len(), 2, "each trial once");
    let t = results.trial(name);
    assert_eq!(t.status, Status::Succeeded, "{name}");
    let curve = t.curve_bits();
    let weights = t.weights.as_deref().expect("final weights");
    let bytes = std::fs::read(sweep.out().join(weights)).expect("read the final weights");
    (t.attempts, curve, bytes)
}

/// The coordinator's log line that names trial `name` with a reason (trained afresh).
fn afresh_reason(log: &str, name: &str) -> Option<String> {
    log.lines()
        .find(|l| field(l, "trial") == Some(name) && field(l, "reason").is_some())
        .map(str::to_owned)
}

#[test]
fn more_epochs_continue_from_the_checkpoint_exactly() {
    let fresh = Sweep::new(&grid(4));
    let data = fresh.mkdir("data");
    write_fashion_mnist(&data, 400, 3);
    run(&fresh, &data);

    let grown = Sweep::new(&grid(2));
    run(&grown, &data);
    let short = outcome(&grown, "step");
    assert_eq!(short.1.len(), 2);
    let short_id = grown
        .results()
        .trial("step")
        .id
        .to_string()
        .replace('-', "");
    std::fs::write(grown.grid(), grid(4)).expect("edit the grid file");
    let log = run(&grown, &data);
    // Nothing computed is lost: the 2-epoch run's final weights are kept aside.
    let aside = grown
        .out()
        .join(format!("models/step.{}.safetensors", &short_id[..8]));
    assert!(
        std::fs::read(&aside).is_ok_and(|b| b == short.2),
        "the shorter run's weights at {}",
        aside.display()
    );

    let (attempts, curve, weights) = outcome(&grown, "step");
    let (_, fresh_curve, fresh_weights) = outcome(&fresh, "step");
    assert_eq!(
        attempts, 2,
        "the 2-epoch attempt, then the one that resumed it"
    );
    assert_eq!(curve, fresh_curve, "the grown trial's whole curve");
    assert_eq!(
        curve[..2],
        short.1[..],
        "its first epochs are the short run's"
    );
    assert!(weights == fresh_weights, "the grown trial's weights differ");
    assert_eq!(afresh_reason(&log, "step"), None, "{log}");

    let (attempts, curve, weights) = outcome(&grown, "cosine");
    let (_, fresh_curve, fresh_weights) = outcome(&fresh, "cosine");
    assert_eq!(attempts, 1, "trained afresh");
    assert_eq!(curve, fresh_curve);
    assert!(weights == fresh_weights);
    let why = afresh_reason(&log, "cosine").unwrap_or_else(|| panic!("no reason:\n{log}"));
    assert!(why.contains("spans the whole run"), "{why}");

    // Fewer epochs than recorded: a shorter run ends elsewhere, so it is trained afresh.
    std::fs::write(grown.grid(), grid(3)).expect("edit the grid file");
    let log = run(&grown, &data);
    let (attempts, curve, _) = outcome(&grown, "step");
    assert_eq!((attempts, curve.len()), (1, 3));
    assert_eq!(curve[..], fresh_curve_prefix(&fresh, 3)[..]);
    let why = afresh_reason(&log, "step").unwrap_or_else(|| panic!("no reason:\n{log}"));
    assert!(why.contains("fewer than the 4"), "{why}");
}

/// The first `n` epochs of the fresh run's `step` trial (a step schedule's first epochs do not
/// depend on the run's length).
fn fresh_curve_prefix(fresh: &Sweep, n: usize) -> Vec<Point> {
    outcome(fresh, "step").1[..n].to_vec()
}
