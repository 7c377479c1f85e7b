//! A model of layers (`common::model::ModelSpec::Layers`), trained with libtorch's autograd.
//!
//! Parameters and buffers are named as PyTorch's `nn.Sequential` of the same layers names them
//! (`0.weight`, `1.running_mean`, a residual block's `3.conv1.weight`, `3.bn1.bias`,
//! `3.shortcut.0.weight`, ...), so the saved weights load into that module. Initial values are
//! PyTorch's (convolutions and linear layers uniform in +-1/sqrt(fan_in), batch norm 1 and 0)
//! drawn from the portable generator of the trial's seed. Dropout's masks come from a hash of
//! (seed, position) computed on the device: the same on any device, no global generator, and
//! a function of the trial's seed, the epoch and the batch, so a resumed trial draws the same.
//! On the CPU, a model with convolutions runs its activations channels-last (the parameters
//! stay in PyTorch's layout): libtorch's NCHW max pooling alone was 40 % of a VGG-style
//! Fashion-MNIST epoch, its channels-last kernels are vectorised over the channels
//! (BENCHMARKS.md, "CNNs on the CPU against PyTorch").

use sweep_common::DatasetKind;
use sweep_common::model::{Layer, ModelSpec};
use sweep_common::rng::SplitMix64;
use tch::{Device, Kind, Tensor};

use super::TrainError;

/// Batch norm's momentum and epsilon (PyTorch's defaults).
const BN_MOMENTUM: f64 = 0.1;
const BN_EPS: f64 = 1e-5;

/// A batch norm's tensors: indices into the parameters and the buffers.
#[derive(Debug, Clone, Copy)]
struct Norm {
    weight: usize,
    bias: usize,
    mean: usize,
    var: usize,
    count: usize,
}

/// A convolution's tensors and geometry.
#[derive(Debug, Clone, Copy)]
struct Conv {
    weight: usize,
    bias: Option<usize>,
    stride: i64,
    padding: i64,
}

/// One layer, built.
#[derive(Debug, Clone, Copy)]
enum Block {
    Conv(Conv),
    Norm(Norm),
    Relu,
    Tanh,
    Sigmoid,
    MaxPool {
        kernel: i64,
        stride: i64,
    },
    AvgPool {
        kernel: i64,
        stride: i64,
    },
    GlobalAvgPool,
    GlobalMaxPool,
    Dropout {
        p: f64,
    },
    Residual {
        conv1: Conv,
        bn1: Norm,
        conv2: Conv,
        bn2: Norm,
        shortcut: Option<(Conv, Norm)>,
    },
    Flatten,
    Linear {
        weight: usize,
        bias: usize,
    },
}

/// The model.
pub struct Net {
    blocks: Vec<Block>,
    /// Trainable tensors with their state-dict names, in a fixed order.
    params: Vec<(String, Tensor)>,
    /// Batch norm's running statistics and counts, with their state-dict names.
    buffers: Vec<(String, Tensor)>,
    /// Channels, height, width of an input image.
    input: [i64; 3],
    /// Whether images go through the layers stored channels-last ([`channels_last`]): on the
    /// CPU, for a model with a convolution.
    channels_last: bool,
}

/// Builds the tensors of a model, naming and initialising each.
struct Builder {
    params: Vec<(String, Tensor)>,
    buffers: Vec<(String, Tensor)>,
    seed: u64,
    device: Device,
}

impl Builder {
    /// The block of `layer`, named from `p` (`3.`), after `features` channels or features.
    fn block(&mut self, p: &str, layer: &Layer, features: i64) -> Result<Block, TrainError> {
        Ok(match *layer {
            Layer::Conv {
                out,
                kernel,
                stride,
                padding,
            } => Block::Conv(self.conv(
                p,
                (features, out as i64, kernel as i64),
                (stride as i64, padding as i64),
                true,
            )?),
            Layer::BatchNorm => Block::Norm(self.norm(p, features)?),
            Layer::Relu => Block::Relu,
            Layer::Tanh => Block::Tanh,
            Layer::Sigmoid => Block::Sigmoid,
            Layer::MaxPool { kernel, stride } => Block::MaxPool {
                kernel: kernel as i64,
                stride: stride as i64,
            },
            Layer::AvgPool { kernel, stride } => Block::AvgPool {
                kernel: kernel as i64,
                stride: stride as i64,
            },
            Layer::GlobalAvgPool => Block::GlobalAvgPool,
            Layer::GlobalMaxPool => Block::GlobalMaxPool,
            Layer::Dropout { p } => Block::Dropout { p },
            Layer::Flatten => Block::Flatten,
            Layer::Linear { out } => {
                let bound = 1.0 / (features as f32).sqrt();
                let weight = self.uniform(format!("{p}weight"), &[out as i64, features], bound)?;
                let bias = self.uniform(format!("{p}bias"), &[out as i64], bound)?;
                Block::Linear { weight, bias }
            }
            Layer::Residual { out, stride } => {
                self.residual(p, features, (out as i64, stride as i64))?
            }
        })
    }

