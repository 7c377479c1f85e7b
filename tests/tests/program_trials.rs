//! Program trials (issue 19) through a real coordinator and worker: a sweep of a Python program
//! completes with the accuracies it printed, a program that exits 1 fails its trial with its
//! stderr, no token reaches a program, and a cancel reaches a program that ignores SIGTERM and
//! forks: its whole process group is gone.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use sweep_common::results::Status;
use sweep_tests::ResultsExt as _;
use sweep_tests::faults::test_worker_command;
use sweep_tests::{Sweep, Worker, bin};

/// The test program, from this crate's folder.
fn program() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("programs/trial.py")
        .display()
        .to_string()
}

fn grid(params: &str) -> String {
    format!(
        r#"
[sweep]
name = "prog"
max_attempts = 1

[[experiment]]
name = "p"
dataset = "fashion-mnist"
program = ["python3", "{}"]

[experiment.fixed]
epochs = 1

[experiment.params]
{params}
"#,
        program()
    )
}

/// Every log a trial's record names is in the output folder (issue 19: no dead link; the
/// coordinator names only the logs whose upload landed).
fn assert_logs_landed(sweep: &Sweep, results: &sweep_common::results::Results<'_>) {
    for t in &results.trials {
        for file in &t.logs {
            assert!(
                sweep.out().join(file).is_file(),
                "{} names {file}, which is not there",
                t.name
            );
        }
    }
}

/// A worker with a token in its environment (the program must not see it).
fn worker(name: &str, url: &str) -> Worker {
    let mut command = test_worker_command(name, url, Duration::from_millis(10), 1);
    command
        .args(["--drain-timeout", "1s"])
        .env("SWEEP_TOKEN", "")
        .env("SWEEP_WORKER_TOKEN", "sentinel-not-for-programs");
    Worker::from_command(name, command)
}

#[test]
fn a_sweep_of_a_program_reports_its_metrics_and_its_failures() {
    let sweep = Sweep::new(&grid("lr = [0.1, 0.2]\nmode = [\"ok\", \"fail\"]\n"));
    let mut c = sweep.start_coordinator(&["--linger", "1s"]);
    let mut w = worker("W", &c.url());
    c.expect_exit_code(1, Duration::from_secs(120));
    w.wait_exit(Duration::from_secs(30));
    let results = sweep.results();
    assert_eq!(results.trials.len(), 4);
    assert_logs_landed(&sweep, &results);
    for lr in ["0.1", "0.2"] {
        let ok = results.trial(&format!("p_lr-{lr}_mode-ok"));
        assert_eq!(ok.status, Status::Succeeded, "{ok:?}");
        let expected = 50.0 + 100.0 * lr.parse::<f64>().unwrap_or_default();
        assert!(
            (ok.test_accuracy.unwrap_or_default() - expected).abs() < 1e-9,
            "{ok:?}"
        );
        assert_eq!(ok.epochs.len(), 1);
        let failed = results.trial(&format!("p_lr-{lr}_mode-fail"));
        assert_eq!(failed.status, Status::Failed);
        // Their logs were uploaded into OUT and are named in results.json.
        let log = |t: &sweep_common::results::Trial, i: usize| {
            let file = t.logs.get(i).unwrap_or_else(|| panic!("no log {i}: {t:?}"));
            std::fs::read_to_string(sweep.out().join(file)).unwrap_or_default()
        };
        assert!(log(ok, 0).contains("training"), "{ok:?}");
        assert!(
            log(failed, 1).contains("ValueError: the program gave up"),
            "{failed:?}"
        );
        let attempt = &failed.failed_attempts[0];
        assert_eq!(attempt.kind, sweep_common::FailureKind::ProgramFailed);
        assert!(
            attempt.message.contains("status 1")
                && attempt.message.contains("ValueError: the program gave up"),
            "{attempt:?}"
        );
    }
    // The report links the logs.
    let report = std::fs::read_to_string(sweep.out().join("report.md")).expect("report.md");
    assert!(
        report.contains("[stderr](<logs/p_lr-0.1_mode-fail.stderr.log>)"),
        "{report}"
    );
}

/// Whether process `pid` is gone (or a zombie nobody reaped yet: it runs nothing).
fn gone(pid: &str) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit(')')
            .next()
            .is_some_and(|rest| rest.trim_start().starts_with('Z')),
    }
}

