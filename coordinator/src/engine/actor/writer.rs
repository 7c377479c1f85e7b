//! The database's own thread: batches of rows to commit, and the answers and file removals
//! that wait for them.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::{mpsc, oneshot};
use tracing::warn;

use crate::Error;
use crate::store::{Store, Writes};

/// Batches that may wait for the database's thread before the state owner waits for it.
const WRITER_QUEUE: usize = 64;

/// An answer held back until the changes it acknowledges are committed.
pub(super) type Deferred = Box<dyn FnOnce() + Send>;

pub(super) fn defer<T: Send + 'static>(reply: oneshot::Sender<T>, value: T) -> Deferred {
    Box::new(move || {
        let _ = reply.send(value);
    })
}

/// Rows to commit, and what to do once they are durable.
#[derive(Default)]
pub(super) struct Batch {
    pub(super) writes: Writes,
    /// Answers to the commands whose changes these are.
    pub(super) replies: Vec<Deferred>,
    /// Checkpoint files the committed state no longer names.
    pub(super) drop: Vec<String>,
    /// Checkpoint files found unusable: moved aside before the state that says so is committed
    /// (a crash in between leaves a state naming a file that is gone, which is found unusable
    /// again; the other order would leave it among the live checkpoints, named by nothing).
    pub(super) set_aside: Vec<String>,
    /// Told once this batch (and every one before it) is durable.
    pub(super) flushed: Option<oneshot::Sender<()>>,
    /// Its number (the state owner's count of batches sent; 0: a flush's).
    pub(super) seq: u64,
}

/// The database's own thread: commits batches in order, coalescing those that queued up while it
/// was syncing into one transaction, then answers their commands and removes the checkpoint
/// files they no longer need. Checkpoints found unusable are moved into `set-aside/` first.
pub(super) struct Writer {
    pub(super) tx: mpsc::Sender<Batch>,
    pub(super) task: tokio::task::JoinHandle<Result<(), Error>>,
    /// The number of the last batch committed (see [`Batch::seq`]).
    pub(super) committed: Arc<AtomicU64>,
}

impl Writer {
    pub(super) fn spawn(mut store: Store, checkpoints: PathBuf) -> Writer {
        let (tx, mut rx) = mpsc::channel::<Batch>(WRITER_QUEUE);
        let committed = Arc::new(AtomicU64::new(0));
        let done = Arc::clone(&committed);
        let task = tokio::task::spawn_blocking(move || {
            while let Some(first) = rx.blocking_recv() {
                let mut batches = vec![first];
                while let Ok(b) = rx.try_recv() {
                    batches.push(b);
                }
                for file in batches.iter().flat_map(|b| &b.set_aside) {
                    crate::artifacts::set_aside(&checkpoints, file);
                }
                let writes: Vec<&Writes> = batches.iter().map(|b| &b.writes).collect();
                if let Err(e) = store.write(&writes) {
                    tracing::error!(error = %e, "cannot commit to the state database; stopping");
                    return Err(Error::Store(e));
                }
                let last = batches.iter().map(|b| b.seq).max().unwrap_or(0);
                done.fetch_max(last, Ordering::Release);
                for b in batches {
                    b.replies.into_iter().for_each(|reply| reply());
                    for file in b.drop {
                        let path = checkpoints.join(file);
                        if let Err(e) = std::fs::remove_file(&path) {
                            if e.kind() != std::io::ErrorKind::NotFound {
                                warn!(path = %path.display(), error = %e, "cannot remove an old checkpoint");
                            }
                        }
                    }
                    if let Some(flushed) = b.flushed {
                        let _ = flushed.send(());
                    }
                }
            }
            Ok(())
        });
        Writer {
            tx,
            task,
            committed,
        }
    }

    /// The number of the last batch committed.
    pub(super) fn committed(&self) -> u64 {
        self.committed.load(Ordering::Acquire)
    }

    /// Queues `batch` (waiting while the queue is full).
    pub(super) async fn send(&mut self, batch: Batch) -> Result<(), Error> {
        if self.tx.send(batch).await.is_err() {
            return Err(self.failure().await);
        }
        Ok(())
    }

    /// Waits until everything queued so far is durable.
    pub(super) async fn flush(&mut self) -> Result<(), Error> {
        let (tx, rx) = oneshot::channel();
        self.send(Batch {
            flushed: Some(tx),
            ..Batch::default()
        })
        .await?;
        if rx.await.is_err() {
            return Err(self.failure().await);
        }
        Ok(())
    }

    /// Why the thread stopped.
    pub(super) async fn failure(&mut self) -> Error {
        match (&mut self.task).await {
            Ok(Err(e)) => e,
            Ok(Ok(())) => Error::ShuttingDown,
            Err(e) => Error::Io {
                action: "the state database's thread failed",
                path: String::new(),
                source: std::io::Error::other(e.to_string()),
            },
        }
    }

    /// Commits everything queued, then ends the thread.
    pub(super) async fn close(self) -> Result<(), Error> {
        let Writer { tx, mut task, .. } = self;
        drop(tx);
        match (&mut task).await {
            Ok(r) => r,
            Err(e) => Err(Error::Io {
                action: "the state database's thread failed",
                path: String::new(),
                source: std::io::Error::other(e.to_string()),
            }),
        }
    }
}
