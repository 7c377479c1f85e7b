use std::time::{Duration, Instant};

use sweep_common::grid::Grid;
use sweep_common::{ConfusionMatrix, EpochMetrics, FinalMetrics, TrialId, TrialResult, WorkerId};

use super::*;
use crate::state::{
    CancelSelector, Checkpoint, Checkpoints, Config, FailureKind, LeaseKey, LeaseOutcome, Outcome,
    RetrySelector, Scheduler, StateError, Success, TrialState,
};

const GRID: &str = r#"
[sweep]
name = "store"
seed = 1

[[experiment]]
name = "e"
dataset = "fashion-mnist"
trial_name = "t_{seed}"

[experiment.fixed]
epochs = 3

[experiment.grid]
seed = [1, 2, 3]
"#;

fn config() -> Config {
    Config {
        lease_ttl: Duration::from_secs(10),
        max_attempts: 3,
        retry_after: Duration::from_millis(100),
    }
}

fn metrics(epoch: u32) -> EpochMetrics {
    EpochMetrics {
        epoch,
        train_loss: if epoch == 2 {
            f64::NAN
        } else {
            1.0 / f64::from(epoch)
        },
        train_accuracy: 50.0 + f64::from(epoch),
        test_accuracy: 40.0 + f64::from(epoch),
        seconds: 0.5,
        // A program trial's own metric on the last epoch (issue 19).
        scalars: if epoch == 3 {
            [("val_loss", 0.25)].into_iter().collect()
        } else {
            Default::default()
        },
    }
}

/// A result whose matrices fit the trial (1000 images, all on the diagonal of class 0).
fn result(spec: &sweep_common::TrialSpec) -> TrialResult {
    let n = 1000;
    let (_, test_len) = spec.split.sizes(n);
    let train_len = spec.train_subset_len(n);
    let classes = spec.dataset.num_classes();
    let m = |total: usize| {
        let mut m = ConfusionMatrix::zeros(classes);
        m.counts[0] = total as u64;
        m
    };
    TrialResult {
        epochs: (1..=spec.params.epochs).map(metrics).collect(),
        last: FinalMetrics {
            train_accuracy: 100.0,
            test_accuracy: 100.0,
            train_confusion: m(train_len),
            test_confusion: m(test_len),
            train_seconds: 1.5,
            dataset_images: n as u64,
        },
    }
}

struct Fixture {
    _dir: tempfile::TempDir,
    path: std::path::PathBuf,
    grid: Grid,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_owned();
    Fixture {
        _dir: dir,
        path,
        grid: Grid::parse(GRID, "g.toml").unwrap(),
    }
}

/// Opens the store and rebuilds the scheduler from it, as a restarted coordinator does.
fn reopen(f: &Fixture) -> (Store, Scheduler) {
    let mut store = Store::open(&f.path).unwrap();
    store.claim(&f.grid.name).unwrap();
    let mut loaded = store.load(&crate::state::KeepCurves::all()).unwrap();
    let trials: Vec<Trial> = f
        .grid
        .trials()
        .map(|s| {
            loaded
                .trials
                .remove(&s.id)
                .unwrap_or_else(|| Trial::new(s.clone()))
        })
        .collect();
    store.record_grid(&trials).unwrap();
    let s = Scheduler::restore(
        trials,
        loaded.workers,
        config(),
        Duration::from_secs(10),
        Instant::now(),
    );
    (store, s)
}

fn commit(store: &mut Store, s: &mut Scheduler) {
    let changes = s.take_changes();
    store.commit(s, &changes).unwrap();
}

