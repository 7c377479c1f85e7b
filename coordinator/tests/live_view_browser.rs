//! The live web view in a real headless browser: Debian's chromium driven by playwright-core
//! (`tests/browser/live_view.mjs`) loads the page of a running coordinator, sees every trial,
//! and sees it update, without reloading, when the simulated worker finishes a trial; then finds
//! that trial with the page's "Find trials" (a page of `/api/status`).
//!
//! Needs `node`, `/usr/bin/chromium` and `tests/browser/node_modules/playwright-core` (`.ci/run`
//! installs them). Without them the test is skipped with a loud message, unless
//! `SWEEP_REQUIRE_BROWSER` is set (as in CI), when it fails.
//!
//! The screenshot is kept at `target/tmp/live_view.png` (`SWEEP_LIVE_SCREENSHOT` overrides).

#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::{FakeWorker, GRID, Leased, start_coordinator};
use sweep_tests::{Process, Signal};

const CHROMIUM: &str = "/usr/bin/chromium";

fn browser_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/browser")
}

/// What is missing to run the browser test, if anything.
fn missing_prerequisites() -> Vec<String> {
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
    missing
}

/// Stops the node script (and with it chromium: playwright closes the browser on SIGTERM)
/// before its process guard kills what is left.
struct Script(Process);

impl Drop for Script {
    fn drop(&mut self) {
        if self.0.try_status().is_none() {
            self.0.signal(Signal::SIGTERM);
            let deadline = Instant::now() + Duration::from_secs(10);
            while self.0.try_status().is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
}

#[test]
fn live_view_updates_in_a_headless_browser() {
    let missing = missing_prerequisites();
    if !missing.is_empty() {
        let message = format!(
            "the browser test needs: {} (.ci/run installs them)",
            missing.join(", ")
        );
        assert!(
            std::env::var_os("SWEEP_REQUIRE_BROWSER").is_none(),
            "SWEEP_REQUIRE_BROWSER is set but {message}"
        );
        eprintln!("\n!!!!! SKIPPED live_view_updates_in_a_headless_browser: {message} !!!!!\n");
        return;
    }
    assert!(GRID.contains("epochs = 3"));
    let dir = tempfile::tempdir().unwrap();
    let mut coordinator = start_coordinator(dir.path(), &["--linger", "5s"]);
    let http = coordinator.http.clone().unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut w = rt.block_on(FakeWorker::register(&coordinator.url, "fake-gpu", 2));
    let (a, a_attempt) = rt.block_on(w.lease_trial());
    let (b, b_attempt) = rt.block_on(w.lease_trial());
    rt.block_on(w.report(&a, a_attempt, 1, 62.0));

    let names: Vec<String> = {
        let (_, body) = common::http_get(&http, "/api/status");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        v["trials"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["name"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(names.len(), 4);

    let screenshot = std::env::var_os("SWEEP_LIVE_SCREENSHOT").map_or_else(
        || Path::new(env!("CARGO_TARGET_TMPDIR")).join("live_view.png"),
        PathBuf::from,
    );
    let _ = std::fs::remove_file(&screenshot);
    let profile = dir.path().join("chromium-profile");
    std::fs::create_dir_all(&profile).unwrap();
    let mut command = Command::new("node");
    command
        .arg(browser_dir().join("live_view.mjs"))
        .current_dir(browser_dir())
        .env("SWEEP_LIVE_URL", format!("http://{http}/"))
        .env("SWEEP_LIVE_TRIALS", names.join(","))
        .env("SWEEP_LIVE_FINISHING", &a.name)
        .env("SWEEP_LIVE_RUNNING", &b.name)
        .env("SWEEP_LIVE_EPOCHS", "3")
        .env("SWEEP_LIVE_SCREENSHOT", &screenshot)
        .env("SWEEP_LIVE_PROFILE", &profile);
    let mut script = Script(Process::spawn("browser script", command));
    script
        .0
        .wait_for_stdout_line("page loaded", Duration::from_secs(90));

    // The page shows trial a running at epoch 1. Now a ends and b trains two epochs.
    rt.block_on(async {
        w.report(&a, a_attempt, 2, 71.0).await;
        w.report(&a, a_attempt, 3, 78.5).await;
        w.complete(&a, a_attempt, &[62.0, 71.0, 78.5]).await;
        w.report(&b, b_attempt, 1, 55.0).await;
        w.report(&b, b_attempt, 2, 63.0).await;
    });
    script
        .0
        .wait_for_stdout_line("page updated", Duration::from_secs(90));
    script.0.expect_exit_code(0, Duration::from_secs(30));
    assert!(
        screenshot.is_file(),
        "no screenshot at {}",
        screenshot.display()
    );
    eprintln!("live view screenshot: {}", screenshot.display());

    // Finish the sweep: the coordinator exits, and its web view with it.
    rt.block_on(async {
        w.report(&b, b_attempt, 3, 66.0).await;
        w.complete(&b, b_attempt, &[55.0, 63.0, 66.0]).await;
        loop {
            match w.lease().await {
                Leased::Trial(spec, attempt) => w.train(&spec, attempt, &[48.0, 57.0, 61.0]).await,
                Leased::Wait => tokio::time::sleep(Duration::from_millis(20)).await,
                Leased::Finished => break,
                Leased::CannotRun(why) => panic!("told it cannot run trials: {why}"),
            }
        }
    });
    coordinator
        .process
        .expect_exit_code(0, Duration::from_secs(30));
    assert!(
        std::net::TcpStream::connect(&http).is_err(),
        "the web view still answers after the coordinator exited"
    );
}
