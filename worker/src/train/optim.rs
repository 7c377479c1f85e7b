//! The optimisers beside Adam's fused pass (`adam.rs`): weight decay (an L2 term for Adam and
//! SGD, decoupled for AdamW) and SGD with momentum or Nesterov momentum, as PyTorch's
//! `torch.optim` computes them, with SGD's momentum buffers in tensors we own so checkpoints
//! save and restore them exactly; the learning rate the schedule sets (`schedule.rs`); and
//! clipping of the gradients' global norm, as `torch.nn.utils.clip_grad_norm_` does it, on the
//! device (no host synchronisation).

use sweep_common::HyperParams;
use sweep_common::grid::Optimizer;
use tch::Tensor;

use super::schedule::Schedule;
use super::{Adam, TrainError};

/// The optimiser of a trial and the state Adam does not hold.
pub struct Optim {
    kind: Optimizer,
    lr: f64,
    momentum: f64,
    weight_decay: f64,
    /// The largest global norm of the gradients (0: no clipping).
    clip: f64,
    schedule: Schedule,
    /// SGD's momentum buffers, one per parameter (empty for Adam and AdamW).
    pub(super) velocity: Vec<Tensor>,
}

impl Optim {
    /// The optimiser `p` names, for `params`, in a run of `batches` batches per epoch.
    pub fn new(p: &HyperParams, params: &[Tensor], batches: u64) -> Result<Self, TrainError> {
        let sgd = matches!(p.optimizer, Optimizer::Sgd | Optimizer::Nesterov);
        if p.optimizer == Optimizer::Nesterov && p.momentum == 0.0 {
            return Err(TrainError::Invalid(
                "nesterov needs a momentum above 0 (as PyTorch's SGD does)".to_owned(),
            ));
        }
        let velocity = if sgd {
            params
                .iter()
                .map(Tensor::f_zeros_like)
                .collect::<Result<_, _>>()?
        } else {
            Vec::new()
        };
        Ok(Self {
            kind: p.optimizer,
            lr: p.learning_rate,
            momentum: p.momentum,
            weight_decay: p.weight_decay,
            clip: p.clip_grad_norm,
            schedule: Schedule::new(p, batches),
            velocity,
        })
    }

    /// Sets the learning rate of batch `batch` (from 0) of epoch `epoch` (from 1), of
    /// `batches`, from the schedule.
    pub fn schedule(&mut self, adam: &mut Adam, epoch: u32, batch: u64, batches: u64) {
        let lr = self
            .schedule
            .lr(self.schedule.position(epoch, batch, batches));
        self.lr = lr;
        adam.set_lr(lr);
    }

    /// The learning rate the next step uses.
    #[cfg(test)]
    pub fn lr(&self) -> f64 {
        self.lr
    }

    /// Whether SGD's buffers are part of the state.
    pub fn is_sgd(&self) -> bool {
        !self.velocity.is_empty()
    }

    /// One update of `params` from `grads` (one per parameter, same shapes).
    pub fn step(
        &mut self,
        adam: &mut Adam,
        params: &mut [Tensor],
        grads: &[Tensor],
    ) -> Result<(), TrainError> {
        if self.clip > 0.0 {
            clip_grad_norm(grads, self.clip)?;
        }
        let wd = self.weight_decay;
        // L2: g + wd p, in new tensors (the default, wd 0, copies nothing).
        let l2 = wd > 0.0 && self.kind != Optimizer::Adamw;
        let decayed: Vec<Tensor>;
        let grads = if l2 {
            decayed = tch::no_grad(|| {
                params
                    .iter()
                    .zip(grads)
                    .map(|(p, g)| g.f_add(&p.f_mul_scalar(wd)?))
                    .collect::<Result<Vec<_>, _>>()
            })?;
            &decayed
        } else {
            grads
        };
        match self.kind {
            Optimizer::Adam => adam.step(params, grads),
            Optimizer::Adamw => {
                if wd > 0.0 {
                    tch::no_grad(|| -> Result<(), TrainError> {
                        for p in params.iter_mut() {
                            let _ = p.f_mul_scalar_(1.0 - self.lr * wd)?;
                        }
                        Ok(())
                    })?;
                }
                adam.step(params, grads)
            }
            Optimizer::Sgd | Optimizer::Nesterov => tch::no_grad(|| {
                let nesterov = self.kind == Optimizer::Nesterov;
                for ((p, g), buf) in params.iter_mut().zip(grads).zip(&mut self.velocity) {
                    let d = if self.momentum > 0.0 {
                        // buf = m buf + g (zeros at first, which PyTorch's clone equals).
                        let _ = buf.f_mul_scalar_(self.momentum)?;
                        let _ = buf.f_add_(g)?;
                        if nesterov {
                            g.f_add(&buf.f_mul_scalar(self.momentum)?)?
                        } else {
                            buf.shallow_clone()
                        }
                    } else {
                        g.shallow_clone()
                    };
                    let _ = p.f_sub_(&d.f_mul_scalar(self.lr)?)?;
                }
                Ok(())
            }),
        }
    }
}

