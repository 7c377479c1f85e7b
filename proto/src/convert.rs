//! Conversions between wire messages and domain types.

use std::collections::HashMap;

use sweep_common::dataset::{OwnData, OwnFacts};
use sweep_common::grid::{Param, ParamError, Raw, Value};
use sweep_common::program::{ProgramSpec, ProgramValue};
use sweep_common::text;
use sweep_common::{
    ConfusionMatrix, DatasetKind, EpochMetrics, FailureKind, FinalMetrics, HyperParams, Scalars,
    SplitSpec, TrialId, TrialResult, TrialSpec, WorkerId,
};

use crate::v1;

/// A wire message that does not decode into a domain value. Names the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// A required field is absent.
    #[error("missing field {0}")]
    Missing(&'static str),
    /// A field has a value outside what is allowed.
    #[error("invalid field {field}: {message}")]
    Invalid {
        /// The field's name.
        field: &'static str,
        /// What is wrong.
        message: String,
    },
}

fn invalid(field: &'static str, message: impl Into<String>) -> DecodeError {
    DecodeError::Invalid {
        field,
        message: message.into(),
    }
}

/// Longest worker name and device name, in characters.
pub const MAX_NAME_CHARS: usize = 128;
/// Longest failure message and cancel reason, in characters.
pub const MAX_MESSAGE_CHARS: usize = 4096;
/// Longest trial or experiment name a cancel may give, in characters (a trial name has at most
/// 256 bytes, an id 36 characters).
pub const MAX_CANCEL_NAME_CHARS: usize = 256;
/// Most names one cancel request may list.
pub const MAX_CANCEL_NAMES: usize = 100_000;
/// Most slots a worker may claim.
pub const MAX_SLOTS: u32 = 1024;
/// Longest an epoch, or a trial's training, can have taken: a year. A duration past it is a
/// broken clock or a lie, and would wreck every throughput and ETA computed from it.
pub const MAX_SECONDS: f64 = 366.0 * 24.0 * 3600.0;

/// Text from the network: at most `max` characters, none of them a control or invisible
/// character (`sweep_common::text::check`), else an error naming `field`.
pub fn checked_text(field: &'static str, s: &str, max: usize) -> Result<String, DecodeError> {
    text::check(s, max).map_err(|p| invalid(field, p.to_string()))?;
    Ok(s.to_owned())
}

/// A duration in seconds: finite, >= 0 and at most [`MAX_SECONDS`].
fn seconds(field: &'static str, v: f64) -> Result<f64, DecodeError> {
    if v.is_finite() && (0.0..=MAX_SECONDS).contains(&v) {
        Ok(v)
    } else {
        Err(invalid(
            field,
            format!("{v} is not a duration in seconds from 0 to {MAX_SECONDS} (a year)"),
        ))
    }
}

/// A worker's device, as it describes itself at registration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Device {
    /// CPU, CUDA, or unknown (an unknown value is kept as unspecified).
    pub kind: v1::DeviceKind,
    /// CUDA device index (0 for the CPU).
    pub index: u32,
    /// Its name ("NVIDIA H100 80GB HBM3"), checked text.
    pub name: String,
    /// Total memory in bytes (0 when unknown).
    pub memory_bytes: u64,
}

/// What a `RegisterRequest` says, checked (the protocol version is the service's to check).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registration {
    /// The worker's name, checked text of at most [`MAX_NAME_CHARS`] characters.
    pub name: String,
    /// Its device, if it said.
    pub device: Option<Device>,
    /// Trials it trains at once, 1..=[`MAX_SLOTS`].
    pub slots: u32,
}

impl TryFrom<&v1::RegisterRequest> for Registration {
    type Error = DecodeError;

    fn try_from(r: &v1::RegisterRequest) -> Result<Self, Self::Error> {
        if r.slots == 0 || r.slots > MAX_SLOTS {
            return Err(invalid(
                "slots",
                format!("{} is outside 1..={MAX_SLOTS}", r.slots),
            ));
        }
        let device = match &r.device {
            Some(d) => Some(Device {
                kind: v1::DeviceKind::try_from(d.kind).unwrap_or(v1::DeviceKind::Unspecified),
                index: d.index,
                name: checked_text("device.name", &d.name, MAX_NAME_CHARS)?,
                memory_bytes: d.memory_bytes,
            }),
            None => None,
        };
        Ok(Registration {
            name: checked_text("worker_name", &r.worker_name, MAX_NAME_CHARS)?,
            device,
            slots: r.slots,
        })
    }
}

/// A device's memory in bytes, as a heartbeat reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeviceMemory {
    /// Used (on the CPU, the worker's resident memory).
    pub used: u64,
    /// Free (on the CPU, what the kernel says is available).
    pub free: u64,
    /// Total.
    pub total: u64,
}

impl TryFrom<&v1::DeviceMemory> for DeviceMemory {
    type Error = DecodeError;

    /// Neither the used nor the free memory can be more than the total.
    fn try_from(m: &v1::DeviceMemory) -> Result<Self, Self::Error> {
        for (field, v) in [
            ("memory.used_bytes", m.used_bytes),
            ("memory.free_bytes", m.free_bytes),
        ] {
            if v > m.total_bytes {
                return Err(invalid(
                    field,
                    format!("{v} bytes is more than the total, {}", m.total_bytes),
                ));
            }
        }
        Ok(DeviceMemory {
            used: m.used_bytes,
            free: m.free_bytes,
            total: m.total_bytes,
        })
    }
}

/// The message of a `TrialFailure`: checked text of at most [`MAX_MESSAGE_CHARS`] characters.
/// (A worker makes its messages fit with `sweep_common::text::one_line`.)
pub fn failure_message(f: &v1::TrialFailure) -> Result<String, DecodeError> {
    checked_text("failure.message", &f.message, MAX_MESSAGE_CHARS)
}

/// What a `CancelRequest` names, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cancel {
    /// Trials by id or name.
    pub trials: Vec<String>,
    /// Whole experiments.
    pub experiments: Vec<String>,
    /// Every trial not ended yet.
    pub all: bool,
    /// Why, checked text of at most [`MAX_MESSAGE_CHARS`] characters (may be empty).
    pub reason: String,
}

