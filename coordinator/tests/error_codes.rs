//! Every `coordinator::Error` variant's gRPC status code, met the way a client meets it: through
//! the in-process test coordinator ([`harness`]) over real gRPC where a call can provoke it, from
//! `run` for what stops a coordinator from starting, and built directly only for the few no call
//! can reach (each says why).
//!
//! [`expected`] is the specification: one exhaustive match, no wildcard arm, so a new variant
//! does not compile here until it is given its code and the name of the test that provokes it.

#![allow(clippy::unwrap_used)]

mod common;
mod harness;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use common::{GRID, Leased};
use harness::{TestCoordinator, Worker, options, registration};
use sweep_common::{TrialId, WorkerId};
use sweep_coordinator::state::StateError;
use sweep_coordinator::{Error, Exit};
use sweep_proto::DecodeError;
use sweep_proto::v1::{self, ArtifactKind};
use tonic::{Code, Status};

/// The code each variant answers with, and the test below that meets it.
fn expected(e: &Error) -> (Code, &'static str) {
    match e {
        Error::Grid(_) => (Code::Internal, "startup_errors_never_reach_a_client"),
        Error::Io { .. } => (Code::Internal, "an_unreadable_checkpoint_is_internal"),
        Error::Storage { .. } => (
            Code::ResourceExhausted,
            "a_storage_failure_asks_the_worker_to_send_again_later",
        ),
        Error::NotWritable { .. } => (Code::Internal, "startup_errors_never_reach_a_client"),
        Error::Outputs { .. } => (
            Code::Internal,
            "outputs_not_written_end_the_run_with_an_error",
        ),
        Error::OutputInUse { .. } => (Code::Internal, "startup_errors_never_reach_a_client"),
        Error::Locked { .. } => (Code::Internal, "startup_errors_never_reach_a_client"),
        Error::Bind { .. } => (Code::Internal, "startup_errors_never_reach_a_client"),
        Error::Transport(_) => (Code::Internal, "errors_no_call_can_provoke"),
        Error::Store(_) => (Code::Internal, "startup_errors_never_reach_a_client"),
        Error::State(s) => match s {
            StateError::UnknownWorker(_) => (
                Code::NotFound,
                "a_worker_the_state_does_not_know_must_register_again",
            ),
            StateError::UnknownTrial(_) => (Code::NotFound, "lease_errors"),
            StateError::StaleLease { .. } => (Code::FailedPrecondition, "lease_errors"),
            StateError::NotLeaseHolder { .. } => (Code::PermissionDenied, "lease_errors"),
            StateError::InvalidReport { .. } => (Code::InvalidArgument, "lease_errors"),
            StateError::NoCheckpoint { .. } => (Code::NotFound, "checkpoint_errors"),
            StateError::SweepFinished => (
                Code::FailedPrecondition,
                "retry_after_the_sweep_finished_is_refused",
            ),
            StateError::CannotPromote { .. } => (
                Code::FailedPrecondition,
                "a_promotion_to_more_epochs_that_cannot_be_done_is_refused",
            ),
        },
        Error::Decode(_) => (Code::InvalidArgument, "caller_errors"),
        Error::ProtocolVersion(_) => (Code::InvalidArgument, "caller_errors"),
        Error::WorkerIdentity(_) => (Code::PermissionDenied, "caller_errors"),
        Error::RateLimited { .. } => (Code::ResourceExhausted, "errors_no_call_can_provoke"),
        Error::ShuttingDown => (Code::Unavailable, "errors_no_call_can_provoke"),
        Error::Connect { .. } => (Code::Internal, "errors_no_call_can_provoke"),
        Error::Remote { code, .. } => (*code, "errors_no_call_can_provoke"),
        Error::Http(_) => (Code::Internal, "errors_no_call_can_provoke"),
        Error::LocalWorkers { .. } => (Code::Internal, "errors_no_call_can_provoke"),
        Error::CheckpointDamaged { .. } => (Code::DataLoss, "checkpoint_errors"),
    }
}

/// `status` is what `error` answers: its code is the one [`expected`] gives, and its message is
/// the error's own (so the refusal came from that variant, not another with the same code).
#[track_caller]
fn assert_refused(status: &Status, error: Error) {
    let (code, _) = expected(&error);
    assert_eq!(status.code(), code, "{status:?}, expected {error:?}");
    assert_eq!(status.message(), error.to_string(), "{status:?}");
    let mapped = Status::from(error);
    assert_eq!(
        mapped.code(),
        code,
        "error.rs maps it otherwise: {mapped:?}"
    );
}

