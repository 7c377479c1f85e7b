//! Tests of the status: counts, ETA, throughput, best trial, rendering and the wire form.

use std::sync::Arc;
use std::time::{Duration, Instant};

use sweep_common::grid::Grid;
use sweep_common::{ConfusionMatrix, EpochMetrics, FinalMetrics, TrialResult, TrialSpec, WorkerId};
use sweep_proto::v1;

use super::*;
use crate::state::{Config, LeaseKey, LeaseOutcome, Outcome, Scheduler};

const GRID: &str = "[sweep]\nname='s'\n[[experiment]]\nname='e'\ntitle='Two axes'\n\
                    dataset='fashion-mnist'\ntrial_name='t_{activation}_{hidden_layers}'\n\
                    [experiment.fixed]\nepochs=5\n[experiment.grid]\n\
                    activation=['relu','tanh']\nhidden_layers=[1,2]\n";

fn grid() -> Grid {
    Grid::parse(GRID, "t.toml").unwrap()
}

fn scheduler(g: &Grid) -> Scheduler {
    let config = Config {
        lease_ttl: Duration::from_secs(10),
        max_attempts: 2,
        retry_after: Duration::from_millis(100),
    };
    Scheduler::new(g.trials().cloned(), config)
}

fn metrics(epoch: u32, seconds: f64, test: f64) -> EpochMetrics {
    EpochMetrics {
        epoch,
        train_loss: 0.5,
        train_accuracy: test + 5.0,
        test_accuracy: test,
        seconds,
        scalars: Default::default(),
    }
}

/// A valid result for `spec` on 100 images whose test accuracy is `correct`% of its test split.
fn result(spec: &TrialSpec, seconds: f64, correct_test: u64) -> TrialResult {
    let n = 100;
    let (_, test) = spec.split.sizes(n);
    let train = spec.train_subset_len(n);
    let mut train_m = ConfusionMatrix::zeros(10);
    train_m.counts[0] = train as u64;
    let mut test_m = ConfusionMatrix::zeros(10);
    test_m.counts[0] = correct_test;
    test_m.counts[1] = test as u64 - correct_test;
    TrialResult {
        epochs: (1..=spec.params.epochs)
            .map(|e| metrics(e, seconds, test_m.accuracy()))
            .collect(),
        last: FinalMetrics {
            train_accuracy: train_m.accuracy(),
            test_accuracy: test_m.accuracy(),
            train_confusion: train_m,
            test_confusion: test_m,
            train_seconds: seconds * 5.0,
            dataset_images: n as u64,
        },
    }
}

fn lease(s: &mut Scheduler, w: WorkerId, now: Instant) -> TrialSpec {
    match s.lease(w, now).unwrap() {
        LeaseOutcome::Assigned { spec, .. } => spec,
        other => panic!("expected an assignment, got {other:?}"),
    }
}

/// The snapshot the `Status` RPC answers without a query, from a fresh index.
fn status_of(s: &Scheduler, clock: Clock) -> Snapshot {
    snapshot("s", s, &Index::new(s), clock, &View::default())
}

fn clock(start: Instant, after: u64) -> Clock {
    Clock {
        started: start,
        now: start + Duration::from_secs(after),
    }
}

#[test]
fn a_fresh_sweep_is_all_pending_with_nothing_measured() {
    let g = grid();
    let s = scheduler(&g);
    let start = Instant::now();
    let snap = status_of(&s, clock(start, 3));
    assert_eq!(
        snap.counts,
        TrialCounts {
            pending: 4,
            total: 4,
            ..TrialCounts::default()
        }
    );
    assert_eq!((snap.epochs_done, snap.epochs_total), (0, 20));
    assert_eq!(snap.eta_seconds, None);
    assert_eq!(snap.throughput_epochs_per_minute, None);
    assert_eq!(snap.best, None);
    assert_eq!(snap.elapsed_seconds, 3.0);
    assert!(snap.trials.iter().all(|t| t.state == Phase::Pending));
    assert!(
        snap.trials
            .iter()
            .all(|t| t.worker.is_none() && t.epoch == 0)
    );
    assert!(snap.experiments.is_empty() && snap.trials[0].history.is_empty());
}

