//! The trainer: lab 1's MLP, trained with libtorch on a device-resident dataset.
//!
//! Synchronous and self-contained: [`train`] runs one trial to the end on the calling thread
//! and reports each epoch through a callback. Everything random comes from the portable
//! [`SplitMix64`] streams of the trial's seeds (split, subset, initial weights, shuffles), so the
//! same trial gives the same numbers on any worker, and on the CPU bit for bit.
//!
//! The training step does no host synchronisation: the loss sum and the correct count stay on
//! the device and are read once per epoch.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use sweep_common::rng::SplitMix64;
use sweep_common::{Activation, ConfusionMatrix, EpochMetrics, TrialResult, TrialSpec};
use tch::nn::OptimizerConfig;
use tch::{Device, Kind, Tensor, nn};

use crate::data_cache::DeviceData;

/// Images per forward pass when evaluating.
const EVAL_CHUNK: i64 = 8192;

/// Why a trial stopped without a result.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// The loss became NaN or infinite.
    #[error("non-finite training loss ({loss}) in epoch {epoch}")]
    NonFiniteLoss {
        /// The epoch.
        epoch: u32,
        /// The loss read.
        loss: f64,
    },
    /// The caller asked the trainer to stop (lease revoked or worker shutting down).
    #[error("stopped at epoch {epoch}")]
    Stopped {
        /// The epoch in progress.
        epoch: u32,
    },
    /// The trial does not fit the data.
    #[error("invalid trial for this dataset: {0}")]
    Invalid(String),
    /// libtorch failed.
    #[error("libtorch: {0}")]
    Torch(#[from] tch::TchError),
}

/// An MLP: `hidden_layers` blocks of `Linear + activation`, then a final `Linear` to the logits.
/// Parameters are named like PyTorch's `nn.Sequential` (`layers.0.weight`, ...).
pub struct Mlp {
    layers: Vec<(Tensor, Tensor)>,
    activation: Activation,
}

impl Mlp {
    /// Creates the model's variables in `vs`, initialised like PyTorch's `nn.Linear` (weights and
    /// biases uniform in +-1/sqrt(fan_in)) from the portable generator seeded with `seed`.
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
                        // 24 random bits -> [0, 1) exactly representable in f32.
                        let u = (rng.next_u64() >> 40) as f32 / (1u64 << 24) as f32;
                        bound * (2.0 * u - 1.0)
                    })
                    .collect()
            };
            let w =
                Tensor::f_from_slice(&uniform(fan_in * fan_out))?.f_reshape([fan_out, fan_in])?;
            let b = Tensor::f_from_slice(&uniform(fan_out))?;
            let layer = vs.sub("layers").sub(i.to_string());
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
                    Activation::Relu => h.f_relu()?,
                    Activation::Tanh => h.f_tanh()?,
                    Activation::Sigmoid => h.f_sigmoid()?,
                };
            }
        }
        Ok(h)
    }
}

/// Converts a batch of u8 images to float in [0, 1] (`ToTensor()` without the per-sample work).
fn to_float(x: &Tensor) -> Result<Tensor, TrainError> {
    Ok(x.f_to_kind(Kind::Float)?.f_mul_scalar(1.0 / 255.0)?)
}

/// Index tensor of `indices` on `device`.
fn index_tensor(indices: &[u32], device: Device) -> Result<Tensor, TrainError> {
    let v: Vec<i64> = indices.iter().map(|&i| i64::from(i)).collect();
    Ok(Tensor::f_from_slice(&v)?.f_to_device(device)?)
}

/// The confusion matrix of `model` on images `x` (u8) with labels `y`, in large chunks.
fn confusion(
    model: &Mlp,
    x: &Tensor,
    y: &Tensor,
    classes: i64,
) -> Result<ConfusionMatrix, TrainError> {
    tch::no_grad(|| {
        let n = x.size()[0];
        let mut counts = Tensor::f_zeros([classes * classes], (Kind::Int64, x.device()))?;
        let mut start = 0;
        while start < n {
            let len = EVAL_CHUNK.min(n - start);
            let logits = model.forward(&to_float(&x.f_narrow(0, start, len)?)?)?;
            let pred = logits.f_argmax(-1, false)?;
            let cell = y
                .f_narrow(0, start, len)?
                .f_mul_scalar(classes)?
                .f_add(&pred)?;
            counts = counts.f_add(&cell.f_bincount::<Tensor>(None, classes * classes)?)?;
            start += len;
        }
        let counts: Vec<i64> = Vec::<i64>::try_from(counts.f_to_device(Device::Cpu)?)?;
        Ok(ConfusionMatrix {
            classes: classes as usize,
            counts: counts
                .into_iter()
                .map(|c| c.max(0).unsigned_abs())
                .collect(),
        })
    })
}

