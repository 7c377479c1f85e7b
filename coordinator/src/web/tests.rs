//! Tests of the web view's HTTP server: real requests on 127.0.0.1, HTTP/1.0 so that bodies end
//! when the connection closes.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use sweep_common::grid::Grid;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::*;
use crate::actor::{self, Actor};
use crate::console::Console;
use crate::state::{Config, Scheduler};
use crate::status::Snapshot;

const GRID: &str = "[sweep]\nname='web'\n[[experiment]]\nname='e'\ndataset='cifar10'\n\
                    [experiment.fixed]\nepochs=3\n[experiment.grid]\nhidden_layers=[1,2]\n";
const TIMEOUT: Duration = Duration::from_secs(10);

struct Server {
    addr: SocketAddr,
    handle: Handle,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<Result<(), Error>>,
    _out: tempfile::TempDir,
}

async fn start() -> Server {
    let grid = Grid::parse(GRID, "t.toml").unwrap();
    let config = Config {
        lease_ttl: Duration::from_secs(30),
        max_attempts: 2,
        retry_after: Duration::from_millis(100),
    };
    let out = tempfile::tempdir().unwrap();
    let scheduler = Scheduler::new(grid.trials().cloned(), config);
    let mut store = crate::store::Store::open(out.path()).unwrap();
    store.record_grid(scheduler.trials()).unwrap();
    let (handle, _finished, _task) = actor::spawn(Actor {
        scheduler,
        grid,
        grid_file: "t.toml".into(),
        out_dir: out.path().to_owned(),
        state_dir: out.path().to_owned(),
        store,
        tick: Duration::from_millis(50),
        progress_every: Duration::from_secs(3600),
        console: Console::new(false),
        started: Instant::now(),
    });
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = watch::channel(false);
    let task = tokio::spawn(serve(listener, handle.clone(), stopped));
    Server {
        addr,
        handle,
        stop,
        task,
        _out: out,
    }
}

/// Sends `GET path` over HTTP/1.0 and returns the connection, request sent.
async fn get(addr: SocketAddr, path: &str) -> TcpStream {
    let mut conn = TcpStream::connect(addr).await.unwrap();
    conn.write_all(format!("GET {path} HTTP/1.0\r\nHost: test\r\n\r\n").as_bytes())
        .await
        .unwrap();
    conn
}

/// The whole response (head and body) to `GET path`.
async fn fetch(addr: SocketAddr, path: &str) -> String {
    let mut conn = get(addr, path).await;
    let mut bytes = Vec::new();
    tokio::time::timeout(TIMEOUT, conn.read_to_end(&mut bytes))
        .await
        .expect("the response ends in time")
        .unwrap();
    String::from_utf8(bytes).unwrap()
}

fn body(response: &str) -> &str {
    response.split_once("\r\n\r\n").map_or("", |(_, b)| b)
}

/// Reads from `conn` into `seen` until it holds `n` complete status events; returns the last.
async fn nth_event(conn: &mut TcpStream, seen: &mut String, n: usize) -> Snapshot {
    let events = |s: &str| -> Vec<String> {
        s.split("event: status\ndata: ")
            .skip(1)
            .filter_map(|e| e.split_once("\n\n").map(|(data, _)| data.to_owned()))
            .collect()
    };
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    while events(seen).len() < n {
        let mut buf = [0u8; 8192];
        let read = tokio::time::timeout_at(deadline, conn.read(&mut buf))
            .await
            .expect("an event in time")
            .unwrap();
        assert!(read > 0, "the stream ended early: {seen}");
        seen.push_str(std::str::from_utf8(&buf[..read]).unwrap());
    }
    serde_json::from_str(&events(seen)[n - 1]).unwrap()
}

#[tokio::test]
async fn serves_the_page_the_snapshot_health_and_metrics() {
    let server = start().await;
    let health = fetch(server.addr, "/healthz").await;
    assert!(health.starts_with("HTTP/1.0 200"), "{health}");
    assert_eq!(body(&health), "ok");

    let page = fetch(server.addr, "/").await;
    assert!(page.starts_with("HTTP/1.0 200"), "{page}");
    let head = page.split_once("\r\n\r\n").unwrap().0.to_lowercase();
    assert!(head.contains("content-type: text/html; charset=utf-8"));
    assert!(head.contains("content-security-policy: default-src 'none'"));
    let html = body(&page);
    assert!(
        html.starts_with("<!doctype html>") && html.contains("new EventSource(\"/api/events\")")
    );
    // Self-contained: nothing is loaded from anywhere else.
    for external in [" src=", " href=", "@import", "url("] {
        assert!(!html.contains(external), "the page loads {external}");
    }

    let status = fetch(server.addr, "/api/status").await;
    assert!(status.starts_with("HTTP/1.0 200"), "{status}");
    let snap: Snapshot = serde_json::from_str(body(&status)).unwrap();
    assert_eq!(snap.sweep, "web");
    assert_eq!(snap.trials.len(), 2);
    assert_eq!(snap.experiments.len(), 1, "the page's snapshot is detailed");

    let metrics = fetch(server.addr, "/metrics").await;
    assert!(metrics.starts_with("HTTP/1.0 200"), "{metrics}");
    let head = metrics.split_once("\r\n\r\n").unwrap().0.to_lowercase();
    assert!(head.contains("content-type: text/plain; version=0.0.4; charset=utf-8"));
    let text = body(&metrics);
    assert!(
        text.contains("\nsweep_trials{state=\"pending\"} 2\n"),
        "{text}"
    );
    assert!(
        text.contains("\nsweep_workers{state=\"connected\"} 0\n"),
        "{text}"
    );

    let missing = fetch(server.addr, "/nope").await;
    assert!(missing.starts_with("HTTP/1.0 404"), "{missing}");
    server.stop.send(true).unwrap();
    server.task.await.unwrap().unwrap();
}

#[tokio::test]
async fn events_follow_changes_and_end_when_the_server_stops() {
    let server = start().await;
    let mut conn = get(server.addr, "/api/events").await;
    let mut seen = String::new();
    let first = nth_event(&mut conn, &mut seen, 1).await;
    assert!(seen.starts_with("HTTP/1.0 200"), "{seen}");
    assert!(
        seen.to_lowercase()
            .contains("content-type: text/event-stream")
    );
    assert!(first.workers.is_empty());

    // A change is pushed without being asked for (well before the periodic refresh).
    let asked = Instant::now();
    server
        .handle
        .register("w1".into(), "cpu".into(), 1)
        .await
        .unwrap();
    let second = nth_event(&mut conn, &mut seen, 2).await;
    assert_eq!(second.workers.len(), 1);
    assert_eq!(second.workers[0].name, "w1");
    assert!(
        asked.elapsed() < REFRESH,
        "pushed on change, not on refresh"
    );

    // Stopping the server ends the stream after one last snapshot, so it shuts down cleanly
    // and the page shows how the sweep ended.
    server
        .handle
        .register("w2".into(), "cpu".into(), 1)
        .await
        .unwrap();
    server.stop.send(true).unwrap();
    let mut rest = Vec::new();
    tokio::time::timeout(TIMEOUT, conn.read_to_end(&mut rest))
        .await
        .expect("the stream ends when the server stops")
        .unwrap();
    seen.push_str(std::str::from_utf8(&rest).unwrap());
    let last = nth_event(&mut conn, &mut seen, 3).await;
    assert_eq!(
        last.workers.len(),
        2,
        "the last snapshot is the latest state"
    );
    tokio::time::timeout(TIMEOUT, server.task)
        .await
        .expect("the server stops")
        .unwrap()
        .unwrap();
}
