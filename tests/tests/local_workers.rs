//! `coordinator --local-workers N`: one command runs a sweep with workers started as the
//! coordinator's children (real processes, the test trainer). They train the sweep and exit
//! with it; SIGTERM to the coordinator drains them (their trials checkpointed, their leases
//! given back) and nothing is left running; one killed mid-sweep is restarted; workers that
//! cannot start stop the sweep with a clear error instead of leaving it waiting forever.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use sweep_common::results::Status;
use sweep_tests::TrialExt as _;
use sweep_tests::{Coordinator, Signal, Sweep, bin, faults, field};

/// The coordinator's arguments for `n` local CPU workers with the test trainer.
fn local_args(n: u32, epoch_ms: u64) -> Vec<String> {
    vec![
        "--local-workers".into(),
        n.to_string(),
        "--worker-bin".into(),
        bin("worker").display().to_string(),
        format!("--local-worker-arg=--test-trainer={epoch_ms}ms"),
        "--local-worker-arg=--offline".into(),
        // A worker whose coordinator vanished (a test that failed) leaves soon.
        "--local-worker-arg=--patience=10s".into(),
        "--linger".into(),
        "2s".into(),
        "--heartbeat".into(),
        "1s".into(),
    ]
}

fn start(sweep: &Sweep, args: &[String]) -> Coordinator {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    sweep.start_coordinator(&args)
}

/// (name, pid) of every local worker the coordinator started, in order.
fn started(log: &str) -> Vec<(String, i32)> {
    log.lines()
        .filter(|l| l.contains("local worker started"))
        .filter_map(|l| {
            Some((
                field(l, "worker")?.to_owned(),
                field(l, "pid")?.parse().ok()?,
            ))
        })
        .collect()
}

/// Whether a process `pid` still runs (a zombie counts as gone: it has ended).
fn running(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state is the field after the parenthesised name.
        Ok(stat) => stat
            .rsplit_once(") ")
            .is_some_and(|(_, rest)| !rest.starts_with('Z')),
        Err(_) => false,
    }
}

fn assert_none_running(pids: &[(String, i32)], log: &str) {
    for (name, pid) in pids {
        assert!(!running(*pid), "{name} (pid {pid}) still runs:\n{log}");
    }
}

/// Waits up to `timeout` until `path` contains `text`.
fn wait_for_file_text(path: &Path, text: &str, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    loop {
        if std::fs::read_to_string(path).is_ok_and(|t| t.contains(text)) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{} has no {text:?} after {timeout:?}",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn worker_log(sweep: &Sweep, name: &str) -> PathBuf {
    sweep.out().join("logs").join(format!("{name}.log"))
}

#[test]
fn one_command_runs_the_sweep_and_leaves_nothing_running() {
    let sweep = Sweep::new(&faults::grid("local", 6, 3, 0));
    let mut c = start(&sweep, &local_args(2, 20));
    c.expect_exit_code(0, Duration::from_secs(90));
    let log = c.stderr();
    let pids = started(&log);
    let mut names: Vec<&str> = pids.iter().map(|(n, _)| n.as_str()).collect();
    names.sort_unstable();
    assert_eq!(names, ["local-cpu-1", "local-cpu-2"], "{log}");
    assert_none_running(&pids, &log);
    assert_eq!(
        log.matches("local worker finished").count(),
        2,
        "both exited on their own, told the sweep is finished:\n{log}"
    );
    let results = sweep.results();
    assert_eq!(results.trials.len(), 6);
    for t in &results.trials {
        assert_eq!(t.status, Status::Succeeded, "{}", t.name);
        let w = t.worker_name().unwrap_or_default();
        assert!(w.starts_with("local-cpu-"), "{} trained by {w:?}", t.name);
    }
    assert!(worker_log(&sweep, "local-cpu-1").is_file());
}

#[test]
fn sigterm_drains_the_local_workers_and_a_rerun_resumes() {
    let sweep = Sweep::new(&faults::grid("local-term", 4, 20, 1));
    let args = local_args(2, 150);
    let mut c = start(&sweep, &args);
    for name in ["local-cpu-1", "local-cpu-2"] {
        wait_for_file_text(
            &worker_log(&sweep, name),
            "epoch 2/",
            Duration::from_secs(60),
        );
    }
    c.signal(Signal::SIGTERM);
    c.expect_exit_code(130, Duration::from_secs(60));
    let log = c.stderr();
    let pids = started(&log);
    assert_eq!(pids.len(), 2, "{log}");
    assert_none_running(&pids, &log);
    for name in ["local-cpu-1", "local-cpu-2"] {
        let wlog = std::fs::read_to_string(worker_log(&sweep, name)).unwrap_or_default();
        assert!(
            wlog.contains("shutting down: finishing the epoch"),
            "{name} drained:\n{wlog}"
        );
    }
    // The same command again resumes from the checkpoints and finishes.
    let mut again = start(&sweep, &args);
    again.expect_exit_code(0, Duration::from_secs(120));
    let relog = again.stderr();
    assert!(relog.contains("resuming the sweep"), "{relog}");
    assert_none_running(&started(&relog), &relog);
    let results = sweep.results();
    assert!(results.trials.iter().all(|t| t.succeeded()));
}

#[test]
fn a_killed_local_worker_is_restarted() {
    let sweep = Sweep::new(&faults::grid("local-kill", 4, 10, 1));
    let mut c = start(&sweep, &local_args(1, 50));
    wait_for_file_text(
        &worker_log(&sweep, "local-cpu-1"),
        "epoch 2/",
        Duration::from_secs(60),
    );
    let first = started(&c.stderr());
    let (_, pid) = first
        .first()
        .cloned()
        .unwrap_or_else(|| panic!("{}", c.stderr()));
    let status = Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status()
        .expect("run kill");
    assert!(status.success());
    c.wait_for_stderr_line("restarting it", Duration::from_secs(30));
    c.expect_exit_code(0, Duration::from_secs(120));
    let log = c.stderr();
    let pids = started(&log);
    assert_eq!(pids.len(), 2, "started again once:\n{log}");
    assert_eq!(pids[1].0, "local-cpu-1");
    assert_none_running(&pids, &log);
    let results = sweep.results();
    assert!(results.trials.iter().all(|t| t.succeeded()));
}

#[test]
fn local_workers_that_cannot_start_stop_the_sweep_with_why() {
    let sweep = Sweep::new(&faults::grid("local-bad", 2, 2, 0));
    let mut args = local_args(2, 20);
    args.push("--local-worker-arg=--no-such-flag".into());
    let mut c = start(&sweep, &args);
    c.expect_exit_code(3, Duration::from_secs(60));
    let err = c.stderr();
    assert!(
        err.contains("every local worker stopped for good")
            && err.contains("local-cpu-1: it refused its arguments (exit status 2)"),
        "{err}"
    );
    assert_none_running(&started(&err), &err);
}

#[test]
fn a_missing_worker_executable_is_refused_before_serving() {
    let sweep = Sweep::new(&faults::grid("local-missing", 2, 2, 0));
    let out = sweep
        .coordinator_command(&[
            "--local-workers",
            "1",
            "--worker-bin",
            "/nonexistent/worker",
        ])
        .output()
        .expect("run the coordinator");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("/nonexistent/worker (--worker-bin (or SWEEP_WORKER_BIN)) is not a file"),
        "{err}"
    );
}
