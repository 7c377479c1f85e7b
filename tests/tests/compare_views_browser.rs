//! The comparison views (parallel coordinates with brushing, importance, the trial table) in a
//! real headless browser: Debian's chromium driven by playwright-core
//! (`tests/browser/compare_views.mjs`) opens
//!
//! - the `report.html` that `coordinator report` makes of a 10 000-trial `results.json`, and
//! - the live view of a 100 000-trial sweep that the load generator (`loadgen`) runs,
//!
//! checks that the views draw with no console error, that the table sorts, filters, pages and
//! follows a brush, and prints the times to first paint (no time is asserted). Screenshots are
//! kept at `target/tmp/compare_report.png` and `target/tmp/compare_live.png`.
//!
//! Needs `node`, `/usr/bin/chromium` and `tests/browser/node_modules/playwright-core` (`.ci/run`
//! installs them through `scripts/test`). Without them the tests are skipped with a loud
//! message, unless `SWEEP_REQUIRE_BROWSER` is set (as in CI), when they fail.

#![allow(clippy::unwrap_used)]

use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::json;
use sweep_tests::{Process, Signal, bin};

const CHROMIUM: &str = "/usr/bin/chromium";

fn browser_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("browser")
}

/// Why the browser tests cannot run here, if they cannot; panics instead when
/// `SWEEP_REQUIRE_BROWSER` is set.
fn skip_reason(test: &str) -> Option<String> {
    let mut missing = Vec::new();
    let node = Command::new("node").arg("--version").output();
    if !node.is_ok_and(|o| o.status.success()) {
        missing.push("node (Node.js 20 or newer)".to_owned());
    }
    if !Path::new(CHROMIUM).is_file() {
        missing.push(format!("{CHROMIUM} (Debian package chromium)"));
    }
    let playwright = browser_dir().join("node_modules/playwright-core/package.json");
    if !playwright.is_file() {
        missing.push(format!(
            "{} (npm ci --prefix tests/browser)",
            playwright.display()
        ));
    }
    if missing.is_empty() {
        return None;
    }
    let message = format!(
        "the browser test needs: {} (scripts/test installs them)",
        missing.join(", ")
    );
    assert!(
        std::env::var_os("SWEEP_REQUIRE_BROWSER").is_none(),
        "SWEEP_REQUIRE_BROWSER is set but {message}"
    );
    eprintln!("\n!!!!! SKIPPED {test}: {message} !!!!!\n");
    Some(message)
}

/// Runs the browser script on `url` and returns the JSON line it prints.
fn drive(kind: &str, url: &str, screenshot: &Path, profile: &Path) -> serde_json::Value {
    let _ = std::fs::remove_file(screenshot);
    std::fs::create_dir_all(profile).unwrap();
    let mut command = Command::new("node");
    command
        .arg(browser_dir().join("compare_views.mjs"))
        .current_dir(browser_dir())
        .env("SWEEP_VIEWS_URL", url)
        .env("SWEEP_VIEWS_KIND", kind)
        .env("SWEEP_VIEWS_SCREENSHOT", screenshot)
        .env("SWEEP_VIEWS_PROFILE", profile);
    let mut script = Process::spawn(format!("browser script ({kind})"), command);
    script.expect_exit_code(0, Duration::from_secs(300));
    let stdout = script.stdout();
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix("views "))
        .unwrap_or_else(|| panic!("the browser script printed no result: {stdout}"));
    let result: serde_json::Value = serde_json::from_str(line).unwrap();
    assert!(
        screenshot.is_file(),
        "no screenshot at {}",
        screenshot.display()
    );
    eprintln!("comparison views ({kind}): {result}");
    result
}

fn screenshot(name: &str) -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join(name)
}

