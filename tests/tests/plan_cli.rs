//! `coordinator plan`: the cost of lab1.toml from its shapes, and with `--from` the time from an
//! earlier sweep's recorded epochs (a test-trainer sweep run by local workers).

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use sweep_tests::{Sweep, bin, faults};

fn plan(args: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new(bin("coordinator"))
        .arg("plan")
        .args(args)
        .output()
        .expect("run coordinator plan");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn lab1s_plan_from_its_shapes() {
    let lab1 = Path::new(env!("CARGO_MANIFEST_DIR")).join("../lab1.toml");
    let lab1 = lab1.display().to_string();
    let (code, out, err) = plan(&["--grid", &lab1]);
    assert_eq!(code, Some(0), "{err}");
    let rows: Vec<Vec<&str>> = out
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(
        rows[1],
        [
            "p1_cifar10",
            "9",
            "180",
            "3157002-5256202",
            "86.2",
            "MiB",
            "-"
        ]
    );
    assert_eq!(
        rows[2],
        ["p2_fashion_mnist", "5", "150", "203530", "3.6", "MiB", "-"]
    );
    assert!(out.contains("no time estimate: give --from DIR"), "{out}");

    let (code, _, err) = plan(&["--grid", &lab1, "--from", "/nonexistent"]);
    assert_eq!(code, Some(2));
    assert!(
        err.contains("--from: cannot read /nonexistent/results.json"),
        "{err}"
    );
}

#[test]
fn time_from_an_earlier_sweep() {
    let sweep = Sweep::new(&faults::grid("plan-from", 2, 3, 0));
    let worker = bin("worker").display().to_string();
    let mut c = sweep.start_coordinator(&[
        "--local-workers",
        "1",
        "--worker-bin",
        &worker,
        "--local-worker-arg=--test-trainer=30ms",
        "--local-worker-arg=--offline",
        "--linger",
        "1s",
    ]);
    c.expect_exit_code(0, Duration::from_secs(60));
    let grid = sweep.grid().display().to_string();
    let out_dir = sweep.out().display().to_string();
    let (code, out, err) = plan(&["--grid", &grid, "--from", &out_dir, "--workers", "cpu:2"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(
        out.contains("estimated wall time on cpu:2:") && out.contains("from 6 epochs recorded"),
        "{out}"
    );
}
