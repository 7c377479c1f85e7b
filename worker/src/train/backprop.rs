//! The training step by hand: forward into preallocated buffers, then the gradients of the
//! cross-entropy loss written straight into preallocated gradient buffers.
//!
//! An MLP's backward pass is three matmul-shaped operations per layer (weight gradient, bias
//! gradient, input gradient) and one element-wise activation derivative, so autograd buys nothing
//! here and costs much: on lab 1's Fashion-MNIST model a step with autograd was about 60 libtorch
//! calls, each with its dispatch, its allocations and its graph node; this one is about 20 and
//! allocates nothing but tensor handles. The arithmetic is the same as autograd's (the
//! `threshold`/`tanh`/`sigmoid` backward kernels are the ones autograd calls); only the rounding
//! of the softmax gradient's last operation may differ.
//!
//! What each step measures (per-sample loss, prediction, label) goes into per-epoch buffers on
//! the device, read once at the end of the epoch.

use sweep_common::Activation;
use tch::{Device, Kind, Tensor};

use super::augment::Augment;
use super::normalize::Norm;
use super::{Mlp, TrainError};

/// The per-batch tensors for one batch size: the input, each layer's output and the gradient of
/// the loss with respect to each layer's output before its activation.
struct Buffers {
    /// The batch's images as stored (u8, or f32 for a user's float32 `.npz`).
    raw: Tensor,
    /// The same as the model's input (u8 scaled to [0, 1]).
    input: Tensor,
    /// Each layer's output: the activations of the hidden layers, then the logits.
    outputs: Vec<Tensor>,
    /// d loss / d (pre-activation output) of each layer.
    deltas: Vec<Tensor>,
    /// Log-softmax of the logits.
    log_probs: Tensor,
    /// -(1 - label smoothing) for every row, added at each label's position of the softmax.
    minus_target: Tensor,
}

impl Buffers {
    fn new(batch: i64, dims: &[i64], smoothing: f64, device: Device) -> Result<Self, TrainError> {
        let float = (Kind::Float, device);
        let classes = dims[dims.len() - 1];
        let per_layer = |_: ()| -> Result<Vec<Tensor>, TrainError> {
            dims[1..]
                .iter()
                .map(|&d| Ok(Tensor::f_empty([batch, d], float)?))
                .collect()
        };
        Ok(Self {
            raw: Tensor::f_empty([batch, dims[0]], (Kind::Uint8, device))?,
            input: Tensor::f_empty([batch, dims[0]], float)?,
            outputs: per_layer(())?,
            deltas: per_layer(())?,
            log_probs: Tensor::f_empty([batch, classes], float)?,
            minus_target: Tensor::f_full([batch, 1], smoothing - 1.0, float)?,
        })
    }

    /// The forward pass of the batch in [`Buffers::input`]: each layer's output, activated but
    /// for the logits.
    fn forward(
        &mut self,
        model: &Mlp,
        weights_t: &[Tensor],
        activation: Activation,
    ) -> Result<(), TrainError> {
        let last = model.layers.len() - 1;
        for (l, (_, b)) in model.layers.iter().enumerate() {
            let input = if l == 0 {
                &self.input
            } else {
                &self.outputs[l - 1]
            };
            let _ = b.f_addmm_out(&self.outputs[l], input, &weights_t[l])?;
            if l < last {
                let h = &mut self.outputs[l];
                let _ = match activation {
                    Activation::Relu => h.f_relu_()?,
                    Activation::Tanh => h.f_tanh_()?,
                    Activation::Sigmoid => h.f_sigmoid_()?,
                };
            }
        }
        Ok(())
    }

