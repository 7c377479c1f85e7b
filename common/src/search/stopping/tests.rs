//! Tests of the stopping rules: worked examples, and properties over random curves and
//! random arrival orders.

use proptest::prelude::*;

use super::*;
use crate::search::{Metric, Mode};

fn spec(rule: Rule) -> StoppingSpec {
    StoppingSpec {
        rule,
        objective: Objective::default(),
    }
}

const ASHA: Rule = Rule::Asha {
    min_epochs: 1,
    reduction: 3,
};

/// A one-seed configuration `config` whose curve so far is `values`, of `epochs` in full.
fn curve(config: u32, values: &[f64], epochs: u32) -> TrialCurve<u32> {
    TrialCurve {
        trial: config,
        config,
        order: u64::from(config),
        values: values.to_vec(),
        epochs,
        ended: false,
    }
}

/// The configurations whose latest decision at `epoch` passed them.
fn passed(past: &[Decision<u32>], epoch: u32) -> Vec<u32> {
    let mut latest: BTreeMap<u32, &Action> = BTreeMap::new();
    for d in past.iter().filter(|d| d.epoch == epoch) {
        latest.insert(d.config, &d.action);
    }
    latest
        .into_iter()
        .filter(|(_, a)| matches!(a, Action::Continue | Action::Promote))
        .map(|(c, _)| c)
        .collect()
}

#[test]
fn asha_passes_the_top_third_of_each_rung() {
    // Nine configurations, 9 epochs: rungs at epochs 1 and 3.
    let scores = [0.5, 0.9, 0.1, 0.7, 0.3, 0.8, 0.2, 0.6, 0.4];
    let mut curves: Vec<_> = (0..9).map(|c| curve(c, &[scores[c as usize]], 9)).collect();
    let first = decide(&spec(ASHA), &curves, &[]);
    assert_eq!(first.len(), 9);
    assert_eq!(passed(&first, 1), [1, 3, 5]);
    for d in first
        .iter()
        .filter(|d| !passed(&first, 1).contains(&d.config))
    {
        let Action::Stop { reason } = &d.action else {
            panic!("{d:?}")
        };
        assert!(reason.starts_with("asha: test_accuracy "), "{reason}");
        assert!(
            reason.contains("of 9; this rung passes the top 3 "),
            "{reason}"
        );
    }
    // The decisions are taken: nothing new without new results.
    assert!(decide(&spec(ASHA), &curves, &first).is_empty());
    // The three survivors reach the second rung: one passes it.
    for (c, v) in [(1, 0.5), (3, 0.95), (5, 0.6)] {
        curves[c].values.extend([0.0, v]);
    }
    let second = decide(&spec(ASHA), &curves, &first);
    assert_eq!(second.len(), 3);
    assert!(second.iter().all(|d| d.epoch == 3));
    assert_eq!(passed(&second, 3), [3]);
}

#[test]
fn asha_is_asynchronous_and_promotes_later() {
    let mut past = Vec::new();
    // Four configurations, none started.
    let mut curves: Vec<_> = (0..4).map(|c| curve(c, &[], 9)).collect();
    // One at a time: with fewer than three results the quota is zero, so both stop.
    for (c, v) in [(0, 0.6), (1, 0.5)] {
        curves[c].values.push(v);
        past.extend(decide(&spec(ASHA), &curves, &past));
    }
    assert!(passed(&past, 1).is_empty());
    // The third result raises the quota to one: the best so far (0) is promoted.
    curves[2].values.push(0.1);
    let new = decide(&spec(ASHA), &curves, &past);
    assert_eq!(
        new.iter()
            .map(|d| (d.config, &d.action))
            .collect::<Vec<_>>(),
        [
            (
                2,
                &Action::Stop {
                    reason: "asha: test_accuracy 0.1000 at epoch 1 ranks 3 of 3; this rung passes \
                         the top 1 so far and the seed means within one standard error of the \
                         last of them"
                        .to_owned()
                }
            ),
            (0, &Action::Promote)
        ]
    );
    past.extend(new);
    // A better fourth arrival is in the top of the rung as it stands: it goes on, although
    // the quota (one of four) is used; nothing caps a rung, as in the ASHA paper.
    curves[3].values.push(0.99);
    past.extend(decide(&spec(ASHA), &curves, &past));
    assert_eq!(passed(&past, 1), [0, 3]);
    // A worse one stops, and is promoted once it ranks within the quota: six results pass
    // two, and 4 (0.55) ranks third, so it stays stopped; at nine it ranks third of a quota
    // of three.
    curves.push(curve(4, &[0.55], 9));
    curves.push(curve(5, &[0.3], 9));
    past.extend(decide(&spec(ASHA), &curves, &past));
    assert_eq!(passed(&past, 1), [0, 3]);
    curves.extend((6..9).map(|c| curve(c, &[0.2], 9)));
    let new = decide(&spec(ASHA), &curves, &past);
    assert!(new.contains(&Decision {
        config: 4,
        epoch: 1,
        action: Action::Promote
    }));
    past.extend(new);
    assert_eq!(passed(&past, 1), [0, 3, 4]);
}

