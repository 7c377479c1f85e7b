//! Property tests of the `sweep.v1` decoders on hostile input: arbitrary bytes decoded as every
//! request (and every response a worker decodes), messages with arbitrary field values, and
//! valid encodings mutated at random, each converted into domain types as the coordinator and
//! worker do (`support/requests.rs`).
//!
//! Never a panic, and what a conversion accepts keeps the domain's invariants.
//! `PROPTEST_CASES=100000 cargo test --release -p sweep-proto --test decode_requests` runs them
//! longer; `fuzz/` has the coverage-guided version.

mod support;

use proptest::prelude::*;
use prost::Message;
use support::fixtures::{valid_encodings, valid_result, valid_trial};
use support::requests;
use sweep_proto::v1;

/// Cases per property: 512, or `PROPTEST_CASES`.
fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(512)
}

fn check(result: Result<(), String>) -> Result<(), TestCaseError> {
    result.map_err(TestCaseError::fail)
}

/// Strings that are sometimes ids, sometimes nearly, sometimes anything.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        Just("6f1c1f4e-8d2b-5a8e-9c1b-2f7d3e4a5b6c".to_owned()),
        Just("6F1C1F4E8D2B5A8E9C1B2F7D3E4A5B6C".to_owned()),
        Just("{6f1c1f4e-8d2b-5a8e-9c1b-2f7d3e4a5b6c}".to_owned()),
        Just("urn:uuid:6f1c1f4e-8d2b-5a8e-9c1b-2f7d3e4a5b6c".to_owned()),
        Just("cifar10".to_owned()),
        Just("fashion-mnist".to_owned()),
        Just("w\n2026-01-01T00:00:00Z  INFO sweep finished: all trials succeeded".to_owned()),
        Just("ru\u{200b}n".to_owned()),
        Just("\u{202e}gpj.exe".to_owned()),
        Just("\x1b[2J\x1b[31mred".to_owned()),
        Just("x".repeat(5000)),
        "[a-z\\x00-\\x1f\\x7f\\u{85}\\u{200b}-\\u{200f}\\u{2028}-\\u{202e}\\u{2066}-\\u{2069}\\u{feff}]{0,12}",
        ".{0,40}",
    ]
}

fn number() -> impl Strategy<Value = f64> {
    prop_oneof![
        any::<f64>(),
        Just(f64::NAN),
        Just(f64::INFINITY),
        Just(f64::NEG_INFINITY),
        Just(-0.0),
        Just(0.0),
        Just(100.0),
        Just(100.000_000_000_1),
        -1.0..101.0,
    ]
}

fn small() -> impl Strategy<Value = u32> {
    prop_oneof![
        Just(0u32),
        Just(1),
        Just(2),
        Just(10),
        Just(u32::MAX),
        any::<u32>()
    ]
}

fn big() -> impl Strategy<Value = u64> {
    prop_oneof![
        Just(0u64),
        Just(1),
        Just(u64::MAX),
        Just(u64::MAX / 2 + 1),
        any::<u64>()
    ]
}

fn enum_value() -> impl Strategy<Value = i32> {
    prop_oneof![
        Just(0i32),
        Just(1),
        Just(2),
        Just(3),
        Just(6),
        Just(-1),
        any::<i32>()
    ]
}

fn lease() -> impl Strategy<Value = Option<v1::LeaseRef>> {
    prop::option::of(
        (text(), small()).prop_map(|(trial_id, attempt)| v1::LeaseRef { trial_id, attempt }),
    )
}

fn metrics() -> impl Strategy<Value = v1::EpochMetrics> {
    (small(), number(), number(), number(), number()).prop_map(
        |(epoch, train_loss, train_accuracy, test_accuracy, seconds)| v1::EpochMetrics {
            epoch,
            train_loss,
            train_accuracy,
            test_accuracy,
            seconds,
            scalars: Default::default(),
        },
    )
}

/// Matrices of every shape, with counts that may overflow when summed.
fn confusion() -> impl Strategy<Value = Option<v1::ConfusionMatrix>> {
    prop::option::of((small(), 0usize..5).prop_flat_map(|(classes, side)| {
        let len = prop_oneof![
            Just(side * side),
            Just((classes as usize).min(12).pow(2)),
            0usize..30
        ];
        (Just(classes), len).prop_flat_map(|(classes, len)| {
            prop::collection::vec(big(), len)
                .prop_map(move |counts| v1::ConfusionMatrix { classes, counts })
        })
    }))
}

