//! Issue 15, items 3 and 5: every row of the coordinator's exit-status table
//! (`coordinator::Exit`, README.md "Exit statuses"), each reached by the real binary; small
//! files read with a cap, regular files only, failing at once with a message.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use sweep_tests::{Process, Signal, Sweep, Worker, bin, faults};

/// How long a command that must fail at once may take (a FIFO read would hang forever).
const AT_ONCE: Duration = Duration::from_secs(20);

/// A token no one else uses, for the files below.
const TOKEN: &str = "exit-codes-token-0123456789";

/// Runs `command`, which must end within [`AT_ONCE`], and returns its output.
fn run(label: &str, command: Command) -> Output {
    let mut p = Process::spawn(label, command);
    let status = p.wait_exit(AT_ONCE);
    let o = p.output();
    Output {
        status,
        stdout: o.stdout.into_bytes(),
        stderr: o.stderr.into_bytes(),
    }
}

/// `coordinator ARGS` on the sweep's grid and output folder, without token variables.
fn coordinator(sweep: &Sweep, args: &[&str]) -> Command {
    let mut c = sweep.coordinator_command(args);
    c.env_remove("SWEEP_WORKER_TOKEN")
        .env_remove("SWEEP_OPERATOR_TOKEN");
    c
}

fn expect(output: &Output, code: i32, says: &str) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(code), "{output:?}");
    assert!(
        stderr.contains(says),
        "stderr does not say {says:?}:\n{stderr}"
    );
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write a file");
    path
}

fn mkfifo(path: &Path) {
    let made = Command::new("mkfifo")
        .arg(path)
        .status()
        .expect("mkfifo (coreutils)");
    assert!(made.success());
}

/// 0: every trial succeeded.
#[test]
fn exit_0_when_every_trial_succeeded() {
    let sweep = Sweep::new(&faults::grid("exit0", 3, 2, 0));
    let mut c = sweep.start_coordinator(&["--linger", "1s"]);
    let mut w = Worker::start_test("A", &c.url(), Duration::from_millis(5), 2);
    c.expect_exit_code(0, Duration::from_secs(60));
    w.wait_exit(Duration::from_secs(30));
}

/// 1: the sweep ended with trials failed for good (here: all cancelled); `cancel` naming
/// nothing that exists.
#[test]
fn exit_1_when_trials_failed_for_good() {
    let sweep = Sweep::new(&faults::grid("exit1", 2, 2, 0));
    let mut c = sweep.start_coordinator(&["--linger", "0s"]);
    let cancel = |args: &[&str]| {
        let mut command = Command::new(bin("coordinator"));
        command
            .args(["cancel", "--addr", &c.url()])
            .args(args)
            .env_remove("SWEEP_OPERATOR_TOKEN");
        command
    };
    let out = run("cancel nothing", cancel(&["--trial", "no_such_trial"]));
    expect(&out, 1, "no trial or experiment named no_such_trial");
    let out = run(
        "cancel all",
        cancel(&["--all", "--reason", "exit code test"]),
    );
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    c.expect_exit_code(1, Duration::from_secs(60));
    assert!(
        c.stdout().contains("cancelled: exit code test"),
        "{}",
        c.stdout()
    );
}

