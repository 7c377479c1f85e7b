//! What the property tests of the decoders found, kept as plain cases; and the writer of the
//! `requests` fuzz target's seeds.

mod support;

use prost::Message;
use support::fixtures::{valid_encodings, valid_result, valid_trial};
use support::requests::{self, MESSAGES};
use sweep_common::TrialResult;
use sweep_proto::v1;

/// The valid encodings decode and convert, so the mutation test starts from real messages.
#[test]
fn valid_encodings_convert() {
    assert_eq!(MESSAGES.len(), 13);
    for (which, bytes) in valid_encodings() {
        requests::decode_and_convert(which, &bytes).unwrap_or_else(|e| panic!("{e}"));
    }
    let (_, bytes) = &valid_encodings()[0];
    let request = v1::CompleteRequest::decode(bytes.as_slice()).expect("decodes");
    let Some(v1::complete_request::Outcome::Result(result)) = &request.outcome else {
        panic!("a result");
    };
    assert!(TrialResult::try_from(result).is_ok());
}

/// What the property tests found, kept as plain cases.
#[test]
fn regressions() {
    // Counts whose sum overflows a u64 were accepted: the coordinator's total panicked (debug)
    // or wrapped into a plausible number (release).
    let mut result = v1::TrialResult::from(&valid_result());
    result.test_confusion = Some(v1::ConfusionMatrix {
        classes: 2,
        counts: vec![0, 0, 1, u64::MAX],
    });
    let e = TrialResult::try_from(&result).unwrap_err().to_string();
    assert_eq!(
        e,
        "invalid field result.test_confusion: the counts add up to more than 2^64"
    );
    // A trial outside the grid's ranges was accepted, with a matching id: the worker would
    // have built 4 294 967 295 hidden layers.
    let valid = valid_trial();
    for (field, set) in [
        (
            "trial.hidden_layers",
            (|s: &mut sweep_common::TrialSpec| s.params.hidden_layers = u32::MAX)
                as fn(&mut sweep_common::TrialSpec),
        ),
        ("trial.hidden_width", |s| s.params.hidden_width = 65_537),
        ("trial.batch_size", |s| s.params.batch_size = u32::MAX),
        ("trial.epochs", |s| s.params.epochs = 100_001),
        ("trial.learning_rate", |s| s.params.learning_rate = 1e300),
        // A seed no grid file can give (TOML integers end at 2^63 - 1) was accepted.
        ("trial.seed", |s| s.params.seed = u64::MAX),
        ("trial.train_fraction", |s| s.params.train_fraction = 1.5),
    ] {
        let mut spec = valid.clone();
        set(&mut spec);
        spec.id = spec.content_id();
        let e = sweep_common::TrialSpec::try_from(&v1::TrialSpec::from(&spec))
            .unwrap_err()
            .to_string();
        assert!(e.starts_with(&format!("invalid field {field}: ")), "{e}");
    }
}

/// Issue 15: text from the network holding control or invisible characters, or longer than
/// allowed, reached terminals, logs and reports; values that cannot be true were accepted.
/// Each is now refused with a message naming its field.
#[test]
fn hostile_text_and_impossible_values_are_refused() {
    let forged = "w\n2026-01-01T00:00:00Z  INFO sweep finished: all trials succeeded";
    let register = |name: &str, device: &str| v1::RegisterRequest {
        protocol_version: 1,
        worker_name: name.to_owned(),
        device: Some(v1::Device {
            kind: 2,
            index: 0,
            name: device.to_owned(),
            memory_bytes: 80 << 30,
        }),
        slots: 1,
    };
    let refused = |r: Result<sweep_proto::Registration, sweep_proto::DecodeError>| {
        r.expect_err("refused").to_string()
    };
    let e = refused(sweep_proto::Registration::try_from(&register(
        forged, "H100",
    )));
    assert!(
        e.starts_with("invalid field worker_name: character U+000A at position 1"),
        "{e}"
    );
    let e = refused(sweep_proto::Registration::try_from(&register(
        "w",
        "\x1b[2JH100",
    )));
    assert!(
        e.starts_with("invalid field device.name: character U+001B"),
        "{e}"
    );
    let e = refused(sweep_proto::Registration::try_from(&register(
        &"x".repeat(129),
        "",
    )));
    assert!(e.contains("129 characters long; at most 128"), "{e}");
    let ok = sweep_proto::Registration::try_from(&register("gpu-node-7", "NVIDIA H100")).unwrap();
    assert_eq!(ok.name, "gpu-node-7");

    let failure = |message: &str| v1::TrialFailure {
        kind: 1,
        message: message.to_owned(),
    };
    let e = sweep_proto::failure_message(&failure(forged))
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("invalid field failure.message: character U+000A"),
        "{e}"
    );
    assert!(sweep_proto::failure_message(&failure(&"x".repeat(4097))).is_err());

    let cancel = |trials: Vec<String>, reason: &str| v1::CancelRequest {
        trials,
        experiments: vec![],
        all: false,
        reason: reason.to_owned(),
    };
    let e = sweep_proto::Cancel::try_from(&cancel(vec!["t_1".into()], "\u{202e}tuo-emit"))
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("invalid field reason: character U+202E"),
        "{e}"
    );
    let e = sweep_proto::Cancel::try_from(&cancel(vec!["t_1".into(), "ru\u{200b}n".into()], ""))
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("invalid field trials: name 2: character U+200B"),
        "{e}"
    );

    // Impossible values: a loss that is NaN, infinite or negative; a year-long epoch; more
    // memory used than the device has.
    let epoch = v1::EpochMetrics::from(&support::fixtures::valid_epoch());
    for (loss, field) in [
        (f64::NAN, "metrics.train_loss"),
        (f64::INFINITY, "metrics.train_loss"),
        (-0.5, "metrics.train_loss"),
    ] {
        let m = v1::EpochMetrics {
            train_loss: loss,
            ..epoch.clone()
        };
        let e = sweep_common::EpochMetrics::try_from(&m)
            .unwrap_err()
            .to_string();
        assert!(e.starts_with(&format!("invalid field {field}: ")), "{e}");
    }
    let m = v1::EpochMetrics {
        seconds: 1e300,
        ..epoch
    };
    let e = sweep_common::EpochMetrics::try_from(&m)
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("invalid field metrics.seconds: "), "{e}");
    let mut result = v1::TrialResult::from(&valid_result());
    result.train_seconds = 1e300;
    let e = TrialResult::try_from(&result).unwrap_err().to_string();
    assert!(e.starts_with("invalid field result.train_seconds: "), "{e}");
    let mut result = v1::TrialResult::from(&valid_result());
    result.epochs[0].train_loss = f64::NAN;
    assert!(TrialResult::try_from(&result).is_err());
    let memory = v1::DeviceMemory {
        used_bytes: 90 << 30,
        free_bytes: 0,
        total_bytes: 80 << 30,
    };
    let e = sweep_proto::DeviceMemory::try_from(&memory)
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("invalid field memory.used_bytes: "), "{e}");
}