    /// A residual block from `features` to `out` channels at `stride`: two 3x3 convolutions
    /// with batch norm, and a 1x1 convolution with batch norm on the shortcut when the shape
    /// changes (torchvision's `BasicBlock` names).
    fn residual(
        &mut self,
        p: &str,
        features: i64,
        (out, stride): (i64, i64),
    ) -> Result<Block, TrainError> {
        let conv1 = self.conv(
            &format!("{p}conv1."),
            (features, out, 3),
            (stride, 1),
            false,
        )?;
        let bn1 = self.norm(&format!("{p}bn1."), out)?;
        let conv2 = self.conv(&format!("{p}conv2."), (out, out, 3), (1, 1), false)?;
        let bn2 = self.norm(&format!("{p}bn2."), out)?;
        let shortcut = if stride != 1 || features != out {
            let conv = self.conv(
                &format!("{p}shortcut.0."),
                (features, out, 1),
                (stride, 0),
                false,
            )?;
            Some((conv, self.norm(&format!("{p}shortcut.1."), out)?))
        } else {
            None
        };
        Ok(Block::Residual {
            conv1,
            bn1,
            conv2,
            bn2,
            shortcut,
        })
    }

    /// A trainable tensor uniform in +-`bound`, drawn from its own stream of the seed.
    fn uniform(&mut self, name: String, shape: &[i64], bound: f32) -> Result<usize, TrainError> {
        let n: i64 = shape.iter().product();
        let mut rng = SplitMix64::for_stream(self.seed, "net-init", self.params.len() as u64);
        let values: Vec<f32> = (0..n)
            .map(|_| {
                // 24 random bits: a value in [0, 1) that f32 represents exactly.
                let u = (rng.next_u64() >> 40) as f32 / (1u64 << 24) as f32;
                bound * (2.0 * u - 1.0)
            })
            .collect();
        let t = Tensor::f_from_slice(&values)?
            .f_reshape(shape)?
            .f_to_device(self.device)?;
        self.push_param(name, t)
    }

    fn push_param(&mut self, name: String, t: Tensor) -> Result<usize, TrainError> {
        self.params.push((name, t.set_requires_grad(true)));
        Ok(self.params.len() - 1)
    }

    fn conv(
        &mut self,
        prefix: &str,
        (cin, cout, kernel): (i64, i64, i64),
        (stride, padding): (i64, i64),
        bias: bool,
    ) -> Result<Conv, TrainError> {
        let bound = 1.0 / ((cin * kernel * kernel) as f32).sqrt();
        let weight = self.uniform(
            format!("{prefix}weight"),
            &[cout, cin, kernel, kernel],
            bound,
        )?;
        let bias = if bias {
            Some(self.uniform(format!("{prefix}bias"), &[cout], bound)?)
        } else {
            None
        };
        Ok(Conv {
            weight,
            bias,
            stride,
            padding,
        })
    }

    fn norm(&mut self, prefix: &str, features: i64) -> Result<Norm, TrainError> {
        let opts = (Kind::Float, self.device);
        let weight =
            self.push_param(format!("{prefix}weight"), Tensor::f_ones([features], opts)?)?;
        let bias = self.push_param(format!("{prefix}bias"), Tensor::f_zeros([features], opts)?)?;
        let mut buffer = |name: &str, t: Tensor| {
            self.buffers.push((format!("{prefix}{name}"), t));
            self.buffers.len() - 1
        };
        let mean = buffer("running_mean", Tensor::f_zeros([features], opts)?);
        let var = buffer("running_var", Tensor::f_ones([features], opts)?);
        let count = buffer(
            "num_batches_tracked",
            Tensor::f_zeros([], (Kind::Int64, self.device))?,
        );
        Ok(Norm {
            weight,
            bias,
            mean,
            var,
            count,
        })
    }
}

