//! Every worker killed mid-sweep: the coordinator does not hang silently (its status says that
//! no worker has called for a while) and the sweep completes when new workers come.

use std::process::Command;
use std::time::{Duration, Instant};

use sweep_tests::faults;
use sweep_tests::{Sweep, Worker, bin};

const TRIALS: usize = 20;
const EPOCHS: u32 = 6;
const EPOCH: Duration = Duration::from_millis(100);

fn status_warning(url: &str) -> Option<String> {
    let out = Command::new(bin("coordinator"))
        .args(["status", "--addr", url, "--json"])
        .output()
        .expect("run coordinator status");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("status JSON");
    v.get("warning").and_then(|w| w.as_str()).map(str::to_owned)
}

#[test]
fn all_workers_gone_then_back() {
    let grid = faults::grid("all-gone", TRIALS, EPOCHS, 2);
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
            "--progress-every",
            "500ms",
        ],
    );
    let url = c.url();
    let mut a = Worker::start_test("A", &url, EPOCH, 1);
    let mut b = Worker::start_test("B", &url, EPOCH, 1);
    c.wait_for_succeeded(3, Duration::from_secs(90));
    assert_eq!(
        status_warning(&url),
        None,
        "workers are training: no warning"
    );
    a.kill();
    b.kill();
    // The sweep is stalled and says so.
    let started = Instant::now();
    let warning = loop {
        if let Some(w) = status_warning(&url) {
            break w;
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "no warning after 15 s without workers"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(warning.contains("no worker has called for"), "{warning}");
    assert!(warning.contains("trials are waiting"), "{warning}");
    c.wait_for_stderr_line("warning: no worker has called", Duration::from_secs(10));
    assert!(c.try_status().is_none(), "the coordinator gave up");

    let mut a2 = Worker::start_test("A2", &url, EPOCH, 1);
    let mut b2 = Worker::start_test("B2", &url, EPOCH, 1);
    c.expect_exit_code(0, Duration::from_secs(120));
    a2.wait_exit(Duration::from_secs(30));
    b2.wait_exit(Duration::from_secs(30));
    let audit = faults::audit(&sweep.database(), TRIALS, EPOCHS);
    faults::assert_same_results(&sweep.results(), &baseline);
    eprintln!(
        "FAULTS all-gone: 2 workers killed, warning {warning:?}; {} trials, {} duplicates, {} lost, {} extra leases, {} resumed",
        audit.trials, audit.duplicates, audit.lost, audit.extra_attempts, audit.resumed
    );
}
