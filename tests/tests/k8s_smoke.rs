//! What the manifests run, run here: each CPU overlay is rendered with `kubectl kustomize`, and
//! its coordinator and its workers (as many as the manifests ask for) are started as local
//! processes with their containers' exact command, args and environment, paths mapped to
//! temporary folders and the Service's address to the coordinator's loopback port (see
//! `sweep_tests::k8s::local`). The coordinator must pass its probes as the kubelet asks them,
//! serve the metrics the annotations point at, and the workers must complete a small sweep on
//! fixture Fashion-MNIST; restarted on the same volumes, the coordinator finds the sweep
//! finished. A flag renamed in the code and not in the manifests fails here.

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;
use sweep_tests::TrialExt as _;
use sweep_tests::k8s::local::{Pod, grpc_health, http_get};
use sweep_tests::k8s::{self, Manifests, Workload, array_at, container_port, flag, str_at};
use sweep_tests::{Process, START_TIMEOUT, Sweep, describe, write_fashion_mnist};

/// The grid the test puts in the grid's ConfigMap instead of the real one: four small trials.
const GRID: &str = r#"
[sweep]
name = "k8s-smoke"
seed = 3

[[experiment]]
name = "fashion"
dataset = "fashion-mnist"
trial_name = "f_{activation}_{hidden_layers}"

[experiment.fixed]
hidden_width = 16
batch_size = 64
epochs = 2

[experiment.grid]
activation = ["relu", "tanh"]
hidden_layers = [1, 2]
"#;

const FASHION_IMAGES: usize = 400;

/// The last word of a line (`listening on ADDR`).
fn address(line: &str) -> SocketAddr {
    line.rsplit(' ')
        .next()
        .and_then(|a| a.trim().parse().ok())
        .unwrap_or_else(|| panic!("no address in {line:?}"))
}

/// Runs the probe `probe` (`readinessProbe`...) of `container` as the kubelet would, against
/// `port_here`, the local port of the container port it names; returns the serving status.
fn probe(container: &Value, probe: &str, grpc_port: u64, grpc_here: SocketAddr) -> String {
    let p = container
        .pointer(&format!("/{probe}/grpc"))
        .unwrap_or_else(|| panic!("{probe} is a gRPC probe"));
    assert_eq!(
        container_port(container, &p["port"]),
        Some(grpc_port),
        "{probe}: the port"
    );
    let service = str_at(p, "/service").unwrap_or("");
    grpc_health(grpc_here, service).unwrap_or_else(|e| panic!("{probe} ({service:?}): {e}"))
}

/// Starts the coordinator of `m` in `dir`, with `GRID` in its ConfigMap; returns the process,
/// its pod and the local addresses of its gRPC and HTTP container ports.
fn start_coordinator(m: &Manifests, w: &Workload<'_>, dir: &Path) -> (Process, Pod, SocketAddr) {
    let c = w.container();
    let pod = Pod::new(m, w, &format!("{}-0", w.name), dir);
    let grid = flag(array_at(c, "/args"), "--grid").expect("--grid");
    let grid = pod.host_path(grid).expect("the grid file is on a volume");
    assert!(
        grid.is_file(),
        "{}: the ConfigMap has the grid file",
        m.name
    );
    std::fs::write(&grid, GRID).expect("write the grid");

    let mut process = Process::spawn(format!("{} coordinator", m.name), pod.command(c));
    let grpc = address(&process.wait_for_stdout_line("listening on ", START_TIMEOUT));
    let http = address(&process.wait_for_stdout_line("http on ", START_TIMEOUT));
    assert!(grpc.ip().is_loopback() && http.ip().is_loopback());

    // The kubelet's probes, on the ports they name.
    let grpc_port = container_port(c, &Value::from("grpc")).expect("a grpc port");
    for p in ["readinessProbe", "livenessProbe"] {
        assert_eq!(probe(c, p, grpc_port, grpc), "SERVING", "{}: {p}", m.name);
    }

    // Prometheus, where the annotations say.
    let annotations = w.pod_metadata().get("annotations").unwrap_or(&Value::Null);
    let port: u64 = str_at(annotations, "/prometheus.io~1port")
        .and_then(|p| p.parse().ok())
        .expect("a prometheus.io/port annotation");
    assert_eq!(container_port(c, &Value::from("http")), Some(port));
    let path = str_at(annotations, "/prometheus.io~1path").unwrap_or("/metrics");
    let (status, metrics) = http_get(http, path);
    assert!(status.contains(" 200 "), "{}: GET {path}: {status}", m.name);
    assert!(
        metrics
            .lines()
            .any(|l| l == "sweep_trials{state=\"pending\"} 4"),
        "{}: {metrics}",
        m.name
    );
    (process, pod, grpc)
}

