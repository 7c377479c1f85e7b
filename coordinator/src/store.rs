//! The coordinator's durable state: one SQLite database (WAL mode, `synchronous = FULL`) in the
//! state directory, holding the grid's trials, their states and attempts, every accepted epoch
//! metric, results, failures, checkpoints' locations and the registered workers.
//!
//! The actor commits each batch of state changes ([`Change`]) in one transaction before it
//! answers the requests that caused them, so an acknowledged write survives a crash of the
//! coordinator (or of the machine). [`Store::load`] reads it all back for a restart.
//!
//! Epoch rows are never deleted: when a new attempt trains epochs again, the old rows are marked
//! `superseded`, and a partial unique index keeps one current row per (trial, epoch).
//!
//! Laid out for sweeps of a million trials: a trial's row number (`num`) follows grid order, and
//! epochs are clustered by it (`WITHOUT ROWID`, integer key), so the trials running at one time
//! (neighbours in grid order) share a few B-tree pages, and a commit writes those pages instead
//! of one random page per row.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use rusqlite::{Connection, OptionalExtension, params};
use sweep_common::{EpochMetrics, TrialId, TrialResult, TrialSpec, WorkerId};

use crate::state::{
    AttemptFailure, Change, Checkpoint, Lease, Scheduler, SetAside, Trial, TrialState,
};

/// The database file's name in the state directory.
pub const DATABASE: &str = "sweep.db";
/// Bumped on any incompatible change of the schema.
const SCHEMA_VERSION: &str = "2";
/// SQLite's page cache (KiB) while a sweep runs: its working set is the running trials' pages.
/// Larger costs time at every commit (SQLite walks its cache).
const CACHE_KIB: i64 = 8 * 1024;
/// ... and while the grid is recorded: the trials' id index of a million-trial grid.
const GRID_CACHE_KIB: i64 = 64 * 1024;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS trials (
    num INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    position INTEGER NOT NULL,
    in_grid INTEGER NOT NULL,
    experiment TEXT NOT NULL,
    name TEXT NOT NULL,
    spec TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('pending', 'leased', 'succeeded', 'failed')),
    attempts INTEGER NOT NULL,
    counted_attempts INTEGER NOT NULL,
    lease_worker TEXT,
    lease_attempt INTEGER,
    success_attempt INTEGER,
    success_worker TEXT,
    wall_seconds REAL,
    result TEXT,
    reason TEXT,
    failures TEXT NOT NULL,
    weights TEXT,
    checkpoint TEXT,
    resumed_from INTEGER NOT NULL,
    unstarted_attempts INTEGER NOT NULL DEFAULT 0,
    previous_checkpoint TEXT,
    set_aside TEXT,
    cancelled INTEGER NOT NULL DEFAULT 0,
    lease_granted REAL
);
CREATE TABLE IF NOT EXISTS epochs (
    trial INTEGER NOT NULL REFERENCES trials (num),
    attempt INTEGER NOT NULL,
    epoch INTEGER NOT NULL,
    train_loss REAL,
    train_accuracy REAL NOT NULL,
    test_accuracy REAL NOT NULL,
    seconds REAL NOT NULL,
    superseded INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (trial, attempt, epoch)
) WITHOUT ROWID;
CREATE UNIQUE INDEX IF NOT EXISTS epochs_current ON epochs (trial, epoch) WHERE superseded = 0;
CREATE TABLE IF NOT EXISTS workers (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    device TEXT NOT NULL,
    slots INTEGER NOT NULL
);
";

/// Columns added to schema 2 after it shipped, with what fills them in an older database (the
/// migration is `ALTER TABLE ... ADD COLUMN`, then the statement given, once).
const ADDED_COLUMNS: &[(&str, &str, &str, &str)] = &[
    (
        "trials",
        "unstarted_attempts",
        "INTEGER NOT NULL DEFAULT 0",
        "",
    ),
    ("trials", "previous_checkpoint", "TEXT", ""),
    ("trials", "set_aside", "TEXT", ""),
    (
        "trials",
        "cancelled",
        "INTEGER NOT NULL DEFAULT 0",
        // Cancels were recorded by their reason only.
        "UPDATE trials SET cancelled = 1 WHERE state = 'failed' AND reason LIKE 'cancelled%'",
    ),
    // Rows written before it count their lease from the restart.
    ("trials", "lease_granted", "REAL", ""),
];

