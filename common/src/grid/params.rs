//! The hyperparameter table: one row per hyperparameter, from which come its key, its type in
//! `HyperParams`, the values it takes (what grid files may give, what the wire accepts, the
//! words messages use for them), its default, whether trial ids name it, its report label and
//! plural, the words "did you mean" maps to it, and its wire field. Adding a hyperparameter is
//! a row here, its use in the trainer, and tests (ARCHITECTURE.md, "How to add a
//! hyperparameter").

use super::define::{choices, hyperparameters};
use super::{Bound, Domain, Fallback, Field, Value};
use crate::model::Model;

/// Largest `epochs`, and so largest `checkpoint_every`.
pub(super) const MAX_EPOCHS: u64 = 100_000;

choices! {
    /// The activation after each hidden layer.
    pub enum Activation: "activation" {
        /// max(0, x)
        Relu = "relu" / "ReLU",
        /// tanh(x)
        Tanh = "tanh" / "Tanh",
        /// 1 / (1 + e^-x)
        Sigmoid = "sigmoid" / "Sigmoid",
    }
}

choices! {
    /// The optimiser.
    pub enum Optimizer: "optimizer" {
        /// Adam (PyTorch's defaults); weight decay is an L2 term added to the gradient.
        Adam = "adam" / "Adam",
        /// AdamW: Adam with decoupled weight decay.
        Adamw = "adamw" / "AdamW",
        /// SGD with `momentum` (0: plain SGD).
        Sgd = "sgd" / "SGD",
        /// SGD with Nesterov momentum.
        Nesterov = "nesterov" / "SGD-Nesterov",
    }
}

choices! {
    /// The learning-rate schedule after the warm-up.
    pub enum LrSchedule: "learning-rate schedule" {
        /// `learning_rate` throughout.
        Constant = "constant" / "constant",
        /// Multiplied by `lr_gamma` every `lr_step_size` units (PyTorch's `StepLR`).
        Step = "step" / "step",
        /// Cosine annealing to 0 over the remaining units (PyTorch's `CosineAnnealingLR`).
        Cosine = "cosine" / "cosine",
        /// One cycle peaking at `learning_rate` (PyTorch's `OneCycleLR`, momentum not cycled).
        Onecycle = "onecycle" / "one-cycle",
    }
}

choices! {
    /// What the learning-rate schedule counts.
    pub enum LrScheduleUnit: "schedule unit" {
        /// The learning rate changes between epochs.
        Epoch = "epoch" / "per epoch",
        /// The learning rate changes between batches.
        Batch = "batch" / "per batch",
    }
}

choices! {
    /// How input pixels are scaled before the model.
    pub enum Normalize: "normalisation" {
        /// Pixels / 255, in [0, 1] (`ToTensor()`), as lab 1.
        Off = "none" / "none",
        /// Then per channel, minus the mean and over the standard deviation of the trial's
        /// training split (`Normalize(mean, std)` with the split's statistics).
        Dataset = "dataset" / "per channel",
    }
}