    /// The backward pass from the logits' delta: each layer's weight and bias gradients into
    /// `grads` (weight, bias, weight, ...), and the deltas of the layers below.
    fn backward(
        &self,
        model: &Mlp,
        grads: &[Tensor],
        activation: Activation,
    ) -> Result<(), TrainError> {
        let last = model.layers.len() - 1;
        for l in (0..=last).rev() {
            let input = if l == 0 {
                &self.input
            } else {
                &self.outputs[l - 1]
            };
            let delta = &self.deltas[l];
            let _ = delta.f_tr()?.f_mm_out(&grads[2 * l], input)?;
            let _ = delta.f_sum_intlist_out(&grads[2 * l + 1], [0i64].as_slice(), false, None)?;
            if l > 0 {
                let (w, _) = &model.layers[l];
                let prev = &self.deltas[l - 1];
                let _ = delta.f_mm_out(prev, w)?;
                // Through the activation, whose output is `input`.
                let _ = match activation {
                    Activation::Relu => input.f_threshold_backward_grad_input(prev, prev, 0.0)?,
                    Activation::Tanh => Tensor::f_tanh_backward_grad_input(prev, prev, input)?,
                    Activation::Sigmoid => {
                        Tensor::f_sigmoid_backward_grad_input(prev, prev, input)?
                    }
                };
            }
        }
        Ok(())
    }
}

/// What the epoch's steps measured, row by row in training order.
struct EpochRows {
    /// Each sample's label.
    labels: Tensor,
    /// Each sample's predicted class.
    predictions: Tensor,
    /// Each sample's log-probability of its label, `[n, 1]`.
    label_log_probs: Tensor,
}

/// The buffers of one trial's training steps.
pub(super) struct Workspace {
    batch: i64,
    activation: Activation,
    /// The loss's label smoothing (0: none).
    smoothing: f64,
    full: Buffers,
    /// For the last, shorter batch of an epoch (the subset's length is fixed, so is its size).
    tail: Option<Buffers>,
    /// Each weight, transposed (a view: it follows the updates).
    weights_t: Vec<Tensor>,
    /// The gradients, in the order of [`Mlp::named_parameters`].
    pub(super) grads: Vec<Tensor>,
    epoch: EpochRows,
}

impl Workspace {
    /// Buffers for batches of `batch` rows of the `rows` samples of an epoch, for a loss with
    /// label smoothing `smoothing`.
    pub(super) fn new(
        model: &Mlp,
        batch: i64,
        rows: i64,
        smoothing: f64,
    ) -> Result<Self, TrainError> {
        let (w0, _) = &model.layers[0];
        let device = w0.device();
        let mut dims = vec![w0.size()[1]];
        dims.extend(model.layers.iter().map(|(w, _)| w.size()[0]));
        let mut grads = Vec::with_capacity(2 * model.layers.len());
        let mut weights_t = Vec::with_capacity(model.layers.len());
        for (w, b) in &model.layers {
            grads.push(w.f_zeros_like()?);
            grads.push(b.f_zeros_like()?);
            weights_t.push(w.f_tr()?);
        }
        Ok(Self {
            batch,
            activation: model.activation,
            smoothing,
            full: Buffers::new(batch, &dims, smoothing, device)?,
            tail: None,
            weights_t,
            grads,
            epoch: EpochRows {
                labels: Tensor::f_empty([rows], (Kind::Int64, device))?,
                predictions: Tensor::f_empty([rows], (Kind::Int64, device))?,
                label_log_probs: Tensor::f_empty([rows, 1], (Kind::Float, device))?,
            },
        })
    }

