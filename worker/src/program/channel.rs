//! The channel between a program and its worker (issue 19, part 2): a Unix socket the worker
//! makes for each trial (its path in `SWEEP_SOCKET`), on which the client library sends one
//! JSON object per line and reads one answer per line. See ARCHITECTURE.md, "The program
//! channel", for the wire.
//!
//! Each connection is read on a thread of its own, which hands every request to the trial's
//! thread and waits for its answer: reports reach the session (and the coordinator's fencing)
//! through the same [`Progress`] as native epochs. Nothing the program sends can crash the
//! worker: a line is at most [`MAX_REQUEST`] bytes, connections are at most
//! [`MAX_CONNECTIONS`], and a request that cannot be read or is refused is answered with an
//! error that ends the trial (`program_failed`, with that error as its message).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::time::Duration;

use serde::Deserialize;
use sweep_common::{ConfusionMatrix, EpochMetrics, Scalars};

use super::pack;
use crate::train::Progress;

/// Longest request line, in bytes (a confusion matrix of a few hundred classes fits).
pub const MAX_REQUEST: usize = 1 << 20;
/// Most connections open at once (the client uses one).
pub const MAX_CONNECTIONS: usize = 8;

/// One request of the client library.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum Request {
    /// An epoch ended: its metrics (accuracies in percent).
    Report {
        /// 1-based; after the epoch the attempt resumed from.
        epoch: u32,
        /// Accuracy (%) on the program's test split.
        test_accuracy: f64,
        /// Accuracy (%) on its training split.
        #[serde(default)]
        train_accuracy: f64,
        /// Its training loss.
        #[serde(default)]
        train_loss: f64,
        /// The epoch's wall-clock seconds (the client measures them).
        #[serde(default)]
        seconds: f64,
        /// More scalars by name (`sweep_common::metrics::check_scalar`'s rules).
        #[serde(default)]
        metrics: BTreeMap<String, f64>,
        /// The test split's confusion matrix, rows the true class, when given.
        #[serde(default)]
        confusion: Option<Vec<Vec<u64>>>,
    },
    /// Whether the program should stop (the answer's `stop` says it).
    ShouldStop,
    /// The program wrote a checkpoint of `epoch` (the last one it reported) into
    /// `SWEEP_CHECKPOINT_DIR`: pack and upload it.
    Checkpoint {
        /// The epoch the checkpoint ends.
        epoch: u32,
    },
}

/// A request read from a connection (or why it could not be), and where its answer goes.
pub struct Call {
    /// The request.
    pub request: Result<Request, String>,
    reply: SyncSender<Result<bool, String>>,
}

impl Call {
    /// Answers the call: `Ok` says whether the program should stop, `Err` refuses it.
    pub fn answer(self, answer: Result<bool, String>) {
        let _ = self.reply.send(answer);
    }
}

/// The trial's socket: accepts connections and hands their requests over.
pub struct Listener {
    listener: UnixListener,
    tx: SyncSender<Call>,
    rx: Receiver<Call>,
    open: Arc<AtomicUsize>,
}

impl Listener {
    /// Makes the socket at `path`.
    pub fn bind(path: &Path) -> std::io::Result<Self> {
        let listener = UnixListener::bind(path)?;
        listener.set_nonblocking(true)?;
        let (tx, rx) = sync_channel(0);
        Ok(Self {
            listener,
            tx,
            rx,
            open: Arc::new(AtomicUsize::new(0)),
        })
    }

    /// The next request within `wait` (new connections accepted first), if any.
    pub fn next(&mut self, wait: Duration) -> Option<Call> {
        while let Ok((stream, _)) = self.listener.accept() {
            if self.open.load(Ordering::Relaxed) >= MAX_CONNECTIONS {
                // Dropped: closed. A client sees its connection end.
                continue;
            }
            self.open.fetch_add(1, Ordering::Relaxed);
            let (tx, open) = (self.tx.clone(), Arc::clone(&self.open));
            let spawned = std::thread::Builder::new()
                .name("program-channel".into())
                .spawn(move || {
                    serve(stream, &tx);
                    open.fetch_sub(1, Ordering::Relaxed);
                });
            if spawned.is_err() {
                self.open.fetch_sub(1, Ordering::Relaxed);
            }
        }
        // Timed out, or (never: the listener holds a sender) disconnected.
        self.rx.recv_timeout(wait).ok()
    }
}