/// What can go wrong with the database.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite failed.
    #[error("state database {path}: {source}")]
    Sqlite {
        /// The database file.
        path: String,
        /// What failed.
        source: rusqlite::Error,
    },
    /// A row does not decode (written by another version, or edited by hand).
    #[error("state database {path}: trial {trial}: {message}")]
    Corrupt {
        /// The database file.
        path: String,
        /// The row's trial id.
        trial: String,
        /// What is wrong.
        message: String,
    },
    /// The state directory belongs to another sweep.
    #[error(
        "the state directory {path} belongs to sweep {found:?}, not {expected:?}; choose another \
         --state-dir (or --out), or rename the sweep back"
    )]
    OtherSweep {
        /// The state directory.
        path: String,
        /// The sweep recorded there.
        found: String,
        /// The sweep of the grid file.
        expected: String,
    },
    /// A new database could not be made.
    #[error("cannot create the state database {path}: {source}")]
    Create {
        /// The database file.
        path: String,
        /// What failed.
        source: std::io::Error,
    },
    /// A database file that a coordinator did not make (an empty file, another program's).
    #[error(
        "{path} is not a sweep's state database (it has no sweep schema: an empty file, or \
         another program's database); nothing was changed. Move it away (delete it only if \
         nothing in it matters) and run again, or choose another --state-dir"
    )]
    NoSchema {
        /// The database file.
        path: String,
    },
    /// Written by an incompatible version.
    #[error(
        "state database {path} has schema version {found}; this coordinator reads {SCHEMA_VERSION}"
    )]
    Version {
        /// The database file.
        path: String,
        /// The version found.
        found: String,
    },
}

/// Everything recorded, as read back at a restart.
#[derive(Debug, Default)]
pub struct Loaded {
    /// Recorded trials by id.
    pub trials: HashMap<TrialId, Trial>,
    /// Registered workers: (id, name, device, slots).
    pub workers: Vec<(WorkerId, String, String, u32)>,
}

/// The open database.
pub struct Store {
    conn: Connection,
    path: PathBuf,
    /// Row number of every trial of the grid (see the module's documentation).
    nums: HashMap<TrialId, i64>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("path", &self.path).finish()
    }
}

fn state_name(s: &TrialState) -> &'static str {
    match s {
        TrialState::Pending => "pending",
        TrialState::Leased(_) => "leased",
        TrialState::Succeeded { .. } => "succeeded",
        TrialState::Failed { .. } => "failed",
    }
}

/// `None` for NaN and infinities, which SQLite cannot store as REAL.
fn finite(v: f64) -> Option<f64> {
    v.is_finite().then_some(v)
}

