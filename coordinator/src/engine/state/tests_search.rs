//! Tests of TPE proposals at run time: the budget met exactly, no configuration twice with
//! several workers leasing at once, and a restart at any point restoring the same trials and
//! proposing what an uninterrupted run proposes.

use std::collections::{BTreeSet, HashMap};
use std::time::Instant;

use sweep_common::grid::Grid;
use sweep_common::{TrialId, TrialSpec, WorkerId};

use super::tests::{assigned, config, result, worker};
use super::*;

/// A `tpe` experiment of `trials` configurations (10 drawn up front), `repeats` seeds each.
fn grid(trials: u32, repeats: u32) -> Grid {
    let text = format!(
        "[sweep]\nname='s'\nseed=3\n[[experiment]]\nname='e'\ndataset='fashion-mnist'\n\
         repeats={repeats}\n[experiment.fixed]\nepochs=2\n[experiment.sample]\ntrials={trials}\n\
         method='tpe'\n[experiment.sample.space]\n\
         learning_rate={{ loguniform=[0.0001, 0.1] }}\n\
         hidden_layers={{ int=[1, 3] }}\n\
         activation={{ choice=['relu', 'tanh'] }}\n"
    );
    Grid::parse(&text, "t.toml").unwrap()
}

fn scheduler(g: &Grid) -> Scheduler {
    let mut s = Scheduler::new(g.trials().cloned(), config());
    s.set_search(searches_of(g));
    s
}

/// Ends a lease with a result whose test accuracy peaks at a learning rate of 0.01.
fn succeed(s: &mut Scheduler, w: WorkerId, spec: &TrialSpec, attempt: u32, now: Instant) {
    let mut r = result(spec);
    let score = 90.0 - (spec.params.learning_rate.log10() + 2.0).abs() * 10.0;
    for m in &mut r.epochs {
        m.test_accuracy = score;
    }
    s.complete(
        LeaseKey::new(w, spec.id, attempt),
        Outcome::Succeeded(r),
        now,
    )
    .unwrap();
}

fn configurations(s: &Scheduler) -> BTreeSet<String> {
    s.trials().iter().map(|t| t.spec.configuration()).collect()
}

/// Runs the sweep with `workers` workers of `slots` slots, each lease answered as soon as all
/// workers have asked: returns the scheduler at the end.
fn run(g: &Grid, workers: usize, slots: u32) -> Scheduler {
    let now = Instant::now();
    let mut s = scheduler(g);
    let ws: Vec<WorkerId> = (0..workers).map(|_| worker(&mut s, now, slots)).collect();
    for _round in 0..1000 {
        let mut leased = Vec::new();
        for &w in &ws {
            while let LeaseOutcome::Assigned { spec, attempt, .. } = s.lease(w, now).unwrap() {
                leased.push((w, spec, attempt));
            }
        }
        if leased.is_empty() {
            break;
        }
        for (w, spec, attempt) in leased {
            succeed(&mut s, w, &spec, attempt, now);
        }
    }
    s
}

#[test]
fn proposals_fill_the_budget_exactly_with_no_configuration_twice() {
    let g = grid(16, 2);
    assert_eq!(
        g.trials().count(),
        20,
        "10 configurations drawn up front, 2 seeds each"
    );
    for (workers, slots) in [(1, 1), (3, 2), (8, 4)] {
        let s = run(&g, workers, slots);
        assert!(s.is_finished(), "{workers} x {slots}");
        assert_eq!(s.trials().len(), 32, "{workers} x {slots}");
        assert_eq!(configurations(&s).len(), 16, "{workers} x {slots}");
        let ids: BTreeSet<_> = s.trials().iter().map(|t| t.spec.id).collect();
        assert_eq!(ids.len(), 32);
        assert_eq!(s.counts().succeeded, 32);
        // Proposed trials get the names and ids the grid's builder gives them.
        let b = g.experiments[0].builder.as_deref().unwrap();
        assert!(s.trials().iter().all(|t| b.makes(&t.spec)));
    }
}

#[test]
fn the_sweep_is_not_finished_while_the_budget_is_not_met() {
    let g = grid(12, 1);
    let now = Instant::now();
    let mut s = scheduler(&g);
    let w = worker(&mut s, now, 1);
    for n in 0..12 {
        assert!(!s.is_finished());
        let (spec, attempt) = assigned(s.lease(w, now).unwrap());
        let changes = s.take_changes();
        // A proposal's trial is journaled with the lease that caused it.
        assert_eq!(
            changes.contains(&Change::NewTrial(spec.id)),
            n >= 10,
            "lease {n}"
        );
        succeed(&mut s, w, &spec, attempt, now);
    }
    assert!(s.is_finished());
    assert_eq!(s.lease(w, now).unwrap(), LeaseOutcome::Finished);
    assert_eq!(s.proposals(), (12, 12));
}

/// What a restart reads back: every trial, in order, and the workers.
fn restart(g: &Grid, s: &Scheduler, workers: &[WorkerId]) -> Scheduler {
    let order: Vec<TrialId> = s.trials().iter().map(|t| t.spec.id).collect();
    let mut recorded: HashMap<TrialId, Trial> =
        s.trials().iter().map(|t| (t.spec.id, t.clone())).collect();
    let mut trials: Vec<Trial> = g
        .trials()
        .map(|spec| recorded.remove(&spec.id).unwrap())
        .collect();
    trials.extend(restore_proposals(g, &order, &mut recorded));
    assert!(recorded.is_empty(), "every recorded trial is restored");
    let ws = workers
        .iter()
        .map(|w| (*w, "w".to_owned(), "cpu".to_owned(), 2))
        .collect();
    let now = Instant::now();
    let mut r = Scheduler::restore(trials, ws, config(), config().lease_ttl, now);
    r.set_search(searches_of(g));
    r
}

#[test]
fn a_restart_at_any_point_restores_the_same_trials_and_proposes_the_same() {
    let g = grid(15, 1);
    let now = Instant::now();
    let mut s = scheduler(&g);
    let ws: Vec<WorkerId> = (0..2).map(|_| worker(&mut s, now, 2)).collect();
    let mut live: Vec<(WorkerId, TrialSpec, u32)> = Vec::new();
    for step in 0..40 {
        // A restart here has the same trials, in the same order, in the same states.
        let mut r = restart(&g, &s, &ws);
        let ids =
            |s: &Scheduler| -> Vec<TrialId> { s.trials().iter().map(|t| t.spec.id).collect() };
        assert_eq!(ids(&r), ids(&s), "step {step}");
        assert_eq!(r.counts(), s.counts(), "step {step}");
        assert_eq!(r.is_finished(), s.is_finished());
        let w = ws[step % 2];
        // And leases (proposing if need be) what the uninterrupted run leases.
        let a = s.lease(w, now).unwrap();
        let b = r.lease(w, now).unwrap();
        assert_eq!(a, b, "step {step}");
        if let LeaseOutcome::Assigned { spec, attempt, .. } = a {
            live.push((w, spec, attempt));
        }
        // Results come back in an order that is not the leases'.
        if step % 3 == 2 {
            while let Some((w, spec, attempt)) = live.pop() {
                succeed(&mut s, w, &spec, attempt, now);
            }
        }
    }
    for (w, spec, attempt) in live {
        succeed(&mut s, w, &spec, attempt, now);
    }
    while !s.is_finished() {
        let (spec, attempt) = assigned(s.lease(ws[0], now).unwrap());
        succeed(&mut s, ws[0], &spec, attempt, now);
    }
    assert_eq!(configurations(&s).len(), 15);
    assert_eq!(s.trials().len(), 15);
}