#[test]
fn every_state_survives_a_restart() {
    let f = fixture();
    let (mut store, mut s) = reopen(&f);
    let now = Instant::now();
    let w = WorkerId::random();
    s.register(w, "w".into(), "cpu".into(), 3, now);
    let mut leases = Vec::new();
    for _ in 0..3 {
        match s.lease(w, now).unwrap() {
            LeaseOutcome::Assigned { spec, attempt, .. } => leases.push((spec, attempt)),
            other => panic!("{other:?}"),
        }
    }
    // Trial 0 succeeds (with a NaN loss in epoch 2), trial 1 fails for good, trial 2 stays
    // leased with one epoch reported and a checkpoint.
    let (s0, a0) = &leases[0];
    for e in 1..=3 {
        s.report_epoch(LeaseKey::new(w, s0.id, *a0), metrics(e), now)
            .unwrap();
    }
    s.complete(
        LeaseKey::new(w, s0.id, *a0),
        Outcome::Succeeded(result(s0)),
        now,
    )
    .unwrap();
    let (s1, a1) = &leases[1];
    s.complete(
        LeaseKey::new(w, s1.id, *a1),
        Outcome::Failed {
            kind: FailureKind::NonFiniteLoss,
            message: "nan".into(),
        },
        now,
    )
    .unwrap();
    let (s2, a2) = &leases[2];
    s.report_epoch(LeaseKey::new(w, s2.id, *a2), metrics(1), now)
        .unwrap();
    let c = Checkpoint {
        epoch: 1,
        attempt: *a2,
        file: "c.safetensors".into(),
        size: 3,
        sha256: "ab".repeat(32),
    };
    s.record_checkpoint(w, s2.id, c.clone(), now).unwrap();
    commit(&mut store, &mut s);
    drop(store);

    let (_store, r) = reopen(&f);
    let t0 = r.trial(s0.id).unwrap();
    assert!(matches!(&t0.state, TrialState::Succeeded(s) if s.attempt == 1 && s.worker == w));
    let got = t0.state.success().and_then(|s| s.final_metrics()).unwrap();
    let want = result(s0);
    assert_eq!(got, want.last);
    assert_eq!(t0.epochs.len(), 3);
    assert!(t0.epochs[1].train_loss.is_nan(), "a NaN loss stays NaN");
    assert_eq!(t0.epochs[2], want.epochs[2]);
    assert_eq!(
        t0.epochs[2].scalars.get("val_loss"),
        Some(0.25),
        "scalars survive"
    );
    let t1 = r.trial(s1.id).unwrap();
    assert_eq!(
        t1.state,
        TrialState::Failed {
            reason: "nan".into(),
            cancelled: false,
            checkpoints: Checkpoints::NONE,
        }
    );
    assert_eq!(t1.failures.len(), 1);
    assert_eq!(t1.failures[0].kind, FailureKind::NonFiniteLoss);
    let t2 = r.trial(s2.id).unwrap();
    assert!(
        matches!(&t2.state, TrialState::Leased { lease: l, .. } if l.worker == w && l.attempt == *a2)
    );
    assert_eq!(t2.epochs, vec![metrics(1)]);
    assert_eq!(t2.checkpoint(), Some(&c));
    // The worker is known again, with its lease.
    assert_eq!(r.workers()[&w].leases.len(), 1);
    assert_eq!(r.counts().succeeded, 1);
    assert_eq!(r.counts().failed, 1);
    assert_eq!(r.counts().leased, 1);
}

#[test]
fn superseded_epochs_are_kept_but_not_current() {
    let f = fixture();
    let (mut store, mut s) = reopen(&f);
    let now = Instant::now();
    let w = WorkerId::random();
    s.register(w, "w".into(), "cpu".into(), 1, now);
    let LeaseOutcome::Assigned { spec, attempt, .. } = s.lease(w, now).unwrap() else {
        panic!()
    };
    s.report_epoch(LeaseKey::new(w, spec.id, attempt), metrics(1), now)
        .unwrap();
    s.report_epoch(LeaseKey::new(w, spec.id, attempt), metrics(2), now)
        .unwrap();
    commit(&mut store, &mut s);
    // The lease expires: epochs 1 and 2 are superseded (no checkpoint).
    s.expire_leases(now + Duration::from_secs(11));
    commit(&mut store, &mut s);
    let rows: Vec<(u32, u32, u32)> = store
        .conn
        .prepare("SELECT attempt, epoch, superseded FROM epochs ORDER BY attempt, epoch")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(rows, [(1, 1, 1), (1, 2, 1)]);
    let (_store, r) = reopen(&f);
    assert!(r.trial(spec.id).unwrap().epochs.is_empty());
    assert!(matches!(
        r.trial(spec.id).unwrap().state,
        TrialState::Pending { .. }
    ));
}

#[test]
fn a_state_directory_of_another_sweep_is_refused() {
    let f = fixture();
    let store = Store::open(&f.path).unwrap();
    store.claim("a").unwrap();
    let e = store.claim("b").unwrap_err();
    assert!(e.to_string().contains("belongs to sweep \"a\""), "{e}");
}

