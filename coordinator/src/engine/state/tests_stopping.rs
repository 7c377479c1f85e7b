//! Tests of early stopping in the state machine: decisions applied to every seed of a
//! configuration, journaled as changes, the same after a restart, and promotion.

use std::collections::BTreeSet;
use std::time::Instant;

use sweep_common::grid::Grid;
use sweep_common::search::stopping::Action;
use sweep_common::{EpochMetrics, TrialSpec, WorkerId};

use super::tests::{assigned, config, worker};
use super::*;

/// A grid of `rates` learning rates x 2 seeds, `epochs` epochs, under `stopping`.
fn grid(rates: usize, epochs: u32, stopping: &str) -> Grid {
    let rates: Vec<String> = (1..=rates).map(|i| format!("0.00{i}")).collect();
    let text = format!(
        "[sweep]\nname='s'\n[[experiment]]\nname='e'\ndataset='fashion-mnist'\n\
         [experiment.fixed]\nepochs={epochs}\n\
         [experiment.grid]\nlearning_rate=[{}]\nseed=[1,2]\n\
         [experiment.stopping]\n{stopping}\n",
        rates.join(",")
    );
    Grid::parse(&text, "t.toml").unwrap()
}

fn scheduler(g: &Grid) -> Scheduler {
    let mut s = Scheduler::new(g.trials().cloned(), config());
    let rules = rules(g);
    assert_eq!(s.set_stopping(&rules, &[]), 0);
    s
}

fn rules(g: &Grid) -> Vec<(String, sweep_common::search::StoppingSpec)> {
    g.experiments
        .iter()
        .filter_map(|e| Some((e.name.clone(), e.stopping?)))
        .collect()
}

/// The test accuracy trial `spec` reports at `epoch`: by learning rate, and by seed.
fn accuracy(spec: &TrialSpec, epoch: u32, by_seed: &dyn Fn(u64) -> f64) -> f64 {
    spec.params.learning_rate * 10_000.0 + f64::from(epoch) + by_seed(spec.params.seed)
}

fn report(
    s: &mut Scheduler,
    w: WorkerId,
    spec: &TrialSpec,
    attempt: u32,
    epoch: u32,
    value: f64,
    now: Instant,
) -> Result<Vec<Effect>, StateError> {
    let m = EpochMetrics {
        epoch,
        train_loss: 0.5,
        train_accuracy: value,
        test_accuracy: value,
        seconds: 0.1,
        scalars: Default::default(),
    };
    s.report_epoch(LeaseKey::new(w, spec.id, attempt), m, now)
}

/// Leases every trial to one worker and reports epoch 1 of each, in grid order.
fn first_rung(
    s: &mut Scheduler,
    by_seed: &dyn Fn(u64) -> f64,
) -> (WorkerId, Vec<(TrialSpec, u32)>) {
    let now = Instant::now();
    let w = worker(s, now, 100);
    let leased: Vec<(TrialSpec, u32)> = (0..s.trials().len())
        .map(|_| assigned(s.lease(w, now).unwrap()))
        .collect();
    for (spec, attempt) in &leased {
        let v = accuracy(spec, 1, by_seed);
        report(s, w, spec, *attempt, 1, v, now).unwrap();
    }
    (w, leased)
}

fn stopped_rates(s: &Scheduler) -> BTreeSet<String> {
    s.trials()
        .iter()
        .filter(|t| matches!(t.state, TrialState::Stopped { .. }))
        .map(|t| t.spec.params.learning_rate.to_string())
        .collect()
}

#[test]
fn asha_judges_a_configuration_by_its_seeds_mean_and_stops_all_of_them() {
    let g = grid(2, 9, "rule = 'asha'\nmin_epochs = 1\nreduction = 2");
    let mut s = scheduler(&g);
    let now = Instant::now();
    let w = worker(&mut s, now, 100);
    let leased: Vec<(TrialSpec, u32)> =
        (0..4).map(|_| assigned(s.lease(w, now).unwrap())).collect();
    // Rate 0.001 has seeds 55 and 45 (a mean of 50, give or take a standard error of 5);
    // 0.002 has 60 and 60. The first configuration at the rung stops (its quota is 0), the
    // second passes it when it ranks first by its mean, and 0.001's seeds place it below the
    // cutoff (50 + 5 < 60): it stays stopped. Judged by its first seed alone it would pass.
    let value = |spec: &TrialSpec| match (spec.params.learning_rate == 0.001, spec.params.seed) {
        (true, 1) => 55.0,
        (true, _) => 45.0,
        (false, _) => 60.0,
    };
    let (first, _) = &leased[0];
    report(&mut s, w, first, 1, 1, value(first), now).unwrap();
    assert!(
        s.stopping().rules[0].journal.is_empty(),
        "a configuration is judged once all its seeds reached the rung"
    );
    for (spec, attempt) in &leased[1..] {
        report(&mut s, w, spec, *attempt, 1, value(spec), now).unwrap();
    }
    assert_eq!(stopped_rates(&s), BTreeSet::from(["0.001".to_owned()]));
    for t in s.trials() {
        let stopped = matches!(t.state, TrialState::Stopped { .. });
        assert_eq!(
            stopped,
            t.spec.params.learning_rate == 0.001,
            "{}",
            t.spec.name
        );
        assert_eq!(t.state.lease().is_some(), !stopped, "{}", t.spec.name);
    }
}