fn trial_result() -> impl Strategy<Value = v1::TrialResult> {
    (
        prop::collection::vec(metrics(), 0..4),
        number(),
        number(),
        confusion(),
        confusion(),
        number(),
        big(),
    )
        .prop_map(
            |(epochs, train_accuracy, test_accuracy, train, test, train_seconds, images)| {
                v1::TrialResult {
                    epochs,
                    train_accuracy,
                    test_accuracy,
                    train_confusion: train,
                    test_confusion: test,
                    train_seconds,
                    dataset_images: images,
                }
            },
        )
}

/// Keys that are hyperparameters, nearly, or anything.
fn param_key() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(sweep_common::grid::Param::KEYS.to_vec()).prop_map(str::to_owned),
        Just("temperature".to_owned()),
        text(),
    ]
}

fn param_value() -> impl Strategy<Value = Option<v1::hyper_param::Value>> {
    use v1::hyper_param::Value;
    prop::option::of(prop_oneof![
        big().prop_map(Value::Int),
        number().prop_map(Value::Float),
        prop_oneof![Just("relu".to_owned()), Just("gelu".to_owned()), text()]
            .prop_map(Value::Choice),
    ])
}

fn hyper_params() -> impl Strategy<Value = Vec<v1::HyperParam>> {
    prop::collection::vec(
        (param_key(), param_value()).prop_map(|(key, value)| v1::HyperParam { key, value }),
        0..12,
    )
}

/// An own data set's facts as a peer might send them: any text, shapes and counts.
fn own_data() -> impl Strategy<Value = v1::OwnData> {
    (
        (text(), text(), text()),
        prop::collection::vec(small(), 0..5),
        (big(), big()),
        prop::collection::vec(text(), 0..4),
    )
        .prop_map(
            |((file, path, sha256), shape, (train_len, test_len), class_names)| v1::OwnData {
                file,
                path,
                sha256,
                shape,
                train_len,
                test_len,
                class_names,
            },
        )
}

fn trial_spec() -> impl Strategy<Value = v1::TrialSpec> {
    (
        (text(), text(), text(), text()),
        hyper_params(),
        (number(), big(), small()),
        prop::option::of(own_data()),
    )
        .prop_map(
            |(
                (trial_id, experiment, name, dataset),
                params,
                (split_ratio, split_seed, checkpoint_every),
                own_data,
            )| v1::TrialSpec {
                trial_id,
                experiment,
                name,
                dataset,
                params,
                split_ratio,
                split_seed,
                checkpoint_every,
                program: None,
                own_data,
            },
        )
}

/// A valid trial (its id matches its content) with one field replaced by an arbitrary value,
/// so that the range checks after the id check are reached.
fn tampered_trial() -> impl Strategy<Value = v1::TrialSpec> {
    (0usize..11, small(), number(), big(), text()).prop_map(|(field, n, x, u, t)| {
        let mut spec = valid_trial();
        let p = &mut spec.params;
        match field {
            0 => p.hidden_layers = n,
            1 => p.hidden_width = n,
            2 => p.batch_size = n,
            3 => p.epochs = n,
            4 => p.learning_rate = x,
            5 => p.train_fraction = x,
            6 => spec.split.train_ratio = x,
            7 => p.seed = u,
            8 => spec.experiment = n.to_string(),
            9 => spec.experiment = t,
            _ => spec.name = t,
        }
        spec.id = spec.content_id();
        v1::TrialSpec::from(&spec)
    })
}

/// A valid result with some fields replaced by arbitrary values, so that each check is reached
/// with the others passing: counts that overflow when summed, accuracies and times past their
/// limits, epochs out of order.
fn tampered_result() -> impl Strategy<Value = v1::TrialResult> {
    (
        prop::collection::vec(big(), 4),
        prop::collection::vec(big(), 4),
        prop::option::of(metrics()),
        prop::option::of((number(), number(), number())),
    )
        .prop_map(|(train, test, epoch, numbers)| {
            let mut r = v1::TrialResult::from(&valid_result());
            r.train_confusion = Some(v1::ConfusionMatrix {
                classes: 2,
                counts: train,
            });
            r.test_confusion = Some(v1::ConfusionMatrix {
                classes: 2,
                counts: test,
            });
            if let Some(m) = epoch {
                r.epochs.push(m);
            }
            if let Some((a, b, c)) = numbers {
                r.train_accuracy = a;
                r.test_accuracy = b;
                r.train_seconds = c;
            }
            r
        })
}

