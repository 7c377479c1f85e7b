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

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use rusqlite::{Connection, OptionalExtension, params};
use sweep_common::{TrialId, WorkerId};

use crate::state::{Change, Scheduler, Trial};

mod load;
mod read;
mod row;
mod schema;
mod writes;

pub use read::{Reader, Stored};
use schema::{CACHE_KIB, GRID_CACHE_KIB, SCHEMA, SCHEMA_VERSION, add_columns, allow_stopped};
use writes::Op;
pub use writes::Writes;

/// The database file's name in the state directory.
pub const DATABASE: &str = "sweep.db";

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
    /// The stopping rules' decisions, per experiment in the order taken.
    pub decisions: Vec<crate::state::Judged>,
    /// Every recorded trial's id, in the order of its recorded position.
    pub order: Vec<TrialId>,
    /// Operators' promotions to more epochs: per lineage id, the epochs.
    pub promotions: HashMap<TrialId, u32>,
}

/// A recorded trial's row that a trial of the grid adopts (see [`Store::record_grid_adopting`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Adopted {
    /// The recorded trial.
    pub from: TrialId,
    /// The grid's trial that continues it.
    pub to: TrialId,
    /// The last epoch it keeps.
    pub kept: u32,
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
        allow_stopped(&conn).map_err(sqlite)?;
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
        self.record_grid_adopting(trials, &[])
    }

    /// [`Store::record_grid`], where grid trials adopt recorded rows (`lineage`, an edited
    /// grid asking for more epochs): each row is renamed to its new trial first, so that its
    /// epochs, attempts and decisions (keyed by row number) stay its own, and its state and
    /// spec are written with the epochs after the last one it keeps superseded, in the same
    /// transaction (a crash never leaves a row under the new id with the old state).
    pub fn record_grid_adopting(
        &mut self,
        trials: &[Trial],
        adopted: &[Adopted],
    ) -> Result<Vec<String>, StoreError> {
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
        for a in adopted {
            tx.execute(
                "UPDATE trials SET id = ?2 WHERE id = ?1",
                params![a.from.to_string(), a.to.to_string()],
            )
            .map_err(sqlite)?;
        }
        let kept: HashMap<TrialId, u32> = adopted.iter().map(|a| (a.to, a.kept)).collect();
        let clock = row::WallClock::now();
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
                if let Some(&after) = kept.get(&t.spec.id) {
                    row::TrialRow::new(t, &clock)
                        .apply(&tx, num)
                        .map_err(sqlite)?;
                    writes::supersede(&tx, num, after).map_err(sqlite)?;
                }
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
        let nums = &mut self.nums;
        let corrupt = |trial: TrialId, message: &str| StoreError::Corrupt {
            path: path.clone(),
            trial: trial.to_string(),
            message: message.to_owned(),
        };
        let tx = self.conn.transaction().map_err(sqlite)?;
        let mut added = Vec::new();
        let mut renamed = Vec::new();
        for w in batches {
            for op in &w.ops {
                if let Op::Rename { from, to, spec, .. } = op {
                    if let Err(e) = spec {
                        return Err(corrupt(*to, &format!("the spec does not encode: {e}")));
                    }
                    let n = nums
                        .get(from)
                        .copied()
                        .ok_or_else(|| corrupt(*from, "a trial renamed that is not in the grid"))?;
                    op.apply(&tx, n).map_err(sqlite)?;
                    nums.remove(from);
                    nums.insert(*to, n);
                    renamed.push((*from, *to, n));
                    continue;
                }
                if let Op::NewTrial { id, spec, .. } = op {
                    if let Err(e) = spec {
                        return Err(corrupt(*id, &format!("the spec does not encode: {e}")));
                    }
                    if let Some(n) = op.insert(&tx).map_err(sqlite)? {
                        nums.insert(*id, n);
                        added.push(*id);
                    }
                    continue;
                }
                let num = |trial: TrialId| {
                    nums.get(&trial).copied().ok_or_else(|| {
                        corrupt(trial, "a change to a trial that is not in the grid")
                    })
                };
                let trial = match op {
                    Op::Epoch { trial, .. }
                    | Op::Supersede { trial, .. }
                    | Op::Decision { config: trial, .. } => num(*trial)?,
                    Op::Worker { .. } | Op::NewTrial { .. } | Op::Rename { .. } => 0,
                };
                op.apply(&tx, trial).map_err(sqlite)?;
            }
            for row in &w.trials {
                let num = nums.get(&row.id).copied().ok_or_else(|| {
                    corrupt(row.id, "a change to a trial that is not in the grid")
                })?;
                row.apply(&tx, num).map_err(sqlite)?;
            }
        }
        let committed = tx.commit().map_err(sqlite);
        if committed.is_err() {
            // Rows that were not committed have no number, nor renamed ones their new id.
            for id in added {
                nums.remove(&id);
            }
            for (from, to, n) in renamed.into_iter().rev() {
                nums.remove(&to);
                nums.insert(from, n);
            }
        }
        committed
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

#[cfg(test)]
mod tests;