impl Store {
    /// Opens the database in `state_dir`, creating it if there is none.
    ///
    /// A new database appears whole: it is made under a temporary name, with its schema, and
    /// renamed into place. So a `sweep.db` without the schema (an empty file, another program's
    /// database) was not made by a coordinator, and is refused rather than taken over: starting
    /// a new sweep there would bypass the promise that finished results are never overwritten.
    pub fn open(state_dir: &Path) -> Result<Store, StoreError> {
        let path = state_dir.join(DATABASE);
        let sqlite = |source| StoreError::Sqlite {
            path: path.display().to_string(),
            source,
        };
        if !path.exists() {
            create(state_dir, &path)?;
        }
        // Without SQLITE_OPEN_CREATE: the file must be the one that exists now.
        let flags = rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE
            | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX
            | rusqlite::OpenFlags::SQLITE_OPEN_URI;
        let conn = Connection::open_with_flags(&path, flags).map_err(sqlite)?;
        // Read before anything is written (setting the journal mode writes the file).
        let has_meta: bool = conn
            .query_row(
                "SELECT EXISTS (SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = 'meta')",
                [],
                |r| r.get(0),
            )
            .map_err(sqlite)?;
        let version: Option<String> = if has_meta {
            conn.query_row(
                "SELECT value FROM meta WHERE key = 'schema_version'",
                [],
                |r| r.get(0),
            )
            .optional()
            .map_err(sqlite)?
        } else {
            None
        };
        match version {
            Some(v) if v != SCHEMA_VERSION => {
                return Err(StoreError::Version {
                    path: path.display().to_string(),
                    found: v,
                });
            }
            Some(_) => {}
            None => {
                return Err(StoreError::NoSchema {
                    path: path.display().to_string(),
                });
            }
        }
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(sqlite)?;
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(sqlite)?;
        conn.pragma_update(None, "foreign_keys", "ON")
            .map_err(sqlite)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(sqlite)?;
        conn.pragma_update(None, "cache_size", -CACHE_KIB)
            .map_err(sqlite)?;
        // A database of this schema version written by an earlier coordinator: tables and
        // columns added since are added (older coordinators ignore them).
        conn.execute_batch(SCHEMA).map_err(sqlite)?;
        add_columns(&conn).map_err(sqlite)?;
        let store = Store {
            conn,
            path,
            nums: HashMap::new(),
        };
        Ok(store)
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn sqlite(&self, source: rusqlite::Error) -> StoreError {
        StoreError::Sqlite {
            path: self.path.display().to_string(),
            source,
        }
    }

    fn meta(&self, key: &str) -> Result<Option<String>, StoreError> {
        self.conn
            .query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
            .optional()
            .map_err(|e| self.sqlite(e))
    }

    fn set_meta(&self, key: &str, value: &str) -> Result<(), StoreError> {
        self.conn
            .execute(
                "INSERT INTO meta (key, value) VALUES (?1, ?2)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                [key, value],
            )
            .map(drop)
            .map_err(|e| self.sqlite(e))
    }

    /// The key worker secrets are derived from, made at the first start and kept.
    pub fn worker_key(&self) -> Result<[u8; 32], StoreError> {
        let parse = |hex: &str| -> Option<[u8; 32]> {
            let bytes: Vec<u8> = (0..hex.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
                .collect::<Option<_>>()?;
            bytes.try_into().ok()
        };
        if let Some(hex) = self.meta("worker_key")? {
            if let Some(key) = parse(&hex) {
                return Ok(key);
            }
        }
        let mut key = [0u8; 32];
        key[..16].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
        key[16..].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
        let hex: String = key.iter().map(|b| format!("{b:02x}")).collect();
        self.set_meta("worker_key", &hex)?;
        Ok(key)
    }

    /// Claims the database for `sweep`, or refuses if it belongs to another one.
    pub fn claim(&self, sweep: &str) -> Result<(), StoreError> {
        match self.meta("sweep")? {
            Some(found) if found != sweep => Err(StoreError::OtherSweep {
                path: self
                    .path
                    .parent()
                    .unwrap_or(&self.path)
                    .display()
                    .to_string(),
                found,
                expected: sweep.to_owned(),
            }),
            Some(_) => Ok(()),
            None => self.set_meta("sweep", sweep),
        }
    }

    /// Reads back every recorded trial and worker.
    pub fn load(&self) -> Result<Loaded, StoreError> {
        let mut loaded = Loaded::default();
        let corrupt = |trial: &str, message: String| StoreError::Corrupt {
            path: self.path.display().to_string(),
            trial: trial.to_owned(),
            message,
        };
        let mut epochs: HashMap<String, Vec<EpochMetrics>> = HashMap::new();
        {
            let mut stmt = self
                .conn
                .prepare(
                    "SELECT t.id, e.epoch, e.train_loss, e.train_accuracy, e.test_accuracy,
                            e.seconds
                     FROM epochs e JOIN trials t ON t.num = e.trial
                     WHERE e.superseded = 0 ORDER BY e.trial, e.epoch",
                )
                .map_err(|e| self.sqlite(e))?;
            let rows = stmt
                .query_map([], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        EpochMetrics {
                            epoch: r.get(1)?,
                            train_loss: r.get::<_, Option<f64>>(2)?.unwrap_or(f64::NAN),
                            train_accuracy: r.get(3)?,
                            test_accuracy: r.get(4)?,
                            seconds: r.get(5)?,
                        },
                    ))
                })
                .map_err(|e| self.sqlite(e))?;
            for row in rows {
                let (trial, m) = row.map_err(|e| self.sqlite(e))?;
                epochs.entry(trial).or_default().push(m);
            }
        }
        let mut stmt = self
            .conn
            .prepare(
                "SELECT id, spec, state, attempts, counted_attempts, lease_worker, lease_attempt,
                        success_attempt, success_worker, wall_seconds, result, reason, failures,
                        weights, checkpoint, resumed_from, unstarted_attempts,
                        previous_checkpoint, set_aside, cancelled, lease_granted
                 FROM trials",
            )
            .map_err(|e| self.sqlite(e))?;
        struct Row {
            id: String,
            spec: String,
            state: String,
            attempts: u32,
            counted_attempts: u32,
            lease_worker: Option<String>,
            lease_attempt: Option<u32>,
            success_attempt: Option<u32>,
            success_worker: Option<String>,
            wall_seconds: Option<f64>,
            result: Option<String>,
            reason: Option<String>,
            failures: String,
            weights: Option<String>,
            checkpoint: Option<String>,
            resumed_from: u32,
            unstarted_attempts: u32,
            previous_checkpoint: Option<String>,
            set_aside: Option<String>,
            cancelled: bool,
            lease_granted: Option<f64>,
        }
        let rows = stmt
            .query_map([], |r| {
                Ok(Row {
                    id: r.get(0)?,
                    spec: r.get(1)?,
                    state: r.get(2)?,
                    attempts: r.get(3)?,
                    counted_attempts: r.get(4)?,
                    lease_worker: r.get(5)?,
                    lease_attempt: r.get(6)?,
                    success_attempt: r.get(7)?,
                    success_worker: r.get(8)?,
                    wall_seconds: r.get(9)?,
                    result: r.get(10)?,
                    reason: r.get(11)?,
                    failures: r.get(12)?,
                    weights: r.get(13)?,
                    checkpoint: r.get(14)?,
                    resumed_from: r.get(15)?,
                    unstarted_attempts: r.get(16)?,
                    previous_checkpoint: r.get(17)?,
                    set_aside: r.get(18)?,
                    cancelled: r.get(19)?,
                    lease_granted: r.get(20)?,
                })
            })
            .map_err(|e| self.sqlite(e))?;
        for row in rows {
            let row = row.map_err(|e| self.sqlite(e))?;
            let bad =
                |what: &str, e: &dyn std::fmt::Display| corrupt(&row.id, format!("{what}: {e}"));
            let spec: TrialSpec = serde_json::from_str(&row.spec).map_err(|e| bad("spec", &e))?;
            let worker = |s: &Option<String>, what: &str| -> Result<WorkerId, StoreError> {
                s.as_deref()
                    .ok_or_else(|| corrupt(&row.id, format!("{what} missing")))?
                    .parse()
                    .map_err(|e| bad(what, &e))
            };
            let now = std::time::Instant::now();
            let state = match row.state.as_str() {
                "pending" => TrialState::Pending,
                "leased" => TrialState::Leased(Lease {
                    worker: worker(&row.lease_worker, "lease_worker")?,
                    attempt: row
                        .lease_attempt
                        .ok_or_else(|| corrupt(&row.id, "lease_attempt missing".into()))?,
                    // Its attempt's time runs on through the restart (rows written before this
                    // column existed count from now).
                    granted: row
                        .lease_granted
                        .and_then(|at| instant_of(at, now))
                        .unwrap_or(now),
                    expires: now,
                }),
                "succeeded" => TrialState::Succeeded {
                    attempt: row
                        .success_attempt
                        .ok_or_else(|| corrupt(&row.id, "success_attempt missing".into()))?,
                    worker: worker(&row.success_worker, "success_worker")?,
                    wall_seconds: row.wall_seconds.unwrap_or(0.0),
                },
                "failed" => TrialState::Failed {
                    reason: row.reason.clone().unwrap_or_default(),
                    cancelled: row.cancelled,
                },
                other => return Err(corrupt(&row.id, format!("unknown state {other:?}"))),
            };
            let trial_epochs = epochs.remove(&row.id).unwrap_or_default();
            let result = match &row.result {
                Some(text) => {
                    // Its epochs are the trial's (see `Trial::result`).
                    let r: TrialResult =
                        serde_json::from_str(text).map_err(|e| bad("result", &e))?;
                    Some(Box::new(r))
                }
                None => None,
            };
            let failures: Vec<AttemptFailure> =
                serde_json::from_str(&row.failures).map_err(|e| bad("failures", &e))?;
            let checkpoint = |text: &Option<String>, what| -> Result<_, StoreError> {
                match text {
                    Some(text) => Ok(Some(Box::<Checkpoint>::new(
                        serde_json::from_str(text).map_err(|e| bad(what, &e))?,
                    ))),
                    None => Ok(None),
                }
            };
            let set_aside: Vec<SetAside> = match &row.set_aside {
                Some(text) => serde_json::from_str(text).map_err(|e| bad("set_aside", &e))?,
                None => Vec::new(),
            };
            let trial = Trial {
                spec,
                state,
                attempts: row.attempts,
                counted_attempts: row.counted_attempts,
                unstarted_attempts: row.unstarted_attempts,
                epochs: trial_epochs,
                result,
                failures,
                weights: row.weights.clone(),
                checkpoint: checkpoint(&row.checkpoint, "checkpoint")?,
                previous_checkpoint: checkpoint(&row.previous_checkpoint, "previous_checkpoint")?,
                set_aside,
                resumed_from: row.resumed_from,
            };
            loaded.trials.insert(trial.spec.id, trial);
        }
        let mut stmt = self
            .conn
            .prepare("SELECT id, name, device, slots FROM workers")
            .map_err(|e| self.sqlite(e))?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, u32>(3)?,
                ))
            })
            .map_err(|e| self.sqlite(e))?;
        for row in rows {
            let (id, name, device, slots) = row.map_err(|e| self.sqlite(e))?;
            let id = id.parse().map_err(|e: sweep_common::ids::InvalidId| {
                corrupt(&id, format!("worker id: {e}"))
            })?;
            loaded.workers.push((id, name, device, slots));
        }
        Ok(loaded)
    }

    /// Records that the final weights of the recorded trial `trial` (one no longer in the grid,
    /// whose row the state machine does not write) are now at `path`.
    pub fn move_weights(&mut self, trial: TrialId, path: &str) -> Result<(), StoreError> {
        self.conn
            .execute(
                "UPDATE trials SET weights = ?2 WHERE id = ?1",
                params![trial.to_string(), path],
            )
            .map(drop)
            .map_err(|e| self.sqlite(e))
    }

    /// Records the grid's trials (in grid order; those already recorded keep their state) and
    /// marks recorded trials that are no longer in the grid. Returns the names of those.
    pub fn record_grid(&mut self, trials: &[Trial]) -> Result<Vec<String>, StoreError> {
        let path = self.path.display().to_string();
        let sqlite = |source| StoreError::Sqlite {
            path: path.clone(),
            source,
        };
        self.conn
            .pragma_update(None, "cache_size", -GRID_CACHE_KIB)
            .map_err(sqlite)?;
        let tx = self.conn.transaction().map_err(sqlite)?;
        tx.execute("UPDATE trials SET in_grid = 0", [])
            .map_err(sqlite)?;
        {
            let mut insert = tx
                .prepare(
                    "INSERT INTO trials (id, position, in_grid, experiment, name, spec, state,
                         attempts, counted_attempts, failures, resumed_from)
                     VALUES (?1, ?2, 1, ?3, ?4, ?5, 'pending', 0, 0, '[]', 0)
                     ON CONFLICT (id) DO UPDATE SET position = excluded.position, in_grid = 1,
                         experiment = excluded.experiment, name = excluded.name,
                         spec = excluded.spec
                     RETURNING num",
                )
                .map_err(sqlite)?;
            // In grid order: new trials get row numbers in grid order.
            self.nums.clear();
            self.nums.reserve(trials.len());
            for (position, t) in trials.iter().enumerate() {
                let spec = serde_json::to_string(&t.spec).map_err(|e| StoreError::Corrupt {
                    path: path.clone(),
                    trial: t.spec.id.to_string(),
                    message: e.to_string(),
                })?;
                let num = insert
                    .query_row(
                        params![
                            t.spec.id.to_string(),
                            position as i64,
                            t.spec.experiment,
                            t.spec.name,
                            spec
                        ],
                        |r| r.get(0),
                    )
                    .map_err(sqlite)?;
                self.nums.insert(t.spec.id, num);
            }
        }
        let removed = {
            let mut stmt = tx
                .prepare("SELECT name FROM trials WHERE in_grid = 0 ORDER BY position")
                .map_err(sqlite)?;
            stmt.query_map([], |r| r.get::<_, String>(0))
                .map_err(sqlite)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(sqlite)?
        };
        tx.commit().map_err(sqlite)?;
        self.conn
            .pragma_update(None, "cache_size", -CACHE_KIB)
            .map_err(sqlite)?;
        Ok(removed)
    }

    /// Commits `changes` (taken from `scheduler` after a batch of requests) in one transaction.
    pub fn commit(&mut self, scheduler: &Scheduler, changes: &[Change]) -> Result<(), StoreError> {
        self.write(&[&Writes::new(scheduler, changes)])
    }

    /// Commits `batches`, in order, in one transaction.
    pub fn write(&mut self, batches: &[&Writes]) -> Result<(), StoreError> {
        if batches.iter().all(|w| w.is_empty()) {
            return Ok(());
        }
        let path = self.path.display().to_string();
        let sqlite = |source| StoreError::Sqlite {
            path: path.clone(),
            source,
        };
        let nums = &self.nums;
        let num = |trial: TrialId| {
            nums.get(&trial)
                .copied()
                .ok_or_else(|| StoreError::Corrupt {
                    path: path.clone(),
                    trial: trial.to_string(),
                    message: "a change to a trial that is not in the grid".to_owned(),
                })
        };
        let tx = self.conn.transaction().map_err(sqlite)?;
        for w in batches {
            for op in &w.ops {
                let trial = match op {
                    Op::Epoch { trial, .. } | Op::Supersede { trial, .. } => num(*trial)?,
                    Op::Worker { .. } => 0,
                };
                op.apply(&tx, trial).map_err(sqlite)?;
            }
            for row in &w.trials {
                row.apply(&tx, num(row.trial)?).map_err(sqlite)?;
            }
        }
        tx.commit().map_err(sqlite)
    }
}

