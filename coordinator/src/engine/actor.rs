//! The one owner of the scheduling state: a task that takes commands from the gRPC handlers over
//! a channel, applies them to the state machine, and performs the effects (writing results,
//! logging progress or redrawing the terminal's status block, signalling the end of the sweep).
//! No lock is ever held across an `.await`.
//!
//! Group commit, pipelined: the task applies every command already queued (up to
//! [`MAX_BATCH`]) and hands the rows they changed, with the answers to those commands, to the
//! database's own thread ([`Writer`]). That thread commits them in one transaction (with any
//! batches that queued up meanwhile) and only then sends the answers, while this task goes on
//! with the next commands: it never waits for the disk. A write is never acknowledged before it
//! is durable; if the database fails, the coordinator stops (a restart resumes from what was
//! committed).
//!
//! Two answers do not wait for the disk: a lease granted and a heartbeat. Neither acknowledges
//! anything a worker produced. A lease lost in a crash is harmless: every later write of its
//! worker is fenced by (trial, attempt, worker) and is committed after the lease, so nothing is
//! recorded under a lease the database does not hold, and the worker learns at its next
//! heartbeat that the lease is gone.
//!
//! Every change people can see (a worker registered, a trial leased, an epoch reported, a trial
//! ended) bumps a generation counter that [`Handle::changes`] watches, so the live web view
//! knows when to make a new snapshot.
//!
//! The status summary reads running totals ([`status::Index`]) that the task refreshes for the
//! trials each batch changed, so that a status costs O(running trials + workers), not O(trials);
//! the accuracy tables of a detailed status are laid out off this task ([`Handle::status`]).
//!
//! The handle ([`Handle`], `handle.rs`) sends commands; the owner's loop (`owner.rs`) applies
//! them (`commands.rs`), hands their rows to the database's thread (`writer.rs`) and performs
//! their effects on the outputs (`outputs.rs`).

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sweep_common::grid::Grid;
use tokio::sync::{mpsc, watch};

use crate::Error;
use crate::console::Console;
use crate::state::Scheduler;
use crate::status::{Index, tables};
use crate::store::Store;

mod archive;
mod commands;
mod handle;
mod outputs;
mod owner;
mod writer;

use handle::Command;
pub use handle::{Ended, Handle, Progress, Stop};
use owner::Owner;
use writer::Writer;

/// Most commands applied before their batch goes to the database's thread.
pub const MAX_BATCH: usize = 512;

/// What the state owner needs besides the state.
pub struct Actor {
    /// The state machine.
    pub scheduler: Scheduler,
    /// The grid's experiments (for the results' experiment records); their trials have moved
    /// into the scheduler.
    pub grid: Grid,
    /// The grid file's path as given.
    pub grid_file: String,
    /// Where results go.
    pub out_dir: PathBuf,
    /// The state directory (database, checkpoints).
    pub state_dir: PathBuf,
    /// The database.
    pub store: Store,
    /// How often leases are checked for expiry.
    pub tick: Duration,
    /// How often a progress line is logged while nothing ends (when not live).
    pub progress_every: Duration,
    /// The terminal: when live, the status block is drawn there instead of progress lines.
    pub console: Console,
    /// When the coordinator started.
    pub started: Instant,
}

/// Starts the state owner; returns its handle, a receiver that turns `Some` when the sweep is
/// finished and its outputs written (see [`Ended`]), and the task, which ends with an error if
/// the database fails (or the outputs cannot be written when it stops).
pub fn spawn(
    actor: Actor,
) -> (
    Handle,
    watch::Receiver<Ended>,
    tokio::task::JoinHandle<Result<(), Error>>,
) {
    let (tx, rx) = mpsc::channel(1024);
    let (finished_tx, finished_rx) = watch::channel(None);
    let (changes_tx, changes_rx) = watch::channel(0u64);
    let Actor {
        scheduler,
        grid,
        grid_file,
        out_dir,
        state_dir,
        store,
        tick,
        progress_every,
        console,
        started,
    } = actor;
    let database = store.path().display().to_string();
    let shared_tables = Arc::new(tables::Shared::default());
    // Two read-only connections: the state owner's (results.json, the summary) and the handle's
    // (detail views, off the owner's task). Without them nothing is archived.
    let readers = crate::store::Reader::open(store.path())
        .and_then(|a| Ok((a, crate::store::Reader::open(store.path())?)));
    let (reader, handle_reader) = match readers {
        Ok((a, b)) => (Some(a), Some(Arc::new(std::sync::Mutex::new(b)))),
        Err(e) => {
            tracing::warn!(error = %e, "cannot open the state database for reading: finished trials stay in memory");
            (None, None)
        }
    };
    let keep = crate::state::KeepCurves::of(&grid);
    let writer = Writer::spawn(store, crate::artifacts::checkpoints_dir(&state_dir));
    let owner = Owner {
        database,
        index: Index::new(&scheduler),
        table_experiments: tables::experiments_of(&grid),
        tables: Arc::clone(&shared_tables),
        scheduler,
        grid,
        grid_file,
        out_dir,
        tick,
        progress_every,
        console,
        started,
        silent: HashSet::new(),
        keep,
        reader,
        archiving: archive::Archiving::default(),
    };
    let task = tokio::spawn(owner.run(rx, writer, finished_tx, changes_tx));
    (
        Handle {
            tx,
            changes: changes_rx,
            tables: shared_tables,
            reader: handle_reader,
        },
        finished_rx,
        task,
    )
}
