//! Conversions between wire messages and domain types.

use sweep_common::grid::{ParamError, Raw, Value};
use sweep_common::{
    ConfusionMatrix, DatasetKind, EpochMetrics, FailureKind, HyperParams, SplitSpec, TrialId,
    TrialResult, TrialSpec,
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
            FailureKind::LeaseExpired | FailureKind::Cancelled => v1::FailureKind::Unspecified,
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
        }
    }
}

impl TryFrom<&v1::TrialSpec> for TrialSpec {
    type Error = DecodeError;

    /// Decodes and checks a trial: the id must be the UUID v5 of the content.
    fn try_from(t: &v1::TrialSpec) -> Result<Self, Self::Error> {
        let id = parse_trial_id("trial.trial_id", &t.trial_id)?;
        let dataset: DatasetKind =
            t.dataset
                .parse()
                .map_err(|e: sweep_common::dataset::UnknownDataset| {
                    invalid("trial.dataset", e.to_string())
                })?;
        let split_ratio = t.split_ratio;
        if !(split_ratio.is_finite() && split_ratio > 0.0 && split_ratio < 1.0) {
            return Err(invalid(
                "trial.split_ratio",
                format!("{split_ratio} is not a fraction in (0, 1)"),
            ));
        }
        let spec = TrialSpec {
            id,
            experiment: t.experiment.clone(),
            name: t.name.clone(),
            dataset,
            params: params_from_wire(&t.params)?,
            split: SplitSpec {
                train_ratio: split_ratio,
                seed: t.split_seed,
            },
            checkpoint_every: t.checkpoint_every,
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
        }
    }
}

impl TryFrom<&v1::EpochMetrics> for EpochMetrics {
    type Error = DecodeError;

    /// Accuracies must be percentages; the loss may be non-finite (the coordinator decides).
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
        if !(m.seconds.is_finite() && m.seconds >= 0.0) {
            return Err(invalid("metrics.seconds", "must be a finite number >= 0"));
        }
        Ok(EpochMetrics {
            epoch: m.epoch,
            train_loss: m.train_loss,
            train_accuracy: m.train_accuracy,
            test_accuracy: m.test_accuracy,
            seconds: m.seconds,
        })
    }
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
            train_accuracy: r.train_accuracy,
            test_accuracy: r.test_accuracy,
            train_confusion: Some((&r.train_confusion).into()),
            test_confusion: Some((&r.test_confusion).into()),
            train_seconds: r.train_seconds,
            dataset_images: r.dataset_images,
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
        if !(r.train_seconds.is_finite() && r.train_seconds >= 0.0) {
            return Err(invalid(
                "result.train_seconds",
                "must be a finite number >= 0",
            ));
        }
        Ok(TrialResult {
            epochs,
            train_accuracy: r.train_accuracy,
            test_accuracy: r.test_accuracy,
            train_confusion: confusion("result.train_confusion", r.train_confusion.as_ref())?,
            test_confusion: confusion("result.test_confusion", r.test_confusion.as_ref())?,
            train_seconds: r.train_seconds,
            dataset_images: r.dataset_images,
        })
    }
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
    fn every_failure_a_worker_sends_round_trips() {
        for kind in FailureKind::ALL {
            let wire = v1::FailureKind::from(kind);
            let back = failure_kind(wire.into());
            match kind {
                FailureKind::LeaseExpired | FailureKind::Cancelled => {
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
                key: "momentum".into(),
                value: Some(Wire::Float(0.9)),
            }))
            .unwrap_err()
            .to_string(),
            "invalid field trial.params: unknown hyperparameter \"momentum\""
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
            }],
            train_accuracy: 87.5,
            test_accuracy: 75.0,
            train_confusion: m.clone(),
            test_confusion: m,
            train_seconds: 2.0,
            dataset_images: 10,
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
}
