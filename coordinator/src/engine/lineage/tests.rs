//! Which recorded trial a grown trial adopts, and what it becomes.

use std::collections::HashMap;

use sweep_common::grid::Grid;
use sweep_common::{ConfusionMatrix, EpochMetrics, FinalMetrics, TrialSpec, WorkerId};

use super::*;
use crate::state::{Checkpoint, Success};

/// The one trial of a grid of `epochs` epochs with `schedule`.
fn spec(epochs: u32, schedule: &str) -> TrialSpec {
    let text = format!(
        "[sweep]\nname='s'\n[[experiment]]\nname='e'\ndataset='fashion-mnist'\n\
         [experiment.fixed]\nepochs={epochs}\nlr_schedule='{schedule}'\nseed=1\n"
    );
    let grid = Grid::parse(&text, "t.toml").unwrap();
    grid.trials().next().cloned().unwrap()
}

fn checkpoint(epoch: u32) -> Box<Checkpoint> {
    Box::new(Checkpoint {
        epoch,
        attempt: 1,
        file: format!("c{epoch}"),
        size: 1,
        sha256: "00".into(),
    })
}

fn curve(epochs: u32) -> Vec<EpochMetrics> {
    (1..=epochs)
        .map(|epoch| EpochMetrics {
            epoch,
            train_loss: 0.5,
            train_accuracy: 80.0,
            test_accuracy: 70.0,
            seconds: 0.1,
            scalars: Default::default(),
        })
        .collect()
}

/// A recorded trial of `spec` that succeeded after all its epochs, keeping `kept`.
fn succeeded(spec: TrialSpec, kept: Option<u32>) -> Trial {
    let mut t = Trial::new(spec);
    t.epochs = curve(t.spec.params.epochs).into();
    t.attempts = 1;
    t.counted_attempts = 1;
    let (scores, matrices) = Success::split(FinalMetrics {
        train_accuracy: 80.0,
        test_accuracy: 70.0,
        train_confusion: ConfusionMatrix::zeros(10),
        test_confusion: ConfusionMatrix::zeros(10),
        train_seconds: 1.0,
        dataset_images: 100,
    });
    t.state = TrialState::Succeeded(Box::new(Success {
        attempt: 1,
        worker: WorkerId::random(),
        wall_seconds: 1.0,
        scores,
        matrices,
        weights: Some("models/t.safetensors".into()),
        archived: None,
        checkpoint: kept.map(checkpoint),
    }));
    t
}

fn stopped(spec: TrialSpec, at: u32) -> Trial {
    let mut t = Trial::new(spec);
    t.epochs = curve(at).into();
    t.state = TrialState::Stopped {
        epoch: at,
        reason: "rung".into(),
        checkpoints: Checkpoints {
            latest: Some(checkpoint(at)),
            previous: None,
        },
    };
    t
}

fn adopts(new: &TrialSpec, old: &Trial) -> bool {
    verdict(new, old) == Verdict::Adopt { from: old.spec.id }
}

fn why(new: &TrialSpec, old: &Trial) -> String {
    match verdict(new, old) {
        Verdict::Afresh { why, .. } => why,
        v => panic!("adopted: {v:?}"),
    }
}

#[test]
fn more_epochs_with_a_checkpoint_adopt_succeeded_stopped_and_pending_trials() {
    let new = spec(4, "step");
    assert!(adopts(&new, &succeeded(spec(2, "step"), Some(1))));
    assert!(adopts(&new, &stopped(spec(3, "step"), 2)));
    let mut pending = Trial::new(spec(2, "constant"));
    pending.state = TrialState::Pending {
        checkpoints: Checkpoints {
            latest: Some(checkpoint(1)),
            previous: None,
        },
        ahead: None,
    };
    let new = spec(4, "constant");
    assert!(adopts(&new, &pending));
}

#[test]
fn schedules_over_the_whole_run_fewer_epochs_and_no_checkpoint_start_afresh() {
    for schedule in ["cosine", "onecycle"] {
        let w = why(&spec(4, schedule), &succeeded(spec(2, schedule), Some(1)));
        assert!(w.contains(schedule) && w.contains("whole run"), "{w}");
    }
    let w = why(&spec(2, "step"), &succeeded(spec(4, "step"), Some(3)));
    assert!(w.contains("fewer than the 4"), "{w}");
    let w = why(&spec(4, "step"), &succeeded(spec(2, "step"), None));
    assert!(w.contains("kept no checkpoint"), "{w}");
    let mut failed = Trial::new(spec(2, "step"));
    failed.state = TrialState::Failed {
        reason: "x".into(),
        cancelled: false,
        checkpoints: Checkpoints {
            latest: Some(checkpoint(1)),
            previous: None,
        },
    };
    let w = why(&spec(4, "step"), &failed);
    assert!(w.contains("had not ended (it was failed)"), "{w}");
}

