//! Valid messages and domain values: the starting points of the tampering strategies, the
//! mutation tests and the fuzz seeds.

use prost::Message;
use sweep_common::grid::Grid;
use sweep_common::{ConfusionMatrix, EpochMetrics, FinalMetrics, TrialResult, TrialSpec};
use sweep_proto::v1;

/// The one trial of a minimal grid: a valid spec whose id matches its content.
pub fn valid_trial() -> TrialSpec {
    let grid = Grid::parse(
        "[sweep]\nname = 's'\n[[experiment]]\nname = 'e'\ndataset = 'cifar10'\n",
        "t.toml",
    )
    .expect("a valid grid");
    grid.trials().next().expect("one trial").clone()
}

pub fn valid_result() -> TrialResult {
    let m = ConfusionMatrix {
        classes: 2,
        counts: vec![3, 1, 0, 4],
    };
    TrialResult {
        epochs: vec![valid_epoch()],
        last: FinalMetrics {
            train_accuracy: 87.5,
            test_accuracy: 75.0,
            train_confusion: m.clone(),
            test_confusion: m,
            train_seconds: 2.0,
            dataset_images: 10,
        },
    }
}

pub fn valid_epoch() -> EpochMetrics {
    EpochMetrics {
        epoch: 1,
        train_loss: 0.5,
        train_accuracy: 80.0,
        test_accuracy: 75.0,
        seconds: 1.0,
        scalars: Default::default(),
    }
}

/// Valid encodings of the requests that carry the most structure.
pub fn valid_encodings() -> Vec<(usize, Vec<u8>)> {
    let spec = &valid_trial();
    let lease = Some(sweep_proto::lease_ref(spec.id, 1));
    let result = valid_result();
    let epoch = valid_epoch();
    vec![
        (
            4,
            v1::CompleteRequest {
                worker_id: "6f1c1f4e-8d2b-5a8e-9c1b-2f7d3e4a5b6c".into(),
                lease: lease.clone(),
                outcome: Some(v1::complete_request::Outcome::Result((&result).into())),
            }
            .encode_to_vec(),
        ),
        (
            3,
            v1::ReportEpochRequest {
                worker_id: "6f1c1f4e-8d2b-5a8e-9c1b-2f7d3e4a5b6c".into(),
                lease: lease.clone(),
                metrics: Some((&epoch).into()),
                batch: Vec::new(),
            }
            .encode_to_vec(),
        ),
        (
            3,
            v1::ReportEpochRequest {
                worker_id: "6f1c1f4e-8d2b-5a8e-9c1b-2f7d3e4a5b6c".into(),
                lease: lease.clone(),
                metrics: None,
                batch: (1..=3)
                    .map(|n| sweep_common::EpochMetrics {
                        epoch: n,
                        ..epoch.clone()
                    })
                    .map(|m| (&m).into())
                    .collect(),
            }
            .encode_to_vec(),
        ),
        (
            7,
            v1::LeaseResponse {
                outcome: Some(v1::lease_response::Outcome::Assignment(v1::Assignment {
                    lease: lease.clone(),
                    trial: Some(spec.into()),
                    resume: Some(v1::CheckpointRef {
                        epoch: 1,
                        size: 10,
                        sha256: "0".repeat(64),
                    }),
                })),
            }
            .encode_to_vec(),
        ),
    ]
}