fn wait_until(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let end = Instant::now() + timeout;
    while !done() {
        assert!(Instant::now() < end, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_cancel_reaches_a_program_that_ignores_sigterm_and_forks() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let pids = dir.path().join("pids");
    let sweep = Sweep::new(&grid(&format!(
        "lr = 0.1\nmode = \"stubborn\"\npids = \"{}\"\n",
        pids.display()
    )));
    let mut c = sweep.start_coordinator(&["--heartbeat", "200ms", "--linger", "1s"]);
    let mut w = worker("W", &c.url());
    wait_until("the program's pids", Duration::from_secs(60), || {
        std::fs::read_to_string(&pids).is_ok_and(|t| t.ends_with('\n'))
    });
    let text = std::fs::read_to_string(&pids).expect("the pids");
    let out = Command::new(bin("coordinator"))
        .args(["cancel", "--addr", &c.url(), "--all", "--reason", "enough"])
        .output()
        .expect("run coordinator cancel");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    wait_until(
        "the program's group to end",
        Duration::from_secs(30),
        || text.split_whitespace().all(gone),
    );
    c.expect_exit_code(1, Duration::from_secs(30));
    w.wait_for_stderr_line("program ended", Duration::from_secs(30));
    // The coordinator may have left before the worker's next lease call; the worker would keep
    // calling for its patience.
    w.kill();
    let stderr = w.stderr();
    assert!(
        stderr.contains("did not end within its grace period"),
        "the program ignored SIGTERM, so it was killed:\n{stderr}"
    );
    let results = sweep.results();
    assert_eq!(
        results.trials[0].failure.as_deref(),
        Some("cancelled: enough")
    );
    // The logs came after the cancel ended the lease: refused, so not named.
    assert_logs_landed(&sweep, &results);
}

/// The process group of `pid`, from `/proc` (the field after the state).
fn process_group(pid: &str) -> Option<String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit(')')
        .next()?
        .split_whitespace()
        .nth(2)
        .map(str::to_owned)
}

/// Whether a process of `group` still runs (zombies run nothing).
fn group_runs(group: &str) -> bool {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return false;
    };
    entries.flatten().any(|e| {
        let pid = e.file_name().to_string_lossy().into_owned();
        pid.bytes().all(|b| b.is_ascii_digit())
            && !gone(&pid)
            && process_group(&pid).as_deref() == Some(group)
    })
}

/// Issue 19 part 3: a worker SIGKILLed mid-trial leaves nothing of its program running, not
/// even the children and grandchildren of a program that ignores SIGTERM (its supervisor kills
/// the whole process group when the worker dies).
#[test]
fn a_sigkilled_worker_leaves_no_process_of_its_programs_group() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let pids = dir.path().join("pids");
    let sweep = Sweep::new(&grid(&format!(
        "lr = 0.1\nmode = \"stubborn\"\npids = \"{}\"\n",
        pids.display()
    )));
    let mut c = sweep.start_coordinator(&["--heartbeat", "200ms"]);
    let mut w = worker("W", &c.url());
    wait_until("the program's pids", Duration::from_secs(60), || {
        std::fs::read_to_string(&pids).is_ok_and(|t| t.ends_with('\n'))
    });
    let text = std::fs::read_to_string(&pids).expect("the pids");
    let all: Vec<&str> = text.split_whitespace().collect();
    assert_eq!(
        all.len(),
        3,
        "the program, its child, its grandchild: {text}"
    );
    let group = process_group(all[0]).expect("the program's process group");
    assert!(
        all.iter()
            .all(|p| process_group(p).as_ref() == Some(&group))
    );
    w.kill();
    wait_until(
        "the program's whole group to end",
        Duration::from_secs(30),
        || all.iter().all(|p| gone(p)) && !group_runs(&group),
    );
    c.kill();
}

/// The client library's folder, for the programs' `PYTHONPATH`.
fn client_library() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../clients/python")
        .display()
        .to_string()
}

