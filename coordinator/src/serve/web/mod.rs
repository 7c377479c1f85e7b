//! The live web view (`coordinator --http ADDR`): a small HTTP server beside the gRPC one.
//!
//! - `GET /`: one page (inline CSS and JS, and the comparison views' assets below; its
//!   Content-Security-Policy allows nothing else) that shows the status, the experiments'
//!   accuracy tables and the learning curves, drawn client-side as SVG, and the comparison
//!   views (parallel coordinates, importance, a server-paged trial table).
//! - `GET /api/status`: the detailed status summary ([`Snapshot`](crate::status::Snapshot)) as
//!   JSON. With query parameters (`state`, `experiment`, `trial`, `offset`, `limit`,
//!   `importance`: see [`query`]) it lists that page of trials, each with its hyperparameters,
//!   instead of the summary's own (and, asked, the importance of an experiment's
//!   hyperparameters); a bad parameter gets 400 naming it.
//! - `GET /api/events`: server-sent events; an event `status` carrying the summary's JSON at
//!   once, then after every visible change (at most [`MAX_EVENTS_PER_SECOND`] per second) and
//!   every [`REFRESH`] otherwise. The page redraws on each event and never reloads.
//! - `GET /assets/{vendor,compare}.{js,css}`: the comparison views' scripts and styles
//!   ([`crate::report::views`]: the same as `report.html` inlines).
//! - `GET /healthz`: `ok`.
//! - `GET /metrics`: Prometheus metrics, rendered by [`crate::metrics`] from the status.
//!
//! One snapshot per change, for every client: [`Live`] asks the state owner for the summary at
//! most once per change and at most [`MAX_EVENTS_PER_SECOND`] times a second however many
//! clients ask, encodes it once, and every event stream sends those same bytes (one
//! reference-counted buffer, not a copy per client). A stream whose client reads slowly skips to
//! the latest snapshot instead of queueing old ones. The summary's size does not grow with the
//! number of trials, so neither does a client's cost.
//!
//! Bound to a loopback address, the server answers only requests whose `Host` header names it
//! (`localhost`, `127.0.0.1` or `[::1]`, with its port): a page of another site that DNS
//! rebinding points at 127.0.0.1 gets 403 and reads nothing.
//!
//! The handlers only ask the actor's handle; the server and every event stream stop when `stop`
//! turns true (each stream after one last snapshot).

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{RawQuery, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tokio::net::TcpListener;
use tokio::sync::{Mutex, Semaphore, mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;

use crate::Error;
use crate::actor::Handle;
use crate::report::views;
use crate::status::{Phase, Query, View};

/// Snapshots made per second at most (and status events sent per second at most, per client).
pub const MAX_EVENTS_PER_SECOND: u32 = 4;
/// An event is sent at least this often, so times move on while nothing happens.
pub const REFRESH: Duration = Duration::from_secs(5);
/// A snapshot this old is made again even if nothing changed (its times have moved on).
const MAX_AGE: Duration = Duration::from_secs(1);
/// Pages of trials made at once at most (each costs the state owner a scan of its trials at
/// worst); more requests wait.
const PAGES_AT_ONCE: usize = 2;

/// The page: HTML with its CSS and JS inline.
const PAGE: &str = include_str!("page.html");

/// Only the page's own inline style and script, the comparison views' assets from this server,
/// and calls back to it.
const CSP: &str = "default-src 'none'; style-src 'self' 'unsafe-inline'; \
                   script-src 'self' 'unsafe-inline'; connect-src 'self'; img-src data:; \
                   base-uri 'none'; form-action 'none'";

/// The summary as one client gets it: made once, shared by all.
pub struct Published {
    /// The generation of changes it shows (see [`Handle::changes`]).
    generation: u64,
    /// When it was made.
    at: Instant,
    /// Its JSON.
    json: Bytes,
    /// Its server-sent event (`event: status`, the JSON as data).
    event: Bytes,
}

/// The latest summary, made at most once per change and per `1 / MAX_EVENTS_PER_SECOND` for
/// every client of the web view.
pub struct Live {
    handle: Handle,
    changes: watch::Receiver<u64>,
    latest: Mutex<Option<Arc<Published>>>,
    made: AtomicU64,
    pages: Semaphore,
}

impl Live {
    fn new(handle: Handle) -> Self {
        Live {
            changes: handle.changes(),
            handle,
            latest: Mutex::new(None),
            made: AtomicU64::new(0),
            pages: Semaphore::new(PAGES_AT_ONCE),
        }
    }

    /// The latest summary: the one already made, unless the state changed since and it is older
    /// than `1 / MAX_EVENTS_PER_SECOND`, or it is older than [`MAX_AGE`]. With `current`, one
    /// that shows every change so far. Concurrent callers wait for one of them to make it.
    async fn latest(&self, current: bool) -> Result<Arc<Published>, Error> {
        let mut slot = self.latest.lock().await;
        // Read before the snapshot is made: a change after this point makes another one.
        let generation = *self.changes.borrow();
        if let Some(p) = slot.as_ref() {
            let age = p.at.elapsed();
            let same = p.generation == generation;
            if (same && age < MAX_AGE) || (!current && age < min_gap()) {
                return Ok(Arc::clone(p));
            }
        }
        let at = Instant::now();
        let snapshot = self
            .handle
            .status(View {
                detail: true,
                trials: None,
            })
            .await?;
        let json = serde_json::to_vec(&snapshot).map_err(|e| Error::Http(e.into()))?;
        let mut event = Vec::with_capacity(json.len() + 24);
        event.extend_from_slice(b"event: status\ndata: ");
        event.extend_from_slice(&json);
        event.extend_from_slice(b"\n\n");
        let p = Arc::new(Published {
            generation,
            at,
            json: Bytes::from(json),
            event: Bytes::from(event),
        });
        *slot = Some(Arc::clone(&p));
        self.made.fetch_add(1, Ordering::Relaxed);
        Ok(p)
    }

    /// How many summaries were made so far.
    pub fn made(&self) -> u64 {
        self.made.load(Ordering::Relaxed)
    }
}

fn min_gap() -> Duration {
    Duration::from_secs(1) / MAX_EVENTS_PER_SECOND
}

#[derive(Clone)]
struct AppState {
    live: Arc<Live>,
    stop: watch::Receiver<bool>,
}

/// Serves the live view on `listener` until `stop` turns true (or its sender is dropped).
pub async fn serve(
    listener: TcpListener,
    handle: Handle,
    stop: watch::Receiver<bool>,
) -> Result<(), Error> {
    let port = listener.local_addr().map_err(Error::Http)?;
    let loopback = port.ip().is_loopback().then_some(port.port());
    let app = router(Arc::new(Live::new(handle)), stop.clone(), loopback);
    let mut stop = stop;
    axum::serve(listener, app)
        .with_graceful_shutdown(async move { stopped(&mut stop).await })
        .await
        .map_err(Error::Http)
}

/// The routes; with `loopback` (the port of a loopback address), the `Host` check around them.
fn router(live: Arc<Live>, stop: watch::Receiver<bool>, loopback: Option<u16>) -> Router {
    let router = Router::new()
        .route("/", get(page))
        .route("/api/status", get(status))
        .route("/api/events", get(events))
        .route("/assets/vendor.js", get(|| asset(JS, views::VENDOR_JS)))
        .route("/assets/compare.js", get(|| asset(JS, views::COMPARE_JS)))
        .route("/assets/vendor.css", get(|| asset(CSS, views::VENDOR_CSS)))
        .route(
            "/assets/compare.css",
            get(|| asset(CSS, views::COMPARE_CSS)),
        )
        .route("/healthz", get(|| async { "ok" }))
        .route("/metrics", get(metrics))
        .with_state(AppState { live, stop });
    match loopback {
        Some(port) => router.layer(middleware::from_fn_with_state(port, check_host)),
        None => router,
    }
}

/// True when `host` (a `Host` header) names this loopback server on `port`: `localhost`,
/// `127.0.0.1` or `[::1]`, with the port (which may be left out on port 80).
fn host_allowed(host: &str, port: u16) -> bool {
    let (name, rest) = match host.strip_prefix('[') {
        Some(v6) => match v6.split_once(']') {
            Some((addr, rest)) => (&host[..addr.len() + 2], rest),
            None => return false,
        },
        None => match host.split_once(':') {
            Some((name, _)) => (name, &host[name.len()..]),
            None => (host, ""),
        },
    };
    let known = name.eq_ignore_ascii_case("localhost") || name == "127.0.0.1" || name == "[::1]";
    let port_ok = match rest.strip_prefix(':') {
        Some(p) => p.parse::<u16>() == Ok(port),
        None => rest.is_empty() && port == 80,
    };
    known && port_ok
}

/// Refuses (403) a request whose `Host` header does not name this loopback server.
async fn check_host(State(port): State<u16>, request: Request, next: Next) -> Response {
    let host = request
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok());
    if host.is_some_and(|h| host_allowed(h, port)) {
        return next.run(request).await;
    }
    (
        StatusCode::FORBIDDEN,
        format!(
            "this live web view answers requests for localhost:{port}, 127.0.0.1:{port} or \
             [::1]:{port} only (its Host header must name it)\n"
        ),
    )
        .into_response()
}

async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

async fn page() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CONTENT_SECURITY_POLICY, CSP),
            (header::CACHE_CONTROL, "no-store"),
        ],
        PAGE,
    )
        .into_response()
}

