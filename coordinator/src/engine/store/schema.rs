//! The database's schema: its tables, the columns added to version 2 after it shipped (and
//! what fills them in an older database), and the page cache sizes.

use rusqlite::Connection;

/// Bumped on any incompatible change of the schema.
pub(super) const SCHEMA_VERSION: &str = "2";

/// SQLite's page cache (KiB) while a sweep runs: its working set is the running trials' pages.
/// Larger costs time at every commit (SQLite walks its cache).
pub(super) const CACHE_KIB: i64 = 8 * 1024;

/// ... and while the grid is recorded: the trials' id index of a million-trial grid.
pub(super) const GRID_CACHE_KIB: i64 = 64 * 1024;

pub(super) const SCHEMA: &str = "
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
    state TEXT NOT NULL CHECK (state IN ('pending', 'leased', 'succeeded', 'failed', 'stopped')),
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
    lease_granted REAL,
    stopped_epoch INTEGER,
    queued_ahead INTEGER
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
    scalars TEXT,
    PRIMARY KEY (trial, attempt, epoch)
) WITHOUT ROWID;
CREATE UNIQUE INDEX IF NOT EXISTS epochs_current ON epochs (trial, epoch) WHERE superseded = 0;
-- The stopping rules' decisions, per experiment in the order taken (issue 17); a configuration
-- is named by its first trial in grid order.
CREATE TABLE IF NOT EXISTS decisions (
    experiment TEXT NOT NULL,
    seq INTEGER NOT NULL,
    config INTEGER NOT NULL REFERENCES trials (num),
    epoch INTEGER NOT NULL,
    action TEXT NOT NULL CHECK (action IN ('continue', 'stop', 'promote')),
    reason TEXT,
    PRIMARY KEY (experiment, seq)
) WITHOUT ROWID;
-- Operators' promotions to more epochs (`coordinator promote --epochs`, issue 17): per lineage
-- (a trial's content without its epochs, `TrialSpec::lineage_id`), the epochs its trial trains
-- at least; the grid's trial of that lineage trains max(the grid's epochs, these).
CREATE TABLE IF NOT EXISTS promotions (
    lineage TEXT PRIMARY KEY,
    epochs INTEGER NOT NULL
);
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
    // Trials could not be stopped before it.
    ("trials", "stopped_epoch", "INTEGER", ""),
    // Trials queued ahead went back to grid order at a restart before it.
    ("trials", "queued_ahead", "INTEGER", ""),
    // A program trial's scalars by name, as JSON (issue 19); none before it.
    ("epochs", "scalars", "TEXT", ""),
];

/// The state check of databases made before trials could be stopped (issue 17).
const OLD_STATES: &str = "'succeeded', 'failed')";

/// ... and today's.
const STATES: &str = "'succeeded', 'failed', 'stopped')";

/// Lets an older database hold stopped trials. Its `trials` table refuses the state in its
/// `CHECK`, which SQLite cannot alter: the table is made again with today's check and its rows
/// copied, in one transaction (SQLite's documented way to change a table's constraints).
pub(super) fn allow_stopped(conn: &Connection) -> rusqlite::Result<()> {
    let sql: String = conn.query_row(
        "SELECT sql FROM sqlite_schema WHERE type = 'table' AND name = 'trials'",
        [],
        |r| r.get(0),
    )?;
    let Some(columns) = sql.find('(').map(|at| &sql[at..]) else {
        return Ok(());
    };
    if !columns.contains(OLD_STATES) {
        return Ok(());
    }
    let create = format!(
        "CREATE TABLE trials_new {}",
        columns.replacen(OLD_STATES, STATES, 1)
    );
    // Foreign keys are checked at the end instead of the drop deleting the epochs' parent.
    conn.pragma_update(None, "foreign_keys", "OFF")?;
    let copied = conn.execute_batch(&format!(
        "BEGIN; {create}; INSERT INTO trials_new SELECT * FROM trials; DROP TABLE trials;
         ALTER TABLE trials_new RENAME TO trials; COMMIT;"
    ));
    if copied.is_err() {
        let _ = conn.execute_batch("ROLLBACK");
    }
    conn.pragma_update(None, "foreign_keys", "ON")?;
    copied
}

/// Adds the columns of [`ADDED_COLUMNS`] an older database lacks, in one transaction.
pub(super) fn add_columns(conn: &Connection) -> rusqlite::Result<()> {
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