/// Issue 19 parts 2 and 4: a worker SIGKILLed mid-trial takes its program along (PDEATHSIG),
/// and the trial resumes on another worker from the checkpoint folder the program marked
/// through the client library.
#[test]
fn a_trial_resumes_from_its_programs_checkpoint_on_another_worker() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let attempts = dir.path().join("attempts");
    let ready = dir.path().join("ready");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("programs/resumable.py");
    let sweep = Sweep::new(&format!(
        r#"
[sweep]
name = "resume"
max_attempts = 3

[[experiment]]
name = "r"
dataset = "fashion-mnist"
program = ["python3", "{}"]
env = {{ PYTHONPATH = "{}" }}

[experiment.fixed]
epochs = 3

[experiment.params]
attempts = "{}"
ready = "{}"
"#,
        script.display(),
        client_library(),
        attempts.display(),
        ready.display()
    ));
    let mut c = sweep.start_coordinator(&["--lease-ttl", "2s", "--heartbeat", "200ms"]);
    let mut a = worker("A", &c.url());
    wait_until("the first checkpoint", Duration::from_secs(60), || {
        ready.exists()
    });
    let pid = std::fs::read_to_string(&ready).expect("the program's pid");
    a.wait_for_stderr_line("checkpoint uploaded", Duration::from_secs(30));
    a.kill();
    wait_until(
        "the killed worker's program to end",
        Duration::from_secs(10),
        || gone(pid.trim()),
    );
    let mut b = worker("B", &c.url());
    c.expect_exit_code(0, Duration::from_secs(120));
    b.wait_exit(Duration::from_secs(30));
    let results = sweep.results();
    assert_logs_landed(&sweep, &results);
    let t = &results.trials[0];
    assert_eq!(t.status, Status::Succeeded, "{t:?}");
    assert_eq!(t.attempts, 2, "{t:?}");
    // 1 + 2 + 3: the second attempt started from the first one's total.
    assert_eq!(t.test_accuracy, Some(6.0), "{t:?}");
    let curve: Vec<f64> = t.epochs.iter().map(|m| m.test_accuracy).collect();
    assert_eq!(curve, [1.0, 3.0, 6.0], "{t:?}");
    let log = std::fs::read_to_string(&attempts).expect("the attempts");
    let resumed: Vec<&str> = log
        .lines()
        .filter_map(|l| l.split_whitespace().nth(1))
        .collect();
    assert_eq!(resumed, ["0", "1"], "{log}");
}

/// Issue 19 part 2: a cancel reaches a program through the client library (it ignores SIGTERM),
/// and the report it sends after its lease ended is answered "stop" and never recorded.
#[test]
fn a_cancel_reaches_the_client_and_later_reports_are_not_recorded() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let (started, told) = (dir.path().join("started"), dir.path().join("told"));
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("programs/obedient.py");
    let sweep = Sweep::new(&format!(
        r#"
[sweep]
name = "obey"
max_attempts = 1

[[experiment]]
name = "o"
dataset = "fashion-mnist"
program = ["python3", "{}"]
env = {{ PYTHONPATH = "{}" }}

[experiment.fixed]
epochs = 3

[experiment.params]
started = "{}"
told = "{}"
"#,
        script.display(),
        client_library(),
        started.display(),
        told.display()
    ));
    let mut c = sweep.start_coordinator(&["--heartbeat", "200ms", "--linger", "1s"]);
    let mut w = worker("W", &c.url());
    wait_until(
        "the program's first report",
        Duration::from_secs(60),
        || started.exists(),
    );
    let out = Command::new(bin("coordinator"))
        .args(["cancel", "--addr", &c.url(), "--all", "--reason", "enough"])
        .output()
        .expect("run coordinator cancel");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    wait_until("the program to be told", Duration::from_secs(30), || {
        told.exists()
    });
    assert_eq!(
        std::fs::read_to_string(&told).expect("told").trim(),
        "True",
        "the report after the cancel is answered stop"
    );
    c.expect_exit_code(1, Duration::from_secs(30));
    w.wait_for_stderr_line("program ended", Duration::from_secs(30));
    w.kill();
    let results = sweep.results();
    let t = &results.trials[0];
    assert_eq!(t.failure.as_deref(), Some("cancelled: enough"), "{t:?}");
    assert!(t.epochs.iter().all(|m| m.epoch == 1), "{t:?}");
}

