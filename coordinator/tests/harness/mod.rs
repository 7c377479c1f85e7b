//! An in-process test coordinator: the real [`sweep_coordinator::run`] (its tonic service, its
//! state owner and its SQLite store) on a temporary folder, serving gRPC on a free loopback port,
//! with typed clients for workers (registered, presenting their secret) and for operators.
//! Dropping it stops the coordinator.
//!
//! It is built from the crate's public API only (`run`, `Options`), so it tests the coordinator
//! as its binary runs it (the same wiring, the same auth layer, the same message limits) and
//! does not depend on how the crate's modules are laid out inside. It lives with the tests
//! rather than in a `#[cfg(test)]` module of the crate because integration tests cannot see
//! those, and a cargo feature for it would ship test code in the library.

#![allow(dead_code, clippy::unwrap_used)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use sha2::{Digest, Sha256};
use sweep_common::{TrialId, TrialSpec};
use sweep_coordinator::{Error, Options, Summary};
use sweep_proto::v1::{self, complete_request, lease_response};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::Status;

use crate::common::{GRID, Leased, metrics, result};

/// How long the coordinator may take to start serving, or to end once told to.
const WITHIN: Duration = Duration::from_secs(30);

/// A coordinator serving in this process.
pub struct TestCoordinator {
    /// Its gRPC URL (`http://127.0.0.1:PORT`).
    pub url: String,
    /// Its gRPC address.
    pub addr: SocketAddr,
    /// The output folder (`results.json`, `models/`, `state/`).
    pub out: PathBuf,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<Summary, Error>>>,
}

/// The options [`TestCoordinator::start`] uses: the grid file `dir/grid.toml`, the output folder
/// `dir/out`, gRPC on a free loopback port, no web view, default timings.
pub fn options(dir: &Path) -> Options {
    Options::new(
        dir.join("grid.toml"),
        SocketAddr::from(([127, 0, 0, 1], 0)),
        dir.join("out"),
    )
}

impl TestCoordinator {
    /// Runs the four-trial [`GRID`] in `dir` with [`options`].
    pub async fn start(dir: &Path) -> TestCoordinator {
        Self::try_start(GRID, options(dir)).await.unwrap()
    }

    /// Writes `grid` to `options.grid_file` and runs it; returns once the coordinator serves, or
    /// the error it could not start with.
    pub async fn try_start(grid: &str, options: Options) -> Result<TestCoordinator, Error> {
        std::fs::write(&options.grid_file, grid).unwrap();
        let parsed = sweep_common::grid::Grid::parse(grid, "grid.toml")?;
        let out = options.out_dir.clone();
        let (stop, stopped) = oneshot::channel::<()>();
        let (listening, mut serving) = oneshot::channel();
        let mut task = tokio::spawn(sweep_coordinator::run(
            options,
            parsed,
            move |l| {
                let _ = listening.send(l);
            },
            async move {
                let _ = stopped.await;
            },
        ));
        let addr = tokio::time::timeout(WITHIN, async {
            tokio::select! {
                l = &mut serving => match l {
                    Ok(l) => Ok(l.grpc),
                    // `run` returned before it served, dropping the callback.
                    Err(_) => Err((&mut task).await.unwrap()),
                },
                ended = &mut task => Err(ended.unwrap()),
            }
        })
        .await
        .expect("the coordinator neither served nor failed in time");
        match addr {
            Ok(addr) => Ok(TestCoordinator {
                url: format!("http://{addr}"),
                addr,
                out,
                stop: Some(stop),
                task: Some(task),
            }),
            Err(Ok(summary)) => panic!("the coordinator ended before serving: {summary:?}"),
            Err(Err(e)) => Err(e),
        }
    }

    /// The state directory (with the default options).
    pub fn state_dir(&self) -> PathBuf {
        self.out.join("state")
    }

    /// Registers a worker named `name` with `slots` slots.
    pub async fn worker(&self, name: &str, slots: u32) -> Worker {
        Worker::register(&self.url, name, slots).await.unwrap()
    }

    /// A client without a worker secret (operator calls, or a worker's calls made without it).
    pub async fn operator(&self) -> sweep_proto::Client {
        sweep_proto::auth::client(channel(&self.url).await, sweep_proto::Bearer::none())
    }

    /// Waits until the run ends on its own (the sweep finished) and returns how.
    pub async fn ended(mut self) -> Result<Summary, Error> {
        let task = self.task.take().unwrap();
        tokio::time::timeout(WITHIN, task)
            .await
            .expect("the sweep did not end in time")
            .unwrap()
    }

    /// Asks the coordinator to stop (as SIGTERM does) and returns how the run ended.
    pub async fn stop(mut self) -> Result<Summary, Error> {
        let _ = self.stop.take().unwrap().send(());
        let task = self.task.take().unwrap();
        tokio::time::timeout(WITHIN, task)
            .await
            .expect("the coordinator did not stop in time")
            .unwrap()
    }
}