#[test]
fn seeds_are_judged_together_by_their_mean() {
    // Configuration 10 has two seeds (0.9 and 0.1: mean 0.5); 11 and 12 one each.
    let seeds = |values: [&[f64]; 2]| {
        values
            .iter()
            .enumerate()
            .map(|(s, v)| TrialCurve {
                trial: 100 + s as u32,
                config: 10,
                order: 0,
                values: v.to_vec(),
                epochs: 9,
                ended: false,
            })
            .collect::<Vec<_>>()
    };
    let mut curves = seeds([&[0.55], &[]]);
    curves.extend([curve(11, &[0.6], 9), curve(12, &[0.4], 9)]);
    // The second seed has not reported: the configuration is not at the rung yet, so the
    // rung holds two and passes none.
    let first = decide(&spec(ASHA), &curves, &[]);
    assert!(first.iter().all(|d| d.config != 10), "{first:?}");
    // Once it reports, the mean (0.5, give or take 0.05) ranks second of three, below the
    // cutoff (0.6) by more than its standard error: 11 is promoted, 10 stops.
    let mut curves = seeds([&[0.55], &[0.45]]);
    curves.extend([curve(11, &[0.6], 9), curve(12, &[0.4], 9)]);
    let second = decide(&spec(ASHA), &curves, &first);
    let all: Vec<_> = first.iter().chain(&second).cloned().collect();
    assert_eq!(passed(&all, 1), [11]);
    let Some(Action::Stop { reason }) = second.iter().find(|d| d.config == 10).map(|d| &d.action)
    else {
        panic!("{second:?}")
    };
    assert!(
        reason.contains("0.5000 at epoch 1 ranks 2 of 3"),
        "{reason}"
    );
    // Seeds that disagree (0.9 and 0.1: a mean of 0.5, give or take 0.4) cannot tell the
    // configuration from the cutoff: it goes on with 11.
    let mut curves = seeds([&[0.9], &[0.1]]);
    curves.extend([curve(11, &[0.6], 9), curve(12, &[0.4], 9)]);
    assert_eq!(passed(&decide(&spec(ASHA), &curves, &[]), 1), [10, 11]);
    // A seed that failed before the rung does not hold its configuration back.
    let mut curves = seeds([&[0.9], &[]]);
    curves[1].ended = true;
    curves.extend([curve(11, &[0.6], 9), curve(12, &[0.4], 9)]);
    assert_eq!(passed(&decide(&spec(ASHA), &curves, &[]), 1), [10]);
}