hyperparameters! {
    /// Activation after each hidden layer.
    Activation activation: Activation {
        domain: Domain::Choice(Activation::CHOICES),
        default: Fallback::Value(Value::Choice(Activation::Relu.choice())),
        canonical: Always,
        label: "Activation",
        plural: "activations",
        aliases: ["act", "activation_function"],
    }
    /// Number of hidden `Linear + activation` blocks (0 gives a linear classifier).
    HiddenLayers hidden_layers: u32 {
        domain: Domain::Int { min: 0, max: 64 },
        default: Fallback::Value(Value::Int(1)),
        canonical: Always,
        label: "Hidden layers",
        plural: "numbers of hidden layers",
        aliases: ["depth", "layers", "num_layers"],
    }
    /// Width of every hidden layer.
    HiddenWidth hidden_width: u32 {
        domain: Domain::Int { min: 1, max: 65_536 },
        default: Fallback::Value(Value::Int(256)),
        canonical: Always,
        label: "Hidden width",
        plural: "hidden widths",
        aliases: ["width", "hidden_size", "units"],
    }
    /// Adam's learning rate.
    LearningRate learning_rate: f64 {
        domain: Domain::Float { min: Bound::Open(0.0), max: Bound::Closed(10.0) },
        default: Fallback::Value(Value::Float(0.001)),
        canonical: Always,
        label: "Learning rate",
        plural: "learning rates",
        aliases: ["lr", "learningrate"],
    }
    /// Mini-batch size; the last batch of an epoch may be shorter.
    BatchSize batch_size: u32 {
        domain: Domain::Int { min: 1, max: 1 << 20 },
        default: Fallback::Value(Value::Int(64)),
        canonical: Always,
        label: "Batch size",
        plural: "batch sizes",
        aliases: ["batch", "bs", "batchsize"],
    }
    /// Number of passes over the training subset.
    Epochs epochs: u32 {
        domain: Domain::Int { min: 1, max: MAX_EPOCHS },
        default: Fallback::Value(Value::Int(10)),
        canonical: Always,
        label: "Epochs",
        plural: "numbers of epochs",
        aliases: ["epoch", "num_epochs"],
    }
    /// Fraction of the train split used for training, in (0, 1].
    TrainFraction train_fraction: f64 {
        domain: Domain::Fraction,
        default: Fallback::Value(Value::Float(1.0)),
        canonical: Always,
        label: "Training split ratio",
        plural: "training split ratios",
        aliases: ["fraction"],
    }
    /// Seed of the weight initialisation, the training subset and the per-epoch shuffles.
    Seed seed: u64 {
        domain: Domain::Int { min: 0, max: i64::MAX as u64 },
        default: Fallback::SweepSeed,
        canonical: Always,
        label: "Seed",
        plural: "seeds",
        aliases: [],
    }
    /// The architecture: `mlp` (lab 1's) or layers such as `conv(16,3,p=1) bn relu linear(10)`.
    Model model: Model {
        domain: Domain::Model,
        default: Fallback::Value(Value::Text(Model::MLP.0)),
        canonical: UnlessDefault,
        label: "Model",
        plural: "models",
        aliases: ["architecture", "arch", "net", "network"],
    }
    /// The optimiser that applies the gradients at `learning_rate`.
    Optimizer optimizer: Optimizer {
        domain: Domain::Choice(Optimizer::CHOICES),
        default: Fallback::Value(Value::Choice(Optimizer::Adam.choice())),
        canonical: UnlessDefault,
        label: "Optimizer",
        plural: "optimizers",
        aliases: ["optimiser", "optim", "opt", "solver"],
    }
    /// SGD's momentum (`sgd`, `nesterov`); Adam ignores it.
    Momentum momentum: f64 {
        domain: Domain::Float { min: Bound::Closed(0.0), max: Bound::Open(1.0) },
        default: Fallback::Value(Value::Float(0.9)),
        canonical: UnlessDefault,
        label: "Momentum",
        plural: "momenta",
        aliases: ["beta"],
    }
    /// Weight decay: L2 added to the gradient (adam, sgd), decoupled (adamw).
    WeightDecay weight_decay: f64 {
        domain: Domain::Float { min: Bound::Closed(0.0), max: Bound::Open(1.0) },
        default: Fallback::Value(Value::Float(0.0)),
        canonical: UnlessDefault,
        label: "Weight decay",
        plural: "weight decays",
        aliases: ["wd", "l2", "decay"],
    }
    /// The learning-rate schedule after the warm-up.
    LrSchedule lr_schedule: LrSchedule {
        domain: Domain::Choice(LrSchedule::CHOICES),
        default: Fallback::Value(Value::Choice(LrSchedule::Constant.choice())),
        canonical: UnlessDefault,
        label: "LR schedule",
        plural: "learning-rate schedules",
        aliases: ["schedule", "scheduler", "lr_scheduler"],
    }
    /// What the schedule and the warm-up count: epochs or batches.
    LrScheduleUnit lr_schedule_unit: LrScheduleUnit {
        domain: Domain::Choice(LrScheduleUnit::CHOICES),
        default: Fallback::Value(Value::Choice(LrScheduleUnit::Epoch.choice())),
        canonical: UnlessDefault,
        label: "LR schedule unit",
        plural: "schedule units",
        aliases: ["schedule_unit", "step_per", "lr_step_per"],
    }
    /// Units (epochs or batches) of linear warm-up before the schedule (0: none).
    LrWarmup lr_warmup: u32 {
        domain: Domain::Int { min: 0, max: 1 << 30 },
        default: Fallback::Value(Value::Int(0)),
        canonical: UnlessDefault,
        label: "LR warm-up",
        plural: "warm-up lengths",
        aliases: ["warmup", "warmup_epochs", "warmup_steps"],
    }
    /// The `step` schedule's period, in units.
    LrStepSize lr_step_size: u32 {
        domain: Domain::Int { min: 1, max: 1 << 30 },
        default: Fallback::Value(Value::Int(10)),
        canonical: UnlessDefault,
        label: "LR step size",
        plural: "step sizes",
        aliases: ["step_size"],
    }
    /// The `step` schedule's factor.
    LrGamma lr_gamma: f64 {
        domain: Domain::Float { min: Bound::Open(0.0), max: Bound::Closed(1.0) },
        default: Fallback::Value(Value::Float(0.1)),
        canonical: UnlessDefault,
        label: "LR gamma",
        plural: "step factors",
        aliases: ["gamma"],
    }
    /// Label smoothing of the cross-entropy loss (PyTorch's `label_smoothing`).
    LabelSmoothing label_smoothing: f64 {
        domain: Domain::Float { min: Bound::Closed(0.0), max: Bound::Open(1.0) },
        default: Fallback::Value(Value::Float(0.0)),
        canonical: UnlessDefault,
        label: "Label smoothing",
        plural: "label smoothings",
        aliases: ["smoothing"],
    }
    /// Largest global L2 norm of the gradients, scaled down above it (0: no clipping).
    ClipGradNorm clip_grad_norm: f64 {
        domain: Domain::Float { min: Bound::Closed(0.0), max: Bound::Closed(1e6) },
        default: Fallback::Value(Value::Float(0.0)),
        canonical: UnlessDefault,
        label: "Gradient clip",
        plural: "gradient clipping norms",
        aliases: ["clip", "grad_clip", "max_grad_norm", "clip_norm"],
    }
    /// Augmentation: zero padding on each side before a random crop of the image's size (0: none).
    RandomCrop random_crop: u32 {
        domain: Domain::Int { min: 0, max: 64 },
        default: Fallback::Value(Value::Int(0)),
        canonical: UnlessDefault,
        label: "Random crop padding",
        plural: "crop paddings",
        aliases: ["crop", "crop_padding", "random_crop_padding"],
    }
    /// Augmentation: the probability of flipping a training image horizontally (0: never).
    RandomFlip random_flip: f64 {
        domain: Domain::Float { min: Bound::Closed(0.0), max: Bound::Closed(1.0) },
        default: Fallback::Value(Value::Float(0.0)),
        canonical: UnlessDefault,
        label: "Random flip",
        plural: "flip probabilities",
        aliases: ["flip", "hflip", "horizontal_flip"],
    }
    /// Input normalisation: none (pixels in [0, 1]) or per channel from the training split.
    Normalize normalize: Normalize {
        domain: Domain::Choice(Normalize::CHOICES),
        default: Fallback::Value(Value::Choice(Normalize::Off.choice())),
        canonical: UnlessDefault,
        label: "Normalisation",
        plural: "normalisations",
        aliases: ["normalise", "normalization", "normalisation", "standardize"],
    }
}

