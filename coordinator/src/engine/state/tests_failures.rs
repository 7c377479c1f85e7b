//! Tests of whose failure is whose: checkpoints set aside, attempts that never started, workers
//! that cannot run some trials, and retrying trials that failed for good.

use std::time::{Duration, Instant};

use sweep_common::failure::UNSTARTED_ATTEMPTS;
use sweep_common::grid::Grid;
use sweep_common::{DatasetKind, TrialSpec};

use super::tests::{assigned, checkpoint, config, metrics, result, specs, worker};
use super::*;

fn fail(kind: FailureKind, message: &str) -> Outcome {
    Outcome::Failed {
        kind,
        message: message.to_owned(),
    }
}

/// Two CIFAR-10 trials, then two Fashion-MNIST ones.
fn two_datasets() -> Vec<TrialSpec> {
    let text = "[sweep]\nname='s'\n\
        [[experiment]]\nname='c'\ndataset='cifar10'\n[experiment.fixed]\nepochs=1\n[experiment.grid]\nseed=[1,2]\n\
        [[experiment]]\nname='f'\ndataset='fashion-mnist'\n[experiment.fixed]\nepochs=1\n[experiment.grid]\nseed=[1,2]\n";
    Grid::parse(text, "t.toml")
        .unwrap()
        .trials()
        .cloned()
        .collect()
}

#[test]
fn an_unusable_checkpoint_is_set_aside_and_the_trial_falls_back_to_the_previous_one() {
    let t0 = Instant::now();
    let mut s = Scheduler::new(specs(1, 6), config());
    let a = worker(&mut s, t0, 1);
    let (spec, _) = assigned(s.lease(a, t0).unwrap());
    for e in 1..=4 {
        s.report_epoch(LeaseKey::new(a, spec.id, 1), metrics(e), t0)
            .unwrap();
    }
    s.record_checkpoint(a, spec.id, checkpoint(2, 1), t0)
        .unwrap();
    s.record_checkpoint(a, spec.id, checkpoint(4, 1), t0)
        .unwrap();
    // A shuts down; the next attempt is to resume after epoch 4.
    s.complete(
        LeaseKey::new(a, spec.id, 1),
        fail(FailureKind::WorkerShutdown, "bye"),
        t0,
    )
    .unwrap();
    let LeaseOutcome::Assigned { resume, .. } = s.lease(a, t0).unwrap() else {
        panic!("an assignment");
    };
    assert_eq!(resume, Some(checkpoint(4, 1)));
    s.take_changes();
    // Its checkpoint is unusable: set aside, and the trial goes back to epoch 2.
    let effects = s
        .complete(
            LeaseKey::new(a, spec.id, 2),
            fail(FailureKind::CheckpointUnusable, "truncated"),
            t0,
        )
        .unwrap();
    assert!(effects.contains(&Effect::SetAsideCheckpoint("c-a1-e4".into())));
    assert!(effects.contains(&Effect::Requeued(spec.id)));
    assert!(s.take_changes().contains(&Change::Supersede {
        trial: spec.id,
        after: 2
    }));
    let t = s.trial(spec.id).unwrap();
    assert_eq!(t.checkpoint(), Some(&checkpoint(2, 1)));
    assert_eq!(t.previous_checkpoint(), None);
    assert_eq!(t.epochs.len(), 2, "epochs 3 and 4 are trained again");
    assert_eq!(t.set_aside.len(), 1);
    assert_eq!(t.set_aside[0].checkpoint, checkpoint(4, 1));
    assert_eq!(t.set_aside[0].reason, "truncated");
    assert_eq!((t.counted_attempts, t.unstarted_attempts), (0, 1));
    // The next attempt resumes from epoch 2; if that one is unusable too, from the start.
    let LeaseOutcome::Assigned { resume, .. } = s.lease(a, t0).unwrap() else {
        panic!("an assignment");
    };
    assert_eq!(resume, Some(checkpoint(2, 1)));
    let effects = s
        .complete(
            LeaseKey::new(a, spec.id, 3),
            fail(FailureKind::CheckpointUnusable, "not a checkpoint"),
            t0,
        )
        .unwrap();
    assert!(effects.contains(&Effect::SetAsideCheckpoint("c-a1-e2".into())));
    let LeaseOutcome::Assigned { resume, .. } = s.lease(a, t0).unwrap() else {
        panic!("an assignment");
    };
    assert_eq!(
        resume, None,
        "set-aside checkpoints are never offered again"
    );
    assert!(s.trial(spec.id).unwrap().epochs.is_empty());
    for e in 1..=6 {
        s.report_epoch(LeaseKey::new(a, spec.id, 4), metrics(e), t0)
            .unwrap();
    }
    s.complete(
        LeaseKey::new(a, spec.id, 4),
        Outcome::Succeeded(result(&spec)),
        t0,
    )
    .unwrap();
    assert!(s.is_finished());
    assert_eq!(s.trial(spec.id).unwrap().set_aside.len(), 2);
}

