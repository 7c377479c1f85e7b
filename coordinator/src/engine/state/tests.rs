//! Tests of the scheduling state machine.

use std::time::{Duration, Instant};

use proptest::prelude::*;
use sweep_common::grid::Grid;
use sweep_common::{
    ConfusionMatrix, EpochMetrics, FinalMetrics, TrialId, TrialResult, TrialSpec, WorkerId,
};

use super::*;

pub(super) fn specs(n: usize, epochs: u32) -> Vec<TrialSpec> {
    let seeds: Vec<String> = (0..n).map(|i| i.to_string()).collect();
    let text = format!(
        "[sweep]\nname='s'\n[[experiment]]\nname='e'\ndataset='fashion-mnist'\n[experiment.fixed]\nepochs={epochs}\n[experiment.grid]\nseed=[{}]\n",
        seeds.join(",")
    );
    Grid::parse(&text, "t.toml")
        .unwrap()
        .trials()
        .cloned()
        .collect()
}

pub(super) fn config() -> Config {
    Config {
        lease_ttl: Duration::from_secs(10),
        max_attempts: 2,
        retry_after: Duration::from_millis(100),
    }
}

pub(super) fn metrics(epoch: u32) -> EpochMetrics {
    EpochMetrics {
        epoch,
        train_loss: 0.5,
        train_accuracy: 80.0,
        test_accuracy: 70.0,
        seconds: 0.1,
        scalars: Default::default(),
    }
}

/// A valid result for `spec` on a dataset of 100 images (70 train, 30 test).
pub(super) fn result(spec: &TrialSpec) -> TrialResult {
    let n = 100;
    let (_, test) = spec.split.sizes(n);
    let train = spec.train_subset_len(n);
    let diag = |total: usize| {
        let mut m = ConfusionMatrix::zeros(10);
        m.counts[0] = total as u64;
        m
    };
    TrialResult {
        epochs: (1..=spec.params.epochs).map(metrics).collect(),
        last: FinalMetrics {
            train_accuracy: 100.0,
            test_accuracy: 100.0,
            train_confusion: diag(train),
            test_confusion: diag(test),
            train_seconds: 1.0,
            dataset_images: n as u64,
        },
    }
}

pub(super) fn worker(s: &mut Scheduler, now: Instant, slots: u32) -> WorkerId {
    let id = WorkerId::random();
    s.register(id, "w".into(), "cpu".into(), slots, now);
    id
}

pub(super) fn assigned(o: LeaseOutcome) -> (TrialSpec, u32) {
    match o {
        LeaseOutcome::Assigned { spec, attempt, .. } => (spec, attempt),
        other => panic!("expected an assignment, got {other:?}"),
    }
}

pub(super) fn checkpoint(epoch: u32, attempt: u32) -> Checkpoint {
    Checkpoint {
        epoch,
        attempt,
        file: format!("c-a{attempt}-e{epoch}"),
        size: 1,
        sha256: "00".repeat(32),
    }
}