const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";

/// One of the comparison views' assets ([`crate::report::views`], built into the binary).
async fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "max-age=300"),
        ],
        body,
    )
        .into_response()
}

/// `s` with `+` as a space and `%XX` decoded; `None` when that is not UTF-8 or an escape is
/// broken.
fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = s.get(i + 1..i + 3)?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

/// The page of trials a query string asks for (`None` without parameters): `state` (pending,
/// running, succeeded or failed), `experiment` and `trial` (a name or id) filter, `offset` skips
/// and `limit` (at most [`crate::status::MAX_PAGE`]) bounds; `importance=1` (with `experiment`)
/// adds the importance of the experiment's hyperparameters. A bad parameter is an error naming
/// it.
pub fn query(raw: Option<&str>) -> Result<Option<Query>, String> {
    let Some(raw) = raw.filter(|r| !r.is_empty()) else {
        return Ok(None);
    };
    let mut q = Query::default();
    for pair in raw.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let value = percent_decode(value)
            .ok_or_else(|| format!("parameter {key:?}: its value is not percent-encoded UTF-8"))?;
        let number = |what: &str| {
            value
                .parse::<u32>()
                .map_err(|_| format!("parameter {what}: {value:?} is not a whole number >= 0"))
        };
        match key {
            "offset" => q.offset = number("offset")?,
            "limit" => q.limit = Query::page_size(number("limit")?),
            "state" => {
                q.state = Some(
                    value
                        .parse::<Phase>()
                        .map_err(|e| format!("parameter state: {e}"))?,
                );
            }
            "importance" => {
                q.importance = match value.as_str() {
                    "1" | "true" => true,
                    "0" | "false" => false,
                    _ => {
                        return Err(format!(
                            "parameter importance: {value:?} is not 1, true, 0 or false"
                        ));
                    }
                };
            }
            "experiment" | "trial" => {
                let field = if key == "trial" {
                    "trial"
                } else {
                    "experiment"
                };
                Query::check_name(field, &value).map_err(|e| format!("parameter {e}"))?;
                if key == "trial" {
                    q.trial = Some(value);
                } else {
                    q.experiment = Some(value);
                }
            }
            other => {
                return Err(format!(
                    "unknown parameter {other:?}; expected state, experiment, trial, offset, \
                     limit or importance"
                ));
            }
        }
    }
    if q.importance && q.experiment.is_none() {
        return Err("parameter importance needs parameter experiment (whose trials)".to_owned());
    }
    Ok(Some(q))
}

