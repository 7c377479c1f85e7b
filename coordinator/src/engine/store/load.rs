//! Reading the database back at a restart: every trial with its current epochs, and the
//! registered workers.

use std::collections::HashMap;

use sweep_common::search::stopping::Action;
use sweep_common::{EpochMetrics, TrialId, WorkerId};

use crate::state::{CurveTotals, Judged, KeepCurves};

use super::row::{SELECT, TrialRow};
use super::{Loaded, Store, StoreError};

impl Store {
    /// Reads back every recorded trial and worker. Succeeded trials of the experiments that
    /// `keep` does not name come back archived (`state::archive`): their curves are summed as
    /// they are read, never held.
    pub fn load(&self, keep: &KeepCurves) -> Result<Loaded, StoreError> {
        let mut epochs = self.load_epochs(keep)?;
        let mut loaded = Loaded::default();
        let mut stmt = self.conn.prepare(&SELECT).map_err(|e| self.sqlite(e))?;
        let rows = stmt
            .query_map([], TrialRow::read)
            .map_err(|e| self.sqlite(e))?;
        let now = std::time::Instant::now();
        for row in rows {
            let row = row
                .map_err(|e| self.sqlite(e))?
                .map_err(|id| self.corrupt(&id, "the trial id does not decode".to_owned()))?;
            let id = row.id;
            let (curve, archived) = match epochs.remove(&id) {
                Some(Curve::Kept(curve)) => (curve, None),
                Some(Curve::Archived(totals)) => (Vec::new(), Some(totals)),
                None => (Vec::new(), None),
            };
            let mut trial = row
                .into_trial(curve, now)
                .map_err(|message| self.corrupt(&id.to_string(), message))?;
            if let Some(totals) = archived {
                trial.archive_as(totals);
            }
            loaded.trials.insert(trial.spec.id, trial);
        }
        loaded.order = self.load_order()?;
        loaded.workers = self.load_workers()?;
        loaded.decisions = self.load_decisions()?;
        loaded.promotions = self.load_promotions()?;
        Ok(loaded)
    }

