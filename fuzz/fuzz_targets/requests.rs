//! The sweep.v1 decoders on arbitrary bytes, checked as the coordinator and worker use them:
//! never a panic, and what converts keeps the domain's invariants
//! (`proto/tests/support/requests.rs`).
//!
//! The first byte picks the mode. Below 128 it picks the message (every request, and the
//! responses a worker decodes) and the rest is decoded with prost as it is. From 128 the rest
//! fills the fields of a valid message, each one kept or replaced by an arbitrary value, which
//! is then encoded, decoded and converted: random bytes seldom get past the first check of a
//! conversion, and this reaches every one of them.

#![no_main]

use libfuzzer_sys::arbitrary::{Arbitrary, Result, Unstructured};
use libfuzzer_sys::fuzz_target;
use prost::Message;
use sweep_common::grid::Grid;
use sweep_proto::v1;

#[path = "../../proto/tests/support/requests.rs"]
mod requests;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let (which, bytes) = if mode < 128 {
        (usize::from(mode), rest.to_vec())
    } else {
        match structured(mode - 128, &mut Unstructured::new(rest)) {
            Ok(message) => message,
            Err(_) => return,
        }
    };
    if let Err(e) = requests::decode_and_convert(which, &bytes) {
        panic!("{e}");
    }
});

/// `valid`, or an arbitrary value instead.
fn pick<'a, T: Arbitrary<'a>>(u: &mut Unstructured<'a>, valid: T) -> Result<T> {
    Ok(if u.arbitrary::<bool>()? {
        u.arbitrary()?
    } else {
        valid
    })
}

/// A message (its index in `requests::MESSAGES` and its encoding) built from a valid one: a
/// report, a result, an assignment, a registration, a heartbeat with memory, a failure, a
/// cancel.
fn structured(kind: u8, u: &mut Unstructured<'_>) -> Result<(usize, Vec<u8>)> {
    let lease = Some(v1::LeaseRef {
        trial_id: pick(u, "6f1c1f4e-8d2b-5a8e-9c1b-2f7d3e4a5b6c".to_owned())?,
        attempt: pick(u, 1)?,
    });
    let worker_id = "6f1c1f4e-8d2b-5a8e-9c1b-2f7d3e4a5b6c".to_owned();
    Ok(match kind % 7 {
        3 => (
            0,
            v1::RegisterRequest {
                protocol_version: 1,
                worker_name: pick(u, "gpu-node-1".to_owned())?,
                device: Some(v1::Device {
                    kind: pick(u, 2)?,
                    index: 0,
                    name: pick(u, "NVIDIA H100".to_owned())?,
                    memory_bytes: pick(u, 80 << 30)?,
                }),
                slots: pick(u, 2)?,
            }
            .encode_to_vec(),
        ),
        4 => (
            2,
            v1::HeartbeatRequest {
                worker_id,
                leases: lease.into_iter().collect(),
                memory: Some(v1::DeviceMemory {
                    used_bytes: pick(u, 1 << 30)?,
                    free_bytes: pick(u, 2 << 30)?,
                    total_bytes: pick(u, 4 << 30)?,
                }),
            }
            .encode_to_vec(),
        ),
        5 => (
            4,
            v1::CompleteRequest {
                worker_id,
                lease,
                outcome: Some(v1::complete_request::Outcome::Failure(v1::TrialFailure {
                    kind: pick(u, 1)?,
                    message: pick(u, "dataset file missing".to_owned())?,
                })),
            }
            .encode_to_vec(),
        ),
        6 => (
            10,
            v1::CancelRequest {
                trials: pick(u, vec!["t_1".to_owned()])?,
                experiments: pick(u, vec![])?,
                all: u.arbitrary()?,
                reason: pick(u, "wrong learning rate".to_owned())?,
            }
            .encode_to_vec(),
        ),
        0 => (
            3,
            v1::ReportEpochRequest {
                worker_id,
                lease,
                metrics: Some(metrics(u)?),
                batch: Vec::new(),
            }
            .encode_to_vec(),
        ),
        1 => (
            4,
            v1::CompleteRequest {
                worker_id,
                lease,
                outcome: Some(v1::complete_request::Outcome::Result(result(u)?)),
            }
            .encode_to_vec(),
        ),
        _ => (
            7,
            v1::LeaseResponse {
                outcome: Some(v1::lease_response::Outcome::Assignment(v1::Assignment {
                    lease,
                    trial: Some(trial(u)?),
                    resume: None,
                })),
            }
            .encode_to_vec(),
        ),
    })
}

