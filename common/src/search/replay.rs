//! Replay: a stopping rule run over recorded curves in virtual time, to measure it without
//! training. Trials are leased in their order to `workers` simulated workers; each epoch takes
//! its recorded seconds; after every epoch report, [`stopping::decide`] runs on what has been
//! reported so far, exactly as a coordinator would call it, and its decisions are applied: a
//! stopped configuration's trials leave their workers and the queue, a promoted one's go back
//! to the front of the queue and resume where they stopped. The result says what the rule
//! stopped, how many epochs it trained against the full grid's, and the best configuration it
//! found. Pure and deterministic (ties go to the lower worker, then the earlier trial).

use std::collections::{BTreeMap, VecDeque};
use std::fmt::Debug;

use super::StoppingSpec;
use super::stopping::{self, Action, Decision, TrialCurve};

/// One recorded trial: its full curve and the seconds each epoch took.
#[derive(Debug, Clone, PartialEq)]
pub struct Recorded<K> {
    /// The trial.
    pub trial: K,
    /// Its configuration (equal for trials that differ only in their seed).
    pub config: K,
    /// The configuration's position in the experiment.
    pub order: u64,
    /// The objective's metric after each epoch, epoch 1 first: every epoch it trains.
    pub values: Vec<f64>,
    /// Seconds each epoch took (a missing entry counts as one second).
    pub seconds: Vec<f64>,
}

/// What a replay found.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome<K> {
    /// Every decision, with the virtual time it was taken at, in order.
    pub decisions: Vec<(f64, Decision<K>)>,
    /// Epochs trained under the rule.
    pub epochs_trained: u64,
    /// Epochs of the full grid (every trial to its last epoch).
    pub epochs_full: u64,
    /// Virtual seconds until the last worker is idle.
    pub makespan: f64,
    /// Configurations stopped for good (their latest decision is a stop).
    pub stopped: Vec<K>,
    /// The best configuration that trained to its end, and its final value (the mean over its
    /// seeds), by the rule's objective.
    pub best: Option<(K, f64)>,
}

/// A worker's current trial: which, and when its running epoch ends.
#[derive(Debug, Clone, Copy)]
struct Busy {
    trial: usize,
    until: f64,
}