/// The names a cancel or retry request lists, checked: at most [`MAX_CANCEL_NAMES`] in all,
/// each clean text of at most [`MAX_CANCEL_NAME_CHARS`] characters.
fn checked_names(
    trials: &[String],
    experiments: &[String],
) -> Result<(Vec<String>, Vec<String>), DecodeError> {
    if trials.len() + experiments.len() > MAX_CANCEL_NAMES {
        return Err(invalid(
            "trials",
            format!("more than {MAX_CANCEL_NAMES} names"),
        ));
    }
    let names = |field: &'static str, list: &[String]| {
        list.iter()
            .enumerate()
            .map(|(i, n)| {
                text::check(n, MAX_CANCEL_NAME_CHARS)
                    .map(|()| n.clone())
                    .map_err(|p| invalid(field, format!("name {}: {p}", i + 1)))
            })
            .collect::<Result<Vec<_>, _>>()
    };
    Ok((names("trials", trials)?, names("experiments", experiments)?))
}

impl TryFrom<&v1::CancelRequest> for Cancel {
    type Error = DecodeError;

    fn try_from(r: &v1::CancelRequest) -> Result<Self, Self::Error> {
        let (trials, experiments) = checked_names(&r.trials, &r.experiments)?;
        if trials.is_empty() && experiments.is_empty() && !r.all {
            return Err(invalid("trials", "name trials, experiments, or set all"));
        }
        Ok(Cancel {
            trials,
            experiments,
            all: r.all,
            reason: checked_text("reason", &r.reason, MAX_MESSAGE_CHARS)?,
        })
    }
}

/// What a `RetryRequest` names, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Retry {
    /// Trials by id or name.
    pub trials: Vec<String>,
    /// The failed trials of these experiments.
    pub experiments: Vec<String>,
    /// Every failed trial.
    pub failed: bool,
    /// Cancelled trials too, where selected by experiment or by `failed`.
    pub include_cancelled: bool,
}

impl TryFrom<&v1::RetryRequest> for Retry {
    type Error = DecodeError;

    fn try_from(r: &v1::RetryRequest) -> Result<Self, Self::Error> {
        let (trials, experiments) = checked_names(&r.trials, &r.experiments)?;
        if trials.is_empty() && experiments.is_empty() && !r.failed {
            return Err(invalid("trials", "name trials, experiments, or set failed"));
        }
        Ok(Retry {
            trials,
            experiments,
            failed: r.failed,
            include_cancelled: r.include_cancelled,
        })
    }
}

/// What a `PromoteRequest` names, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Promote {
    /// Trials by id or name.
    pub trials: Vec<String>,
    /// Every stopped trial of these experiments.
    pub experiments: Vec<String>,
    /// More epochs for the trials named (`--epochs`), checked against the table's row of
    /// `epochs`; `None`: their own.
    pub epochs: Option<u32>,
}

impl TryFrom<&v1::PromoteRequest> for Promote {
    type Error = DecodeError;

    fn try_from(r: &v1::PromoteRequest) -> Result<Self, Self::Error> {
        let (trials, experiments) = checked_names(&r.trials, &r.experiments)?;
        if trials.is_empty() && experiments.is_empty() {
            return Err(invalid("trials", "name trials or experiments"));
        }
        let epochs = match r.epochs {
            0 => None,
            n if !experiments.is_empty() => {
                return Err(invalid(
                    "epochs",
                    format!("{n} epochs are given to trials by name (--trial), not to experiments"),
                ));
            }
            n => {
                Param::Epochs
                    .check_int(u64::from(n))
                    .map_err(|m| invalid("epochs", m))?;
                Some(n)
            }
        };
        Ok(Promote {
            trials,
            experiments,
            epochs,
        })
    }
}

/// Parses a trial id field.
pub fn parse_trial_id(field: &'static str, s: &str) -> Result<TrialId, DecodeError> {
    s.parse()
        .map_err(|e: sweep_common::ids::InvalidId| invalid(field, e.to_string()))
}

/// The wire form of a lease.
pub fn lease_ref(trial: TrialId, attempt: u32) -> v1::LeaseRef {
    v1::LeaseRef {
        trial_id: trial.to_string(),
        attempt,
    }
}

/// Decodes an optional lease field into (trial, attempt).
pub fn parse_lease(lease: Option<&v1::LeaseRef>) -> Result<(TrialId, u32), DecodeError> {
    let lease = lease.ok_or(DecodeError::Missing("lease"))?;
    let trial = parse_trial_id("lease.trial_id", &lease.trial_id)?;
    if lease.attempt == 0 {
        return Err(invalid("lease.attempt", "attempts start at 1"));
    }
    Ok((trial, lease.attempt))
}

/// The kind of a failure a worker reports (`TrialFailure.kind`). No value, or one this build does
/// not know (a newer worker), is `Internal`: retried, and counted.
pub fn failure_kind(wire: i32) -> FailureKind {
    match v1::FailureKind::try_from(wire) {
        Ok(v1::FailureKind::Data) => FailureKind::Data,
        Ok(v1::FailureKind::NonFiniteLoss) => FailureKind::NonFiniteLoss,
        Ok(v1::FailureKind::OutOfMemory) => FailureKind::OutOfMemory,
        Ok(v1::FailureKind::WorkerShutdown) => FailureKind::WorkerShutdown,
        Ok(v1::FailureKind::InvalidSpec) => FailureKind::InvalidSpec,
        Ok(v1::FailureKind::Panic) => FailureKind::Panic,
        Ok(v1::FailureKind::CheckpointUnusable) => FailureKind::CheckpointUnusable,
        Ok(v1::FailureKind::Device) => FailureKind::Device,
        Ok(v1::FailureKind::ProgramFailed) => FailureKind::ProgramFailed,
        Ok(v1::FailureKind::Internal | v1::FailureKind::Unspecified) | Err(_) => {
            FailureKind::Internal
        }
    }
}

