//! Hostile and malformed calls while a sweep runs: each is refused with a status naming what is
//! wrong (a worker writing on another worker's lease gets PERMISSION_DENIED, an oversized message
//! OUT_OF_RANGE or RESOURCE_EXHAUSTED, a malformed one INVALID_ARGUMENT), and the coordinator
//! keeps serving everyone else: the sweep completes with every trial.

use std::time::Duration;

use sweep_proto::v1;
use sweep_tests::{Sweep, Worker, faults};
use tonic::Code;

const TRIALS: usize = 20;

#[test]
fn hostile_calls_are_refused_and_the_sweep_completes() {
    let sweep = Sweep::new(&faults::grid("hostile", TRIALS, 4, 0));
    let mut c = sweep.start_coordinator_at("127.0.0.1:0", &["--linger", "1s"]);
    let url = c.url();
    let mut a = Worker::start_test("A", &url, Duration::from_millis(40), 2);
    let mut b = Worker::start_test("B", &url, Duration::from_millis(40), 2);

    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let channel = tonic::transport::Endpoint::from_shared(url.clone())
            .expect("url")
            .connect()
            .await
            .expect("connect");
        let channel_for_workers = channel.clone();
        let mut client = sweep_proto::auth::client(channel.clone(), sweep_proto::Bearer::none());
        // A client that sends whatever it is given, to see the server's own limit.
        let mut unbounded = sweep_proto::auth::client(channel, sweep_proto::Bearer::none())
            .max_encoding_message_size(64 << 20);
        let register = |name: &str| v1::RegisterRequest {
            protocol_version: sweep_proto::PROTOCOL_VERSION.into(),
            worker_name: name.to_owned(),
            device: None,
            slots: 1,
        };
        let r1 = client
            .register(register("w1"))
            .await
            .expect("w1")
            .into_inner();
        let r2 = client
            .register(register("w2"))
            .await
            .expect("w2")
            .into_inner();
        let (w1, w2) = (r1.worker_id.clone(), r2.worker_id.clone());
        // Each worker's calls carry the secret it was issued; `client` carries none.
        let as_worker = |secret: &str| {
            sweep_proto::auth::client(
                channel_for_workers.clone(),
                sweep_proto::Bearer::none()
                    .with_worker_secret(secret)
                    .expect("a header value"),
            )
        };
        let mut c1 = as_worker(&r1.worker_secret);
        let mut c2 = as_worker(&r2.worker_secret);
        // A worker id without its secret is refused, whatever the call; so is another's secret.
        let e = client
            .lease(v1::LeaseRequest {
                worker_id: w1.clone(),
            })
            .await
            .expect_err("w1's id without w1's secret");
        assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");
        let e = c2
            .lease(v1::LeaseRequest {
                worker_id: w1.clone(),
            })
            .await
            .expect_err("w1's id with w2's secret");
        assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");
        let lease = loop {
            let r = c1
                .lease(v1::LeaseRequest {
                    worker_id: w1.clone(),
                })
                .await
                .expect("lease")
                .into_inner();
            match r.outcome {
                Some(v1::lease_response::Outcome::Assignment(a)) => break a.lease,
                Some(v1::lease_response::Outcome::Wait(_)) => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                other => panic!("no trial to lease: {other:?}"),
            }
        };
        let metrics = v1::EpochMetrics {
            epoch: 1,
            train_loss: 1.0,
            train_accuracy: 50.0,
            test_accuracy: 50.0,
            seconds: 1.0,
            scalars: Default::default(),
        };
        // Another worker's lease.
        let e = c2
            .report_epoch(v1::ReportEpochRequest {
                worker_id: w2.clone(),
                lease: lease.clone(),
                metrics: Some(metrics.clone()),
                batch: Vec::new(),
            })
            .await
            .expect_err("w2 writes on w1's lease");
        assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");
        let e = c2
            .complete(v1::CompleteRequest {
                worker_id: w2.clone(),
                lease: lease.clone(),
                outcome: Some(v1::complete_request::Outcome::Failure(v1::TrialFailure {
                    kind: v1::FailureKind::Data.into(),
                    message: "sabotage".into(),
                })),
            })
            .await
            .expect_err("w2 ends w1's lease");
        assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");

        // Oversized: a 5 MiB worker id.
        let e = unbounded
            .lease(v1::LeaseRequest {
                worker_id: "x".repeat(5 << 20),
            })
            .await
            .expect_err("an oversized message");
        assert!(
            matches!(e.code(), Code::OutOfRange | Code::ResourceExhausted),
            "{e:?}"
        );

        // Malformed: each names its field.
        let e = client
            .lease(v1::LeaseRequest {
                worker_id: "not-a-uuid".into(),
            })
            .await
            .expect_err("a malformed id");
        assert_eq!(e.code(), Code::InvalidArgument);
        assert!(e.message().contains("worker_id"), "{}", e.message());
        let e = client
            .register(v1::RegisterRequest {
                slots: 0,
                ..register("zero")
            })
            .await
            .expect_err("zero slots");
        assert_eq!(e.code(), Code::InvalidArgument);
        assert!(e.message().contains("slots"), "{}", e.message());
        let e = c1
            .report_epoch(v1::ReportEpochRequest {
                worker_id: w1.clone(),
                lease: lease.clone(),
                metrics: Some(v1::EpochMetrics {
                    test_accuracy: 250.0,
                    ..metrics.clone()
                }),
                batch: Vec::new(),
            })
            .await
            .expect_err("an accuracy over 100 %");
        assert_eq!(e.code(), Code::InvalidArgument);
        let e = c1
            .complete(v1::CompleteRequest {
                worker_id: w1.clone(),
                lease: lease.clone(),
                outcome: Some(v1::complete_request::Outcome::Result(v1::TrialResult {
                    epochs: vec![],
                    train_accuracy: 10.0,
                    test_accuracy: 10.0,
                    train_confusion: Some(v1::ConfusionMatrix {
                        classes: 3,
                        counts: vec![1; 9],
                    }),
                    test_confusion: Some(v1::ConfusionMatrix {
                        classes: 3,
                        counts: vec![1; 9],
                    }),
                    train_seconds: 1.0,
                    dataset_images: 100,
                })),
            })
            .await
            .expect_err("a result that does not fit the trial");
        assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
        let e = c1
            .upload_artifact(tokio_stream::iter(vec![v1::ArtifactChunk {
                header: Some(v1::ArtifactHeader {
                    worker_id: w1.clone(),
                    lease: lease.clone(),
                    kind: v1::ArtifactKind::Checkpoint.into(),
                    size: u64::MAX,
                    sha256: "0".repeat(64),
                    epoch: 1,
                }),
                data: vec![0; 16],
            }]))
            .await
            .expect_err("an absurd artifact size");
        assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
        assert!(e.message().contains("header.size"), "{}", e.message());

        // w1 gives its lease back, so the sweep can end.
        c1.complete(v1::CompleteRequest {
            worker_id: w1.clone(),
            lease: lease.clone(),
            outcome: Some(v1::complete_request::Outcome::Failure(v1::TrialFailure {
                kind: v1::FailureKind::WorkerShutdown.into(),
                message: "done probing".into(),
            })),
        })
        .await
        .expect("the real holder ends its lease");
    });

    c.expect_exit_code(0, Duration::from_secs(120));
    a.wait_exit(Duration::from_secs(30));
    b.wait_exit(Duration::from_secs(30));
    let results = sweep.results();
    assert_eq!(results.trials.len(), TRIALS);
    assert!(results.trials.iter().all(|t| t.succeeded()));
}