impl Param {
    /// The key used in grid files.
    pub fn key(self) -> &'static str {
        self.def().key
    }

    /// The hyperparameter whose key is `key`.
    pub fn from_key(key: &str) -> Option<Param> {
        Param::ALL.into_iter().find(|p| p.key() == key)
    }
}

impl std::fmt::Display for Param {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.key())
    }
}

impl serde::Serialize for Param {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.key())
    }
}

impl<'de> serde::Deserialize<'de> for Param {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let key = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        Param::from_key(&key).ok_or_else(|| serde::de::Error::unknown_variant(&key, &Param::KEYS))
    }
}

impl HyperParams {
    /// Every hyperparameter's value, in axis order.
    pub fn values(&self) -> impl Iterator<Item = (Param, Value)> + '_ {
        Param::ALL.into_iter().map(|p| (p, self.get(p)))
    }

    /// The values a trial's identity names (its canonical text and the wire): every
    /// hyperparameter but those that may be absent and hold the value an absence stands for.
    pub fn named(&self) -> impl Iterator<Item = (Param, Value)> + '_ {
        self.values().filter(|(p, v)| {
            p.def()
                .omitted()
                .is_none_or(|o| o.identity() != v.identity())
        })
    }

    /// The hyperparameters of a grid cell that fixes and varies nothing.
    pub fn defaults(sweep_seed: u64) -> Result<HyperParams, ParamError> {
        Self::from_values(|p| Some(p.def().default.value(sweep_seed)))
    }
}

/// Hyperparameters given by key (the wire), or values that do not fit `HyperParams`.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ParamError {
    /// A key that is not a hyperparameter.
    #[error("unknown hyperparameter {0:?}")]
    Unknown(String),
    /// A hyperparameter given twice.
    #[error("{0} is given twice")]
    Duplicate(Param),
    /// A hyperparameter that must be given and is not.
    #[error("{0} is missing")]
    Missing(Param),
    /// A value outside the hyperparameter's domain; the message says what it allows.
    #[error("{param}: {message}")]
    Invalid {
        /// The hyperparameter.
        param: Param,
        /// What is wrong and what is allowed.
        message: String,
    },
    /// A value of another kind than the field holds (a table whose domain and field type
    /// disagree, or a bug).
    #[error("{param}: {value} does not fit its field")]
    Type {
        /// The hyperparameter.
        param: Param,
        /// The value, as shown.
        value: String,
    },
}