/// Issue 19 part 5: scalars a program reports beyond the accuracies and the loss reach
/// results.json, and the report gives each name a column (its last value) and a curve.
#[test]
fn a_programs_own_scalars_reach_the_results_and_the_report() {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("programs/scalars.py");
    let sweep = Sweep::new(&format!(
        r#"
[sweep]
name = "scalars"
max_attempts = 1

[[experiment]]
name = "s"
dataset = "fashion-mnist"
program = ["python3", "{}"]
env = {{ PYTHONPATH = "{}" }}

[experiment.fixed]
epochs = 2

[experiment.params]
lr = [0.5, 1.5]
"#,
        script.display(),
        client_library(),
    ));
    let mut c = sweep.start_coordinator(&["--linger", "1s"]);
    let mut w = worker("W", &c.url());
    c.expect_exit_code(0, Duration::from_secs(120));
    w.wait_exit(Duration::from_secs(30));
    let results = sweep.results();
    assert_logs_landed(&sweep, &results);
    for lr in [0.5, 1.5] {
        let t = results.trial(&format!("s_lr-{lr}"));
        assert_eq!(t.status, Status::Succeeded, "{t:?}");
        let scaled: Vec<Option<f64>> = t
            .epochs
            .iter()
            .map(|e| e.scalars.get("lr_scaled"))
            .collect();
        assert_eq!(scaled, [Some(lr), Some(2.0 * lr)], "{t:?}");
        assert_eq!(t.epochs[1].scalars.get("val_loss"), Some(0.25), "{t:?}");
    }
    let report = std::fs::read_to_string(sweep.out().join("report.md")).expect("report.md");
    assert!(
        report.contains("lr_scaled (last)") && report.contains("val_loss (last)"),
        "{report}"
    );
    for name in ["lr_scaled", "val_loss"] {
        let figure = sweep.out().join(format!("figures/s-scalar-{name}.svg"));
        assert!(figure.is_file(), "no {}", figure.display());
    }
}

/// Issue 19 part 2 with issue 17: early stopping reaches a program through the client library.
/// Three configurations ranked by `quality`, one worker, ASHA with a rung at epoch 1: the first
/// two reach the rung while it cannot pass them and are stopped there; the last closes the rung,
/// passes and trains to its end. A stopped program learns it through the client library (its
/// report's answer or `should_stop()`), says so, and is gone; its trial is `stopped` with its
/// curve ending at the rung.
#[test]
fn early_stopping_reaches_a_program_and_it_ends() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("programs/ranked.py");
    let sweep = Sweep::new(&format!(
        r#"
[sweep]
name = "ranked"

[[experiment]]
name = "r"
dataset = "fashion-mnist"
program = ["python3", "{}"]
env = {{ PYTHONPATH = "{}" }}

[experiment.fixed]
epochs = 4

[experiment.params]
dir = "{}"
quality = [1, 2, 3]

[experiment.stopping]
rule = "asha"
min_epochs = 1
reduction = 3
"#,
        script.display(),
        client_library(),
        dir.path().display()
    ));
    let mut c = sweep.start_coordinator(&["--heartbeat", "200ms", "--linger", "1s"]);
    let mut w = worker("W", &c.url());
    c.expect_exit_code(0, Duration::from_secs(120));
    w.wait_exit(Duration::from_secs(30));
    let results = sweep.results();
    let read = |name: &str, q: u32| {
        std::fs::read_to_string(dir.path().join(format!("{name}-{q}")))
            .map(|t| t.trim().to_owned())
            .ok()
    };
    for t in &results.trials {
        let q: u32 = if t.name.contains("quality-1") {
            1
        } else if t.name.contains("quality-2") {
            2
        } else {
            3
        };
        let pid = read("pid", q).expect("the program ran");
        assert!(gone(&pid), "{}: its program is gone", t.name);
        let curve: Vec<u32> = t.epochs.iter().map(|m| m.epoch).collect();
        if q < 3 {
            assert_eq!(t.status, Status::Stopped, "{t:?}");
            assert_eq!(t.stopped.as_ref().map(|s| s.epoch), Some(1), "{t:?}");
            assert_eq!(curve, [1], "{t:?}");
            assert!(read("told", q).is_some(), "{}: told to stop", t.name);
        } else {
            assert_eq!(t.status, Status::Succeeded, "{t:?}");
            assert_eq!(curve, [1, 2, 3, 4], "{t:?}");
            assert_eq!(read("told", q), None, "the best is never told to stop");
        }
    }
    assert_eq!(results.trials.len(), 3);
}
