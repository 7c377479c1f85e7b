//! Reading archived trials back while the coordinator runs (issue 20): a succeeded trial's
//! curve and confusion matrices leave memory once committed (`state::archive`), and
//! `results.json`, the summary and the detail views read them here, on a connection of their
//! own (WAL: it sees what was committed, and never waits for the writer).

use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags, OptionalExtension};
use sweep_common::{EpochMetrics, FinalMetrics, TrialId};

use super::StoreError;

/// An archived trial as the database holds it.
#[derive(Debug, Clone, PartialEq)]
pub struct Stored {
    /// Its current epochs, in order.
    pub epochs: Vec<EpochMetrics>,
    /// Its final metrics with both confusion matrices (`None`: no result recorded).
    pub result: Option<FinalMetrics>,
}

/// A read-only connection to the state database.
pub struct Reader {
    conn: Connection,
    path: PathBuf,
}

impl std::fmt::Debug for Reader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reader").field("path", &self.path).finish()
    }
}

const CURVE: &str = "SELECT e.epoch, e.train_loss, e.train_accuracy, e.test_accuracy, e.seconds,
         e.scalars
     FROM trials t JOIN epochs e ON e.trial = t.num
     WHERE t.id = ?1 AND e.superseded = 0 ORDER BY e.epoch";

const RESULT: &str = "SELECT result FROM trials WHERE id = ?1";

impl Reader {
    /// Opens the database at `path` (`STATE/sweep.db`, made by [`super::Store::open`]) for
    /// reading.
    pub fn open(path: &Path) -> Result<Reader, StoreError> {
        let sqlite = |source| StoreError::Sqlite {
            path: path.display().to_string(),
            source,
        };
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(path, flags).map_err(sqlite)?;
        conn.busy_timeout(std::time::Duration::from_secs(10))
            .map_err(sqlite)?;
        Ok(Reader {
            conn,
            path: path.to_owned(),
        })
    }

    fn sqlite(&self, source: rusqlite::Error) -> StoreError {
        StoreError::Sqlite {
            path: self.path.display().to_string(),
            source,
        }
    }

    /// The curve of `trial` (its current epochs, in order).
    pub fn curve(&self, trial: TrialId) -> Result<Vec<EpochMetrics>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached(CURVE)
            .map_err(|e| self.sqlite(e))?;
        let rows = stmt
            .query_map([trial.to_string()], |r| {
                Ok((
                    EpochMetrics {
                        epoch: r.get(0)?,
                        train_loss: r.get::<_, Option<f64>>(1)?.unwrap_or(f64::NAN),
                        train_accuracy: r.get(2)?,
                        test_accuracy: r.get(3)?,
                        seconds: r.get(4)?,
                        scalars: Default::default(),
                    },
                    r.get::<_, Option<String>>(5)?,
                ))
            })
            .map_err(|e| self.sqlite(e))?;
        let mut curve = Vec::new();
        for row in rows {
            let (mut m, scalars) = row.map_err(|e| self.sqlite(e))?;
            if let Some(text) = scalars {
                m.scalars = serde_json::from_str(&text).map_err(|e| StoreError::Corrupt {
                    path: self.path.display().to_string(),
                    trial: trial.to_string(),
                    message: format!("epoch {}: scalars: {e}", m.epoch),
                })?;
            }
            curve.push(m);
        }
        Ok(curve)
    }

    /// The curve and final metrics of `trial`.
    pub fn stored(&self, trial: TrialId) -> Result<Stored, StoreError> {
        let epochs = self.curve(trial)?;
        let text: Option<String> = self
            .conn
            .prepare_cached(RESULT)
            .and_then(|mut s| s.query_row([trial.to_string()], |r| r.get(0)).optional())
            .map_err(|e| self.sqlite(e))?
            .flatten();
        let result = text
            .map(|t| serde_json::from_str::<FinalMetrics>(&t))
            .transpose()
            .map_err(|e| StoreError::Corrupt {
                path: self.path.display().to_string(),
                trial: trial.to_string(),
                message: format!("result: {e}"),
            })?;
        Ok(Stored { epochs, result })
    }
}