#[test]
fn eta_and_throughput_come_from_measured_epoch_times() {
    let g = grid();
    let mut s = scheduler(&g);
    let start = Instant::now();
    let w = WorkerId::random();
    s.register(w, "gpu-a".into(), "cuda:0".into(), 2, start);
    let a = lease(&mut s, w, start);
    let b = lease(&mut s, w, start);
    s.report_epoch(LeaseKey::new(w, a.id, 1), metrics(1, 2.0, 60.0), start)
        .unwrap();
    s.report_epoch(LeaseKey::new(w, a.id, 1), metrics(2, 2.0, 70.0), start)
        .unwrap();
    let snap = status_of(&s, clock(start, 4));
    // a: 3 epochs left at its own 2 s; b and the two pending trials: 5 epochs at the
    // experiment's 2 s. 6 + 3 x 10 = 36 s of work over 2 busy slots.
    assert_eq!(snap.eta_seconds, Some(18.0));
    // Two running trials at 2 s per epoch: 30 epochs/min each.
    assert_eq!(snap.throughput_epochs_per_minute, Some(60.0));
    assert_eq!(snap.trials[0].eta_seconds, Some(6.0));
    assert_eq!(snap.trials[1].eta_seconds, Some(10.0));
    assert_eq!(snap.trials[0].test_accuracy, Some(70.0));
    assert_eq!(snap.trials[0].worker.as_deref(), Some("gpu-a"));
    assert_eq!(snap.trials[0].epoch, 2);
    assert_eq!(snap.epochs_done, 2);
    assert_eq!(snap.counts.running, 2);
    assert_eq!(snap.workers.len(), 1);
    assert_eq!(
        snap.workers[0].running,
        [
            RunningTrial {
                trial: a.name.clone(),
                epoch: 2,
                epochs: 5
            },
            RunningTrial {
                trial: b.name.clone(),
                epoch: 0,
                epochs: 5
            }
        ]
    );

    // a succeeds with 1 s epochs: pending trials are now estimated from it (succeeded trials
    // of the experiment win over running ones), b from its own epochs once it has some.
    let mut r = result(&a, 1.0, 20);
    // Its result repeats the epochs accepted (an accepted epoch is never replaced).
    r.epochs[..2].clone_from_slice(&[metrics(1, 2.0, 60.0), metrics(2, 2.0, 70.0)]);
    s.complete(LeaseKey::new(w, a.id, 1), Outcome::Succeeded(r), start)
        .unwrap();
    s.report_epoch(LeaseKey::new(w, b.id, 1), metrics(1, 4.0, 50.0), start)
        .unwrap();
    let snap = status_of(&s, clock(start, 10));
    // b: 4 x 4 = 16 s; two pending: 5 x 1 = 5 s each; 26 s over the worker's 2 slots = 13 s,
    // but never less than b's 16 s.
    assert_eq!(snap.eta_seconds, Some(16.0));
    assert_eq!(snap.throughput_epochs_per_minute, Some(15.0));
    let best = snap.best.unwrap();
    assert_eq!(best.trial, a.name);
    assert!((best.test_accuracy - 100.0 * 20.0 / 30.0).abs() < 1e-9);
    assert_eq!(snap.trials[0].state, Phase::Succeeded);
    assert_eq!(snap.trials[0].eta_seconds, None);
}

#[test]
fn eta_is_unknown_without_a_live_worker() {
    let g = grid();
    let mut s = scheduler(&g);
    let start = Instant::now();
    let w = WorkerId::random();
    s.register(w, "w".into(), "cpu".into(), 1, start);
    let a = lease(&mut s, w, start);
    let r = result(&a, 1.0, 30);
    s.complete(LeaseKey::new(w, a.id, 1), Outcome::Succeeded(r), start)
        .unwrap();
    // The worker went silent for longer than the lease TTL: nothing will work on the rest.
    let snap = status_of(&s, clock(start, 60));
    assert_eq!(snap.eta_seconds, None);
    assert_eq!(snap.throughput_epochs_per_minute, None);
    assert!(!snap.workers[0].alive);
    assert_eq!(snap.workers[0].seen_seconds_ago, 60.0);
    assert!(text::block(&snap).contains("(silent 1m 00s)"));
}

#[test]
fn the_progress_line_counts_the_workers_alive() {
    let g = grid();
    let mut s = scheduler(&g);
    let start = Instant::now();
    let gone: Vec<WorkerId> = (0..3).map(|_| WorkerId::random()).collect();
    for (i, w) in gone.iter().enumerate() {
        s.register(*w, format!("gone{i}"), "cpu".into(), 1, start);
    }
    let later = start + Duration::from_secs(60);
    for i in 0..2 {
        s.register(WorkerId::random(), format!("w{i}"), "cpu".into(), 1, later);
    }
    let line = text::line(&status_of(&s, clock(start, 61)));
    assert!(line.contains(", 2 workers (3 silent);"), "{line}");
}

