//! A worker frozen with SIGSTOP past its lease, then resumed: the coordinator re-leased its
//! trial meanwhile, refuses everything the zombie sends about the old lease, keeps none of it,
//! and the zombie stops that trial by itself.

use std::time::{Duration, Instant};

use sweep_tests::faults;
use sweep_tests::{Signal, Sweep, Worker, field};

const TRIALS: usize = 6;
const EPOCHS: u32 = 8;
const EPOCH: Duration = Duration::from_millis(250);

#[test]
fn frozen_worker_writes_are_refused() {
    let grid = faults::grid("zombie", TRIALS, EPOCHS, 2);
    let (baseline, _) = faults::fault_free_run(&grid, 2, 1, EPOCH);

    let sweep = Sweep::new(&grid);
    let mut c = sweep.start_coordinator_at(
        "127.0.0.1:0",
        &[
            "--lease-ttl",
            "1s",
            "--heartbeat",
            "200ms",
            "--linger",
            "2s",
        ],
    );
    let url = c.url();
    let mut z = Worker::start_test("Z", &url, EPOCH, 1);
    let z_id = z.id();
    let line = z.wait_for_stderr_line("epoch 1/8:", Duration::from_secs(30));
    let trial = field(&line, "trial").expect("trial").to_owned();
    z.signal(Signal::SIGSTOP);
    let frozen_at = Instant::now();
    let reported_before: u32 = z
        .stderr()
        .lines()
        .filter(|l| field(l, "trial") == Some(trial.as_str()) && l.contains(": loss "))
        .count() as u32;
    let mut w = Worker::start_test("W", &url, EPOCH, 1);
    // The fault fires: Z's lease expires and W takes the trial over.
    c.wait_for_stderr_line(
        &format!("trial queued again trial={trial} "),
        Duration::from_secs(10),
    );
    w.wait_for_stderr_line(&format!("trial={trial} "), Duration::from_secs(30));
    std::thread::sleep(Duration::from_secs(3).saturating_sub(frozen_at.elapsed()));
    z.signal(Signal::SIGCONT);
    z.wait_for_stderr_line("stopping the trial", Duration::from_secs(10));
    c.expect_exit_code(0, Duration::from_secs(120));
    z.wait_exit(Duration::from_secs(30));
    w.wait_exit(Duration::from_secs(30));

    // Everything Z said about the old lease after it woke was refused.
    let short = &z_id[..8];
    let c_log = c.stderr();
    let refused = c_log
        .lines()
        .filter(|l| field(l, "worker") == Some(short))
        .filter(|l| l.contains("revoked") || l.contains("refused"))
        .count();
    assert!(
        refused >= 1,
        "the coordinator refused nothing from Z:\n{c_log}"
    );
    // And none of it was kept: Z's attempt has only the epochs it reported before it froze.
    let db = sweep.database();
    let conn = rusqlite::Connection::open(&db).expect("database");
    let (id, success): (String, u32) = conn
        .query_row(
            "SELECT id, success_attempt FROM trials WHERE name = ?1",
            [&trial],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .expect("the trial");
    assert_ne!(
        success, 1,
        "{trial}'s result came from the zombie's attempt"
    );
    let zombie_epochs: u32 = conn
        .query_row(
            "SELECT COALESCE(MAX(epoch), 0) FROM epochs WHERE trial = ?1 AND attempt = 1",
            [&id],
            |r| r.get(0),
        )
        .expect("epochs");
    assert!(
        zombie_epochs <= reported_before,
        "epoch {zombie_epochs} of the zombie's attempt was kept; it had reported {reported_before} before it froze"
    );
    let zombie_after: usize = z
        .stderr()
        .lines()
        .filter(|l| field(l, "trial") == Some(trial.as_str()) && l.contains(": loss "))
        .count();
    let audit = faults::audit(&db, TRIALS, EPOCHS);
    faults::assert_same_results(&sweep.results(), &baseline);
    eprintln!(
        "FAULTS zombie: 1 SIGSTOP of {:.1} s (3 lease TTLs), {refused} calls from the zombie refused, \
         zombie trained {} epochs of {trial} ({reported_before} before freezing, {zombie_epochs} kept), \
         {} duplicates, {} lost, {} extra leases",
        3.0, zombie_after, audit.duplicates, audit.lost, audit.extra_attempts
    );
}
