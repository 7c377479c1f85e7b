//! The optimisers beside Adam's fused pass (`adam.rs`): weight decay (an L2 term for Adam and
//! SGD, decoupled for AdamW) and SGD with momentum or Nesterov momentum, as PyTorch's
//! `torch.optim` computes them, with SGD's momentum buffers in tensors we own so checkpoints
//! save and restore them exactly.

use sweep_common::HyperParams;
use sweep_common::grid::Optimizer;
use tch::Tensor;

use super::{Adam, TrainError};

/// The optimiser of a trial and the state Adam does not hold.
pub struct Optim {
    kind: Optimizer,
    lr: f64,
    momentum: f64,
    weight_decay: f64,
    /// SGD's momentum buffers, one per parameter (empty for Adam and AdamW).
    pub(super) velocity: Vec<Tensor>,
}

impl Optim {
    /// The optimiser `p` names, for `params`.
    pub fn new(p: &HyperParams, params: &[Tensor]) -> Result<Self, TrainError> {
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
            velocity,
        })
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
            let mut o = Optim::new(&params(optimizer, m, wd), &ps).unwrap();
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
        assert!(Optim::new(&params("nesterov", 0.0, 0.0), &[start]).is_err());
    }
}
