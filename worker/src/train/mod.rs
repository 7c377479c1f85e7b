//! The trainer: lab 1's MLP, trained with libtorch on a device-resident dataset.
//!
//! Synchronous: a [`Trainer`] runs one trial on the calling thread, one epoch at a time, and can
//! save and restore checkpoints between epochs. Everything random comes from the portable
//! [`SplitMix64`] streams of the trial's seeds (split, subset, initial weights, per-epoch
//! shuffles), so the same trial gives the same numbers on any worker, and on the CPU bit for bit,
//! whether or not it was interrupted and resumed.
//!
//! The training step ([`backprop`]) computes the gradients itself into preallocated buffers
//! (no autograd graph), and [`Adam`] updates the parameters in one fused pass on the CPU, on
//! libtorch's own thread pool ([`pool`]). It does no host synchronisation: each sample's loss
//! and prediction stay on the device and are read once per epoch. Batches are gathered straight
//! from the shared dataset tensor with one index tensor per epoch; nothing is copied per trial.

mod adam;
mod augment;
mod backprop;
mod checkpoint;
mod model;
mod net;
mod normalize;
mod optim;
mod pool;
mod schedule;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use sweep_common::grid::Normalize;
use sweep_common::model::{ModelSpec, Shape};
use sweep_common::rng::SplitMix64;
use sweep_common::{ConfusionMatrix, EpochMetrics, FinalMetrics, TrialResult, TrialSpec};
use tch::{Device, Kind, Reduction, Tensor, nn};

use crate::data_cache::DeviceData;
pub use adam::Adam;
use augment::Augment;
use backprop::Workspace;
pub use model::Mlp;
pub use net::Net;
use normalize::Norm;
use optim::Optim;

/// Images per forward pass when evaluating (at most).
const EVAL_CHUNK: i64 = 8192;

/// Most bytes of one layer's output per forward pass when a model of layers is evaluated on
/// the CPU: below glibc's 64 MiB per-thread arena heaps (CPU workers keep every thread on the
/// main arena, `device::single_malloc_arena`, but a library user may not) and the mmap
/// threshold `tune_malloc` sets, so the activations' memory is reused from pass to pass. 8192 CIFAR images through a
/// conv(16) layer would be 512 MiB, mapped afresh and page-faulted in on every pass: most of the
/// CNN path's kernel time (BENCHMARKS.md, "CNNs on the CPU against PyTorch").
const EVAL_BYTES_CPU: u64 = 32 << 20;

/// Images per forward pass when evaluating `spec` on `device`: [`EVAL_CHUNK`], or for a model of
/// layers on the CPU as many as keep its largest activation within [`EVAL_BYTES_CPU`].
fn eval_chunk(spec: &TrialSpec, device: Device) -> i64 {
    let model = match spec.params.model.spec() {
        Ok(m @ ModelSpec::Layers(_)) if device == Device::Cpu => m,
        _ => return EVAL_CHUNK,
    };
    let Ok(inferred) = model.infer(spec.dataset) else {
        return EVAL_CHUNK;
    };
    let widest = std::iter::once(inferred.input)
        .chain(inferred.shapes)
        .map(|s| match s {
            Shape::Image { c, h, w } => c * h * w,
            Shape::Flat(n) => n,
        })
        .max()
        .unwrap_or(1)
        .max(1);
    let fits = EVAL_BYTES_CPU / (4 * widest);
    i64::try_from(fits)
        .unwrap_or(EVAL_CHUNK)
        .clamp(1, EVAL_CHUNK)
}

