//! Issue 15, items 1 and 4, against the real coordinator: text holding control or invisible
//! characters is refused where it enters (a forged log line in a worker's name, escape
//! sequences in a device name, a line break in a failure message or a cancel reason), so it
//! reaches no log, status, summary or report; values that cannot be true are refused (a NaN
//! loss, a year-long epoch, more memory used than the device has, an accepted epoch sent again
//! with other values, which never replaces the first); a refused completion is logged once, as
//! refused. The sweep then completes, and its outputs hold no control character.

use std::process::Command;
use std::time::Duration;

use sweep_proto::v1;
use sweep_tests::{Sweep, Worker, bin, faults};
use tonic::Code;

const TRIALS: usize = 4;
/// What a forged worker name would print as a log line of its own.
const FORGED: &str = "w\n2026-01-01T00:00:00.000000Z  INFO sweep finished: all trials succeeded";

fn register(name: &str, device: &str) -> v1::RegisterRequest {
    v1::RegisterRequest {
        protocol_version: sweep_proto::PROTOCOL_VERSION.into(),
        worker_name: name.to_owned(),
        device: Some(v1::Device {
            kind: v1::DeviceKind::Cpu.into(),
            index: 0,
            name: device.to_owned(),
            memory_bytes: 0,
        }),
        slots: 1,
    }
}

fn assert_refused(r: Result<impl std::fmt::Debug, tonic::Status>, code: Code, field: &str) {
    let e = r.expect_err("refused");
    assert_eq!(e.code(), code, "{e:?}");
    assert!(
        e.message().contains(field),
        "the message names {field}: {}",
        e.message()
    );
}

