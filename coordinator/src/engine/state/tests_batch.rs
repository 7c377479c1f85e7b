//! Tests of epoch batches (`Scheduler::report_epochs`): fenced and checked whole, judged epoch
//! by epoch in order, idempotent when resent.

use std::time::{Duration, Instant};

use sweep_common::grid::Grid;
use sweep_common::{EpochMetrics, TrialSpec, WorkerId};

use super::tests::{assigned, config, metrics, specs, worker};
use super::*;

fn batch(epochs: std::ops::RangeInclusive<u32>) -> Vec<EpochMetrics> {
    epochs.map(metrics).collect()
}

/// The epochs recorded for `spec`, by number.
fn recorded(s: &Scheduler, spec: &TrialSpec) -> Vec<u32> {
    let t = s.trial(spec.id).unwrap();
    t.epochs.iter().map(|m| m.epoch).collect()
}

/// The epochs the changes to commit record.
fn epoch_changes(s: &mut Scheduler) -> Vec<u32> {
    s.take_changes()
        .into_iter()
        .filter_map(|c| match c {
            Change::Epoch { epoch, .. } => Some(epoch),
            _ => None,
        })
        .collect()
}

#[test]
fn a_stale_attempts_batch_is_refused_whole() {
    let t0 = Instant::now();
    let mut s = Scheduler::new(specs(1, 5), config());
    let a = worker(&mut s, t0, 1);
    let b = worker(&mut s, t0, 1);
    let (spec, _) = assigned(s.lease(a, t0).unwrap());
    let t1 = t0 + Duration::from_secs(11);
    s.expire_leases(t1);
    assert_eq!(assigned(s.lease(b, t1).unwrap()).1, 2);
    s.take_changes();

    let stale = s.report_epochs(LeaseKey::new(a, spec.id, 1), batch(1..=3), t1);
    assert!(
        matches!(stale, Err(StateError::StaleLease { .. })),
        "{stale:?}"
    );
    let not_holder = s.report_epochs(LeaseKey::new(a, spec.id, 2), batch(1..=3), t1);
    assert!(
        matches!(not_holder, Err(StateError::NotLeaseHolder { .. })),
        "{not_holder:?}"
    );
    assert!(recorded(&s, &spec).is_empty());
    assert!(epoch_changes(&mut s).is_empty());

    // The live lease's batch with one epoch out of range is refused whole too.
    let live = LeaseKey::new(b, spec.id, 2);
    let over = s.report_epochs(live, batch(4..=6), t1);
    assert!(
        matches!(
            over,
            Err(StateError::InvalidReport {
                field: "metrics.epoch",
                ..
            })
        ),
        "{over:?}"
    );
    let backwards = s.report_epochs(live, vec![metrics(2), metrics(1)], t1);
    assert!(
        matches!(
            backwards,
            Err(StateError::InvalidReport { field: "batch", .. })
        ),
        "{backwards:?}"
    );
    assert!(recorded(&s, &spec).is_empty());
    assert!(epoch_changes(&mut s).is_empty());
    let r = s.report_epochs(live, batch(1..=5), t1).unwrap();
    assert_eq!(r.stopped_at, None);
    assert_eq!(recorded(&s, &spec), vec![1, 2, 3, 4, 5]);
    assert_eq!(epoch_changes(&mut s), vec![1, 2, 3, 4, 5]);
}

#[test]
fn a_batch_resent_after_a_lost_answer_is_idempotent() {
    let now = Instant::now();
    let mut s = Scheduler::new(specs(1, 9), config());
    let w = worker(&mut s, now, 1);
    let (spec, attempt) = assigned(s.lease(w, now).unwrap());
    let key = LeaseKey::new(w, spec.id, attempt);
    s.report_epochs(key, batch(1..=3), now).unwrap();
    assert_eq!(epoch_changes(&mut s), vec![1, 2, 3]);
    // The answer was lost: the worker sends them again, with the epoch that ended meanwhile.
    let r = s.report_epochs(key, batch(1..=4), now).unwrap();
    assert_eq!((r.stopped_at, r.effects.len()), (None, 0));
    assert_eq!(
        epoch_changes(&mut s),
        vec![4],
        "only the new epoch is written"
    );
    assert_eq!(recorded(&s, &spec), vec![1, 2, 3, 4]);
    s.report_epochs(key, batch(1..=4), now).unwrap();
    assert!(epoch_changes(&mut s).is_empty());

    // An accepted epoch sent again with other values refuses the whole batch.
    let mut changed = batch(3..=5);
    changed[0].test_accuracy += 1.0;
    let refused = s.report_epochs(key, changed, now);
    assert!(
        matches!(
            refused,
            Err(StateError::InvalidReport {
                field: "metrics",
                ..
            })
        ),
        "{refused:?}"
    );
    assert_eq!(recorded(&s, &spec), vec![1, 2, 3, 4]);
    assert!(epoch_changes(&mut s).is_empty());
}