/// The checkpoint metadata key of the learning-rate schedule's position.
const LR_POSITION: &str = "lr_position";

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
    /// The caller asked the trainer to stop at the end of an epoch: it did, after handing a
    /// checkpoint of that epoch to its progress.
    #[error("drained after epoch {epoch}")]
    Drained {
        /// The last epoch done (and checkpointed).
        epoch: u32,
    },
    /// The trial does not fit the data.
    #[error("invalid trial for this dataset: {0}")]
    Invalid(String),
    /// A checkpoint could not be written.
    #[error("checkpoint: {0}")]
    Checkpoint(String),
    /// The checkpoint to resume from cannot be used: it is not a checkpoint, not this trial's,
    /// or does not fit its model.
    #[error("the checkpoint to resume from cannot be used: {0}")]
    Resume(String),
    /// libtorch failed.
    #[error("libtorch: {0}")]
    Torch(#[from] tch::TchError),
    /// A program trial's program failed, or could not be run (`crate::program`).
    #[error("{message}")]
    Program {
        /// Whose fault, as `crate::program` read the exit status.
        kind: sweep_common::FailureKind,
        /// What happened, with the last lines of its stderr.
        message: String,
    },
}

impl TrainError {
    /// What a failure to load the checkpoint to resume from is: its content's fault
    /// ([`TrainError::Resume`]), unless libtorch itself failed.
    pub fn into_resume(self) -> TrainError {
        match self {
            TrainError::Checkpoint(m) => TrainError::Resume(m),
            other => other,
        }
    }
}

/// What images stored as `images` are multiplied by to become a model's input: u8 pixels by
/// 1/255 (`ToTensor()`'s [0, 1]); float32 pixels (a user's `.npz`) are taken as they are.
pub(crate) fn pixel_scale(images: &Tensor) -> Option<f64> {
    (images.kind() == Kind::Uint8).then_some(1.0 / 255.0)
}

/// Converts a batch of images as stored to the model's float input ([`pixel_scale`]; for u8,
/// `ToTensor()` without the per-sample work), then normalises it per channel if the trial asks
/// for it. Always a new tensor: `x` is left as it is.
fn to_float(x: &Tensor, norm: Option<&Norm>) -> Result<Tensor, TrainError> {
    let scale = pixel_scale(x);
    let mut x = x.f_to_dtype(Kind::Float, false, true)?;
    if let Some(scale) = scale {
        let _ = x.f_mul_scalar_(scale)?;
    }
    if let Some(norm) = norm {
        norm.apply_(&mut x)?;
    }
    Ok(x)
}

/// Index tensor of `indices` on `device`.
fn index_tensor(indices: impl Iterator<Item = u32>, device: Device) -> Result<Tensor, TrainError> {
    let v: Vec<i64> = indices.map(i64::from).collect();
    Ok(Tensor::f_from_slice(&v)?.f_to_device(device)?)
}

/// What one pass of training measured.
#[derive(Debug, Clone, Copy)]
pub struct Fit {
    /// The epoch trained.
    pub epoch: u32,
    /// Mean of the per-batch mean losses.
    pub loss: f64,
    /// Accuracy (%) on the batches as they were trained.
    pub accuracy: f64,
}

/// How a trial's model is trained.
enum Engine {
    /// Lab 1's MLP with the hand-written step (no autograd).
    Mlp {
        _vs: nn::VarStore,
        model: Mlp,
        /// The training step's buffers and gradients (boxed: the variants' sizes differ).
        workspace: Box<Workspace>,
    },
    /// A model of layers, with autograd.
    Net {
        net: Net,
        /// The epoch's sum of batch mean losses, on the device.
        loss: Tensor,
        /// The epoch's correct predictions, on the device.
        correct: Tensor,
    },
}

impl Engine {
    /// The engine of `spec`'s model on `device`, freshly initialised, for a training subset of
    /// `subset_len` images.
    fn new(spec: &TrialSpec, device: Device, subset_len: usize) -> Result<Self, TrainError> {
        Ok(
            match spec.params.model.spec().map_err(TrainError::Invalid)? {
                ModelSpec::Mlp => {
                    let mut vs = nn::VarStore::new(device);
                    let model = Mlp::new(&vs.root(), spec)?;
                    // The step computes the gradients itself (backprop.rs): no autograd graph.
                    vs.freeze();
                    let workspace = Box::new(Workspace::new(
                        &model,
                        i64::from(spec.params.batch_size),
                        subset_len as i64,
                        spec.params.label_smoothing,
                    )?);
                    Engine::Mlp {
                        _vs: vs,
                        model,
                        workspace,
                    }
                }
                layers => Engine::Net {
                    net: Net::new(&layers, spec.dataset, spec.params.seed, device)?,
                    loss: Tensor::f_zeros([], (Kind::Float, device))?,
                    correct: Tensor::f_zeros([], (Kind::Int64, device))?,
                },
            },
        )
    }