#[test]
fn a_new_attempt_resumes_from_the_last_checkpoint_and_keeps_its_epochs() {
    let t0 = Instant::now();
    let mut s = Scheduler::new(specs(1, 6), config());
    let a = worker(&mut s, t0, 1);
    let b = worker(&mut s, t0, 1);
    let (spec, attempt) = assigned(s.lease(a, t0).unwrap());
    // A checkpoint must follow the epochs it holds.
    assert!(matches!(
        s.record_checkpoint(a, spec.id, checkpoint(2, attempt), t0),
        Err(StateError::InvalidReport { .. })
    ));
    for e in 1..=3 {
        s.report_epoch(LeaseKey::new(a, spec.id, attempt), metrics(e), t0)
            .unwrap();
    }
    assert_eq!(
        s.record_checkpoint(a, spec.id, checkpoint(2, attempt), t0),
        Ok(Vec::new())
    );
    // A newer checkpoint replaces it; the old one is kept as the previous.
    assert_eq!(
        s.record_checkpoint(a, spec.id, checkpoint(3, attempt), t0),
        Ok(Vec::new())
    );
    assert_eq!(
        s.trial(spec.id).unwrap().previous_checkpoint(),
        Some(&checkpoint(2, attempt))
    );
    s.take_changes();
    // A's lease expires: epochs 1..=3 are kept (the checkpoint holds them), B resumes after 3.
    let later = t0 + Duration::from_secs(11);
    s.expire_leases(later);
    assert!(s.take_changes().contains(&Change::Supersede {
        trial: spec.id,
        after: 3
    }));
    let LeaseOutcome::Assigned {
        attempt: second,
        resume,
        ..
    } = s.lease(b, later).unwrap()
    else {
        panic!("expected an assignment")
    };
    assert_eq!(second, 2);
    assert_eq!(resume, Some(checkpoint(3, 1)));
    assert_eq!(
        s.resume_checkpoint(LeaseKey::new(b, spec.id, 2), later),
        Ok(checkpoint(3, 1))
    );
    assert!(
        s.resume_checkpoint(LeaseKey::new(a, spec.id, 1), later)
            .is_err(),
        "the old lease gets nothing"
    );
    // Epochs the checkpoint holds cannot be reported again by the new attempt.
    assert!(matches!(
        s.report_epoch(LeaseKey::new(b, spec.id, 2), metrics(3), later),
        Err(StateError::InvalidReport { .. })
    ));
    for e in 4..=6 {
        s.report_epoch(LeaseKey::new(b, spec.id, 2), metrics(e), later)
            .unwrap();
    }
    assert_eq!(s.trial(spec.id).unwrap().epochs.len(), 6);
    let effects = s
        .complete(
            LeaseKey::new(b, spec.id, 2),
            Outcome::Succeeded(result(&spec)),
            later,
        )
        .unwrap();
    // The trial succeeded: it resumes from nothing, and keeps its latest checkpoint only (for
    // a grid that asks for more epochs later, `lineage`).
    assert!(!effects.contains(&Effect::DropCheckpoint("c-a1-e3".into())));
    assert!(effects.contains(&Effect::DropCheckpoint("c-a1-e2".into())));
    let t = s.trial(spec.id).unwrap();
    assert!(t.checkpoint().is_none() && t.previous_checkpoint().is_none());
    let kept = t.state.success().and_then(|s| s.checkpoint.as_deref());
    assert_eq!(kept, Some(&checkpoint(3, 1)));
}

#[test]
fn cancel_ends_pending_and_leased_trials_and_names_unknown_ones() {
    let now = Instant::now();
    let mut s = Scheduler::new(specs(3, 2), config());
    let w = worker(&mut s, now, 1);
    let (running, attempt) = assigned(s.lease(w, now).unwrap());
    let names: Vec<String> = s.trials().iter().map(|t| t.spec.name.clone()).collect();
    let (effects, unknown) = s.cancel(&CancelSelector {
        trials: vec![names[0].clone(), names[1].clone(), "nope".into()],
        reason: "enough".into(),
        ..CancelSelector::default()
    });
    assert_eq!(unknown, ["nope"]);
    assert_eq!(
        effects
            .iter()
            .filter(|e| matches!(e, Effect::TrialEnded(_)))
            .count(),
        2
    );
    let t = s.trial(running.id).unwrap();
    assert_eq!(
        t.state,
        TrialState::Failed {
            reason: "cancelled: enough".into(),
            cancelled: true,
            checkpoints: Checkpoints::NONE,
        }
    );
    assert_eq!(t.failures[0].kind, FailureKind::Cancelled);
    // The worker's lease is revoked at its next heartbeat, and its writes are refused.
    assert_eq!(
        s.heartbeat(w, &[(running.id, attempt)], now),
        Ok(vec![(running.id, attempt)])
    );
    assert!(
        s.report_epoch(LeaseKey::new(w, running.id, attempt), metrics(1), now)
            .is_err()
    );
    // The last one ends the sweep.
    let (effects, _) = s.cancel(&CancelSelector {
        all: true,
        ..CancelSelector::default()
    });
    assert!(effects.contains(&Effect::SweepFinished));
    assert!(s.is_finished());
    // Cancelling ended trials changes nothing.
    let (effects, _) = s.cancel(&CancelSelector {
        all: true,
        ..CancelSelector::default()
    });
    assert!(effects.is_empty());
}

