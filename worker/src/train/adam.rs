//! Adam, as PyTorch's default (single-tensor, non-fused) `torch.optim.Adam` computes it, with its
//! state in tensors we own so that checkpoints can save and restore it exactly.

use tch::Tensor;

use super::TrainError;

/// Adam's hyperparameters and state.
pub struct Adam {
    lr: f64,
    beta1: f64,
    beta2: f64,
    eps: f64,
    /// Steps taken so far.
    pub(super) step: i64,
    /// First moments, one per parameter.
    pub(super) exp_avg: Vec<Tensor>,
    /// Second moments, one per parameter.
    pub(super) exp_avg_sq: Vec<Tensor>,
}

impl Adam {
    /// Adam with PyTorch's defaults: betas (0.9, 0.999), eps 1e-8, no weight decay.
    pub fn new(params: &[&Tensor], lr: f64) -> Result<Self, TrainError> {
        let zeros = |p: &&Tensor| p.f_zeros_like();
        Ok(Self {
            lr,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            step: 0,
            exp_avg: params.iter().map(zeros).collect::<Result<_, _>>()?,
            exp_avg_sq: params.iter().map(zeros).collect::<Result<_, _>>()?,
        })
    }

    /// One update of `params` from their gradients, which are then zeroed.
    pub fn step(&mut self, params: &mut [Tensor]) -> Result<(), TrainError> {
        self.step += 1;
        let t = self.step as f64;
        let bias_correction1 = 1.0 - self.beta1.powf(t);
        let bias_correction2_sqrt = (1.0 - self.beta2.powf(t)).sqrt();
        let step_size = self.lr / bias_correction1;
        tch::no_grad(|| -> Result<(), TrainError> {
            for ((p, m), v) in params
                .iter_mut()
                .zip(&mut self.exp_avg)
                .zip(&mut self.exp_avg_sq)
            {
                let g = p.grad();
                if !g.defined() {
                    continue;
                }
                // m = beta1 m + (1 - beta1) g
                let _ = m.f_lerp_(&g, 1.0 - self.beta1)?;
                // v = beta2 v + (1 - beta2) g^2
                let _ = v.f_lerp_(&g.f_square()?, 1.0 - self.beta2)?;
                // p -= step_size * m / (sqrt(v) / sqrt(1 - beta2^t) + eps), as p += m / d with
                // d = -(sqrt(v) / sqrt(1 - beta2^t) + eps) / step_size: 4 passes instead of 6.
                let mut d = v.f_sqrt()?;
                let _ = d.f_mul_scalar_(-1.0 / (bias_correction2_sqrt * step_size))?;
                let _ = d.f_add_scalar_(-self.eps / step_size)?;
                let _ = p.f_addcdiv_(m, &d)?;
                p.zero_grad();
            }
            Ok(())
        })
    }
}
