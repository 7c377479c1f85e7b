//! `coordinator status --addr URL [--json]` and the web view's JSON, against a real coordinator
//! fed by a simulated worker; and the `Status` handler called directly.

#![allow(clippy::unwrap_used)]

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::{FakeWorker, Leased, http_get, start_coordinator};
use sweep_common::grid::Grid;
use sweep_coordinator::actor::{self, Actor};
use sweep_coordinator::service::Service;
use sweep_coordinator::state::{Config, Scheduler};
use sweep_coordinator::status::Snapshot;
use sweep_proto::SweepService;
use sweep_proto::v1;
use tonic::Request;

fn status(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_coordinator"))
        .arg("status")
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn status_command_and_web_json_describe_a_running_sweep() {
    let dir = tempfile::tempdir().unwrap();
    let mut coordinator = start_coordinator(dir.path(), &["--linger", "5s"]);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut w = rt.block_on(FakeWorker::register(&coordinator.url, "fake-a", 2));
    let (a, a_attempt) = rt.block_on(w.lease_trial());
    let (b, _) = rt.block_on(w.lease_trial());
    rt.block_on(w.report(&a, a_attempt, 1, 61.5));

    let (ok, text, err) = status(&["--addr", &coordinator.url]);
    assert!(ok, "status failed: {err}");
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines[0].starts_with(
            "sweep live running: 0/4 done (0 failed), 2 running, 2 pending; 80.0 epochs/min; eta "
        ),
        "{text}"
    );
    assert_eq!(lines[1], "best test accuracy: none yet");
    assert_eq!(
        lines[2],
        format!("  fake-a [cpu]: {} epoch 1/3, {} epoch 0/3", a.name, b.name)
    );
    // Without a scheme the address is taken as http://.
    let bare = coordinator.url.trim_start_matches("http://").to_owned();
    let (ok, text2, _) = status(&["--addr", &bare]);
    assert!(ok && text2.starts_with("sweep live running"), "{text2}");

    let (ok, json, err) = status(&["--addr", &coordinator.url, "--json"]);
    assert!(ok, "status --json failed: {err}");
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["sweep"], "live");
    assert_eq!(v["counts"]["running"], 2);
    assert_eq!(v["counts"]["total"], 4);
    assert_eq!(v["trials"][0]["name"], a.name.as_str());
    assert_eq!(v["trials"][0]["state"], "running");
    assert_eq!(v["trials"][0]["worker"], "fake-a");
    assert_eq!(v["trials"][0]["history"][0]["test_accuracy"], 61.5);
    assert_eq!(v["workers"][0]["slots"], 2);
    assert_eq!(v["experiments"][0]["title"], "Activation and depth");
    assert_eq!(
        v["experiments"][0]["tables"][0]["caption"],
        "Test accuracy (%)"
    );
    assert!(v["eta_seconds"].is_number() && v["best"].is_null());

    // The web view serves the same document.
    let http = coordinator.http.clone().unwrap();
    assert_eq!(
        http_get(&http, "/healthz"),
        ("HTTP/1.0 200 OK".into(), "ok".into())
    );
    let (head, body) = http_get(&http, "/api/status");
    assert_eq!(head, "HTTP/1.0 200 OK");
    let web: Snapshot = serde_json::from_str(&body).unwrap();
    let cli: Snapshot = serde_json::from_str(&json).unwrap();
    assert_eq!(
        (web.counts, &web.trials[0].history),
        (cli.counts, &cli.trials[0].history)
    );

    // Finish the sweep; the coordinator and its web view stop.
    rt.block_on(async {
        w.complete(&a, a_attempt, &[61.5, 70.0, 75.25]).await;
        w.train(&b, 1, &[40.0, 55.0, 58.0]).await;
        loop {
            match w.lease().await {
                Leased::Trial(spec, attempt) => w.train(&spec, attempt, &[50.0, 60.0, 65.0]).await,
                Leased::Wait => tokio::time::sleep(Duration::from_millis(20)).await,
                Leased::Finished => break,
                Leased::CannotRun(why) => panic!("told it cannot run trials: {why}"),
            }
        }
    });
    coordinator
        .process
        .expect_exit_code(0, Duration::from_secs(30));
    let stdout = coordinator.process.stdout();
    assert!(
        stdout.contains("sweep finished: 4 trials succeeded"),
        "{stdout}"
    );
    let (ok, _, err) = status(&["--addr", &coordinator.url]);
    assert!(!ok && err.contains("cannot reach the coordinator"), "{err}");
}

#[tokio::test]
async fn status_handler_answers_from_the_actor() {
    let grid = Grid::parse(common::GRID, "grid.toml").unwrap();
    let out = tempfile::tempdir().unwrap();
    let config = Config {
        lease_ttl: Duration::from_secs(30),
        max_attempts: 2,
        retry_after: Duration::from_millis(100),
    };
    let sweep = grid.name.clone();
    let scheduler = Scheduler::new(grid.trials().cloned(), config);
    let mut store = sweep_coordinator::store::Store::open(out.path()).unwrap();
    store.record_grid(scheduler.trials()).unwrap();
    let (handle, _finished, _task) = actor::spawn(Actor {
        scheduler,
        grid,
        grid_file: "grid.toml".into(),
        out_dir: out.path().to_owned(),
        state_dir: out.path().to_owned(),
        store,
        tick: Duration::from_millis(50),
        progress_every: Duration::from_secs(3600),
        console: sweep_coordinator::Console::new(false),
        started: Instant::now(),
    });
    handle.register("w".into(), "cpu".into(), 1).await.unwrap();
    let service = Service::new(
        handle,
        sweep_coordinator::artifacts::Dirs {
            out: out.path().to_owned(),
            state: out.path().to_owned(),
        },
        sweep,
        Duration::from_secs(1),
        Duration::from_secs(30),
        sweep_coordinator::auth::WorkerKey::new([7; 32]),
    );

    let brief = service
        .status(Request::new(v1::StatusRequest {
            detail: false,
            trials: None,
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(brief.sweep, "live");
    assert_eq!(brief.counts.as_ref().unwrap().pending, 4);
    assert_eq!(brief.trials.len(), 4);
    assert_eq!(brief.workers.len(), 1);
    assert!(brief.experiments.is_empty(), "tables only with detail");
    assert_eq!(brief.trials[0].state, i32::from(v1::TrialState::Pending));
    let snap = Snapshot::try_from(&brief).unwrap();
    assert_eq!(snap.counts.total, 4);

    let detailed = service
        .status(Request::new(v1::StatusRequest {
            detail: true,
            trials: None,
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(detailed.experiments.len(), 1);
    assert_eq!(detailed.experiments[0].tables.len(), 2);
}
