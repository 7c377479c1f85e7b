//! Two coordinators on one sweep: a second coordinator on the same output folder, on its own
//! state directory but the same output folder, or on the same state directory with another
//! output folder, exits 2 naming the folder and the process holding it, before it serves or
//! writes anything; `coordinator report` on a folder in use does the same. The first one,
//! SIGKILLed, never blocks its own restart, which finishes the sweep.

use std::process::Command;
use std::time::Duration;

use sweep_tests::{Process, Sweep, Worker, bin, faults};

const TRIALS: usize = 4;
const EPOCHS: u32 = 3;
const EPOCH: Duration = Duration::from_millis(100);
const ARGS: &[&str] = sweep_tests::QUICK_LEASES;

/// Runs `command` (a second coordinator) and checks that it exits 2 without serving, saying
/// that `folder` is held by process `pid`.
fn refused(label: &str, command: Command, folder: &std::path::Path, pid: u32) -> String {
    let mut p = Process::spawn(label, command);
    p.expect_exit_code(2, Duration::from_secs(30));
    let out = p.output();
    assert!(
        !out.stdout.contains("listening on"),
        "{label} served:\n{}",
        out.stdout
    );
    for expected in [
        "in use by another coordinator".to_owned(),
        folder.display().to_string(),
        format!("pid {pid} on host "),
    ] {
        assert!(
            out.stderr.contains(&expected),
            "{label}: {expected:?} not in its error:\n{}",
            out.stderr
        );
    }
    out.stderr
}

#[test]
fn a_second_coordinator_on_the_same_folders_exits_2() {
    let grid = faults::grid("two-coordinators", TRIALS, EPOCHS, 1);
    let sweep = Sweep::new(&grid);
    let mut first = sweep.start_coordinator_at("127.0.0.1:0", ARGS);
    let pid = first.pid();
    let state = sweep.out().join("state");

    // The same command: the output folder is held (checked first).
    refused(
        "same command",
        sweep.coordinator_command(ARGS),
        sweep.out(),
        pid,
    );
    // Its own state directory, the same output folder (it would overwrite results.json).
    let other_state = sweep.mkdir("other-state");
    let mut command = sweep.coordinator_command(ARGS);
    command.arg("--state-dir").arg(&other_state);
    refused("same --out", command, sweep.out(), pid);
    assert!(
        !other_state.join("sweep.db").exists(),
        "the refused coordinator created a database"
    );
    // The same state directory, another output folder.
    let other_out = sweep.path().join("other-out");
    let mut command = Command::new(bin("coordinator"));
    command
        .arg("--grid")
        .arg(sweep.grid())
        .args(["--listen", "127.0.0.1:0", "--out"])
        .arg(&other_out)
        .arg("--state-dir")
        .arg(&state)
        .args(ARGS);
    let stderr = refused("same --state-dir", command, &state, pid);
    assert!(stderr.contains("state directory"), "{stderr}");
    // The report of a folder in use waits for the sweep's own.
    let mut report = Command::new(bin("coordinator"));
    report.arg("report").arg("--out").arg(sweep.out());
    refused("report", report, sweep.out(), pid);

    // The first coordinator still serves; killed, it restarts on the same folders at once.
    let url = first.url();
    let listen = first.addr().to_string();
    let mut worker = Worker::start_test("w", &url, EPOCH, 1);
    first.wait_for_stderr_line("trial succeeded", Duration::from_secs(60));
    let status = first.kill();
    assert_eq!(status.code(), None, "killed, not exited");
    let mut second = sweep.start_coordinator_at(&listen, ARGS);
    second.expect_exit_code(0, Duration::from_secs(120));
    worker.wait_exit(Duration::from_secs(30));
    faults::audit(&sweep.database(), TRIALS, EPOCHS);
    assert_eq!(sweep.results().trials.len(), TRIALS);
}
