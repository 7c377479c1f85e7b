//! The index kept up to date change by change equals one made afresh, after any sequence of
//! transitions (property-tested); and the estimates made from it equal their definition, a pass
//! over every trial (the module documentation of `forecast`).

use std::time::{Duration, Instant};

use proptest::prelude::*;
use sweep_common::grid::Grid;
use sweep_common::{
    ConfusionMatrix, EpochMetrics, FinalMetrics, TrialId, TrialResult, TrialSpec, WorkerId,
};

use super::*;
use crate::state::{CancelSelector, Config, LeaseKey, LeaseOutcome, Outcome, TrialState};
use crate::status::forecast;

const GRID: &str = "[sweep]\nname='s'\n\
    [[experiment]]\nname='a'\ndataset='fashion-mnist'\ntrial_name='a_{activation}_{hidden_layers}'\n\
    [experiment.fixed]\nepochs=3\n[experiment.grid]\nactivation=['relu','tanh']\nhidden_layers=[1,2]\n\
    [[experiment]]\nname='b'\ndataset='fashion-mnist'\ntrial_name='b_{seed}'\n\
    [experiment.fixed]\nepochs=4\n[experiment.grid]\nseed=[1,2,3]\n";

fn scheduler() -> Scheduler {
    let grid = Grid::parse(GRID, "t.toml").unwrap();
    let config = Config {
        lease_ttl: Duration::from_secs(10),
        max_attempts: 2,
        retry_after: Duration::from_millis(100),
    };
    Scheduler::new(grid.trials().cloned(), config)
}

fn metrics(epoch: u32, seconds: f64) -> EpochMetrics {
    EpochMetrics {
        epoch,
        train_loss: 0.5,
        train_accuracy: 50.0,
        test_accuracy: 40.0,
        seconds,
        scalars: Default::default(),
    }
}

/// A valid result for `spec` whose test split (30 of 100 images) has `correct` right.
fn result(spec: &TrialSpec, correct: u64, seconds: f64) -> TrialResult {
    let n = 100;
    let (_, test) = spec.split.sizes(n);
    let mut train_m = ConfusionMatrix::zeros(10);
    train_m.counts[0] = spec.train_subset_len(n) as u64;
    let mut test_m = ConfusionMatrix::zeros(10);
    let correct = correct.min(test as u64);
    test_m.counts[0] = correct;
    test_m.counts[1] = test as u64 - correct;
    TrialResult {
        epochs: (1..=spec.params.epochs)
            .map(|e| metrics(e, seconds))
            .collect(),
        last: FinalMetrics {
            train_accuracy: train_m.accuracy(),
            test_accuracy: test_m.accuracy(),
            train_confusion: train_m,
            test_confusion: test_m,
            train_seconds: 1.0,
            dataset_images: n as u64,
        },
    }
}

/// One step of a sweep, its numbers picking the worker, trial and values.
#[derive(Debug, Clone)]
enum Op {
    Register(u8),
    Lease(u8),
    Epoch(u8, u8),
    Succeed(u8, u8),
    Fail(u8, u8),
    Expire,
    Cancel(u8),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        1 => any::<u8>().prop_map(Op::Register),
        4 => any::<u8>().prop_map(Op::Lease),
        6 => (any::<u8>(), any::<u8>()).prop_map(|(a, b)| Op::Epoch(a, b)),
        3 => (any::<u8>(), any::<u8>()).prop_map(|(a, b)| Op::Succeed(a, b)),
        2 => (any::<u8>(), any::<u8>()).prop_map(|(a, b)| Op::Fail(a, b)),
        1 => Just(Op::Expire),
        1 => any::<u8>().prop_map(Op::Cancel),
    ]
}

/// The live leases: (worker, trial, attempt, epochs reported).
fn leases(s: &Scheduler) -> Vec<(WorkerId, TrialId, u32, u32)> {
    s.trials()
        .iter()
        .filter_map(|t| match &t.state {
            TrialState::Leased { lease: l, .. } => {
                Some((l.worker, t.spec.id, l.attempt, count(t.epochs.len())))
            }
            _ => None,
        })
        .collect()
}