#[test]
fn the_longest_recorded_trial_it_may_continue_is_adopted() {
    let (two, three, six) = (
        succeeded(spec(2, "step"), Some(2)),
        succeeded(spec(3, "step"), Some(2)),
        succeeded(spec(6, "step"), Some(6)),
    );
    let three_id = three.spec.id;
    let recorded: HashMap<_, _> = [two, three, six]
        .into_iter()
        .map(|t| (t.spec.id, t))
        .collect();
    let lineages = Lineages::of(recorded.values());
    let new = spec(4, "step");
    assert_eq!(
        lineages.verdict(&new, &recorded),
        Some(Verdict::Adopt { from: three_id })
    );
    // Another lineage has none.
    let mut other = spec(4, "step");
    other.experiment = "f".into();
    assert_eq!(lineages.verdict(&other, &recorded), None);
    // None it may continue: the longest one's reason.
    let v = lineages.verdict(&spec(2, "step"), &recorded);
    assert!(
        matches!(&v, Some(Verdict::Afresh { why, .. }) if why.contains("fewer than the 6")),
        "{v:?}"
    );
}

#[test]
fn a_grown_succeeded_trial_is_pending_from_its_kept_checkpoint() {
    let old = succeeded(spec(3, "step"), Some(2));
    let new = spec(5, "step");
    let (t, kept) = grow(old, new.clone());
    assert_eq!(kept, 2);
    assert_eq!(t.spec, new);
    assert_eq!(t.epochs, curve(2));
    assert_eq!((t.attempts, t.counted_attempts), (1, 0));
    assert_eq!(t.checkpoint().map(|c| c.epoch), Some(2));
    assert!(matches!(t.state, TrialState::Pending { ahead: None, .. }));
}

#[test]
fn a_grown_stopped_trial_stays_stopped_with_its_curve() {
    let old = stopped(spec(4, "step"), 2);
    let (t, kept) = grow(old, spec(8, "step"));
    assert_eq!(kept, 2);
    assert_eq!(t.epochs, curve(2));
    assert_eq!(t.spec.params.epochs, 8);
    assert!(matches!(t.state, TrialState::Stopped { epoch: 2, .. }));
}

/// An operator's promotion to more epochs holds at a restart: the grid's trial of the lineage
/// trains max(its epochs, the promotion's), under that content's id; only the longest trial of
/// a lineage (an epochs axis) is raised, and a lineage without a promotion is left alone.
#[test]
fn promotions_raise_the_longest_trial_of_their_lineage() {
    let promoted = spec(6, "step");
    let promotions = HashMap::from([(promoted.lineage_id().unwrap(), 6)]);
    let apply = |mut specs: Vec<TrialSpec>| {
        let raised = apply_promotions(specs.iter_mut(), &promotions);
        (raised, specs)
    };
    // The same grid (4 epochs): the promoted trial, by id.
    let (raised, specs) = apply(vec![spec(4, "step")]);
    assert_eq!((raised, &specs[..]), (1, &[promoted.clone()][..]));
    // A grid asking for more grows it further; one asking for fewer keeps the promotion.
    let (raised, specs) = apply(vec![spec(9, "step")]);
    assert_eq!((raised, &specs[..]), (0, &[spec(9, "step")][..]));
    let (raised, specs) = apply(vec![spec(2, "step")]);
    assert_eq!((raised, &specs[..]), (1, &[promoted.clone()][..]));
    // An epochs axis: only its longest trial.
    let (raised, specs) = apply(vec![spec(2, "step"), spec(3, "step")]);
    assert_eq!(raised, 1);
    assert_eq!(specs, [spec(2, "step"), promoted]);
    // Another lineage (another schedule) is not promoted.
    let (raised, specs) = apply(vec![spec(4, "constant")]);
    assert_eq!((raised, &specs[..]), (0, &[spec(4, "constant")][..]));
    let none = HashMap::new();
    let mut specs = [spec(4, "step")];
    assert_eq!(apply_promotions(specs.iter_mut(), &none), 0);
}