#[test]
fn the_best_trial_is_the_highest_test_accuracy_first_on_ties() {
    let g = grid();
    let mut s = scheduler(&g);
    let now = Instant::now();
    let w = WorkerId::random();
    s.register(w, "w".into(), "cpu".into(), 4, now);
    let specs: Vec<TrialSpec> = (0..4).map(|_| lease(&mut s, w, now)).collect();
    for (spec, correct) in specs.iter().zip([10, 25, 25, 5]) {
        let r = result(spec, 1.0, correct);
        s.complete(LeaseKey::new(w, spec.id, 1), Outcome::Succeeded(r), now)
            .unwrap();
    }
    let snap = status_of(&s, clock(now, 1));
    assert!(snap.finished);
    assert_eq!(snap.best.as_ref().unwrap().trial, specs[1].name);
    assert_eq!(snap.eta_seconds, Some(0.0));
    assert_eq!(snap.counts.done(), 4);
    assert_eq!(
        text::block(&snap).lines().next(),
        Some("sweep s finished: 4/4 done (0 failed); elapsed 1s")
    );
}

#[test]
fn a_detailed_snapshot_has_histories_and_the_reports_tables() {
    let g = grid();
    let mut s = scheduler(&g);
    let now = Instant::now();
    let w = WorkerId::random();
    s.register(w, "w".into(), "cpu".into(), 1, now);
    let a = lease(&mut s, w, now);
    let r = result(&a, 1.0, 15);
    s.complete(LeaseKey::new(w, a.id, 1), Outcome::Succeeded(r), now)
        .unwrap();
    let snap = detailed(&g, &s, &Index::new(&s), clock(now, 1), &View::default());
    assert_eq!(snap.trials[0].history.len(), 5);
    assert_eq!(snap.trials[0].history[4].test_accuracy, 50.0);
    let e = &snap.experiments[0];
    assert_eq!(
        (e.name.as_str(), e.title.as_deref()),
        ("e", Some("Two axes"))
    );
    // Two axes: pivots of test and training accuracy, columns the activations, rows the layers.
    assert_eq!(e.tables.len(), 2);
    let test = &e.tables[0];
    assert_eq!(test.caption, "Test accuracy (%)");
    assert_eq!(test.header, ["Hidden layers / Activation", "ReLU", "Tanh"]);
    assert_eq!(test.rows, [["1", "50.00", "-"], ["2", "-", "-"]]);
    assert_eq!(test.numeric, [false, true, true]);
}

/// A model axis: the live tables name each model as the report does (its summary and parameter
/// count, not its spec) and add the key from those names to the layers.
#[test]
fn live_tables_name_models_and_give_their_key() {
    let conv = "conv(8,3) relu flatten linear(10)";
    let text = format!(
        "[sweep]\nname='s'\n[[experiment]]\nname='e'\ndataset='fashion-mnist'\n\
         [experiment.fixed]\nepochs=1\n[experiment.grid]\nmodel=['mlp','{conv}']\n\
         learning_rate=[0.1,0.01]\n"
    );
    let g = Grid::parse(&text, "t.toml").unwrap();
    let s = scheduler(&g);
    let snap = detailed(
        &g,
        &s,
        &Index::new(&s),
        clock(Instant::now(), 1),
        &View::default(),
    );
    let e = &snap.experiments[0];
    let captions: Vec<&str> = e.tables.iter().map(|t| t.caption.as_str()).collect();
    assert_eq!(
        captions,
        [
            "Test accuracy (%)",
            "Training accuracy (%)",
            crate::report::tables::MODELS_CAPTION
        ]
    );
    // conv 8x1x3x3 + 8; linear 8*26*26 x 10 + 10.
    let label = format!("1 conv 8, 1 linear 10, {} params", 72 + 8 + 5408 * 10 + 10);
    let rows: Vec<&str> = e.tables[0].rows.iter().map(|r| r[0].as_str()).collect();
    assert_eq!(rows, ["mlp", label.as_str()]);
    assert_eq!(e.tables[2].rows[1], [label.as_str(), conv]);
}

