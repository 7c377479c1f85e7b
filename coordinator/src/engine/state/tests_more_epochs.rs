//! Tests of an operator's promotion to more epochs (`more_epochs.rs`): what it refuses (and that
//! a refusal changes nothing), a succeeded trial continued under its new id, and a stopped
//! configuration promoted whole, which its rule then stops no more below the new epochs.

use std::collections::HashMap;
use std::time::Instant;

use sweep_common::grid::Grid;
use sweep_common::{EpochMetrics, TrialId, TrialSpec, WorkerId};

use super::tests::{assigned, checkpoint, config, metrics, result, worker};
use super::*;

fn parse(text: &str) -> Vec<TrialSpec> {
    let head = "[sweep]\nname='s'\n[[experiment]]\nname='e'\ndataset='fashion-mnist'\n";
    let g = Grid::parse(&format!("{head}{text}"), "t.toml").unwrap();
    g.trials().cloned().collect()
}

/// Trains trial `spec` (leased by `w` under `attempt`) to its end, checkpointed after
/// `checkpointed` epochs (0: never).
fn succeed(s: &mut Scheduler, w: WorkerId, spec: &TrialSpec, attempt: u32, checkpointed: u32) {
    let now = Instant::now();
    let key = LeaseKey::new(w, spec.id, attempt);
    for e in 1..=spec.params.epochs {
        s.report_epoch(key, metrics(e), now).unwrap();
        if e == checkpointed {
            s.record_checkpoint(w, spec.id, checkpoint(e, attempt), now)
                .unwrap();
        }
    }
    s.complete(key, Outcome::Succeeded(result(spec)), now)
        .unwrap();
}