/// Makes a new database at `path` (in `state_dir`) with its schema: under a temporary name,
/// closed (which folds its write-ahead log into it), synced and renamed into place, so that
/// `sweep.db` never exists without its schema.
fn create(state_dir: &Path, path: &Path) -> Result<(), StoreError> {
    let io = |source: std::io::Error| StoreError::Create {
        path: path.display().to_string(),
        source,
    };
    let tmp = tempfile::Builder::new()
        .prefix(".sweep.db.new-")
        .tempfile_in(state_dir)
        .map_err(io)?;
    let sqlite = |source| StoreError::Sqlite {
        path: tmp.path().display().to_string(),
        source,
    };
    let conn = Connection::open(tmp.path()).map_err(sqlite)?;
    conn.pragma_update(None, "journal_mode", "WAL")
        .map_err(sqlite)?;
    conn.execute_batch(SCHEMA).map_err(sqlite)?;
    conn.execute(
        "INSERT INTO meta (key, value) VALUES ('schema_version', ?1)",
        [SCHEMA_VERSION],
    )
    .map_err(sqlite)?;
    conn.close().map_err(|(_, e)| sqlite(e))?;
    tmp.as_file().sync_all().map_err(io)?;
    tmp.persist_noclobber(path).map_err(|e| io(e.error))?;
    // The rename is durable once the folder is.
    std::fs::File::open(state_dir)
        .and_then(|d| d.sync_all())
        .map_err(io)?;
    Ok(())
}

