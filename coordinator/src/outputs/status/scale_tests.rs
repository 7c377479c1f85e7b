//! The status stays a bounded summary however many trials the sweep has (issue 15, item 6: at
//! 60 000 trials `coordinator status` used to fail, its answer over gRPC's 4 MiB limit), and
//! per-trial detail comes a page at a time.

use std::time::{Duration, Instant};

use prost::Message as _;
use sweep_common::grid::Grid;
use sweep_common::{ConfusionMatrix, EpochMetrics, FinalMetrics, TrialResult, TrialSpec, WorkerId};
use sweep_proto::v1;

use super::*;
use crate::state::{Config, LeaseKey, LeaseOutcome, Outcome};

/// A grid of `seeds` x `widths` trials of `epochs` epochs, in one experiment `e`.
fn grid(seeds: u32, widths: u32, epochs: u32) -> Grid {
    let list = |n: u32| (1..=n).map(|i| i.to_string()).collect::<Vec<_>>().join(",");
    let text = format!(
        "[sweep]\nname='big'\nmax_trials=1000000\n[[experiment]]\nname='e'\n\
         dataset='fashion-mnist'\n[experiment.fixed]\nepochs={epochs}\n[experiment.grid]\n\
         seed=[{}]\nhidden_width=[{}]\n",
        list(seeds),
        list(widths)
    );
    Grid::parse(&text, "big.toml").unwrap()
}

fn scheduler(g: &Grid) -> Scheduler {
    let config = Config {
        lease_ttl: Duration::from_secs(30),
        max_attempts: 2,
        retry_after: Duration::from_millis(100),
    };
    Scheduler::new(g.trials().cloned(), config)
}

fn metrics(epoch: u32) -> EpochMetrics {
    EpochMetrics {
        epoch,
        train_loss: 0.5,
        train_accuracy: 55.0,
        test_accuracy: 50.0,
        seconds: 2.0,
        scalars: Default::default(),
    }
}