    /// Logits of a batch of flattened images in [0, 1], for evaluation.
    fn eval(&self, x: &Tensor) -> Result<Tensor, TrainError> {
        match self {
            Engine::Mlp { model, .. } => model.forward(x),
            Engine::Net { net, .. } => net.forward(x, None),
        }
    }

    /// The trainable tensors with their names, in Adam's order.
    fn named_parameters(&self) -> Vec<(String, &Tensor)> {
        match self {
            Engine::Mlp { model, .. } => model.named_parameters(),
            Engine::Net { net, .. } => net.named_parameters(),
        }
    }

    /// Everything else a model holds that its weights file and checkpoints save.
    fn named_buffers(&self) -> Vec<(String, &Tensor)> {
        match self {
            Engine::Mlp { .. } => Vec::new(),
            Engine::Net { net, .. } => net.named_buffers(),
        }
    }
}

/// One trial in progress.
pub struct Trainer<'a> {
    spec: &'a TrialSpec,
    data: &'a DeviceData,
    engine: Engine,
    params: Vec<Tensor>,
    adam: Adam,
    /// The optimiser (Adam's state is `adam`'s).
    optim: Optim,
    /// Dataset indices of the training subset.
    subset: Vec<u32>,
    /// Batches per epoch (the last may be shorter).
    batches: u64,
    /// The training images' augmentation, if any.
    augment: Option<Augment>,
    /// The input normalisation, if any (`normalize = "dataset"`).
    norm: Option<Norm>,
    /// Images per forward pass when evaluating ([`eval_chunk`]).
    eval_chunk: i64,
    /// The same, on the device (for evaluation).
    subset_idx: Tensor,
    /// Dataset indices of the test split, on the device.
    test_idx: Tensor,
    epochs: Vec<EpochMetrics>,
    started: Instant,
}

impl<'a> Trainer<'a> {
    /// A freshly initialised trial.
    pub fn new(spec: &'a TrialSpec, data: &'a DeviceData) -> Result<Self, TrainError> {
        if data.kind() != spec.dataset {
            return Err(TrainError::Invalid(format!(
                "trial wants {} but the data is {}",
                spec.dataset,
                data.kind()
            )));
        }
        let device = data.device();
        let n = data.len();
        let (train_len, test_len) = spec.parts(n);
        if train_len == 0 || test_len == 0 {
            return Err(TrainError::Invalid(format!(
                "split ratio {} of {n} images leaves an empty part",
                spec.split.train_ratio
            )));
        }
        // The split depends only on the sweep's seed: every trial and every worker agree on it.
        // An own file's x_test (the last images) is the test part as it is.
        let split = match spec.dataset.held_out_len() {
            0 => SplitMix64::for_stream(spec.split.seed, "split", 0).permutation(n),
            _ => (0..n as u32).collect(),
        };
        let (train_part, test_part) = split.split_at(train_len);
        // The training subset depends on the trial's seed.
        let mut subset = train_part.to_vec();
        SplitMix64::for_stream(spec.params.seed, "subset", 0).shuffle(&mut subset);
        subset.truncate(spec.train_subset_len(n));
        let batches = (subset.len() as u64).div_ceil(u64::from(spec.params.batch_size));

        let engine = Engine::new(spec, device, subset.len())?;
        let params: Vec<Tensor> = engine
            .named_parameters()
            .into_iter()
            .map(|(_, t)| t.shallow_clone())
            .collect();
        let adam = Adam::new(
            &params.iter().collect::<Vec<_>>(),
            spec.params.learning_rate,
        )?;
        let optim = Optim::new(&spec.params, &params, batches)?;
        let train_idx = index_tensor(train_part.iter().copied(), device)?;
        let norm = match spec.params.normalize {
            Normalize::Off => None,
            Normalize::Dataset => {
                let channels = spec.dataset.image_shape()[0] as i64;
                Some(Norm::of(data.images(), &train_idx, channels)?)
            }
        };
        Ok(Self {
            eval_chunk: eval_chunk(spec, device),
            norm,
            spec,
            data,
            optim,
            subset_idx: index_tensor(subset.iter().copied(), device)?,
            test_idx: index_tensor(test_part.iter().copied(), device)?,
            subset,
            batches,
            augment: Augment::new(&spec.params, spec.dataset.image_shape()),
            engine,
            params,
            adam,
            epochs: Vec::new(),
            started: Instant::now(),
        })
    }