/// Applies `op` at `now`; refusals are part of the game.
fn apply(s: &mut Scheduler, workers: &mut Vec<WorkerId>, op: &Op, now: &mut Instant) {
    let leased = leases(s);
    let pick = |n: u8, len: usize| usize::from(n) % len.max(1);
    match *op {
        Op::Register(slots) => {
            let w = WorkerId::random();
            s.register(
                w,
                format!("w{}", workers.len()),
                "cpu".into(),
                u32::from(slots % 3) + 1,
                *now,
            );
            workers.push(w);
        }
        Op::Lease(w) if !workers.is_empty() => {
            let _ = s.lease(workers[pick(w, workers.len())], *now);
        }
        Op::Epoch(i, secs) if !leased.is_empty() => {
            let (w, id, attempt, done) = leased[pick(i, leased.len())];
            // Now and then an epoch time that cannot be used (NaN).
            let seconds = if secs % 7 == 0 {
                f64::NAN
            } else {
                f64::from(secs % 5 + 1) / 2.0
            };
            let _ = s.report_epoch(
                LeaseKey::new(w, id, attempt),
                metrics(done + 1, seconds),
                *now,
            );
        }
        Op::Succeed(i, correct) if !leased.is_empty() => {
            let (w, id, attempt, _) = leased[pick(i, leased.len())];
            let spec = s.trial(id).unwrap().spec.clone();
            let r = result(&spec, u64::from(correct % 31), f64::from(correct % 3 + 1));
            let _ = s.complete(LeaseKey::new(w, id, attempt), Outcome::Succeeded(r), *now);
        }
        Op::Fail(i, kind) if !leased.is_empty() => {
            let (w, id, attempt, _) = leased[pick(i, leased.len())];
            let kind = [
                FailureKind::OutOfMemory,
                FailureKind::Data,
                FailureKind::WorkerShutdown,
                FailureKind::NonFiniteLoss,
            ][pick(kind, 4)];
            let failed = Outcome::Failed {
                kind,
                message: "boom".into(),
            };
            let _ = s.complete(LeaseKey::new(w, id, attempt), failed, *now);
        }
        Op::Expire => {
            *now += Duration::from_secs(11);
            s.expire_leases(*now);
        }
        Op::Cancel(i) => {
            let name = s.trials()[pick(i, s.trials().len())].spec.name.clone();
            let selector = CancelSelector {
                trials: vec![name],
                ..CancelSelector::default()
            };
            let _ = s.cancel(&selector);
        }
        _ => {}
    }
}

/// The forecast as its definition says, by a pass over every trial.
fn reference(s: &Scheduler, now: Instant) -> (Option<f64>, Option<f64>) {
    if s.is_finished() {
        return (None, Some(0.0));
    }
    let mean = |ts: &mut dyn Iterator<Item = &Trial>| {
        let (mut secs, mut n) = (0.0, 0u64);
        for m in ts.flat_map(|t| &t.epochs) {
            if m.seconds.is_finite() && m.seconds >= 0.0 {
                secs += m.seconds;
                n += 1;
            }
        }
        (n > 0).then(|| (secs / n as f64).max(MIN_EPOCH_SECONDS))
    };
    let epoch_seconds = |t: &Trial| {
        let e = &t.spec.experiment;
        mean(&mut std::iter::once(t))
            .or_else(|| {
                mean(&mut s.trials().iter().filter(|u| {
                    &u.spec.experiment == e && matches!(u.state, TrialState::Succeeded(_))
                }))
            })
            .or_else(|| mean(&mut s.trials().iter().filter(|u| &u.spec.experiment == e)))
            .or_else(|| mean(&mut s.trials().iter()))
    };
    let remaining = |t: &Trial| {
        let left = t.spec.params.epochs.saturating_sub(count(t.epochs.len()));
        if left == 0 {
            Some(0.0)
        } else {
            epoch_seconds(t).map(|x| f64::from(left) * x)
        }
    };
    let running: Vec<&Trial> = s
        .trials()
        .iter()
        .filter(|t| matches!(t.state, TrialState::Leased { .. }))
        .collect();
    let rates: Vec<f64> = running
        .iter()
        .filter_map(|t| epoch_seconds(t))
        .map(|x| 60.0 / x)
        .collect();
    let throughput = (!rates.is_empty()).then(|| rates.iter().sum());
    let unfinished: Vec<&Trial> = s.trials().iter().filter(|t| !t.is_terminal()).collect();
    let total: Option<f64> = unfinished.iter().map(|t| remaining(t)).sum();
    let live_slots: usize = s
        .workers()
        .values()
        .filter(|w| now.saturating_duration_since(w.last_seen) <= s.config().lease_ttl)
        .map(|w| w.slots as usize)
        .sum();
    let parallel = running.len().max(live_slots.min(unfinished.len()));
    let eta = match total {
        Some(total) if parallel > 0 => {
            let longest = running
                .iter()
                .filter_map(|t| remaining(t))
                .fold(0.0, f64::max);
            Some((total / parallel as f64).max(longest))
        }
        _ => None,
    };
    (throughput, eta)
}

