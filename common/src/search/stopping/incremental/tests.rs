//! The incremental judge against the definition: over random curves, arrival orders, trials
//! that end early or are cut short (a resume from an older checkpoint) and operators'
//! promotions, [`Judge`] takes exactly the decisions [`decide`] takes over the whole curves
//! and journal, in the same order.

use proptest::prelude::*;

use super::super::{Action, Decision, TrialCurve, decide};
use super::Judge;
use crate::search::{Metric, Mode, Objective, Rule, StoppingSpec};

/// One thing that happens to a run.
#[derive(Debug, Clone, Copy)]
enum Step {
    /// The trial reports its next epoch (unless its configuration is stopped or it ended).
    Report(usize),
    /// The trial fails for good.
    End(usize),
    /// The trial resumes from an older checkpoint: its curve is cut to `keep` epochs, and the
    /// epochs it trains again come out different.
    Cut(usize, usize),
    /// An operator promotes the configuration of the trial, if it is stopped.
    Promote(usize),
}

/// A random experiment: per trial its configuration, order, full curve and epochs.
#[derive(Debug, Clone)]
struct Experiment {
    curves: Vec<TrialCurve<u32>>,
    steps: Vec<Step>,
}

fn experiment() -> impl Strategy<Value = Experiment> {
    (1usize..20, 1usize..4, any::<bool>()).prop_flat_map(|(n, seeds, ties)| {
        let trials = n * seeds;
        // Quantised values make ties, which go to the smaller configuration key.
        let value = if ties {
            (0u8..4).prop_map(|q| f64::from(q) / 4.0).boxed()
        } else {
            (0.0f64..1.0).boxed()
        };
        let curves = prop::collection::vec((prop::collection::vec(value, 9), 2u32..10), trials);
        let steps = prop::collection::vec((0u8..24, 0..trials, 0usize..9), 0..400);
        (curves, steps).prop_map(move |(curves, steps)| {
            // A configuration's epochs are its first seed's.
            let epochs: Vec<u32> = (0..n).map(|c| curves[c * seeds].1).collect();
            let curves = curves
                .into_iter()
                .enumerate()
                .map(|(i, (values, _))| {
                    let c = i / seeds;
                    TrialCurve {
                        trial: i as u32,
                        // Keys in the reverse of the order, so key ties and order differ.
                        config: (n - c) as u32,
                        order: c as u64,
                        values: values[..epochs[c] as usize].to_vec(),
                        epochs: epochs[c],
                        ended: false,
                    }
                })
                .collect();
            let steps = steps
                .into_iter()
                .map(|(kind, i, keep)| match kind {
                    0..=18 => Step::Report(i),
                    19 => Step::End(i),
                    20 | 21 => Step::Cut(i, keep),
                    _ => Step::Promote(i),
                })
                .collect();
            Experiment { curves, steps }
        })
    })
}

fn rules() -> impl Strategy<Value = Rule> {
    prop_oneof![
        (0u32..4, 0u32..5).prop_map(|(min_epochs, reduction)| Rule::Asha {
            min_epochs,
            reduction
        }),
        (0u32..3, 0u32..4, 0u32..4).prop_map(|(min_epochs, reduction, brackets)| {
            Rule::Hyperband {
                min_epochs,
                reduction,
                brackets,
            }
        }),
        (0u32..4, 0u32..5).prop_map(|(min_epochs, min_trials)| Rule::Median {
            min_epochs,
            min_trials
        }),
    ]
}

/// Whether the latest decision about `config` stops it.
fn stopped(past: &[Decision<u32>], config: u32) -> Option<u32> {
    past.iter()
        .rev()
        .find(|d| d.config == config)
        .filter(|d| matches!(d.action, Action::Stop { .. }))
        .map(|d| d.epoch)
}

/// A run: the curves so far, the journal, and a judge fed as a coordinator feeds it.
struct Run<'a> {
    spec: StoppingSpec,
    full: &'a [TrialCurve<u32>],
    seen: Vec<TrialCurve<u32>>,
    bump: Vec<f64>,
    past: Vec<Decision<u32>>,
    judge: Judge<u32>,
}

