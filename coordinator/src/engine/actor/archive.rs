//! Archiving succeeded trials once their result is durable (issue 20, `state::archive`): the
//! state owner notes each trial that succeeded in a batch with the batch's number, and drops its
//! curve and confusion matrices from memory once the database's thread has committed that batch,
//! so that a reader of the database (`results.json`, the summary, a detail view) always finds
//! what left memory.

use std::collections::VecDeque;

use sweep_common::TrialId;

use super::owner::Owner;
use crate::state::{Effect, TrialState};

/// Trials waiting for their batch's commit before they are archived.
#[derive(Debug, Default)]
pub(super) struct Archiving {
    /// Batches handed to the database's thread so far (the last one's number).
    pub(super) sent: u64,
    /// (batch, trial), in the order sent.
    queue: VecDeque<(u64, TrialId)>,
}

impl Owner {
    /// Notes the trials that `effects` ended with success, committed in batch `seq`, whose
    /// experiment does not keep its curves; does nothing without a connection to read them back.
    pub(super) fn note_succeeded(&mut self, seq: u64, effects: &[Effect]) {
        if self.reader.is_none() {
            return;
        }
        for e in effects {
            let Effect::TrialEnded(id) = e else { continue };
            let archivable = self.scheduler.trial(*id).is_some_and(|t| {
                matches!(t.state, TrialState::Succeeded(_)) && !self.keep.keeps(&t.spec.experiment)
            });
            if archivable {
                self.archiving.queue.push_back((seq, *id));
            }
        }
    }

    /// Archives the trials noted in batches up to `committed` (the last one committed).
    pub(super) fn archive_committed(&mut self, committed: u64) {
        while let Some(&(seq, id)) = self.archiving.queue.front() {
            if seq > committed {
                break;
            }
            self.archiving.queue.pop_front();
            self.scheduler.archive(id);
        }
    }
}