#[test]
fn a_stopped_trial_keeps_its_curve_and_its_lease_is_over() {
    let g = grid(4, 9, "rule = 'asha'\nmin_epochs = 1\nreduction = 2");
    let mut s = scheduler(&g);
    let (w, leased) = first_rung(&mut s, &|_| 0.0);
    // 0.001 arrives first and stops (quota 0); each later one ranks first and goes on.
    let counts = s.counts();
    assert_eq!(counts.stopped, 2, "{counts:?}");
    let (spec, attempt) = leased
        .iter()
        .find(|(spec, _)| spec.params.learning_rate == 0.001)
        .unwrap();
    let t = s.trial(spec.id).unwrap();
    assert!(
        matches!(t.state, TrialState::Stopped { epoch: 1, .. }),
        "{:?}",
        t.state
    );
    assert_eq!(t.epochs.len(), 1, "the curve up to the rung is kept");
    let refused = report(&mut s, w, spec, *attempt, 2, 1.0, Instant::now()).unwrap_err();
    assert!(
        matches!(refused, StateError::StaleLease { .. }),
        "{refused:?}"
    );
    assert!(
        refused.to_string().contains("stopped at epoch 1"),
        "{refused}"
    );
    // Every decision is a change to commit.
    let decisions = s
        .take_changes()
        .into_iter()
        .filter(|c| matches!(c, Change::Decision { .. }))
        .count();
    assert_eq!(decisions, s.stopping().rules[0].journal.len());
    assert!(decisions >= 4, "{decisions}");
}

#[test]
fn the_sweep_finishes_with_stopped_trials_and_the_survivors_run_to_the_end() {
    let g = grid(4, 3, "rule = 'asha'\nmin_epochs = 1\nreduction = 2");
    let mut s = scheduler(&g);
    let by_seed = |_| 0.0;
    let (w, _) = first_rung(&mut s, &by_seed);
    let now = Instant::now();
    // Every live trial reports its next epoch, round robin, and completes after its last.
    loop {
        while let Ok(LeaseOutcome::Assigned { .. }) = s.lease(w, now) {}
        let live: Vec<(TrialSpec, u32, u32)> = s
            .trials()
            .iter()
            .filter_map(|t| {
                let l = t.state.lease()?;
                Some((t.spec.clone(), l.attempt, t.epochs.len() as u32 + 1))
            })
            .collect();
        if live.is_empty() {
            break;
        }
        for (spec, attempt, e) in live {
            if e > spec.params.epochs {
                let mut r = super::tests::result(&spec);
                r.epochs = s.trial(spec.id).unwrap().epochs.to_vec();
                s.complete(
                    LeaseKey::new(w, spec.id, attempt),
                    Outcome::Succeeded(r),
                    now,
                )
                .unwrap();
            } else {
                let v = accuracy(&spec, e, &by_seed);
                // Refused once an earlier report this round stopped it.
                let _ = report(&mut s, w, &spec, attempt, e, v, now);
            }
        }
    }
    assert!(s.is_finished());
    // Rung 1: 0.001 arrives first and stops (quota 0); 0.002, 0.003 and 0.004 each rank
    // first when they arrive and pass (nothing caps a rung). Rung 2: 0.002 arrives alone and
    // stops, 0.003 and 0.004 rank first when they arrive and train to the end.
    let c = s.counts();
    assert_eq!((c.succeeded, c.stopped, c.failed), (4, 4, 0), "{c:?}");
    assert_eq!(
        stopped_rates(&s),
        BTreeSet::from(["0.001".into(), "0.002".into()])
    );
}