/// The reason of a refusal to promote `name` to `epochs` epochs, checked to change nothing.
fn refused(s: &mut Scheduler, name: &str, epochs: u32) -> String {
    s.take_changes();
    let err = s
        .check_more_epochs(&[name.to_owned()], epochs)
        .expect_err("refused");
    assert!(s.take_changes().is_empty(), "a refusal changes nothing");
    match err {
        StateError::CannotPromote {
            trial,
            epochs: e,
            reason,
        } => {
            assert_eq!((trial.as_str(), e), (name, epochs));
            reason
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_succeeded_trial_continues_from_its_checkpoint_under_its_new_id() {
    let specs = parse("[experiment.fixed]\nepochs=4\n[experiment.grid]\nseed=[1,2]\n");
    let mut s = Scheduler::new(specs, config());
    let now = Instant::now();
    let w = worker(&mut s, now, 1);
    let (spec, attempt) = assigned(s.lease(w, now).unwrap());
    succeed(&mut s, w, &spec, attempt, 3);
    s.take_changes();

    let plan = s
        .check_more_epochs(std::slice::from_ref(&spec.name), 6)
        .unwrap();
    let (effects, ids) = s.more_epochs(plan, HashMap::new());
    let mut grown = spec.clone();
    grown.params.epochs = 6;
    grown.id = grown.content_id();
    assert_eq!(ids, [grown.id]);
    assert!(effects.contains(&Effect::Requeued(grown.id)));
    assert!(s.trial(spec.id).is_none(), "renamed");
    let t = s.trial(grown.id).unwrap();
    assert_eq!(t.spec, grown);
    assert!(matches!(t.state, TrialState::Pending { .. }));
    assert_eq!(t.epochs.len(), 3, "its curve up to the checkpoint");
    assert_eq!(s.promoted_epochs(&grown), Some(6));
    let changes = s.take_changes();
    assert_eq!(
        changes[0],
        Change::Renamed {
            from: spec.id,
            to: grown.id
        }
    );
    assert!(changes.contains(&Change::Supersede {
        trial: grown.id,
        after: 3
    }));
    // First in the queue, resuming from its checkpoint, to 6 epochs.
    let LeaseOutcome::Assigned {
        spec: leased,
        attempt,
        resume,
    } = s.lease(w, now).unwrap()
    else {
        panic!("expected an assignment")
    };
    assert_eq!((leased.id, attempt), (grown.id, 2));
    assert_eq!(resume, Some(checkpoint(3, 1)));
    for e in 4..=6 {
        s.report_epoch(LeaseKey::new(w, grown.id, 2), metrics(e), now)
            .unwrap();
    }
    s.complete(
        LeaseKey::new(w, grown.id, 2),
        Outcome::Succeeded(result(&grown)),
        now,
    )
    .unwrap();
    assert_eq!(s.trial(grown.id).unwrap().epochs.len(), 6);
}

#[test]
fn promotions_that_cannot_continue_exactly_are_refused_and_change_nothing() {
    let specs = parse(
        "trial_name='{lr_schedule}_{seed}'\n[experiment.fixed]\nepochs=4\n\
         [experiment.grid]\nlr_schedule=['constant','cosine']\nseed=[1,2]\n",
    );
    let mut s = Scheduler::new(specs, config());
    let now = Instant::now();
    let w = worker(&mut s, now, 4);
    let leased: Vec<_> = (0..4).map(|_| assigned(s.lease(w, now).unwrap())).collect();
    let by_name = |n: &str| leased.iter().find(|(t, _)| t.name == n).unwrap().clone();
    let (kept, a) = by_name("constant_1");
    succeed(&mut s, w, &kept, a, 3);
    let (none, a) = by_name("constant_2");
    succeed(&mut s, w, &none, a, 0);
    let (cosine, a) = by_name("cosine_1");
    succeed(&mut s, w, &cosine, a, 3);

    assert_eq!(refused(&mut s, "nope", 6), "no trial has this name or id");
    let why = refused(&mut s, "cosine_1", 6);
    assert!(why.contains("spans the whole run"), "{why}");
    let why = refused(&mut s, "constant_1", 4);
    assert!(why.contains("trains 4 epochs already"), "{why}");
    let why = refused(&mut s, "constant_2", 6);
    assert!(why.contains("without keeping a checkpoint"), "{why}");
    let why = refused(&mut s, "cosine_2", 6);
    assert!(why.contains("only a stopped or succeeded trial"), "{why}");
    assert!(why.contains("attempt 1 is leased"), "{why}");
    // The one that may grow does.
    assert!(s.check_more_epochs(&["constant_1".into()], 6).is_ok());
}

/// A `tpe` experiment's trials are made again from their configurations, with the grid file's
/// epochs, at a restart: they are not promoted.
#[test]
fn a_trial_of_a_tpe_experiment_is_not_promoted() {
    let g = Grid::parse(
        "[sweep]\nname='s'\nseed=3\n[[experiment]]\nname='e'\ndataset='fashion-mnist'\n\
         checkpoint_every=1\n[experiment.fixed]\nepochs=2\n[experiment.sample]\ntrials=3\n\
         method='tpe'\n[experiment.sample.space]\nlearning_rate={ loguniform=[0.0001, 0.1] }\n",
        "t.toml",
    )
    .unwrap();
    let mut s = Scheduler::new(g.trials().cloned(), config());
    s.set_search(super::search::searches_of(&g));
    let now = Instant::now();
    let w = worker(&mut s, now, 1);
    let (spec, attempt) = assigned(s.lease(w, now).unwrap());
    succeed(&mut s, w, &spec, attempt, 1);
    let why = refused(&mut s, &spec.name, 4);
    assert!(
        why.contains("proposes its configurations at run time"),
        "{why}"
    );
}

#[test]
fn a_trial_of_a_grid_with_an_epochs_axis_is_not_promoted() {
    let specs = parse(
        "trial_name='t{epochs}'\n[experiment.fixed]\nseed=1\n[experiment.grid]\nepochs=[2,3]\n",
    );
    let mut s = Scheduler::new(specs, config());
    let now = Instant::now();
    let w = worker(&mut s, now, 1);
    let (spec, attempt) = assigned(s.lease(w, now).unwrap());
    assert_eq!(spec.name, "t2");
    succeed(&mut s, w, &spec, attempt, 1);
    let why = refused(&mut s, "t2", 4);
    assert!(
        why.contains("trial \"t3\" of the grid differs from it only in its epochs"),
        "{why}"
    );
}

fn report(s: &mut Scheduler, w: WorkerId, key: (TrialId, u32), epoch: u32, value: f64) {
    let m = EpochMetrics {
        test_accuracy: value,
        train_accuracy: value,
        ..metrics(epoch)
    };
    s.report_epoch(LeaseKey::new(w, key.0, key.1), m, Instant::now())
        .unwrap();
}

#[test]
fn a_stopped_configuration_is_promoted_whole_and_not_stopped_again_below_its_epochs() {
    let specs = parse(
        "trial_name='r{learning_rate}_{seed}'\ncheckpoint_every=1\n[experiment.fixed]\nepochs=4\n\
         [experiment.grid]\nlearning_rate=[0.001,0.002]\nseed=[1,2]\n\
         [experiment.stopping]\nrule='asha'\nmin_epochs=1\nreduction=2\n",
    );
    let rules: Vec<_> = {
        let g = Grid::parse(
            "[sweep]\nname='s'\n[[experiment]]\nname='e'\ndataset='fashion-mnist'\n\
             [experiment.stopping]\nrule='asha'\nmin_epochs=1\nreduction=2\n",
            "t.toml",
        )
        .unwrap();
        g.experiments
            .iter()
            .filter_map(|e| Some((e.name.clone(), e.stopping?)))
            .collect()
    };
    let mut s = Scheduler::new(specs, config());
    assert_eq!(s.set_stopping(&rules, &[]), 0);
    let now = Instant::now();
    let w = worker(&mut s, now, 4);
    let leased: Vec<_> = (0..4).map(|_| assigned(s.lease(w, now).unwrap())).collect();
    // 0.001 reaches the first rung first: its quota is 0, so it stops (both seeds; the
    // second stops before it can checkpoint); 0.002 ranks first there and goes on.
    for (spec, attempt) in &leased {
        let value = if spec.params.learning_rate == 0.001 {
            50.0
        } else {
            60.0
        };
        report(&mut s, w, (spec.id, *attempt), 1, value);
        let _ = s.record_checkpoint(w, spec.id, checkpoint(1, *attempt), now);
    }
    let stopped: Vec<String> = s
        .trials()
        .iter()
        .filter(|t| matches!(t.state, TrialState::Stopped { .. }))
        .map(|t| t.spec.name.clone())
        .collect();
    assert_eq!(stopped, ["r0.001_1", "r0.001_2"]);

    let plan = s.check_more_epochs(&["r0.001_2".into()], 8).unwrap();
    let (effects, ids) = s.more_epochs(plan, HashMap::new());
    assert_eq!(ids.len(), 2, "both seeds");
    let requeued = effects
        .iter()
        .filter(|e| matches!(e, Effect::Requeued(_)))
        .count();
    assert_eq!(requeued, 2);
    let rule = &s.stopping().rules[0];
    assert_eq!(
        rule.journal.last().map(|d| (d.epoch, d.action.clone())),
        Some((1, sweep_common::search::stopping::Action::Promote))
    );
    // Both seeds train on to 8 epochs; at rung 2 they arrive first (quota 0): the rule
    // stops them there, as it would any configuration, but not a promoted trial below 8.
    let mut promoted = Vec::new();
    for _ in 0..2 {
        let LeaseOutcome::Assigned {
            spec,
            attempt,
            resume,
        } = s.lease(w, now).unwrap()
        else {
            panic!("expected an assignment")
        };
        assert_eq!(spec.params.epochs, 8);
        let from = resume.map_or(0, |c| c.epoch);
        for e in from + 1..=2 {
            report(&mut s, w, (spec.id, attempt), e, 10.0);
        }
        promoted.push(spec);
    }
    let rule = &s.stopping().rules[0];
    assert!(
        rule.journal.iter().any(|d| d.epoch == 2
            && matches!(
                d.action,
                sweep_common::search::stopping::Action::Stop { .. }
            )),
        "{:?}",
        rule.journal
    );
    for spec in &promoted {
        let t = s.trial(spec.id).unwrap();
        assert!(t.state.lease().is_some(), "{}: {:?}", t.spec.name, t.state);
    }
}