/// What a batch of changes writes, as owned rows: made from the scheduler on the state owner's
/// task, written on the database's thread while the state owner goes on.
#[derive(Debug, Default)]
pub struct Writes {
    /// Epoch and worker rows, in the order they changed.
    ops: Vec<Op>,
    /// The changed trials' rows as they are at the end of the batch.
    trials: Vec<TrialRow>,
}

impl Writes {
    /// The rows `changes` (taken from `scheduler` after a batch of requests) touch, with their
    /// values now.
    pub fn new(scheduler: &Scheduler, changes: &[Change]) -> Writes {
        let epoch = |trial: TrialId, epoch: u32| {
            scheduler
                .trial(trial)
                .and_then(|t| t.epochs.iter().find(|m| m.epoch == epoch))
                .cloned()
        };
        let mut w = Writes::default();
        let mut rows: BTreeSet<TrialId> = BTreeSet::new();
        for change in changes {
            match *change {
                Change::Trial(id) => {
                    rows.insert(id);
                }
                Change::Epoch {
                    trial,
                    epoch: e,
                    attempt,
                } => {
                    if let Some(metrics) = epoch(trial, e) {
                        w.ops.push(Op::Epoch {
                            trial,
                            attempt,
                            metrics,
                            replaces: false,
                        });
                    }
                }
                Change::Supersede { trial, after } => w.ops.push(Op::Supersede { trial, after }),
                Change::ResultEpoch {
                    trial,
                    epoch: e,
                    attempt,
                } => {
                    if let Some(metrics) = epoch(trial, e) {
                        w.ops.push(Op::Epoch {
                            trial,
                            attempt,
                            metrics,
                            replaces: true,
                        });
                    }
                }
                Change::Worker(id) => {
                    if let Some(wk) = scheduler.workers().get(&id) {
                        w.ops.push(Op::Worker {
                            id,
                            name: wk.name.clone(),
                            device: wk.device.clone(),
                            slots: wk.slots,
                        });
                    }
                }
            }
        }
        let clock = WallClock::now();
        w.trials = rows
            .into_iter()
            .filter_map(|id| scheduler.trial(id))
            .map(|t| TrialRow::new(t, &clock))
            .collect();
        w
    }