impl Net {
    /// Builds `spec` for images of `dataset` on `device`, initialised from `seed`.
    pub fn new(
        spec: &ModelSpec,
        dataset: DatasetKind,
        seed: u64,
        device: Device,
    ) -> Result<Self, TrainError> {
        let ModelSpec::Layers(layers) = spec else {
            return Err(TrainError::Invalid(
                "mlp is not a model of layers".to_owned(),
            ));
        };
        // The grid was checked; a worker checks again what it is asked to build.
        let inferred = spec.infer(dataset).map_err(TrainError::Invalid)?;
        let [c, h, w] = dataset.image_shape().map(|d| d as i64);
        let mut b = Builder {
            params: Vec::new(),
            buffers: Vec::new(),
            seed,
            device,
        };
        let mut shape = inferred.input;
        let mut blocks = Vec::with_capacity(layers.len());
        for (i, (layer, after)) in layers.iter().zip(&inferred.shapes).enumerate() {
            let features = match shape {
                sweep_common::model::Shape::Image { c, .. } => c as i64,
                sweep_common::model::Shape::Flat(n) => n as i64,
            };
            blocks.push(b.block(&format!("{i}."), layer, features)?);
            shape = *after;
        }
        Ok(Self {
            blocks,
            params: b.params,
            buffers: b.buffers,
            input: [c, h, w],
            channels_last: device == Device::Cpu
                && layers
                    .iter()
                    .any(|l| matches!(l, Layer::Conv { .. } | Layer::Residual { .. })),
        })
    }

    /// The same model computing in PyTorch's default (NCHW) layout instead of channels-last,
    /// or back: to check that the layout changes no value beyond rounding.
    #[cfg(test)]
    pub(super) fn with_channels_last(mut self, on: bool) -> Self {
        self.channels_last = on;
        self
    }

    /// The trainable tensors with their names.
    pub fn named_parameters(&self) -> Vec<(String, &Tensor)> {
        self.params.iter().map(|(n, t)| (n.clone(), t)).collect()
    }

    /// The buffers (batch norm's running statistics) with their names.
    pub fn named_buffers(&self) -> Vec<(String, &Tensor)> {
        self.buffers.iter().map(|(n, t)| (n.clone(), t)).collect()
    }

    /// The buffers, to restore them.
    pub fn buffers_mut(&mut self) -> impl Iterator<Item = (&str, &mut Tensor)> {
        self.buffers.iter_mut().map(|(n, t)| (n.as_str(), t))
    }

    fn conv(&self, x: &Tensor, c: &Conv) -> Result<Tensor, TrainError> {
        let bias = c.bias.map(|i| &self.params[i].1);
        let out = x.f_conv2d(
            &self.params[c.weight].1,
            bias,
            [c.stride, c.stride],
            [c.padding, c.padding],
            [1, 1],
            1,
        )?;
        // A one-channel input is as much channels-last as not: oneDNN then gives its output
        // in the default layout, which the layers after it keep unless told.
        if self.channels_last && out.stride().get(1) != Some(&1) {
            return channels_last(&out);
        }
        Ok(out)
    }

    fn norm(&self, x: &Tensor, n: &Norm, training: bool) -> Result<Tensor, TrainError> {
        if training {
            // As PyTorch's module does; the count only matters to a momentum of None.
            let _ = tch::no_grad(|| self.buffers[n.count].1.shallow_clone().f_add_scalar_(1))?;
        }
        Ok(x.f_batch_norm(
            Some(&self.params[n.weight].1),
            Some(&self.params[n.bias].1),
            Some(&self.buffers[n.mean].1),
            Some(&self.buffers[n.var].1),
            training,
            BN_MOMENTUM,
            BN_EPS,
            false,
        )?)
    }