fn json(body: Bytes) -> Response {
    (
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        body,
    )
        .into_response()
}

fn unavailable(e: &Error) -> Response {
    (StatusCode::SERVICE_UNAVAILABLE, e.to_string()).into_response()
}

async fn status(State(state): State<AppState>, RawQuery(raw): RawQuery) -> Response {
    let q = match query(raw.as_deref()) {
        Ok(q) => q,
        Err(message) => return (StatusCode::BAD_REQUEST, message + "\n").into_response(),
    };
    let Some(q) = q else {
        return match state.live.latest(false).await {
            Ok(p) => json(p.json.clone()),
            Err(e) => unavailable(&e),
        };
    };
    let Ok(_permit) = state.live.pages.acquire().await else {
        return unavailable(&Error::ShuttingDown);
    };
    let view = View {
        detail: true,
        trials: Some(q),
    };
    match state.live.handle.status(view).await {
        Ok(snapshot) => match serde_json::to_vec(&snapshot) {
            Ok(body) => json(Bytes::from(body)),
            Err(e) => unavailable(&Error::Http(e.into())),
        },
        Err(e) => unavailable(&e),
    }
}

async fn metrics(State(state): State<AppState>) -> Response {
    match state.live.handle.status(View::default()).await {
        Ok(snapshot) => (
            [
                (header::CONTENT_TYPE, crate::metrics::CONTENT_TYPE),
                (header::CACHE_CONTROL, "no-store"),
            ],
            crate::metrics::render(&snapshot),
        )
            .into_response(),
        Err(e) => unavailable(&e),
    }
}

async fn events(State(state): State<AppState>) -> Response {
    let (tx, rx) = mpsc::channel(2);
    tokio::spawn(pump(state.live, state.stop, tx));
    (
        [
            (header::CONTENT_TYPE, "text/event-stream"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        Body::from_stream(ReceiverStream::new(rx)),
    )
        .into_response()
}

/// Feeds one client's event stream until it goes away or the server stops; when the server
/// stops, one last snapshot (showing every change) is sent first, so the page shows how the
/// sweep ended.
async fn pump(
    live: Arc<Live>,
    mut stop: watch::Receiver<bool>,
    tx: mpsc::Sender<Result<Bytes, Infallible>>,
) {
    let mut changes = live.handle.changes();
    let mut sent: Option<Arc<Published>> = None;
    let mut last = false;
    loop {
        let Ok(p) = live.latest(last).await else {
            break;
        };
        let new = !sent.as_ref().is_some_and(|s| Arc::ptr_eq(s, &p));
        if new && tx.send(Ok(p.event.clone())).await.is_err() {
            break;
        }
        let generation = p.generation;
        sent = Some(p);
        if last {
            break;
        }
        tokio::select! {
            () = tokio::time::sleep(min_gap()) => {}
            () = stopped(&mut stop) => last = true,
            () = tx.closed() => break,
        }
        if last {
            continue;
        }
        tokio::select! {
            changed = changes.wait_for(|g| *g != generation) => last = changed.is_err(),
            () = tokio::time::sleep(REFRESH) => {}
            () = stopped(&mut stop) => last = true,
            () = tx.closed() => break,
        }
    }
}

#[cfg(test)]
mod tests;
