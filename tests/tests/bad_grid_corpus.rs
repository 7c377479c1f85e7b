//! Every bad grid file of the corpus (`tests/grids/bad/`), given to the real coordinator: it exits
//! 2 before serving, creates no output folder, and its stderr is `error: ` followed by exactly the
//! message snapshot beside the file (`common/tests/bad_grids.rs` checks the snapshots against the
//! library; this checks that the binary prints them unchanged).

use std::path::{Path, PathBuf};
use std::time::Duration;

use sweep_tests::{Process, bin};

fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("grids")
        .join("bad")
}

/// The `--only` names of a file whose first line is `# only: A B`.
fn only(path: &Path) -> Vec<String> {
    let bytes = std::fs::read(path).expect("read a corpus file");
    String::from_utf8_lossy(&bytes)
        .lines()
        .next()
        .and_then(|l| l.strip_prefix("# only:"))
        .map(|names| names.split_whitespace().map(str::to_owned).collect())
        .unwrap_or_default()
}

#[test]
fn bad_grid_corpus() {
    let dir = corpus();
    let mut cases: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .map(|entry| entry.expect("a directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    cases.sort();
    assert!(
        cases.len() >= 50,
        "only {} cases in {}",
        cases.len(),
        dir.display()
    );
    let out = tempfile::tempdir().expect("a temporary folder");
    let mut failures = Vec::new();
    for path in &cases {
        let name = path.file_name().expect("a file name").to_string_lossy();
        let expected = std::fs::read_to_string(path.with_extension("expected"))
            .expect("a snapshot beside the grid file")
            .replace(
                &format!("tests/grids/bad/{name}"),
                &path.display().to_string(),
            );
        let out_dir = out.path().join(name.as_ref());
        let mut command = std::process::Command::new(bin("coordinator"));
        command
            .arg("--grid")
            .arg(path)
            .args(["--listen", "127.0.0.1:0"])
            .arg("--out")
            .arg(&out_dir);
        for experiment in only(path) {
            command.args(["--only", &experiment]);
        }
        let mut coordinator = Process::spawn(format!("coordinator {name}"), command);
        coordinator.expect_exit_code(2, Duration::from_secs(30));
        let output = coordinator.output();
        if output.stderr != format!("error: {expected}") {
            failures.push(format!(
                "{name}:\n  expected: error: {}  got:      {}",
                expected, output.stderr
            ));
        }
        assert!(
            !output.stdout.contains("listening on"),
            "{name}: it served:\n{}",
            output.stdout
        );
        assert!(
            !out_dir.exists(),
            "{name}: it created {}",
            out_dir.display()
        );
    }
    assert!(
        failures.is_empty(),
        "{} of {} messages differ:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}