/// The state as restored from what was committed: trials and journal.
fn restart(s: &Scheduler, g: &Grid) -> Scheduler {
    let journal: Vec<Judged> = s
        .stopping()
        .rules
        .iter()
        .enumerate()
        .flat_map(|(e, r)| (0..r.journal.len()).map(move |seq| (e, seq)))
        .filter_map(|(e, seq)| s.judged(e, seq))
        .collect();
    let mut r = Scheduler::restore(
        s.trials().to_vec(),
        s.workers()
            .iter()
            .map(|(id, w)| (*id, w.name.clone(), w.device.clone(), w.slots))
            .collect(),
        config(),
        config().lease_ttl,
        Instant::now(),
    );
    assert_eq!(r.set_stopping(&rules(g), &journal), 0);
    r
}

#[test]
fn a_restart_at_any_report_continues_the_same_schedule() {
    let g = grid(6, 9, "rule = 'asha'\nmin_epochs = 1\nreduction = 3");
    let by_seed = |seed: u64| seed as f64 * 0.25;
    // Reports in a fixed interleaved order: every trial's epochs 1..=3, round robin.
    let run = |cut: Option<usize>| -> (Vec<Decision>, BTreeSet<String>) {
        let mut s = scheduler(&g);
        let now = Instant::now();
        let w = worker(&mut s, now, 100);
        let leased: Vec<(TrialSpec, u32)> = (0..s.trials().len())
            .map(|_| assigned(s.lease(w, now).unwrap()))
            .collect();
        let mut n = 0;
        for e in 1..=3 {
            for (spec, attempt) in &leased {
                if cut == Some(n) {
                    s = restart(&s, &g);
                }
                n += 1;
                let v = accuracy(spec, e, &by_seed);
                // A stopped trial's worker learns it and reports no more.
                let _ = report(&mut s, w, spec, *attempt, e, v, now);
            }
        }
        let journal = s.stopping().rules[0]
            .journal
            .iter()
            .map(|d| (d.config, d.epoch, d.action.clone()))
            .collect();
        (journal, stopped_rates(&s))
    };
    let whole = run(None);
    assert!(!whole.0.is_empty());
    for cut in 0..36 {
        assert_eq!(run(Some(cut)), whole, "restarted before report {cut}");
    }
}

type Decision = (u64, u32, Action);

#[test]
fn an_operator_promotes_a_configuration_and_it_resumes_from_its_checkpoint() {
    let g = grid(4, 9, "rule = 'asha'\nmin_epochs = 2\nreduction = 2");
    let mut s = scheduler(&g);
    let now = Instant::now();
    let w = worker(&mut s, now, 100);
    let leased: Vec<(TrialSpec, u32)> =
        (0..8).map(|_| assigned(s.lease(w, now).unwrap())).collect();
    for (spec, attempt) in &leased {
        for e in 1..=2 {
            let v = accuracy(spec, e, &|_| 0.0);
            report(&mut s, w, spec, *attempt, e, v, now).unwrap();
            if e == 1 {
                s.record_checkpoint(w, spec.id, super::tests::checkpoint(1, *attempt), now)
                    .unwrap();
            }
        }
    }
    let worst = leased
        .iter()
        .find(|(spec, _)| spec.params.learning_rate == 0.001 && spec.params.seed == 1)
        .unwrap();
    assert!(matches!(
        s.trial(worst.0.id).unwrap().state,
        TrialState::Stopped { epoch: 2, .. }
    ));
    let (effects, promoted) = s
        .promote(std::slice::from_ref(&worst.0.name), &["nothing".into()])
        .unwrap();
    assert_eq!(promoted.trials.len(), 2, "both seeds: {promoted:?}");
    assert_eq!(promoted.unknown, vec!["nothing".to_owned()]);
    assert_eq!(effects.len(), 2);
    let last = s.stopping().rules[0].journal.last().unwrap();
    assert_eq!((last.epoch, &last.action), (2, &Action::Promote));
    // Promoted trials come first, resuming from their checkpoint.
    let LeaseOutcome::Assigned { spec, resume, .. } = s.lease(w, now).unwrap() else {
        panic!("nothing leased")
    };
    assert_eq!(spec.params.learning_rate, 0.001);
    assert_eq!(resume.map(|c| c.epoch), Some(1));
    assert_eq!(
        s.trial(spec.id).unwrap().epochs.len(),
        1,
        "epoch 2 is trained again"
    );
    // Naming a trial that is not stopped changes nothing.
    let running = leased
        .iter()
        .find(|(spec, _)| spec.params.learning_rate == 0.004)
        .unwrap();
    let (_, p) = s
        .promote(std::slice::from_ref(&running.0.name), &[])
        .unwrap();
    assert_eq!(p.not_stopped, vec![running.0.name.clone()]);
    assert!(p.trials.is_empty());
}