    /// True when there is nothing to write.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty() && self.trials.is_empty()
    }
}

/// One write besides trial rows.
#[derive(Debug)]
enum Op {
    /// An accepted epoch; `replaces`: any current value of that epoch (from whatever attempt)
    /// is superseded first (an epoch a result adds because its report was lost: none should
    /// be there, and the partial unique index must hold whatever the database holds).
    Epoch {
        trial: TrialId,
        attempt: u32,
        metrics: EpochMetrics,
        replaces: bool,
    },
    /// Epochs after `after` are superseded (a new attempt trains them again).
    Supersede { trial: TrialId, after: u32 },
    /// A registered worker.
    Worker {
        id: WorkerId,
        name: String,
        device: String,
        slots: u32,
    },
}

impl Op {
    /// Writes it; `num` is the row number of its trial.
    fn apply(&self, tx: &rusqlite::Transaction<'_>, num: i64) -> rusqlite::Result<()> {
        match self {
            Op::Epoch {
                trial: _,
                attempt,
                metrics,
                replaces,
            } => {
                if *replaces {
                    tx.prepare_cached(
                        "UPDATE epochs SET superseded = 1
                         WHERE trial = ?1 AND epoch = ?2 AND superseded = 0",
                    )?
                    .execute(params![num, metrics.epoch])?;
                }
                put_epoch(tx, num, *attempt, metrics)
            }
            Op::Supersede { trial: _, after } => tx
                .prepare_cached(
                    "UPDATE epochs SET superseded = 1
                     WHERE trial = ?1 AND epoch > ?2 AND superseded = 0",
                )?
                .execute(params![num, after])
                .map(drop),
            Op::Worker {
                id,
                name,
                device,
                slots,
            } => tx
                .prepare_cached(
                    "INSERT INTO workers (id, name, device, slots) VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT (id) DO UPDATE SET name = excluded.name,
                         device = excluded.device, slots = excluded.slots",
                )?
                .execute(params![id.to_string(), name, device, slots])
                .map(drop),
        }
    }
}

