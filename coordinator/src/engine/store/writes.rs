//! What a batch of changes writes, as owned rows: made from the scheduler on the state owner's
//! task, written on the database's thread.

use std::collections::{BTreeSet, HashMap};

use rusqlite::params;
use sweep_common::search::stopping::Action;
use sweep_common::{EpochMetrics, TrialId, WorkerId};

use super::row::{TrialRow, WallClock, finite};
use crate::state::{Change, Scheduler};

/// What a batch of changes writes, as owned rows: made from the scheduler on the state owner's
/// task, written on the database's thread while the state owner goes on.
#[derive(Debug, Default)]
pub struct Writes {
    /// Epoch and worker rows, in the order they changed.
    pub(super) ops: Vec<Op>,
    /// The changed trials' rows as they are at the end of the batch.
    pub(super) trials: Vec<TrialRow>,
}

impl Writes {
    /// The rows `changes` (taken from `scheduler` after a batch of requests) touch, with their
    /// values now.
    pub fn new(scheduler: &Scheduler, changes: &[Change]) -> Writes {
        let mut w = Writes::default();
        let mut rows: BTreeSet<TrialId> = BTreeSet::new();
        // Renamed rows first (an operator's promotion to more epochs): every other write
        // names a trial by its id now.
        let renamed: HashMap<TrialId, TrialId> = changes
            .iter()
            .filter_map(|c| match *c {
                Change::Renamed { from, to } => Some((from, to)),
                _ => None,
            })
            .collect();
        for change in changes {
            if let Change::Renamed { from, to } = *change {
                w.ops
                    .extend(rename(scheduler, from, to, current(&renamed, to)));
            }
        }
        for change in changes {
            let change = match *change {
                Change::Renamed { .. } => continue,
                _ if renamed.is_empty() => change.clone(),
                _ => with_ids(change, |id| current(&renamed, id)),
            };
            match change {
                Change::Trial(id) => {
                    rows.insert(id);
                }
                _ => w.ops.extend(op(scheduler, &change)),
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

/// The id trial `id` has at the end of a batch that renamed trials as `renamed` says (a trial
/// promoted twice in one batch is renamed twice; epochs only grow, so there is no cycle).
fn current(renamed: &HashMap<TrialId, TrialId>, mut id: TrialId) -> TrialId {
    while let Some(&to) = renamed.get(&id) {
        id = to;
    }
    id
}

/// `change` with the trial it names mapped by `f`.
fn with_ids(change: &Change, f: impl Fn(TrialId) -> TrialId) -> Change {
    match *change {
        Change::Trial(id) => Change::Trial(f(id)),
        Change::Epoch {
            trial,
            epoch,
            attempt,
        } => Change::Epoch {
            trial: f(trial),
            epoch,
            attempt,
        },
        Change::Supersede { trial, after } => Change::Supersede {
            trial: f(trial),
            after,
        },
        Change::ResultEpoch {
            trial,
            epoch,
            attempt,
        } => Change::ResultEpoch {
            trial: f(trial),
            epoch,
            attempt,
        },
        Change::NewTrial(id) => Change::NewTrial(f(id)),
        Change::Renamed { from, to } => Change::Renamed { from, to },
        Change::Worker(id) => Change::Worker(id),
        Change::Decision { experiment, seq } => Change::Decision { experiment, seq },
    }
}

/// The rename of row `from` to `to`, with the spec and lineage of the trial now `now`.
fn rename(scheduler: &Scheduler, from: TrialId, to: TrialId, now: TrialId) -> Option<Op> {
    let spec = &scheduler.trial(now)?.spec;
    Some(Op::Rename {
        from,
        to,
        spec: serde_json::to_string(spec).map_err(|e| e.to_string()),
        lineage: spec.lineage_id(),
        epochs: spec.params.epochs,
    })
}

/// The row operation `change` (any but a trial's row) asks for, with its values now in
/// `scheduler`; none when what it names is gone.
fn op(scheduler: &Scheduler, change: &Change) -> Option<Op> {
    let epoch = |trial: TrialId, epoch: u32| {
        scheduler
            .trial(trial)
            .and_then(|t| t.epochs.iter().find(|m| m.epoch == epoch))
            .cloned()
    };
    match *change {
        Change::Trial(_) | Change::Renamed { .. } => None,
        // An epoch reported, or one only the result brought (its report was lost).
        Change::Epoch {
            trial,
            epoch: e,
            attempt,
        }
        | Change::ResultEpoch {
            trial,
            epoch: e,
            attempt,
        } => epoch(trial, e).map(|metrics| Op::Epoch {
            trial,
            attempt,
            metrics,
            replaces: matches!(change, Change::ResultEpoch { .. }),
        }),
        Change::Supersede { trial, after } => Some(Op::Supersede { trial, after }),
        Change::Decision { experiment, seq } => {
            scheduler.judged(experiment, seq).map(|j| Op::Decision {
                experiment: j.experiment,
                seq,
                config: j.config,
                epoch: j.epoch,
                action: j.action,
            })
        }
        Change::NewTrial(id) => scheduler.position(id).map(|position| {
            let spec = &scheduler.trials()[position].spec;
            Op::NewTrial {
                id,
                position,
                experiment: spec.experiment.clone(),
                name: spec.name.clone(),
                spec: serde_json::to_string(spec).map_err(|e| e.to_string()),
            }
        }),
        Change::Worker(id) => scheduler.workers().get(&id).map(|wk| Op::Worker {
            id,
            name: wk.name.clone(),
            device: wk.device.clone(),
            slots: wk.slots,
        }),
    }
}

/// One write besides trial rows.
#[derive(Debug)]
pub(super) enum Op {
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
    /// A stopping rule's decision; `config` names the configuration's first trial.
    Decision {
        experiment: String,
        seq: usize,
        config: TrialId,
        epoch: u32,
        action: Action,
    },
    /// A trial added while the sweep runs, at `position` (its index in the scheduler), with
    /// its spec as JSON (or why it did not encode).
    NewTrial {
        id: TrialId,
        position: usize,
        experiment: String,
        name: String,
        spec: Result<String, String>,
    },
    /// Row `from` renamed `to` (an operator promoted the trial to more epochs), with the spec
    /// of the trial it is at the end of the batch, and the promotion of its lineage (`None`:
    /// a trial that cannot grow, never promoted).
    Rename {
        from: TrialId,
        to: TrialId,
        spec: Result<String, String>,
        lineage: Option<TrialId>,
        epochs: u32,
    },
    /// A registered worker.
    Worker {
        id: WorkerId,
        name: String,
        device: String,
        slots: u32,
    },
}

impl Op {
    /// Inserts the row of a [`Op::NewTrial`] (a pending trial, as the grid's are recorded);
    /// returns its row number. `Ok(None)` for any other op.
    pub(super) fn insert(&self, tx: &rusqlite::Transaction<'_>) -> rusqlite::Result<Option<i64>> {
        let Op::NewTrial {
            id,
            position,
            experiment,
            name,
            spec: Ok(spec),
        } = self
        else {
            return Ok(None);
        };
        tx.prepare_cached(
            "INSERT INTO trials (id, position, in_grid, experiment, name, spec, state,
                 attempts, counted_attempts, failures, resumed_from)
             VALUES (?1, ?2, 1, ?3, ?4, ?5, 'pending', 0, 0, '[]', 0)
             ON CONFLICT (id) DO UPDATE SET position = excluded.position, in_grid = 1
             RETURNING num",
        )?
        .query_row(
            params![id.to_string(), *position as i64, experiment, name, spec],
            |r| r.get(0),
        )
        .map(Some)
    }

    /// Writes it; `num` is the row number of its trial.
    pub(super) fn apply(&self, tx: &rusqlite::Transaction<'_>, num: i64) -> rusqlite::Result<()> {
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
            Op::Supersede { trial: _, after } => supersede(tx, num, *after),
            Op::Decision {
                experiment,
                seq,
                config: _,
                epoch,
                action,
            } => {
                let (name, reason) = match action {
                    Action::Continue => ("continue", None),
                    Action::Stop { reason } => ("stop", Some(reason.as_str())),
                    Action::Promote => ("promote", None),
                };
                tx.prepare_cached(
                    "INSERT INTO decisions (experiment, seq, config, epoch, action, reason)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                     ON CONFLICT (experiment, seq) DO UPDATE SET config = excluded.config,
                         epoch = excluded.epoch, action = excluded.action,
                         reason = excluded.reason",
                )?
                .execute(params![experiment, *seq as i64, num, epoch, name, reason])
                .map(drop)
            }
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
            // Written by `insert`.
            Op::NewTrial { .. } => Ok(()),
            Op::Rename {
                from: _,
                to,
                spec,
                lineage,
                epochs,
            } => {
                let spec = spec.as_deref().unwrap_or_default();
                tx.prepare_cached("UPDATE trials SET id = ?2, spec = ?3 WHERE num = ?1")?
                    .execute(params![num, to.to_string(), spec])?;
                match lineage {
                    Some(lineage) => tx
                        .prepare_cached(
                            "INSERT INTO promotions (lineage, epochs) VALUES (?1, ?2)
                             ON CONFLICT (lineage) DO UPDATE SET epochs = excluded.epochs",
                        )?
                        .execute(params![lineage.to_string(), epochs])
                        .map(drop),
                    None => Ok(()),
                }
            }
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
             seconds, superseded, scalars)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 0, ?8)
         ON CONFLICT (trial, attempt, epoch) DO UPDATE SET train_loss = excluded.train_loss,
             train_accuracy = excluded.train_accuracy, test_accuracy = excluded.test_accuracy,
             seconds = excluded.seconds, superseded = 0, scalars = excluded.scalars",
    )?
    .execute(params![
        num,
        attempt,
        m.epoch,
        finite(m.train_loss),
        m.train_accuracy,
        m.test_accuracy,
        m.seconds,
        // Checked finite when decoded, so always JSON; none for a native trial's epoch.
        (!m.scalars.is_empty())
            .then(|| serde_json::to_string(&m.scalars).ok())
            .flatten()
    ])
    .map(drop)
}

/// Marks the current epochs of row `num` after `after` superseded (a new attempt trains them
/// again).
pub(super) fn supersede(
    tx: &rusqlite::Transaction<'_>,
    num: i64,
    after: u32,
) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "UPDATE epochs SET superseded = 1
         WHERE trial = ?1 AND epoch > ?2 AND superseded = 0",
    )?
    .execute(params![num, after])
    .map(drop)
}