/// The one mapping agrees with [`expected`] for an error built here.
#[track_caller]
fn assert_maps(error: Error) -> Status {
    let (code, _) = expected(&error);
    let status = Status::from(error);
    assert_eq!(status.code(), code, "{status:?}");
    status
}

fn worker_id(w: &Worker) -> WorkerId {
    w.id.parse().unwrap()
}

fn only_file_in(dir: &Path) -> PathBuf {
    let files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    files.into_iter().next().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn caller_errors() {
    let dir = tempfile::tempdir().unwrap();
    let c = TestCoordinator::start(dir.path()).await;
    let mut operator = c.operator().await;

    // Another protocol version.
    let status = operator
        .register(registration("old", 1, 99))
        .await
        .unwrap_err();
    assert_refused(&status, Error::ProtocolVersion(99));

    // A field that does not decode.
    let status = operator
        .lease(v1::LeaseRequest {
            worker_id: "not-a-worker-id".into(),
        })
        .await
        .unwrap_err();
    let message = "not-a-worker-id"
        .parse::<WorkerId>()
        .unwrap_err()
        .to_string();
    assert_refused(
        &status,
        Error::Decode(DecodeError::Invalid {
            field: "worker_id",
            message,
        }),
    );

    // A registered worker's id without its secret (on every call that names a worker).
    let w = c.worker("w", 1).await;
    let status = operator
        .lease(v1::LeaseRequest {
            worker_id: w.id.clone(),
        })
        .await
        .unwrap_err();
    assert_refused(&status, Error::WorkerIdentity(worker_id(&w)));
    let status = operator
        .heartbeat(v1::HeartbeatRequest {
            worker_id: w.id.clone(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_refused(&status, Error::WorkerIdentity(worker_id(&w)));
    // Another worker's secret is no better.
    let other = c.worker("other", 1).await;
    let mut impostor = Worker {
        id: w.id.clone(),
        ..other
    };
    let status = impostor.lease().await.unwrap_err();
    assert_refused(&status, Error::WorkerIdentity(worker_id(&w)));
    c.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lease_errors() {
    let dir = tempfile::tempdir().unwrap();
    let c = TestCoordinator::start(dir.path()).await;
    let mut a = c.worker("a", 1).await;
    let mut b = c.worker("b", 1).await;
    let (spec, attempt) = a.lease_trial().await;

    let unknown = TrialId::from_content("a trial no grid has");
    let status = a.report(unknown, 1, 1, 50.0).await.unwrap_err();
    assert_refused(&status, Error::State(StateError::UnknownTrial(unknown)));

    // The next attempt is not leased yet: the lease named is stale (or, to a worker that lost
    // it, no longer its).
    let status = a.report(spec.id, attempt + 1, 1, 50.0).await.unwrap_err();
    assert_refused(
        &status,
        Error::State(StateError::StaleLease {
            trial: spec.id,
            attempt: attempt + 1,
            current: format!("attempt {attempt} is leased"),
        }),
    );

    let status = b.report(spec.id, attempt, 1, 50.0).await.unwrap_err();
    assert_refused(
        &status,
        Error::State(StateError::NotLeaseHolder {
            trial: spec.id,
            attempt,
        }),
    );

    let status = a.report(spec.id, attempt, 99, 50.0).await.unwrap_err();
    assert_refused(
        &status,
        Error::State(StateError::InvalidReport {
            field: "metrics.epoch",
            message: format!("epoch 99 is outside 1..={}", spec.params.epochs),
        }),
    );
    // None of the refusals cost the lease.
    a.report(spec.id, attempt, 1, 50.0).await.unwrap();
    c.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checkpoint_errors() {
    let dir = tempfile::tempdir().unwrap();
    let c = TestCoordinator::start(dir.path()).await;
    let mut w = c.worker("w", 1).await;
    let (spec, attempt) = w.lease_trial().await;

    let status = w.fetch_checkpoint(spec.id, attempt).await.unwrap_err();
    assert_refused(
        &status,
        Error::State(StateError::NoCheckpoint {
            trial: spec.id,
            attempt,
        }),
    );

    w.report(spec.id, attempt, 1, 50.0).await.unwrap();
    let bytes = b"the weights after epoch 1".to_vec();
    w.upload(ArtifactKind::Checkpoint, spec.id, attempt, 1, &bytes)
        .await
        .unwrap();
    assert_eq!(w.fetch_checkpoint(spec.id, attempt).await.unwrap(), bytes);

    // Damaged on disk: DATA_LOSS, on which the worker gives the checkpoint up.
    let file = only_file_in(&c.state_dir().join("checkpoints"));
    std::fs::write(&file, b"something else entirely").unwrap();
    let status = w.fetch_checkpoint(spec.id, attempt).await.unwrap_err();
    assert_eq!(status.code(), expected(&damaged()).0, "{status:?}");
    assert!(
        status.message().starts_with(&format!(
            "checkpoint {} is unusable: 23 bytes with SHA-256 ",
            file.display()
        )),
        "{status:?}"
    );
    // Gone: the same.
    std::fs::remove_file(&file).unwrap();
    let status = w.fetch_checkpoint(spec.id, attempt).await.unwrap_err();
    assert_refused(
        &status,
        Error::CheckpointDamaged {
            path: file.display().to_string(),
            message: "the file is missing".into(),
        },
    );
    c.stop().await.unwrap();
}

fn damaged() -> Error {
    Error::CheckpointDamaged {
        path: String::new(),
        message: String::new(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreadable_checkpoint_is_internal() {
    let dir = tempfile::tempdir().unwrap();
    let c = TestCoordinator::start(dir.path()).await;
    let mut w = c.worker("w", 1).await;
    let (spec, attempt) = w.lease_trial().await;
    w.report(spec.id, attempt, 1, 50.0).await.unwrap();
    w.upload(ArtifactKind::Checkpoint, spec.id, attempt, 1, b"weights")
        .await
        .unwrap();
    // Neither missing nor damaged, but unreadable: a folder where the file should be.
    let file = only_file_in(&c.state_dir().join("checkpoints"));
    std::fs::remove_file(&file).unwrap();
    std::fs::create_dir(&file).unwrap();
    let status = w.fetch_checkpoint(spec.id, attempt).await.unwrap_err();
    let io = Error::Io {
        action: "cannot read the checkpoint",
        path: file.display().to_string(),
        source: std::io::Error::from(std::io::ErrorKind::IsADirectory),
    };
    assert_eq!(status.code(), expected(&io).0, "{status:?}");
    assert!(
        status
            .message()
            .starts_with(&format!("cannot read the checkpoint {}: ", file.display())),
        "{status:?}"
    );
    c.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_storage_failure_asks_the_worker_to_send_again_later() {
    let dir = tempfile::tempdir().unwrap();
    let c = TestCoordinator::start(dir.path()).await;
    let mut w = c.worker("w", 1).await;
    let (spec, attempt) = w.lease_trial().await;
    // A file where the folder of final weights should be, after the start-up checks.
    let models = c.out.join("models");
    std::fs::remove_dir_all(&models).unwrap();
    std::fs::write(&models, b"").unwrap();
    let status = w
        .upload(ArtifactKind::FinalWeights, spec.id, attempt, 0, b"weights")
        .await
        .unwrap_err();
    let storage = Error::Storage {
        what: "final weights",
        action: "cannot create",
        path: models.display().to_string(),
        source: std::io::Error::from(std::io::ErrorKind::AlreadyExists),
    };
    assert_eq!(status.code(), expected(&storage).0, "{status:?}");
    assert!(sweep_proto::transient(&status), "{status:?}");
    assert!(
        status.message().starts_with(&format!(
            "the coordinator cannot store final weights: cannot create {}: ",
            models.display()
        )),
        "{status:?}"
    );
    // Once the folder can be made again, the same upload is stored.
    std::fs::remove_file(&models).unwrap();
    w.upload(ArtifactKind::FinalWeights, spec.id, attempt, 0, b"weights")
        .await
        .unwrap();
    c.stop().await.unwrap();
}

/// Ends the sweep of [`GRID`] with `w`, which is not told yet that it ended.
async fn train_every_trial(w: &mut Worker) {
    for _ in 0..4 {
        let (spec, attempt) = w.lease_trial().await;
        w.train(&spec, attempt, &[40.0, 50.0, 60.0]).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_after_the_sweep_finished_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut o = options(dir.path());
    // It keeps answering until its workers learn that the sweep ended.
    o.linger = std::time::Duration::from_secs(120);
    let c = TestCoordinator::try_start(GRID, o).await.unwrap();
    let mut w = c.worker("w", 1).await;
    train_every_trial(&mut w).await;
    let status = c
        .operator()
        .await
        .retry(v1::RetryRequest {
            failed: true,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_refused(&status, Error::State(StateError::SweepFinished));
    // So is a promotion: nothing is stopped, and nothing would train it.
    let status = c
        .operator()
        .await
        .promote(v1::PromoteRequest {
            experiments: vec!["e".into()],
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_refused(&status, Error::State(StateError::SweepFinished));
    assert!(matches!(w.lease().await.unwrap(), Leased::Finished));
    let summary = c.ended().await.unwrap();
    assert_eq!(summary.succeeded, 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outputs_not_written_end_the_run_with_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let c = TestCoordinator::start(dir.path()).await;
    // A folder, not empty, where results.json goes.
    let results = c.out.join("results.json");
    std::fs::create_dir(&results).unwrap();
    std::fs::write(results.join("in the way"), b"").unwrap();
    let mut w = c.worker("w", 1).await;
    train_every_trial(&mut w).await;
    assert!(matches!(w.lease().await.unwrap(), Leased::Finished));
    let e = c.ended().await.unwrap_err();
    assert!(matches!(e, Error::Outputs { .. }), "{e:?}");
    assert!(e.to_string().contains("results.json"), "{e}");
    assert_eq!(Exit::of_error(&e, true), Exit::StoppedByError);
    assert_maps(e);
}

/// Stops `c` and copies its state directory to `to`.
async fn stop_and_copy_state(c: TestCoordinator, to: &Path) {
    let state = c.state_dir();
    c.stop().await.unwrap();
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(&state).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            std::fs::copy(&path, to.join(path.file_name().unwrap())).unwrap();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_the_state_does_not_know_must_register_again() {
    // The state directory is restored from a copy made before the worker registered: the
    // worker's secret still checks out (the key is in the copy), its id is unknown.
    let dir = tempfile::tempdir().unwrap();
    let backup = dir.path().join("backup");
    let c = TestCoordinator::start(dir.path()).await;
    stop_and_copy_state(c, &backup).await;
    let c = TestCoordinator::start(dir.path()).await;
    let w = c.worker("w", 1).await;
    let state = c.state_dir();
    c.stop().await.unwrap();
    std::fs::remove_dir_all(&state).unwrap();
    std::fs::rename(&backup, &state).unwrap();

    let c = TestCoordinator::start(dir.path()).await;
    let mut w = w.to(&c.url).await;
    let status = w.lease().await.unwrap_err();
    assert_refused(
        &status,
        Error::State(StateError::UnknownWorker(worker_id(&w))),
    );
    // Registering again is the way back.
    let mut again = c.worker("w", 1).await;
    again.lease_trial().await;
    c.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn startup_errors_never_reach_a_client() {
    // What stops a coordinator from starting is returned by `run` (the binary exits 2); it
    // never serves, so no call meets it, but the mapping still says INTERNAL.
    let cannot_start = |e: Error| {
        assert_eq!(Exit::of_error(&e, false), Exit::CannotStart, "{e:?}");
        assert_maps(e);
    };

    let dir = tempfile::tempdir().unwrap();
    let e = TestCoordinator::try_start("[sweep]\nname = ", options(dir.path()))
        .await
        .err()
        .unwrap();
    assert!(matches!(e, Error::Grid(_)), "{e:?}");
    cannot_start(e);

    // Results without a state database to resume them from.
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("out")).unwrap();
    std::fs::write(dir.path().join("out/results.json"), b"{}").unwrap();
    let e = TestCoordinator::try_start(GRID, options(dir.path()))
        .await
        .err()
        .unwrap();
    assert!(matches!(e, Error::OutputInUse { .. }), "{e:?}");
    cannot_start(e);

    // A file where a folder it writes in should be.
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("out")).unwrap();
    std::fs::write(dir.path().join("out/figures"), b"").unwrap();
    let e = TestCoordinator::try_start(GRID, options(dir.path()))
        .await
        .err()
        .unwrap();
    assert!(
        matches!(
            e,
            Error::NotWritable {
                what: "folder of figures",
                ..
            }
        ),
        "{e:?}"
    );
    cannot_start(e);

    // A second coordinator on the same output folder.
    let dir = tempfile::tempdir().unwrap();
    let first = TestCoordinator::start(dir.path()).await;
    let e = TestCoordinator::try_start(GRID, options(dir.path()))
        .await
        .err()
        .unwrap();
    assert!(
        matches!(
            e,
            Error::Locked {
                what: "output folder",
                ..
            }
        ),
        "{e:?}"
    );
    cannot_start(e);
    first.stop().await.unwrap();

    // The state directory of another sweep.
    let e = TestCoordinator::try_start(&GRID.replace("\"live\"", "\"other\""), options(dir.path()))
        .await
        .err()
        .unwrap();
    assert!(matches!(e, Error::Store(_)), "{e:?}");
    cannot_start(e);

    // An address in use.
    let dir = tempfile::tempdir().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let mut o = options(dir.path());
    o.listen = taken.local_addr().unwrap();
    let e = TestCoordinator::try_start(GRID, o).await.err().unwrap();
    assert!(matches!(e, Error::Bind { .. }), "{e:?}");
    cannot_start(e);
}

/// A connection refused: a port that was free a moment ago.
async fn refused_connection() -> tonic::transport::Error {
    let addr: SocketAddr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap_err()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_no_call_can_provoke() {
    // A worker that calls too fast: the service's limit (1 000 calls a second, bursts of
    // 2 000) cannot be met reliably by a test over loopback, so the limiter the service uses is
    // driven directly, with a small rate.
    let limiter = sweep_coordinator::auth::RateLimiter::new(1.0, 1.0);
    let worker = WorkerId::random();
    let now = std::time::Instant::now();
    limiter.admit(worker, now).unwrap();
    let e = limiter.admit(worker, now).unwrap_err();
    assert!(matches!(e, Error::RateLimited { .. }), "{e:?}");
    let status = assert_maps(e);
    assert!(sweep_proto::transient(&status), "the worker tries again");

    // The state owner has stopped while the server still answers: the worker tries again.
    let status = assert_maps(Error::ShuttingDown);
    assert!(sweep_proto::transient(&status));

    // Errors of `coordinator status` calling another coordinator, and of the servers
    // themselves: never met while serving a call.
    assert_maps(Error::Connect {
        url: "http://127.0.0.1:1".into(),
        source: refused_connection().await,
    });
    assert_maps(Error::Transport(refused_connection().await));
    assert_maps(Error::Http(std::io::Error::other("gone")));
    assert_maps(Error::LocalWorkers {
        message: "local-cpu-1: it cannot run trials".into(),
    });
    for code in [
        Code::Unauthenticated,
        Code::InvalidArgument,
        Code::Unavailable,
    ] {
        let status = assert_maps(Error::Remote {
            code,
            message: "no".into(),
        });
        assert_eq!(status.code(), code);
    }
}

/// `coordinator promote --epochs`: a trial that cannot continue to more epochs is refused with
/// the trial, the epochs and why (here: unknown, not more epochs, no checkpoint kept), and
/// nothing changes; epochs outside the table's range do not decode.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_promotion_to_more_epochs_that_cannot_be_done_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let c = TestCoordinator::start(dir.path()).await;
    let mut w = c.worker("w", 1).await;
    let (spec, attempt) = w.lease_trial().await;
    w.train(&spec, attempt, &[40.0, 50.0, 60.0]).await;
    let mut operator = c.operator().await;
    let mut promote = async |trial: &str, epochs: u32| {
        operator
            .promote(v1::PromoteRequest {
                trials: vec![trial.to_owned()],
                epochs,
                ..Default::default()
            })
            .await
            .unwrap_err()
    };
    let refusal = |trial: &str, epochs: u32, reason: &str| {
        Error::State(StateError::CannotPromote {
            trial: trial.to_owned(),
            epochs,
            reason: reason.to_owned(),
        })
    };
    let status = promote("nope", 6).await;
    assert_refused(&status, refusal("nope", 6, "no trial has this name or id"));
    let status = promote(&spec.name, 3).await;
    assert_refused(
        &status,
        refusal(
            &spec.name,
            3,
            "it trains 3 epochs already; --epochs must be more than 3",
        ),
    );
    let status = promote(&spec.name, 6).await;
    assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
    assert!(
        status.message().contains("without keeping a checkpoint"),
        "{status:?}"
    );
    let status = promote(&spec.name, 100_001).await;
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    // Nothing changed: the next trial is a new one, and the trained one is as it was.
    let (next, _) = w.lease_trial().await;
    assert_ne!(next.name, spec.name);
    c.stop().await.unwrap();
}