#[test]
fn ties_go_to_the_smaller_key_and_min_mode_ranks_down() {
    // The smaller key is the one within the quota; the others tie with the cutoff, which a
    // configuration at or above it passes (as Ray Tune's ASHA does).
    let curves: Vec<_> = (0..3).map(|c| curve(c, &[0.5], 9)).collect();
    let d = decide(&spec(ASHA), &curves, &[]);
    assert_eq!(d[0].config, 0);
    assert_eq!(passed(&d, 1), [0, 1, 2]);
    let loss = StoppingSpec {
        rule: ASHA,
        objective: Objective {
            metric: Metric::TrainLoss,
            mode: Mode::Min,
        },
    };
    let curves: Vec<_> = [2.0, 0.5, 1.0]
        .iter()
        .enumerate()
        .map(|(c, v)| curve(c as u32, &[*v], 9))
        .collect();
    let d = decide(&loss, &curves, &[]);
    assert_eq!(passed(&d, 1), [1]);
    let Some(Action::Stop { reason }) = d.iter().find(|d| d.config == 0).map(|d| &d.action) else {
        panic!("{d:?}")
    };
    assert!(
        reason.contains("train_loss 2.0000 at epoch 1 ranks 3 of 3"),
        "{reason}"
    );
    // A diverged run (NaN) ranks last whatever the mode.
    let curves = vec![
        curve(0, &[f64::NAN], 9),
        curve(1, &[3.0], 9),
        curve(2, &[9.0], 9),
    ];
    assert_eq!(passed(&decide(&loss, &curves, &[]), 1), [1]);
}

#[test]
fn hyperband_deals_configurations_to_brackets() {
    let rule = Rule::Hyperband {
        min_epochs: 1,
        reduction: 3,
        brackets: 3,
    };
    // Bracket 0 (orders 0, 3, 6) judges at epoch 1, bracket 1 (1, 4, 7) at epoch 3, bracket 2
    // (2, 5, 8) at epoch 9, which is no rung of 9-epoch trials: it never stops.
    let curves: Vec<_> = (0..9)
        .map(|c| curve(c, &[0.1 * f64::from(c) + 0.1; 4], 9))
        .collect();
    let d = decide(&spec(rule), &curves, &[]);
    let at = |e: u32| {
        let mut v: Vec<u32> = d
            .iter()
            .filter(|d| d.epoch == e)
            .map(|d| d.config)
            .collect();
        v.sort();
        v
    };
    assert_eq!(at(1), [0, 3, 6]);
    assert_eq!(at(3), [1, 4, 6, 7]);
    assert_eq!(passed(&d, 1), [6]);
    // Bracket 0's second rung is reached by 6 alone, and no other of its configurations can
    // reach it: it passes its best. Bracket 1's first passes the top third.
    assert_eq!(passed(&d, 3), [6, 7]);
    assert!(d.iter().all(|d| d.config % 3 != 2));
}

#[test]
fn median_stops_below_the_median_of_running_means() {
    let rule = Rule::Median {
        min_epochs: 2,
        min_trials: 3,
    };
    let curves = vec![
        curve(0, &[0.5, 0.6, 0.7], 10),
        curve(1, &[0.4, 0.56, 0.6], 10),
        curve(2, &[0.6, 0.7, 0.8], 10),
        curve(3, &[0.1, 0.2, 0.3], 10),
    ];
    let d = decide(&spec(rule), &curves, &[]);
    // Epoch 1 is in the grace period; at epoch 2 configuration 3's best (0.2) is below the
    // median of the others' running means (0.55, 0.48, 0.65: 0.55), and 1's best (0.56) is
    // not. Stopped, 3 is not judged again.
    let stops: Vec<_> = d
        .iter()
        .filter(|d| matches!(d.action, Action::Stop { .. }))
        .map(|d| (d.config, d.epoch))
        .collect();
    assert_eq!(stops, [(3, 2)]);
    assert!(d.iter().all(|d| d.epoch >= 2));
    assert!(!d.iter().any(|d| d.config == 3 && d.epoch == 3));
    let Action::Stop { reason } = &d.iter().find(|d| d.config == 3).unwrap().action else {
        unreachable!()
    };
    assert_eq!(
        reason,
        "median: best test_accuracy 0.2000 by epoch 2 is worse than the median 0.5500 of the \
         running means of 3 other configurations"
    );
    // Too few others: nothing stops.
    let few = Rule::Median {
        min_epochs: 1,
        min_trials: 4,
    };
    let d = decide(&spec(few), &curves, &[]);
    assert!(d.iter().all(|d| d.action == Action::Continue));
}