#[test]
fn hostile_text_and_impossible_values_are_refused() {
    let sweep = Sweep::new(&faults::grid("hostile-text", TRIALS, 3, 0));
    let mut c = sweep.start_coordinator_at("127.0.0.1:0", &["--linger", "1s"]);
    let url = c.url();
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let (trial, attempt) = runtime.block_on(async {
        let channel = tonic::transport::Endpoint::from_shared(url.clone())
            .expect("url")
            .connect()
            .await
            .expect("connect");
        let mut client = sweep_proto::auth::client(channel.clone(), sweep_proto::Bearer::none());

        // Item 1: text with control or invisible characters, or too long, is refused.
        assert_refused(
            client.register(register(FORGED, "cpu")).await,
            Code::InvalidArgument,
            "worker_name",
        );
        assert_refused(
            client.register(register("w", "\x1b[2J\x1b[31mcpu")).await,
            Code::InvalidArgument,
            "device.name",
        );
        assert_refused(
            client.register(register("ru\u{200b}n", "cpu")).await,
            Code::InvalidArgument,
            "worker_name",
        );
        assert_refused(
            client.register(register(&"w".repeat(129), "cpu")).await,
            Code::InvalidArgument,
            "worker_name",
        );
        assert_refused(
            client
                .cancel(v1::CancelRequest {
                    trials: vec!["t_1".into()],
                    experiments: vec![],
                    all: false,
                    reason: "typo\n2026 INFO sweep finished".into(),
                })
                .await,
            Code::InvalidArgument,
            "reason",
        );

        let r = client
            .register(register("prober", "cpu"))
            .await
            .expect("a clean name registers")
            .into_inner();
        let mut w = sweep_proto::auth::client(
            channel,
            sweep_proto::Bearer::none()
                .with_worker_secret(&r.worker_secret)
                .expect("a header value"),
        );
        let lease = loop {
            let l = w
                .lease(v1::LeaseRequest {
                    worker_id: r.worker_id.clone(),
                })
                .await
                .expect("lease")
                .into_inner();
            match l.outcome {
                Some(v1::lease_response::Outcome::Assignment(a)) => break a.lease,
                Some(v1::lease_response::Outcome::Wait(_)) => {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                other => panic!("no trial to lease: {other:?}"),
            }
        };
        let complete = |lease: Option<v1::LeaseRef>, outcome| v1::CompleteRequest {
            worker_id: r.worker_id.clone(),
            lease,
            outcome: Some(outcome),
        };
        let failure = |kind: v1::FailureKind, message: &str| {
            v1::complete_request::Outcome::Failure(v1::TrialFailure {
                kind: kind.into(),
                message: message.to_owned(),
            })
        };
        assert_refused(
            w.complete(complete(
                lease.clone(),
                failure(v1::FailureKind::Data, "bad file\n2026 INFO all good\x1b[2J"),
            ))
            .await,
            Code::InvalidArgument,
            "failure.message",
        );

        // Item 4: values that cannot be true.
        let epoch = v1::EpochMetrics {
            epoch: 1,
            train_loss: 0.5,
            train_accuracy: 60.0,
            test_accuracy: 55.0,
            seconds: 0.1,
            scalars: Default::default(),
        };
        let report = |metrics: v1::EpochMetrics| v1::ReportEpochRequest {
            worker_id: r.worker_id.clone(),
            lease: lease.clone(),
            metrics: Some(metrics),
            batch: Vec::new(),
        };
        for (bad, field) in [
            (
                v1::EpochMetrics {
                    train_loss: f64::NAN,
                    ..epoch.clone()
                },
                "metrics.train_loss",
            ),
            (
                v1::EpochMetrics {
                    train_loss: -1.0,
                    ..epoch.clone()
                },
                "metrics.train_loss",
            ),
            (
                v1::EpochMetrics {
                    seconds: 1e300,
                    ..epoch.clone()
                },
                "metrics.seconds",
            ),
            (
                v1::EpochMetrics {
                    scalars: [("f1\u{202e}".to_owned(), f64::NAN)].into_iter().collect(),
                    ..epoch.clone()
                },
                "metrics.scalars",
            ),
        ] {
            assert_refused(
                w.report_epoch(report(bad)).await,
                Code::InvalidArgument,
                field,
            );
        }
        w.report_epoch(report(epoch.clone()))
            .await
            .expect("a true epoch");
        w.report_epoch(report(epoch.clone()))
            .await
            .expect("the same epoch again (a lost answer)");
        assert_refused(
            w.report_epoch(report(v1::EpochMetrics {
                test_accuracy: 99.0,
                ..epoch.clone()
            }))
            .await,
            Code::InvalidArgument,
            "epoch 1 was accepted",
        );
        assert_refused(
            w.heartbeat(v1::HeartbeatRequest {
                worker_id: r.worker_id.clone(),
                leases: lease.iter().cloned().collect(),
                memory: Some(v1::DeviceMemory {
                    used_bytes: 90 << 30,
                    free_bytes: 0,
                    total_bytes: 80 << 30,
                }),
            })
            .await,
            Code::InvalidArgument,
            "memory.used_bytes",
        );
        // A completion on an attempt that is not the lease's: refused, and logged once.
        let mut stale = lease.clone().expect("a lease");
        stale.attempt += 1;
        assert_refused(
            w.complete(complete(
                Some(stale.clone()),
                failure(v1::FailureKind::Data, "not mine"),
            ))
            .await,
            Code::FailedPrecondition,
            "stale lease",
        );
        // The prober gives its lease back, so the sweep can end.
        w.complete(complete(
            lease.clone(),
            failure(v1::FailureKind::WorkerShutdown, "done probing"),
        ))
        .await
        .expect("the holder ends its lease");
        (stale.trial_id, stale.attempt)
    });

    // `coordinator cancel` refuses what the coordinator would, before calling it.
    let out = Command::new(bin("coordinator"))
        .args(["cancel", "--addr", &url, "--trial", "t_1", "--reason"])
        .arg("oops\n2026 INFO sweep finished")
        .env_remove("SWEEP_OPERATOR_TOKEN")
        .output()
        .expect("coordinator cancel");
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("invalid field reason: character U+000A"),
        "{out:?}"
    );

    let mut worker = Worker::start_test("A", &url, Duration::from_millis(5), 2);
    c.expect_exit_code(0, Duration::from_secs(120));
    worker.wait_exit(Duration::from_secs(30));

    let log = c.stderr();
    let about_stale: Vec<&str> = log
        .lines()
        .filter(|l| {
            l.contains(&format!("trial={}", &trial[..8]))
                && l.contains(&format!("attempt={attempt}"))
        })
        .collect();
    assert_eq!(about_stale.len(), 1, "{about_stale:?}");
    assert!(
        about_stale[0].contains("completion refused"),
        "{about_stale:?}"
    );
    assert!(
        !log.contains("sweep finished: all trials succeeded"),
        "{log}"
    );
    assert!(!log.contains('\u{1b}'), "{log}");
    assert!(
        log.contains("worker leaving: it shut down and gave its lease back"),
        "{log}"
    );

    // Nothing written holds a control character (other than line ends and CSV's quoting).
    for file in ["summary.md", "report.md", "results.csv"] {
        let text = std::fs::read_to_string(sweep.out().join(file)).expect(file);
        assert!(
            !text.contains(|ch: char| ch != '\n' && sweep_common::text::forbidden(ch)),
            "{file}: {text}"
        );
    }
    let results = sweep.results();
    assert_eq!(results.trials.len(), TRIALS);
    assert!(results.trials.iter().all(|t| t.succeeded()));
}