impl<'a> Run<'a> {
    fn new(spec: StoppingSpec, full: &'a [TrialCurve<u32>]) -> Run<'a> {
        let seen = full
            .iter()
            .map(|c| TrialCurve {
                values: Vec::new(),
                ..c.clone()
            })
            .collect();
        let mut run = Run {
            spec,
            full,
            seen,
            bump: vec![0.0; full.len()],
            past: Vec::new(),
            judge: Judge::new(spec),
        };
        run.restart();
        run
    }

    /// A new judge, as a restarted coordinator makes it: the trials, the journal, the curves.
    fn restart(&mut self) {
        self.judge = Judge::new(self.spec);
        for c in self.full {
            self.judge.add_trial(c.trial, c.config, c.order, c.epochs);
        }
        for d in &self.past {
            self.judge.record(d);
        }
        for t in &self.seen {
            self.judge.set_curve(&t.trial, &t.values, t.ended);
        }
    }

    /// Applies `step`, then decides with both and checks they agree.
    fn step(&mut self, step: Step) -> Result<(), TestCaseError> {
        let i = match step {
            Step::Report(i) | Step::End(i) | Step::Cut(i, _) | Step::Promote(i) => i,
        };
        let t = &mut self.seen[i];
        match step {
            Step::Report(_) => {
                let full = t.values.len() >= t.epochs as usize;
                if t.ended || full || stopped(&self.past, t.config).is_some() {
                    return Ok(());
                }
                let e = t.values.len();
                t.values.push(self.full[i].values[e] + self.bump[i]);
                t.ended = t.values.len() == t.epochs as usize;
            }
            Step::End(_) => t.ended = true,
            Step::Cut(_, keep) => {
                t.values.truncate(keep);
                t.ended = t.values.len() >= t.epochs as usize;
                self.bump[i] += 0.125;
            }
            Step::Promote(_) => {
                let Some(epoch) = stopped(&self.past, t.config) else {
                    return Ok(());
                };
                let d = Decision {
                    config: t.config,
                    epoch,
                    action: Action::Promote,
                };
                self.judge.record(&d);
                self.past.push(d);
            }
        }
        let t = &self.seen[i];
        self.judge.set_curve(&t.trial, &t.values, t.ended);
        self.check(step)
    }

    fn check(&mut self, step: Step) -> Result<(), TestCaseError> {
        let expected = decide(&self.spec, &self.seen, &self.past);
        let got = self.judge.decide();
        prop_assert_eq!(&got, &expected, "after {:?}", step);
        self.past.extend(expected);
        Ok(())
    }
}

/// Runs `x`'s steps, then every trial to its end, deciding after each step with both
/// `decide` and a judge; restarts the judge after `restart` steps. Returns the journal.
fn compare(
    spec: StoppingSpec,
    x: &Experiment,
    restart: usize,
) -> Result<Vec<Decision<u32>>, TestCaseError> {
    let mut run = Run::new(spec, &x.curves);
    let finish = (0..9).flat_map(|_| (0..x.curves.len()).map(Step::Report));
    for (n, step) in x.steps.iter().copied().chain(finish).enumerate() {
        if n == restart {
            run.restart();
            run.check(step)?;
        }
        run.step(step)?;
    }
    Ok(run.past)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn the_judge_decides_as_the_full_recomputation(
        x in experiment(),
        rule in rules(),
        minimise in any::<bool>(),
    ) {
        let objective = if minimise {
            Objective { metric: Metric::TrainLoss, mode: Mode::Min }
        } else {
            Objective::default()
        };
        compare(StoppingSpec { rule, objective }, &x, usize::MAX)?;
    }

    #[test]
    fn a_restarted_judge_decides_as_the_uninterrupted_one(
        x in experiment(),
        rule in rules(),
        restart in 0usize..600,
    ) {
        let spec = StoppingSpec { rule, objective: Objective::default() };
        let whole = compare(spec, &x, usize::MAX)?;
        let restarted = compare(spec, &x, restart)?;
        prop_assert_eq!(whole, restarted);
    }
}