#[test]
fn restored_leases_run_on_for_the_grace_and_their_workers_may_renew_them() {
    let t0 = Instant::now();
    let mut s = Scheduler::new(specs(2, 2), config());
    let w = worker(&mut s, t0, 1);
    let (spec, attempt) = assigned(s.lease(w, t0).unwrap());
    s.report_epoch(LeaseKey::new(w, spec.id, attempt), metrics(1), t0)
        .unwrap();
    let trials = s.trials().to_vec();
    let workers = vec![(w, "w".to_owned(), "cpu".to_owned(), 1)];
    let t1 = t0 + Duration::from_secs(100);
    let mut r = Scheduler::restore(
        trials.clone(),
        workers.clone(),
        config(),
        Duration::from_secs(2),
        t1,
    );
    // Not renewed, a restored lease ends after the grace, not a whole TTL.
    let mut idle = Scheduler::restore(trials, workers, config(), Duration::from_secs(2), t1);
    assert!(
        idle.expire_leases(t1 + Duration::from_secs(2))
            .contains(&Effect::Requeued(spec.id))
    );
    assert_eq!(r.counts().leased, 1);
    assert_eq!(r.counts().pending, 1);
    // The worker comes back and carries on under the same lease.
    assert_eq!(
        r.heartbeat(w, &[(spec.id, attempt)], t1 + Duration::from_secs(1)),
        Ok(vec![])
    );
    r.report_epoch(
        LeaseKey::new(w, spec.id, attempt),
        metrics(2),
        t1 + Duration::from_secs(1),
    )
    .unwrap();
    // Renewed, it lives a whole TTL from its last renewal, then expires.
    let effects = r.expire_leases(t1 + Duration::from_secs(1) + Duration::from_secs(10));
    assert!(effects.contains(&Effect::Requeued(spec.id)));
}

#[test]
fn happy_path_runs_every_trial_once() {
    let now = Instant::now();
    let mut s = Scheduler::new(specs(3, 2), config());
    let w = worker(&mut s, now, 1);
    for _ in 0..3 {
        let (spec, attempt) = assigned(s.lease(w, now).unwrap());
        assert_eq!(attempt, 1);
        // One slot: a second lease must wait.
        assert!(matches!(s.lease(w, now).unwrap(), LeaseOutcome::Wait(_)));
        s.report_epoch(LeaseKey::new(w, spec.id, 1), metrics(1), now)
            .unwrap();
        let effects = s
            .complete(
                LeaseKey::new(w, spec.id, 1),
                Outcome::Succeeded(result(&spec)),
                now,
            )
            .unwrap();
        assert!(effects.contains(&Effect::TrialEnded(spec.id)));
        // Resending the same result is idempotent.
        assert_eq!(
            s.complete(
                LeaseKey::new(w, spec.id, 1),
                Outcome::Succeeded(result(&spec)),
                now
            ),
            Ok(Vec::new())
        );
    }
    assert!(s.is_finished());
    assert_eq!(s.counts().succeeded, 3);
    assert_eq!(s.lease(w, now).unwrap(), LeaseOutcome::Finished);
    assert!(s.all_workers_told(now));
}

