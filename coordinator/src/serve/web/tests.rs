//! Tests of the web view's HTTP server: real requests on 127.0.0.1, HTTP/1.0 so that bodies end
//! when the connection closes; the Host check; one snapshot per change for any number of event
//! streams.

use std::net::SocketAddr;
use std::sync::Arc;
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
    live: Arc<Live>,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<Result<(), Error>>,
    _out: tempfile::TempDir,
}

async fn start() -> Server {
    start_on("127.0.0.1:0").await
}

async fn start_on(bind: &str) -> Server {
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
    let listener = TcpListener::bind(bind).await.unwrap();
    let mut addr = listener.local_addr().unwrap();
    let loopback = addr.ip().is_loopback().then_some(addr.port());
    let (stop, stopped) = watch::channel(false);
    // As `serve` does, keeping the `Live` to count the snapshots it makes.
    let live = Arc::new(Live::new(handle.clone()));
    let app = router(Arc::clone(&live), stopped.clone(), loopback);
    let task = tokio::spawn(async move {
        let mut stopped = stopped;
        axum::serve(listener, app)
            .with_graceful_shutdown(async move { super::stopped(&mut stopped).await })
            .await
            .map_err(Error::Http)
    });
    if addr.ip().is_unspecified() {
        addr.set_ip([127, 0, 0, 1].into());
    }
    Server {
        addr,
        handle,
        live,
        stop,
        task,
        _out: out,
    }
}

/// Sends `GET path` over HTTP/1.0 with `host` as the Host header (none if `None`) and returns
/// the connection, request sent.
async fn get_as(addr: SocketAddr, path: &str, host: Option<&str>) -> TcpStream {
    let mut conn = TcpStream::connect(addr).await.unwrap();
    let host = host.map_or_else(String::new, |h| format!("Host: {h}\r\n"));
    conn.write_all(format!("GET {path} HTTP/1.0\r\n{host}\r\n").as_bytes())
        .await
        .unwrap();
    conn
}

/// Sends `GET path` over HTTP/1.0 (Host: the address) and returns the connection, request sent.
async fn get(addr: SocketAddr, path: &str) -> TcpStream {
    get_as(addr, path, Some(&addr.to_string())).await
}

