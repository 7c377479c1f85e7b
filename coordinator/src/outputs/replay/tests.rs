//! `coordinator replay`'s pure part: results matched to a grid's trials, refused when they are
//! another grid's, unfinished or have no curve, and replayed seed-mean by configuration.

use std::borrow::Cow;

use sweep_common::EpochMetrics;
use sweep_common::results::{Results, Status, Trial};
use sweep_common::search::{Objective, Rule};

use super::*;

/// A grid of 9 configurations (learning rate x width) x 2 seeds, 9 epochs, with `stopping`
/// (a TOML table body, or nothing).
fn grid(learning_rates: &str, stopping: Option<&str>) -> Grid {
    let stopping = stopping.map_or(String::new(), |s| format!("[experiment.stopping]\n{s}\n"));
    let text = format!(
        r#"
[sweep]
name = "r"
seed = 0
repeats = 2

[[experiment]]
name = "e"
dataset = "fashion-mnist"
trial_name = "t_{{learning_rate}}_{{hidden_width}}"

[experiment.fixed]
epochs = 9

[experiment.grid]
learning_rate = [{learning_rates}]
hidden_width = [8, 16, 32]

{stopping}"#
    );
    Grid::from_bytes(text.into_bytes(), "g.toml").expect("a valid grid")
}

fn asha() -> Option<&'static str> {
    Some("rule = \"asha\"\nmin_epochs = 1\nreduction = 3")
}

/// Results of every trial of `grid`: a curve rising to a plateau set by the configuration (the
/// largest learning rate and width best), a little seed noise, 2 s per epoch, on 3 workers.
fn results(grid: &Grid) -> Results<'static> {
    let mut trials = Vec::new();
    for (i, spec) in grid.experiments[0].trials.iter().enumerate() {
        let p = &spec.params;
        let quality = 80.0 + 100.0 * p.learning_rate + f64::from(p.hidden_width) / 8.0;
        let noise = if p.seed % 2 == 0 { 0.05 } else { -0.05 };
        let epochs: Vec<EpochMetrics> = (1..=p.epochs)
            .map(|e| EpochMetrics {
                epoch: e,
                train_loss: 1.0 / f64::from(e),
                train_accuracy: quality,
                test_accuracy: quality * (1.0 - (-f64::from(e) / 2.0).exp()) + noise,
                seconds: 2.0,
                scalars: Default::default(),
            })
            .collect();
        trials.push(Trial {
            id: spec.id,
            experiment: Cow::Owned(spec.experiment.clone()),
            name: Cow::Owned(spec.name.clone()),
            dataset: spec.dataset,
            params: Cow::Owned(spec.params.clone()),
            split: spec.split,
            status: Status::Succeeded,
            attempts: 1,
            worker: Some(format!("w{}", i % 3)),
            wall_seconds: None,
            train_seconds: None,
            test_accuracy: epochs.last().map(|e| e.test_accuracy),
            epochs: Cow::Owned(epochs),
            train_accuracy: None,
            train_confusion: None,
            test_confusion: None,
            dataset_images: None,
            weights: None,
            logs: Vec::new(),
            failure: None,
            failed_attempts: Cow::Owned(Vec::new()),
            stopped: None,
            promoted_epochs: None,
        });
    }
    Results {
        format: sweep_common::results::FORMAT,
        sweep: grid.name.clone(),
        grid_file: "g.toml".to_owned(),
        finished: true,
        experiments: Vec::new(),
        trials,
    }
}

fn replayed(grid: &Grid, results: &Results<'_>, workers: usize) -> Replay {
    let e = &grid.experiments[0];
    let spec = e.stopping.expect("a rule");
    let trials = recorded(e, &spec, results, "results.json", "g.toml").expect("recorded");
    run(&e.name, &spec, &trials, workers)
}

#[test]
fn asha_stops_whole_configurations_and_finds_the_best() {
    let g = grid("0.001, 0.01, 0.03", asha());
    let r = replayed(&g, &results(&g), 3);
    assert_eq!((r.trials, r.configurations), (18, 9));
    assert_eq!(r.epochs_full, 18 * 9);
    assert!(r.epochs_trained < r.epochs_full, "{r:?}");
    assert!(!r.stopped.is_empty());
    // Seeds are one configuration: stopped together, at the same rung, for the same reason.
    for s in &r.stopped {
        let both: Vec<&Stopped> = r
            .stopped
            .iter()
            .filter(|t| t.configuration == s.configuration)
            .collect();
        assert_eq!(both.len(), 2, "{s:?}");
        assert!(
            both.iter()
                .all(|t| t.rung == s.rung && t.reason == s.reason)
        );
        assert!(s.reason.starts_with("asha: test_accuracy"), "{}", s.reason);
    }
    let best_full = r.best_full.clone().expect("a best");
    assert_eq!(
        best_full.configuration,
        "hidden_width=32 learning_rate=0.03"
    );
    assert_eq!(best_full.rank, 1);
    let best = r.best.clone().expect("a best found");
    assert!(
        !r.stopped
            .iter()
            .any(|t| t.configuration == best.configuration),
        "the best found trained to its end"
    );
    assert!(best.rank >= 1 && best.value <= best_full.value);
    assert!(r.seconds < r.seconds_full, "{r:?}");
    // The same files replay the same way.
    assert_eq!(replayed(&g, &results(&g), 3), r);

    let text = text(&r);
    assert!(
        text.starts_with(
            "experiment e: asha (min_epochs = 1, reduction = 3) on test_accuracy (max), 3 \
             workers, 18 trials (9 configurations)\n"
        ),
        "{text}"
    );
    assert!(text.contains(&format!(
        "epochs trained: {} of 162 ({:.1} %)",
        r.epochs_trained,
        r.epochs_percent()
    )));
    assert!(text.contains("best of the full sweep: hidden_width=32 learning_rate=0.03 = "));
}