impl From<FailureKind> for v1::FailureKind {
    /// The wire value a worker sends. The kinds only the coordinator records (an expired lease,
    /// a cancel) have none: `Unspecified`, which reads back as `Internal`.
    fn from(k: FailureKind) -> Self {
        match k {
            FailureKind::Data => v1::FailureKind::Data,
            FailureKind::NonFiniteLoss => v1::FailureKind::NonFiniteLoss,
            FailureKind::OutOfMemory => v1::FailureKind::OutOfMemory,
            FailureKind::Internal => v1::FailureKind::Internal,
            FailureKind::WorkerShutdown => v1::FailureKind::WorkerShutdown,
            FailureKind::InvalidSpec => v1::FailureKind::InvalidSpec,
            FailureKind::Panic => v1::FailureKind::Panic,
            FailureKind::CheckpointUnusable => v1::FailureKind::CheckpointUnusable,
            FailureKind::Device => v1::FailureKind::Device,
            FailureKind::ProgramFailed => v1::FailureKind::ProgramFailed,
            FailureKind::LeaseExpired | FailureKind::Cancelled | FailureKind::WeightsMissing => {
                v1::FailureKind::Unspecified
            }
        }
    }
}

/// The wire form of the hyperparameters a trial's id names.
fn params_to_wire(p: &HyperParams) -> Vec<v1::HyperParam> {
    use v1::hyper_param::Value as Wire;
    p.named()
        .map(|(param, value)| v1::HyperParam {
            key: param.key().to_owned(),
            value: Some(match value {
                Value::Choice(c) => Wire::Choice(c.name.to_owned()),
                // A text (a model) travels as a string, as a choice's name does.
                Value::Text(t) => Wire::Choice(t.to_owned()),
                Value::Int(i) => Wire::Int(i),
                Value::Float(x) => Wire::Float(x),
            }),
        })
        .collect()
}

/// Decodes hyperparameters by key, each checked against its row of the table: the ranges a
/// grid file allows, since the worker builds and trains what the spec describes.
fn params_from_wire(params: &[v1::HyperParam]) -> Result<HyperParams, DecodeError> {
    use v1::hyper_param::Value as Wire;
    let pairs = params.iter().map(|p| {
        let raw = p.value.as_ref().map(|v| match v {
            Wire::Choice(name) => Raw::Str(name),
            Wire::Int(i) => Raw::Int(i128::from(*i)),
            Wire::Float(x) => Raw::Float(*x),
        });
        (p.key.as_str(), raw)
    });
    HyperParams::from_pairs(pairs).map_err(|e| match e {
        ParamError::Unknown(_) => invalid("trial.params", e.to_string()),
        ParamError::Missing(p) => DecodeError::Missing(p.def().wire_field),
        ParamError::Duplicate(p) => invalid(p.def().wire_field, "given twice"),
        ParamError::Invalid { param, message } => invalid(param.def().wire_field, message),
        ParamError::Type { param, .. } => invalid(param.def().wire_field, e.to_string()),
    })
}

impl From<&TrialSpec> for v1::TrialSpec {
    fn from(t: &TrialSpec) -> Self {
        v1::TrialSpec {
            trial_id: t.id.to_string(),
            experiment: t.experiment.clone(),
            name: t.name.clone(),
            dataset: t.dataset.name().to_owned(),
            params: params_to_wire(&t.params),
            split_ratio: t.split.train_ratio,
            split_seed: t.split.seed,
            checkpoint_every: t.checkpoint_every,
            program: t.program.as_deref().map(program_to_wire),
            own_data: t.dataset.own().map(own_to_wire),
        }
    }
}

/// A user's own data set on the wire.
fn own_to_wire(d: OwnData) -> v1::OwnData {
    let f = d.facts();
    v1::OwnData {
        file: f.file.clone(),
        path: f.path.clone(),
        sha256: f.sha256.clone(),
        shape: f.shape.iter().map(|&s| s as u32).collect(),
        train_len: f.train_len as u64,
        test_len: f.test_len as u64,
        class_names: f.class_names.clone(),
    }
}

/// A trial's dataset: a built-in one by name, or the user's own file with its checked facts.
fn dataset_from_wire(t: &v1::TrialSpec) -> Result<DatasetKind, DecodeError> {
    let Some(own) = &t.own_data else {
        return t
            .dataset
            .parse()
            .map_err(|e: sweep_common::dataset::UnknownDataset| {
                invalid("trial.dataset", e.to_string())
            });
    };
    let count = |field: &'static str, n: u64| {
        usize::try_from(n).map_err(|_| invalid(field, format!("{n} does not fit")))
    };
    let shape: [u32; 3] = own.shape.as_slice().try_into().map_err(|_| {
        invalid(
            "trial.own_data.shape",
            format!(
                "{} dimensions; expected 3 (channels, height, width)",
                own.shape.len()
            ),
        )
    })?;
    let facts = OwnFacts {
        file: own.file.clone(),
        path: own.path.clone(),
        sha256: own.sha256.clone(),
        shape: shape.map(|s| s as usize),
        train_len: count("trial.own_data.train_len", own.train_len)?,
        test_len: count("trial.own_data.test_len", own.test_len)?,
        class_names: own.class_names.clone(),
    };
    if t.dataset != facts.file {
        return Err(invalid(
            "trial.dataset",
            "names another file than trial.own_data.file",
        ));
    }
    OwnData::new(facts)
        .map(DatasetKind::Own)
        .map_err(|e| invalid("trial.own_data", e))
}

/// A program trial's program on the wire.
fn program_to_wire(p: &ProgramSpec) -> v1::ProgramSpec {
    use v1::program_param::Value as Wire;
    v1::ProgramSpec {
        argv: p.argv.clone(),
        workdir: p.workdir.clone().unwrap_or_default(),
        env: p.env.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        params: p
            .params
            .iter()
            .map(|(key, value)| v1::ProgramParam {
                key: key.clone(),
                value: Some(match value {
                    ProgramValue::Int(i) => Wire::Int(*i),
                    ProgramValue::Float(x) => Wire::Float(*x),
                    ProgramValue::Text(s) => Wire::Text(s.clone()),
                    ProgramValue::Bool(b) => Wire::Flag(*b),
                }),
            })
            .collect(),
    }
}

