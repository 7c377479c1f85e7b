//! Issue 15, item 2: the state directory holds the key behind worker secrets (in the database)
//! and the checkpoints, so it is its owner's alone: the folder 0700, the database, its -wal and
//! -shm files and the checkpoints 0600, whatever the umask; results (the final weights too) are
//! made as the umask says. A state directory left open by an older version is tightened at the
//! next start, and the log says so.

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use sweep_tests::{Coordinator, Sweep, Worker, bin, faults};

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o7777
}

/// The coordinator on `sweep`, under umask 022 (as most users have it), with `args`.
fn coordinator(sweep: &Sweep, args: &[&str]) -> Coordinator {
    let mut command = Command::new("sh");
    command
        .args(["-c", "umask 022; exec \"$0\" \"$@\""])
        .arg(bin("coordinator"))
        .arg("--grid")
        .arg(sweep.grid())
        .args(["--listen", "127.0.0.1:0", "--out"])
        .arg(sweep.out())
        .args(args);
    Coordinator::start(command)
}

#[test]
fn the_state_directory_is_private_and_results_follow_the_umask() {
    let sweep = Sweep::new(&faults::grid("modes", 2, 8, 1));
    let state = sweep.out().join("state");
    let mut c = coordinator(&sweep, &["--linger", "1s"]);
    assert_eq!(mode(&state), 0o700);
    let db = state.join("sweep.db");
    assert_eq!(mode(&db), 0o600);
    let mut w = Worker::start_test("A", &c.url(), Duration::from_millis(150), 1);
    // A checkpoint while the first trial runs (every epoch is checkpointed).
    let checkpoints = state.join("checkpoints");
    let checkpoint = c.wait_for("a checkpoint on disk", Duration::from_secs(60), |_| {
        std::fs::read_dir(&checkpoints)
            .ok()?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .find(|p| p.extension().is_some_and(|x| x == "safetensors"))
            .and_then(|p| {
                std::fs::metadata(&p)
                    .ok()
                    .map(|m| (p, m.permissions().mode()))
            })
    });
    assert_eq!(checkpoint.1 & 0o7777, 0o600, "{}", checkpoint.0.display());
    for suffix in ["-wal", "-shm"] {
        let path = state.join(format!("sweep.db{suffix}"));
        assert_eq!(mode(&path), 0o600, "{}", path.display());
    }
    c.expect_exit_code(0, Duration::from_secs(120));
    w.wait_exit(Duration::from_secs(30));
    for result in ["results.json", "summary.md", "models/t_1.safetensors"] {
        let path = sweep.out().join(result);
        assert_eq!(mode(&path), 0o644, "{}", path.display());
    }
    assert_eq!(mode(&state), 0o700);
    assert_eq!(mode(&db), 0o600);

    // An older version left them open: the next start tightens them and says so.
    std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let mut again = coordinator(&sweep, &["--linger", "0s"]);
    again.expect_exit_code(0, Duration::from_secs(60));
    assert_eq!(mode(&state), 0o700);
    assert_eq!(mode(&db), 0o600);
    let log = again.stderr();
    for (path, was) in [(&state, "0755"), (&db, "0644")] {
        assert!(
            log.lines().any(|l| l.contains("made private")
                && l.contains(&path.display().to_string())
                && l.contains(&format!("was={was}"))),
            "{log}"
        );
    }
}
