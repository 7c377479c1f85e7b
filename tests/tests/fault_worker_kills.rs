//! 200 trials, 4 workers, 20 worker SIGKILLs at seeded random moments (each killed worker is
//! replaced by a new one): every trial is recorded exactly once, with the numbers of a
//! fault-free run, and the database holds nothing a superseded attempt wrote past its last
//! checkpoint.

use std::time::{Duration, Instant};

use sweep_common::rng::SplitMix64;
use sweep_tests::faults::{self, Audit};
use sweep_tests::{Sweep, Worker};

const TRIALS: usize = 200;
const EPOCHS: u32 = 6;
const EPOCH: Duration = Duration::from_millis(40);
const WORKERS: usize = 4;
const SLOTS: u32 = 2;
const KILLS: usize = 20;

#[test]
fn twenty_worker_kills() {
    let grid = faults::grid("worker-kills", TRIALS, EPOCHS, 2);
    let (baseline, baseline_time) = faults::fault_free_run(&grid, WORKERS, SLOTS, EPOCH);

    let sweep = Sweep::new(&grid);
    let started = Instant::now();
    let mut c = sweep.start_coordinator_at(
        "127.0.0.1:0",
        &[
            "--lease-ttl",
            "1s",
            "--heartbeat",
            "200ms",
            "--linger",
            "1s",
        ],
    );
    let url = c.url();
    let mut workers: Vec<Worker> = (0..WORKERS)
        .map(|i| Worker::start_test(&format!("w{i}"), &url, EPOCH, SLOTS))
        .collect();
    let mut killed: Vec<Worker> = Vec::new();
    let mut rng = SplitMix64::new(20);
    let mut mid_trial = 0;
    for k in 0..KILLS {
        std::thread::sleep(Duration::from_millis(150 + rng.next_u64() % 250));
        assert!(
            c.try_status().is_none(),
            "the sweep ended after only {k} kills: make the trials longer"
        );
        let i = (rng.next_u64() % WORKERS as u64) as usize;
        // A worker is killed once the coordinator's status shows it training a trial: a kill
        // before it registered tests nothing.
        let name = workers[i].name().to_owned();
        c.wait_for_epoch_on(&name, 0, Duration::from_secs(30));
        let replacement = Worker::start_test(&format!("w{}", WORKERS + k), &url, EPOCH, SLOTS);
        let mut victim = std::mem::replace(&mut workers[i], replacement);
        let status = victim.kill();
        assert_eq!(
            status.code(),
            None,
            "{} was killed, not exited",
            victim.name()
        );
        // It was seen training just before: killed mid-trial, unless it ended that trial in
        // between (the log tells).
        let log = victim.stderr();
        let started_trials = log.lines().filter(|l| l.contains(" training ")).count();
        let ended = log
            .lines()
            .filter(|l| l.contains("completion acknowledged"))
            .count();
        if started_trials > ended {
            mid_trial += 1;
        }
        killed.push(victim);
    }
    c.expect_exit_code(0, Duration::from_secs(300));
    let makespan = started.elapsed();
    for w in &mut workers {
        w.wait_exit(Duration::from_secs(30));
    }

    let logs = faults::logs(killed.iter().chain(&workers).map(|w| &**w));
    let db = sweep.database();
    let audit: Audit = faults::audit(&db, TRIALS, EPOCHS);
    faults::assert_acknowledged_present(&db, &faults::acknowledged_results(&logs));
    faults::assert_same_results(&sweep.results(), &baseline);
    let trained = faults::epochs_trained(&logs);
    assert!(
        mid_trial >= KILLS * 3 / 4,
        "only {mid_trial} of {KILLS} kills hit a worker mid-trial"
    );
    assert!(
        audit.extra_attempts > 0,
        "no lease was ever lost: the kills did not fire"
    );
    eprintln!(
        "FAULTS worker-kills: {KILLS} kills ({mid_trial} mid-trial), {} trials, {} duplicates, {} lost, \
         {} extra leases, {} results resumed from checkpoints, {} epochs re-run ({} trained for {} needed), \
         {} superseded rows kept; makespan {:.1} s vs {:.1} s fault-free",
        audit.trials,
        audit.duplicates,
        audit.lost,
        audit.extra_attempts,
        audit.resumed,
        trained.saturating_sub(TRIALS * EPOCHS as usize),
        trained,
        TRIALS * EPOCHS as usize,
        audit.superseded,
        makespan.as_secs_f64(),
        baseline_time.as_secs_f64()
    );
}