    /// Operators' promotions to more epochs, per lineage id.
    fn load_promotions(&self) -> Result<HashMap<TrialId, u32>, StoreError> {
        let mut stmt = self
            .conn
            .prepare("SELECT lineage, epochs FROM promotions")
            .map_err(|e| self.sqlite(e))?;
        let rows = stmt
            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, u32>(1)?)))
            .map_err(|e| self.sqlite(e))?;
        let mut out = HashMap::new();
        for row in rows {
            let (lineage, epochs) = row.map_err(|e| self.sqlite(e))?;
            let id = lineage.parse().map_err(|_| {
                self.corrupt(
                    &lineage,
                    "a promotion's lineage id does not decode".to_owned(),
                )
            })?;
            out.insert(id, epochs);
        }
        Ok(out)
    }

    /// Every recorded trial's id, in the order of its recorded position (the scheduler's order
    /// when it was recorded).
    fn load_order(&self) -> Result<Vec<sweep_common::TrialId>, StoreError> {
        let mut stmt = self
            .conn
            .prepare("SELECT id FROM trials ORDER BY position, num")
            .map_err(|e| self.sqlite(e))?;
        let rows = stmt
            .query_map([], |r| r.get::<_, String>(0))
            .map_err(|e| self.sqlite(e))?;
        let mut order = Vec::new();
        for row in rows {
            let id = row.map_err(|e| self.sqlite(e))?;
            order.push(
                id.parse()
                    .map_err(|_| self.corrupt(&id, "the trial id does not decode".to_owned()))?,
            );
        }
        Ok(order)
    }

    /// The stopping rules' decisions, per experiment in the order taken.
    fn load_decisions(&self) -> Result<Vec<Judged>, StoreError> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT d.experiment, d.seq, t.id, d.epoch, d.action, d.reason
                 FROM decisions d JOIN trials t ON t.num = d.config
                 ORDER BY d.experiment, d.seq",
            )
            .map_err(|e| self.sqlite(e))?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, u32>(3)?,
                    r.get::<_, String>(4)?,
                    r.get::<_, Option<String>>(5)?,
                ))
            })
            .map_err(|e| self.sqlite(e))?;
        let mut out = Vec::new();
        for row in rows {
            let (experiment, seq, config, epoch, action, reason) =
                row.map_err(|e| self.sqlite(e))?;
            let corrupt = |message: String| self.corrupt(&config, message);
            let action = match action.as_str() {
                "continue" => Action::Continue,
                "stop" => Action::Stop {
                    reason: reason.unwrap_or_default(),
                },
                "promote" => Action::Promote,
                other => return Err(corrupt(format!("unknown decision {other:?}"))),
            };
            out.push(Judged {
                experiment,
                seq: usize::try_from(seq).map_err(|_| corrupt(format!("decision {seq}")))?,
                config: config
                    .parse()
                    .map_err(|_| corrupt("the trial id does not decode".to_owned()))?,
                epoch,
                action,
            });
        }
        Ok(out)
    }

    fn corrupt(&self, trial: &str, message: String) -> StoreError {
        StoreError::Corrupt {
            path: self.path.display().to_string(),
            trial: trial.to_owned(),
            message,
        }
    }

    /// The current (not superseded) epochs of every trial, in order; of a succeeded trial of an
    /// experiment `keep` does not name, only their totals.
    fn load_epochs(&self, keep: &KeepCurves) -> Result<HashMap<TrialId, Curve>, StoreError> {
        let mut epochs: HashMap<TrialId, Curve> = HashMap::new();
        let mut stmt = self
            .conn
            .prepare(
                "SELECT t.id, e.epoch, e.train_loss, e.train_accuracy, e.test_accuracy,
                        e.seconds, e.scalars, t.state = 'succeeded', t.experiment
                 FROM epochs e JOIN trials t ON t.num = e.trial
                 WHERE e.superseded = 0 ORDER BY e.trial, e.epoch",
            )
            .map_err(|e| self.sqlite(e))?;
        let mut rows = stmt.query([]).map_err(|e| self.sqlite(e))?;
        // The previous row's trial: its id, and whether it is archived.
        let mut current: Option<(String, TrialId, bool)> = None;
        while let Some(r) = rows.next().map_err(|e| self.sqlite(e))? {
            let read = |r: &rusqlite::Row<'_>| -> rusqlite::Result<(EpochMetrics, Option<String>)> {
                Ok((
                    EpochMetrics {
                        epoch: r.get(1)?,
                        train_loss: r.get::<_, Option<f64>>(2)?.unwrap_or(f64::NAN),
                        train_accuracy: r.get(3)?,
                        test_accuracy: r.get(4)?,
                        seconds: r.get(5)?,
                        scalars: Default::default(),
                    },
                    r.get(6)?,
                ))
            };
            let (mut m, scalars) = read(r).map_err(|e| self.sqlite(e))?;
            let trial: String = r.get(0).map_err(|e| self.sqlite(e))?;
            if let Some(text) = scalars {
                m.scalars = serde_json::from_str(&text).map_err(|e| {
                    self.corrupt(&trial, format!("epoch {}: scalars: {e}", m.epoch))
                })?;
            }
            if current.as_ref().is_none_or(|(t, _, _)| *t != trial) {
                let id = trial
                    .parse()
                    .map_err(|_| self.corrupt(&trial, "the trial id does not decode".to_owned()))?;
                let succeeded: bool = r.get(7).map_err(|e| self.sqlite(e))?;
                let experiment: String = r.get(8).map_err(|e| self.sqlite(e))?;
                current = Some((trial, id, succeeded && !keep.keeps(&experiment)));
            }
            let Some((_, id, archived)) = &current else {
                continue;
            };
            match epochs.entry(*id).or_insert_with(|| Curve::new(*archived)) {
                Curve::Kept(curve) => curve.push(m),
                Curve::Archived(totals) => totals.add(&m),
            }
        }
        Ok(epochs)
    }

    /// The registered workers: (id, name, device, slots).
    fn load_workers(&self) -> Result<Vec<(WorkerId, String, String, u32)>, StoreError> {
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
        let mut workers = Vec::new();
        for row in rows {
            let (id, name, device, slots) = row.map_err(|e| self.sqlite(e))?;
            let id = id.parse().map_err(|e: sweep_common::ids::InvalidId| {
                self.corrupt(&id, format!("worker id: {e}"))
            })?;
            workers.push((id, name, device, slots));
        }
        Ok(workers)
    }
}

/// A trial's curve as loaded: whole, or only its totals (an archived trial's).
enum Curve {
    Kept(Vec<EpochMetrics>),
    Archived(CurveTotals),
}

impl Curve {
    fn new(archived: bool) -> Curve {
        if archived {
            Curve::Archived(CurveTotals::default())
        } else {
            Curve::Kept(Vec::new())
        }
    }
}
