//! `coordinator status` (text and `--json`) and the web view's `/api/status` of a sweep of 65 536
//! trials, against the real coordinator: small summaries whose size does not grow with the
//! sweep, and pages of trials on request. Issue 15, item 6: from about 60 000 trials the status
//! was larger than gRPC's 4 MiB and `coordinator status` failed (`OutOfRange: encoded message
//! length too large`).

#![allow(clippy::unwrap_used)]

mod common;

use std::process::Command;

use common::{FakeWorker, http_get, start_coordinator_with};

/// 256 x 256 trials of three epochs, named like `trial_seed12_width200` (with names this long, a
/// status listing every trial was 4.6 MB, over gRPC's 4 MiB).
fn grid() -> String {
    let list = (1..=256)
        .map(|i| i.to_string())
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "[sweep]\nname = \"big\"\nmax_trials = 65536\n\n[[experiment]]\nname = \"e\"\n\
         dataset = \"fashion-mnist\"\ntrial_name = \"trial_seed{{seed}}_width{{hidden_width}}\"\n\n\
         [experiment.fixed]\nepochs = 3\n\n[experiment.grid]\nseed = [{list}]\n\
         hidden_width = [{list}]\n"
    )
}

/// A summary's size stays under this whatever the number of trials.
const SMALL: usize = 64 * 1024;

fn status(url: &str, args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_coordinator"))
        .args(["status", "--addr", url])
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "coordinator status {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn the_status_of_65_536_trials_is_a_small_summary_with_pages_on_request() {
    let dir = tempfile::tempdir().unwrap();
    let coordinator = start_coordinator_with(dir.path(), &grid(), &[]);
    let url = coordinator.url.clone();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut w = rt.block_on(FakeWorker::register(&url, "fake", 3));
    let (a, a_attempt) = rt.block_on(w.lease_trial());
    let (b, b_attempt) = rt.block_on(w.lease_trial());
    rt.block_on(async {
        w.train(&a, a_attempt, &[40.0, 50.0, 60.0]).await;
        w.report(&b, b_attempt, 1, 45.0).await;
    });

    let text = status(&url, &[]);
    assert!(
        text.starts_with("sweep big running: 1/65536 done (0 failed), 1 running, 65534 pending; "),
        "{text}"
    );
    assert!(text.len() < SMALL, "{} bytes", text.len());

    let json = status(&url, &["--json"]);
    assert!(
        json.len() < SMALL,
        "coordinator status --json: {} bytes",
        json.len()
    );
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["counts"]["total"], 65536);
    assert_eq!(v["epochs_done"], 4);
    assert_eq!(v["best"]["trial"], a.name.as_str());
    // The running trial and the best one, with their curves; no page.
    let names: Vec<&str> = v["trials"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, [a.name.as_str(), b.name.as_str()]);
    assert_eq!(v["trials"][0]["history"].as_array().unwrap().len(), 3);
    assert!(v.get("page").is_none());
    assert_eq!(v["experiments"][0]["counts"]["pending"], 65534);
    assert!(
        v["experiments"][0]["note"]
            .as_str()
            .unwrap()
            .contains("65536 trials are too many for live tables"),
        "{}",
        v["experiments"][0]
    );

    let http = coordinator.http.clone().unwrap();
    let (head, body) = http_get(&http, "/api/status");
    assert_eq!(head, "HTTP/1.0 200 OK");
    assert!(body.len() < SMALL, "/api/status: {} bytes", body.len());

    // Pages: by state, by name; in text and JSON, over gRPC and HTTP.
    let text = status(
        &url,
        &["--state", "pending", "--offset", "10", "--limit", "3"],
    );
    let page: Vec<&str> = text
        .lines()
        .skip_while(|l| !l.starts_with("trials "))
        .collect();
    assert_eq!(page[0], "trials 11 to 13 of 65534 matching:", "{text}");
    assert_eq!(page.len(), 4, "{text}");
    assert!(
        page[1..].iter().all(|l| l.contains(" pending epoch 0/3")),
        "{text}"
    );
    let json = status(&url, &["--json", "--trial", &b.name]);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["page"]["matched"], 1);
    assert_eq!(v["trials"][0]["state"], "running");
    assert_eq!(v["trials"][0]["history"][0]["test_accuracy"], 45.0);
    let (head, body) = http_get(&http, "/api/status?state=succeeded");
    assert_eq!(head, "HTTP/1.0 200 OK");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["page"]["matched"], 1);
    assert_eq!(v["trials"][0]["name"], a.name.as_str());
    // The most a page lists is bounded too.
    let json = status(&url, &["--json", "--trials", "--limit", "500"]);
    assert!(json.len() < 1 << 20, "a page of 500: {} bytes", json.len());
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["trials"].as_array().unwrap().len(), 500);
}