/// A `results.json` of a full grid of 10 000 succeeded trials (learning rate x hidden width x
/// activation x batch size x seed) whose test accuracy depends on the hyperparameters, as a
/// real sweep's would.
fn results_10k() -> serde_json::Value {
    let rates: Vec<f64> = (0..10)
        .map(|i| 10f64.powf(-5.0 + 4.0 * f64::from(i) / 9.0))
        .collect();
    let widths: Vec<u64> = vec![16, 24, 32, 48, 64, 96, 128, 192, 256, 384];
    let activations = [("relu", "ReLU"), ("tanh", "Tanh")];
    let batches = [16u64, 32, 64, 128, 256];
    let seeds: Vec<u64> = (0..10).collect();
    let mut trials = Vec::with_capacity(10_000);
    for &lr in &rates {
        for &width in &widths {
            for &(act, _) in &activations {
                for &batch in &batches {
                    for &seed in &seeds {
                        let n = trials.len() as u64;
                        let noise = ((n.wrapping_mul(2_654_435_761) % 1000) as f64 / 500.0) - 1.0;
                        let test = 72.0
                            + 8.0 * (-(lr.log10() + 3.0).powi(2) / 2.0).exp()
                            + 1.5 * (width as f64 / 16.0).log2()
                            + if act == "relu" { 1.5 } else { 0.0 }
                            - 0.6 * (batch as f64 / 64.0).log2().abs()
                            + 0.8 * noise;
                        let name = format!("lr{lr:.0e}_w{width}_{act}_b{batch}_s{seed}");
                        trials.push(json!({
                            "id": sweep_common::TrialId::from_content(&name),
                            "experiment": "search",
                            "name": name,
                            "dataset": "fashion-mnist",
                            "params": {"activation": act, "hidden_layers": 1,
                                "hidden_width": width, "learning_rate": lr, "batch_size": batch,
                                "epochs": 2, "train_fraction": 1.0, "seed": seed},
                            "split": {"train_ratio": 0.8, "seed": 0},
                            "status": "succeeded",
                            "attempts": 1,
                            "wall_seconds": 20.0 + (width as f64) / 10.0,
                            "epochs": [
                                {"epoch": 1, "train_loss": 0.8, "train_accuracy": test - 4.0,
                                 "test_accuracy": test - 5.0, "seconds": 9.0},
                                {"epoch": 2, "train_loss": 0.5, "train_accuracy": test + 3.0,
                                 "test_accuracy": test, "seconds": 9.0},
                            ],
                            "train_accuracy": test + 3.0,
                            "test_accuracy": test,
                        }));
                    }
                }
            }
        }
    }
    let shown = |v: Vec<String>| json!(v);
    json!({
        "format": 1, "sweep": "views", "grid_file": "views.toml", "finished": true,
        "experiments": [{
            "name": "search", "title": "Learning rate, width, activation, batch size",
            "dataset": "fashion-mnist",
            "classes": sweep_common::DatasetKind::FashionMnist.class_names(),
            "axes": [
                {"param": "activation", "values": ["ReLU", "Tanh"]},
                {"param": "hidden_width", "values": shown(widths.iter().map(u64::to_string).collect())},
                {"param": "learning_rate", "values": shown(rates.iter().map(f64::to_string).collect())},
                {"param": "batch_size", "values": shown(batches.iter().map(u64::to_string).collect())},
                {"param": "seed", "values": shown(seeds.iter().map(u64::to_string).collect())},
            ],
        }],
        "trials": trials,
    })
}