    /// The schedule's position at the start of the epoch after `done` epochs (the first
    /// batch's, when it counts batches).
    fn schedule_position(&self, done: u32) -> u64 {
        match self.spec.params.lr_schedule_unit {
            sweep_common::grid::LrScheduleUnit::Batch => u64::from(done) * self.batches,
            sweep_common::grid::LrScheduleUnit::Epoch => u64::from(done),
        }
    }

    /// The schedule's position of the next batch.
    fn lr_position(&self) -> u64 {
        self.schedule_position(self.epochs_done())
    }

    /// Epochs completed.
    pub fn epochs_done(&self) -> u32 {
        self.epochs.len() as u32
    }

    /// The metrics of the completed epochs.
    pub fn epochs(&self) -> &[EpochMetrics] {
        &self.epochs
    }

    /// Trains the next epoch and evaluates on the test split. Checks `stop` before every batch.
    pub fn run_epoch(&mut self, stop: &AtomicBool) -> Result<EpochMetrics, TrainError> {
        let started = Instant::now();
        let fit = self.fit_epoch(stop)?;
        let test = self.confusion(&self.test_idx)?;
        let metrics = EpochMetrics {
            epoch: fit.epoch,
            train_loss: fit.loss,
            train_accuracy: fit.accuracy,
            test_accuracy: test.accuracy(),
            seconds: started.elapsed().as_secs_f64(),
            scalars: Default::default(),
        };
        self.epochs.push(metrics.clone());
        Ok(metrics)
    }

    /// One pass of training over the subset in this epoch's order, without evaluation and
    /// without recording the epoch (`run_epoch` does both; benchmarks time this alone).
    pub fn fit_epoch(&mut self, stop: &AtomicBool) -> Result<Fit, TrainError> {
        let epoch = self.epochs_done() + 1;
        let device = self.data.device();
        let len = self.subset.len() as i64;
        let batch = i64::from(self.spec.params.batch_size);
        let batches = (len + batch - 1) / batch;
        // This epoch's order, drawn from (seed, epoch) alone, as dataset indices.
        let mut order: Vec<u32> = (0..self.subset.len() as u32).collect();
        SplitMix64::for_stream(self.spec.params.seed, "shuffle", u64::from(epoch))
            .shuffle(&mut order);
        let perm = index_tensor(order.iter().map(|&i| self.subset[i as usize]), device)?;
        if let Engine::Net { loss, correct, .. } = &mut self.engine {
            let _ = loss.f_zero_()?;
            let _ = correct.f_zero_()?;
        }
        for b in 0..batches {
            if stop.load(Ordering::Relaxed) {
                return Err(TrainError::Stopped { epoch });
            }
            let start = b * batch;
            let idx = perm.f_narrow(0, start, batch.min(len - start))?;
            self.optim
                .schedule(&mut self.adam, epoch, b as u64, self.batches);
            let augment = self.augment.map(|a| (a, a.batch_seed(epoch, b as u64)));
            let norm = self.norm.as_ref();
            match &mut self.engine {
                Engine::Mlp {
                    model, workspace, ..
                } => {
                    let data = (self.data.images(), self.data.labels());
                    workspace.step(model, data, &idx, start, (augment, norm))?;
                    self.optim
                        .step(&mut self.adam, &mut self.params, &workspace.grads)?;
                }
                Engine::Net { net, loss, correct } => {
                    // Dropout's masks, drawn from (seed, epoch, batch) alone.
                    let stream = (u64::from(epoch) << 32) | b as u64;
                    let seed =
                        SplitMix64::for_stream(self.spec.params.seed, "dropout", stream).next_u64();
                    let smoothing = self.spec.params.label_smoothing;
                    let (data, how) = (self.data, (seed, smoothing, augment, norm));
                    let grads = net_step(net, data, &idx, how, loss, correct)?;
                    self.optim.step(&mut self.adam, &mut self.params, &grads)?;
                    for g in grads {
                        let mut g = g;
                        let _ = g.f_zero_()?;
                    }
                }
            }
        }
        // The epoch's losses and predictions, read from the device once, here.
        let (loss, correct) = match &self.engine {
            Engine::Mlp { workspace, .. } => workspace.epoch_measures()?,
            Engine::Net { loss, correct, .. } => (
                loss.f_double_value(&[])? / batches as f64,
                correct.f_int64_value(&[])?,
            ),
        };
        if !loss.is_finite() {
            return Err(TrainError::NonFiniteLoss { epoch, loss });
        }
        Ok(Fit {
            epoch,
            loss,
            accuracy: 100.0 * correct as f64 / len as f64,
        })
    }