/// Decodes a program trial's program: the same limits as a grid file's.
fn program_from_wire(p: &v1::ProgramSpec) -> Result<ProgramSpec, DecodeError> {
    use sweep_common::program::{
        MAX_ARG_BYTES, MAX_ARGS, MAX_ENV, MAX_PARAMS, valid_env_name, valid_key,
    };
    use v1::program_param::Value as Wire;
    if p.argv.is_empty() || p.argv.len() > MAX_ARGS {
        let message = format!(
            "a program is 1 to {MAX_ARGS} arguments, got {}",
            p.argv.len()
        );
        return Err(invalid("trial.program.argv", message));
    }
    let argv = p
        .argv
        .iter()
        .map(|a| checked_text("trial.program.argv", a, MAX_ARG_BYTES))
        .collect::<Result<Vec<_>, _>>()?;
    if argv[0].is_empty() {
        return Err(invalid("trial.program.argv", "the program's name is empty"));
    }
    let workdir = match p.workdir.as_str() {
        "" => None,
        w => Some(checked_text("trial.program.workdir", w, MAX_ARG_BYTES)?),
    };
    if p.env.len() > MAX_ENV {
        return Err(invalid(
            "trial.program.env",
            format!("more than {MAX_ENV} variables"),
        ));
    }
    let mut env = std::collections::BTreeMap::new();
    for (name, value) in &p.env {
        if !valid_env_name(name) {
            return Err(invalid("trial.program.env", "an invalid variable name"));
        }
        env.insert(
            name.clone(),
            checked_text("trial.program.env", value, MAX_ARG_BYTES)?,
        );
    }
    if p.params.len() > MAX_PARAMS {
        let message = format!("more than {MAX_PARAMS} hyperparameters");
        return Err(invalid("trial.program.params", message));
    }
    let mut params = std::collections::BTreeMap::new();
    for param in &p.params {
        if !valid_key(&param.key) {
            return Err(invalid("trial.program.params", "an invalid key"));
        }
        let value = match &param.value {
            Some(Wire::Int(i)) => ProgramValue::Int(*i),
            Some(Wire::Float(x)) if x.is_finite() => ProgramValue::Float(*x),
            Some(Wire::Float(_)) => {
                return Err(invalid(
                    "trial.program.params",
                    "a number that is not finite",
                ));
            }
            Some(Wire::Text(s)) => {
                ProgramValue::Text(checked_text("trial.program.params", s, MAX_ARG_BYTES)?)
            }
            Some(Wire::Flag(b)) => ProgramValue::Bool(*b),
            None => return Err(DecodeError::Missing("trial.program.params.value")),
        };
        if params.insert(param.key.clone(), value).is_some() {
            return Err(invalid("trial.program.params", "a key given twice"));
        }
    }
    Ok(ProgramSpec {
        argv,
        workdir,
        env,
        params,
    })
}

impl TryFrom<&v1::TrialSpec> for TrialSpec {
    type Error = DecodeError;

    /// Decodes and checks a trial: the id must be the UUID v5 of the content.
    fn try_from(t: &v1::TrialSpec) -> Result<Self, Self::Error> {
        let id = parse_trial_id("trial.trial_id", &t.trial_id)?;
        let dataset = dataset_from_wire(t)?;
        let split_ratio = t.split_ratio;
        if !(split_ratio.is_finite() && split_ratio > 0.0 && split_ratio < 1.0) {
            return Err(invalid(
                "trial.split_ratio",
                format!("{split_ratio} is not a fraction in (0, 1)"),
            ));
        }
        let spec = TrialSpec {
            id,
            experiment: checked_text("trial.experiment", &t.experiment, MAX_NAME_CHARS)?,
            name: checked_text("trial.name", &t.name, MAX_CANCEL_NAME_CHARS)?,
            dataset,
            params: params_from_wire(&t.params)?,
            split: SplitSpec {
                train_ratio: split_ratio,
                seed: t.split_seed,
            },
            checkpoint_every: t.checkpoint_every,
            program: t
                .program
                .as_ref()
                .map(|p| program_from_wire(p).map(Box::new))
                .transpose()?,
        };
        if spec.content_id() != id {
            return Err(invalid(
                "trial.trial_id",
                "does not match the trial's content (different sweep versions?)",
            ));
        }
        Ok(spec)
    }
}

impl From<&EpochMetrics> for v1::EpochMetrics {
    fn from(m: &EpochMetrics) -> Self {
        v1::EpochMetrics {
            epoch: m.epoch,
            train_loss: m.train_loss,
            train_accuracy: m.train_accuracy,
            test_accuracy: m.test_accuracy,
            seconds: m.seconds,
            scalars: m.scalars.iter().map(|(k, v)| (k.to_owned(), v)).collect(),
        }
    }
}

impl TryFrom<&v1::EpochMetrics> for EpochMetrics {
    type Error = DecodeError;

    /// Accuracies must be percentages, the loss (a cross-entropy) a finite number >= 0 (a
    /// worker whose loss stops being finite fails the trial instead of reporting the epoch), and
    /// the epoch's duration one that a clock can measure.
    fn try_from(m: &v1::EpochMetrics) -> Result<Self, Self::Error> {
        if m.epoch == 0 {
            return Err(invalid("metrics.epoch", "epochs start at 1"));
        }
        for (field, v) in [
            ("metrics.train_accuracy", m.train_accuracy),
            ("metrics.test_accuracy", m.test_accuracy),
        ] {
            if !(0.0..=100.0).contains(&v) {
                return Err(invalid(field, format!("{v} is not a percentage")));
            }
        }
        if !(m.train_loss.is_finite() && m.train_loss >= 0.0) {
            return Err(invalid(
                "metrics.train_loss",
                format!(
                    "{} is not a loss: a cross-entropy is a finite number >= 0 (a non-finite \
                     loss is a failure, FAILURE_KIND_NON_FINITE_LOSS)",
                    m.train_loss
                ),
            ));
        }
        Ok(EpochMetrics {
            epoch: m.epoch,
            train_loss: m.train_loss,
            train_accuracy: m.train_accuracy,
            test_accuracy: m.test_accuracy,
            seconds: seconds("metrics.seconds", m.seconds)?,
            scalars: scalars(&m.scalars)?,
        })
    }
}

/// An epoch's scalars, checked by `sweep_common::metrics`'s rules (count, names, values).
fn scalars(wire: &HashMap<String, f64>) -> Result<Scalars, DecodeError> {
    let m: Scalars = wire.iter().map(|(k, v)| (k.as_str(), *v)).collect();
    m.check().map_err(|e| invalid("metrics.scalars", e))?;
    Ok(m)
}

impl From<&ConfusionMatrix> for v1::ConfusionMatrix {
    fn from(m: &ConfusionMatrix) -> Self {
        v1::ConfusionMatrix {
            classes: u32::try_from(m.classes).unwrap_or(u32::MAX),
            counts: m.counts.clone(),
        }
    }
}

