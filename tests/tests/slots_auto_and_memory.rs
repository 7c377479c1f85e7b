//! `worker --slots auto`: one trial first, then as many at once as the measured memory per trial
//! and the free memory allow (on the CPU, capped at the cores divided by --threads); the worker
//! reports its device memory to the coordinator, which shows it in the status.

use std::process::Command;
use std::time::Duration;

use sweep_tests::faults;
use sweep_tests::{Sweep, Worker, bin, field};

#[test]
fn slots_auto_measures_one_trial_then_trains_several() {
    let sweep = Sweep::new(&faults::grid("auto", 6, 10, 0));
    let mut c =
        sweep.start_coordinator_at("127.0.0.1:0", &["--heartbeat", "200ms", "--linger", "1s"]);
    let url = c.url();
    let command = faults::test_worker_command_slots("A", &url, Duration::from_millis(100), "auto");
    let mut w = Worker::from_command("A", command);
    let line = w.wait_for_stderr_line(
        "--slots auto: one trial's memory measured",
        Duration::from_secs(30),
    );
    let slots: u32 = field(&line, "slots")
        .and_then(|s| s.parse().ok())
        .expect("slots");
    let cores = std::thread::available_parallelism().map_or(1, usize::from) as u32;
    assert!(slots >= 1 && slots <= cores.max(1), "{line}");

    // The worker's memory shows in the status once it has heartbeated.
    let memory = (0..50)
        .find_map(|_| {
            std::thread::sleep(Duration::from_millis(100));
            let out = Command::new(bin("coordinator"))
                .args(["status", "--addr", &url, "--json"])
                .output()
                .expect("coordinator status");
            let v: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
            v["workers"][0]["memory"].as_array().cloned()
        })
        .expect("the worker's memory in the status");
    let used = memory[0].as_u64().expect("used");
    let total = memory[1].as_u64().expect("total");
    assert!(used > 0 && total >= used, "{memory:?}");

    c.expect_exit_code(0, Duration::from_secs(60));
    w.wait_exit(Duration::from_secs(30));
    // Once measured, `slots` trials ran together: the most trials in progress at one time.
    let mut running = 0i32;
    let mut most = 0;
    for l in w.stderr().lines() {
        if l.contains(" training ") {
            running += 1;
        } else if l.contains("completion acknowledged") {
            running -= 1;
        }
        most = most.max(running);
    }
    assert_eq!(most, slots as i32, "trials in progress at once");
    assert_eq!(
        sweep
            .results()
            .trials
            .iter()
            .filter(|t| t.succeeded())
            .count(),
        6
    );
}