    /// The confusion matrix of the model as it is now on the test split.
    pub fn test_confusion(&self) -> Result<ConfusionMatrix, TrainError> {
        self.confusion(&self.test_idx)
    }

    /// The confusion matrix of the model on the dataset rows `idx`, in chunks of `eval_chunk`.
    fn confusion(&self, idx: &Tensor) -> Result<ConfusionMatrix, TrainError> {
        let classes = self.spec.dataset.num_classes() as i64;
        tch::no_grad(|| {
            let n = idx.size()[0];
            let mut counts = Tensor::f_zeros([classes * classes], (Kind::Int64, idx.device()))?;
            let mut start = 0;
            while start < n {
                let len = self.eval_chunk.min(n - start);
                let rows = idx.f_narrow(0, start, len)?;
                let x = to_float(
                    &self.data.images().f_index_select(0, &rows)?,
                    self.norm.as_ref(),
                )?;
                let pred = self.engine.eval(&x)?.f_argmax(-1, false)?;
                let mut cell = self.data.labels().f_index_select(0, &rows)?;
                let _ = cell.f_mul_scalar_(classes)?;
                let _ = cell.f_add_(&pred)?;
                let _ = counts.f_add_(&cell.f_bincount::<Tensor>(None, classes * classes)?)?;
                start += len;
            }
            let counts = Vec::<i64>::try_from(counts.f_to_device(Device::Cpu)?)?;
            Ok(ConfusionMatrix {
                classes: classes as usize,
                counts: counts
                    .into_iter()
                    .map(|c| c.max(0).unsigned_abs())
                    .collect(),
            })
        })
    }

    /// A checkpoint of the trial after the completed epochs (safetensors bytes).
    pub fn checkpoint(&self) -> Result<Vec<u8>, TrainError> {
        let named = self.engine.named_parameters();
        let mut tensors: Vec<(String, &Tensor)> =
            named.iter().map(|(n, t)| (n.clone(), *t)).collect();
        tensors.extend(self.engine.named_buffers());
        for (i, (name, _)) in named.iter().enumerate() {
            tensors.push((format!("adam.exp_avg.{name}"), &self.adam.exp_avg[i]));
            tensors.push((format!("adam.exp_avg_sq.{name}"), &self.adam.exp_avg_sq[i]));
            if self.optim.is_sgd() {
                tensors.push((
                    format!("sgd.momentum_buffer.{name}"),
                    &self.optim.velocity[i],
                ));
            }
        }
        let mut meta = checkpoint::metadata(self.spec, &self.epochs, self.adam.step)?;
        meta.insert(LR_POSITION.to_owned(), self.lr_position().to_string());
        checkpoint::encode(&tensors, meta)
    }

