//! The worker's exit codes (README, "Exit codes"), end to end: 2 for a bad flag, 4 when the
//! coordinator cannot be reached or what answers is not a coordinator (the web view's port: the
//! worker says so at once), 130 when stopped by SIGTERM. 0 (the sweep finished) and 3 (it cannot
//! run trials) are checked where those happen (`e2e_small_grid.rs`, `missing_data.rs`).

use std::process::Command;
use std::time::{Duration, Instant};

use sweep_tests::faults::{self, test_worker_command};
use sweep_tests::{Process, Signal, Sweep, Worker, bin};

const EPOCH: Duration = Duration::from_millis(50);

#[test]
fn a_worker_pointed_at_the_web_view_says_so_at_once() {
    let sweep = Sweep::new(&faults::grid("webport", 1, 2, 0));
    let mut c = sweep.start_coordinator(&["--http", "127.0.0.1:0"]);
    let line = c.wait_for_stdout_line("http on ", Duration::from_secs(30));
    let http = line
        .rsplit(' ')
        .next()
        .expect("an address")
        .trim()
        .to_owned();
    let started = Instant::now();
    let mut w = Worker::from_command(
        "W",
        test_worker_command("W", &format!("http://{http}"), EPOCH, 1),
    );
    w.expect_exit_code(4, Duration::from_secs(30));
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "it gave up only after its patience (60 s)"
    );
    let log = w.stderr();
    assert!(
        log.contains(&format!(
            "error: http://{http} does not speak gRPC (it answers plain HTTP: HTTP/1.1 "
        )) && log.contains("is it the coordinator's web view (--http)?")
            && log.contains("listening on"),
        "{log}"
    );
    assert!(!log.contains("refused this worker"), "{log}");
}

#[test]
fn a_worker_that_cannot_reach_the_coordinator_exits_4() {
    // A port nothing listens on: bind one, then free it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let mut command = test_worker_command("W", &format!("http://127.0.0.1:{port}"), EPOCH, 1);
    command.args(["--patience", "1s"]);
    let mut w = Worker::from_command("W", command);
    w.expect_exit_code(4, Duration::from_secs(30));
    assert!(
        w.stderr().contains("cannot reach the coordinator"),
        "{}",
        w.stderr()
    );
}

#[test]
fn a_bad_flag_exits_2() {
    let mut command = Command::new(bin("worker"));
    command.args(["--cpu", "--slots", "0"]);
    let mut w = Process::spawn("worker", command);
    w.expect_exit_code(2, Duration::from_secs(30));
}

#[test]
fn a_worker_stopped_by_sigterm_exits_130_after_giving_its_lease_back() {
    let sweep = Sweep::new(&faults::grid("term", 1, 100, 0));
    let mut c = sweep.start_coordinator(&["--heartbeat", "200ms", "--lease-ttl", "5s"]);
    let mut w = Worker::start_test("W", &c.url(), EPOCH, 1);
    c.wait_for_epoch_on("W", 1, Duration::from_secs(30));
    w.signal(Signal::SIGTERM);
    w.expect_exit_code(130, Duration::from_secs(30));
    // Not a finished sweep: the trial is pending again, for free.
    c.wait_for_stderr_line(
        "worker leaving: it shut down and gave its lease back",
        Duration::from_secs(10),
    );
    assert!(c.try_status().is_none());
}
