//! Storage faults on the coordinator, on real processes: an output folder that cannot be written
//! stops it before it serves (exit 2); a folder that breaks while it serves is reported to the
//! worker at once (not as a lost worker after the lease TTL) and in the status, the worker keeps
//! its result and its lease and tries again, and the sweep completes once the folder is fixed;
//! results that cannot be written are never claimed (exit 3, no path printed), and a rerun
//! writes them; a trial whose weights went missing is trained again by a rerun.
//!
//! The faults are made as root can feel them (chmod does not stop root): a file where a folder
//! should be, a folder where a file should be.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use sweep_common::FailureKind;
use sweep_tests::ResultsExt as _;
use sweep_tests::{Coordinator, Process, Sweep, Worker, bin, faults};

const EPOCH: Duration = Duration::from_millis(60);
const ARGS: &[&str] = &[
    "--lease-ttl",
    "1s",
    "--heartbeat",
    "200ms",
    "--linger",
    "1s",
];

/// Replaces the folder `path` (made if missing) with a regular file of that name.
fn file_instead_of_folder(path: &Path) {
    if path.is_dir() {
        std::fs::remove_dir_all(path).expect("remove the folder");
    }
    std::fs::write(path, b"not a folder\n").expect("write the file");
}

/// `coordinator status --json` of `c`.
fn status(c: &Coordinator) -> serde_json::Value {
    let mut command = Command::new(bin("coordinator"));
    command.args(["status", "--json", "--addr", &c.url()]);
    let mut p = Process::spawn("coordinator status", command);
    p.expect_exit_code(0, Duration::from_secs(30));
    serde_json::from_str(&p.stdout()).expect("status JSON")
}