#[test]
fn a_checkpoint_blamed_after_training_from_it_is_not_set_aside() {
    let t0 = Instant::now();
    let mut s = Scheduler::new(specs(1, 6), config());
    let a = worker(&mut s, t0, 1);
    let (spec, _) = assigned(s.lease(a, t0).unwrap());
    s.report_epoch(LeaseKey::new(a, spec.id, 1), metrics(1), t0)
        .unwrap();
    s.record_checkpoint(a, spec.id, checkpoint(1, 1), t0)
        .unwrap();
    s.report_epoch(LeaseKey::new(a, spec.id, 1), metrics(2), t0)
        .unwrap();
    let effects = s
        .complete(
            LeaseKey::new(a, spec.id, 1),
            fail(FailureKind::CheckpointUnusable, "?"),
            t0,
        )
        .unwrap();
    assert!(
        !effects
            .iter()
            .any(|e| matches!(e, Effect::SetAsideCheckpoint(_)))
    );
    let t = s.trial(spec.id).unwrap();
    assert_eq!(t.checkpoint(), Some(&checkpoint(1, 1)));
    assert_eq!(t.counted_attempts, 1, "it trained: a real failure");
}

#[test]
fn attempts_that_never_started_do_not_use_up_max_attempts_but_are_bounded() {
    let t0 = Instant::now();
    let mut s = Scheduler::new(specs(1, 2), config());
    let a = worker(&mut s, t0, 1);
    for attempt in 1..=UNSTARTED_ATTEMPTS {
        let (spec, got) = assigned(s.lease(a, t0).unwrap());
        assert_eq!(got, attempt);
        s.complete(
            LeaseKey::new(a, spec.id, attempt),
            fail(FailureKind::Internal, "cannot start"),
            t0,
        )
        .unwrap();
    }
    let t = &s.trials()[0];
    assert_eq!(t.counted_attempts, 0, "max_attempts (2) is untouched");
    match &t.state {
        TrialState::Failed {
            reason, cancelled, ..
        } => {
            assert!(!cancelled);
            assert_eq!(
                reason,
                &format!(
                    "{UNSTARTED_ATTEMPTS} attempts ended before their first epoch; last: cannot start"
                )
            );
        }
        other => panic!("{other:?}"),
    }
    // A lease that expires before its first epoch counts the same way.
    let mut s = Scheduler::new(specs(1, 2), config());
    let a = worker(&mut s, t0, 1);
    assigned(s.lease(a, t0).unwrap());
    s.expire_leases(t0 + Duration::from_secs(11));
    assert_eq!(
        (
            s.trials()[0].counted_attempts,
            s.trials()[0].unstarted_attempts
        ),
        (0, 1)
    );
}