/// Random scores of `n` configurations with `seeds` seeds each, over 9 epochs.
fn experiment() -> impl Strategy<Value = Vec<TrialCurve<u32>>> {
    (1usize..30, 1usize..4).prop_flat_map(|(n, seeds)| {
        prop::collection::vec(prop::collection::vec(0.0f64..1.0, 9), n * seeds).prop_map(
            move |values| {
                values
                    .into_iter()
                    .enumerate()
                    .map(|(i, v)| TrialCurve {
                        trial: i as u32,
                        config: (i / seeds) as u32,
                        order: (i / seeds) as u64,
                        values: v,
                        epochs: 9,
                        ended: false,
                    })
                    .collect()
            },
        )
    })
}

fn rules() -> impl Strategy<Value = Rule> {
    prop_oneof![
        (1u32..4, 2u32..5).prop_map(|(min_epochs, reduction)| Rule::Asha {
            min_epochs,
            reduction
        }),
        (1u32..3, 2u32..4, 1u32..4).prop_map(|(min_epochs, reduction, brackets)| {
            Rule::Hyperband {
                min_epochs,
                reduction,
                brackets,
            }
        }),
        (1u32..4, 1u32..5).prop_map(|(min_epochs, min_trials)| Rule::Median {
            min_epochs,
            min_trials
        }),
    ]
}

/// Feeds `curves` epoch by epoch, trials in the order `order`, deciding after each report as a
/// coordinator would, and stopping the trials of stopped configurations. Returns the journal.
fn run(spec: &StoppingSpec, curves: &[TrialCurve<u32>], order: &[usize]) -> Vec<Decision<u32>> {
    let mut seen: Vec<TrialCurve<u32>> = curves
        .iter()
        .map(|c| TrialCurve {
            values: Vec::new(),
            ..c.clone()
        })
        .collect();
    let mut past = Vec::new();
    for epoch in 0..9 {
        for &i in order {
            let config = seen[i].config;
            let stopped = past
                .iter()
                .rev()
                .find(|d: &&Decision<u32>| d.config == config);
            if matches!(
                stopped,
                Some(Decision {
                    action: Action::Stop { .. },
                    ..
                })
            ) {
                continue;
            }
            seen[i].values.push(curves[i].values[epoch]);
            let new = decide(spec, &seen, &past);
            past.extend(new);
        }
    }
    past
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn decisions_do_not_depend_on_the_order_of_the_curves(
        curves in experiment(),
        rule in rules(),
        rotate in 0usize..100,
    ) {
        let spec = spec(rule);
        let mut shuffled = curves.clone();
        shuffled.reverse();
        let len = shuffled.len();
        shuffled.rotate_left(rotate % len);
        prop_assert_eq!(decide(&spec, &curves, &[]), decide(&spec, &shuffled, &[]));
    }

    #[test]
    fn a_journal_replays_to_no_new_decision(
        curves in experiment(),
        rule in rules(),
    ) {
        let spec = spec(rule);
        let order: Vec<usize> = (0..curves.len()).collect();
        let past = run(&spec, &curves, &order);
        // The final curves, as the run left them (stopped trials cut short), decide nothing new.
        prop_assert!(decide(&spec, &curves, &past)
            .iter()
            .all(|d| past.iter().any(|p| p.config == d.config && p.epoch == d.epoch)));
    }

    #[test]
    fn a_rung_passes_at_least_its_final_top(
        curves in experiment(),
        reduction in 2u32..5,
        seed in any::<u64>(),
    ) {
        let rule = Rule::Asha { min_epochs: 1, reduction };
        let spec = spec(rule);
        let mut order: Vec<usize> = (0..curves.len()).collect();
        crate::rng::SplitMix64::new(seed).shuffle(&mut order);
        let past = run(&spec, &curves, &order);
        let configs = curves.iter().map(|c| c.config).max().unwrap_or(0) as usize + 1;
        let mut rung = 1u32;
        let mut entered = configs;
        while rung < 9 {
            let passing = passed(&past, rung).len();
            // Every configuration that entered the rung reached it (the curves are complete),
            // so the top of the rung as it ended passed (late promotions fill the quota), and
            // once all are there a rung passes at least one.
            let quota = if entered == 0 { 0 } else { (entered / reduction as usize).max(1) };
            prop_assert!(passing >= quota, "rung {}: {} passed, quota {}", rung, passing, quota);
            prop_assert!(passing <= entered, "rung {}", rung);
            entered = passing;
            rung *= reduction;
        }
    }

    #[test]
    fn a_finite_grid_trains_some_configuration_to_its_end(
        curves in experiment(),
        reduction in 2u32..5,
        seed in any::<u64>(),
    ) {
        // Found by replay: with reduction 2 a rung reached by one configuration passed none,
        // and the whole grid ended stopped.
        let spec = spec(Rule::Asha { min_epochs: 1, reduction });
        let mut order: Vec<usize> = (0..curves.len()).collect();
        crate::rng::SplitMix64::new(seed).shuffle(&mut order);
        let past = run(&spec, &curves, &order);
        let last = rungs(1, reduction, 9).into_iter().max().unwrap_or(1);
        prop_assert!(!passed(&past, last).is_empty(), "nothing passed rung {}", last);
    }

    #[test]
    fn results_arriving_together_pass_the_best_and_those_within_their_seeds_error(
        curves in experiment(),
        reduction in 2u32..5,
        seed in any::<u64>(),
    ) {
        let spec = spec(Rule::Asha { min_epochs: 1, reduction });
        // Every first epoch reported before any decision, in any order.
        let mut firsts: Vec<TrialCurve<u32>> = curves
            .iter()
            .map(|c| TrialCurve { values: c.values[..1].to_vec(), ..c.clone() })
            .collect();
        crate::rng::SplitMix64::new(seed).shuffle(&mut firsts);
        let d = decide(&spec, &firsts, &[]);
        let mut seeds: BTreeMap<u32, Vec<f64>> = BTreeMap::new();
        for c in &curves {
            seeds.entry(c.config).or_default().push(c.values[0]);
        }
        let mut ranking: Vec<(u32, f64, f64)> = seeds
            .into_iter()
            .map(|(k, mut v)| {
                let error = rung::standard_error(&mut v);
                (k, seed_mean(&mut v).unwrap_or(f64::NAN), error)
            })
            .collect();
        ranking.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        // All are there: the rung passes at least one, and every mean within one standard
        // error of the cutoff.
        let quota = (ranking.len() / reduction as usize).max(1);
        let cutoff = ranking[quota - 1].1;
        let mut best: Vec<u32> = ranking
            .iter()
            .enumerate()
            .filter(|(i, (_, mean, error))| *i < quota || mean + error >= cutoff)
            .map(|(_, (k, _, _))| *k)
            .collect();
        best.sort();
        prop_assert_eq!(passed(&d, 1), best);
        // Every configuration has exactly one decision at the rung.
        prop_assert_eq!(d.len(), ranking.len());
    }
}