/// Writes a valid encoding of every message as the seed corpus of the `requests` fuzz target
/// (`fuzz/seeds/requests/`), each prefixed with the byte that picks its message:
/// `cargo test --release -p sweep-proto --test decode_regressions -- --ignored write_fuzz_seeds`.
#[test]
#[ignore = "writes fuzz/seeds/requests; run it by name"]
fn write_fuzz_seeds() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/seeds/requests");
    std::fs::create_dir_all(&dir).expect("create the seed folder");
    let worker_id = "6f1c1f4e-8d2b-5a8e-9c1b-2f7d3e4a5b6c".to_owned();
    let (_, complete) = &valid_encodings()[0];
    let request = v1::CompleteRequest::decode(complete.as_slice()).expect("decodes");
    let lease = request.lease.clone();
    let mut seeds = valid_encodings();
    seeds.extend([
        (
            0,
            v1::RegisterRequest {
                protocol_version: sweep_proto::PROTOCOL_VERSION.into(),
                worker_name: "w".into(),
                device: Some(v1::Device {
                    kind: 2,
                    index: 0,
                    name: "NVIDIA H100".into(),
                    memory_bytes: 80 << 30,
                }),
                slots: 2,
            }
            .encode_to_vec(),
        ),
        (
            1,
            v1::LeaseRequest {
                worker_id: worker_id.clone(),
            }
            .encode_to_vec(),
        ),
        (
            2,
            v1::HeartbeatRequest {
                worker_id: worker_id.clone(),
                leases: lease.iter().cloned().collect(),
                memory: Some(v1::DeviceMemory {
                    used_bytes: 1,
                    free_bytes: 2,
                    total_bytes: 3,
                }),
            }
            .encode_to_vec(),
        ),
        (
            4,
            v1::CompleteRequest {
                worker_id: worker_id.clone(),
                lease: lease.clone(),
                outcome: Some(v1::complete_request::Outcome::Failure(v1::TrialFailure {
                    kind: 3,
                    message: "out of memory".into(),
                })),
            }
            .encode_to_vec(),
        ),
        (
            5,
            v1::ArtifactChunk {
                header: Some(v1::ArtifactHeader {
                    worker_id,
                    lease: lease.clone(),
                    kind: 1,
                    size: 3,
                    sha256: "0".repeat(64),
                    epoch: 0,
                }),
                data: vec![1, 2, 3],
            }
            .encode_to_vec(),
        ),
        (
            6,
            v1::StatusRequest {
                detail: true,
                trials: Some(v1::TrialQuery {
                    offset: 10,
                    limit: 50,
                    state: 3,
                    experiment: Some("e".into()),
                    trial: None,
                }),
            }
            .encode_to_vec(),
        ),
        (
            8,
            v1::HeartbeatResponse {
                revoked: lease.into_iter().collect(),
            }
            .encode_to_vec(),
        ),
        (
            10,
            v1::CancelRequest {
                trials: vec!["t_1".into()],
                experiments: vec!["e".into()],
                all: false,
                reason: "wrong learning rate".into(),
            }
            .encode_to_vec(),
        ),
    ]);
    for (i, (which, bytes)) in seeds.into_iter().enumerate() {
        let mut data = vec![u8::try_from(which).expect("a small index")];
        data.extend(bytes);
        let path = dir.join(format!("{i:02}-{}", MESSAGES[which]));
        std::fs::write(&path, data).expect("write a seed");
    }
}
