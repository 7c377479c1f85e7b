//! Shared by the coordinator's end-to-end tests: the real coordinator binary as a child process
//! (killed when dropped), and a simulated worker that speaks `sweep.v1` from the test, so that
//! the test decides exactly when each epoch and each trial ends.

#![allow(dead_code, clippy::unwrap_used)]

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use sweep_common::{ConfusionMatrix, EpochMetrics, FinalMetrics, TrialResult, TrialSpec};
use sweep_proto::v1::{self, complete_request, lease_response};
use sweep_tests::Process;

/// How long a process may take to start serving.
pub const START: Duration = Duration::from_secs(30);

/// Images in the dataset the simulated worker claims to train on.
const IMAGES: u64 = 1000;

/// A grid of four small trials: activation x hidden layers, three epochs each.
pub const GRID: &str = r#"
[sweep]
name = "live"

[[experiment]]
name = "lab"
title = "Activation and depth"
dataset = "fashion-mnist"
trial_name = "t_{activation}_{hidden_layers}"

[experiment.fixed]
epochs = 3
hidden_width = 16

[experiment.grid]
activation = ["relu", "tanh"]
hidden_layers = [1, 2]
"#;

/// A running coordinator and the addresses it printed.
pub struct Coordinator {
    /// The process (killed when dropped).
    pub process: Process,
    /// Its gRPC URL.
    pub url: String,
    /// Its web view's `HOST:PORT`, if it serves one.
    pub http: Option<String>,
}

/// Starts `coordinator --grid GRID` (in `dir`, gRPC and HTTP on free loopback ports) with
/// `args` added, and waits until it serves.
pub fn start_coordinator(dir: &Path, args: &[&str]) -> Coordinator {
    start_coordinator_with(dir, GRID, args)
}

/// [`start_coordinator`] with the grid file `grid`.
pub fn start_coordinator_with(dir: &Path, grid: &str, args: &[&str]) -> Coordinator {
    let text = grid;
    let grid = dir.join("grid.toml");
    std::fs::write(&grid, text).unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_coordinator"));
    command
        .arg("--grid")
        .arg(&grid)
        .args(["--listen", "127.0.0.1:0", "--http", "127.0.0.1:0"])
        .arg("--out")
        .arg(dir.join("out"))
        .args(args);
    let mut process = Process::spawn("coordinator", command);
    let last_word = |line: String| line.rsplit(' ').next().unwrap_or("").trim().to_owned();
    let grpc = last_word(process.wait_for_stdout_line("listening on ", START));
    let http = last_word(process.wait_for_stdout_line("http on ", START));
    Coordinator {
        process,
        url: format!("http://{grpc}"),
        http: Some(http),
    }
}

/// What a lease request got.
// Test code: a few values at a time, moved out at once; boxing the spec would only add noise.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Leased {
    /// A trial under this attempt.
    Trial(TrialSpec, u32),
    /// Nothing now.
    Wait,
    /// The sweep is over.
    Finished,
    /// Nothing this worker can run is left (why).
    CannotRun(String),
}

/// A worker simulated by the test: it registers, leases, reports epochs and completes trials
/// with results that pass the coordinator's checks, exactly when the test says so.
pub struct FakeWorker {
    client: sweep_proto::Client,
    id: String,
}

impl FakeWorker {
    /// Connects to `url` and registers as `name` with `slots` slots.
    pub async fn register(url: &str, name: &str, slots: u32) -> FakeWorker {
        let channel = tonic::transport::Endpoint::from_shared(url.to_owned())
            .unwrap()
            .connect()
            .await
            .unwrap();
        let mut client = sweep_proto::auth::client(channel.clone(), sweep_proto::Bearer::none());
        let r = client
            .register(v1::RegisterRequest {
                protocol_version: sweep_proto::PROTOCOL_VERSION.into(),
                worker_name: name.to_owned(),
                device: Some(v1::Device {
                    kind: v1::DeviceKind::Cpu.into(),
                    index: 0,
                    name: String::new(),
                    memory_bytes: 0,
                }),
                slots,
            })
            .await
            .unwrap()
            .into_inner();
        // Later calls prove they come from this worker.
        let bearer = sweep_proto::Bearer::none()
            .with_worker_secret(&r.worker_secret)
            .unwrap();
        FakeWorker {
            client: sweep_proto::auth::client(channel, bearer),
            id: r.worker_id,
        }
    }