/// 2: could not start. Each case fails at once, with a message naming the problem.
#[test]
fn exit_2_when_it_cannot_start() {
    let sweep = Sweep::new(&faults::grid("exit2", 2, 2, 0));
    let dir = sweep.mkdir("files");
    let cases: Vec<(&str, Command, &str)> = vec![
        (
            "--progress-every 0s",
            coordinator(&sweep, &["--progress-every", "0s"]),
            "--progress-every must be greater than 0",
        ),
        (
            "a bad flag",
            coordinator(&sweep, &["--no-such-flag"]),
            "--no-such-flag",
        ),
    ];
    for (what, command, says) in cases {
        expect(&run(what, command), 2, says);
    }

    // --out is a file.
    let file = write(&dir, "not-a-folder", "x");
    let mut command = Command::new(bin("coordinator"));
    command
        .arg("--grid")
        .arg(sweep.grid())
        .args(["--listen", "127.0.0.1:0", "--out"])
        .arg(&file);
    expect(&run("--out on a file", command), 2, "not-a-folder");

    // The port is in use.
    let taken = TcpListener::bind("127.0.0.1:0").expect("a port");
    let addr = taken.local_addr().expect("its address").to_string();
    let mut command = Command::new(bin("coordinator"));
    command
        .arg("--grid")
        .arg(sweep.grid())
        .args(["--listen", &addr, "--out"])
        .arg(sweep.path().join("out-port"));
    expect(
        &run("port in use", command),
        2,
        &format!("cannot listen on {addr}"),
    );

    // The grid file is a FIFO nobody writes to: refused at once, not a hang.
    let fifo = dir.join("grid.fifo");
    mkfifo(&fifo);
    let mut command = Command::new(bin("coordinator"));
    command
        .arg("--grid")
        .arg(&fifo)
        .args(["--listen", "127.0.0.1:0", "--out"])
        .arg(sweep.path().join("out-fifo"));
    expect(
        &run("a FIFO as grid", command),
        2,
        "is a FIFO (named pipe), not a regular file",
    );

    // Token files: /dev/zero, a FIFO, the same token for both roles, a token given twice.
    let token = write(&dir, "token", TOKEN);
    let other = write(&dir, "other", "exit-codes-other-token-98765");
    let zero = coordinator(&sweep, &["--worker-token-file", "/dev/zero"]);
    expect(
        &run("/dev/zero as token file", zero),
        2,
        "the token file /dev/zero is a character device, not a regular file",
    );
    let token_fifo = dir.join("token.fifo");
    mkfifo(&token_fifo);
    let mut command = coordinator(&sweep, &["--operator-token-file"]);
    command.arg(&token_fifo);
    expect(&run("a FIFO as token file", command), 2, "is a FIFO");
    let mut command = coordinator(&sweep, &["--worker-token-file"]);
    command.arg(&token).arg("--operator-token-file").arg(&token);
    expect(
        &run("the same token twice", command),
        2,
        "the worker token and the operator token are the same",
    );
    let mut command = coordinator(&sweep, &["--worker-token-file"]);
    command
        .arg(&token)
        .arg("--operator-token-file")
        .arg(&other)
        .env("SWEEP_WORKER_TOKEN", "exit-codes-env-token-55555");
    expect(
        &run("a token by file and by variable", command),
        2,
        "and the variable SWEEP_WORKER_TOKEN give a token; give it one way only",
    );
    let mut command = coordinator(
        &sweep,
        &["--tls-cert", "/dev/zero", "--tls-key", "/dev/zero"],
    );
    command.args(["--worker-token-file"]).arg(&token);
    expect(
        &run("/dev/zero as certificate", command),
        2,
        "the certificate /dev/zero is a character device",
    );

    // Operator commands: an address that is not http(s), an unusable token file.
    for sub in ["status", "cancel"] {
        let mut command = Command::new(bin("coordinator"));
        command.args([sub, "--addr", "ftp://127.0.0.1:21"]);
        if sub == "cancel" {
            command.arg("--all");
        }
        expect(
            &run(sub, command),
            2,
            "is not a coordinator address: use an http:// or https:// URL",
        );
        let mut command = Command::new(bin("coordinator"));
        command.args([sub, "--token-file", "/dev/zero"]);
        if sub == "cancel" {
            command.arg("--all");
        }
        command.env_remove("SWEEP_OPERATOR_TOKEN");
        expect(&run(sub, command), 2, "is a character device");
    }

    // The worker refuses the same (its own table says 2 for a bad flag or configuration).
    for (args, says) in [
        (
            &["--coordinator", "ftp://127.0.0.1:21"][..],
            "is not a coordinator address",
        ),
        (&["--token-file", "/dev/zero"][..], "is a character device"),
        (&["--name", "w\n2026 INFO forged"][..], "--name"),
    ] {
        let mut command = Command::new(bin("worker"));
        command
            .args(["--cpu", "--test-trainer", "10ms", "--offline"])
            .args(args)
            .env_remove("SWEEP_TOKEN");
        expect(&run("worker", command), 2, says);
    }
}

/// 3: stopped by an error while running: the state database cannot grow past the file size
/// limit (RLIMIT_FSIZE, SIGXFSZ ignored as a full disk would answer), so a commit fails.
#[test]
fn exit_3_when_the_database_fails_while_running() {
    let sweep = Sweep::new(&faults::grid("exit3", 4, 2000, 0));
    // The limit, in 512-byte blocks (dash's unit): 1 MiB. The sweep's WAL passes it after a few
    // hundred epochs; the grid, results.json and the log stay under it.
    let mut command = Command::new("sh");
    command
        .args(["-c", "trap '' XFSZ; ulimit -f 2048; exec \"$0\" \"$@\""])
        .arg(bin("coordinator"))
        .arg("--grid")
        .arg(sweep.grid())
        .args(["--listen", "127.0.0.1:0", "--out"])
        .arg(sweep.out());
    let mut c = sweep_tests::Coordinator::start(command);
    let mut w = Worker::start_test("A", &c.url(), Duration::from_millis(1), 4);
    c.expect_exit_code(3, Duration::from_secs(120));
    assert!(
        c.stderr().contains("cannot commit to the state database"),
        "{}",
        c.stderr()
    );
    w.kill();
}

/// 4: an operator command that cannot reach the coordinator, or that it refuses.
#[test]
fn exit_4_when_the_coordinator_cannot_be_reached_or_refuses() {
    let closed = {
        let l = TcpListener::bind("127.0.0.1:0").expect("a port");
        l.local_addr().expect("its address")
    };
    let mut command = Command::new(bin("coordinator"));
    command
        .args(["status", "--addr", &format!("http://{closed}")])
        .env_remove("SWEEP_OPERATOR_TOKEN");
    expect(&run("status, nothing there", command), 4, "cannot reach");

    let sweep = Sweep::new(&faults::grid("exit4", 2, 2, 0));
    let dir = sweep.mkdir("tokens");
    let worker = write(&dir, "worker", "exit-codes-worker-token-1111");
    let operator = write(&dir, "operator", "exit-codes-operator-token-2222");
    let mut c = sweep.start_coordinator(&[
        "--worker-token-file",
        &worker.display().to_string(),
        "--operator-token-file",
        &operator.display().to_string(),
    ]);
    let mut command = Command::new(bin("coordinator"));
    command
        .args(["status", "--addr", &c.url(), "--token-file"])
        .arg(&worker)
        .env_remove("SWEEP_OPERATOR_TOKEN");
    expect(
        &run("status, the worker's token", command),
        4,
        "Unauthenticated",
    );
    c.kill();
}

/// 130: stopped by SIGTERM before the end.
#[test]
fn exit_130_when_stopped_before_the_end() {
    let sweep = Sweep::new(&faults::grid("exit130", 2, 2, 0));
    let mut c = sweep.start_coordinator(&[]);
    c.signal(Signal::SIGTERM);
    c.expect_exit_code(130, Duration::from_secs(30));
    assert!(c.stdout().contains("stopped with 2 trials unfinished"));
}