/// Any request or response the decoders meet, with arbitrary field values.
fn message() -> impl Strategy<Value = (usize, Vec<u8>)> {
    prop_oneof![
        (text(), enum_value(), small(), text(), big()).prop_map(
            |(name, kind, slots, device, memory)| {
                (
                    0,
                    v1::RegisterRequest {
                        protocol_version: kind,
                        worker_name: name,
                        device: Some(v1::Device {
                            kind,
                            index: slots,
                            name: device,
                            memory_bytes: memory,
                        }),
                        slots,
                    }
                    .encode_to_vec(),
                )
            }
        ),
        text().prop_map(|worker_id| (1, v1::LeaseRequest { worker_id }.encode_to_vec())),
        (
            text(),
            prop::collection::vec(lease(), 0..4),
            prop::option::of((big(), big(), big()))
        )
            .prop_map(|(worker_id, leases, memory)| {
                (
                    2,
                    v1::HeartbeatRequest {
                        worker_id,
                        leases: leases.into_iter().flatten().collect(),
                        memory: memory.map(|(used_bytes, free_bytes, total_bytes)| {
                            v1::DeviceMemory {
                                used_bytes,
                                free_bytes,
                                total_bytes,
                            }
                        }),
                    }
                    .encode_to_vec(),
                )
            }),
        (
            prop::collection::vec(text(), 0..3),
            prop::collection::vec(text(), 0..3),
            any::<bool>(),
            text()
        )
            .prop_map(|(trials, experiments, all, reason)| {
                (
                    10,
                    v1::CancelRequest {
                        trials,
                        experiments,
                        all,
                        reason,
                    }
                    .encode_to_vec(),
                )
            }),
        (text(), lease(), prop::option::of(metrics())).prop_map(|(worker_id, lease, metrics)| {
            (
                3,
                v1::ReportEpochRequest {
                    worker_id,
                    lease,
                    metrics,
                    batch: Vec::new(),
                }
                .encode_to_vec(),
            )
        }),
        (
            text(),
            lease(),
            prop_oneof![trial_result(), tampered_result()]
        )
            .prop_map(|(worker_id, lease, result)| {
                (
                    4,
                    v1::CompleteRequest {
                        worker_id,
                        lease,
                        outcome: Some(v1::complete_request::Outcome::Result(result)),
                    }
                    .encode_to_vec(),
                )
            }),
        (text(), lease(), enum_value(), text()).prop_map(|(worker_id, lease, kind, message)| {
            (
                4,
                v1::CompleteRequest {
                    worker_id,
                    lease,
                    outcome: Some(v1::complete_request::Outcome::Failure(v1::TrialFailure {
                        kind,
                        message,
                    })),
                }
                .encode_to_vec(),
            )
        }),
        (text(), lease(), enum_value(), big(), text(), small()).prop_map(
            |(worker_id, lease, kind, size, sha256, epoch)| {
                (
                    5,
                    v1::ArtifactChunk {
                        header: Some(v1::ArtifactHeader {
                            worker_id,
                            lease,
                            kind,
                            size,
                            sha256,
                            epoch,
                        }),
                        data: vec![0; 3],
                    }
                    .encode_to_vec(),
                )
            }
        ),
        (lease(), prop_oneof![trial_spec(), tampered_trial()]).prop_map(|(lease, trial)| {
            (
                7,
                v1::LeaseResponse {
                    outcome: Some(v1::lease_response::Outcome::Assignment(v1::Assignment {
                        lease,
                        trial: Some(trial),
                        resume: None,
                    })),
                }
                .encode_to_vec(),
            )
        }),
        prop::collection::vec(lease(), 0..4).prop_map(|revoked| {
            (
                8,
                v1::HeartbeatResponse {
                    revoked: revoked.into_iter().flatten().collect(),
                }
                .encode_to_vec(),
            )
        }),
    ]
}

/// A byte-level edit.
fn mutate(bytes: &mut Vec<u8>, op: u8, at: usize, byte: u8) {
    if bytes.is_empty() {
        bytes.push(byte);
        return;
    }
    let at = at % bytes.len();
    match op % 5 {
        0 => bytes[at] = byte,
        1 => bytes[at] ^= 1 << (byte % 8),
        2 => bytes.insert(at, byte),
        3 => {
            bytes.remove(at);
        }
        _ => bytes.truncate(at),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    /// Arbitrary bytes, decoded as every message.
    #[test]
    fn arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        check(requests::decode_as_every_message(&bytes))?;
    }

    /// Messages with arbitrary field values: ids, enums, numbers at and past their limits,
    /// matrices of any shape.
    #[test]
    fn arbitrary_fields((which, bytes) in message()) {
        check(requests::decode_and_convert(which, &bytes))?;
    }

    /// Valid encodings with bytes changed, inserted, removed or cut off.
    #[test]
    fn mutated_valid_messages(
        base in 0usize..3,
        edits in prop::collection::vec((any::<u8>(), any::<usize>(), any::<u8>()), 1..6),
    ) {
        let (which, mut bytes) = valid_encodings().swap_remove(base);
        for (op, at, byte) in edits {
            mutate(&mut bytes, op, at, byte);
        }
        check(requests::decode_and_convert(which, &bytes))?;
    }
}