/// The coordinator's Service: its name and gRPC port.
fn coordinator_service(m: &Manifests) -> (String, u64) {
    let service = m.services_of(&m.workload("coordinator"))[0];
    let name = str_at(service, "/metadata/name").expect("a Service name");
    let port = array_at(service, "/spec/ports")
        .iter()
        .find(|p| str_at(p, "/name") == Some("grpc"))
        .and_then(|p| p.pointer("/port"))
        .and_then(Value::as_u64)
        .expect("the Service's grpc port");
    (name.to_owned(), port)
}

/// Starts `w.replicas()` workers of `m`, each in a pod of its own with fixture data in its data
/// volume, routed to the coordinator at `coordinator`; returns them with their pod names.
fn start_workers(
    m: &Manifests,
    w: &Workload<'_>,
    dir: &Path,
    coordinator: SocketAddr,
) -> Vec<(Process, String)> {
    let c = w.container();
    let (service_name, service_port) = coordinator_service(m);
    let data_dir = c
        .pointer("/env")
        .and_then(Value::as_array)
        .and_then(|env| {
            env.iter()
                .find(|e| str_at(e, "/name") == Some("SWEEP_DATA_DIR"))
        })
        .and_then(|e| str_at(e, "/value"))
        .expect("SWEEP_DATA_DIR");
    let replicas = w.replicas();
    assert!(
        replicas >= 2,
        "{}: the smoke test wants two workers",
        m.name
    );
    (0..2)
        .map(|i| {
            let name = format!("{}-{i}", w.name);
            let mut pod = Pod::new(m, w, &name, &dir.join(&name));
            pod.route(&service_name, service_port, coordinator);
            let data = pod
                .host_path(data_dir)
                .expect("the data folder is a volume");
            write_fashion_mnist(&data, FASHION_IMAGES, 5);
            let command = pod.command(c);
            let args: Vec<String> = command
                .get_args()
                .map(|a| a.to_string_lossy().into_owned())
                .collect();
            assert!(
                args.contains(&format!("http://{coordinator}")),
                "{}: the worker's coordinator is not the Service: {args:?}",
                m.name
            );
            (Process::spawn(format!("{} {name}", m.name), command), name)
        })
        .collect()
}