#[test]
fn expired_lease_is_leased_again_and_the_old_attempt_is_refused() {
    let t0 = Instant::now();
    let mut s = Scheduler::new(specs(1, 1), config());
    let a = worker(&mut s, t0, 1);
    let b = worker(&mut s, t0, 1);
    let (spec, _) = assigned(s.lease(a, t0).unwrap());
    // Heartbeats keep it alive.
    let t1 = t0 + Duration::from_secs(8);
    assert_eq!(s.heartbeat(a, &[(spec.id, 1)], t1), Ok(vec![]));
    assert!(s.expire_leases(t1 + Duration::from_secs(5)).is_empty());
    // Silence past the TTL expires it.
    let t2 = t1 + Duration::from_secs(11);
    assert_eq!(s.expire_leases(t2), vec![Effect::Requeued(spec.id)]);
    let (again, attempt) = assigned(s.lease(b, t2).unwrap());
    assert_eq!((again.id, attempt), (spec.id, 2));
    // The zombie's writes are refused, and it is told to stop.
    assert!(matches!(
        s.report_epoch(LeaseKey::new(a, spec.id, 1), metrics(1), t2),
        Err(StateError::StaleLease { .. })
    ));
    assert!(matches!(
        s.complete(
            LeaseKey::new(a, spec.id, 1),
            Outcome::Succeeded(result(&spec)),
            t2
        ),
        Err(StateError::StaleLease { .. })
    ));
    assert_eq!(s.heartbeat(a, &[(spec.id, 1)], t2), Ok(vec![(spec.id, 1)]));
    // Another worker cannot write to b's lease either.
    assert!(matches!(
        s.report_epoch(LeaseKey::new(a, spec.id, 2), metrics(1), t2),
        Err(StateError::NotLeaseHolder { .. })
    ));
    s.complete(
        LeaseKey::new(b, spec.id, 2),
        Outcome::Succeeded(result(&spec)),
        t2,
    )
    .unwrap();
    assert!(s.is_finished());
    let t = s.trial(spec.id).unwrap();
    assert_eq!(t.attempts, 2);
    assert_eq!(t.failures.len(), 1);
    assert_eq!(t.failures[0].kind, FailureKind::LeaseExpired);
}