    /// Continues from a checkpoint made by [`Trainer::checkpoint`] for the same trial (or the
    /// same trial with fewer epochs, `checkpoint::read_metadata`).
    pub fn restore(&mut self, bytes: &[u8]) -> Result<(), TrainError> {
        let mut decoded = checkpoint::decode(bytes)?;
        let (epochs, step) = checkpoint::read_metadata(&decoded.metadata, self.spec)?;
        // The schedule's position follows from the epochs done; one saved by a run that
        // counted batches differently (another dataset's size) cannot continue here.
        if let Some(saved) = decoded.metadata.get(LR_POSITION) {
            let want = self.schedule_position(epochs.len() as u32);
            if saved.parse::<u64>().ok() != Some(want) {
                return Err(TrainError::Checkpoint(format!(
                    "checkpoint at learning-rate schedule position {saved}, this trial resumes \
                     at {want}"
                )));
            }
        }
        if epochs.len() > self.spec.params.epochs as usize {
            return Err(TrainError::Checkpoint(format!(
                "checkpoint after epoch {} of a {}-epoch trial",
                epochs.len(),
                self.spec.params.epochs
            )));
        }
        let mut take = |name: &str, into: &mut Tensor| -> Result<(), TrainError> {
            let src = decoded
                .tensors
                .remove(name)
                .ok_or_else(|| TrainError::Checkpoint(format!("checkpoint lacks tensor {name}")))?;
            if src.size() != into.size() {
                return Err(TrainError::Checkpoint(format!(
                    "tensor {name} has shape {:?}, the model wants {:?}",
                    src.size(),
                    into.size()
                )));
            }
            tch::no_grad(|| into.f_copy_(&src))?;
            Ok(())
        };
        let names: Vec<String> = self
            .engine
            .named_parameters()
            .into_iter()
            .map(|(n, _)| n)
            .collect();
        for (i, name) in names.iter().enumerate() {
            take(name, &mut self.params[i])?;
            take(&format!("adam.exp_avg.{name}"), &mut self.adam.exp_avg[i])?;
            take(
                &format!("adam.exp_avg_sq.{name}"),
                &mut self.adam.exp_avg_sq[i],
            )?;
            if self.optim.is_sgd() {
                take(
                    &format!("sgd.momentum_buffer.{name}"),
                    &mut self.optim.velocity[i],
                )?;
            }
        }
        if let Engine::Net { net, .. } = &mut self.engine {
            for (name, buffer) in net.buffers_mut() {
                take(name, buffer)?;
            }
        }
        self.adam.step = step;
        self.epochs = epochs;
        Ok(())
    }

    /// The model's weights as a safetensors file (PyTorch state-dict names).
    pub fn weights(&self) -> Result<Vec<u8>, TrainError> {
        let mut named = self.engine.named_parameters();
        named.extend(self.engine.named_buffers());
        let meta = HashMap::from([
            ("trial".to_owned(), self.spec.id.to_string()),
            ("name".to_owned(), self.spec.name.clone()),
            (
                "activation".to_owned(),
                self.spec.params.activation.name().to_owned(),
            ),
            ("model".to_owned(), self.spec.params.model.to_string()),
        ]);
        checkpoint::encode(&named, meta)
    }

    /// Evaluates the trained model on its training subset and the test split.
    pub fn finish(&self) -> Result<TrialResult, TrainError> {
        let train_confusion = self.confusion(&self.subset_idx)?;
        let test_confusion = self.confusion(&self.test_idx)?;
        Ok(TrialResult {
            epochs: self.epochs.clone(),
            last: FinalMetrics {
                train_accuracy: train_confusion.accuracy(),
                test_accuracy: test_confusion.accuracy(),
                train_confusion,
                test_confusion,
                train_seconds: self.started.elapsed().as_secs_f64(),
                dataset_images: self.data.len() as u64,
            },
        })
    }
}