#[test]
fn trials_dropped_from_the_grid_are_kept_and_named() {
    let f = fixture();
    let (mut store, s) = reopen(&f);
    let all: Vec<Trial> = s.trials().to_vec();
    let removed = store.record_grid(&all[..2]).unwrap();
    assert_eq!(removed, [all[2].spec.name.clone()]);
    assert_eq!(
        store
            .load(&crate::state::KeepCurves::all())
            .unwrap()
            .trials
            .len(),
        3
    );
}

#[test]
fn a_result_adds_the_epochs_whose_report_was_lost_and_never_replaces_one() {
    let f = fixture();
    let (mut store, mut s) = reopen(&f);
    let now = Instant::now();
    let w = WorkerId::random();
    s.register(w, "w".into(), "cpu".into(), 1, now);
    let LeaseOutcome::Assigned { spec, attempt, .. } = s.lease(w, now).unwrap() else {
        panic!()
    };
    let want = result(&spec);
    // Epoch 2's report was lost.
    for m in want.epochs.iter().filter(|m| m.epoch != 2) {
        s.report_epoch(LeaseKey::new(w, spec.id, attempt), m.clone(), now)
            .unwrap();
    }
    commit(&mut store, &mut s);
    // A result whose epoch 1 differs from the one accepted is refused, and changes nothing.
    let mut other = want.clone();
    other.epochs[0].test_accuracy = 1.0;
    let e = s
        .complete(
            LeaseKey::new(w, spec.id, attempt),
            Outcome::Succeeded(other),
            now,
        )
        .unwrap_err();
    assert!(
        matches!(&e, StateError::InvalidReport { field: "result.epochs", message } if message.contains("epoch 1 was accepted")),
        "{e}"
    );
    assert!(s.take_changes().is_empty());
    s.complete(
        LeaseKey::new(w, spec.id, attempt),
        Outcome::Succeeded(want.clone()),
        now,
    )
    .unwrap();
    let changes = s.take_changes();
    let added: Vec<u32> = changes
        .iter()
        .filter_map(|c| match c {
            Change::ResultEpoch { epoch, .. } => Some(*epoch),
            _ => None,
        })
        .collect();
    assert_eq!(added, [2]);
    store.commit(&s, &changes).unwrap();
    let (_store, r) = reopen(&f);
    let t = r.trial(spec.id).unwrap();
    assert_eq!(t.epochs.len(), want.epochs.len());
    assert_eq!(t.epochs[0], want.epochs[0]);
    assert!(t.epochs[1].train_loss.is_nan());
    assert_eq!(t.epochs[2..], want.epochs[2..]);
}

fn checkpoint(epoch: u32, attempt: u32) -> Checkpoint {
    Checkpoint {
        epoch,
        attempt,
        file: format!("c-a{attempt}-e{epoch}.safetensors"),
        size: 3,
        sha256: "ab".repeat(32),
    }
}

#[test]
fn checkpoints_set_aside_unusable_ones_and_cancels_survive_a_restart() {
    let f = fixture();
    let (mut store, mut s) = reopen(&f);
    let now = Instant::now();
    let w = WorkerId::random();
    s.register(w, "w".into(), "cpu".into(), 1, now);
    let LeaseOutcome::Assigned { spec, .. } = s.lease(w, now).unwrap() else {
        panic!()
    };
    for e in 1..=2 {
        s.report_epoch(LeaseKey::new(w, spec.id, 1), metrics(e), now)
            .unwrap();
        s.record_checkpoint(w, spec.id, checkpoint(e, 1), now)
            .unwrap();
    }
    let shutdown = Outcome::Failed {
        kind: FailureKind::WorkerShutdown,
        message: "bye".into(),
    };
    s.complete(LeaseKey::new(w, spec.id, 1), shutdown, now)
        .unwrap();
    s.lease(w, now).unwrap();
    let unusable = Outcome::Failed {
        kind: FailureKind::CheckpointUnusable,
        message: "truncated".into(),
    };
    s.complete(LeaseKey::new(w, spec.id, 2), unusable, now)
        .unwrap();
    let names: Vec<String> = s.trials().iter().map(|t| t.spec.name.clone()).collect();
    s.cancel(&CancelSelector {
        trials: vec![names[1].clone()],
        ..CancelSelector::default()
    });
    commit(&mut store, &mut s);
    drop(store);

    let (mut store, mut r) = reopen(&f);
    let t = r.trial(spec.id).unwrap();
    assert_eq!(t.checkpoint(), Some(&checkpoint(1, 1)));
    assert_eq!(t.previous_checkpoint(), None);
    assert_eq!(t.set_aside.len(), 1);
    assert_eq!(t.set_aside[0].checkpoint, checkpoint(2, 1));
    assert_eq!(t.set_aside[0].reason, "truncated");
    assert_eq!(t.unstarted_attempts, 1);
    let cancelled = &r.trials()[1];
    assert!(matches!(
        cancelled.state,
        TrialState::Failed {
            cancelled: true,
            ..
        }
    ));
    // A retry of every failed trial leaves the cancelled one, before and after a restart.
    let (retried, _) = r.retry(&RetrySelector {
        failed: true,
        ..RetrySelector::default()
    });
    assert!(retried.is_empty());
    commit(&mut store, &mut r);
}