fn put_epoch(
    tx: &rusqlite::Transaction<'_>,
    num: i64,
    attempt: u32,
    m: &EpochMetrics,
) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "INSERT INTO epochs (trial, attempt, epoch, train_loss, train_accuracy, test_accuracy,
             seconds, superseded)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 0)
         ON CONFLICT (trial, attempt, epoch) DO UPDATE SET train_loss = excluded.train_loss,
             train_accuracy = excluded.train_accuracy, test_accuracy = excluded.test_accuracy,
             seconds = excluded.seconds, superseded = 0",
    )?
    .execute(params![
        num,
        attempt,
        m.epoch,
        finite(m.train_loss),
        m.train_accuracy,
        m.test_accuracy,
        m.seconds
    ])
    .map(drop)
}

/// A trial's row, except what the grid sets (spec, name, position).
#[derive(Debug)]
struct TrialRow {
    trial: TrialId,
    state: &'static str,
    attempts: u32,
    counted_attempts: u32,
    lease_worker: Option<String>,
    lease_attempt: Option<u32>,
    success_attempt: Option<u32>,
    success_worker: Option<String>,
    wall_seconds: Option<f64>,
    result: Option<String>,
    reason: Option<String>,
    failures: String,
    weights: Option<String>,
    checkpoint: Option<String>,
    resumed_from: u32,
    unstarted_attempts: u32,
    previous_checkpoint: Option<String>,
    set_aside: Option<String>,
    cancelled: bool,
    lease_granted: Option<f64>,
}

impl TrialRow {
    fn new(t: &Trial, clock: &WallClock) -> TrialRow {
        let (lease_worker, lease_attempt, lease_granted) = match &t.state {
            TrialState::Leased(l) => (
                Some(l.worker.to_string()),
                Some(l.attempt),
                Some(clock.seconds_at(l.granted)),
            ),
            _ => (None, None, None),
        };
        let (success_attempt, success_worker, wall_seconds) = match &t.state {
            TrialState::Succeeded {
                attempt,
                worker,
                wall_seconds,
            } => (
                Some(*attempt),
                Some(worker.to_string()),
                finite(*wall_seconds),
            ),
            _ => (None, None, None),
        };
        let (reason, cancelled) = match &t.state {
            TrialState::Failed { reason, cancelled } => (Some(reason.clone()), *cancelled),
            _ => (None, false),
        };
        TrialRow {
            trial: t.spec.id,
            state: state_name(&t.state),
            attempts: t.attempts,
            counted_attempts: t.counted_attempts,
            lease_worker,
            lease_attempt,
            success_attempt,
            success_worker,
            wall_seconds,
            // The result's epochs live in the epochs table (their losses may be non-finite,
            // which JSON cannot hold); in memory they are the trial's, and the result's own
            // list is empty.
            result: t.result.as_deref().map(json),
            reason,
            failures: json(&t.failures),
            weights: t.weights.clone(),
            checkpoint: t.checkpoint.as_deref().map(json),
            resumed_from: t.resumed_from,
            unstarted_attempts: t.unstarted_attempts,
            previous_checkpoint: t.previous_checkpoint.as_deref().map(json),
            set_aside: (!t.set_aside.is_empty()).then(|| json(&t.set_aside)),
            cancelled,
            lease_granted,
        }
    }