#[test]
fn report_of_10_000_trials_draws_its_comparison_views_in_a_headless_browser() {
    if skip_reason("report_of_10_000_trials_draws_its_comparison_views_in_a_headless_browser")
        .is_some()
    {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(
        out.join("results.json"),
        serde_json::to_vec(&results_10k()).unwrap(),
    )
    .unwrap();
    let started = Instant::now();
    let mut command = Command::new(bin("coordinator"));
    command.arg("report").arg("--out").arg(&out);
    let mut report = Process::spawn("coordinator report", command);
    report.expect_exit_code(0, Duration::from_secs(600));
    let html = out.join("report.html");
    eprintln!(
        "report of 10 000 trials made in {:.1} s; report.html is {} bytes",
        started.elapsed().as_secs_f64(),
        std::fs::metadata(&html).unwrap().len()
    );
    let url = format!("file://{}", html.display());
    let result = drive(
        "report",
        &url,
        &screenshot("compare_report.png"),
        &dir.path().join("profile"),
    );
    assert_eq!(result["lines_drawn"], 10_000, "{result}");
    // Five hyperparameters and the rest of a full grid.
    assert_eq!(result["importance_rows"], 6, "{result}");
}

/// `GET path` from `addr`: the status code and the body.
fn http_get(addr: &str, path: &str) -> Option<(u16, String)> {
    let mut conn = std::net::TcpStream::connect(addr).ok()?;
    conn.set_read_timeout(Some(Duration::from_secs(30))).ok()?;
    write!(conn, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").ok()?;
    let mut text = String::new();
    conn.read_to_string(&mut text).ok()?;
    let code = text.split(' ').nth(1)?.parse().ok()?;
    let body = text.split_once("\r\n\r\n")?.1.to_owned();
    Some((code, body))
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The children of process `pid` (the load generator's coordinator).
fn children(pid: u32) -> Vec<i32> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    tasks
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("children")).ok())
        .flat_map(|s| {
            s.split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect::<Vec<i32>>()
        })
        .collect()
}

/// Stops the load generator's coordinator (by its pid), then the load generator.
struct Load(Process);

impl Drop for Load {
    fn drop(&mut self) {
        for child in children(self.0.pid()) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(child),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        if self.0.try_status().is_none() {
            self.0.signal(Signal::SIGKILL);
        }
    }
}

#[test]
fn live_view_of_a_100_000_trial_sweep_draws_its_comparison_views_in_a_headless_browser() {
    if skip_reason(
        "live_view_of_a_100_000_trial_sweep_draws_its_comparison_views_in_a_headless_browser",
    )
    .is_some()
    {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let http = format!("127.0.0.1:{port}");
    let mut command = Command::new(bin("loadgen"));
    command
        .arg("--coordinator-bin")
        .arg(bin("coordinator"))
        .args(["--trials", "100000", "--workers", "50", "--epochs", "2"])
        .args(["--timeout", "20m", "--start-timeout", "5m"])
        .arg("--keep")
        .arg(dir.path().join("run"))
        .arg("--coordinator-arg=--http")
        .arg(format!("--coordinator-arg={http}"));
    let mut load = Load(Process::spawn("loadgen", command));

    // Wait (with a deadline) until the live view answers and a few thousand trials succeeded.
    let deadline = Instant::now() + Duration::from_secs(600);
    let mut succeeded = 0;
    while succeeded < 2000 {
        assert!(
            Instant::now() < deadline,
            "only {succeeded} trials succeeded after 10 minutes"
        );
        if let Some(status) = load.0.try_status() {
            panic!("loadgen exited early ({status:?}): {}", load.0.logs());
        }
        if let Some((200, body)) = http_get(&http, "/api/status?state=succeeded&limit=1") {
            let v: serde_json::Value = serde_json::from_str(&body).unwrap();
            succeeded = v["page"]["matched"].as_u64().unwrap_or(0);
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let (_, body) = http_get(&http, "/api/status").unwrap();
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["counts"]["total"], 100_000, "{body:.300}");

    let result = drive(
        "live",
        &format!("http://{http}/"),
        &screenshot("compare_live.png"),
        &dir.path().join("profile"),
    );
    // The plot draws the first succeeded trials, at most 5 000 of them.
    let lines = result["lines_drawn"].as_u64().unwrap();
    assert!((2000..=5000).contains(&lines), "{result}");
    // loadgen's grid varies the seed and the hidden width (and, were the trials that succeeded
    // a full grid, the rest).
    let rows = result["importance_rows"].as_u64().unwrap();
    assert!((2..=3).contains(&rows), "{result}");
    drop(load);
}