/// Two learning rates x 2 seeds, 9 epochs, ASHA from epoch 1.
fn asha_grid() -> Grid {
    let text = "[sweep]\nname='s'\n[[experiment]]\nname='e'\ndataset='fashion-mnist'\n\
         [experiment.fixed]\nepochs=9\n\
         [experiment.grid]\nlearning_rate=[0.001,0.002]\nseed=[1,2]\n\
         [experiment.stopping]\nrule = 'asha'\nmin_epochs = 1\nreduction = 2\n";
    Grid::parse(text, "t.toml").unwrap()
}

fn asha_scheduler(g: &Grid) -> (Scheduler, WorkerId, Vec<(TrialSpec, u32)>) {
    let now = Instant::now();
    let mut s = Scheduler::new(g.trials().cloned(), config());
    let rules: Vec<_> = g
        .experiments
        .iter()
        .filter_map(|e| Some((e.name.clone(), e.stopping?)))
        .collect();
    assert_eq!(s.set_stopping(&rules, &[]), 0);
    let w = worker(&mut s, now, 10);
    let leased = (0..4).map(|_| assigned(s.lease(w, now).unwrap())).collect();
    (s, w, leased)
}

/// What the trial `spec` reports at `epoch`.
fn value(spec: &TrialSpec, epoch: u32) -> EpochMetrics {
    EpochMetrics {
        test_accuracy: spec.params.learning_rate * 10_000.0 + f64::from(epoch),
        ..metrics(epoch)
    }
}

#[test]
fn a_batch_is_judged_epoch_by_epoch_and_stops_where_one_reported_alone_would() {
    let g = asha_grid();
    let now = Instant::now();
    // The first seed of the first configuration reports its first epoch alone; then the second
    // seed's batch of three brings the configuration to the rung at its first epoch.
    let (mut s, w, leased) = asha_scheduler(&g);
    let (first, second) = (&leased[0], &leased[1]);
    assert_eq!(first.0.params.learning_rate, second.0.params.learning_rate);
    let key = |(spec, attempt): &(TrialSpec, u32)| LeaseKey::new(w, spec.id, *attempt);
    s.report_epochs(key(first), vec![value(&first.0, 1)], now)
        .unwrap();
    let epochs: Vec<_> = (1..=3).map(|e| value(&second.0, e)).collect();
    let r = s.report_epochs(key(second), epochs.clone(), now).unwrap();

    // The same reports one epoch at a time.
    let (mut one, w1, leased1) = asha_scheduler(&g);
    let key1 = |(spec, attempt): &(TrialSpec, u32)| LeaseKey::new(w1, spec.id, *attempt);
    one.report_epoch(key1(&leased1[0]), value(&leased1[0].0, 1), now)
        .unwrap();
    let mut stopped_alone = None;
    for m in epochs {
        let e = m.epoch;
        match one.report_epochs(key1(&leased1[1]), vec![m], now) {
            Ok(r) if r.stopped_at.is_some() => {
                assert_eq!(r.stopped_at, Some(e));
                stopped_alone = Some(e);
                break;
            }
            Ok(_) => {}
            Err(e) => panic!("{e}"),
        }
    }
    let stop = stopped_alone.expect("the rule stops the first configuration at its rung");
    assert_eq!(r.stopped_at, Some(stop));
    assert!(stop < 3, "the stop falls inside the batch");
    let t = s.trial(second.0.id).unwrap();
    assert!(
        matches!(t.state, TrialState::Stopped { .. }),
        "{:?}",
        t.state
    );
    let expected: Vec<u32> = (1..=stop).collect();
    assert_eq!(
        recorded(&s, &second.0),
        expected,
        "epochs after the stop are not recorded"
    );
    assert_eq!(recorded(&one, &leased1[1].0), expected);
    assert!(epoch_changes(&mut s).iter().all(|&e| e <= stop));
    // Both seeds of the configuration stopped, as with single reports.
    let stopped = |s: &Scheduler| -> Vec<bool> {
        s.trials()
            .iter()
            .map(|t| matches!(t.state, TrialState::Stopped { .. }))
            .collect()
    };
    assert_eq!(stopped(&s), stopped(&one));
    // A resend of the batch after the stop meets an ended lease.
    let again: Vec<_> = (1..=3).map(|e| value(&second.0, e)).collect();
    let refused = s.report_epochs(key(second), again, now);
    assert!(
        matches!(refused, Err(StateError::StaleLease { .. })),
        "{refused:?}"
    );
}
