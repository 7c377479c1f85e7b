//! Tests of the budget's lease gate (`budget.rs`).

use std::time::Instant;

use super::tests::{assigned, config, metrics, result, specs, worker};
use super::*;

/// Seconds in an hour.
const HOUR: f64 = 3600.0;

/// Trains the leased trial `spec` through its epochs (each 0.1 s, as `metrics` says) and
/// completes it; returns the effects of the completion.
fn train(
    s: &mut Scheduler,
    w: sweep_common::WorkerId,
    spec: &sweep_common::TrialSpec,
    attempt: u32,
    now: Instant,
) -> Vec<Effect> {
    for e in 1..=spec.params.epochs {
        s.report_epoch(LeaseKey::new(w, spec.id, attempt), metrics(e), now)
            .unwrap();
    }
    s.complete(
        LeaseKey::new(w, spec.id, attempt),
        Outcome::Succeeded(result(spec)),
        now,
    )
    .unwrap()
}

#[test]
fn a_trial_nothing_measured_is_leased_whatever_the_budget() {
    let t0 = Instant::now();
    let mut s = Scheduler::new(specs(2, 2), config());
    s.set_budget(Some(1e-9));
    let w = worker(&mut s, t0, 2);
    assigned(s.lease(w, t0).unwrap());
    assigned(s.lease(w, t0).unwrap());
    assert!(s.expire_leases(t0).is_empty());
}

#[test]
fn no_budget_stops_nothing() {
    let t0 = Instant::now();
    let mut s = Scheduler::new(specs(3, 2), config());
    let w = worker(&mut s, t0, 1);
    let (spec, attempt) = assigned(s.lease(w, t0).unwrap());
    train(&mut s, w, &spec, attempt, t0);
    assert_eq!(s.budget(), None);
    assigned(s.lease(w, t0).unwrap());
    assert!(s.expire_leases(t0).is_empty());
}

/// Four trials of two 0.1 s epochs on a budget of 0.45 s: the first is measured, the second
/// fits (0.2 + 0.2), the third does not once the second runs (0.3 spent + 0.1 left + 0.2).
fn over_budget() -> (
    Scheduler,
    sweep_common::WorkerId,
    sweep_common::TrialSpec,
    Instant,
) {
    let t0 = Instant::now();
    let mut s = Scheduler::new(specs(4, 2), config());
    s.set_budget(Some(0.45 / HOUR));
    let a = worker(&mut s, t0, 1);
    let (first, attempt) = assigned(s.lease(a, t0).unwrap());
    assert!(!train(&mut s, a, &first, attempt, t0).contains(&Effect::SweepFinished));
    let (second, attempt) = assigned(s.lease(a, t0).unwrap());
    s.report_epoch(LeaseKey::new(a, second.id, attempt), metrics(1), t0)
        .unwrap();
    (s, a, second, t0)
}

#[test]
fn the_budget_stops_leasing_and_the_sweep_ends_with_the_rest_not_run() {
    let (mut s, a, second, t0) = over_budget();
    let b = worker(&mut s, t0, 1);
    assert_eq!(s.lease(b, t0), Ok(LeaseOutcome::Wait(config().retry_after)));
    let effects = s.expire_leases(t0);
    let ended = effects
        .iter()
        .filter(|e| matches!(e, Effect::TrialEnded(_)))
        .count();
    assert_eq!(ended, 2, "{effects:?}");
    let b = s.budget().unwrap();
    assert_eq!(b.stopped, 2);
    assert!((b.spent_seconds - 0.3).abs() < 1e-9, "{b:?}");
    assert!((b.committed_seconds - 0.4).abs() < 1e-9, "{b:?}");
    for t in &s.trials()[2..] {
        assert!(stopped_by_budget(&t.state), "{:?}", t.state);
    }
    // The running trial finishes, and with it the sweep.
    let c = s.counts();
    assert_eq!((c.pending, c.leased, c.stopped), (0, 1, 2));
    s.report_epoch(LeaseKey::new(a, second.id, 1), metrics(2), t0)
        .unwrap();
    let done = s
        .complete(
            LeaseKey::new(a, second.id, 1),
            Outcome::Succeeded(result(&second)),
            t0,
        )
        .unwrap();
    assert!(done.contains(&Effect::SweepFinished), "{done:?}");
    assert!(s.is_finished());
}

#[test]
fn a_restarted_scheduler_judges_the_budget_from_the_recorded_epochs() {
    let (s, _, _, t0) = over_budget();
    let mut restored = Scheduler::restore(
        s.trials().to_vec(),
        Vec::new(),
        config(),
        config().lease_ttl,
        t0,
    );
    restored.set_budget(Some(0.45 / HOUR));
    assert_eq!(restored.budget(), s.budget());
    let effects = restored.expire_leases(t0);
    assert_eq!(
        effects
            .iter()
            .filter(|e| matches!(e, Effect::TrialEnded(_)))
            .count(),
        2
    );
    // What it stopped stays stopped after another restart.
    let again = Scheduler::restore(
        restored.trials().to_vec(),
        Vec::new(),
        config(),
        config().lease_ttl,
        t0,
    );
    assert_eq!(again.counts().stopped, 2);
}

#[test]
fn a_shape_nothing_measured_is_estimated_at_its_experiments_mean() {
    let text = "[sweep]\nname='s'\n[[experiment]]\nname='e'\ndataset='fashion-mnist'\n\
                [experiment.fixed]\nepochs=2\nhidden_layers=1\n\
                [experiment.grid]\nhidden_width=[8,9,10]\n";
    let specs: Vec<_> = sweep_common::grid::Grid::parse(text, "t.toml")
        .unwrap()
        .trials()
        .cloned()
        .collect();
    let t0 = Instant::now();
    let mut s = Scheduler::new(specs, config());
    // Room for the first (0.2 s) and one more, not two.
    s.set_budget(Some(0.45 / HOUR));
    let a = worker(&mut s, t0, 1);
    let (first, attempt) = assigned(s.lease(a, t0).unwrap());
    train(&mut s, a, &first, attempt, t0);
    let (second, attempt) = assigned(s.lease(a, t0).unwrap());
    assert_ne!(second.params.hidden_width, first.params.hidden_width);
    train(&mut s, a, &second, attempt, t0);
    assert_eq!(s.lease(a, t0), Ok(LeaseOutcome::Wait(config().retry_after)));
    assert!(s.expire_leases(t0).contains(&Effect::SweepFinished));
    assert_eq!(s.budget().map(|b| b.stopped), Some(1));
}