fn confusion(
    field: &'static str,
    m: Option<&v1::ConfusionMatrix>,
) -> Result<ConfusionMatrix, DecodeError> {
    let m = m.ok_or(DecodeError::Missing(field))?;
    let classes = m.classes as usize;
    if classes == 0 || classes > 1000 || m.counts.len() != classes * classes {
        return Err(invalid(
            field,
            format!(
                "{} counts for {} classes; expected classes x classes",
                m.counts.len(),
                m.classes
            ),
        ));
    }
    // The coordinator sums the counts to check them against the split sizes: a sum past u64
    // would panic (debug) or wrap into a plausible total (release).
    if m.counts
        .iter()
        .try_fold(0u64, |sum, &c| sum.checked_add(c))
        .is_none()
    {
        return Err(invalid(field, "the counts add up to more than 2^64"));
    }
    Ok(ConfusionMatrix {
        classes,
        counts: m.counts.clone(),
    })
}

impl From<&TrialResult> for v1::TrialResult {
    fn from(r: &TrialResult) -> Self {
        v1::TrialResult {
            epochs: r.epochs.iter().map(Into::into).collect(),
            train_accuracy: r.last.train_accuracy,
            test_accuracy: r.last.test_accuracy,
            train_confusion: Some((&r.last.train_confusion).into()),
            test_confusion: Some((&r.last.test_confusion).into()),
            train_seconds: r.last.train_seconds,
            dataset_images: r.last.dataset_images,
        }
    }
}

impl TryFrom<&v1::TrialResult> for TrialResult {
    type Error = DecodeError;

    fn try_from(r: &v1::TrialResult) -> Result<Self, Self::Error> {
        let epochs = r
            .epochs
            .iter()
            .map(EpochMetrics::try_from)
            .collect::<Result<Vec<_>, _>>()?;
        for (field, v) in [
            ("result.train_accuracy", r.train_accuracy),
            ("result.test_accuracy", r.test_accuracy),
        ] {
            if !(0.0..=100.0).contains(&v) {
                return Err(invalid(field, format!("{v} is not a percentage")));
            }
        }
        let train_seconds = seconds("result.train_seconds", r.train_seconds)?;
        Ok(TrialResult {
            epochs,
            last: FinalMetrics {
                train_accuracy: r.train_accuracy,
                test_accuracy: r.test_accuracy,
                train_confusion: confusion("result.train_confusion", r.train_confusion.as_ref())?,
                test_confusion: confusion("result.test_confusion", r.test_confusion.as_ref())?,
                train_seconds,
                dataset_images: r.dataset_images,
            },
        })
    }
}

// What a worker sends. Each message a worker builds comes from one function here, from domain
// values; a lease is (trial, attempt), as [`parse_lease`] decodes it.

impl From<&Registration> for v1::RegisterRequest {
    /// At this build's [`crate::PROTOCOL_VERSION`].
    fn from(r: &Registration) -> Self {
        v1::RegisterRequest {
            protocol_version: crate::PROTOCOL_VERSION.into(),
            worker_name: r.name.clone(),
            device: r.device.as_ref().map(|d| v1::Device {
                kind: d.kind.into(),
                index: d.index,
                name: d.name.clone(),
                memory_bytes: d.memory_bytes,
            }),
            slots: r.slots,
        }
    }
}

impl From<DeviceMemory> for v1::DeviceMemory {
    fn from(m: DeviceMemory) -> Self {
        v1::DeviceMemory {
            used_bytes: m.used,
            free_bytes: m.free,
            total_bytes: m.total,
        }
    }
}

/// A worker asking for a trial.
pub fn lease_request(worker: WorkerId) -> v1::LeaseRequest {
    v1::LeaseRequest {
        worker_id: worker.to_string(),
    }
}

/// A worker renewing `leases`, with its device's memory when it can tell.
pub fn heartbeat_request(
    worker: WorkerId,
    leases: &[(TrialId, u32)],
    memory: Option<DeviceMemory>,
) -> v1::HeartbeatRequest {
    v1::HeartbeatRequest {
        worker_id: worker.to_string(),
        leases: leases.iter().map(|&(t, a)| lease_ref(t, a)).collect(),
        memory: memory.map(Into::into),
    }
}

/// A worker reporting an epoch of the trial it leased.
pub fn report_epoch_request(
    worker: WorkerId,
    (trial, attempt): (TrialId, u32),
    metrics: &EpochMetrics,
) -> v1::ReportEpochRequest {
    v1::ReportEpochRequest {
        worker_id: worker.to_string(),
        lease: Some(lease_ref(trial, attempt)),
        metrics: Some(metrics.into()),
        batch: Vec::new(),
    }
}

/// A worker asking for the checkpoint its lease resumes from.
pub fn fetch_checkpoint_request(
    worker: WorkerId,
    (trial, attempt): (TrialId, u32),
) -> v1::FetchCheckpointRequest {
    v1::FetchCheckpointRequest {
        worker_id: worker.to_string(),
        lease: Some(lease_ref(trial, attempt)),
    }
}

/// How a worker's attempt at a trial ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Completion {
    /// Trained to the end.
    Result(TrialResult),
    /// Failed.
    Failure {
        /// Whose fault, and so whether it is tried again.
        kind: FailureKind,
        /// What happened, in any length and over any number of lines: it is sent as one line of
        /// at most [`MAX_MESSAGE_CHARS`] (a libtorch error carries a multi-line backtrace; the
        /// coordinator refuses control characters).
        message: String,
    },
}

/// A worker ending its lease with `completion`.
pub fn complete_request(
    worker: WorkerId,
    (trial, attempt): (TrialId, u32),
    completion: &Completion,
) -> v1::CompleteRequest {
    use v1::complete_request::Outcome;
    let outcome = match completion {
        Completion::Result(r) => Outcome::Result(r.into()),
        Completion::Failure { kind, message } => Outcome::Failure(v1::TrialFailure {
            kind: v1::FailureKind::from(*kind).into(),
            message: text::one_line(message, MAX_MESSAGE_CHARS),
        }),
    };
    v1::CompleteRequest {
        worker_id: worker.to_string(),
        lease: Some(lease_ref(trial, attempt)),
        outcome: Some(outcome),
    }
}