/// The field of `param` holding `value`, or the value an absent entry stands for.
fn typed<T: Field>(param: Param, value: Option<Value>) -> Result<T, ParamError> {
    let value = value
        .or_else(|| param.def().omitted())
        .ok_or(ParamError::Missing(param))?;
    T::from_value(value).ok_or_else(|| ParamError::Type {
        param,
        value: value.display(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grid::Canonical;

    #[test]
    fn every_row_is_consistent() {
        for p in Param::ALL {
            let def = p.def();
            // The variant is the key in CamelCase.
            let camel: String = def
                .key
                .split('_')
                .map(|w| {
                    let mut c = w.chars();
                    c.next()
                        .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                        .unwrap_or_default()
                })
                .collect();
            assert_eq!(format!("{p:?}"), camel);
            assert_eq!(Param::from_key(def.key), Some(p));
            assert_eq!(def.wire_field, format!("trial.{}", def.key));
            // The default is in the domain and fits the field.
            let default = def.default.value(7);
            assert!(def.domain.contains(default), "{p}: default {default:?}");
            // Only the first eight are always named; any later one has a constant default.
            match def.canonical {
                Canonical::Always => assert!((p as usize) < 8, "{p} must be UnlessDefault"),
                Canonical::UnlessDefault => assert!(def.omitted().is_some(), "{p}"),
            }
            for alias in def.aliases {
                assert!(Param::from_key(alias).is_none(), "{alias}");
            }
        }
        let d = HyperParams::defaults(7).unwrap();
        assert_eq!(d.seed, 7);
        for (p, v) in d.values() {
            assert_eq!(v, p.def().default.value(7));
        }
        // At its defaults a trial names exactly the hyperparameters every id names.
        let always = Param::ALL
            .iter()
            .filter(|p| p.def().canonical == Canonical::Always)
            .count();
        assert_eq!(d.named().count(), always);
    }

    #[test]
    fn every_domain_fits_its_field() {
        // The largest value of every integer domain converts to its field without loss.
        let mut d = HyperParams::defaults(0).unwrap();
        for p in Param::ALL {
            let extreme = match p.def().domain {
                Domain::Int { max, .. } => Value::Int(max),
                Domain::Float {
                    max: Bound::Closed(max),
                    ..
                } => Value::Float(max),
                Domain::Float { .. } | Domain::Model => d.get(p),
                Domain::Fraction => Value::Float(1.0),
                Domain::Choice(c) => Value::Choice(&c[c.len() - 1]),
            };
            d = HyperParams::from_values(|q| Some(if q == p { extreme } else { d.get(q) }))
                .unwrap();
            assert_eq!(d.get(p), extreme);
        }
    }

    #[test]
    fn stored_params_read_back() {
        // As the state database and results.json have held them since the first version.
        let v1 = "{\"activation\":\"relu\",\"hidden_layers\":1,\"hidden_width\":256,\"learning_rate\":0.001,\"batch_size\":64,\"epochs\":10,\"train_fraction\":1.0,\"seed\":3}";
        let d = HyperParams::defaults(3).unwrap();
        assert_eq!(serde_json::from_str::<HyperParams>(v1).unwrap(), d);
        let json = serde_json::to_string(&d).unwrap();
        assert!(json.starts_with(&v1[..v1.len() - 1]), "{json}");
        assert_eq!(serde_json::from_str::<HyperParams>(&json).unwrap(), d);
        // A hyperparameter every id names may not be absent.
        let e = serde_json::from_str::<HyperParams>(&v1.replace(",\"seed\":3", ""))
            .unwrap_err()
            .to_string();
        assert!(e.contains("seed is missing"), "{e}");
        let e = serde_json::from_str::<HyperParams>(&v1.replace("relu", "gelu"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown activation \"gelu\""), "{e}");
    }

    #[test]
    fn activations_have_names() {
        for a in Activation::ALL {
            assert_eq!(a.name().parse::<Activation>(), Ok(a));
            assert_eq!(Activation::from_value(a.to_value()), Some(a));
        }
        assert_eq!(Activation::Relu.to_string(), "ReLU");
        assert_eq!(
            "gelu".parse::<Activation>().unwrap_err().to_string(),
            "unknown activation \"gelu\"; allowed: relu, tanh, sigmoid"
        );
        assert_eq!(Activation::from_value(Value::Int(0)), None);
    }
}