#[test]
fn an_older_database_gets_the_new_columns_and_its_cancels_recognised() {
    let f = fixture();
    let (mut store, mut s) = reopen(&f);
    let names: Vec<String> = s.trials().iter().map(|t| t.spec.name.clone()).collect();
    s.cancel(&CancelSelector {
        trials: vec![names[0].clone()],
        reason: "enough".into(),
        ..CancelSelector::default()
    });
    commit(&mut store, &mut s);
    // As the schema was before these columns.
    store
        .conn
        .execute_batch(
            "ALTER TABLE trials DROP COLUMN unstarted_attempts;
             ALTER TABLE trials DROP COLUMN previous_checkpoint;
             ALTER TABLE trials DROP COLUMN set_aside;
             ALTER TABLE trials DROP COLUMN cancelled;",
        )
        .unwrap();
    drop(store);
    let (_store, r) = reopen(&f);
    assert_eq!(
        r.trials()[0].state,
        TrialState::Failed {
            reason: "cancelled: enough".into(),
            cancelled: true,
            checkpoints: Checkpoints::NONE,
        }
    );
    assert!(matches!(r.trials()[1].state, TrialState::Pending { .. }));
}

#[test]
fn a_database_without_the_schema_is_refused_and_left_alone() {
    // An empty file (what `touch sweep.db` leaves), and another program's database.
    let f = fixture();
    let db = f.path.join(DATABASE);
    std::fs::write(&db, b"").unwrap();
    let e = Store::open(&f.path).unwrap_err();
    assert!(matches!(e, StoreError::NoSchema { .. }), "{e}");
    assert!(
        e.to_string().contains("is not a sweep's state database"),
        "{e}"
    );
    assert_eq!(
        std::fs::metadata(&db).unwrap().len(),
        0,
        "the file was written"
    );

    let g = fixture();
    let db = g.path.join(DATABASE);
    {
        let other = Connection::open(&db).unwrap();
        other
            .execute_batch("CREATE TABLE notes (text TEXT); INSERT INTO notes VALUES ('mine');")
            .unwrap();
    }
    let e = Store::open(&g.path).unwrap_err();
    assert!(matches!(e, StoreError::NoSchema { .. }), "{e}");
    let other = Connection::open(&db).unwrap();
    let tables: i64 = other
        .query_row(
            "SELECT count(*) FROM sqlite_schema WHERE type = 'table'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(tables, 1, "tables were added to another program's database");
}

#[test]
fn a_new_database_is_made_whole_and_opens_again() {
    let f = fixture();
    drop(Store::open(&f.path).unwrap());
    // Only the database (no temporary file left behind), and it reopens.
    let names: Vec<String> = std::fs::read_dir(&f.path)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with("sweep.db-"))
        .collect();
    assert_eq!(names, [DATABASE]);
    let store = Store::open(&f.path).unwrap();
    assert_eq!(
        store.meta("schema_version").unwrap().as_deref(),
        Some(SCHEMA_VERSION)
    );
}

#[test]
fn a_lease_keeps_its_start_across_a_restart() {
    // The attempt's wall time runs from its lease, not from the coordinator's restart.
    let f = fixture();
    let (mut store, mut s) = reopen(&f);
    let Some(granted) = Instant::now().checked_sub(Duration::from_secs(60)) else {
        return; // a machine up for less than a minute: nothing to look back at
    };
    let w = WorkerId::random();
    s.register(w, "w".into(), "cpu".into(), 1, granted);
    let LeaseOutcome::Assigned { spec, attempt, .. } = s.lease(w, granted).unwrap() else {
        panic!()
    };
    commit(&mut store, &mut s);
    drop(store);

    let (_store, mut r) = reopen(&f);
    let now = Instant::now();
    let want = result(&spec);
    r.heartbeat(w, &[(spec.id, attempt)], now).unwrap();
    for m in &want.epochs {
        r.report_epoch(LeaseKey::new(w, spec.id, attempt), m.clone(), now)
            .unwrap();
    }
    r.complete(
        LeaseKey::new(w, spec.id, attempt),
        Outcome::Succeeded(want),
        now,
    )
    .unwrap();
    let Some(&Success { wall_seconds, .. }) = r.trial(spec.id).unwrap().state.success() else {
        panic!("not succeeded")
    };
    assert!(
        (59.0..70.0).contains(&wall_seconds),
        "wall_seconds {wall_seconds} should count from the lease a minute ago"
    );
}