/// One worker of one slot trains every trial it is given epoch by epoch, restarting the state
/// before report `cut`; returns the decisions and the order trials were leased in.
fn one_slot_run(g: &Grid, cut: Option<usize>) -> (Vec<Decision>, Vec<String>) {
    let mut s = scheduler(g);
    let now = Instant::now();
    let w = worker(&mut s, now, 1);
    let by_seed = |seed: u64| seed as f64 * 0.25;
    let mut order = Vec::new();
    let mut n = 0;
    while let LeaseOutcome::Assigned {
        spec,
        attempt,
        resume,
    } = s.lease(w, now).unwrap()
    {
        order.push(spec.name.clone());
        let from = resume.map_or(0, |c| c.epoch);
        for e in from + 1..=spec.params.epochs {
            if cut == Some(n) {
                s = restart(&s, g);
            }
            n += 1;
            // Later configurations score worse: the quota a rung gains with each arrival goes
            // to earlier ones, stopped when they arrived first.
            let v = 100.0 - accuracy(&spec, 0, &by_seed) + f64::from(e);
            if report(&mut s, w, &spec, attempt, e, v, now).is_err() {
                break;
            }
            // As a worker does: told in the report's answer, it uploads no checkpoint.
            if matches!(s.trial(spec.id).unwrap().state, TrialState::Stopped { .. }) {
                break;
            }
            s.record_checkpoint(w, spec.id, super::tests::checkpoint(e, attempt), now)
                .unwrap();
        }
        if s.trial(spec.id).unwrap().state.lease().is_some() {
            let mut r = super::tests::result(&spec);
            r.epochs = s.trial(spec.id).unwrap().epochs.to_vec();
            s.complete(
                LeaseKey::new(w, spec.id, attempt),
                Outcome::Succeeded(r),
                now,
            )
            .unwrap();
        }
    }
    assert!(s.is_finished());
    let journal = s.stopping().rules[0]
        .journal
        .iter()
        .map(|d| (d.config, d.epoch, d.action.clone()))
        .collect();
    (journal, order)
}

#[test]
fn promoted_trials_keep_their_place_in_the_queue_across_restarts() {
    let g = grid(6, 9, "rule = 'asha'\nmin_epochs = 1\nreduction = 2");
    let whole = one_slot_run(&g, None);
    assert!(
        whole.0.iter().any(|d| d.2 == Action::Promote),
        "the schedule promotes: {:?}",
        whole.0
    );
    for cut in 0..40 {
        assert_eq!(
            one_slot_run(&g, Some(cut)),
            whole,
            "restarted before report {cut}"
        );
    }
}

#[test]
fn trials_queued_ahead_keep_their_order_across_a_restart() {
    // Reduction 4: the first three configurations stop (quota 0), the fourth passes.
    let g = grid(4, 9, "rule = 'asha'\nmin_epochs = 1\nreduction = 4");
    let mut s = scheduler(&g);
    let (w, _) = first_rung(&mut s, &|_| 0.0);
    assert_eq!(
        stopped_rates(&s),
        BTreeSet::from(["0.001".into(), "0.002".into(), "0.003".into()])
    );
    let name = |s: &Scheduler, rate: f64| {
        s.trials()
            .iter()
            .find(|t| t.spec.params.learning_rate == rate)
            .map(|t| t.spec.name.clone())
            .unwrap()
    };
    // The later promotion goes first: 0.003's seeds, then 0.001's.
    for rate in [0.001, 0.003] {
        let n = name(&s, rate);
        s.promote(&[n], &[]).unwrap();
    }
    let lease_order = |s: &mut Scheduler| -> Vec<(f64, u64)> {
        let now = Instant::now();
        let w2 = worker(s, now, 10);
        (0..4)
            .map(|_| {
                let (spec, _) = assigned(s.lease(w2, now).unwrap());
                (spec.params.learning_rate, spec.params.seed)
            })
            .collect()
    };
    let _ = w;
    let mut restarted = restart(&s, &g);
    let want = vec![(0.003, 1), (0.003, 2), (0.001, 1), (0.001, 2)];
    assert_eq!(lease_order(&mut s), want);
    assert_eq!(lease_order(&mut restarted), want, "after a restart");
}
