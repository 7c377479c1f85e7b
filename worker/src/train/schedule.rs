//! The learning-rate schedule: a linear warm-up, then constant, step, cosine or one-cycle,
//! counted in epochs or in batches, as PyTorch's `torch.optim.lr_scheduler` computes them.
//!
//! The learning rate is a pure function of the position (the epoch, or the batch counted from
//! the start of training), which a checkpoint holds (its epochs; a checkpoint is taken between
//! epochs), so a resumed trial continues the schedule exactly where it stopped.

use sweep_common::HyperParams;
use sweep_common::grid::{LrSchedule, LrScheduleUnit};

/// `OneCycleLR`'s defaults: the share of the cycle spent rising, the start (`max / 25`) and the
/// end (`start / 1e4`).
const ONECYCLE_PCT_START: f64 = 0.3;
const ONECYCLE_DIV: f64 = 25.0;
const ONECYCLE_FINAL_DIV: f64 = 1e4;

/// A trial's schedule.
#[derive(Debug, Clone, Copy)]
pub struct Schedule {
    kind: LrSchedule,
    per_batch: bool,
    base: f64,
    warmup: u64,
    /// Units in the whole run (epochs, or batches).
    total: u64,
    step_size: u64,
    gamma: f64,
}

impl Schedule {
    /// The schedule of `p` for a run of `batches` batches per epoch.
    pub fn new(p: &HyperParams, batches: u64) -> Self {
        let per_batch = p.lr_schedule_unit == LrScheduleUnit::Batch;
        let epochs = u64::from(p.epochs);
        Self {
            kind: p.lr_schedule,
            per_batch,
            base: p.learning_rate,
            warmup: u64::from(p.lr_warmup),
            total: if per_batch { epochs * batches } else { epochs },
            step_size: u64::from(p.lr_step_size).max(1),
            gamma: p.lr_gamma,
        }
    }

    /// The position of batch `batch` (from 0) of epoch `epoch` (from 1).
    pub fn position(&self, epoch: u32, batch: u64, batches: u64) -> u64 {
        let done = u64::from(epoch.saturating_sub(1));
        if self.per_batch {
            done * batches + batch
        } else {
            done
        }
    }

    /// The learning rate at position `t` (from 0).
    pub fn lr(&self, t: u64) -> f64 {
        let base = self.base;
        if t < self.warmup {
            // `LinearLR(start_factor = 1 / (warmup + 1), total_iters = warmup)`.
            return base * (t + 1) as f64 / (self.warmup + 1) as f64;
        }
        // The schedule runs over what the warm-up leaves, from 0 (PyTorch's `SequentialLR`).
        let t = t - self.warmup;
        let total = self.total.saturating_sub(self.warmup).max(1);
        match self.kind {
            LrSchedule::Constant => base,
            LrSchedule::Step => {
                let k = i32::try_from(t / self.step_size).unwrap_or(i32::MAX);
                base * self.gamma.powi(k)
            }
            LrSchedule::Cosine => {
                base * (1.0 + (std::f64::consts::PI * t as f64 / total as f64).cos()) / 2.0
            }
            LrSchedule::Onecycle => onecycle(base, t, total),
        }
    }
}