#[test]
fn failures_follow_their_policy() {
    let now = Instant::now();
    let mut s = Scheduler::new(specs(3, 1), config());
    let w = worker(&mut s, now, 3);
    let (nan, _) = assigned(s.lease(w, now).unwrap());
    let (flaky, _) = assigned(s.lease(w, now).unwrap());
    let (shut, _) = assigned(s.lease(w, now).unwrap());
    let fail = |kind| Outcome::Failed {
        kind,
        message: format!("{kind:?}"),
    };
    // The trial's own fault fails it at once.
    s.complete(
        LeaseKey::new(w, nan.id, 1),
        fail(FailureKind::NonFiniteLoss),
        now,
    )
    .unwrap();
    assert!(matches!(
        s.trial(nan.id).unwrap().state,
        TrialState::Failed { .. }
    ));
    // A shutdown is free: it never uses up attempts.
    for attempt in 1..=5 {
        s.complete(
            LeaseKey::new(w, shut.id, attempt),
            fail(FailureKind::WorkerShutdown),
            now,
        )
        .unwrap();
        let (again, next) = assigned(s.lease(w, now).unwrap());
        assert_eq!((again.id, next), (shut.id, attempt + 1));
    }
    // An internal error after training started is retried up to max_attempts (2), then fails
    // for good.
    s.report_epoch(LeaseKey::new(w, flaky.id, 1), metrics(1), now)
        .unwrap();
    s.complete(
        LeaseKey::new(w, flaky.id, 1),
        fail(FailureKind::Internal),
        now,
    )
    .unwrap();
    let (again, attempt) = assigned(s.lease(w, now).unwrap());
    assert_eq!((again.id, attempt), (flaky.id, 2));
    s.report_epoch(LeaseKey::new(w, flaky.id, 2), metrics(1), now)
        .unwrap();
    s.complete(
        LeaseKey::new(w, flaky.id, 2),
        fail(FailureKind::Internal),
        now,
    )
    .unwrap();
    match &s.trial(flaky.id).unwrap().state {
        TrialState::Failed { reason, .. } => {
            assert!(reason.starts_with("failed 2 times"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(s.counts().failed, 2);
}

#[test]
fn results_are_validated() {
    let now = Instant::now();
    let mut s = Scheduler::new(specs(1, 2), config());
    let w = worker(&mut s, now, 1);
    let (spec, _) = assigned(s.lease(w, now).unwrap());
    let mut r = result(&spec);
    r.epochs.pop();
    assert!(matches!(
        s.complete(LeaseKey::new(w, spec.id, 1), Outcome::Succeeded(r), now),
        Err(StateError::InvalidReport {
            field: "result.epochs",
            ..
        })
    ));
    let mut r = result(&spec);
    r.last.test_confusion.counts[0] += 1;
    assert!(matches!(
        s.complete(LeaseKey::new(w, spec.id, 1), Outcome::Succeeded(r), now),
        Err(StateError::InvalidReport {
            field: "result.test_confusion",
            ..
        })
    ));
    let mut r = result(&spec);
    r.last.train_accuracy = 50.0;
    assert!(
        s.complete(LeaseKey::new(w, spec.id, 1), Outcome::Succeeded(r), now)
            .is_err()
    );
    assert!(matches!(
        s.report_epoch(LeaseKey::new(w, spec.id, 1), metrics(3), now),
        Err(StateError::InvalidReport {
            field: "metrics.epoch",
            ..
        })
    ));
    // Still leased: a valid result is accepted afterwards.
    s.complete(
        LeaseKey::new(w, spec.id, 1),
        Outcome::Succeeded(result(&spec)),
        now,
    )
    .unwrap();
    assert!(s.is_finished());
    let unknown = WorkerId::random();
    assert_eq!(
        s.lease(unknown, now),
        Err(StateError::UnknownWorker(unknown))
    );
}

#[test]
fn an_accepted_epoch_is_never_replaced() {
    let now = Instant::now();
    let mut s = Scheduler::new(specs(1, 2), config());
    let w = worker(&mut s, now, 1);
    let (spec, _) = assigned(s.lease(w, now).unwrap());
    s.take_changes();
    s.report_epoch(LeaseKey::new(w, spec.id, 1), metrics(1), now)
        .unwrap();
    assert_eq!(s.take_changes().len(), 1, "the epoch");
    // The same again (an answer was lost): accepted, nothing to write.
    s.report_epoch(LeaseKey::new(w, spec.id, 1), metrics(1), now)
        .unwrap();
    assert!(s.take_changes().is_empty());
    // Other values: refused, the first stays.
    let changed = EpochMetrics {
        test_accuracy: 99.0,
        ..metrics(1)
    };
    let e = s
        .report_epoch(LeaseKey::new(w, spec.id, 1), changed, now)
        .unwrap_err();
    assert!(
        matches!(&e, StateError::InvalidReport { field: "metrics", message }
            if message.contains("epoch 1 was accepted") && message.contains("test 70 %")
                && message.contains("test 99 %")),
        "{e}"
    );
    assert!(s.take_changes().is_empty());
    assert_eq!(s.trial(spec.id).unwrap().epochs, [metrics(1)]);
    // A result whose curve differs from what was accepted is refused too.
    let mut r = result(&spec);
    r.epochs[0].seconds = 7.0;
    assert!(matches!(
        s.complete(LeaseKey::new(w, spec.id, 1), Outcome::Succeeded(r), now),
        Err(StateError::InvalidReport {
            field: "result.epochs",
            ..
        })
    ));
    s.complete(
        LeaseKey::new(w, spec.id, 1),
        Outcome::Succeeded(result(&spec)),
        now,
    )
    .unwrap();
    assert_eq!(s.trial(spec.id).unwrap().epochs, [metrics(1), metrics(2)]);
}

#[derive(Debug, Clone)]
enum Op {
    Lease(usize),
    Epoch(usize),
    Succeed(usize),
    Fail(usize, usize),
    Heartbeat(usize),
    Advance(u64),
    Retry,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0..3usize).prop_map(Op::Lease),
        (0..3usize).prop_map(Op::Epoch),
        (0..3usize).prop_map(Op::Succeed),
        (0..3usize, 0..FailureKind::ALL.len()).prop_map(|(w, k)| Op::Fail(w, k)),
        (0..3usize).prop_map(Op::Heartbeat),
        (0..15_000u64).prop_map(Op::Advance),
        Just(Op::Retry),
    ]
}

proptest! {
    /// Whatever the workers do and however time passes: a trial never has two live leases, a
    /// worker never holds more leases than slots, every trial is counted in exactly one state,
    /// and a finished sweep has every trial terminal.
    #[test]
    fn invariants_hold_under_any_schedule(ops in proptest::collection::vec(op(), 1..200)) {
        let mut now = Instant::now();
        let mut s = Scheduler::new(specs(5, 1), config());
        let workers: Vec<WorkerId> = (0..3).map(|i| worker(&mut s, now, 1 + i as u32)).collect();
        // What each worker believes it holds.
        let mut held: Vec<Vec<(TrialSpec, u32)>> = vec![Vec::new(); 3];
        for op in ops {
            match op {
                Op::Lease(w) => {
                    match s.lease(workers[w], now).unwrap() {
                        LeaseOutcome::Assigned { spec, attempt, .. } => {
                            // Never a trial of a dataset the worker said it cannot load.
                            prop_assert!(s.workers()[&workers[w]].can_run(spec.dataset));
                            held[w].push((spec, attempt));
                        }
                        LeaseOutcome::CannotRun(_) => {
                            // Told so only when no trial left is one it can run.
                            let wk = &s.workers()[&workers[w]];
                            prop_assert!(wk.problem().is_some());
                            prop_assert!(!s.trials().iter().any(|t| !t.is_terminal() && wk.can_run(t.spec.dataset)));
                        }
                        LeaseOutcome::Wait(_) | LeaseOutcome::Finished => {}
                    }
                }
                Op::Epoch(w) => {
                    if let Some((spec, a)) = held[w].first() {
                        let _ = s.report_epoch(LeaseKey::new(workers[w], spec.id, *a), metrics(1), now);
                    }
                }
                Op::Succeed(w) => {
                    if !held[w].is_empty() {
                        let (spec, a) = held[w].remove(0);
                        let _ = s.complete(LeaseKey::new(workers[w], spec.id, a), Outcome::Succeeded(result(&spec)), now);
                    }
                }
                Op::Fail(w, k) => {
                    if !held[w].is_empty() {
                        let (spec, a) = held[w].remove(0);
                        let kind = FailureKind::ALL[k];
                        let _ = s.complete(LeaseKey::new(workers[w], spec.id, a), Outcome::Failed { kind, message: "x".into() }, now);
                    }
                }
                Op::Retry => {
                    let before = s.counts().failed;
                    let (effects, _) = s.retry(&RetrySelector { failed: true, include_cancelled: true, ..RetrySelector::default() });
                    prop_assert_eq!(effects.len(), before);
                    prop_assert_eq!(s.counts().failed, 0);
                }
                Op::Heartbeat(w) => {
                    let leases: Vec<_> = held[w].iter().map(|(t, a)| (t.id, *a)).collect();
                    let revoked = s.heartbeat(workers[w], &leases, now).unwrap();
                    held[w].retain(|(t, a)| !revoked.contains(&(t.id, *a)));
                }
                Op::Advance(ms) => {
                    now += Duration::from_millis(ms);
                    s.expire_leases(now);
                }
            }
            let c = s.counts();
            prop_assert_eq!(c.pending + c.leased + c.succeeded + c.failed, 5);
            let mut live = std::collections::HashSet::new();
            for t in s.trials() {
                if let TrialState::Leased { lease: l, .. } = &t.state {
                    prop_assert!(live.insert(t.spec.id));
                    prop_assert!(t.attempts == l.attempt);
                    prop_assert!(s.workers()[&l.worker].leases.contains(&t.spec.id));
                }
                if let TrialState::Succeeded(_) = t.state {
                    // Its curve is whole: every epoch from the first to the last.
                    let epochs: Vec<u32> = t.epochs.iter().map(|m| m.epoch).collect();
                    prop_assert_eq!(epochs, (1..=t.spec.params.epochs).collect::<Vec<u32>>());
                }
            }
            for w in s.workers().values() {
                prop_assert!(w.leases.len() <= w.slots as usize);
            }
            prop_assert_eq!(s.is_finished(), c.succeeded + c.failed == 5);
            // Every pending trial is queued once.
            prop_assert_eq!(s.pending_by_dataset().map(|(_, n)| n).sum::<usize>(), c.pending);
        }
    }
}

#[test]
fn a_succeeded_trial_without_weights_goes_back_to_the_queue_for_free() {
    let mut s = Scheduler::new(specs(2, 2), config());
    let now = Instant::now();
    let w = worker(&mut s, now, 1);
    let (spec, attempt) = assigned(s.lease(w, now).unwrap());
    for e in 1..=2 {
        s.report_epoch(LeaseKey::new(w, spec.id, attempt), metrics(e), now)
            .unwrap();
    }
    s.complete(
        LeaseKey::new(w, spec.id, attempt),
        Outcome::Succeeded(result(&spec)),
        now,
    )
    .unwrap();
    s.take_changes();
    assert_eq!(s.counts().succeeded, 1);

    assert!(s.retrain_missing_weights(spec.id, "gone".into()));
    let t = s.trial(spec.id).unwrap();
    assert!(matches!(t.state, TrialState::Pending { .. }));
    assert!(t.scores().is_none() && t.epochs.is_empty() && t.state.weights().is_none());
    assert_eq!(
        t.failures.last().map(|f| f.kind),
        Some(FailureKind::WeightsMissing)
    );
    assert_eq!(
        t.counted_attempts, 0,
        "free: it does not use up max_attempts"
    );
    assert_eq!(
        s.take_changes(),
        [
            Change::Supersede {
                trial: spec.id,
                after: 0
            },
            Change::Trial(spec.id)
        ]
    );
    assert_eq!(s.counts().pending, 2);
    assert!(!s.is_finished());
    // Only a succeeded trial: a pending one is left as it is.
    assert!(!s.retrain_missing_weights(spec.id, "gone".into()));
    // Leased again (after the trial that was waiting), it trains as a new attempt.
    let w2 = worker(&mut s, now, 2);
    let leased: Vec<(TrialId, u32)> = (0..2)
        .map(|_| {
            let (t, a) = assigned(s.lease(w2, now).unwrap());
            (t.id, a)
        })
        .collect();
    assert_eq!(leased[1], (spec.id, 2));
    assert_eq!(s.trial(spec.id).unwrap().resumed_from, 0);
}

#[test]
fn storage_failures_are_counted_until_a_write_works() {
    let mut s = Scheduler::new(specs(1, 1), config());
    let now = Instant::now();
    assert!(s.storage_failed(Storage::Weights, "disk full".into(), now));
    assert!(!s.storage_failed(
        Storage::Weights,
        "still full".into(),
        now + Duration::from_secs(1)
    ));
    assert!(s.storage_failed(Storage::Results, "read-only".into(), now));
    let failures: Vec<(Storage, u64, &str)> = s
        .storage_failures()
        .map(|(what, f)| (what, f.count, f.message.as_str()))
        .collect();
    assert_eq!(
        failures,
        [
            (Storage::Weights, 2, "still full"),
            (Storage::Results, 1, "read-only")
        ]
    );
    assert_eq!(
        s.storage_worked(Storage::Weights).map(|f| f.since),
        Some(now)
    );
    assert_eq!(s.storage_worked(Storage::Weights), None);
    assert_eq!(s.storage_failures().count(), 1);
    // Storage never touches the trials' state.
    assert!(s.take_changes().is_empty());
}