/// Reads requests from one connection until it closes, a line is too long, or the trial ends.
fn serve(stream: UnixStream, calls: &SyncSender<Call>) {
    if stream.set_nonblocking(false).is_err() {
        return;
    }
    let Ok(read) = stream.try_clone() else { return };
    let mut reader = BufReader::new(read);
    let mut writer = stream;
    let mut line = Vec::new();
    loop {
        line.clear();
        let limit = MAX_REQUEST as u64 + 1;
        match (&mut reader).take(limit).read_until(b'\n', &mut line) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let too_long = line.len() > MAX_REQUEST;
        let request = if too_long {
            Err(format!("a request longer than {MAX_REQUEST} bytes"))
        } else {
            parse(&line)
        };
        let (reply, answer) = sync_channel(1);
        if calls.send(Call { request, reply }).is_err() {
            return;
        }
        let Ok(answer) = answer.recv() else { return };
        let refused = answer.is_err();
        let text = match answer {
            Ok(stop) => serde_json::json!({"ok": true, "stop": stop}),
            Err(e) => serde_json::json!({"ok": false, "error": e}),
        };
        if writeln!(writer, "{text}").is_err() || refused || too_long {
            return;
        }
    }
}

/// A request line, or what is wrong with it.
fn parse(line: &[u8]) -> Result<Request, String> {
    let text =
        std::str::from_utf8(line).map_err(|e| format!("a request that is not UTF-8: {e}"))?;
    serde_json::from_str(text.trim()).map_err(|e| {
        let shown: String = text.trim().chars().take(80).collect();
        format!("a request that is not one the client sends ({e}): {shown}")
    })
}

/// What the program reported, checked against its trial.
pub struct Reports {
    /// The epoch the attempt resumed from (0: from the start).
    pub resumed_from: u32,
    /// The trial's epochs.
    pub epochs: u32,
    /// The dataset's classes.
    pub classes: usize,
    /// The folder the program writes checkpoints into.
    pub checkpoint_dir: PathBuf,
    /// The epochs of the trial so far, from 1 (those of the checkpoint resumed from first).
    pub done: Vec<EpochMetrics>,
    /// The last confusion matrix reported.
    pub confusion: Option<ConfusionMatrix>,
    /// Whether this attempt reported anything.
    pub reported: bool,
}

impl Reports {
    /// Acts on `request`: an epoch goes to `progress`; so does a checkpoint, packed.
    pub fn handle(&mut self, request: Request, progress: &mut dyn Progress) -> Result<(), String> {
        match request {
            Request::ShouldStop => Ok(()),
            Request::Report {
                epoch,
                test_accuracy,
                train_accuracy,
                train_loss,
                seconds,
                metrics,
                confusion,
            } => {
                let last = self.done.last().map_or(self.resumed_from, |m| m.epoch);
                if epoch != last + 1 || epoch > self.epochs {
                    return Err(format!(
                        "report of epoch {epoch}: the next epoch is {} (of 1..={}; this attempt \
                         resumed from epoch {})",
                        last + 1,
                        self.epochs,
                        self.resumed_from
                    ));
                }
                for (name, x) in [
                    ("test_accuracy", test_accuracy),
                    ("train_accuracy", train_accuracy),
                ] {
                    if !(0.0..=100.0).contains(&x) {
                        return Err(format!(
                            "report of epoch {epoch}: {name} {x} is not a percentage in 0..=100"
                        ));
                    }
                }
                for (name, x) in [("train_loss", train_loss), ("seconds", seconds)] {
                    if !x.is_finite() {
                        return Err(format!("report of epoch {epoch}: {name} is {x}"));
                    }
                }
                let scalars: Scalars = metrics.into_iter().collect();
                scalars
                    .check()
                    .map_err(|e| format!("report of epoch {epoch}: {e}"))?;
                if let Some(rows) = confusion {
                    self.confusion = Some(self.matrix(epoch, rows)?);
                }
                let m = EpochMetrics {
                    epoch,
                    train_loss,
                    train_accuracy,
                    test_accuracy,
                    seconds: seconds.max(0.0),
                    scalars,
                };
                progress.epoch(&m);
                self.done.push(m);
                self.reported = true;
                Ok(())
            }
            Request::Checkpoint { epoch } => {
                let last = self.done.last().map_or(0, |m| m.epoch);
                if epoch == 0 || epoch != last || epoch <= self.resumed_from {
                    return Err(format!(
                        "checkpoint of epoch {epoch}: a checkpoint follows the report of its \
                         epoch (the last reported is {last})"
                    ));
                }
                let meta = serde_json::json!({ "epochs": self.done }).to_string();
                let bytes = pack::pack(&self.checkpoint_dir, meta.as_bytes())
                    .map_err(|e| format!("checkpoint of epoch {epoch}: {e}"))?;
                progress.checkpoint(epoch, bytes);
                Ok(())
            }
        }
    }

    /// A reported confusion matrix, checked against the dataset's classes.
    fn matrix(&self, epoch: u32, rows: Vec<Vec<u64>>) -> Result<ConfusionMatrix, String> {
        let n = self.classes;
        if rows.len() != n || rows.iter().any(|r| r.len() != n) {
            return Err(format!(
                "report of epoch {epoch}: the confusion matrix must be {n} rows of {n} counts \
                 (the dataset's classes)"
            ));
        }
        Ok(ConfusionMatrix {
            classes: n,
            counts: rows.into_iter().flatten().collect(),
        })
    }
}

#[cfg(test)]
mod tests;