#[test]
fn text_is_compact_and_names_what_runs() {
    assert_eq!(text::duration(0.4), "0s");
    assert_eq!(text::duration(59.0), "59s");
    assert_eq!(text::duration(185.0), "3m 05s");
    assert_eq!(text::duration(7440.0), "2h 04m");
    assert_eq!(text::duration(266_400.0), "3d 02h");
    assert_eq!(text::duration(f64::NAN), "-");

    let g = grid();
    let mut s = scheduler(&g);
    let start = Instant::now();
    let w = WorkerId::random();
    s.register(w, "gpu-a".into(), "cuda:0 H100".into(), 1, start);
    let a = lease(&mut s, w, start);
    s.report_epoch(LeaseKey::new(w, a.id, 1), metrics(1, 3.0, 40.0), start)
        .unwrap();
    let snap = status_of(&s, clock(start, 5));
    let block = text::block(&snap);
    let lines: Vec<&str> = block.lines().collect();
    assert_eq!(
        lines,
        [
            "sweep s running: 0/4 done (0 failed), 1 running, 3 pending; 20.0 epochs/min; \
             eta 57s; elapsed 5s",
            "best test accuracy: none yet",
            "  gpu-a [cuda:0 H100]: t_ReLU_1 epoch 1/5",
        ]
    );
    assert_eq!(
        text::line(&snap),
        "0/4 done (0 failed), 1 running, 3 pending, 1 workers; 20.0 epochs/min, eta 57s \
         [t_ReLU_1 epoch 1/5 on gpu-a]"
    );
}

#[test]
fn names_from_outside_cannot_break_the_text() {
    let g = grid();
    let mut s = scheduler(&g);
    let start = Instant::now();
    let w = WorkerId::random();
    // What an older database could hold (the wire refuses it now).
    s.register(
        w,
        "w\n2026-01-01T00:00:00Z  INFO sweep finished: all trials succeeded\x1b[2J".into(),
        "cuda:0 \u{202e}001H".into(),
        1,
        start,
    );
    let a = lease(&mut s, w, start);
    s.report_epoch(LeaseKey::new(w, a.id, 1), metrics(1, 3.0, 40.0), start)
        .unwrap();
    let snap = status_of(&s, clock(start, 5));
    let block = text::block(&snap);
    assert_eq!(block.lines().count(), 3, "{block}");
    assert!(
        block.contains("w\\n2026-01-01T00:00:00Z  INFO sweep finished: all trials succeeded\\u{1b}[2J [cuda:0 \\u{202e}001H]"),
        "{block}"
    );
    for line in block.lines().chain([text::line(&snap).as_str()]) {
        assert!(!line.contains(sweep_common::text::forbidden), "{line:?}");
    }
}

#[test]
fn the_wire_form_round_trips_and_refuses_what_it_cannot_read() {
    let g = grid();
    let mut s = scheduler(&g);
    let now = Instant::now();
    let w = WorkerId::random();
    s.register(w, "w".into(), "cpu".into(), 2, now);
    let a = lease(&mut s, w, now);
    let b = lease(&mut s, w, now);
    let mut nan = metrics(1, 1.0, 30.0);
    nan.train_loss = f64::NAN;
    s.report_epoch(LeaseKey::new(w, b.id, 1), nan, now).unwrap();
    let r = result(&a, 1.0, 12);
    s.complete(LeaseKey::new(w, a.id, 1), Outcome::Succeeded(r), now)
        .unwrap();
    let mut snap = detailed(&g, &s, &Index::new(&s), clock(now, 2), &View::default());
    assert_eq!(snap.trials[1].history[0].train_loss, None);
    // Not on the wire nor in the JSON yet.
    assert_eq!(snap.leases_granted, 2);
    snap.leases_granted = 0;

    // Nor a trial's hyperparameters (the live view's JSON has them).
    assert_eq!(snap.trials[0].params["activation"], "ReLU");
    let mut on_wire = snap.clone();
    for t in &mut on_wire.trials {
        t.params.clear();
    }
    let wire = v1::StatusResponse::from(&snap);
    assert_eq!(Snapshot::try_from(&wire).unwrap(), on_wire);
    // The JSON form reads back the same, hyperparameters included.
    let json = serde_json::to_string(&snap).unwrap();
    assert_eq!(serde_json::from_str::<Snapshot>(&json).unwrap(), snap);

    let mut bad = wire.clone();
    bad.counts = None;
    assert_eq!(
        Snapshot::try_from(&bad),
        Err(sweep_proto::DecodeError::Missing("counts"))
    );
    let mut bad = wire.clone();
    bad.trials[0].state = 42;
    assert!(
        Snapshot::try_from(&bad)
            .unwrap_err()
            .to_string()
            .contains("trials.state")
    );
    let mut bad = wire;
    bad.eta_seconds = Some(f64::INFINITY);
    assert!(
        Snapshot::try_from(&bad)
            .unwrap_err()
            .to_string()
            .contains("eta_seconds")
    );
}