    /// Logits for a batch of flattened images in [0, 1]. `dropout` is the batch's seed while
    /// training (batch norm on batch statistics, dropout on), `None` when evaluating.
    pub fn forward(&self, x: &Tensor, dropout: Option<u64>) -> Result<Tensor, TrainError> {
        let training = dropout.is_some();
        let [c, h, w] = self.input;
        let mut x = x.f_reshape([-1, c, h, w])?;
        if self.channels_last {
            x = channels_last(&x)?;
        }
        for (i, block) in self.blocks.iter().enumerate() {
            x = match block {
                Block::Conv(conv) => self.conv(&x, conv)?,
                Block::Norm(n) => self.norm(&x, n, training)?,
                Block::Relu => x.f_relu()?,
                Block::Tanh => x.f_tanh()?,
                Block::Sigmoid => x.f_sigmoid()?,
                Block::MaxPool { kernel, stride } => x.f_max_pool2d(
                    [*kernel, *kernel],
                    [*stride, *stride],
                    [0, 0],
                    [1, 1],
                    false,
                )?,
                Block::AvgPool { kernel, stride } => x.f_avg_pool2d(
                    [*kernel, *kernel],
                    [*stride, *stride],
                    [0, 0],
                    false,
                    true,
                    None,
                )?,
                Block::GlobalAvgPool => x.f_mean_dim([-2i64, -1].as_slice(), false, Kind::Float)?,
                Block::GlobalMaxPool => x.f_amax([-2i64, -1], false)?,
                Block::Dropout { p } => match dropout {
                    Some(seed) if *p > 0.0 => {
                        let layer_seed =
                            SplitMix64::for_stream(seed, "dropout", i as u64).next_u64();
                        let keep = keep_mask(&x, *p, layer_seed)?;
                        x.f_mul(&keep)?.f_mul_scalar(1.0 / (1.0 - *p))?
                    }
                    _ => x,
                },
                Block::Flatten => x.f_flatten(1, -1)?,
                Block::Linear { weight, bias } => {
                    x.f_linear(&self.params[*weight].1, Some(&self.params[*bias].1))?
                }
                Block::Residual {
                    conv1,
                    bn1,
                    conv2,
                    bn2,
                    shortcut,
                } => {
                    let out = self.norm(&self.conv(&x, conv1)?, bn1, training)?.f_relu()?;
                    let out = self.norm(&self.conv(&out, conv2)?, bn2, training)?;
                    let skip = match shortcut {
                        Some((conv, n)) => self.norm(&self.conv(&x, conv)?, n, training)?,
                        None => x,
                    };
                    out.f_add(&skip)?.f_relu()?
                }
            };
        }
        Ok(x)
    }
}

/// `x` (`[n, c, h, w]`) with the same values and shape, stored channels-last (strides `[h w c,
/// 1, w c, c]`): libtorch's CPU kernels then take their channels-last paths (oneDNN's
/// convolutions without reorders, vectorised max pooling and batch norm), and every layer's
/// output keeps the layout. Flatten reads the values in their logical (c, h, w) order, so the
/// linear layers' weights are PyTorch's as before.
fn channels_last(x: &Tensor) -> Result<Tensor, TrainError> {
    let size = x.size();
    if let [n, 1, h, w] = size[..] {
        if x.is_contiguous() {
            // One channel: the same memory, only the strides say channels-last (a copy would
            // change nothing, and libtorch would not see the layout).
            return Ok(x.f_as_strided([n, 1, h, w], [h * w, 1, w, 1], None)?);
        }
    }
    Ok(x.f_permute([0, 2, 3, 1])?
        .f_contiguous()?
        .f_permute([0, 3, 1, 2])?)
}

/// 1.0 where a value of `x` is kept, 0.0 where dropout zeroes it: a 32-bit integer hash of
/// (`seed`, position) compared with `p`, in integer operations every device computes alike.
fn keep_mask(x: &Tensor, p: f64, seed: u64) -> Result<Tensor, TrainError> {
    let h = super::augment::hash32(x.numel() as i64, seed, x.device())?;
    // Keep when h / 2^32 >= p.
    let threshold = (p * 4_294_967_296.0).ceil() as i64;
    Ok(h.f_ge(threshold)?
        .f_to_kind(x.kind())?
        .f_reshape(x.size())?)
}

/// [`keep_mask`], for the tests.
#[cfg(test)]
pub(super) fn keep_mask_for_tests(x: &Tensor, p: f64, seed: u64) -> Result<Tensor, TrainError> {
    keep_mask(x, p, seed)
}
