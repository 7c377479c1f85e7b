//! Issue 15, item 7: at the default level the coordinator's log tells the sweep's life (its
//! start, workers joining and leaving with the reason, trials leased and ending, progress, the
//! end), not its plumbing: checkpoints and uploads are at debug, so the log does not grow with
//! the number of epochs or checkpoints.

use std::time::Duration;

use sweep_tests::{Sweep, Worker, faults};

const TRIALS: usize = 3;
const EPOCHS: u32 = 12;

/// Runs the sweep (every epoch checkpointed) with `env` set on the coordinator; its stderr.
fn sweep_log(name: &str, env: &[(&str, &str)]) -> String {
    let sweep = Sweep::new(&faults::grid(name, TRIALS, EPOCHS, 1));
    let mut command = sweep.coordinator_command(&["--linger", "1s"]);
    command.env_remove("RUST_LOG");
    for (k, v) in env {
        command.env(k, v);
    }
    let mut c = sweep_tests::Coordinator::start(command);
    let mut w = Worker::start_test("A", &c.url(), Duration::from_millis(5), 1);
    c.expect_exit_code(0, Duration::from_secs(120));
    w.wait_exit(Duration::from_secs(30));
    c.stderr()
}

#[test]
fn the_default_log_tells_the_sweeps_life_not_its_plumbing() {
    let log = sweep_log("quiet", &[]);
    // Not its plumbing: 3 trials x 11 checkpoints each, and as many uploads, at debug.
    assert!(!log.contains("checkpoint recorded"), "{log}");
    assert!(!log.contains("artifact stored"), "{log}");
    // A handful of lines per trial, whatever the number of epochs and checkpoints (on the old
    // build: 2 per checkpoint per trial, 66 here on top).
    let lines = log.lines().count();
    assert!(
        lines <= 10 + 4 * TRIALS,
        "{lines} lines for {TRIALS} trials:\n{log}"
    );

    // The life of the sweep.
    for event in [
        "grid expanded",
        "listening",
        "worker registered",
        "trial leased",
        "trial succeeded",
        "progress: ",
        "worker leaving: told that the sweep is finished",
    ] {
        assert!(log.contains(event), "no {event:?} in:\n{log}");
    }

    // Still there for whoever asks.
    let debug = sweep_log("verbose", &[("RUST_LOG", "info,sweep_coordinator=debug")]);
    assert!(debug.contains("checkpoint recorded"), "{debug}");
    assert!(debug.contains("artifact stored"), "{debug}");
}