    fn apply(&self, tx: &rusqlite::Transaction<'_>, num: i64) -> rusqlite::Result<()> {
        tx.prepare_cached(
            "UPDATE trials SET state = ?2, attempts = ?3, counted_attempts = ?4,
                 lease_worker = ?5, lease_attempt = ?6, success_attempt = ?7,
                 success_worker = ?8, wall_seconds = ?9, result = ?10, reason = ?11,
                 failures = ?12, weights = ?13, checkpoint = ?14, resumed_from = ?15,
                 unstarted_attempts = ?16, previous_checkpoint = ?17, set_aside = ?18,
                 cancelled = ?19, lease_granted = ?20
             WHERE num = ?1",
        )?
        .execute(params![
            num,
            self.state,
            self.attempts,
            self.counted_attempts,
            self.lease_worker,
            self.lease_attempt,
            self.success_attempt,
            self.success_worker,
            self.wall_seconds,
            self.result,
            self.reason,
            self.failures,
            self.weights,
            self.checkpoint,
            self.resumed_from,
            self.unstarted_attempts,
            self.previous_checkpoint,
            self.set_aside,
            self.cancelled,
            self.lease_granted,
        ])
        .map(drop)
    }
}

/// Adds the columns of [`ADDED_COLUMNS`] an older database lacks, in one transaction.
fn add_columns(conn: &Connection) -> rusqlite::Result<()> {
    let mut missing = Vec::new();
    for &(table, column, declaration, fill) in ADDED_COLUMNS {
        let present: bool = conn
            .prepare(&format!(
                "SELECT 1 FROM pragma_table_info('{table}') WHERE name = ?1"
            ))?
            .exists([column])?;
        if !present {
            missing.push(format!(
                "ALTER TABLE {table} ADD COLUMN {column} {declaration};"
            ));
            if !fill.is_empty() {
                missing.push(format!("{fill};"));
            }
        }
    }
    if missing.is_empty() {
        return Ok(());
    }
    conn.execute_batch(&format!("BEGIN; {} COMMIT;", missing.join(" ")))
}

/// The state machine's monotonic instants as wall-clock times (seconds since the Unix epoch),
/// which outlive the process: read once per batch of rows.
struct WallClock {
    instant: std::time::Instant,
    unix: f64,
}

impl WallClock {
    fn now() -> WallClock {
        WallClock {
            instant: std::time::Instant::now(),
            unix: unix_seconds(std::time::SystemTime::now()),
        }
    }

    /// `at` in seconds since the Unix epoch.
    fn seconds_at(&self, at: std::time::Instant) -> f64 {
        if at <= self.instant {
            self.unix - self.instant.duration_since(at).as_secs_f64()
        } else {
            self.unix + at.duration_since(self.instant).as_secs_f64()
        }
    }
}

fn unix_seconds(t: std::time::SystemTime) -> f64 {
    t.duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// The instant (of this process) of `unix` seconds since the Unix epoch, as of `now`; `None` if
/// it is in the future (the clock was set back) or not a time.
fn instant_of(unix: f64, now: std::time::Instant) -> Option<std::time::Instant> {
    let ago = unix_seconds(std::time::SystemTime::now()) - unix;
    if !ago.is_finite() || ago < 0.0 {
        return None;
    }
    now.checked_sub(std::time::Duration::try_from_secs_f64(ago).ok()?)
}

/// JSON for the columns that hold it. Our types have string keys only, so encoding cannot fail;
/// if it ever did, the column says why instead of the coordinator stopping.
fn json<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_else(|e| format!("{{\"error\":{:?}}}", e.to_string()))
}

#[cfg(test)]
mod tests;