#[test]
fn the_summary_is_the_snapshot_without_trial_rows_and_the_line_names_a_few_running() {
    let g = grid();
    let mut s = scheduler(&g);
    let start = Instant::now();
    let w = WorkerId::random();
    s.register(w, "w".into(), "cpu".into(), 1, start);
    lease(&mut s, w, start);
    let full = status_of(&s, clock(start, 5));
    let mut brief = summary("s", &s, &Index::new(&s), clock(start, 5));
    assert!(brief.trials.is_empty());
    brief.trials.clone_from(&full.trials);
    assert_eq!(
        serde_json::to_value(&brief).unwrap(),
        serde_json::to_value(&full).unwrap()
    );
    // A thousand running trials are not all named in one log line.
    let running = brief.workers[0].running[0].clone();
    brief.workers[0].running = vec![running; 1000];
    let line = text::line(&brief);
    assert!(line.ends_with(", and 992 more]"), "{line}");
    assert!(line.len() < 400, "{line}");
}

#[test]
fn the_status_warns_of_storage_failures_until_a_write_works() {
    let g = grid();
    let mut s = scheduler(&g);
    let start = Instant::now();
    let w = WorkerId::random();
    s.register(w, "w".into(), "cpu".into(), 1, start);
    s.storage_failed(
        crate::state::Storage::Weights,
        "cannot write out/models/x: No space left on device (os error 28)".into(),
        start,
    );
    s.storage_failed(crate::state::Storage::Weights, "again".into(), start);
    let snap = status_of(&s, clock(start, 3));
    let warning = snap.warning.as_deref().unwrap_or_default();
    assert!(
        warning.starts_with(
            "the coordinator cannot store final weights (2 failures over 3s); last: again;"
        ),
        "{warning}"
    );
    assert!(text::block(&snap).contains("warning: the coordinator cannot store final weights"));
    s.storage_worked(crate::state::Storage::Weights);
    assert_eq!(status_of(&s, clock(start, 4)).warning, None);
}

/// The live tables are made once per change of the trials, whoever asks: a second detailed
/// status of the same trials gets the tables already made; a change of a trial makes them again.
#[tokio::test]
async fn live_tables_are_made_once_per_change_for_every_caller() {
    let g = grid();
    let mut s = scheduler(&g);
    let mut index = Index::new(&s);
    let now = Instant::now();
    let w = WorkerId::random();
    s.register(w, "w".into(), "cpu".into(), 1, now);
    let experiments = tables::experiments_of(&g);
    let shared = tables::Shared::default();
    let view = View {
        detail: true,
        trials: None,
    };
    let status = |s: &Scheduler, index: &Index| {
        let snap = snapshot("s", s, index, clock(now, 1), &view);
        let made = shared.tables(&experiments, s, index, &snap, None);
        (snap, made)
    };
    let (mut first, made) = status(&s, &index);
    assert!(
        matches!(made, tables::Tables::Make { .. }),
        "nothing made yet"
    );
    let filled = shared.resolve(made).await.expect("made");
    tables::fill(&mut first, &filled);
    assert_eq!(first.experiments[0].tables[0].rows[0][1], "-");

    let (mut second, made) = status(&s, &index);
    let tables::Tables::Ready(again) = made else {
        panic!("the same trials: the tables already made")
    };
    assert!(Arc::ptr_eq(&again, &filled));
    tables::fill(&mut second, &again);
    assert_eq!(second.experiments, first.experiments);

    let a = lease(&mut s, w, now);
    let r = result(&a, 1.0, 15);
    s.complete(LeaseKey::new(w, a.id, 1), Outcome::Succeeded(r), now)
        .unwrap();
    let changes = s.take_changes();
    index.update(&s, &changes);
    let (mut third, made) = status(&s, &index);
    assert!(
        matches!(made, tables::Tables::Make { .. }),
        "a trial changed"
    );
    tables::fill(&mut third, &shared.resolve(made).await.expect("made"));
    assert_eq!(third.experiments[0].tables[0].rows[0][1], "50.00");
}