/// The whole response (head and body) to `GET path` with `host` as the Host header.
async fn fetch_as(addr: SocketAddr, path: &str, host: Option<&str>) -> String {
    let mut conn = get_as(addr, path, host).await;
    let mut bytes = Vec::new();
    tokio::time::timeout(TIMEOUT, conn.read_to_end(&mut bytes))
        .await
        .expect("the response ends in time")
        .unwrap();
    String::from_utf8(bytes).unwrap()
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
    // Nothing is loaded from anywhere else: only the comparison views' assets, from here.
    let local = html
        .replace(" src=\"/assets/", "")
        .replace(" href=\"/assets/", "");
    for external in [" src=", " href=", "@import", "url("] {
        assert!(!local.contains(external), "the page loads {external}");
    }
    for (asset, kind) in [
        ("/assets/vendor.js", "text/javascript"),
        ("/assets/compare.js", "text/javascript"),
        ("/assets/vendor.css", "text/css"),
        ("/assets/compare.css", "text/css"),
    ] {
        assert!(html.contains(asset), "the page does not use {asset}");
        let got = fetch(server.addr, asset).await;
        assert!(got.starts_with("HTTP/1.0 200"), "{asset}: {got:.200}");
        let head = got.split_once("\r\n\r\n").unwrap().0.to_lowercase();
        assert!(
            head.contains(&format!("content-type: {kind}")),
            "{asset}: {head}"
        );
        assert!(body(&got).len() > 1000, "{asset} is nearly empty");
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

#[tokio::test]
async fn on_loopback_only_requests_naming_this_server_are_answered() {
    let server = start().await;
    let port = server.addr.port();
    // A page of another site that DNS rebinding points at 127.0.0.1 sends its own name.
    for host in [
        Some(format!("evil.example:{port}")),
        Some("evil.example".to_owned()),
        Some(format!("127.0.0.1:{}", port.wrapping_add(1))),
        Some(format!("localhost.evil.example:{port}")),
        Some(format!("127.0.0.2:{port}")),
        Some("[::1".to_owned()),
        None,
    ] {
        for path in ["/api/status", "/api/events", "/", "/metrics", "/healthz"] {
            let response = fetch_as(server.addr, path, host.as_deref()).await;
            assert!(
                response.starts_with("HTTP/1.0 403"),
                "Host {host:?} {path}: {response}"
            );
            assert!(!response.contains("\"sweep\""), "{response}");
        }
    }
    for host in [
        format!("127.0.0.1:{port}"),
        format!("localhost:{port}"),
        format!("LocalHost:{port}"),
        format!("[::1]:{port}"),
    ] {
        let response = fetch_as(server.addr, "/api/status", Some(&host)).await;
        assert!(
            response.starts_with("HTTP/1.0 200"),
            "Host {host}: {response}"
        );
    }
    assert!(host_allowed("localhost", 80) && host_allowed("[::1]", 80));
    assert!(!host_allowed("localhost", 8080) && !host_allowed("localhost:80x", 80));
    server.stop.send(true).unwrap();
    server.task.await.unwrap().unwrap();
}

#[tokio::test]
async fn bound_to_every_address_it_answers_any_host() {
    let server = start_on("0.0.0.0:0").await;
    let response = fetch_as(server.addr, "/healthz", Some("sweep.example.org")).await;
    assert!(response.starts_with("HTTP/1.0 200"), "{response}");
    server.stop.send(true).unwrap();
    server.task.await.unwrap().unwrap();
}

#[tokio::test]
async fn the_status_lists_a_page_of_trials_on_request() {
    let server = start().await;
    let response = fetch(server.addr, "/api/status?state=pending&limit=1&offset=1").await;
    assert!(response.starts_with("HTTP/1.0 200"), "{response}");
    let snap: Snapshot = serde_json::from_str(body(&response)).unwrap();
    assert_eq!(snap.trials.len(), 1);
    assert_eq!(
        snap.page,
        Some(crate::status::Page {
            offset: 1,
            limit: 1,
            matched: 2
        })
    );
    let named = &snap.trials[0].name;
    let response = fetch(
        server.addr,
        &format!("/api/status?trial={named}&experiment=e"),
    )
    .await;
    let snap: Snapshot = serde_json::from_str(body(&response)).unwrap();
    assert_eq!((snap.trials.len(), &snap.trials[0].name), (1, named));
    assert_eq!(snap.experiments.len(), 1, "the experiment asked for");
    // A page lists each trial's hyperparameters; asked, the experiment's importance.
    assert!(
        snap.trials
            .iter()
            .all(|t| t.params.contains_key("activation"))
    );
    assert_eq!(snap.importance, None, "not asked for");
    let response = fetch(server.addr, "/api/status?experiment=e&importance=1").await;
    let snap: Snapshot = serde_json::from_str(body(&response)).unwrap();
    let importance = snap.importance.expect("the importance asked for");
    assert_eq!(importance.experiment, "e");
    assert!(importance.importance.is_some() || importance.note.is_some());

    for (path, says) in [
        (
            "/api/status?state=done",
            "parameter state: unknown state \"done\"",
        ),
        (
            "/api/status?limit=-1",
            "parameter limit: \"-1\" is not a whole number",
        ),
        ("/api/status?colour=red", "unknown parameter \"colour\""),
        (
            "/api/status?importance=1",
            "parameter importance needs parameter experiment",
        ),
        (
            "/api/status?experiment=e&importance=yes",
            "parameter importance: \"yes\" is not 1, true, 0 or false",
        ),
        (
            "/api/status?trial=a%0Ab",
            "parameter trial holds a control character",
        ),
        ("/api/status?trial=%ZZ", "is not percent-encoded UTF-8"),
    ] {
        let response = fetch(server.addr, path).await;
        assert!(response.starts_with("HTTP/1.0 400"), "{path}: {response}");
        assert!(body(&response).contains(says), "{path}: {response}");
    }
    assert_eq!(
        query(Some("experiment=a+b%2Fc&limit=100000")).unwrap(),
        Some(crate::status::Query {
            experiment: Some("a b/c".into()),
            limit: crate::status::MAX_PAGE,
            ..crate::status::Query::default()
        })
    );
    server.stop.send(true).unwrap();
    server.task.await.unwrap().unwrap();
}

/// Reads the first `n` status events of `conn` (whole), as bytes.
async fn raw_events(conn: &mut TcpStream, seen: &mut Vec<u8>, n: usize) -> Vec<Vec<u8>> {
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    loop {
        let text = String::from_utf8_lossy(seen);
        let events: Vec<Vec<u8>> = text
            .split("event: status\ndata: ")
            .skip(1)
            .filter_map(|e| {
                e.split_once("\n\n")
                    .map(|(data, _)| data.as_bytes().to_vec())
            })
            .collect();
        if events.len() >= n {
            return events;
        }
        let mut buf = [0u8; 8192];
        let read = tokio::time::timeout_at(deadline, conn.read(&mut buf))
            .await
            .expect("an event in time")
            .unwrap();
        assert!(read > 0, "the stream ended early");
        seen.extend_from_slice(&buf[..read]);
    }
}

#[tokio::test]
async fn a_hundred_event_streams_share_one_snapshot_per_change() {
    const CLIENTS: usize = 100;
    let server = start().await;
    // Snapshots are made again when a second old (times move on): a bound that grows with the
    // time a step took, not with the number of clients.
    let bound = |since: Instant| 2 + since.elapsed().as_secs();
    let connecting = Instant::now();
    let mut conns = Vec::new();
    for _ in 0..CLIENTS {
        conns.push((get(server.addr, "/api/events").await, Vec::new()));
    }
    for (conn, seen) in &mut conns {
        raw_events(conn, seen, 1).await;
    }
    let made = server.live.made();
    assert!(
        made <= bound(connecting),
        "{made} snapshots for {CLIENTS} clients"
    );

    let changing = Instant::now();
    server
        .handle
        .register("w1".into(), "cpu".into(), 1)
        .await
        .unwrap();
    for (conn, seen) in &mut conns {
        let events = raw_events(conn, seen, 2).await;
        let last: Snapshot = serde_json::from_slice(events.last().unwrap()).unwrap();
        if last.workers.is_empty() {
            // A refresh came first; the change is in the next one.
            let events = raw_events(conn, seen, events.len() + 1).await;
            let last: Snapshot = serde_json::from_slice(events.last().unwrap()).unwrap();
            assert_eq!(last.workers.len(), 1);
        }
    }
    let made = server.live.made() - made;
    assert!(
        made <= bound(changing),
        "{made} snapshots for one change seen by {CLIENTS} clients"
    );
    server.stop.send(true).unwrap();
    drop(conns);
    tokio::time::timeout(TIMEOUT, server.task)
        .await
        .expect("the server stops")
        .unwrap()
        .unwrap();
}
