//! An edited grid file that asks for more epochs (issue 17 part 2). A trial's id covers its
//! `epochs`, so the longer trial is a new trial; when it continues a recorded shorter one exactly
//! (same lineage, `TrialSpec::lineage`, and a schedule that does not span the run,
//! `TrialSpec::growth`), it adopts that trial's row at start-up: its curve, its attempts, its
//! latest checkpoint, and trains on from there. Which recorded trial a new one adopts
//! ([`verdict`]) and what the adopted trial becomes ([`grow`]) are pure; `open_state` reads and
//! writes the database around them.

use std::collections::HashMap;

use sweep_common::{TrialId, TrialSpec};

use crate::state::{Checkpoints, Trial, TrialState};

/// What becomes of a new trial of the grid that a recorded trial of its lineage precedes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// It continues recorded trial `from`: that row becomes its own.
    Adopt {
        /// The recorded trial.
        from: TrialId,
    },
    /// It is trained from epoch 1, although recorded trial `from` is of its lineage: `why`.
    Afresh {
        /// The recorded trial (kept in the database, no longer in the grid).
        from: TrialId,
        /// Why it cannot continue it, in words.
        why: String,
    },
}

/// The recorded trials that no trial of the grid has by id, by lineage.
#[derive(Debug, Default)]
pub struct Lineages {
    by: HashMap<String, Vec<TrialId>>,
}

impl Lineages {
    /// The lineages of `recorded` (the trials left over once the grid took its own by id).
    pub fn of<'a>(recorded: impl Iterator<Item = &'a Trial>) -> Lineages {
        let mut by: HashMap<String, Vec<TrialId>> = HashMap::new();
        for t in recorded {
            by.entry(t.spec.lineage()).or_default().push(t.spec.id);
        }
        Lineages { by }
    }

    /// What becomes of `new`, a trial of the grid not recorded by its id (`None`: no recorded
    /// trial is of its lineage). Of several, it adopts the one with the most epochs that it
    /// may continue; when it may continue none, the reason given is the longest one's.
    pub fn verdict(&self, new: &TrialSpec, recorded: &HashMap<TrialId, Trial>) -> Option<Verdict> {
        let mut candidates: Vec<&Trial> = self
            .by
            .get(&new.lineage())?
            .iter()
            .filter_map(|id| recorded.get(id))
            .collect();
        candidates.sort_by_key(|t| std::cmp::Reverse(t.spec.params.epochs));
        let verdicts: Vec<Verdict> = candidates.iter().map(|old| verdict(new, old)).collect();
        let adopt = verdicts.iter().find(|v| matches!(v, Verdict::Adopt { .. }));
        adopt.or(verdicts.first()).cloned()
    }
}

/// Whether `new` may continue `old`, a recorded trial of its lineage: when it asks for more
/// epochs, grows exactly, and `old` ended (succeeded or stopped) or waits, with a checkpoint to
/// resume from.
pub fn verdict(new: &TrialSpec, old: &Trial) -> Verdict {
    let from = old.spec.id;
    let afresh = |why: String| Verdict::Afresh { from, why };
    let (wanted, had) = (new.params.epochs, old.spec.params.epochs);
    if wanted <= had {
        return afresh(format!(
            "it asks for {wanted} epochs, fewer than the {had} recorded trial {:?} trained \
             (a shorter run ends elsewhere: only more epochs continue a trial)",
            old.spec.name
        ));
    }
    if let Err(why) = new.growth() {
        return afresh(why.to_string());
    }
    let checkpoint = match &old.state {
        TrialState::Succeeded(s) => s.checkpoint.as_deref(),
        TrialState::Stopped { checkpoints, .. } | TrialState::Pending { checkpoints, .. } => {
            checkpoints.latest.as_deref()
        }
        TrialState::Leased { .. } | TrialState::Failed { .. } => {
            return afresh(format!(
                "recorded trial {:?} had not ended (it was {})",
                old.spec.name,
                state_word(&old.state)
            ));
        }
    };
    match checkpoint {
        Some(_) => Verdict::Adopt { from },
        None => afresh(format!(
            "recorded trial {:?} kept no checkpoint (checkpoint_every = 0, or it trained no \
             more than checkpoint_every epochs)",
            old.spec.name
        )),
    }
}

/// `old` made into `new`, which adopted it ([`Verdict::Adopt`]); `old`'s curve must be whole
/// (an archived trial's read back from the database). A succeeded trial goes back to the queue
/// (in grid order) resuming from its latest checkpoint, its epochs after it dropped; a stopped
/// one stays stopped (its rule's decision stands: `coordinator promote` resumes it, now up to
/// the new epochs); a pending one stays pending. Returns the trial and the last epoch it
/// keeps (the epochs after it are superseded in the database).
pub fn grow(mut old: Trial, new: TrialSpec) -> (Trial, u32) {
    old.spec = new;
    if let TrialState::Succeeded(s) = &mut old.state {
        old.state = TrialState::Pending {
            checkpoints: Checkpoints {
                latest: s.checkpoint.take(),
                previous: None,
            },
            ahead: None,
        };
        old.counted_attempts = 0;
        old.unstarted_attempts = 0;
    }
    let kept = match &old.state {
        TrialState::Pending { checkpoints, .. } => checkpoints.epoch(),
        _ => old.epochs.last().map_or(0, |m| m.epoch),
    };
    old.epochs.retain(|m| m.epoch <= kept);
    (old, kept)
}

/// Applies the operators' promotions to more epochs (`coordinator promote --epochs`, per
/// lineage id the epochs) to the grid's trials `specs`: per promoted lineage, its trial with
/// the most epochs trains max(its epochs, the promotion's), under the id of that content. So a
/// restart with the same grid, or one asking for fewer epochs, keeps the promotion (the trial
/// is the recorded one, by id), and one asking for more grows it further (`verdict`). Returns
/// how many trials it gave more epochs.
pub fn apply_promotions<'a>(
    specs: impl Iterator<Item = &'a mut TrialSpec>,
    promotions: &HashMap<TrialId, u32>,
) -> usize {
    if promotions.is_empty() {
        return 0;
    }
    let mut specs: Vec<&mut TrialSpec> = specs.collect();
    // Per promoted lineage, its longest trial (the first of those in grid order).
    let mut longest: HashMap<TrialId, usize> = HashMap::new();
    for (k, spec) in specs.iter().enumerate() {
        let Some(lineage) = spec.lineage_id().filter(|l| promotions.contains_key(l)) else {
            continue;
        };
        let epochs = spec.params.epochs;
        longest
            .entry(lineage)
            .and_modify(|best| {
                if specs[*best].params.epochs < epochs {
                    *best = k;
                }
            })
            .or_insert(k);
    }
    let mut raised = 0;
    for (lineage, k) in longest {
        let spec = &mut specs[k];
        if let Some(&epochs) = promotions.get(&lineage)
            && spec.params.epochs < epochs
        {
            spec.params.epochs = epochs;
            spec.id = spec.content_id();
            raised += 1;
        }
    }
    raised
}

fn state_word(s: &TrialState) -> &'static str {
    match s {
        TrialState::Pending { .. } => "pending",
        TrialState::Leased { .. } => "leased",
        TrialState::Succeeded(_) => "succeeded",
        TrialState::Stopped { .. } => "stopped",
        TrialState::Failed { .. } => "failed",
    }
}

#[cfg(test)]
mod tests;