    /// Asks for a trial.
    pub async fn lease(&mut self) -> Leased {
        let r = self
            .client
            .lease(v1::LeaseRequest {
                worker_id: self.id.clone(),
            })
            .await
            .unwrap()
            .into_inner();
        match r.outcome.unwrap() {
            lease_response::Outcome::Assignment(a) => Leased::Trial(
                TrialSpec::try_from(&a.trial.unwrap()).unwrap(),
                a.lease.unwrap().attempt,
            ),
            lease_response::Outcome::Wait(_) => Leased::Wait,
            lease_response::Outcome::Finished(_) => Leased::Finished,
            lease_response::Outcome::CannotRun(c) => Leased::CannotRun(c.reason),
        }
    }

    /// Asks for a trial, which there must be.
    pub async fn lease_trial(&mut self) -> (TrialSpec, u32) {
        match self.lease().await {
            Leased::Trial(spec, attempt) => (spec, attempt),
            other => panic!("expected a trial, got {other:?}"),
        }
    }

    /// Reports epoch `epoch` of the lease, with test accuracy `test` (%) and `seconds`.
    pub async fn report(&mut self, spec: &TrialSpec, attempt: u32, epoch: u32, test: f64) {
        self.client
            .report_epoch(v1::ReportEpochRequest {
                worker_id: self.id.clone(),
                lease: Some(sweep_proto::lease_ref(spec.id, attempt)),
                metrics: Some((&metrics(epoch, test)).into()),
                batch: Vec::new(),
            })
            .await
            .unwrap();
    }

    /// Completes the lease with a result whose epochs have the test accuracies `curve` and
    /// whose final test accuracy is close to the last of them.
    pub async fn complete(&mut self, spec: &TrialSpec, attempt: u32, curve: &[f64]) {
        let result = result(spec, curve);
        self.client
            .complete(v1::CompleteRequest {
                worker_id: self.id.clone(),
                lease: Some(sweep_proto::lease_ref(spec.id, attempt)),
                outcome: Some(complete_request::Outcome::Result((&result).into())),
            })
            .await
            .unwrap();
    }

    /// Trains the lease at once: reports every epoch of `curve`, then completes.
    pub async fn train(&mut self, spec: &TrialSpec, attempt: u32, curve: &[f64]) {
        for (i, test) in curve.iter().enumerate() {
            self.report(spec, attempt, i as u32 + 1, *test).await;
        }
        self.complete(spec, attempt, curve).await;
    }
}

/// The metrics of epoch `epoch` with test accuracy `test` (%).
pub fn metrics(epoch: u32, test: f64) -> EpochMetrics {
    EpochMetrics {
        epoch,
        train_loss: 2.0 / f64::from(epoch + 1),
        train_accuracy: (test + 3.0).min(100.0),
        test_accuracy: test,
        seconds: 1.5,
        scalars: Default::default(),
    }
}

/// A matrix of `total` samples, about `accuracy` % of them right (class 0), the rest class 1.
fn matrix(total: u64, accuracy: f64) -> ConfusionMatrix {
    let correct = ((total as f64) * accuracy / 100.0).round() as u64;
    let mut m = ConfusionMatrix::zeros(10);
    m.counts[0] = correct.min(total);
    m.counts[1] = total - correct.min(total);
    m
}

/// A result that passes the coordinator's checks, with the test accuracies `curve`.
pub fn result(spec: &TrialSpec, curve: &[f64]) -> TrialResult {
    let n = IMAGES as usize;
    let (_, test) = spec.split.sizes(n);
    let train = spec.train_subset_len(n);
    let last = curve.last().copied().unwrap_or(50.0);
    let test_m = matrix(test as u64, last);
    let train_m = matrix(train as u64, (last + 3.0).min(100.0));
    TrialResult {
        epochs: curve
            .iter()
            .enumerate()
            .map(|(i, t)| metrics(i as u32 + 1, *t))
            .collect(),
        last: FinalMetrics {
            train_accuracy: train_m.accuracy(),
            test_accuracy: test_m.accuracy(),
            train_confusion: train_m,
            test_confusion: test_m,
            train_seconds: 1.5 * curve.len() as f64,
            dataset_images: IMAGES,
        },
    }
}

/// A raw HTTP/1.0 `GET` (the body ends when the connection closes); returns (status line,
/// body).
pub fn http_get(addr: &str, path: &str) -> (String, String) {
    use std::io::{Read, Write};
    let mut conn = std::net::TcpStream::connect(addr).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    conn.write_all(format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").as_bytes())
        .unwrap();
    let mut text = String::new();
    conn.read_to_string(&mut text).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    (
        head.lines().next().unwrap_or("").to_owned(),
        body.to_owned(),
    )
}