/// `OneCycleLR(max_lr = max, total_steps = total)` at step `t`, with cosine annealing and two
/// phases, written as PyTorch writes it.
fn onecycle(max: f64, t: u64, total: u64) -> f64 {
    let start = max / ONECYCLE_DIV;
    let end = start / ONECYCLE_FINAL_DIV;
    let phases = [
        (ONECYCLE_PCT_START * total as f64 - 1.0, start, max),
        (total as f64 - 1.0, max, end),
    ];
    let t = t as f64;
    let mut from = 0.0;
    for (i, &(to, lr_from, lr_to)) in phases.iter().enumerate() {
        if t <= to || i == phases.len() - 1 {
            let pct = if to == from {
                1.0
            } else {
                (t - from) / (to - from)
            };
            return lr_to + (lr_from - lr_to) / 2.0 * ((std::f64::consts::PI * pct).cos() + 1.0);
        }
        from = to;
    }
    end
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schedule(kind: &str, unit: &str, warmup: u32, epochs: u32) -> Schedule {
        let mut p = HyperParams::defaults(0).unwrap();
        p.learning_rate = 0.1;
        p.lr_schedule = kind.parse().unwrap();
        p.lr_schedule_unit = unit.parse().unwrap();
        p.lr_warmup = warmup;
        p.epochs = epochs;
        p.lr_step_size = 3;
        p.lr_gamma = 0.5;
        Schedule::new(&p, 1)
    }

    fn assert_follows(s: &Schedule, want: &[f64]) {
        let got: Vec<f64> = (0..want.len() as u64).map(|t| s.lr(t)).collect();
        for (g, w) in got.iter().zip(want) {
            assert!(
                (g - w).abs() <= 1e-12 * w.abs().max(1e-12),
                "{got:?}\n{want:?}"
            );
        }
    }

    /// The learning rates PyTorch 2.11's schedulers give an `SGD(lr=0.1)` before each step:
    /// `StepLR(o, 3, 0.5)`, `CosineAnnealingLR(o, 10)`, `OneCycleLR(o, 0.1, total_steps=10,
    /// cycle_momentum=False)`, and `SequentialLR(o, [LinearLR(o, 1/(w+1), 1.0, w), S], [w])`
    /// for a warm-up of `w` before `S` (cosine over the 7 steps left, step).
    #[test]
    fn schedules_equal_pytorchs() {
        assert_follows(
            &schedule("step", "epoch", 0, 10),
            &[0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.025, 0.025, 0.025, 0.0125],
        );
        assert_follows(
            &schedule("cosine", "epoch", 0, 10),
            &[
                0.1,
                0.09755282581475769,
                0.09045084971874738,
                0.07938926261462367,
                0.06545084971874739,
                0.05000000000000001,
                0.03454915028125264,
                0.020610737385376353,
                0.009549150281252635,
                0.002447174185242324,
            ],
        );
        assert_follows(
            &schedule("onecycle", "epoch", 0, 10),
            &[
                0.0040000000000000036,
                0.052000000000000005,
                0.1,
                0.09504846320134738,
                0.0811745653949763,
                0.06112620219362893,
                0.03887419780637107,
                0.0188258346050237,
                0.004951936798652629,
                4e-07,
            ],
        );
        assert_follows(
            &schedule("cosine", "epoch", 3, 10),
            &[
                0.025,
                0.05,
                0.07500000000000001,
                0.1,
                0.09504844339512096,
                0.08117449009293669,
                0.061126046697815725,
                0.03887395330218429,
                0.018825509907063328,
                0.004951556604879048,
            ],
        );
        let mut s = schedule("step", "epoch", 2, 8);
        s.step_size = 2;
        assert_follows(
            &s,
            &[
                0.03333333333333333,
                0.06666666666666667,
                0.1,
                0.1,
                0.05,
                0.05,
                0.025,
                0.025,
            ],
        );
        assert_follows(
            &schedule("constant", "epoch", 2, 5),
            &[0.03333333333333333, 0.06666666666666667, 0.1, 0.1, 0.1],
        );
    }

    /// Per batch the position counts every batch from the start; per epoch, the epoch.
    #[test]
    fn positions_count_the_unit() {
        let per_batch = schedule("cosine", "batch", 0, 4);
        assert_eq!(per_batch.position(1, 0, 7), 0);
        assert_eq!(per_batch.position(3, 2, 7), 16);
        let per_epoch = schedule("cosine", "epoch", 0, 4);
        assert_eq!(per_epoch.position(3, 2, 7), 2);
        // A one-unit run and a warm-up as long as the run stay finite.
        for kind in ["step", "cosine", "onecycle"] {
            for warmup in [0, 1, 5] {
                let s = schedule(kind, "epoch", warmup, 1);
                assert!(s.lr(0).is_finite() && s.lr(0) > 0.0, "{kind} {warmup}");
            }
        }
    }
}