#[test]
fn expected_epochs_under_each_rule() {
    let asha = Rule::Asha {
        min_epochs: 1,
        reduction: 3,
    };
    // Rungs 1, 3, 9 below 20: 2/3 stop at 1, 2/9 at 3, 2/27 at 9, 1/27 train 20.
    let nominal = 2.0 / 3.0 + 2.0 / 9.0 * 3.0 + 2.0 / 27.0 * 9.0 + 20.0 / 27.0;
    let got = expected_epochs(&asha, 20).expect("asha");
    assert!((got - nominal).abs() < 1e-12, "{got} against {nominal}");
    // No rung below the last epoch: every trial trains to its end.
    assert_eq!(expected_epochs(&asha, 1), Some(1.0));
    // Hyperband: the mean of its brackets (bracket 1 is ASHA from 3).
    let hyperband = Rule::Hyperband {
        min_epochs: 1,
        reduction: 3,
        brackets: 2,
    };
    let from_three = Rule::Asha {
        min_epochs: 3,
        reduction: 3,
    };
    let mean = (got + expected_epochs(&from_three, 20).expect("asha")) / 2.0;
    let hb = expected_epochs(&hyperband, 20).expect("hyperband");
    assert!((hb - mean).abs() < 1e-12);
    let median = Rule::Median {
        min_epochs: 1,
        min_trials: 3,
    };
    assert_eq!(expected_epochs(&median, 20), None);
}
