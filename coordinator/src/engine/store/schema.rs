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
