//! `coordinator promote --trial NAME --epochs N` (issue 17 part 2), with the real worker on the
//! CPU: a trial that succeeded at 2 epochs is promoted to 4 while its sweep runs, the
//! coordinator is stopped and started again with the same grid file (which still says 2), and
//! the trial ends bit for bit where a fresh 4-epoch run ends (curve and final weights), its
//! 2-epoch weights kept aside. Refusals name the trial, the epochs and why.
//!
//! The sweep stays open while nothing trains: its second experiment needs MNIST, which the
//! worker's data folder lacks (the worker exits 3 once only that trial is left), until the test
//! cancels that trial.

use std::path::Path;
use std::time::Duration;

use sweep_common::results::Status;
use sweep_tests::results::Point;
use sweep_tests::{
    ResultsExt as _, Signal, Sweep, TrialExt as _, Worker, text, write_fashion_mnist,
};

/// The trial `step`, of `epochs` epochs; with `hold`, a trial no worker here can run.
fn grid(epochs: u32, hold: bool) -> String {
    let mut text = format!(
        r#"
[sweep]
name = "promoted"
seed = 5

[[experiment]]
name = "e"
dataset = "fashion-mnist"
trial_name = "step"
checkpoint_every = 1

[experiment.fixed]
hidden_width = 16
batch_size = 32
epochs = {epochs}
lr_schedule = "step"
lr_step_size = 1
lr_gamma = 0.5
"#
    );
    if hold {
        text.push_str(
            r#"
[[experiment]]
name = "hold"
dataset = "mnist"
trial_name = "hold"

[experiment.fixed]
hidden_width = 16
epochs = 1
"#,
        );
    }
    text
}

const ARGS: &[&str] = &["--lease-ttl", "120s", "--heartbeat", "1s", "--linger", "1s"];

/// Trial `step`'s attempts, curve, final weights' bytes and the epochs it was promoted to.
fn outcome(sweep: &Sweep) -> (u32, Vec<Point>, Vec<u8>, Option<u32>) {
    let results = sweep.results();
    let t = results.trial("step");
    assert_eq!(t.status, Status::Succeeded);
    let curve = t.curve_bits();
    let weights = t.weights.as_deref().expect("final weights");
    let bytes = std::fs::read(sweep.out().join(weights)).expect("read the final weights");
    (t.attempts, curve, bytes, t.promoted_epochs)
}

/// Starts one worker on `data` (no MNIST there): it trains what it can, then exits 3.
fn train_what_it_can(c: &sweep_tests::Coordinator, data: &Path) {
    let mut w = Worker::start("W", c, data, 1);
    w.expect_exit_code(3, Duration::from_secs(120));
}

#[test]
fn a_promoted_trial_continues_to_more_epochs_across_a_restart_exactly() {
    let fresh = Sweep::new(&grid(4, false));
    let data = fresh.mkdir("data");
    write_fashion_mnist(&data, 400, 3);
    let mut c = fresh.start_coordinator(ARGS);
    let mut w = Worker::start("W", &c, &data, 1);
    c.expect_exit_code(0, Duration::from_secs(120));
    w.expect_exit_code(0, Duration::from_secs(30));
    let (_, fresh_curve, fresh_weights, _) = outcome(&fresh);
    assert_eq!(fresh_curve.len(), 4);

    let sweep = Sweep::new(&grid(2, true));
    let c = sweep.start_coordinator(ARGS);
    train_what_it_can(&c, &data);
    c.wait_for_succeeded(1, Duration::from_secs(30));
    let short = outcome(&sweep);
    assert_eq!(short.1.len(), 2);

    // Refused, naming the trial, the epochs and why; nothing changes.
    let refused = |args: &[&str], why: &str| {
        let out = c.operator(args);
        assert!(!out.status.success(), "{args:?} was accepted");
        let said = text(&out.stderr);
        assert!(said.contains(why), "{args:?}: {said}");
    };
    refused(
        &["promote", "--trial", "step", "--epochs", "2"],
        "cannot promote trial \"step\" to 2 epochs: it trains 2 epochs already",
    );
    refused(
        &["promote", "--trial", "hold", "--epochs", "3"],
        "only a stopped or succeeded trial is promoted, and the trial is pending",
    );
    refused(
        &["promote", "--trial", "nope", "--epochs", "3"],
        "cannot promote trial \"nope\" to 3 epochs: no trial has this name or id",
    );
    refused(
        &["promote", "--experiment", "e", "--epochs", "3"],
        "cannot be used with",
    );

    let out = c.operator(&["promote", "--trial", "step", "--epochs", "4"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "promoted 1 trials to 4 epochs");
    // Queued again to continue: not promoted twice before it trains.
    refused(
        &["promote", "--trial", "step", "--epochs", "5"],
        "cannot promote trial \"step\" to 5 epochs: only a stopped or succeeded trial is \
         promoted, and the trial is pending",
    );

    // Stopped before it trains, and started again with the same grid (which says 2 epochs):
    // the promotion holds.
    let mut c = c;
    c.signal(Signal::SIGTERM);
    c.expect_exit_code(130, Duration::from_secs(30));
    let mut c = sweep.start_coordinator(ARGS);
    train_what_it_can(&c, &data);
    c.wait_for_succeeded(1, Duration::from_secs(30));
    let out = c.operator(&["cancel", "--trial", "hold"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    c.expect_exit_code(1, Duration::from_secs(30));

    let (attempts, curve, weights, promoted) = outcome(&sweep);
    assert_eq!(promoted, Some(4), "results.json says it was promoted");
    assert_eq!(
        attempts, 2,
        "the 2-epoch attempt, then the one that resumed it"
    );
    assert_eq!(curve, fresh_curve, "the promoted trial's whole curve");
    assert_eq!(
        curve[..2],
        short.1[..],
        "its first epochs are the short run's"
    );
    assert!(
        weights == fresh_weights,
        "the promoted trial's weights differ"
    );
    // Nothing computed is lost: the 2-epoch run's final weights are kept aside.
    let aside: Vec<_> = std::fs::read_dir(sweep.out().join("models"))
        .expect("models")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.file_name().is_some_and(|n| n != "step.safetensors"))
        .collect();
    assert_eq!(aside.len(), 1, "{aside:?}");
    assert!(std::fs::read(&aside[0]).is_ok_and(|b| b == short.2));
}
