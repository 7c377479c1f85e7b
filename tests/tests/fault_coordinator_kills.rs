//! The coordinator SIGKILLed five times (once right after a commit) and restarted on the same
//! state directory while workers train: the sweep resumes each time and ends with every trial
//! recorded once, with a fault-free run's numbers, and wall times that span the restarts.

use std::time::{Duration, Instant};

use sweep_common::rng::SplitMix64;
use sweep_tests::faults;
use sweep_tests::{Coordinator, Sweep, Worker};

const TRIALS: usize = 100;
const EPOCHS: u32 = 6;
const EPOCH: Duration = Duration::from_millis(50);
const WORKERS: usize = 3;
const SLOTS: u32 = 2;
const KILLS: usize = 5;
const ARGS: &[&str] = &[
    "--lease-ttl",
    "2s",
    "--heartbeat",
    "200ms",
    "--linger",
    "2s",
];

#[test]
fn five_coordinator_kills() {
    let grid = faults::grid("coordinator-kills", TRIALS, EPOCHS, 2);
    let (baseline, baseline_time) = faults::fault_free_run(&grid, WORKERS, SLOTS, EPOCH);

    let sweep = Sweep::new(&grid);
    let started = Instant::now();
    let mut c = sweep.start_coordinator_at("127.0.0.1:0", ARGS);
    let listen = c.addr().to_string();
    let url = c.url();
    let mut workers: Vec<Worker> = (0..WORKERS)
        .map(|i| Worker::start_test(&format!("w{i}"), &url, EPOCH, SLOTS))
        .collect();
    let mut rng = SplitMix64::new(5);
    let mut dead: Vec<Coordinator> = Vec::new();
    let mut results_at_kill = Vec::new();
    for k in 0..KILLS {
        if k == 0 {
            // Right after a commit: "trial succeeded" is logged once the result is durable.
            c.wait_for_stderr_line("trial succeeded", Duration::from_secs(60));
        } else {
            std::thread::sleep(Duration::from_millis(300 + rng.next_u64() % 700));
        }
        assert!(
            c.try_status().is_none(),
            "the sweep ended after only {k} kills"
        );
        let status = c.kill();
        assert_eq!(
            status.code(),
            None,
            "the coordinator was killed, not exited"
        );
        let succeeded = c.stderr().matches("trial succeeded").count();
        results_at_kill.push(succeeded);
        dead.push(c);
        c = sweep.start_coordinator_at(&listen, ARGS);
        c.wait_for_stderr_line("resuming the sweep", Duration::from_secs(10));
    }
    c.expect_exit_code(0, Duration::from_secs(300));
    let makespan = started.elapsed();
    for w in &mut workers {
        w.wait_exit(Duration::from_secs(60));
    }

    let logs = faults::logs(workers.iter().map(|w| &**w));
    let db = sweep.database();
    let audit = faults::audit(&db, TRIALS, EPOCHS);
    faults::assert_acknowledged_present(&db, &faults::acknowledged_results(&logs));
    faults::assert_wall_time_covers_training(&db);
    faults::assert_same_results(&sweep.results(), &baseline);
    // Nothing finished was trained again: each trial was trained to the end once.
    let trained: usize = logs
        .iter()
        .map(|l| l.matches(" trial trained ").count())
        .sum();
    let trained_again = trained - TRIALS;
    assert!(
        results_at_kill.iter().all(|&n| n < TRIALS),
        "every kill hit a sweep in progress"
    );
    eprintln!(
        "FAULTS coordinator-kills: {KILLS} kills (trials ended in each run: {results_at_kill:?}), \
         {} trials, {} duplicates, {} lost, {} extra leases, {} trials trained to the end twice, \
         {} epochs re-run, {} superseded rows; makespan {:.1} s vs {:.1} s fault-free",
        audit.trials,
        audit.duplicates,
        audit.lost,
        audit.extra_attempts,
        trained_again,
        faults::epochs_trained(&logs).saturating_sub(TRIALS * EPOCHS as usize),
        audit.superseded,
        makespan.as_secs_f64(),
        baseline_time.as_secs_f64()
    );
}
