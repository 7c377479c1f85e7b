//! Tests of the metrics: the values of a sweep in progress, and the exposition format's rules.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use sweep_common::grid::Grid;
use sweep_common::{ConfusionMatrix, EpochMetrics, FinalMetrics, TrialResult, TrialSpec, WorkerId};

use super::*;
use crate::state::{Config, LeaseKey, LeaseOutcome, Outcome, Scheduler};
use crate::status::{Clock, Index, View, snapshot};

const GRID: &str = "[sweep]\nname='metrics-1'\n[[experiment]]\nname='e'\n\
                    dataset='fashion-mnist'\n[experiment.fixed]\nepochs=2\n\
                    [experiment.grid]\nhidden_layers=[1,2,3,4,5]\n";

fn metrics(epoch: u32) -> EpochMetrics {
    EpochMetrics {
        epoch,
        train_loss: 0.5,
        train_accuracy: 50.0,
        test_accuracy: 40.0,
        seconds: 2.0,
        scalars: Default::default(),
    }
}

/// A valid result for `spec` on 100 images, 4/5 of its test split right.
fn result(spec: &TrialSpec) -> TrialResult {
    let n = 100;
    let (_, test) = spec.split.sizes(n);
    let mut train_m = ConfusionMatrix::zeros(10);
    train_m.counts[0] = spec.train_subset_len(n) as u64;
    let mut test_m = ConfusionMatrix::zeros(10);
    test_m.counts[0] = test as u64 * 4 / 5;
    test_m.counts[1] = test as u64 - test_m.counts[0];
    TrialResult {
        epochs: (1..=spec.params.epochs).map(metrics).collect(),
        last: FinalMetrics {
            train_accuracy: train_m.accuracy(),
            test_accuracy: test_m.accuracy(),
            train_confusion: train_m,
            test_confusion: test_m,
            train_seconds: 4.0,
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

/// Five trials: one succeeded, one failed for good (a non-finite loss), one retried after running
/// out of memory and again after its lease expired (pending), one running with an epoch
/// reported, one never leased. Worker `a` is connected with 2 slots, `b` (1 slot) went quiet.
fn sweep_in_progress() -> Snapshot {
    let grid = Grid::parse(GRID, "t.toml").unwrap();
    let config = Config {
        lease_ttl: Duration::from_secs(10),
        max_attempts: 3,
        retry_after: Duration::from_millis(100),
    };
    let mut s = Scheduler::new(grid.trials().cloned(), config);
    // Kept up to date as the coordinator does, not made afresh.
    let mut index = Index::new(&s);
    let start = Instant::now();
    let (a, b) = (WorkerId::random(), WorkerId::random());
    s.register(a, "a".into(), "cpu".into(), 2, start);
    s.register(b, "b".into(), "cpu".into(), 1, start);

    let ok = lease(&mut s, a, start);
    s.complete(
        LeaseKey::new(a, ok.id, 1),
        Outcome::Succeeded(result(&ok)),
        start,
    )
    .unwrap();
    let bad = lease(&mut s, a, start);
    let nan = Outcome::Failed {
        kind: FailureKind::NonFiniteLoss,
        message: "non-finite training loss".into(),
    };
    s.complete(LeaseKey::new(a, bad.id, 1), nan, start).unwrap();
    let retried = lease(&mut s, a, start);
    let oom = Outcome::Failed {
        kind: FailureKind::OutOfMemory,
        message: "out of memory".into(),
    };
    s.complete(LeaseKey::new(a, retried.id, 1), oom, start)
        .unwrap();
    assert_eq!(lease(&mut s, b, start).id, retried.id, "retried first");

    // b never calls again: its lease expires; a keeps training one trial.
    let later = start + Duration::from_secs(11);
    let running = lease(&mut s, a, later);
    s.report_epoch(LeaseKey::new(a, running.id, 1), metrics(1), later)
        .unwrap();
    s.expire_leases(later);
    let clock = Clock {
        started: start,
        now: later,
    };
    let changes = s.take_changes();
    index.update(&s, &changes);
    snapshot("metrics-1", &s, &index, clock, &View::default())
}

/// The sample lines of `text` (comments left out).
fn samples(text: &str) -> Vec<&str> {
    text.lines().filter(|l| !l.starts_with('#')).collect()
}

#[test]
fn a_sweep_in_progress_in_numbers() {
    let text = render(&sweep_in_progress());
    let expected = [
        "sweep_info{sweep=\"metrics-1\"} 1",
        "sweep_finished 0",
        "sweep_trials{state=\"pending\"} 2",
        "sweep_trials{state=\"running\"} 1",
        "sweep_trials{state=\"succeeded\"} 1",
        "sweep_trials{state=\"failed\"} 1",
        "sweep_leases 1",
        "sweep_leases_granted_total 5",
        "sweep_attempt_failures_total{kind=\"data\"} 0",
        "sweep_attempt_failures_total{kind=\"non_finite_loss\"} 1",
        "sweep_attempt_failures_total{kind=\"out_of_memory\"} 1",
        "sweep_attempt_failures_total{kind=\"internal\"} 0",
        "sweep_attempt_failures_total{kind=\"worker_shutdown\"} 0",
        "sweep_attempt_failures_total{kind=\"invalid_spec\"} 0",
        "sweep_attempt_failures_total{kind=\"lease_expired\"} 1",
        "sweep_attempt_failures_total{kind=\"panic\"} 0",
        "sweep_attempt_failures_total{kind=\"cancelled\"} 0",
        "sweep_attempt_failures_total{kind=\"checkpoint_unusable\"} 0",
        "sweep_attempt_failures_total{kind=\"device\"} 0",
        "sweep_attempt_failures_total{kind=\"weights_missing\"} 0",
        "sweep_attempt_failures_total{kind=\"program_failed\"} 0",
        "sweep_workers{state=\"connected\"} 1",
        "sweep_workers{state=\"lost\"} 1",
        "sweep_worker_slots 2",
        "sweep_epochs_done 3",
        "sweep_epochs_planned 10",
        "sweep_throughput_epochs_per_second 0.5",
        "sweep_eta_seconds 5",
        "sweep_best_test_accuracy_ratio 0.8",
    ];
    assert_eq!(samples(&text), expected, "{text}");
}

#[test]
fn unknown_values_are_left_out_not_zero() {
    let mut snap = sweep_in_progress();
    snap.throughput_epochs_per_minute = None;
    snap.eta_seconds = None;
    snap.best = None;
    let text = render(&snap);
    for name in [
        "sweep_throughput_epochs_per_second",
        "sweep_eta_seconds",
        "sweep_best_test_accuracy_ratio",
    ] {
        assert!(text.contains(&format!("# TYPE {name} gauge\n")), "{text}");
        assert!(
            !samples(&text).iter().any(|l| l.starts_with(name)),
            "{name} has a sample: {text}"
        );
    }
}

#[test]
fn the_text_follows_the_exposition_format() {
    let mut snap = sweep_in_progress();
    snap.sweep = "we\"ird\\na\nme".into();
    let text = render(&snap);
    assert!(text.contains("sweep_info{sweep=\"we\\\"ird\\\\na\\nme\"} 1\n"));
    assert!(text.ends_with('\n'));

    let mut families: Vec<(&str, &str)> = Vec::new();
    let mut series = BTreeSet::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest.split_once(' ').unwrap();
            assert!(!help.is_empty() && !help.contains('\n'));
            assert!(families.iter().all(|(f, _)| *f != name), "{name} twice");
            families.push((name, ""));
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap();
            let last = families.last_mut().unwrap();
            assert_eq!(last.0, name, "TYPE right after HELP");
            assert!(kind == "counter" || kind == "gauge", "{line}");
            assert_eq!(
                kind == "counter",
                name.ends_with("_total"),
                "only counters end in _total: {line}"
            );
            last.1 = kind;
        } else {
            let (id, value) = line.rsplit_once(' ').unwrap();
            let name = id.split('{').next().unwrap();
            assert!(
                name.starts_with("sweep_")
                    && name
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'),
                "{line}"
            );
            let (family, kind) = *families.last().unwrap();
            assert_eq!(name, family, "a sample of its own family: {line}");
            let value: f64 = value.parse().unwrap();
            assert!(value.is_finite());
            if kind == "counter" {
                assert!(value >= 0.0);
            }
            assert!(series.insert(id.to_owned()), "{id} twice");
        }
    }
    assert_eq!(families.len(), 13);
}
