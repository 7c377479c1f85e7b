//! What Kubernetes asks of a running coordinator: the gRPC health protocol (`grpc.health.v1`,
//! used by its readiness and liveness probes) on the workers' port, and Prometheus metrics on the
//! web view's port, against the real binary fed by a simulated worker.

#![allow(clippy::unwrap_used)]

mod common;

use common::{FakeWorker, http_get, start_coordinator};
use tonic::transport::Channel;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

#[test]
fn health_probes_and_metrics_of_a_running_sweep() {
    let dir = tempfile::tempdir().unwrap();
    let coordinator = start_coordinator(dir.path(), &["--linger", "1s"]);
    let rt = tokio::runtime::Runtime::new().unwrap();

    rt.block_on(async {
        let channel = Channel::from_shared(coordinator.url.clone())
            .unwrap()
            .connect()
            .await
            .unwrap();
        let mut health = HealthClient::new(channel);
        // The whole server ("", what a probe without `service` asks) and the sweep service.
        for service in ["", "sweep.v1.SweepService"] {
            let r = health
                .check(HealthCheckRequest {
                    service: service.to_owned(),
                })
                .await
                .unwrap()
                .into_inner();
            assert_eq!(r.status(), ServingStatus::Serving, "service {service:?}");
        }
        let unknown = health
            .check(HealthCheckRequest {
                service: "sweep.v1.Nope".to_owned(),
            })
            .await
            .unwrap_err();
        assert_eq!(unknown.code(), tonic::Code::NotFound);
    });

    let mut w = rt.block_on(FakeWorker::register(&coordinator.url, "fake-a", 2));
    let (a, attempt) = rt.block_on(w.lease_trial());
    rt.block_on(w.train(&a, attempt, &[50.0, 60.0, 70.0]));
    let (b, attempt) = rt.block_on(w.lease_trial());
    rt.block_on(w.report(&b, attempt, 1, 40.0));

    let http = coordinator.http.as_deref().unwrap();
    let (status, text) = http_get(http, "/metrics");
    assert!(status.contains(" 200 "), "{status}");
    for line in [
        "sweep_info{sweep=\"live\"} 1",
        "sweep_finished 0",
        "sweep_trials{state=\"pending\"} 2",
        "sweep_trials{state=\"running\"} 1",
        "sweep_trials{state=\"succeeded\"} 1",
        "sweep_trials{state=\"failed\"} 0",
        "sweep_leases 1",
        "sweep_leases_granted_total 2",
        "sweep_attempt_failures_total{kind=\"lease_expired\"} 0",
        "sweep_workers{state=\"connected\"} 1",
        "sweep_worker_slots 2",
        "sweep_epochs_done 4",
        "sweep_epochs_planned 12",
        "sweep_best_test_accuracy_ratio 0.7",
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "no line {line:?} in:\n{text}"
        );
    }
    assert!(
        text.lines()
            .any(|l| l.starts_with("sweep_throughput_epochs_per_second ")),
        "{text}"
    );
}