fn smoke(overlay: &str) {
    let Some(kubectl) = k8s::kubectl() else {
        return;
    };
    let m = k8s::render(&kubectl, &k8s::overlay(overlay));
    let coordinator_w = m.workload("coordinator");
    let worker_w = m.workload("worker");
    // The harness's temporary folder (printed results.json on failure); the grid it writes is
    // not used: the coordinator reads the one in its ConfigMap's folder.
    let sweep = Sweep::new(GRID);
    let (mut coordinator, pod, grpc) =
        start_coordinator(&m, &coordinator_w, &sweep.mkdir("coordinator"));
    let mut workers = start_workers(&m, &worker_w, &sweep.mkdir("workers"), grpc);

    // Until the coordinator ends: a worker that exits first with an error (a flag it does not
    // know) fails the test at once.
    let deadline = Instant::now() + Duration::from_secs(180);
    while coordinator.try_status().is_none() {
        for (w, name) in &mut workers {
            if let Some(status) = w.try_status() {
                assert!(
                    status.success(),
                    "{overlay}: {name} failed: {}",
                    describe(status)
                );
            }
        }
        assert!(
            Instant::now() < deadline,
            "{overlay}: the sweep did not end in time"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    coordinator.expect_exit_code(0, Duration::ZERO);
    for (w, _) in &mut workers {
        w.expect_exit_code(0, Duration::from_secs(60));
    }
    let stdout = coordinator.stdout();
    assert!(
        stdout.contains("sweep finished: 4 trials succeeded"),
        "{overlay}: {stdout}"
    );

    // The results are on the state volume, where --out says.
    let out = flag(array_at(coordinator_w.container(), "/args"), "--out").expect("--out");
    let results_path = pod
        .host_path(out)
        .expect("--out on a volume")
        .join("results.json");
    let results = sweep_tests::results::read(&results_path);
    assert!(results.finished);
    assert_eq!(results.trials.len(), 4);
    for t in &results.trials {
        t.assert_consistent_result();
    }
    // The pod restarted on the same volumes (a StatefulSet restarts a coordinator that exits):
    // it resumes from its database, finds the sweep finished and exits at once, results kept.
    let mut again = Process::spawn(
        format!("{overlay} coordinator, restarted"),
        pod.command(coordinator_w.container()),
    );
    again.expect_exit_code(0, Duration::from_secs(60));
    assert!(
        again
            .stdout()
            .contains("sweep finished: 4 trials succeeded"),
        "{overlay}: {}",
        again.stdout()
    );
    let kept = sweep_tests::results::read(&results_path);
    let summary = |r: &sweep_tests::Results| -> Vec<(sweep_common::TrialId, u32, Option<f64>)> {
        r.trials
            .iter()
            .map(|t| (t.id, t.attempts, t.test_accuracy))
            .collect()
    };
    assert_eq!(summary(&kept), summary(&results), "{overlay}: results kept");

    // The workers are named after their pods ($(POD_NAME), from the downward API).
    for (_, name) in &workers {
        assert!(
            coordinator.stderr().contains(&format!("name={name} ")),
            "{overlay}: no worker named {name}"
        );
    }
}

#[test]
fn the_cpu_overlay_runs_a_sweep() {
    smoke("cpu");
}

#[test]
fn the_cpu_job_overlay_runs_a_sweep() {
    smoke("cpu-job");
}

/// The GPU overlays' workers cannot train here, but their command must be one the worker
/// accepts: run as rendered, it gets as far as the device check (and stops there without a GPU,
/// exit code 3, "this worker cannot run trials", not clap's 2 for a bad flag).
#[test]
fn the_gpu_overlays_workers_accept_their_flags() {
    let Some(kubectl) = k8s::kubectl() else {
        return;
    };
    for overlay in ["gpu", "gpu-job"] {
        let m = k8s::render(&kubectl, &k8s::overlay(overlay));
        let w = m.workload("worker");
        let sweep = Sweep::new(GRID);
        let mut pod = Pod::new(&m, &w, "sweep-worker-0", &sweep.mkdir("worker"));
        let (service, port) = coordinator_service(&m);
        // Nothing listens there: a worker that gets past its device check waits for it.
        pod.route(&service, port, "127.0.0.1:9".parse().expect("an address"));
        let mut worker = Process::spawn(format!("{overlay} worker"), pod.command(w.container()));
        let line = worker.wait_for("the device check", START_TIMEOUT, |o| {
            o.stderr
                .lines()
                .find(|l| l.contains("CUDA is not available") || l.contains("device ready"))
                .map(str::to_owned)
        });
        if line.contains("CUDA is not available") {
            worker.expect_exit_code(3, Duration::from_secs(30));
        }
    }
}