/// One autograd step of a model of layers on the dataset rows `idx`, with dropout's seed, the
/// loss's label smoothing and the batch's augmentation: adds the batch's mean loss and its correct predictions to the
/// epoch's sums on the device, and gives the gradients (one per parameter, in the model's
/// order; the caller zeroes them after the update).
fn net_step(
    net: &Net,
    data: &DeviceData,
    idx: &Tensor,
    (dropout_seed, smoothing, augment, norm): (u64, f64, Option<(Augment, u64)>, Option<&Norm>),
    loss_sum: &mut Tensor,
    correct: &mut Tensor,
) -> Result<Vec<Tensor>, TrainError> {
    let mut raw = data.images().f_index_select(0, idx)?;
    if let Some((a, seed)) = augment {
        raw = a.apply(&raw, seed)?;
    }
    let x = to_float(&raw, norm)?;
    let y = data.labels().f_index_select(0, idx)?;
    let logits = net.forward(&x, Some(dropout_seed))?;
    let loss = logits.f_cross_entropy_loss::<Tensor>(&y, None, Reduction::Mean, -100, smoothing)?;
    loss.f_backward()?;
    tch::no_grad(|| -> Result<(), TrainError> {
        let _ = loss_sum.f_add_(&loss)?;
        let hits = logits
            .f_argmax(-1, false)?
            .f_eq_tensor(&y)?
            .f_sum(Kind::Int64)?;
        let _ = correct.f_add_(&hits)?;
        Ok(())
    })?;
    Ok(net
        .named_parameters()
        .into_iter()
        .map(|(_, p)| p.grad())
        .collect())
}

/// What the trainer tells its caller while a trial runs.
pub trait Progress {
    /// An epoch ended.
    fn epoch(&mut self, metrics: &EpochMetrics);
    /// A checkpoint after `epoch` epochs (every `checkpoint_every` epochs of the spec).
    fn checkpoint(&mut self, epoch: u32, bytes: Vec<u8>);
}

/// What a finished trial leaves: its result and its final weights (safetensors).
pub struct Trained {
    /// The result.
    pub result: TrialResult,
    /// The final weights.
    pub weights: Vec<u8>,
}

/// How the caller steers a running trial from another thread.
#[derive(Debug, Default)]
pub struct Control {
    /// Stop as soon as possible (the lease is lost): within a batch, without a checkpoint.
    pub stop: AtomicBool,
    /// Stop at the end of the current epoch, with a checkpoint (the worker is draining).
    pub drain: AtomicBool,
}

/// Trains `spec` on `data` to the end, from `resume` (a checkpoint) when given. Reports each
/// epoch and checkpoint to `progress`; returns early with [`TrainError::Stopped`] once
/// `control.stop` is set, or with [`TrainError::Drained`] after the epoch during which
/// `control.drain` was set (and its checkpoint).
pub fn train(
    spec: &TrialSpec,
    data: &DeviceData,
    progress: &mut dyn Progress,
    control: &Control,
    resume: Option<&[u8]>,
) -> Result<Trained, TrainError> {
    // Before any tensor of this trial exists, so that all of them are made on its stream.
    if crate::device::use_own_cuda_stream(data.device()) {
        tracing::debug!(trial = %spec.name, "trial on its own CUDA stream");
    }
    let mut trainer = Trainer::new(spec, data)?;
    if let Some(bytes) = resume {
        trainer.restore(bytes).map_err(TrainError::into_resume)?;
    }
    while trainer.epochs_done() < spec.params.epochs {
        let metrics = trainer.run_epoch(&control.stop)?;
        progress.epoch(&metrics);
        let every = spec.checkpoint_every;
        let last = metrics.epoch == spec.params.epochs;
        let drain = control.drain.load(Ordering::Relaxed);
        if !last && (drain || (every > 0 && metrics.epoch % every == 0)) {
            progress.checkpoint(metrics.epoch, trainer.checkpoint()?);
        }
        if drain && !last {
            return Err(TrainError::Drained {
                epoch: metrics.epoch,
            });
        }
    }
    Ok(Trained {
        result: trainer.finish()?,
        weights: trainer.weights()?,
    })
}

#[cfg(test)]
mod net_tests;
#[cfg(test)]
mod numerics_tests;
#[cfg(test)]
mod tests;