fn close(a: Option<f64>, b: Option<f64>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => (a - b).abs() <= 1e-6 * a.abs().max(1.0),
        (None, None) => true,
        _ => false,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn kept_up_to_date_it_equals_one_made_afresh(ops in prop::collection::vec(op(), 1..60)) {
        let mut s = scheduler();
        let mut index = Index::new(&s);
        let mut workers = Vec::new();
        let mut now = Instant::now();
        for op in &ops {
            apply(&mut s, &mut workers, op, &mut now);
            // Refreshing before the changes are taken (as a status in the middle of a batch
            // does) and again after is harmless.
            index.update(&s, s.pending_changes());
            let changes = s.take_changes();
    index.update(&s, &changes);
            prop_assert_eq!(&index, &Index::new(&s), "after {:?}", op);
            let f = forecast::forecast(&s, &index, now);
            let (throughput, eta) = reference(&s, now);
            prop_assert!(close(f.throughput_epochs_per_minute, throughput),
                "throughput {:?} != {:?} after {:?}", f.throughput_epochs_per_minute, throughput, op);
            prop_assert!(close(f.eta_seconds, eta), "eta {:?} != {:?} after {:?}", f.eta_seconds, eta, op);
        }
    }
}

#[test]
fn the_best_are_the_highest_accuracies_first_in_grid_order_on_ties() {
    let mut s = scheduler();
    let now = Instant::now();
    let w = WorkerId::random();
    s.register(w, "w".into(), "cpu".into(), 7, now);
    let specs: Vec<TrialSpec> = (0..7)
        .map(|_| match s.lease(w, now).unwrap() {
            LeaseOutcome::Assigned { spec, .. } => spec,
            other => panic!("{other:?}"),
        })
        .collect();
    let mut index = Index::new(&s);
    for (spec, correct) in specs.iter().zip([10, 25, 25, 5, 30, 1, 25]) {
        let r = result(spec, correct, 1.0);
        s.complete(LeaseKey::new(w, spec.id, 1), Outcome::Succeeded(r), now)
            .unwrap();
    }
    let changes = s.take_changes();
    index.update(&s, &changes);
    let best: Vec<usize> = index.best(None).collect();
    // Experiment a is positions 0..4, b 4..7.
    assert_eq!(best, [4, 1, 2, 6, 0, 3, 5]);
    assert_eq!(index.best(Some(0)).collect::<Vec<_>>(), [1, 2, 0]);
    assert_eq!(index.best(Some(1)).collect::<Vec<_>>(), [4, 6, 5]);
    assert_eq!(index.totals().counts.succeeded, 7);
    assert_eq!(index.leases_granted(), 7);
    assert_eq!(index.matched(Some(Phase::Succeeded), Some(1)), 3);
}
