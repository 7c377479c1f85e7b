//! Lab 1's MLP: `hidden_layers` blocks of `Linear + activation`, then a `Linear` to the logits.

use sweep_common::rng::SplitMix64;
use sweep_common::{Activation, TrialSpec};
use tch::{Tensor, nn};

use super::TrainError;

/// The model. Parameters are named like the state dict of the same model built as PyTorch's
/// `nn.Sequential(Linear, act, Linear, act, ..., Linear)`: `0.weight`, `0.bias`, `2.weight`, ...
/// (the activations hold the odd indices), so saved weights load straight into it.
pub struct Mlp {
    pub(super) layers: Vec<(Tensor, Tensor)>,
    pub(super) activation: Activation,
}

impl Mlp {
    /// Creates the model's variables in `vs`, initialised like PyTorch's `nn.Linear` (weights and
    /// biases uniform in +-1/sqrt(fan_in), i.e. Kaiming-uniform with a = sqrt(5)) from the
    /// portable generator of the trial's seed, so the initial weights are the same on any device.
    pub fn new(vs: &nn::Path<'_>, spec: &TrialSpec) -> Result<Self, TrainError> {
        let p = &spec.params;
        let input = spec.dataset.input_len() as i64;
        let width = i64::from(p.hidden_width);
        let classes = spec.dataset.num_classes() as i64;
        let mut dims = vec![input];
        dims.extend(std::iter::repeat_n(width, p.hidden_layers as usize));
        dims.push(classes);
        let mut layers = Vec::with_capacity(dims.len() - 1);
        for (i, pair) in dims.windows(2).enumerate() {
            let (fan_in, fan_out) = (pair[0], pair[1]);
            let mut rng = SplitMix64::for_stream(p.seed, "init", i as u64);
            let bound = 1.0 / (fan_in as f32).sqrt();
            let mut uniform = |n: i64| -> Vec<f32> {
                (0..n)
                    .map(|_| {
                        // 24 random bits: a value in [0, 1) that f32 represents exactly.
                        let u = (rng.next_u64() >> 40) as f32 / (1u64 << 24) as f32;
                        bound * (2.0 * u - 1.0)
                    })
                    .collect()
            };
            let w =
                Tensor::f_from_slice(&uniform(fan_in * fan_out))?.f_reshape([fan_out, fan_in])?;
            let b = Tensor::f_from_slice(&uniform(fan_out))?;
            let layer = vs.sub((2 * i).to_string());
            let w = layer.f_var_copy("weight", &w)?;
            let b = layer.f_var_copy("bias", &b)?;
            layers.push((w, b));
        }
        Ok(Self {
            layers,
            activation: p.activation,
        })
    }

    /// Logits for a batch of flattened images in [0, 1].
    pub fn forward(&self, x: &Tensor) -> Result<Tensor, TrainError> {
        let last = self.layers.len() - 1;
        let mut h = x.shallow_clone();
        for (i, (w, b)) in self.layers.iter().enumerate() {
            h = h.f_linear(w, Some(b))?;
            if i < last {
                h = match self.activation {
                    Activation::Relu => h.f_relu_()?,
                    Activation::Tanh => h.f_tanh_()?,
                    Activation::Sigmoid => h.f_sigmoid_()?,
                };
            }
        }
        Ok(h)
    }

    /// The parameters with their names, in a fixed order.
    pub fn named_parameters(&self) -> Vec<(String, &Tensor)> {
        self.layers
            .iter()
            .enumerate()
            .flat_map(|(i, (w, b))| {
                [
                    (format!("{}.weight", 2 * i), w),
                    (format!("{}.bias", 2 * i), b),
                ]
            })
            .collect()
    }
}