/// A page that asks for it has the importance of its experiment's hyperparameters over every
/// succeeded trial, computed as the report computes it (here exactly: a full 2 x 2 grid whose
/// accuracy is additive), and every row of it lists its hyperparameters.
#[test]
fn a_page_asked_for_importance_has_the_experiments_exact_decomposition() {
    let g = grid();
    let mut s = scheduler(&g);
    let now = Instant::now();
    let w = WorkerId::random();
    s.register(w, "w".into(), "cpu".into(), 4, now);
    let specs: Vec<TrialSpec> = (0..4).map(|_| lease(&mut s, w, now)).collect();
    for spec in &specs {
        let relu = spec.params.activation == sweep_common::Activation::Relu;
        let correct =
            5 + if relu { 5 } else { 0 } + if spec.params.hidden_layers == 2 { 2 } else { 0 };
        let r = result(spec, 1.0, correct);
        s.complete(LeaseKey::new(w, spec.id, 1), Outcome::Succeeded(r), now)
            .unwrap();
    }
    let view = View {
        detail: true,
        trials: Some(Query {
            experiment: Some("e".into()),
            importance: true,
            ..Query::default()
        }),
    };
    let snap = snapshot("s", &s, &Index::new(&s), clock(now, 1), &view);
    let row = snap.importance.expect("asked for");
    let keys: Vec<&str> = row.params.iter().map(|p| p.key.as_str()).collect();
    assert_eq!(keys, ["activation", "hidden_layers"]);
    let imp = row.importance.expect("computed");
    assert_eq!(imp.method, crate::report::importance::Method::Exact);
    assert_eq!(imp.trials, 4);
    // Effects of +-2.5 and +-1 correct answers: variances 6.25 and 1.
    assert!((imp.shares[0] - 6.25 / 7.25).abs() < 1e-9, "{imp:?}");
    assert!((imp.shares[1] - 1.0 / 7.25).abs() < 1e-9, "{imp:?}");
    assert!(imp.rest.unwrap().abs() < 1e-9, "{imp:?}");
    assert!(
        snap.trials
            .iter()
            .all(|t| t.params.len() == sweep_common::grid::Param::ALL.len())
    );

    // Not asked for, or for an experiment that does not exist.
    let plain = View {
        detail: true,
        trials: Some(Query::default()),
    };
    assert_eq!(
        snapshot("s", &s, &Index::new(&s), clock(now, 1), &plain).importance,
        None
    );
    let unknown = View {
        detail: true,
        trials: Some(Query {
            experiment: Some("nope".into()),
            importance: true,
            ..Query::default()
        }),
    };
    let row = snapshot("s", &s, &Index::new(&s), clock(now, 1), &unknown)
        .importance
        .expect("answered");
    assert_eq!(row.importance, None);
    assert_eq!(
        row.note.as_deref(),
        Some("fewer than two trials have a result")
    );
}

#[test]
fn the_budget_shows_what_is_spent_and_left_and_crosses_the_wire() {
    let g = grid();
    let mut s = scheduler(&g);
    let now = Instant::now();
    assert_eq!(status_of(&s, clock(now, 1)).budget, None);
    s.set_budget(Some(2.0));
    let w = WorkerId::random();
    s.register(w, "w".into(), "cpu".into(), 1, now);
    let a = lease(&mut s, w, now);
    // An epoch of 0.5 h.
    s.report_epoch(LeaseKey::new(w, a.id, 1), metrics(1, 1800.0, 30.0), now)
        .unwrap();
    let snap = status_of(&s, clock(now, 2));
    let b = snap.budget.expect("a budget");
    assert_eq!(b.max_hours, 2.0);
    assert!((b.spent_hours - 0.5).abs() < 1e-9, "{b:?}");
    assert_eq!(b.stopped, 0);
    let line = text::budget(&b);
    assert!(
        line.starts_with("budget: 0.50 of 2 device-hours spent"),
        "{line}"
    );
    assert!(text::block(&snap).contains("budget: 0.50 of 2"));
    let wire = v1::StatusResponse::from(&snap);
    assert_eq!(Snapshot::try_from(&wire).unwrap().budget, Some(b));
    let stopped = text::budget(&BudgetRow { stopped: 3, ..b });
    assert!(
        stopped.ends_with("; 3 trials not run: the budget would be exceeded"),
        "{stopped}"
    );
}
