//! `coordinator report --out DIR`: remakes the report from a stored `results.json`, and the
//! plain `coordinator --grid FILE` invocation still runs a sweep.

use std::path::Path;
use std::process::{Command, Output};

fn coordinator(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_coordinator"))
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .expect("the coordinator binary runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn report_subcommand_regenerates_the_report_and_prints_the_paths() {
    let dir = tempfile::tempdir().expect("tempdir");
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/results_small.json");
    std::fs::copy(&fixture, dir.path().join("results.json")).expect("copy fixture");
    let out_dir = dir.path().to_str().expect("utf-8 path");
    let out = coordinator(&["report", "--out", out_dir]);
    assert!(out.status.success(), "stderr: {}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let printed: Vec<&str> = stdout.lines().collect();
    for name in ["report.html", "report.md", "results.csv", "epochs.csv"] {
        let path = dir.path().join(name);
        assert!(path.is_file(), "{name} missing");
        assert!(
            printed.contains(&path.to_str().expect("utf-8")),
            "{name} not printed: {stdout}"
        );
    }
    let figures = dir.path().join("figures");
    for name in [
        "p2-test-accuracy",
        "p1-confusion-P1_HiddenL_1_Activation_ReLU",
    ] {
        for ext in ["svg", "png"] {
            assert!(
                figures.join(format!("{name}.{ext}")).is_file(),
                "{name}.{ext} missing"
            );
        }
    }
    // TensorBoard's event files: the experiment's, then one run per trial.
    let tensorboard = dir.path().join("tensorboard");
    let (events, printed): (Vec<&str>, Vec<&str>) = printed
        .into_iter()
        .partition(|p| Path::new(p).starts_with(&tensorboard));
    assert!(
        events.contains(
            &tensorboard
                .join("events.out.tfevents.0.sweep")
                .to_str()
                .expect("utf-8")
        ),
        "{stdout}"
    );
    assert!(events.len() > 1, "a run per trial: {stdout}");
    assert!(events.iter().all(|p| Path::new(p).is_file()), "{stdout}");
    assert_eq!(printed.len(), 4 + 2 * 11);
}

/// Exit status 2: the command could not start on its input (README.md, "Exit statuses").
#[test]
fn report_subcommand_names_a_missing_or_invalid_results_file_and_exits_2() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out_dir = dir.path().to_str().expect("utf-8 path");
    let results = dir.path().join("results.json");
    let out = coordinator(&["report", "--out", out_dir]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(&format!("cannot read {}", results.display())),
        "{stderr}"
    );

    std::fs::write(&results, "{\"trials\": 3}").expect("write");
    let out = coordinator(&["report", "--out", out_dir]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "{} is not a valid results file",
            results.display()
        )),
        "{stderr}"
    );
}

#[test]
fn grid_invocation_is_unchanged_and_does_not_mix_with_the_subcommand() {
    // `--grid FILE` still means "run a sweep": a missing grid file is a grid error, not usage.
    let out = coordinator(&["--grid", "/nonexistent/lab1.toml"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("/nonexistent/lab1.toml"), "{stderr}");
    assert!(!stderr.contains("Usage"), "{stderr}");
    // Without a subcommand --grid is required.
    let out = coordinator(&[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("--grid"));
    // Sweep options and the subcommand do not mix.
    let out = coordinator(&["--grid", "lab1.toml", "report", "--out", "x"]);
    assert_eq!(out.status.code(), Some(2));
}
