//! The live web view (`coordinator --http ADDR`): a small HTTP server beside the gRPC one.
//!
//! - `GET /`: one self-contained page (inline CSS and JS, no external assets; its
//!   Content-Security-Policy allows nothing else) that shows the status, the experiments'
//!   accuracy tables and the learning curves, drawn client-side as SVG.
//! - `GET /api/status`: the detailed [`Snapshot`](crate::status::Snapshot) as JSON.
//! - `GET /api/events`: server-sent events; an event `status` carrying that JSON at once, then
//!   after every visible change (at most [`MAX_EVENTS_PER_SECOND`] per second) and every
//!   [`REFRESH`] otherwise. The page redraws on each event and never reloads.
//! - `GET /healthz`: `ok`.
//! - `GET /metrics`: Prometheus metrics, rendered by [`crate::metrics`] from the status.
//!
//! The handlers only ask the actor's handle; the server and every event stream stop when `stop`
//! turns true (each stream after one last snapshot).

use std::convert::Infallible;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;

use crate::Error;
use crate::actor::Handle;

/// Status events sent per second at most, per client.
pub const MAX_EVENTS_PER_SECOND: u32 = 4;
/// An event is sent at least this often, so times move on while nothing happens.
pub const REFRESH: Duration = Duration::from_secs(5);

/// The page: HTML with its CSS and JS inline.
const PAGE: &str = include_str!("page.html");

/// Only the page's own inline style and script, and calls back to this server.
const CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; \
                   connect-src 'self'; img-src data:; base-uri 'none'; form-action 'none'";

#[derive(Clone)]
struct AppState {
    handle: Handle,
    stop: watch::Receiver<bool>,
}

/// Serves the live view on `listener` until `stop` turns true (or its sender is dropped).
pub async fn serve(
    listener: TcpListener,
    handle: Handle,
    stop: watch::Receiver<bool>,
) -> Result<(), Error> {
    let app = router(handle, stop.clone());
    let mut stop = stop;
    axum::serve(listener, app)
        .with_graceful_shutdown(async move { stopped(&mut stop).await })
        .await
        .map_err(Error::Http)
}

fn router(handle: Handle, stop: watch::Receiver<bool>) -> Router {
    Router::new()
        .route("/", get(page))
        .route("/api/status", get(status))
        .route("/api/events", get(events))
        .route("/healthz", get(|| async { "ok" }))
        .route("/metrics", get(metrics))
        .with_state(AppState { handle, stop })
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

async fn status(State(state): State<AppState>) -> Response {
    match state.handle.status(true).await {
        Ok(snapshot) => {
            ([(header::CACHE_CONTROL, "no-store")], axum::Json(snapshot)).into_response()
        }
        Err(e) => (StatusCode::SERVICE_UNAVAILABLE, e.to_string()).into_response(),
    }
}

async fn metrics(State(state): State<AppState>) -> Response {
    match state.handle.status(false).await {
        Ok(snapshot) => (
            [
                (header::CONTENT_TYPE, crate::metrics::CONTENT_TYPE),
                (header::CACHE_CONTROL, "no-store"),
            ],
            crate::metrics::render(&snapshot),
        )
            .into_response(),
        Err(e) => (StatusCode::SERVICE_UNAVAILABLE, e.to_string()).into_response(),
    }
}

async fn events(State(state): State<AppState>) -> Response {
    let (tx, rx) = mpsc::channel(2);
    tokio::spawn(pump(state.handle, state.stop, tx));
    (
        [(header::CACHE_CONTROL, "no-store")],
        Sse::new(ReceiverStream::new(rx)).keep_alive(KeepAlive::default()),
    )
        .into_response()
}

/// Feeds one client's event stream until it goes away or the server stops; when the server
/// stops, one last snapshot is sent first, so the page shows how the sweep ended.
async fn pump(
    handle: Handle,
    mut stop: watch::Receiver<bool>,
    tx: mpsc::Sender<Result<Event, Infallible>>,
) {
    let mut changes = handle.changes();
    let min_gap = Duration::from_secs(1) / MAX_EVENTS_PER_SECOND;
    let mut last = false;
    loop {
        // Seen before the snapshot is taken: a change after this point makes another event.
        changes.mark_unchanged();
        let Ok(snapshot) = handle.status(true).await else {
            break;
        };
        let Ok(json) = serde_json::to_string(&snapshot) else {
            break;
        };
        let event = Event::default().event("status").data(json);
        if tx.send(Ok(event)).await.is_err() || last {
            break;
        }
        tokio::select! {
            () = tokio::time::sleep(min_gap) => {}
            () = stopped(&mut stop) => last = true,
            () = tx.closed() => break,
        }
        if last {
            continue;
        }
        tokio::select! {
            changed = changes.changed() => last = changed.is_err(),
            () = tokio::time::sleep(REFRESH) => {}
            () = stopped(&mut stop) => last = true,
            () = tx.closed() => break,
        }
    }
}

#[cfg(test)]
mod tests;