impl Drop for TestCoordinator {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

async fn channel(url: &str) -> tonic::transport::Channel {
    tonic::transport::Endpoint::from_shared(url.to_owned())
        .unwrap()
        .connect()
        .await
        .unwrap()
}

/// The registration a worker sends, with `protocol_version`.
pub fn registration(name: &str, slots: u32, protocol_version: i32) -> v1::RegisterRequest {
    v1::RegisterRequest {
        protocol_version,
        worker_name: name.to_owned(),
        device: Some(v1::Device {
            kind: v1::DeviceKind::Cpu.into(),
            index: 0,
            name: String::new(),
            memory_bytes: 0,
        }),
        slots,
    }
}

/// A registered worker driven by the test: every call returns the coordinator's answer, its
/// status included, so tests can assert on refusals.
pub struct Worker {
    /// A client presenting this worker's secret.
    pub client: sweep_proto::Client,
    /// Its id, as the coordinator gave it.
    pub id: String,
    /// Its secret.
    pub secret: String,
    /// What registration answered.
    pub registered: v1::RegisterResponse,
}

impl Worker {
    /// Connects to `url` and registers as `name` with `slots` slots.
    pub async fn register(url: &str, name: &str, slots: u32) -> Result<Worker, Status> {
        let channel = channel(url).await;
        let mut anonymous = sweep_proto::auth::client(channel.clone(), sweep_proto::Bearer::none());
        let registered = anonymous
            .register(registration(
                name,
                slots,
                sweep_proto::PROTOCOL_VERSION.into(),
            ))
            .await?
            .into_inner();
        let bearer = sweep_proto::Bearer::none()
            .with_worker_secret(&registered.worker_secret)
            .unwrap();
        Ok(Worker {
            client: sweep_proto::auth::client(channel, bearer),
            id: registered.worker_id.clone(),
            secret: registered.worker_secret.clone(),
            registered,
        })
    }

    /// The same worker (id and secret) calling the coordinator at `url`, as after a restart.
    pub async fn to(&self, url: &str) -> Worker {
        let bearer = sweep_proto::Bearer::none()
            .with_worker_secret(&self.secret)
            .unwrap();
        Worker {
            client: sweep_proto::auth::client(channel(url).await, bearer),
            id: self.id.clone(),
            secret: self.secret.clone(),
            registered: self.registered.clone(),
        }
    }

    /// Asks for a trial.
    pub async fn lease(&mut self) -> Result<Leased, Status> {
        let r = self
            .client
            .lease(v1::LeaseRequest {
                worker_id: self.id.clone(),
            })
            .await?
            .into_inner();
        Ok(match r.outcome.unwrap() {
            lease_response::Outcome::Assignment(a) => Leased::Trial(
                TrialSpec::try_from(&a.trial.unwrap()).unwrap(),
                a.lease.unwrap().attempt,
            ),
            lease_response::Outcome::Wait(_) => Leased::Wait,
            lease_response::Outcome::Finished(_) => Leased::Finished,
            lease_response::Outcome::CannotRun(c) => Leased::CannotRun(c.reason),
        })
    }

    /// Asks for a trial, which there must be.
    pub async fn lease_trial(&mut self) -> (TrialSpec, u32) {
        match self.lease().await.unwrap() {
            Leased::Trial(spec, attempt) => (spec, attempt),
            other => panic!("expected a trial, got {other:?}"),
        }
    }

    /// Reports epoch `epoch` of lease (`trial`, `attempt`) with test accuracy `test` (%).
    pub async fn report(
        &mut self,
        trial: TrialId,
        attempt: u32,
        epoch: u32,
        test: f64,
    ) -> Result<(), Status> {
        self.client
            .report_epoch(v1::ReportEpochRequest {
                worker_id: self.id.clone(),
                lease: Some(sweep_proto::lease_ref(trial, attempt)),
                metrics: Some((&metrics(epoch, test)).into()),
                batch: Vec::new(),
            })
            .await?;
        Ok(())
    }

    /// Completes the lease with a result whose epochs have the test accuracies `curve`.
    pub async fn complete(
        &mut self,
        spec: &TrialSpec,
        attempt: u32,
        curve: &[f64],
    ) -> Result<(), Status> {
        let result = result(spec, curve);
        self.client
            .complete(v1::CompleteRequest {
                worker_id: self.id.clone(),
                lease: Some(sweep_proto::lease_ref(spec.id, attempt)),
                outcome: Some(complete_request::Outcome::Result((&result).into())),
            })
            .await?;
        Ok(())
    }

    /// Trains the lease at once: reports every epoch of `curve`, then completes.
    pub async fn train(&mut self, spec: &TrialSpec, attempt: u32, curve: &[f64]) {
        for (i, test) in curve.iter().enumerate() {
            self.report(spec.id, attempt, i as u32 + 1, *test)
                .await
                .unwrap();
        }
        self.complete(spec, attempt, curve).await.unwrap();
    }

    /// Uploads `bytes` as an artifact of `kind` (a checkpoint after `epoch`) under the lease.
    pub async fn upload(
        &mut self,
        kind: v1::ArtifactKind,
        trial: TrialId,
        attempt: u32,
        epoch: u32,
        bytes: &[u8],
    ) -> Result<v1::ArtifactReceipt, Status> {
        let header = v1::ArtifactHeader {
            worker_id: self.id.clone(),
            lease: Some(sweep_proto::lease_ref(trial, attempt)),
            kind: kind.into(),
            size: bytes.len() as u64,
            sha256: format!("{:x}", Sha256::digest(bytes)),
            epoch,
        };
        let chunk = v1::ArtifactChunk {
            header: Some(header),
            data: bytes.to_vec(),
        };
        Ok(self
            .client
            .upload_artifact(tokio_stream::iter([chunk]))
            .await?
            .into_inner())
    }

    /// Downloads the checkpoint lease (`trial`, `attempt`) resumes from.
    pub async fn fetch_checkpoint(
        &mut self,
        trial: TrialId,
        attempt: u32,
    ) -> Result<Vec<u8>, Status> {
        let mut stream = self
            .client
            .fetch_checkpoint(v1::FetchCheckpointRequest {
                worker_id: self.id.clone(),
                lease: Some(sweep_proto::lease_ref(trial, attempt)),
            })
            .await?
            .into_inner();
        let mut bytes = Vec::new();
        while let Some(chunk) = stream.message().await? {
            bytes.extend(chunk.data);
        }
        Ok(bytes)
    }
}