/// Polls the status of `c` until its warning satisfies `check`; returns the warning.
fn wait_for_warning(c: &Coordinator, what: &str, check: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let s = status(c);
        let warning = s["warning"].as_str().unwrap_or_default().to_owned();
        if check(&warning) {
            return warning;
        }
        assert!(
            Instant::now() < deadline,
            "the status never said {what}; last warning: {warning:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The number in "(N failures over" after `what` in a status warning.
fn failures(warning: &str, what: &str) -> u64 {
    let Some(at) = warning.find(&format!("cannot store {what} (")) else {
        return 0;
    };
    let rest = &warning[at..];
    rest[rest.find('(').unwrap_or(0) + 1..]
        .split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

#[test]
fn an_output_folder_that_cannot_be_written_stops_the_start() {
    let grid = faults::grid("unwritable", 2, 2, 1);
    for (folder, words) in [
        ("models", "folder of final weights"),
        ("figures", "folder of figures"),
        ("state/checkpoints", "folder of checkpoints"),
    ] {
        let sweep = Sweep::new(&grid);
        std::fs::create_dir_all(sweep.out().join("state")).unwrap();
        file_instead_of_folder(&sweep.out().join(folder));
        let mut c = Process::spawn("coordinator", sweep.coordinator_command(ARGS));
        c.expect_exit_code(2, Duration::from_secs(30));
        let out = c.output();
        assert!(
            !out.stdout.contains("listening on"),
            "it served:\n{}",
            out.stdout
        );
        assert!(
            out.stderr.contains(&format!("cannot write in the {words}"))
                && out.stderr.contains(folder),
            "{folder}: {}",
            out.stderr
        );
        assert!(
            !sweep.database().exists(),
            "{folder}: a database was made before the check"
        );
    }
}

#[test]
fn a_storage_failure_is_reported_at_once_and_the_sweep_recovers_when_fixed() {
    const TRIALS: usize = 3;
    const EPOCHS: u32 = 4;
    let grid = faults::grid("storage", TRIALS, EPOCHS, 1);
    let sweep = Sweep::new(&grid);
    let mut c = sweep.start_coordinator_at("127.0.0.1:0", ARGS);
    // Both upload folders break after the start-up check: a file where each folder was.
    let models = sweep.out().join("models");
    let checkpoints = sweep.out().join("state").join("checkpoints");
    file_instead_of_folder(&models);
    file_instead_of_folder(&checkpoints);
    let mut w = Worker::start_test("w", &c.url(), EPOCH, 1);

    // At once: the coordinator says it, the worker hears it, the status shows it.
    c.wait_for_stderr_line("storage failure", Duration::from_secs(30));
    w.wait_for_stderr_line(
        "the coordinator cannot store the final weights now",
        Duration::from_secs(30),
    );
    let warning = wait_for_warning(&c, "that final weights cannot be stored", |w| {
        w.contains("cannot store final weights") && w.contains("cannot store checkpoints")
    });
    assert!(warning.contains(&models.display().to_string()), "{warning}");
    // The worker keeps its result and its lease while it tries again, for several lease TTLs.
    wait_for_warning(&c, "ten failures to store the weights", |w| {
        failures(w, "final weights") >= 10
    });
    assert!(
        w.stderr().contains("checkpoint not stored"),
        "the checkpoints' failures were not seen by the worker:\n{}",
        w.stderr()
    );

    // Fixed: the next tries store everything, the sweep ends, nothing trained twice.
    std::fs::remove_file(&models).unwrap();
    std::fs::remove_file(&checkpoints).unwrap();
    c.expect_exit_code(0, Duration::from_secs(120));
    w.wait_exit(Duration::from_secs(30));
    assert!(c.stderr().contains("storage works again"), "{}", c.stderr());
    let audit = faults::audit(&sweep.database(), TRIALS, EPOCHS);
    assert_eq!(
        audit.extra_attempts, 0,
        "an attempt was lost to the storage"
    );
    let results = sweep.results();
    for t in &results.trials {
        assert!(
            t.failed_attempts
                .iter()
                .all(|f| f.kind != FailureKind::LeaseExpired),
            "{}: a lease expired while the worker waited for the storage: {:?}",
            t.name,
            t.failed_attempts
        );
        let weights = t
            .weights
            .as_deref()
            .unwrap_or_else(|| panic!("{}: no weights", t.name));
        assert!(
            sweep.out().join(weights).is_file(),
            "{}: {weights} missing",
            t.name
        );
    }
}

#[test]
fn results_that_cannot_be_written_are_not_claimed_and_a_rerun_writes_them() {
    const TRIALS: usize = 2;
    let grid = faults::grid("results", TRIALS, 2, 1);
    let sweep = Sweep::new(&grid);
    let mut c = sweep.start_coordinator_at("127.0.0.1:0", ARGS);
    // A folder where results.json goes: it cannot be replaced.
    let results = sweep.out().join("results.json");
    std::fs::create_dir_all(results.join("in-the-way")).unwrap();
    let mut w = Worker::start_test("w", &c.url(), EPOCH, 1);
    c.expect_exit_code(3, Duration::from_secs(120));
    w.wait_exit(Duration::from_secs(30));
    let out = c.output();
    for claim in ["results:", "summary:", "sweep finished"] {
        assert!(
            !out.stdout.contains(claim),
            "it printed {claim:?} without writing it:\n{}",
            out.stdout
        );
    }
    assert!(
        out.stderr.contains("every trial is recorded in")
            && out.stderr.contains("results.json")
            && out.stderr.contains("run the same command again"),
        "{}",
        out.stderr
    );

    // Fixed, the same command writes what was missing, trains nothing, and says where.
    std::fs::remove_dir_all(&results).unwrap();
    let mut again = Process::spawn("coordinator again", sweep.coordinator_command(ARGS));
    again.expect_exit_code(0, Duration::from_secs(60));
    assert!(again.stdout().contains("results: "), "{}", again.stdout());
    assert_eq!(sweep.results().trials.len(), TRIALS);
    assert!(sweep.out().join("report.html").is_file());
}

#[test]
fn a_rerun_trains_again_a_trial_whose_weights_are_missing() {
    const TRIALS: usize = 2;
    const EPOCHS: u32 = 2;
    let grid = faults::grid("missing-weights", TRIALS, EPOCHS, 1);
    let sweep = Sweep::new(&grid);
    let mut c = sweep.start_coordinator_at("127.0.0.1:0", ARGS);
    let mut w = Worker::start_test("w", &c.url(), EPOCH, 1);
    c.expect_exit_code(0, Duration::from_secs(120));
    w.wait_exit(Duration::from_secs(30));
    let first = sweep.results();
    let lost = first.trial("t_1");
    let weights = sweep.out().join(lost.weights.as_deref().expect("weights"));
    let bytes = std::fs::read(&weights).unwrap();
    std::fs::remove_file(&weights).unwrap();

    let mut c = sweep.start_coordinator_at("127.0.0.1:0", ARGS);
    c.wait_for_stderr_line(
        "without their final weights in the output folder: trained again",
        Duration::from_secs(30),
    );
    let mut w = Worker::start_test("w2", &c.url(), EPOCH, 1);
    c.expect_exit_code(0, Duration::from_secs(120));
    w.wait_exit(Duration::from_secs(30));
    assert_eq!(
        sweep.results().trained_by("w2"),
        ["t_1"],
        "only the trial without weights"
    );
    assert!(
        weights.is_file(),
        "{} was not made again",
        weights.display()
    );
    // The test trainer's weights hold its epochs' timings: only their presence is compared.
    assert!(!bytes.is_empty());
    let again = sweep.results();
    faults::assert_same_results(&again, &first);
    let t = again.trial("t_1");
    assert!(
        t.failed_attempts
            .iter()
            .any(|f| f.kind == FailureKind::WeightsMissing),
        "{:?}",
        t.failed_attempts
    );
}