fn metrics(u: &mut Unstructured<'_>) -> Result<v1::EpochMetrics> {
    Ok(v1::EpochMetrics {
        epoch: pick(u, 1)?,
        train_loss: pick(u, 0.5)?,
        train_accuracy: pick(u, 80.0)?,
        test_accuracy: pick(u, 75.0)?,
        seconds: pick(u, 1.0)?,
        scalars: Default::default(),
    })
}

fn matrix(u: &mut Unstructured<'_>) -> Result<v1::ConfusionMatrix> {
    Ok(v1::ConfusionMatrix {
        classes: pick(u, 2)?,
        counts: if u.arbitrary::<bool>()? {
            (0..4).map(|_| u.arbitrary()).collect::<Result<_>>()?
        } else {
            pick(u, vec![3, 1, 0, 4])?
        },
    })
}

fn result(u: &mut Unstructured<'_>) -> Result<v1::TrialResult> {
    let epochs = if u.arbitrary::<bool>()? {
        (0..u.int_in_range(0..=3)?)
            .map(|_| metrics(u))
            .collect::<Result<_>>()?
    } else {
        vec![metrics(u)?]
    };
    Ok(v1::TrialResult {
        epochs,
        train_accuracy: pick(u, 87.5)?,
        test_accuracy: pick(u, 75.0)?,
        train_confusion: Some(matrix(u)?),
        test_confusion: Some(matrix(u)?),
        train_seconds: pick(u, 2.0)?,
        dataset_images: pick(u, 10)?,
    })
}

/// A valid trial with arbitrary hyperparameters; its id recomputed from them (as a coordinator
/// would) or not.
fn trial(u: &mut Unstructured<'_>) -> Result<v1::TrialSpec> {
    let grid = Grid::parse(
        "[sweep]\nname = 's'\n[[experiment]]\nname = 'e'\ndataset = 'cifar10'\n",
        "t.toml",
    )
    .map_err(|_| libfuzzer_sys::arbitrary::Error::IncorrectFormat)?;
    let Some(mut spec) = grid.trials().next().cloned() else {
        return Err(libfuzzer_sys::arbitrary::Error::IncorrectFormat);
    };
    let p = &mut spec.params;
    p.hidden_layers = pick(u, p.hidden_layers)?;
    p.hidden_width = pick(u, p.hidden_width)?;
    p.learning_rate = pick(u, p.learning_rate)?;
    p.batch_size = pick(u, p.batch_size)?;
    p.epochs = pick(u, p.epochs)?;
    p.train_fraction = pick(u, p.train_fraction)?;
    p.seed = pick(u, p.seed)?;
    spec.split.train_ratio = pick(u, spec.split.train_ratio)?;
    spec.experiment = pick(u, spec.experiment.clone())?;
    if u.arbitrary::<bool>()? {
        spec.id = spec.content_id();
    }
    let mut wire = v1::TrialSpec::from(&spec);
    for param in &mut wire.params {
        param.key = pick(u, param.key.clone())?;
        if let Some(v1::hyper_param::Value::Choice(name)) = &mut param.value {
            *name = pick(u, name.clone())?;
        }
    }
    if u.arbitrary::<bool>()? {
        let i = u.choose_index(wire.params.len())?;
        let copy = wire.params[i].clone();
        wire.params.push(copy);
    }
    if u.arbitrary::<bool>()? && !wire.params.is_empty() {
        let i = u.choose_index(wire.params.len())?;
        wire.params.remove(i);
    }
    wire.dataset = pick(u, wire.dataset)?;
    Ok(wire)
}