    /// One forward and backward pass over the dataset rows `idx` of (images, labels), which are
    /// the epoch's rows `start..start + idx.len()`, augmented with the batch's seed when given:
    /// fills [`Workspace::grads`] and the epoch's measurements.
    pub(super) fn step(
        &mut self,
        model: &Mlp,
        (images, labels): (&Tensor, &Tensor),
        idx: &Tensor,
        start: i64,
        (augment, norm): (Option<(Augment, u64)>, Option<&Norm>),
    ) -> Result<(), TrainError> {
        let rows = idx.size1()?;
        let bufs = if rows == self.batch {
            &mut self.full
        } else {
            let mut dims = vec![self.full.input.size()[1]];
            dims.extend(self.full.outputs.iter().map(|t| t.size()[1]));
            match &mut self.tail {
                Some(t) if t.input.size()[0] == rows => t,
                tail => tail.insert(Buffers::new(rows, &dims, self.smoothing, images.device())?),
            }
        };
        let last = model.layers.len() - 1;

        // Input: gather the rows, convert to float in [0, 1] (as `to_float` does, in place).
        if bufs.raw.kind() != images.kind() {
            // Float32 images (a user's `.npz`): the raw buffer takes their kind, once.
            bufs.raw = bufs.raw.f_to_kind(images.kind())?;
        }
        let _ = images.f_index_select_out(&bufs.raw, 0, idx)?;
        if let Some((a, seed)) = augment {
            bufs.raw.f_copy_(&a.apply(&bufs.raw, seed)?)?;
        }
        bufs.input.f_copy_(&bufs.raw)?;
        if let Some(scale) = super::pixel_scale(images) {
            let _ = bufs.input.f_mul_scalar_(scale)?;
        }
        if let Some(norm) = norm {
            norm.apply_(&mut bufs.input)?;
        }
        let y = self.epoch.labels.f_narrow(0, start, rows)?;
        let _ = labels.f_index_select_out(&y, 0, idx)?;

        // Forward.
        bufs.forward(model, &self.weights_t, self.activation)?;

        // Loss: mean over the batch of -log softmax(logits) . target, where the target is
        // one_hot(label) (1 - s) + s / classes for label smoothing s (PyTorch's). Its gradient
        // with respect to the logits is (softmax - target) / rows.
        let logits = &bufs.outputs[last];
        let _ = logits.f_log_softmax_int_out(&bufs.log_probs, 1, None)?;
        let y_col = y.f_view([rows, 1])?;
        let mut row_log_probs = self.epoch.label_log_probs.f_narrow(0, start, rows)?;
        let _ = bufs
            .log_probs
            .f_gather_out(&row_log_probs, 1, &y_col, false)?;
        let s = self.smoothing;
        let classes = bufs.log_probs.size()[1] as f64;
        if s > 0.0 {
            let all = bufs
                .log_probs
                .f_sum_dim_intlist([1i64].as_slice(), true, Kind::Float)?;
            let _ = row_log_probs.f_mul_scalar_(1.0 - s)?;
            let _ = row_log_probs.f_add_(&all.f_mul_scalar(s / classes)?)?;
        }
        let _ = logits.f_argmax_out(&self.epoch.predictions.f_narrow(0, start, rows)?, 1, false)?;
        let dz = &mut bufs.deltas[last];
        let _ = bufs.log_probs.f_exp_out(dz)?;
        if s > 0.0 {
            let _ = dz.f_add_scalar_(-s / classes)?;
        }
        let _ = dz.f_scatter_add_(1, &y_col, &bufs.minus_target)?;
        let _ = dz.f_mul_scalar_(1.0 / rows as f64)?;

        // Backward.
        bufs.backward(model, &self.grads, self.activation)
    }

    /// The epoch's mean batch loss (the mean of the per-batch mean losses, as the lab computed
    /// it) and its number of correct predictions, read from the device once.
    pub(super) fn epoch_measures(&self) -> Result<(f64, i64), TrainError> {
        let rows = &self.epoch;
        let correct = rows
            .predictions
            .f_eq_tensor(&rows.labels)?
            .f_sum(Kind::Int64)?
            .f_int64_value(&[])?;
        let log_probs = Vec::<f32>::try_from(
            rows.label_log_probs
                .f_flatten(0, -1)?
                .f_to_device(Device::Cpu)?,
        )?;
        let batch = self.batch.max(1) as usize;
        let mut batches = 0usize;
        let mut loss = 0.0;
        for chunk in log_probs.chunks(batch) {
            loss -= chunk.iter().map(|&v| f64::from(v)).sum::<f64>() / chunk.len() as f64;
            batches += 1;
        }
        Ok((loss / batches.max(1) as f64, correct))
    }
}
