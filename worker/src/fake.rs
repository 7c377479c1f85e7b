//! A deterministic stand-in for the trainer, for fault-injection tests only (`worker
//! --test-trainer EPOCH_MS`, hidden from `--help`). It trains nothing and loads no data: each
//! epoch sleeps `EPOCH_MS` (checking `stop` every few milliseconds) and derives its metrics from
//! a hash chained over the trial's seed and every previous epoch. It checkpoints and resumes like
//! the real trainer, so a resumed trial ends with exactly an uninterrupted one's numbers only if
//! resuming really continued from the right state, which is what the tests check.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use sweep_common::rng::SplitMix64;
use sweep_common::{ConfusionMatrix, EpochMetrics, FinalMetrics, TrialId, TrialResult, TrialSpec};

use crate::train::{Control, Progress, TrainError, Trained};

/// The pretend dataset's size (the coordinator checks the matrices against its splits).
const IMAGES: u64 = 1000;

#[derive(Debug, Serialize, Deserialize)]
struct State {
    trial: TrialId,
    hash: u64,
    epochs: Vec<EpochMetrics>,
}

fn next(hash: u64, epoch: u32) -> u64 {
    SplitMix64::new(hash ^ u64::from(epoch).rotate_left(32)).next_u64()
}

/// A number in [0, 1) from `hash`.
fn unit(hash: u64, salt: u32) -> f64 {
    (next(hash, salt) >> 11) as f64 / (1u64 << 53) as f64
}

fn sleep_epoch(epoch_time: Duration, control: &Control, epoch: u32) -> Result<(), TrainError> {
    let end = Instant::now() + epoch_time;
    loop {
        if control.stop.load(Ordering::Relaxed) {
            return Err(TrainError::Stopped { epoch });
        }
        let left = end.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(());
        }
        std::thread::sleep(left.min(Duration::from_millis(5)));
    }
}

/// The stand-in's state at the start of an attempt: from the checkpoint `resume`, or fresh.
fn start(spec: &TrialSpec, resume: Option<&[u8]>) -> Result<State, TrainError> {
    Ok(match resume {
        Some(bytes) => {
            let s: State = serde_json::from_slice(bytes)
                .map_err(|e| TrainError::Resume(format!("unreadable test checkpoint: {e}")))?;
            if s.trial != spec.id {
                return Err(TrainError::Resume(format!(
                    "checkpoint of trial {}, not {}",
                    s.trial, spec.id
                )));
            }
            s
        }
        None => State {
            trial: spec.id,
            // Each trial its own curve: trials that differ only in hyperparameters the
            // stand-in ignores still differ, as early stopping's tests need.
            hash: spec.params.seed ^ 0x5eed ^ spec.id.as_uuid().as_u64_pair().0,
            epochs: Vec::new(),
        },
    })
}

/// Trains `spec` for pretend, `epoch_time` per epoch, from `resume` when given.
pub fn train(
    spec: &TrialSpec,
    epoch_time: Duration,
    progress: &mut dyn Progress,
    control: &Control,
    resume: Option<&[u8]>,
) -> Result<Trained, TrainError> {
    let started = Instant::now();
    let mut state = start(spec, resume)?;
    let total = spec.params.epochs;
    while (state.epochs.len() as u32) < total {
        let epoch = state.epochs.len() as u32 + 1;
        let t = Instant::now();
        sleep_epoch(epoch_time, control, epoch)?;
        state.hash = next(state.hash, epoch);
        let e = f64::from(epoch);
        let metrics = EpochMetrics {
            epoch,
            train_loss: 2.0 / e + unit(state.hash, 1) * 1e-3,
            train_accuracy: 90.0 - 40.0 / e + unit(state.hash, 2),
            test_accuracy: 88.0 - 40.0 / e + unit(state.hash, 3),
            seconds: t.elapsed().as_secs_f64(),
            scalars: Default::default(),
        };
        state.epochs.push(metrics.clone());
        progress.epoch(&metrics);
        let last = epoch == total;
        let drain = control.drain.load(Ordering::Relaxed);
        let every = spec.checkpoint_every;
        if !last && (drain || (every > 0 && epoch % every == 0)) {
            let bytes =
                serde_json::to_vec(&state).map_err(|e| TrainError::Checkpoint(e.to_string()))?;
            progress.checkpoint(epoch, bytes);
        }
        if drain && !last {
            return Err(TrainError::Drained { epoch });
        }
    }
    let n = IMAGES as usize;
    let (_, test_len) = spec.parts(n);
    let train_len = spec.train_subset_len(n);
    let classes = spec.dataset.num_classes();
    let train_confusion =
        ConfusionMatrix::stand_in(classes, train_len as u64, 0.8 + 0.1 * unit(state.hash, 4));
    let test_confusion =
        ConfusionMatrix::stand_in(classes, test_len as u64, 0.75 + 0.1 * unit(state.hash, 5));
    let weights = serde_json::to_vec(&state).map_err(|e| TrainError::Checkpoint(e.to_string()))?;
    Ok(Trained {
        result: TrialResult {
            epochs: state.epochs,
            last: FinalMetrics {
                train_accuracy: train_confusion.accuracy(),
                test_accuracy: test_confusion.accuracy(),
                train_confusion,
                test_confusion,
                train_seconds: started.elapsed().as_secs_f64(),
                dataset_images: IMAGES,
            },
        },
        weights,
    })
}