#[test]
fn a_database_without_the_lease_start_column_gets_it() {
    // A database written before `lease_granted` existed: the column is added, nothing else.
    let f = fixture();
    drop(Store::open(&f.path).unwrap());
    {
        let c = Connection::open(f.path.join(DATABASE)).unwrap();
        c.execute("ALTER TABLE trials DROP COLUMN lease_granted", [])
            .unwrap();
    }
    let (_store, s) = reopen(&f);
    assert_eq!(s.trials().len(), 3);
}

const STOPPING_GRID: &str = r#"
[sweep]
name = "store"
seed = 1

[[experiment]]
name = "e"
dataset = "fashion-mnist"

[experiment.fixed]
epochs = 4

[experiment.grid]
learning_rate = [0.001, 0.002]
seed = [1, 2]

[experiment.stopping]
rule = "asha"
min_epochs = 1
reduction = 2
"#;

/// Opens the store of a grid with a stopping rule and rebuilds the scheduler with its journal.
fn reopen_stopping(f: &Fixture) -> (Store, Scheduler) {
    let (store, mut s) = reopen(f);
    let rules: Vec<_> = f
        .grid
        .experiments
        .iter()
        .filter_map(|e| Some((e.name.clone(), e.stopping?)))
        .collect();
    let journal = store
        .load(&crate::state::KeepCurves::all())
        .unwrap()
        .decisions;
    assert_eq!(s.set_stopping(&rules, &journal), 0);
    (store, s)
}

/// Leases every trial to one worker and reports epoch 1 of each (rate 0.002 scores higher).
fn stop_the_first_configuration(store: &mut Store, s: &mut Scheduler) -> WorkerId {
    let now = Instant::now();
    let w = WorkerId::random();
    s.register(w, "w".into(), "cpu".into(), 8, now);
    let leased: Vec<_> = (0..4)
        .map(|_| match s.lease(w, now).unwrap() {
            LeaseOutcome::Assigned { spec, attempt, .. } => (spec, attempt),
            other => panic!("{other:?}"),
        })
        .collect();
    for (spec, attempt) in &leased {
        let mut m = metrics(1);
        m.test_accuracy = spec.params.learning_rate * 10_000.0;
        s.report_epoch(LeaseKey::new(w, spec.id, *attempt), m, now)
            .unwrap();
        commit(store, s);
    }
    w
}

#[test]
fn stopped_trials_and_the_decisions_survive_a_restart() {
    let mut f = fixture();
    f.grid = Grid::parse(STOPPING_GRID, "g.toml").unwrap();
    let (mut store, mut s) = reopen_stopping(&f);
    stop_the_first_configuration(&mut store, &mut s);
    let before: Vec<TrialState> = s.trials().iter().map(|t| t.state.clone()).collect();
    assert_eq!(s.counts().stopped, 2, "{before:?}");
    let journal = s.stopping().rules[0].journal.clone();
    assert!(!journal.is_empty());
    drop(store);

    let (_store, r) = reopen_stopping(&f);
    for (t, was) in r.trials().iter().zip(&before) {
        match (&t.state, was) {
            (TrialState::Leased { lease: a, .. }, TrialState::Leased { lease: b, .. }) => {
                assert_eq!((a.worker, a.attempt), (b.worker, b.attempt));
            }
            (now, was) => assert_eq!(now, was),
        }
    }
    assert_eq!(r.stopping().rules[0].journal, journal);
    assert_eq!(r.counts().stopped, 2);
}