/// Replays `spec` over `trials` with `workers` workers (at least one).
pub fn replay<K: Ord + Clone + Debug>(
    spec: &StoppingSpec,
    trials: &[Recorded<K>],
    workers: usize,
) -> Outcome<K> {
    let seconds = |i: usize, epoch: usize| -> f64 {
        trials[i]
            .seconds
            .get(epoch)
            .copied()
            .filter(|s| s.is_finite() && *s >= 0.0)
            .unwrap_or(1.0)
    };
    let mut curves: Vec<TrialCurve<K>> = trials
        .iter()
        .map(|t| TrialCurve {
            trial: t.trial.clone(),
            config: t.config.clone(),
            order: t.order,
            values: Vec::new(),
            epochs: u32::try_from(t.values.len()).unwrap_or(u32::MAX),
            ended: t.values.is_empty(),
        })
        .collect();
    let mut order: Vec<usize> = (0..trials.len()).collect();
    order.sort_by(|&a, &b| trials[a].order.cmp(&trials[b].order).then(a.cmp(&b)));
    let mut queue: VecDeque<usize> = order.into_iter().filter(|&i| !curves[i].ended).collect();
    let mut stopped: BTreeMap<K, bool> = BTreeMap::new();
    let mut past: Vec<Decision<K>> = Vec::new();
    let mut timed = Vec::new();
    let mut slots: Vec<Option<Busy>> = vec![None; workers.max(1)];
    let mut now = 0.0f64;
    let mut trained = 0u64;
    loop {
        // Idle workers take the next trial.
        for slot in &mut slots {
            if slot.is_none()
                && let Some(i) = queue.pop_front()
            {
                *slot = Some(Busy {
                    trial: i,
                    until: now + seconds(i, curves[i].values.len()),
                });
            }
        }
        // The next epoch to end.
        let Some((w, busy)) = slots
            .iter()
            .enumerate()
            .filter_map(|(w, b)| b.map(|b| (w, b)))
            .min_by(|a, b| a.1.until.total_cmp(&b.1.until).then(a.0.cmp(&b.0)))
        else {
            break;
        };
        now = busy.until;
        let i = busy.trial;
        let epoch = curves[i].values.len();
        curves[i].values.push(trials[i].values[epoch]);
        trained += 1;
        curves[i].ended = curves[i].values.len() == trials[i].values.len();
        slots[w] = (!curves[i].ended).then(|| Busy {
            trial: i,
            until: now + seconds(i, epoch + 1),
        });
        let new = stopping::decide(spec, &curves, &past);
        for d in &new {
            match d.action {
                Action::Continue => {}
                Action::Stop { .. } => {
                    stopped.insert(d.config.clone(), true);
                    queue.retain(|&j| trials[j].config != d.config);
                    for slot in &mut slots {
                        if slot.is_some_and(|b| trials[b.trial].config == d.config) {
                            *slot = None;
                        }
                    }
                }
                Action::Promote => {
                    stopped.insert(d.config.clone(), false);
                    let running: Vec<usize> = slots.iter().flatten().map(|b| b.trial).collect();
                    for j in (0..trials.len()).rev() {
                        if trials[j].config == d.config
                            && !curves[j].ended
                            && !running.contains(&j)
                            && !queue.contains(&j)
                        {
                            queue.push_front(j);
                        }
                    }
                }
            }
            timed.push((now, d.clone()));
        }
        past.extend(new);
    }
    // Final values of the configurations whose every trial trained to its end.
    let mut finals: BTreeMap<K, (f64, u32, bool)> = BTreeMap::new();
    for (t, c) in trials.iter().zip(&curves) {
        let e = finals.entry(t.config.clone()).or_insert((0.0, 0, true));
        e.2 &= c.values.len() == t.values.len();
        if let Some(v) = c.values.last() {
            e.0 += v;
            e.1 += 1;
        }
    }
    let best = finals
        .into_iter()
        .filter(|(_, (_, n, complete))| *complete && *n > 0)
        .map(|(k, (sum, n, _))| (k, sum / f64::from(n)))
        .fold(None::<(K, f64)>, |best, (k, v)| match best {
            Some((bk, bv)) if spec.objective.score(bv) >= spec.objective.score(v) => Some((bk, bv)),
            _ => Some((k, v)),
        });
    Outcome {
        decisions: timed,
        epochs_trained: trained,
        epochs_full: trials.iter().map(|t| t.values.len() as u64).sum(),
        makespan: now,
        stopped: stopped
            .into_iter()
            .filter(|(_, s)| *s)
            .map(|(k, _)| k)
            .collect(),
        best,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::search::{Objective, Rule};

    /// 27 configurations x 3 seeds, 20 epochs, curves rising to a plateau that grows with the
    /// configuration's quality, with seed noise; configuration 13 is the best.
    fn sweep() -> Vec<Recorded<u32>> {
        let mut rng = crate::rng::SplitMix64::new(3);
        let mut out = Vec::new();
        for c in 0..27u32 {
            let quality = 0.9 - 0.01 * f64::from(c.abs_diff(13));
            for s in 0..3u32 {
                let values = (1..=20)
                    .map(|e| {
                        let noise = (rng.below(1000) as f64 / 1000.0 - 0.5) * 0.004;
                        quality * (1.0 - (-f64::from(e) / 4.0).exp()) + noise
                    })
                    .collect();
                out.push(Recorded {
                    trial: c * 3 + s,
                    config: c,
                    order: u64::from(c),
                    values,
                    seconds: vec![1.0; 20],
                });
            }
        }
        out
    }

    #[test]
    fn asha_finds_the_best_with_a_fraction_of_the_epochs() {
        let spec = StoppingSpec {
            rule: Rule::Asha {
                min_epochs: 1,
                reduction: 3,
            },
            objective: Objective::default(),
        };
        let out = replay(&spec, &sweep(), 4);
        assert_eq!(out.epochs_full, 27 * 3 * 20);
        assert!(
            out.epochs_trained * 10 < out.epochs_full * 4,
            "{} of {}",
            out.epochs_trained,
            out.epochs_full
        );
        let (best, _) = out.best.unwrap();
        assert!(best.abs_diff(13) <= 1, "{best}");
        assert!(!out.stopped.contains(&best));
        // The same inputs replay the same way.
        assert_eq!(replay(&spec, &sweep(), 4), out);
    }

    #[test]
    fn a_rule_that_never_stops_trains_everything() {
        let spec = StoppingSpec {
            rule: Rule::Median {
                min_epochs: 1,
                min_trials: 10_000,
            },
            objective: Objective::default(),
        };
        let out = replay(&spec, &sweep(), 4);
        assert_eq!(out.epochs_trained, out.epochs_full);
        assert!(out.stopped.is_empty());
        assert_eq!(out.best.map(|b| b.0), Some(13));
        // 81 trials of 20 one-second epochs on 4 workers.
        assert_eq!(out.makespan, 21.0 * 20.0);
    }
}