/// Trains `spec` on `data` and evaluates it. Calls `on_epoch` after every epoch; returns early
/// with [`TrainError::Stopped`] once `stop` is set (checked before every batch).
pub fn train(
    spec: &TrialSpec,
    data: &DeviceData,
    on_epoch: &mut dyn FnMut(&EpochMetrics),
    stop: &AtomicBool,
) -> Result<TrialResult, TrainError> {
    let started = Instant::now();
    let device = data.device();
    if data.kind() != spec.dataset {
        return Err(TrainError::Invalid(format!(
            "trial wants {} but the data is {}",
            spec.dataset,
            data.kind()
        )));
    }
    let n = data.len();
    let (train_len, test_len) = spec.split.sizes(n);
    if train_len == 0 || test_len == 0 {
        return Err(TrainError::Invalid(format!(
            "split ratio {} of {n} images leaves an empty part",
            spec.split.train_ratio
        )));
    }
    // The split depends only on the sweep's seed: every trial and every worker agree on it.
    let split = SplitMix64::for_stream(spec.split.seed, "split", 0).permutation(n);
    let (train_part, test_part) = split.split_at(train_len);
    // The training subset depends on the trial's seed.
    let mut subset = train_part.to_vec();
    SplitMix64::for_stream(spec.params.seed, "subset", 0).shuffle(&mut subset);
    subset.truncate(spec.train_subset_len(n));
    let subset_len = subset.len() as i64;

    let train_idx = index_tensor(&subset, device)?;
    let test_idx = index_tensor(test_part, device)?;
    let train_x = data.images().f_index_select(0, &train_idx)?;
    let train_y = data.labels().f_index_select(0, &train_idx)?;
    let test_x = data.images().f_index_select(0, &test_idx)?;
    let test_y = data.labels().f_index_select(0, &test_idx)?;

    let vs = nn::VarStore::new(device);
    let model = Mlp::new(&vs.root(), spec)?;
    let mut opt = nn::Adam::default().build(&vs, spec.params.learning_rate)?;
    let classes = spec.dataset.num_classes() as i64;
    let batch = i64::from(spec.params.batch_size);
    let batches = (subset_len + batch - 1) / batch;

    let mut epochs = Vec::with_capacity(spec.params.epochs as usize);
    let mut test_confusion = ConfusionMatrix::zeros(classes as usize);
    let mut order: Vec<u32> = (0..subset_len as u32).collect();
    for epoch in 1..=spec.params.epochs {
        let epoch_started = Instant::now();
        SplitMix64::for_stream(spec.params.seed, "shuffle", u64::from(epoch)).shuffle(&mut order);
        let perm = index_tensor(&order, device)?;
        let mut loss_sum = Tensor::f_zeros([], (Kind::Float, device))?;
        let mut correct = Tensor::f_zeros([], (Kind::Int64, device))?;
        for b in 0..batches {
            if stop.load(Ordering::Relaxed) {
                return Err(TrainError::Stopped { epoch });
            }
            let start = b * batch;
            let idx = perm.f_narrow(0, start, batch.min(subset_len - start))?;
            let x = to_float(&train_x.f_index_select(0, &idx)?)?;
            let y = train_y.f_index_select(0, &idx)?;
            let logits = model.forward(&x)?;
            let loss =
                logits.f_cross_entropy_loss::<Tensor>(&y, None, tch::Reduction::Mean, -100, 0.0)?;
            opt.zero_grad();
            loss.f_backward()?;
            opt.step();
            loss_sum = loss_sum.f_add(&loss.detach())?;
            correct = correct.f_add(
                &logits
                    .f_argmax(-1, false)?
                    .f_eq_tensor(&y)?
                    .f_sum(Kind::Int64)?,
            )?;
        }
        // One host read per epoch.
        let mean_loss = loss_sum.f_double_value(&[])? / batches as f64;
        if !mean_loss.is_finite() {
            return Err(TrainError::NonFiniteLoss {
                epoch,
                loss: mean_loss,
            });
        }
        let train_accuracy = 100.0 * correct.f_int64_value(&[])? as f64 / subset_len as f64;
        test_confusion = confusion(&model, &test_x, &test_y, classes)?;
        let metrics = EpochMetrics {
            epoch,
            train_loss: mean_loss,
            train_accuracy,
            test_accuracy: test_confusion.accuracy(),
            seconds: epoch_started.elapsed().as_secs_f64(),
        };
        on_epoch(&metrics);
        epochs.push(metrics);
    }
    let train_confusion = confusion(&model, &train_x, &train_y, classes)?;
    Ok(TrialResult {
        epochs,
        train_accuracy: train_confusion.accuracy(),
        test_accuracy: test_confusion.accuracy(),
        train_confusion,
        test_confusion,
        train_seconds: started.elapsed().as_secs_f64(),
        dataset_images: n as u64,
    })
}

#[cfg(test)]
mod tests;