#[test]
fn an_older_database_learns_the_stopped_state() {
    // A database made before trials could be stopped: its state check refuses 'stopped' and it
    // has neither the column nor the decisions table.
    let mut f = fixture();
    f.grid = Grid::parse(STOPPING_GRID, "g.toml").unwrap();
    drop(reopen(&f));
    {
        let c = Connection::open(f.path.join(DATABASE)).unwrap();
        let sql: String = c
            .query_row(
                "SELECT sql FROM sqlite_schema WHERE name = 'trials'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        let old = sql
            .replace(", 'stopped')", ")")
            .replace("CREATE TABLE trials", "CREATE TABLE trials_old");
        assert_ne!(old, sql);
        c.execute_batch(&format!(
            "PRAGMA foreign_keys = OFF; BEGIN; {old}; INSERT INTO trials_old SELECT * FROM trials;
             DROP TABLE trials; ALTER TABLE trials_old RENAME TO trials;
             ALTER TABLE trials DROP COLUMN stopped_epoch; DROP TABLE decisions; COMMIT;"
        ))
        .unwrap();
        let refused = c.execute("UPDATE trials SET state = 'stopped' WHERE num = 1", []);
        assert!(refused.is_err(), "the old check refuses the state");
    }
    let (mut store, mut s) = reopen_stopping(&f);
    stop_the_first_configuration(&mut store, &mut s);
    assert_eq!(s.counts().stopped, 2);
    drop(store);
    let (_store, r) = reopen_stopping(&f);
    assert_eq!(r.counts().stopped, 2);
    assert_eq!(r.trials().len(), 4);
}

const TPE_GRID: &str = "[sweep]\nname = \"store\"\nseed = 1\n[[experiment]]\nname = \"e\"\n\
                        dataset = \"fashion-mnist\"\n[experiment.fixed]\nepochs = 1\n\
                        [experiment.sample]\ntrials = 13\nmethod = \"tpe\"\n\
                        [experiment.sample.space]\n\
                        learning_rate = { loguniform = [0.0001, 0.1] }\n";

/// Opens the store as `open_state` does for a `tpe` grid: the grid's trials, then those
/// proposed before, in their order.
fn reopen_search(f: &Fixture) -> (Store, Scheduler) {
    let mut store = Store::open(&f.path).unwrap();
    store.claim(&f.grid.name).unwrap();
    let mut loaded = store.load(&crate::state::KeepCurves::all()).unwrap();
    let mut trials: Vec<Trial> = f
        .grid
        .trials()
        .map(|s| {
            loaded
                .trials
                .remove(&s.id)
                .unwrap_or_else(|| Trial::new(s.clone()))
        })
        .collect();
    trials.extend(crate::state::restore_proposals(
        &f.grid,
        &loaded.order,
        &mut loaded.trials,
    ));
    assert!(store.record_grid(&trials).unwrap().is_empty());
    let mut s = Scheduler::restore(
        trials,
        loaded.workers,
        config(),
        Duration::from_secs(10),
        Instant::now(),
    );
    s.set_search(crate::state::searches_of(&f.grid));
    (store, s)
}

#[test]
fn proposed_trials_are_inserted_with_their_lease_and_restored_in_order() {
    let mut f = fixture();
    f.grid = Grid::parse(TPE_GRID, "g.toml").unwrap();
    let (mut store, mut s) = reopen_search(&f);
    assert_eq!(s.trials().len(), 10);
    let now = Instant::now();
    let w = WorkerId::random();
    s.register(w, "w".into(), "cpu".into(), 20, now);
    let mut leased = Vec::new();
    // Ten drawn up front, then two proposals, each committed with its lease.
    for _ in 0..12 {
        match s.lease(w, now).unwrap() {
            LeaseOutcome::Assigned { spec, attempt, .. } => leased.push((spec, attempt)),
            other => panic!("{other:?}"),
        }
        commit(&mut store, &mut s);
    }
    let (spec, attempt) = &leased[11];
    s.complete(
        LeaseKey::new(w, spec.id, *attempt),
        Outcome::Succeeded(result(spec)),
        now,
    )
    .unwrap();
    commit(&mut store, &mut s);
    let ids = |s: &Scheduler| -> Vec<TrialId> { s.trials().iter().map(|t| t.spec.id).collect() };
    let before = (ids(&s), s.counts());
    drop(store);
    let (_store, r) = reopen_search(&f);
    assert_eq!(r.trials().len(), 12);
    assert_eq!((ids(&r), r.counts()), before);
    assert!(r.trial(spec.id).unwrap().scores().is_some());
    assert_eq!(r.proposals(), (12, 13));
    assert!(!r.is_finished());
}

/// Issue 20: a succeeded trial archived (its curve and matrices out of memory) reads back whole
/// from the database, its row rewritten later keeps its result, and a restart loads it archived
/// with the same curve totals, or whole where its experiment keeps curves.
#[test]
fn an_archived_trial_reads_back_whole_and_restarts_archived() {
    let f = fixture();
    let (mut store, mut s) = reopen(&f);
    let now = Instant::now();
    let w = WorkerId::random();
    s.register(w, "w".into(), "cpu".into(), 1, now);
    let LeaseOutcome::Assigned { spec, attempt, .. } = s.lease(w, now).unwrap() else {
        panic!("a lease")
    };
    let key = LeaseKey::new(w, spec.id, attempt);
    for e in 1..=3 {
        s.report_epoch(key, metrics(e), now).unwrap();
    }
    s.complete(key, Outcome::Succeeded(result(&spec)), now)
        .unwrap();
    commit(&mut store, &mut s);
    let whole = s.trial(spec.id).unwrap().clone();
    let totals = crate::state::CurveTotals::of(&whole.epochs);

    assert!(s.archive(spec.id));
    assert!(!s.archive(spec.id), "once");
    let t = s.trial(spec.id).unwrap();
    assert!(t.is_archived() && t.epochs.is_empty());
    let success = t.state.success().unwrap();
    assert!(success.matrices.is_none() && success.final_metrics().is_none());
    assert_eq!(Some(&success.scores), whole.scores());
    assert_eq!((t.curve_totals(), t.epoch_count()), (totals, 3));
    // A later write of its row (here: the same state again) keeps the stored result.
    store.commit(&s, &[Change::Trial(spec.id)]).unwrap();

    let reader = Reader::open(store.path()).unwrap();
    let stored = reader.stored(spec.id).unwrap();
    assert_eq!(stored.epochs.len(), 3);
    assert!(stored.epochs[1].train_loss.is_nan());
    assert_eq!(stored.epochs[2], whole.epochs[2]);
    let whole_result = whole.state.success().and_then(|s| s.final_metrics());
    assert_eq!(stored.result, whole_result);
    drop(store);

    let store = Store::open(&f.path).unwrap();
    store.claim(&f.grid.name).unwrap();
    let archived = store.load(&crate::state::KeepCurves::of(&f.grid)).unwrap();
    let t = &archived.trials[&spec.id];
    assert!(t.is_archived() && t.epochs.is_empty());
    assert_eq!(t.curve_totals(), totals);
    assert_eq!(t.scores().unwrap().test_accuracy, 100.0);
    let kept = store.load(&crate::state::KeepCurves::all()).unwrap();
    let t = &kept.trials[&spec.id];
    assert!(!t.is_archived());
    assert_eq!(t.epochs.len(), 3);
    assert_eq!(
        t.state.success().and_then(|s| s.final_metrics()),
        whole_result
    );
}

/// An edited grid asking for more epochs (`lineage`): the succeeded trial kept its latest
/// checkpoint, and the grown trial takes its row over in one transaction, pending from that
/// checkpoint, its curve up to it current and the epoch after it superseded.
#[test]
fn a_grown_trial_adopts_the_recorded_row() {
    let f = fixture();
    let (mut store, mut s) = reopen(&f);
    let now = Instant::now();
    let w = WorkerId::random();
    s.register(w, "w".into(), "cpu".into(), 1, now);
    let LeaseOutcome::Assigned { spec, attempt, .. } = s.lease(w, now).unwrap() else {
        panic!()
    };
    let key = LeaseKey::new(w, spec.id, attempt);
    for e in 1..=3 {
        s.report_epoch(key, metrics(e), now).unwrap();
        if e < 3 {
            let c = Checkpoint {
                epoch: e,
                attempt,
                file: format!("c{e}"),
                size: 3,
                sha256: "ab".repeat(32),
            };
            s.record_checkpoint(w, spec.id, c, now).unwrap();
        }
    }
    let effects = s
        .complete(key, Outcome::Succeeded(result(&spec)), now)
        .unwrap();
    assert!(
        effects.contains(&crate::state::Effect::DropCheckpoint("c1".into()))
            && !effects.contains(&crate::state::Effect::DropCheckpoint("c2".into())),
        "only the checkpoint before the latest is dropped: {effects:?}"
    );
    commit(&mut store, &mut s);
    drop(store);

    let mut store = Store::open(&f.path).unwrap();
    let mut loaded = store.load(&crate::state::KeepCurves::all()).unwrap();
    let old = loaded.trials.remove(&spec.id).unwrap();
    assert!(
        matches!(&old.state, TrialState::Succeeded(s) if s.checkpoint.as_ref().map(|c| c.epoch) == Some(2)),
        "the latest checkpoint survives the restart: {:?}",
        old.state
    );
    let grown = Grid::parse(&GRID.replace("epochs = 3", "epochs = 5"), "g.toml").unwrap();
    let new = grown.trials().next().unwrap().clone();
    assert_ne!(new.id, spec.id);
    let (t, kept) = crate::lineage::grow(old, new.clone());
    store
        .record_grid_adopting(
            &[t],
            &[Adopted {
                from: spec.id,
                to: new.id,
                kept,
            }],
        )
        .unwrap();
    drop(store);

    let store = Store::open(&f.path).unwrap();
    let loaded = store.load(&crate::state::KeepCurves::all()).unwrap();
    assert!(!loaded.trials.contains_key(&spec.id), "renamed");
    let t = &loaded.trials[&new.id];
    assert_eq!(t.spec, new);
    assert_eq!(t.checkpoint().map(|c| c.epoch), Some(2));
    assert!(
        matches!(t.state, TrialState::Pending { .. }),
        "{:?}",
        t.state
    );
    assert_eq!(t.epochs.len(), 2);
    assert_eq!(t.epochs[0], metrics(1));
    let superseded: u32 = store
        .conn
        .query_row(
            "SELECT count(*) FROM epochs WHERE superseded = 1 AND epoch = 3",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(superseded, 1);
}

/// An operator's promotion to more epochs (`coordinator promote --epochs`): the row is renamed
/// before anything else of its batch is written (here an epoch the resumed attempt reported,
/// named by the new id), and the promotion of its lineage is recorded, in a database made
/// before promotions were (the previous version's: opening it adds the table).
#[test]
fn a_promoted_trial_is_renamed_and_its_promotion_recorded() {
    let f = fixture();
    drop(reopen(&f));
    Connection::open(f.path.join(DATABASE))
        .unwrap()
        .execute_batch("DROP TABLE promotions")
        .unwrap();
    let (mut store, mut s) = reopen(&f);
    let now = Instant::now();
    let w = WorkerId::random();
    s.register(w, "w".into(), "cpu".into(), 1, now);
    let LeaseOutcome::Assigned { spec, attempt, .. } = s.lease(w, now).unwrap() else {
        panic!()
    };
    let key = LeaseKey::new(w, spec.id, attempt);
    for e in 1..=3 {
        s.report_epoch(key, metrics(e), now).unwrap();
    }
    let c = Checkpoint {
        epoch: 2,
        attempt,
        file: "c2".into(),
        size: 3,
        sha256: "ab".repeat(32),
    };
    s.record_checkpoint(w, spec.id, c, now).unwrap();
    s.complete(key, Outcome::Succeeded(result(&spec)), now)
        .unwrap();
    commit(&mut store, &mut s);

    let plan = s
        .check_more_epochs(std::slice::from_ref(&spec.name), 5)
        .unwrap();
    let (_, ids) = s.more_epochs(plan, std::collections::HashMap::new());
    let new = ids[0];
    let LeaseOutcome::Assigned {
        spec: grown,
        attempt,
        resume,
    } = s.lease(w, now).unwrap()
    else {
        panic!()
    };
    assert_eq!((grown.id, grown.params.epochs), (new, 5));
    assert_eq!(resume.map(|c| c.epoch), Some(2));
    s.report_epoch(LeaseKey::new(w, new, attempt), metrics(3), now)
        .unwrap();
    commit(&mut store, &mut s);
    drop(store);

    let store = Store::open(&f.path).unwrap();
    let loaded = store.load(&crate::state::KeepCurves::all()).unwrap();
    assert!(!loaded.trials.contains_key(&spec.id), "renamed");
    let t = &loaded.trials[&new];
    assert_eq!(t.spec, grown);
    assert_eq!(t.attempts, 2);
    assert_eq!(
        t.epochs.iter().map(|m| m.epoch).collect::<Vec<_>>(),
        [1, 2, 3],
        "one current row per epoch, the third the new attempt's"
    );
    let lineage = grown.lineage_id().unwrap();
    assert_eq!(
        loaded.promotions,
        std::collections::HashMap::from([(lineage, 5)])
    );
}