#[test]
fn a_rule_that_stops_nothing_replays_the_full_grid() {
    let g = grid(
        "0.001, 0.01, 0.03",
        Some("rule = \"median\"\nmin_epochs = 8\nmin_trials = 10000"),
    );
    let r = replayed(&g, &results(&g), 4);
    assert!(r.stopped.is_empty());
    assert_eq!(r.epochs_trained, r.epochs_full);
    assert_eq!(r.best, r.best_full);
    // 18 trials of 9 two-second epochs on 4 workers: 5 rounds.
    assert_eq!(r.seconds, 5.0 * 18.0);
    assert_eq!(r.seconds_full, r.seconds);
}

#[test]
fn results_of_another_grid_are_refused() {
    let recorded_grid = grid("0.001, 0.01, 0.03", None);
    let other = grid("0.001, 0.01, 0.1", asha());
    let e = &other.experiments[0];
    let spec = e.stopping.expect("a rule");
    let err = recorded(e, &spec, &results(&recorded_grid), "r.json", "g.toml")
        .expect_err("another grid's results");
    assert_eq!(
        err,
        ReplayError::Missing {
            results: "r.json".to_owned(),
            grid: "g.toml".to_owned(),
            experiment: "e".to_owned(),
            missing: 6,
            of: 18,
            first: "t_0.1_8_seed-0".to_owned(),
        }
    );
    assert!(err.to_string().contains("results of another grid"), "{err}");
}

#[test]
fn unfinished_sweeps_and_missing_curves_are_refused() {
    let g = grid("0.001, 0.01, 0.03", asha());
    let e = &g.experiments[0];
    let spec = e.stopping.expect("a rule");
    let mut r = results(&g);
    r.trials[4].status = Status::Running;
    let err = recorded(e, &spec, &r, "r.json", "g.toml").expect_err("unfinished");
    assert_eq!(
        err.to_string(),
        format!(
            "r.json: trial {:?} is running: replay needs a finished sweep whose every trial \
             succeeded or failed (a stopped trial's curve ends early: replay the sweep run \
             without its stopping rule)",
            e.trials[4].name
        )
    );

    let mut r = results(&g);
    for t in &mut r.trials {
        t.status = Status::Failed;
        t.epochs = Cow::Owned(Vec::new());
    }
    let err = recorded(e, &spec, &r, "r.json", "g.toml").expect_err("no curves");
    assert_eq!(
        err.to_string(),
        "r.json: no trial of experiment \"e\" recorded an epoch: no curve to replay"
    );
}

#[test]
fn a_failed_trial_replays_its_partial_curve() {
    let g = grid("0.001, 0.01, 0.03", asha());
    let mut r = results(&g);
    r.trials[0].status = Status::Failed;
    r.trials[0].epochs.to_mut().truncate(4);
    let out = replayed(&g, &r, 2);
    assert_eq!(out.epochs_full, 17 * 9 + 4);
    // Its configuration has no complete curve, so it is never the full sweep's best.
    let first = configurations(&g.experiments[0]).remove(0);
    assert_ne!(out.best_full.map(|b| b.configuration), Some(first));
}

#[test]
fn experiments_without_a_rule_are_named() {
    let g = grid("0.001", None);
    assert_eq!(
        experiments(&g, "g.toml", None)
            .expect_err("no rule")
            .to_string(),
        "g.toml: no experiment has an [experiment.stopping] table: replay runs a grid's \
         stopping rule (README.md, \"Early stopping and sampled search\")"
    );
    assert_eq!(
        experiments(&g, "g.toml", Some("e"))
            .expect_err("no rule")
            .to_string(),
        "g.toml: experiment \"e\" has no [experiment.stopping] table: replay runs a grid's \
         stopping rule (README.md, \"Early stopping and sampled search\")"
    );
    assert_eq!(
        experiments(&g, "g.toml", Some("x"))
            .expect_err("unknown")
            .to_string(),
        "g.toml: no experiment \"x\"; the grid has \"e\""
    );
    let g = grid("0.001", asha());
    assert_eq!(experiments(&g, "g.toml", Some("e")).expect("e").len(), 1);
    assert_eq!(experiments(&g, "g.toml", None).expect("e").len(), 1);
}

#[test]
fn the_workers_default_to_those_recorded() {
    let g = grid("0.001, 0.01", asha());
    let mut r = results(&g);
    assert_eq!(recorded_workers(&r), 3);
    for t in &mut r.trials {
        t.worker = None;
    }
    assert_eq!(recorded_workers(&r), 1);
}

#[test]
fn the_objective_is_the_rules() {
    // A loss is minimised: the best configuration is the one with the lowest final loss.
    let spec = StoppingSpec {
        rule: Rule::Median {
            min_epochs: 8,
            min_trials: 10_000,
        },
        objective: Objective {
            metric: sweep_common::search::Metric::TrainLoss,
            mode: sweep_common::search::Mode::Min,
        },
    };
    let trials: Vec<Recorded<String>> = [(0, 3.0), (1, 1.0), (2, 2.0)]
        .into_iter()
        .map(|(c, v)| Recorded {
            trial: format!("t{c}"),
            config: format!("c{c}"),
            order: c,
            values: vec![v + 1.0, v],
            seconds: vec![1.0, 1.0],
        })
        .collect();
    let r = run("e", &spec, &trials, 1);
    assert_eq!(
        r.best_full.map(|b| (b.configuration, b.value)),
        Some(("c1".to_owned(), 1.0))
    );
    assert_eq!(r.seconds_full, 6.0);
}