/// A file a worker uploads for its lease.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Artifact {
    /// The trial's state after `epoch` epochs, to resume from.
    Checkpoint {
        /// The epochs it holds.
        epoch: u32,
    },
    /// The trained model's weights.
    FinalWeights,
    /// A program trial's log of one of its output streams.
    ProgramLog(sweep_common::trial::LogStream),
}

/// The chunks that upload `bytes` as `artifact` of a lease, `sha256` its lowercase hex SHA-256:
/// the header on the first chunk only, at most [`crate::ARTIFACT_CHUNK_BYTES`] of data in each,
/// and one chunk (the header's) for an empty file.
pub fn artifact_chunks(
    worker: WorkerId,
    (trial, attempt): (TrialId, u32),
    artifact: Artifact,
    sha256: &str,
    bytes: &[u8],
) -> Vec<v1::ArtifactChunk> {
    let (kind, epoch) = match artifact {
        Artifact::Checkpoint { epoch } => (v1::ArtifactKind::Checkpoint, epoch),
        Artifact::FinalWeights => (v1::ArtifactKind::FinalWeights, 0),
        Artifact::ProgramLog(sweep_common::trial::LogStream::Stdout) => {
            (v1::ArtifactKind::ProgramStdout, 0)
        }
        Artifact::ProgramLog(sweep_common::trial::LogStream::Stderr) => {
            (v1::ArtifactKind::ProgramStderr, 0)
        }
    };
    let mut header = Some(v1::ArtifactHeader {
        worker_id: worker.to_string(),
        lease: Some(lease_ref(trial, attempt)),
        kind: kind.into(),
        size: bytes.len() as u64,
        sha256: sha256.to_owned(),
        epoch,
    });
    if bytes.is_empty() {
        return vec![v1::ArtifactChunk {
            header,
            data: Vec::new(),
        }];
    }
    bytes
        .chunks(crate::ARTIFACT_CHUNK_BYTES)
        .map(|data| v1::ArtifactChunk {
            header: header.take(),
            data: data.to_vec(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use sweep_common::grid::Grid;

    #[test]
    fn trial_spec_round_trips_and_checks_its_id() {
        let g = Grid::parse(
            "[sweep]\nname='s'\n[[experiment]]\nname='e'\ndataset='cifar10'\n[experiment.grid]\nlearning_rate=[0.1, 0.01]\n",
            "t.toml",
        )
        .unwrap();
        for t in g.trials() {
            let wire = v1::TrialSpec::from(t);
            assert_eq!(&TrialSpec::try_from(&wire).unwrap(), t);
            let mut tampered = wire.clone();
            let epochs = tampered
                .params
                .iter_mut()
                .find(|p| p.key == "epochs")
                .unwrap();
            epochs.value = Some(v1::hyper_param::Value::Int(11));
            assert!(TrialSpec::try_from(&tampered).is_err());
            let mut bad = wire.clone();
            bad.params[0].value = Some(v1::hyper_param::Value::Choice("gelu".into()));
            assert!(TrialSpec::try_from(&bad).is_err());
        }
    }

    #[test]
    fn promote_epochs_are_checked_against_the_table_and_need_trials() {
        let request = |trials: &[&str], experiments: &[&str], epochs| v1::PromoteRequest {
            trials: trials.iter().map(|s| (*s).to_owned()).collect(),
            experiments: experiments.iter().map(|s| (*s).to_owned()).collect(),
            epochs,
        };
        let p = Promote::try_from(&request(&["t"], &[], 4)).unwrap();
        assert_eq!(p.epochs, Some(4));
        assert_eq!(
            Promote::try_from(&request(&["t"], &[], 0)).unwrap().epochs,
            None
        );
        let too_many = Promote::try_from(&request(&["t"], &[], 100_001)).unwrap_err();
        assert_eq!(
            too_many.to_string(),
            "invalid field epochs: must be an integer from 1 to 100000, got 100001"
        );
        let of_experiment = Promote::try_from(&request(&[], &["e"], 4)).unwrap_err();
        assert!(
            of_experiment.to_string().contains("not to experiments"),
            "{of_experiment}"
        );
    }

    /// Gives fixed facts for any `.npz` the grid names.
    struct Facts;

    impl sweep_common::dataset::OwnDataReader for Facts {
        fn read(&self, _: &std::path::Path, file: &str) -> Result<OwnFacts, String> {
            Ok(OwnFacts {
                file: file.to_owned(),
                path: format!("/data/{file}"),
                sha256: "e".repeat(64),
                shape: [3, 4, 4],
                train_len: 20,
                test_len: 5,
                class_names: vec!["x".into(), "y".into()],
            })
        }
    }

    #[test]
    fn an_own_data_trial_round_trips_and_its_facts_are_checked() {
        let g = Grid::parse_with(
            "[sweep]\nname='s'\n[[experiment]]\nname='e'\ndataset='own.npz'\n",
            "t.toml",
            &Facts,
        )
        .unwrap();
        let t = g.trials().next().unwrap();
        let wire = v1::TrialSpec::from(t);
        assert_eq!(wire.dataset, "own.npz");
        assert_eq!(wire.own_data.as_ref().unwrap().shape, [3, 4, 4]);
        assert_eq!(&TrialSpec::try_from(&wire).unwrap(), t);
        let refused = |f: fn(&mut v1::TrialSpec)| {
            let mut bad = wire.clone();
            f(&mut bad);
            TrialSpec::try_from(&bad).unwrap_err().to_string()
        };
        // Another file's content: another id.
        let e = refused(|w| w.own_data.as_mut().unwrap().sha256 = "f".repeat(64));
        assert!(e.contains("trial.trial_id"), "{e}");
        let e = refused(|w| w.own_data.as_mut().unwrap().shape = vec![3, 4]);
        assert!(e.contains("trial.own_data.shape"), "{e}");
        let e = refused(|w| w.own_data.as_mut().unwrap().class_names.clear());
        assert!(e.contains("trial.own_data"), "{e}");
        let e = refused(|w| w.dataset = "other.npz".into());
        assert!(e.contains("trial.dataset"), "{e}");
        // Without its facts, a file name is an unknown dataset.
        let e = refused(|w| w.own_data = None);
        assert!(e.contains("unknown dataset"), "{e}");
    }

    #[test]
    fn every_failure_a_worker_sends_round_trips() {
        for kind in FailureKind::ALL {
            let wire = v1::FailureKind::from(kind);
            let back = failure_kind(wire.into());
            match kind {
                FailureKind::LeaseExpired
                | FailureKind::Cancelled
                | FailureKind::WeightsMissing => {
                    assert_eq!(
                        back,
                        FailureKind::Internal,
                        "{kind}: not a worker's to send"
                    );
                }
                _ => assert_eq!(back, kind),
            }
        }
        assert_eq!(failure_kind(999), FailureKind::Internal);
    }

    #[test]
    fn hyperparameters_decode_by_key_or_name_the_field() {
        use v1::hyper_param::Value as Wire;
        let g = Grid::parse(
            "[sweep]\nname='s'\n[[experiment]]\nname='e'\ndataset='cifar10'\n",
            "t.toml",
        )
        .unwrap();
        let t = g.trials().next().unwrap();
        let wire = v1::TrialSpec::from(t);
        // Every hyperparameter the id names, by key, in the table's order.
        let keys: Vec<&str> = wire.params.iter().map(|p| p.key.as_str()).collect();
        let named: Vec<&str> = t.params.named().map(|(p, _)| p.key()).collect();
        assert_eq!(keys, named);
        assert_eq!(keys[..8], sweep_common::grid::Param::KEYS[..8]);
        let decode = |edit: &dyn Fn(&mut Vec<v1::HyperParam>)| {
            let mut w = wire.clone();
            edit(&mut w.params);
            TrialSpec::try_from(&w)
        };
        assert_eq!(decode(&|_| ()).as_ref(), Ok(t));
        // In any order.
        assert_eq!(decode(&|p| p.reverse()).as_ref(), Ok(t));
        assert_eq!(
            decode(&|p| drop(p.remove(1))),
            Err(DecodeError::Missing("trial.hidden_layers"))
        );
        assert_eq!(
            decode(&|p| p.push(p[2].clone())).unwrap_err().to_string(),
            "invalid field trial.hidden_width: given twice"
        );
        assert_eq!(
            decode(&|p| p[0].value = None).unwrap_err().to_string(),
            "invalid field trial.activation: has no value; it must be \"relu\", \"tanh\" or \"sigmoid\""
        );
        assert_eq!(
            decode(&|p| p[0].value = Some(Wire::Int(1)))
                .unwrap_err()
                .to_string(),
            "invalid field trial.activation: must be \"relu\", \"tanh\" or \"sigmoid\", got 1"
        );
        assert_eq!(
            decode(&|p| p[1].value = Some(Wire::Int(65)))
                .unwrap_err()
                .to_string(),
            "invalid field trial.hidden_layers: must be an integer from 0 to 64, got 65"
        );
        assert_eq!(
            decode(&|p| p.push(v1::HyperParam {
                key: "temperature".into(),
                value: Some(Wire::Float(0.9)),
            }))
            .unwrap_err()
            .to_string(),
            "invalid field trial.params: unknown hyperparameter \"temperature\""
        );
    }

    #[test]
    fn results_decode_or_name_the_field() {
        let m = ConfusionMatrix {
            classes: 2,
            counts: vec![3, 1, 0, 4],
        };
        let r = TrialResult {
            epochs: vec![EpochMetrics {
                epoch: 1,
                train_loss: 0.5,
                train_accuracy: 80.0,
                test_accuracy: 75.0,
                seconds: 1.0,
                scalars: Default::default(),
            }],
            last: FinalMetrics {
                train_accuracy: 87.5,
                test_accuracy: 75.0,
                train_confusion: m.clone(),
                test_confusion: m,
                train_seconds: 2.0,
                dataset_images: 10,
            },
        };
        let wire = v1::TrialResult::from(&r);
        assert_eq!(TrialResult::try_from(&wire).unwrap(), r);
        let mut bad = wire.clone();
        bad.test_confusion = None;
        assert_eq!(
            TrialResult::try_from(&bad),
            Err(DecodeError::Missing("result.test_confusion"))
        );
        let mut bad = wire;
        bad.train_confusion.as_mut().unwrap().counts.pop();
        assert!(
            TrialResult::try_from(&bad)
                .unwrap_err()
                .to_string()
                .contains("result.train_confusion")
        );
        assert!(parse_lease(None).is_err());
        assert!(
            parse_lease(Some(&v1::LeaseRef {
                trial_id: "x".into(),
                attempt: 1
            }))
            .is_err()
        );
    }

    #[test]
    fn what_a_worker_sends_decodes_as_sent() {
        let worker = WorkerId::random();
        let trial = TrialId::from_content("t");
        let lease = (trial, 2);
        let worker_of = |id: &str| id.parse::<WorkerId>().unwrap();

        let registration = Registration {
            name: "w1".into(),
            device: Some(Device {
                kind: v1::DeviceKind::Cuda,
                index: 1,
                name: "NVIDIA H200".into(),
                memory_bytes: 1 << 37,
            }),
            slots: 3,
        };
        let wire = v1::RegisterRequest::from(&registration);
        assert_eq!(wire.protocol_version, i32::from(crate::PROTOCOL_VERSION));
        assert_eq!(Registration::try_from(&wire), Ok(registration));

        assert_eq!(worker_of(&lease_request(worker).worker_id), worker);

        let memory = DeviceMemory {
            used: 3,
            free: 5,
            total: 8,
        };
        let beat = heartbeat_request(worker, &[lease], Some(memory));
        assert_eq!(worker_of(&beat.worker_id), worker);
        assert_eq!(beat.leases.len(), 1);
        assert_eq!(parse_lease(beat.leases.first()), Ok(lease));
        let sent = beat.memory.as_ref().map(DeviceMemory::try_from);
        assert_eq!(sent, Some(Ok(memory)));
        assert_eq!(heartbeat_request(worker, &[], None).memory, None);

        let metrics = EpochMetrics {
            epoch: 1,
            train_loss: 0.5,
            train_accuracy: 80.0,
            test_accuracy: 75.0,
            seconds: 1.0,
            scalars: [("val_loss", 0.25), ("lr", 1e-3)].into_iter().collect(),
        };
        let report = report_epoch_request(worker, lease, &metrics);
        assert_eq!(parse_lease(report.lease.as_ref()), Ok(lease));
        let sent = report.metrics.as_ref().map(EpochMetrics::try_from);
        assert_eq!(sent, Some(Ok(metrics)));

        let fetch = fetch_checkpoint_request(worker, lease);
        assert_eq!(worker_of(&fetch.worker_id), worker);
        assert_eq!(parse_lease(fetch.lease.as_ref()), Ok(lease));
    }

    #[test]
    fn an_epochs_scalars_are_checked() {
        let epoch = |scalars: &[(&str, f64)]| v1::EpochMetrics {
            epoch: 1,
            test_accuracy: 50.0,
            scalars: scalars.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect(),
            ..Default::default()
        };
        let ok = EpochMetrics::try_from(&epoch(&[("val_loss", 0.5)])).unwrap();
        assert_eq!(ok.scalars.get("val_loss"), Some(0.5));
        for bad in [
            &[("val loss", 0.5)][..],
            &[("x", f64::NAN)],
            &[("test_accuracy", 1.0)],
        ] {
            let e = EpochMetrics::try_from(&epoch(bad)).unwrap_err();
            assert!(e.to_string().contains("metrics.scalars"), "{bad:?}: {e}");
        }
    }

    #[test]
    fn a_failure_goes_as_one_line_the_coordinator_accepts() {
        use v1::complete_request::Outcome;
        let lease = (TrialId::from_content("t"), 1);
        // A libtorch error: a message, then a backtrace of many lines.
        let mut message = "CUDA out of memory. Tried to allocate 2.00 GiB.\nException raised from \
                           malloc at /pytorch/c10/cuda/CUDACachingAllocator.cpp:1165"
            .to_owned();
        for frame in 0..400 {
            message.push_str(&format!(
                "\nframe #{frame}: at::native::op() + 0x{frame:x}\t(libtorch.so)"
            ));
        }
        let completion = Completion::Failure {
            kind: FailureKind::OutOfMemory,
            message,
        };
        let request = complete_request(WorkerId::random(), lease, &completion);
        assert_eq!(parse_lease(request.lease.as_ref()), Ok(lease));
        let Some(Outcome::Failure(f)) = &request.outcome else {
            panic!("not a failure: {:?}", request.outcome);
        };
        assert_eq!(failure_kind(f.kind), FailureKind::OutOfMemory);
        let sent = failure_message(f).unwrap();
        assert!(sent.starts_with("CUDA out of memory. Tried to allocate 2.00 GiB. Exception"));
        assert!(sent.ends_with("...") && sent.chars().count() <= MAX_MESSAGE_CHARS);
    }

    #[test]
    fn artifacts_go_in_chunks_with_one_header() {
        let worker = WorkerId::random();
        let lease = (TrialId::from_content("t"), 3);
        let empty = artifact_chunks(worker, lease, Artifact::FinalWeights, "e3b0", &[]);
        assert_eq!(empty.len(), 1);
        let header = empty[0].header.as_ref().unwrap();
        assert_eq!(header.kind, i32::from(v1::ArtifactKind::FinalWeights));
        assert_eq!(
            (header.size, header.epoch, header.sha256.as_str()),
            (0, 0, "e3b0")
        );
        assert!(empty[0].data.is_empty());

        let bytes: Vec<u8> = (0..2 * crate::ARTIFACT_CHUNK_BYTES + 5)
            .map(|i| (i % 251) as u8)
            .collect();
        let chunks = artifact_chunks(
            worker,
            lease,
            Artifact::Checkpoint { epoch: 4 },
            "ab",
            &bytes,
        );
        assert_eq!(chunks.len(), 3);
        let header = chunks[0].header.as_ref().unwrap();
        assert_eq!(header.kind, i32::from(v1::ArtifactKind::Checkpoint));
        assert_eq!((header.size, header.epoch), (bytes.len() as u64, 4));
        assert_eq!(parse_lease(header.lease.as_ref()), Ok(lease));
        assert_eq!(header.worker_id.parse::<WorkerId>().unwrap(), worker);
        assert!(chunks[1..].iter().all(|c| c.header.is_none()));
        assert!(
            chunks
                .iter()
                .all(|c| c.data.len() <= crate::ARTIFACT_CHUNK_BYTES)
        );
        let sent: Vec<u8> = chunks.iter().flat_map(|c| c.data.clone()).collect();
        assert_eq!(sent, bytes);
    }

    #[test]
    fn a_program_trial_round_trips_and_what_runs_is_checked() {
        let text = "[sweep]\nname = 's'\n[[experiment]]\nname = 'p'\ndataset = 'cifar10'\nprogram = ['python3', 't.py', '{lr}']\nenv = { A = 'b' }\n[experiment.params]\nlr = [0.5, 0.25]\nopt = 'adam'\nbn = true\nwidth = 3\n";
        let grid = Grid::parse(text, "g.toml").unwrap();
        let spec = grid.trials().nth(1).unwrap().clone();
        let wire = v1::TrialSpec::from(&spec);
        assert_eq!(TrialSpec::try_from(&wire).unwrap(), spec);
        // A worker runs nothing but what the grid said: another argv is another id.
        let mut tampered = wire.clone();
        if let Some(p) = tampered.program.as_mut() {
            p.argv[2] = "0.125".into();
        }
        let err = TrialSpec::try_from(&tampered).unwrap_err().to_string();
        assert!(err.contains("trial.trial_id"), "{err}");
        // Bad fields are named, never a panic.
        let mut bad = wire.clone();
        if let Some(p) = bad.program.as_mut() {
            p.argv.clear();
        }
        let err = TrialSpec::try_from(&bad).unwrap_err().to_string();
        assert!(err.contains("trial.program.argv"), "{err}");
        let mut bad = wire.clone();
        if let Some(p) = bad.program.as_mut() {
            p.env.insert("SWEEP_WORKER_TOKEN".into(), "x".into());
        }
        let err = TrialSpec::try_from(&bad).unwrap_err().to_string();
        assert!(err.contains("trial.program.env"), "{err}");
        let mut bad = wire;
        if let Some(p) = bad.program.as_mut() {
            p.params[0].value = None;
        }
        let err = TrialSpec::try_from(&bad).unwrap_err().to_string();
        assert!(err.contains("trial.program.params"), "{err}");
    }
}