/// Scales `grads` in place so that their global L2 norm is at most `max_norm`, as
/// `clip_grad_norm_(norm_type=2)` does: by `min(1, max_norm / (norm + 1e-6))`, computed on the
/// device.
fn clip_grad_norm(grads: &[Tensor], max_norm: f64) -> Result<(), TrainError> {
    if grads.is_empty() {
        return Ok(());
    }
    tch::no_grad(|| {
        let norms = grads
            .iter()
            .map(Tensor::f_norm)
            .collect::<Result<Vec<_>, _>>()?;
        let total = Tensor::f_stack(&norms, 0)?.f_norm()?;
        let coef = total
            .f_add_scalar(1e-6)?
            .f_reciprocal()?
            .f_mul_scalar(max_norm)?
            .f_clamp_max(1.0)?;
        for g in grads {
            let _ = g.shallow_clone().f_mul_(&coef)?;
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use tch::{Device, Kind};

    use super::*;

    fn params(optimizer: &str, momentum: f64, wd: f64) -> HyperParams {
        let mut p = HyperParams::defaults(0).unwrap();
        p.optimizer = optimizer.parse().unwrap();
        p.momentum = momentum;
        p.weight_decay = wd;
        p.learning_rate = 0.1;
        p
    }

    /// Two steps of each optimiser on one small tensor, against PyTorch's formulas by hand.
    #[test]
    fn steps_follow_pytorch() {
        let opts = (Kind::Double, Device::Cpu);
        let start = Tensor::from_slice(&[1.0f64, -2.0]).to_kind(opts.0);
        let grad = Tensor::from_slice(&[0.5f64, 0.25]);
        let run = |optimizer: &str, m: f64, wd: f64| -> Vec<f64> {
            let mut ps = vec![start.copy()];
            let mut adam = Adam::new(&[&ps[0]], 0.1).unwrap();
            let mut o = Optim::new(&params(optimizer, m, wd), &ps, 1).unwrap();
            for _ in 0..2 {
                o.step(&mut adam, &mut ps, &[grad.copy()]).unwrap();
            }
            Vec::<f64>::try_from(&ps[0]).unwrap()
        };
        let close = |a: &[f64], b: &[f64]| a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-12);
        // SGD, momentum 0.9, wd 0.01: g1 = g + wd p0; buf1 = g1; p1 = p0 - lr buf1;
        // g2 = g + wd p1; buf2 = 0.9 buf1 + g2; p2 = p1 - lr buf2.
        let by_hand = |nesterov: bool| -> Vec<f64> {
            [1.0f64, -2.0]
                .iter()
                .zip([0.5, 0.25])
                .map(|(&p0, g)| {
                    let g1 = g + 0.01 * p0;
                    let b1 = g1;
                    let p1 = p0 - 0.1 * if nesterov { g1 + 0.9 * b1 } else { b1 };
                    let g2 = g + 0.01 * p1;
                    let b2 = 0.9 * b1 + g2;
                    p1 - 0.1 * if nesterov { g2 + 0.9 * b2 } else { b2 }
                })
                .collect()
        };
        assert!(close(&run("sgd", 0.9, 0.01), &by_hand(false)));
        assert!(close(&run("nesterov", 0.9, 0.01), &by_hand(true)));
        // Plain SGD.
        assert!(close(&run("sgd", 0.0, 0.0), &[1.0 - 0.1, -2.0 - 0.05]));
        // AdamW: p (1 - lr wd) then Adam's step; Adam's first step moves by lr sign(g).
        let adamw = run("adamw", 0.0, 0.5);
        let adam = run("adam", 0.0, 0.0);
        assert!(!close(&adamw, &adam));
        let p1: Vec<f64> = [1.0f64 * 0.95 - 0.1, -2.0 * 0.95 - 0.1].to_vec();
        assert!((adamw[0] - (p1[0] * 0.95 - 0.1)).abs() < 1e-6, "{adamw:?}");
        assert!(Optim::new(&params("nesterov", 0.0, 0.0), &[start], 1).is_err());
    }

    /// `clip_grad_norm_([a, b], 1.5)` in PyTorch 2.11 on `a = [3, 4]`, `b = [[1, -2], [0.5,
    /// 12]]` (norm 13.2004) leaves these gradients; with a bound above the norm, the same.
    #[test]
    fn clipping_equals_pytorchs() {
        let grads = || {
            [
                Tensor::from_slice(&[3.0f32, 4.0]),
                Tensor::from_slice(&[1.0f32, -2.0, 0.5, 12.0]).reshape([2, 2]),
            ]
        };
        let g = grads();
        clip_grad_norm(&g, 1.5).unwrap();
        let got: Vec<f32> = g
            .iter()
            .flat_map(|t| Vec::<f32>::try_from(t.flatten(0, -1)).unwrap())
            .collect();
        let want = [
            0.3408992886543274f64,
            0.4545323848724365,
            0.11363309621810913,
            -0.22726619243621826,
            0.056816548109054565,
            1.3635971546173096,
        ];
        for (a, b) in got.iter().zip(want) {
            assert!((f64::from(*a) - b).abs() <= 1e-6 * b.abs(), "{got:?}");
        }
        let g = grads();
        clip_grad_norm(&g, 100.0).unwrap();
        for (a, b) in g.iter().zip(grads()) {
            assert!(a.equal(&b));
        }
        // Through the optimiser: SGD without momentum moves by lr times the clipped gradient.
        let mut p = params("sgd", 0.0, 0.0);
        p.clip_grad_norm = 1.5;
        let mut ps = vec![Tensor::zeros([2], (Kind::Float, Device::Cpu))];
        let mut adam = Adam::new(&[&ps[0]], 0.1).unwrap();
        let mut o = Optim::new(&p, &ps, 1).unwrap();
        let g = [Tensor::from_slice(&[3.0f32, 4.0])];
        o.step(&mut adam, &mut ps, &g).unwrap();
        let moved = Vec::<f32>::try_from(&ps[0]).unwrap();
        assert!((moved[0] + 0.1 * 0.9).abs() < 1e-6, "{moved:?}");
    }

    /// The schedule sets the learning rate of both kinds of optimiser.
    #[test]
    fn the_schedule_sets_the_learning_rate() {
        let mut p = params("sgd", 0.0, 0.0);
        p.lr_schedule = sweep_common::grid::LrSchedule::Step;
        p.lr_schedule_unit = sweep_common::grid::LrScheduleUnit::Batch;
        p.lr_step_size = 2;
        p.lr_gamma = 0.5;
        let ps = vec![Tensor::zeros([2], (Kind::Float, Device::Cpu))];
        let mut adam = Adam::new(&[&ps[0]], 0.1).unwrap();
        let mut o = Optim::new(&p, &ps, 3).unwrap();
        // Epoch 2, batch 1 of 3: position 4, two halvings.
        o.schedule(&mut adam, 2, 1, 3);
        assert_eq!(o.lr(), 0.025);
        assert_eq!(adam.lr(), 0.025);
    }
}
