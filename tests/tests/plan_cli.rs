//! `coordinator plan`: the cost of lab1.toml from its shapes, and with `--from` the time from an
//! earlier sweep's recorded epochs (a test-trainer sweep run by local workers).

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use sweep_tests::{Sweep, bin, faults};

fn plan(args: &[&str]) -> (Option<i32>, String, String) {
    // From the repository's root, where the examples' relative paths start.
    let out = Command::new(bin("coordinator"))
        .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join(".."))
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
    assert!(
        out.contains("no time estimate: give --calibrate") && out.contains("or --from DIR"),
        "{out}"
    );

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

/// The repository's example grids and lab1.toml.
fn example_grids() -> Vec<std::path::PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut grids = vec![root.join("lab1.toml")];
    for dir in [root.join("examples"), root.join("examples/program")] {
        let mut found: Vec<_> = std::fs::read_dir(&dir)
            .expect("examples")
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "toml"))
            .collect();
        found.sort();
        grids.extend(found);
    }
    grids
}

#[test]
fn every_example_grid_has_a_plan() {
    for grid in example_grids() {
        let shown = grid.display().to_string();
        let (code, out, err) = plan(&["--grid", &shown]);
        assert_eq!(code, Some(0), "{shown}: {err}");
        let rows: Vec<Vec<&str>> = out
            .lines()
            .skip(1)
            .filter(|l| !l.starts_with("no time estimate") && !l.contains(": early stopping"))
            .map(|l| l.split_whitespace().collect())
            .collect();
        assert!(!rows.is_empty(), "{shown}: {out}");
        for row in rows {
            let trials: usize = row[1].parse().expect("trials");
            let epochs: u64 = row[2].parse().expect("epochs");
            assert!(trials > 0 && epochs >= trials as u64, "{shown}: {row:?}");
        }
    }
}

#[test]
fn calibrated_on_this_machine_by_the_worker() {
    let dir = tempfile::tempdir().expect("tmp");
    let grid = dir.path().join("g.toml");
    std::fs::write(
        &grid,
        r#"
[sweep]
name = "calibrate"
[[experiment]]
name = "mlp"
dataset = "fashion-mnist"
[experiment.fixed]
batch_size = 64
epochs = 2
[experiment.grid]
hidden_width = [16, 64]
learning_rate = [0.001, 0.01]
[[experiment]]
name = "cnn"
dataset = "mnist"
[experiment.fixed]
batch_size = 32
epochs = 1
model = "conv(4,3,p=1) bn relu maxpool(2) flatten linear(10)"
"#,
    )
    .expect("grid");
    let worker = bin("worker").display().to_string();
    let grid = grid.display().to_string();
    let (code, out, err) = plan(&[
        "--grid",
        &grid,
        "--calibrate",
        "--workers",
        "cpu:1",
        "--worker-bin",
        &worker,
    ]);
    assert_eq!(code, Some(0), "{err}");
    // Two MLP widths (the learning rates share a model) and the CNN: three models timed.
    assert!(
        out.contains("calibrated on this machine by")
            && out.contains("per worker, 1 at once")
            && out.contains("(3 models)"),
        "{out}"
    );
    assert!(out.contains("estimated wall time on cpu:1: "), "{out}");
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].contains("measured mem."), "{out}");
    for row in &lines[1..3] {
        let cells: Vec<&str> = row.split_whitespace().collect();
        // A compute time (no "-") and the memory measured last.
        assert!(!cells.contains(&"-") && row.ends_with("MiB"), "{row}");
    }

    // A worker that cannot calibrate: the plan fails and says why.
    let (code, _, err) = plan(&[
        "--grid",
        &grid,
        "--calibrate",
        "--worker-bin",
        "/nonexistent/worker",
    ]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("/nonexistent/worker"), "{err}");
    // --from and --calibrate are two sources of one figure.
    let (code, _, err) = plan(&["--grid", &grid, "--calibrate", "--from", "x"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("cannot be used with"), "{err}");
}
