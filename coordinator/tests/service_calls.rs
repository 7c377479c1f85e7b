//! The `sweep.v1` service's decode and encode paths, and the state owner's handle behind them,
//! through the in-process test coordinator ([`harness`]): what each call answers, and how it
//! refuses a message that is missing a part or carries a bad value.

#![allow(clippy::unwrap_used)]

mod common;
mod harness;

use std::time::Duration;

use common::{GRID, Leased};
use harness::{TestCoordinator, options};
use sweep_coordinator::Error;
use sweep_proto::DecodeError;
use sweep_proto::v1::{self, complete_request};
use tonic::Code;

/// The decode error `e`, as a client receives it.
#[track_caller]
fn assert_decode_refused(status: &tonic::Status, e: DecodeError) {
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert_eq!(status.message(), Error::Decode(e).to_string(), "{status:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registration_answers_the_sweep_and_its_timings() {
    let dir = tempfile::tempdir().unwrap();
    let mut o = options(dir.path());
    o.heartbeat_interval = Duration::from_millis(700);
    o.lease_ttl = Duration::from_secs(9);
    let c = TestCoordinator::try_start(GRID, o).await.unwrap();
    let mut operator = c.operator().await;
    let r = operator
        .register(v1::RegisterRequest {
            protocol_version: sweep_proto::PROTOCOL_VERSION.into(),
            worker_name: "gpu-box".into(),
            device: Some(v1::Device {
                kind: v1::DeviceKind::Cuda.into(),
                index: 1,
                name: "NVIDIA H200".into(),
                memory_bytes: 141 << 30,
            }),
            slots: 3,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.sweep, "live");
    assert_eq!(r.heartbeat_interval_ms, 700);
    assert_eq!(r.lease_ttl_ms, 9000);
    assert!(!r.worker_secret.is_empty());
    let a = c.worker("cpu-box", 1).await;
    assert_ne!(a.id, r.worker_id, "every registration is a new worker");
    assert_ne!(a.secret, r.worker_secret);

    let status = operator
        .status(v1::StatusRequest::default())
        .await
        .unwrap()
        .into_inner();
    let shown = status
        .workers
        .iter()
        .find(|w| w.worker_id == r.worker_id)
        .unwrap();
    assert_eq!(
        (shown.name.as_str(), shown.device.as_str(), shown.slots),
        ("gpu-box", "cuda:1 NVIDIA H200 (141.0 GiB)", 3)
    );
    let cpu = status.workers.iter().find(|w| w.worker_id == a.id).unwrap();
    assert_eq!(cpu.device, "cpu");

    // A registration that does not decode.
    let status = operator
        .register(v1::RegisterRequest {
            slots: 0,
            ..harness::registration("none", 1, sweep_proto::PROTOCOL_VERSION.into())
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    c.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn assignments_carry_the_trials_as_the_grid_expands_them() {
    let dir = tempfile::tempdir().unwrap();
    let c = TestCoordinator::start(dir.path()).await;
    let grid = sweep_common::grid::Grid::parse(GRID, "grid.toml").unwrap();
    let mut w = c.worker("w", 4).await;
    let mut leased = Vec::new();
    for _ in 0..4 {
        let (spec, attempt) = w.lease_trial().await;
        assert_eq!(attempt, 1);
        let expanded = grid.trials().find(|t| t.id == spec.id).unwrap();
        assert_eq!(&spec, expanded, "the wire keeps every field");
        leased.push(spec.id);
    }
    leased.sort_unstable();
    leased.dedup();
    assert_eq!(leased.len(), 4, "four trials, each leased once");
    // Every slot is busy and nothing else is pending: wait.
    assert!(matches!(w.lease().await.unwrap(), Leased::Wait));
    c.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heartbeats_renew_live_leases_and_revoke_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let c = TestCoordinator::start(dir.path()).await;
    let mut w = c.worker("w", 1).await;
    let (spec, attempt) = w.lease_trial().await;
    let live = sweep_proto::lease_ref(spec.id, attempt);
    let stale = sweep_proto::lease_ref(spec.id, attempt + 1);
    let other = sweep_proto::lease_ref(
        sweep_common::TrialId::from_content("a trial no grid has"),
        1,
    );
    let memory = v1::DeviceMemory {
        used_bytes: 3 << 30,
        free_bytes: 4 << 30,
        total_bytes: 8 << 30,
    };
    let r = w
        .client
        .heartbeat(v1::HeartbeatRequest {
            worker_id: w.id.clone(),
            leases: vec![live.clone(), stale.clone(), other.clone()],
            memory: Some(memory),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.revoked, vec![stale, other]);
    let status = c
        .operator()
        .await
        .status(v1::StatusRequest::default())
        .await
        .unwrap()
        .into_inner();
    let shown = &status.workers[0];
    assert_eq!(shown.memory_used_bytes, Some(3 << 30));
    assert_eq!(shown.memory_total_bytes, Some(8 << 30));
    assert_eq!(shown.running.len(), 1);

    // Memory that cannot be, and a lease that does not decode.
    let status = w
        .client
        .heartbeat(v1::HeartbeatRequest {
            worker_id: w.id.clone(),
            leases: vec![live.clone()],
            memory: Some(v1::DeviceMemory {
                used_bytes: 9 << 30,
                free_bytes: 0,
                total_bytes: 8 << 30,
            }),
        })
        .await
        .unwrap_err();
    assert_decode_refused(
        &status,
        DecodeError::Invalid {
            field: "memory.used_bytes",
            message: format!(
                "{} bytes is more than the total, {}",
                9u64 << 30,
                8u64 << 30
            ),
        },
    );
    let status = w
        .client
        .heartbeat(v1::HeartbeatRequest {
            worker_id: w.id.clone(),
            leases: vec![v1::LeaseRef {
                trial_id: spec.id.to_string(),
                attempt: 0,
            }],
            memory: None,
        })
        .await
        .unwrap_err();
    assert_decode_refused(
        &status,
        DecodeError::Invalid {
            field: "lease.attempt",
            message: "attempts start at 1".into(),
        },
    );
    c.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reports_missing_a_part_are_refused_and_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let c = TestCoordinator::start(dir.path()).await;
    let mut w = c.worker("w", 1).await;
    let (spec, attempt) = w.lease_trial().await;
    let lease = Some(sweep_proto::lease_ref(spec.id, attempt));

    let status = w
        .client
        .report_epoch(v1::ReportEpochRequest {
            worker_id: w.id.clone(),
            lease: None,
            metrics: Some((&common::metrics(1, 50.0)).into()),
            batch: Vec::new(),
        })
        .await
        .unwrap_err();
    assert_decode_refused(&status, DecodeError::Missing("lease"));
    let status = w
        .client
        .report_epoch(v1::ReportEpochRequest {
            worker_id: w.id.clone(),
            lease: lease.clone(),
            metrics: None,
            batch: Vec::new(),
        })
        .await
        .unwrap_err();
    assert_decode_refused(&status, DecodeError::Missing("metrics"));
    let status = w
        .client
        .complete(v1::CompleteRequest {
            worker_id: w.id.clone(),
            lease: lease.clone(),
            outcome: None,
        })
        .await
        .unwrap_err();
    assert_decode_refused(&status, DecodeError::Missing("outcome"));
    // A result that does not fit the trial (one epoch of three).
    let status = w.complete(&spec, attempt, &[50.0]).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");

    // The lease is still the worker's, and nothing was recorded: the trial trains to the end.
    w.train(&spec, attempt, &[40.0, 50.0, 60.0]).await;
    let status = c
        .operator()
        .await
        .status(v1::StatusRequest::default())
        .await
        .unwrap()
        .into_inner();
    let counts = status.counts.unwrap();
    assert_eq!((counts.succeeded, counts.running), (1, 0));
    let t = status.trials.iter().find(|t| t.name == spec.name).unwrap();
    assert_eq!((t.attempt, t.epoch, t.epochs), (1, 3, 3));
    c.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failure_is_recorded_with_its_reason() {
    let dir = tempfile::tempdir().unwrap();
    let c = TestCoordinator::start(dir.path()).await;
    let mut w = c.worker("w", 1).await;
    let (spec, attempt) = w.lease_trial().await;
    // A bad spec is not retried: the trial fails for good, and the worker is given the next.
    w.client
        .complete(v1::CompleteRequest {
            worker_id: w.id.clone(),
            lease: Some(sweep_proto::lease_ref(spec.id, attempt)),
            outcome: Some(complete_request::Outcome::Failure(v1::TrialFailure {
                kind: v1::FailureKind::InvalidSpec.into(),
                message: "hidden_width 0".into(),
            })),
        })
        .await
        .unwrap();
    let (next, _) = w.lease_trial().await;
    assert_ne!(next.id, spec.id);
    let status = c
        .operator()
        .await
        .status(v1::StatusRequest::default())
        .await
        .unwrap()
        .into_inner();
    let failed = status.trials.iter().find(|t| t.name == spec.name).unwrap();
    assert_eq!(failed.state(), v1::TrialState::Failed);
    assert_eq!(status.counts.unwrap().failed, 1);
    c.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_and_retry_say_what_they_did() {
    let dir = tempfile::tempdir().unwrap();
    let c = TestCoordinator::start(dir.path()).await;
    let mut operator = c.operator().await;
    let grid = sweep_common::grid::Grid::parse(GRID, "grid.toml").unwrap();
    let name = grid.trials().next().unwrap().name.clone();
    let r = operator
        .cancel(v1::CancelRequest {
            trials: vec![name.clone(), "t_nope".into()],
            experiments: vec![],
            all: false,
            reason: "not needed".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((r.cancelled, r.unknown), (1, vec!["t_nope".to_owned()]));
    // Cancelled trials come back only when named (or with include_cancelled).
    let r = operator
        .retry(v1::RetryRequest {
            failed: true,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.retried, 0);
    let r = operator
        .retry(v1::RetryRequest {
            trials: vec![name],
            experiments: vec!["nope".into()],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((r.retried, r.unknown), (1, vec!["nope".to_owned()]));
    let status = operator
        .status(v1::StatusRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(status.counts.unwrap().pending, 4);

    // A request that does not decode: a control character in a name.
    let status = operator
        .cancel(v1::CancelRequest {
            trials: vec!["t\u{7}".into()],
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    c.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_pages_its_trials_and_refuses_bad_queries() {
    let dir = tempfile::tempdir().unwrap();
    let c = TestCoordinator::start(dir.path()).await;
    let mut w = c.worker("w", 1).await;
    let (spec, attempt) = w.lease_trial().await;
    w.train(&spec, attempt, &[40.0, 50.0, 60.0]).await;
    let mut operator = c.operator().await;
    let page = |state: v1::TrialState, offset: u32, limit: u32| v1::StatusRequest {
        detail: false,
        trials: Some(v1::TrialQuery {
            offset,
            limit,
            state: state.into(),
            experiment: None,
            trial: None,
        }),
    };
    let r = operator
        .status(page(v1::TrialState::Pending, 1, 2))
        .await
        .unwrap()
        .into_inner();
    let p = r.page.unwrap();
    assert_eq!((p.offset, p.limit, p.matched), (1, 2, 3));
    assert_eq!(r.trials.len(), 2);
    assert!(
        r.trials
            .iter()
            .all(|t| t.state() == v1::TrialState::Pending)
    );
    let r = operator
        .status(page(v1::TrialState::Succeeded, 0, 0))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.trials.len(), 1);
    assert_eq!(r.trials[0].name, spec.name);
    assert_eq!(r.best.unwrap().trial, spec.name);

    let mut bad = page(v1::TrialState::Pending, 0, 10);
    bad.trials.as_mut().unwrap().experiment = Some("lab\u{0}".into());
    let status = operator.status(bad).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert!(status.message().contains("trials.experiment"), "{status:?}");
    c.stop().await.unwrap();
}