#[test]
fn a_worker_that_cannot_load_a_dataset_gets_no_more_of_its_trials() {
    let t0 = Instant::now();
    let mut s = Scheduler::new(two_datasets(), config());
    let bad = worker(&mut s, t0, 1);
    let (cifar, _) = assigned(s.lease(bad, t0).unwrap());
    assert_eq!(cifar.dataset, DatasetKind::Cifar10);
    s.complete(
        LeaseKey::new(bad, cifar.id, 1),
        fail(FailureKind::Data, "cifar10 training set not found in /data"),
        t0,
    )
    .unwrap();
    let t = s.trial(cifar.id).unwrap();
    assert!(
        matches!(t.state, TrialState::Pending { .. }),
        "not the trial's fault"
    );
    assert_eq!((t.counted_attempts, t.unstarted_attempts), (0, 0));
    assert_eq!(
        s.workers()[&bad].problem().as_deref(),
        Some("cannot run cifar10 trials: cifar10 training set not found in /data")
    );
    // It gets the Fashion-MNIST trials only, though the CIFAR-10 ones come first.
    for _ in 0..2 {
        let (spec, attempt) = assigned(s.lease(bad, t0).unwrap());
        assert_eq!(spec.dataset, DatasetKind::FashionMnist);
        s.complete(
            LeaseKey::new(bad, spec.id, attempt),
            Outcome::Succeeded(result(&spec)),
            t0,
        )
        .unwrap();
    }
    // Only trials it cannot run are left: it is told to stop, saying why.
    match s.lease(bad, t0).unwrap() {
        LeaseOutcome::CannotRun(reason) => {
            assert!(reason.contains("cannot run cifar10 trials"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    // A good worker trains them; the failed attempt stays in the history.
    let good = worker(&mut s, t0, 1);
    let (spec, attempt) = assigned(s.lease(good, t0).unwrap());
    assert_eq!((spec.id, attempt), (cifar.id, 2));
    // A restart remembers who cannot run what (from the recorded failures).
    let workers = vec![
        (bad, "bad".to_owned(), "cpu".to_owned(), 1),
        (good, "good".to_owned(), "cpu".to_owned(), 1),
    ];
    let r = Scheduler::restore(
        s.trials().to_vec(),
        workers,
        config(),
        Duration::from_secs(1),
        t0,
    );
    assert!(!r.workers()[&bad].can_run(DatasetKind::Cifar10));
    assert!(r.workers()[&good].can_run(DatasetKind::Cifar10));
}

#[test]
fn a_failed_device_stops_the_worker_not_the_trial() {
    let t0 = Instant::now();
    let mut s = Scheduler::new(specs(2, 1), config());
    let w = worker(&mut s, t0, 1);
    let (spec, _) = assigned(s.lease(w, t0).unwrap());
    s.complete(
        LeaseKey::new(w, spec.id, 1),
        fail(FailureKind::Device, "CUDA error: ECC"),
        t0,
    )
    .unwrap();
    assert!(matches!(
        s.trial(spec.id).unwrap().state,
        TrialState::Pending { .. }
    ));
    assert_eq!(
        s.lease(w, t0).unwrap(),
        LeaseOutcome::CannotRun("takes no more trials: CUDA error: ECC".into())
    );
    // The sweep is not finished: another worker takes the trial first.
    let other = worker(&mut s, t0, 1);
    assert_eq!(assigned(s.lease(other, t0).unwrap()).0.id, spec.id);
}

#[test]
fn retry_requeues_failed_trials_keeping_their_history_and_checkpoint() {
    let t0 = Instant::now();
    let mut s = Scheduler::new(specs(3, 4), config());
    let w = worker(&mut s, t0, 3);
    let (flaky, _) = assigned(s.lease(w, t0).unwrap());
    let (nan, _) = assigned(s.lease(w, t0).unwrap());
    let (cancelled, _) = assigned(s.lease(w, t0).unwrap());
    // flaky trains 2 epochs, checkpoints, and fails twice (max_attempts is 2).
    for attempt in 1..=2 {
        if attempt == 2 {
            assert_eq!(assigned(s.lease(w, t0).unwrap()).0.id, flaky.id);
        }
        for e in (2 * attempt - 1)..=(2 * attempt).min(3) {
            s.report_epoch(LeaseKey::new(w, flaky.id, attempt), metrics(e), t0)
                .unwrap();
        }
        if attempt == 1 {
            s.record_checkpoint(w, flaky.id, checkpoint(2, 1), t0)
                .unwrap();
        }
        s.complete(
            LeaseKey::new(w, flaky.id, attempt),
            fail(FailureKind::OutOfMemory, "oom"),
            t0,
        )
        .unwrap();
    }
    s.report_epoch(LeaseKey::new(w, nan.id, 1), metrics(1), t0)
        .unwrap();
    s.complete(
        LeaseKey::new(w, nan.id, 1),
        fail(FailureKind::NonFiniteLoss, "nan"),
        t0,
    )
    .unwrap();
    s.cancel(&CancelSelector {
        trials: vec![cancelled.name.clone()],
        ..CancelSelector::default()
    });
    assert!(s.is_finished());
    assert_eq!(s.counts().failed, 3);
    assert!(
        s.trial(flaky.id).unwrap().checkpoint().is_some(),
        "kept for a retry"
    );
    s.take_changes();

    // --failed leaves the cancelled trial; unknown names are reported.
    let (effects, unknown) = s.retry(&RetrySelector {
        trials: vec!["nope".into()],
        failed: true,
        ..RetrySelector::default()
    });
    assert_eq!(unknown, ["nope"]);
    assert_eq!(
        effects,
        [Effect::Requeued(flaky.id), Effect::Requeued(nan.id)]
    );
    assert!(!s.is_finished());
    assert!(s.take_changes().contains(&Change::Supersede {
        trial: flaky.id,
        after: 2
    }));
    let t = s.trial(flaky.id).unwrap();
    assert!(matches!(t.state, TrialState::Pending { .. }));
    assert_eq!(t.counted_attempts, 0);
    assert_eq!(t.failures.len(), 2, "the history stays");
    assert_eq!(t.epochs.len(), 2, "the checkpoint's epochs stay");
    // The next lease goes on from the last attempt and resumes from the checkpoint.
    let LeaseOutcome::Assigned {
        spec,
        attempt,
        resume,
    } = s.lease(w, t0).unwrap()
    else {
        panic!("an assignment");
    };
    assert_eq!(
        (spec.id, attempt, resume),
        (flaky.id, 3, Some(checkpoint(2, 1)))
    );
    // Naming a cancelled trial retries it; retrying what has not failed changes nothing.
    let (effects, _) = s.retry(&RetrySelector {
        trials: vec![cancelled.name.clone(), flaky.name.clone()],
        ..RetrySelector::default()
    });
    assert_eq!(effects, [Effect::Requeued(cancelled.id)]);
    assert_eq!(s.counts().failed, 0);
    assert_eq!(s.counts().pending + s.counts().leased, 3);
}

#[test]
fn retry_by_experiment_leaves_cancelled_trials_unless_asked() {
    let t0 = Instant::now();
    let mut s = Scheduler::new(two_datasets(), config());
    let (effects, _) = s.cancel(&CancelSelector {
        experiments: vec!["c".into()],
        ..CancelSelector::default()
    });
    assert_eq!(effects.len(), 2);
    let by_experiment = |include_cancelled| RetrySelector {
        experiments: vec!["c".into()],
        include_cancelled,
        ..RetrySelector::default()
    };
    assert!(s.retry(&by_experiment(false)).0.is_empty());
    assert_eq!(s.retry(&by_experiment(true)).0.len(), 2);
    let w = worker(&mut s, t0, 1);
    assert_eq!(
        assigned(s.lease(w, t0).unwrap()).0.dataset,
        DatasetKind::FashionMnist,
        "retried trials go after those already waiting"
    );
}