fn result(spec: &TrialSpec, correct: u64) -> TrialResult {
    let n = 100;
    let (_, test) = spec.split.sizes(n);
    let mut train_m = ConfusionMatrix::zeros(10);
    train_m.counts[0] = spec.train_subset_len(n) as u64;
    let mut test_m = ConfusionMatrix::zeros(10);
    test_m.counts[0] = correct.min(test as u64);
    test_m.counts[1] = test as u64 - test_m.counts[0];
    TrialResult {
        epochs: (1..=spec.params.epochs).map(metrics).collect(),
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

/// A sweep of `g` under way: 4 workers of 8 slots leased 32 trials, each reported 2 epochs;
/// 16 succeeded, 2 failed for good, 14 run. The index is kept up to date as the coordinator
/// keeps it.
fn under_way(g: &Grid) -> (Scheduler, Index, Instant) {
    let mut s = scheduler(g);
    let mut index = Index::new(&s);
    let now = Instant::now();
    let mut leased = Vec::new();
    for i in 0..4 {
        let w = WorkerId::random();
        s.register(w, format!("w{i}"), "cpu".into(), 8, now);
        for _ in 0..8 {
            match s.lease(w, now).unwrap() {
                LeaseOutcome::Assigned { spec, attempt, .. } => leased.push((w, spec, attempt)),
                other => panic!("expected an assignment, got {other:?}"),
            }
        }
    }
    for (i, (w, spec, attempt)) in leased.iter().enumerate() {
        for e in 1..=2 {
            s.report_epoch(LeaseKey::new(*w, spec.id, *attempt), metrics(e), now)
                .unwrap();
        }
        let outcome = match i {
            0..16 => Outcome::Succeeded(result(spec, i as u64)),
            // A fault of the trial's own, so that it fails for good (a data fault is the
            // worker's: the trial would go back to the queue).
            16..18 => Outcome::Failed {
                kind: FailureKind::NonFiniteLoss,
                message: "loss is NaN".into(),
            },
            _ => continue,
        };
        s.complete(LeaseKey::new(*w, spec.id, *attempt), outcome, now)
            .unwrap();
        let changes = s.take_changes();
        index.update(&s, &changes);
    }
    let changes = s.take_changes();
    index.update(&s, &changes);
    (s, index, now)
}

fn clock(now: Instant) -> Clock {
    Clock {
        started: now,
        now: now + Duration::from_secs(60),
    }
}

/// Bytes of `snap` as `sweep.v1` and as JSON.
fn sizes(snap: &Snapshot) -> (usize, usize) {
    (
        v1::StatusResponse::from(snap).encoded_len(),
        serde_json::to_vec(snap).unwrap().len(),
    )
}

#[test]
fn the_status_of_any_number_of_trials_stays_small() {
    // The same bound at 40 trials and at 60 000: a detailed row lists every hyperparameter of
    // its trial (the live view's comparison needs them), which is what the bound allows for.
    const BOUND: usize = 96 * 1024;
    for (seeds, widths) in [(5, 8), (300, 200)] {
        let g = grid(seeds, widths, 30);
        let (s, index, now) = under_way(&g);
        let total = (seeds * widths) as usize;
        assert_eq!(index.totals().counts.total as usize, total);
        let summary = snapshot("big", &s, &index, clock(now), &View::default());
        let detail = detailed(&g, &s, &index, clock(now), &View::default());
        for snap in [&summary, &detail] {
            let (proto, json) = sizes(snap);
            assert!(
                proto < BOUND && json < BOUND,
                "{total} trials: a status of {proto} bytes ({json} as JSON)"
            );
            assert_eq!(snap.counts.total as usize, total);
            assert_eq!((snap.counts.running, snap.counts.succeeded), (14, 16));
        }
        if total <= ALL_TRIALS_UP_TO {
            assert_eq!(
                summary.trials.len(),
                total,
                "a small sweep lists every trial"
            );
        } else {
            // The 14 running and the 10 best (3 of them the experiment's best too).
            assert_eq!(summary.trials.len(), 14 + BEST_SHOWN);
            let best = &summary.best.as_ref().unwrap().trial;
            assert!(summary.trials.iter().any(|t| &t.name == best));
        }
        assert_eq!(detail.experiments.len(), 1);
        assert_eq!(detail.experiments[0].counts.failed, 2);
        assert_eq!(detail.experiments_total, 1);
        // A page of the most trials a page may hold is under a MiB too, with its curves.
        let page = detailed(
            &g,
            &s,
            &index,
            clock(now),
            &View {
                detail: true,
                trials: Some(Query {
                    limit: Query::page_size(u32::MAX),
                    ..Query::default()
                }),
            },
        );
        assert_eq!(page.trials.len(), total.min(MAX_PAGE as usize));
        let (proto, json) = sizes(&page);
        assert!(
            proto < 1 << 20 && json < 1 << 20,
            "a page of {proto} bytes ({json} as JSON)"
        );
    }
}

fn page(s: &Scheduler, index: &Index, now: Instant, q: Query) -> Snapshot {
    let view = View {
        detail: false,
        trials: Some(q),
    };
    snapshot("big", s, index, clock(now), &view)
}

#[test]
fn trials_come_a_page_at_a_time_filtered_by_state_experiment_or_name() {
    let g = grid(50, 40, 30);
    let (s, index, now) = under_way(&g);
    let succeeded = Query {
        offset: 2,
        limit: 5,
        state: Some(Phase::Succeeded),
        ..Query::default()
    };
    let p = page(&s, &index, now, succeeded);
    assert_eq!(
        p.page,
        Some(Page {
            offset: 2,
            limit: 5,
            matched: 16
        })
    );
    assert_eq!(p.trials.len(), 5);
    assert!(p.trials.iter().all(|t| t.state == Phase::Succeeded));
    let all_succeeded: Vec<String> = s
        .trials()
        .iter()
        .filter(|t| matches!(t.state, TrialState::Succeeded { .. }))
        .map(|t| t.spec.name.clone())
        .collect();
    let names: Vec<&String> = p.trials.iter().map(|t| &t.name).collect();
    assert_eq!(names, all_succeeded[2..7].iter().collect::<Vec<_>>());

    let running = Query {
        state: Some(Phase::Running),
        experiment: Some("e".into()),
        ..Query::default()
    };
    let p = page(&s, &index, now, running);
    assert_eq!((p.trials.len(), p.page.unwrap().matched), (14, 14));
    assert!(p.trials.iter().all(|t| t.worker.is_some() && t.epoch == 2));

    let pending = Query {
        offset: 1990,
        state: Some(Phase::Pending),
        ..Query::default()
    };
    let p = page(&s, &index, now, pending);
    assert_eq!(p.page.unwrap().matched, 2000 - 32);
    assert!(p.trials.is_empty(), "past the end");

    let name = s.trials()[1234].spec.name.clone();
    let id = s.trials()[1234].spec.id.to_string();
    for trial in [name.clone(), id] {
        let one = page(
            &s,
            &index,
            now,
            Query {
                trial: Some(trial),
                ..Query::default()
            },
        );
        assert_eq!(one.page.unwrap().matched, 1);
        assert_eq!(one.trials[0].name, name);
    }
    let nothing = page(
        &s,
        &index,
        now,
        Query {
            experiment: Some("nope".into()),
            ..Query::default()
        },
    );
    assert_eq!(
        (nothing.trials.len(), nothing.page.unwrap().matched),
        (0, 0)
    );
}

#[test]
fn long_curves_are_thinned_and_the_last_epoch_kept() {
    let g = grid(1, 1, 1000);
    let mut s = scheduler(&g);
    let now = Instant::now();
    let w = WorkerId::random();
    s.register(w, "w".into(), "cpu".into(), 1, now);
    let LeaseOutcome::Assigned { spec, attempt, .. } = s.lease(w, now).unwrap() else {
        panic!("no assignment");
    };
    for e in 1..=1000 {
        s.report_epoch(LeaseKey::new(w, spec.id, attempt), metrics(e), now)
            .unwrap();
    }
    let snap = detailed(&g, &s, &Index::new(&s), clock(now), &View::default());
    let history = &snap.trials[0].history;
    assert_eq!(history.len(), HISTORY_POINTS);
    assert_eq!(
        (history[0].epoch, history[HISTORY_POINTS - 1].epoch),
        (1, 1000)
    );
    assert!(history.windows(2).all(|p| p[0].epoch < p[1].epoch));
}

#[test]
fn live_tables_are_bounded_and_say_so() {
    let text = "[sweep]\nname='t'\nmax_trials=100000\n\
        [[experiment]]\nname='wide'\ndataset='fashion-mnist'\n[experiment.fixed]\nepochs=1\n\
        [experiment.grid]\nhidden_layers=[0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24]\n\
        hidden_width=[8,16]\n\
        [[experiment]]\nname='tall'\ndataset='fashion-mnist'\n[experiment.fixed]\nepochs=1\n\
        [experiment.grid]\nhidden_width=[LIST]\n\
        [[experiment]]\nname='many'\ndataset='fashion-mnist'\n[experiment.fixed]\nepochs=1\n\
        [experiment.grid]\nseed=[SEEDS]\n";
    let list = |n: u32| (1..=n).map(|i| i.to_string()).collect::<Vec<_>>().join(",");
    let text = text
        .replace("LIST", &list(60))
        .replace("SEEDS", &list(tables::TABLE_MAX_TRIALS as u32 + 1));
    let g = Grid::parse(&text, "t.toml").unwrap();
    let s = scheduler(&g);
    let snap = detailed(
        &g,
        &s,
        &Index::new(&s),
        clock(Instant::now()),
        &View::default(),
    );
    let [wide, tall, many] = snap.experiments.as_slice() else {
        panic!("{:?}", snap.experiments);
    };
    let pivot = &wide.tables[0];
    assert_eq!(pivot.header.len(), 1 + tables::TABLE_MAX_COLUMNS);
    assert!(pivot.rows.iter().all(|r| r.len() == pivot.header.len()));
    assert!(
        pivot
            .caption
            .starts_with("Test accuracy (%) (the first 20 of 25 columns"),
        "{}",
        pivot.caption
    );
    let configurations = &tall.tables[0];
    assert_eq!(configurations.rows.len(), tables::TABLE_MAX_ROWS);
    assert!(configurations.caption.contains("the first 50 of 60 rows"));
    assert!(many.tables.is_empty());
    assert!(
        many.note
            .as_deref()
            .unwrap()
            .contains("1001 trials are too many"),
        "{:?}",
        many.note
    );
}
