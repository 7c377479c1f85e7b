//! The Kubernetes manifests, checked without a cluster: every overlay of `deploy/k8s/overlays/`
//! renders with `kubectl kustomize`, validates against the Kubernetes schemas in strict mode
//! (`kubernetes-validate`), and follows our policy: the security settings of every pod, the
//! probes, resources, Service, NetworkPolicies and scraping of the coordinator, the workers'
//! device and drain, the Job variant's pods being the base's, and the images agreeing with the
//! Dockerfiles. (`k8s_smoke.rs` runs what the manifests run.)

use std::path::Path;
use std::process::Command;

use serde_json::Value;
use sweep_tests::k8s::{
    self, Manifests, Workload, array_at, container_port, flag, kubectl, kubernetes_validate,
    render, str_at,
};

/// The Kubernetes versions the manifests must be valid for: the oldest we claim, the newest the
/// pinned kubernetes-validate knows.
const KUBERNETES_VERSIONS: [&str; 2] = ["1.30.0", "1.37.0"];

/// The user (and group) both images run as, and the pods ask for.
const USER: u64 = 65532;

fn render_all() -> Option<Vec<Manifests>> {
    let kubectl = kubectl()?;
    Some(
        k8s::overlays()
            .iter()
            .map(|dir| render(&kubectl, dir))
            .collect(),
    )
}

/// Runs `kubernetes-validate --strict` on `yaml` for `version`; returns (success, output).
fn validate(tool: &Path, yaml: &str, version: &str) -> (bool, String) {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let file = dir.path().join("manifests.yaml");
    std::fs::write(&file, yaml).expect("write the manifests");
    let out = Command::new(tool)
        .args(["--strict", "--quiet", "--kubernetes-version", version])
        .arg(&file)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", tool.display()));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn every_overlay_renders_and_validates_in_strict_mode() {
    let Some(tool) = kubernetes_validate() else {
        return;
    };
    let Some(all) = render_all() else {
        return;
    };
    for m in &all {
        assert!(m.docs.len() >= 5, "{}: {} documents", m.name, m.docs.len());
        for version in KUBERNETES_VERSIONS {
            let (ok, out) = validate(&tool, &m.yaml, version);
            assert!(
                ok,
                "{} is not valid for Kubernetes {version}:\n{out}",
                m.name
            );
        }
    }
    // Strict mode is on: a field Kubernetes does not know is refused.
    let bad = all[0].yaml.replacen("spec:\n", "spec:\n  replicaz: 1\n", 1);
    let (ok, out) = validate(&tool, &bad, KUBERNETES_VERSIONS[1]);
    assert!(!ok, "an unknown field passed validation:\n{out}");
}

fn bool_at(v: &Value, pointer: &str) -> Option<bool> {
    v.pointer(pointer).and_then(Value::as_bool)
}

/// The restricted Pod Security Standard and more: what every pod of every overlay must have.
fn check_pod_security(m: &Manifests, w: &Workload<'_>) {
    let id = format!("{}: {}", m.name, w.id());
    let spec = w.pod_spec();
    assert_eq!(
        bool_at(spec, "/securityContext/runAsNonRoot"),
        Some(true),
        "{id}: runAsNonRoot"
    );
    assert_eq!(
        spec.pointer("/securityContext/runAsUser")
            .and_then(Value::as_u64),
        Some(USER),
        "{id}: runAsUser (the images' user)"
    );
    assert_eq!(
        str_at(spec, "/securityContext/seccompProfile/type"),
        Some("RuntimeDefault"),
        "{id}: seccomp"
    );
    assert_eq!(
        bool_at(spec, "/automountServiceAccountToken"),
        Some(false),
        "{id}: no API token in the pod"
    );
    for host in ["hostNetwork", "hostPID", "hostIPC"] {
        assert_ne!(
            bool_at(spec, &format!("/{host}")),
            Some(true),
            "{id}: {host}"
        );
    }
    for v in array_at(spec, "/volumes") {
        let allowed = [
            "configMap",
            "secret",
            "emptyDir",
            "persistentVolumeClaim",
            "projected",
        ];
        assert!(
            v.as_object().is_some_and(|o| o
                .keys()
                .all(|k| k == "name" || allowed.contains(&k.as_str()))),
            "{id}: volume type not allowed: {v}"
        );
    }
    for c in w.containers() {
        let name = str_at(c, "/name").unwrap_or("?");
        let cid = format!("{id} container {name}");
        let sc = c.pointer("/securityContext").unwrap_or(&Value::Null);
        assert_eq!(
            bool_at(sc, "/allowPrivilegeEscalation"),
            Some(false),
            "{cid}: privilege escalation"
        );
        assert_ne!(bool_at(sc, "/privileged"), Some(true), "{cid}: privileged");
        assert_eq!(
            bool_at(sc, "/readOnlyRootFilesystem"),
            Some(true),
            "{cid}: read-only root"
        );
        let drop: Vec<&str> = array_at(sc, "/capabilities/drop")
            .iter()
            .filter_map(Value::as_str)
            .collect();
        assert_eq!(drop, ["ALL"], "{cid}: capabilities dropped");
        assert!(
            array_at(sc, "/capabilities/add").is_empty(),
            "{cid}: capabilities added"
        );
        for p in array_at(c, "/ports") {
            assert!(p.get("hostPort").is_none(), "{cid}: hostPort");
        }
        for what in ["requests/cpu", "requests/memory", "limits/memory"] {
            assert!(
                c.pointer(&format!("/resources/{what}")).is_some(),
                "{cid}: resources.{}",
                what.replace('/', ".")
            );
        }
        let image = str_at(c, "/image").unwrap_or("");
        let tag = image.rsplit_once(':').map_or("", |(_, t)| t);
        assert!(
            !tag.is_empty() && !tag.contains('/') && tag != "latest",
            "{cid}: image {image:?} needs a tag other than latest"
        );
        // A read-only root file system: whatever the program writes is on a volume.
        let mounts: Vec<&str> = array_at(c, "/volumeMounts")
            .iter()
            .filter_map(|v| str_at(v, "/mountPath"))
            .collect();
        assert!(mounts.contains(&"/tmp"), "{cid}: /tmp is a volume");
        for word in array_at(c, "/args").iter().filter_map(Value::as_str) {
            if word.starts_with('/') {
                assert!(
                    mounts
                        .iter()
                        .any(|m| word == *m || word.starts_with(&format!("{m}/"))),
                    "{cid}: {word} is on the read-only root file system"
                );
            }
        }
    }
}

/// The mount of `container` that holds `path`.
fn mount_of<'a>(container: &'a Value, path: &str) -> Option<&'a Value> {
    array_at(container, "/volumeMounts")
        .iter()
        .filter(|v| {
            str_at(v, "/mountPath").is_some_and(|m| path == m || path.starts_with(&format!("{m}/")))
        })
        .max_by_key(|v| str_at(v, "/mountPath").map_or(0, str::len))
}

fn check_coordinator(m: &Manifests) {
    let w = m.workload("coordinator");
    let id = format!("{}: {}", m.name, w.id());
    assert!(
        ["StatefulSet", "Job"].contains(&w.kind),
        "{id}: StatefulSet or Job"
    );
    assert_eq!(w.replicas(), 1, "{id}: one coordinator");
    let c = w.container();
    let args = array_at(c, "/args");
    let grpc = container_port(c, &Value::from("grpc")).expect("a port named grpc");
    let http = container_port(c, &Value::from("http")).expect("a port named http");
    assert_eq!(
        flag(args, "--listen"),
        Some(format!("0.0.0.0:{grpc}").as_str()),
        "{id}: --listen"
    );
    assert_eq!(
        flag(args, "--http"),
        Some(format!("0.0.0.0:{http}").as_str()),
        "{id}: --http"
    );

    // Probes: grpc.health.v1 on the gRPC port.
    for (probe, service) in [
        ("readinessProbe", Some("sweep.v1.SweepService")),
        ("livenessProbe", None),
    ] {
        let p = c
            .pointer(&format!("/{probe}/grpc"))
            .unwrap_or_else(|| panic!("{id}: {probe} is a gRPC probe"));
        assert_eq!(
            container_port(c, &p["port"]),
            Some(grpc),
            "{id}: {probe} port"
        );
        assert_eq!(str_at(p, "/service"), service, "{id}: {probe} service");
    }

    // The state (--state-dir, the database a restarted coordinator resumes from) and the
    // results (--out) on a PersistentVolumeClaim, writable; the grid from a ConfigMap.
    assert!(flag(args, "--state-dir").is_some(), "{id}: --state-dir");
    for option in ["--out", "--state-dir"] {
        let path = flag(args, option).expect("the option");
        let mount =
            mount_of(c, path).unwrap_or_else(|| panic!("{id}: {option} {path} is on no volume"));
        assert_ne!(
            bool_at(mount, "/readOnly"),
            Some(true),
            "{id}: {option} is read-only"
        );
        let volume = w
            .volume(str_at(mount, "/name").unwrap_or(""))
            .expect("the volume");
        let claim = str_at(&volume, "/persistentVolumeClaim/claimName")
            .unwrap_or_else(|| panic!("{id}: {option} is on a PVC: {volume}"));
        let templated = array_at(w.doc, "/spec/volumeClaimTemplates")
            .iter()
            .any(|t| str_at(t, "/metadata/name") == Some(claim));
        assert!(
            templated || m.get("PersistentVolumeClaim", claim).is_some(),
            "{id}: no PVC {claim}"
        );
    }
    let grid = flag(args, "--grid").expect("--grid");
    let mount = mount_of(c, grid).unwrap_or_else(|| panic!("{id}: --grid {grid} is on no volume"));
    let volume = w
        .volume(str_at(mount, "/name").unwrap_or(""))
        .expect("the volume");
    let config_map = str_at(&volume, "/configMap/name").expect("the grid comes from a ConfigMap");
    let key = Path::new(grid)
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("");
    let text = m
        .get("ConfigMap", config_map)
        .and_then(|cm| cm.pointer("/data"))
        .and_then(|d| d.get(key))
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("{id}: ConfigMap {config_map} has no key {key}"));
    sweep_common::grid::Grid::parse(text, key)
        .unwrap_or_else(|e| panic!("{id}: the ConfigMap's grid file is invalid: {e}"));

    // The Service: the gRPC port and the web view's, by name.
    let services = m.services_of(&w);
    assert_eq!(services.len(), 1, "{id}: one Service");
    for (name, port) in [("grpc", grpc), ("http", http)] {
        let sp = array_at(services[0], "/spec/ports")
            .iter()
            .find(|p| str_at(p, "/name") == Some(name))
            .unwrap_or_else(|| panic!("{id}: the Service has no port {name}"));
        assert_eq!(
            container_port(c, &sp["targetPort"]),
            Some(port),
            "{id}: Service port {name}"
        );
    }

    // Scraping: the annotations name the web view's port and /metrics.
    let annotations = w.pod_metadata().get("annotations").unwrap_or(&Value::Null);
    assert_eq!(
        str_at(annotations, "/prometheus.io~1scrape"),
        Some("true"),
        "{id}: scrape"
    );
    assert_eq!(
        str_at(annotations, "/prometheus.io~1port"),
        Some(http.to_string().as_str()),
        "{id}: port"
    );
    assert_eq!(
        str_at(annotations, "/prometheus.io~1path"),
        Some("/metrics"),
        "{id}: path"
    );

    if w.kind == "Job" {
        assert_eq!(
            str_at(w.pod_spec(), "/restartPolicy"),
            Some("Never"),
            "{id}"
        );
        let exit_codes: Vec<u64> = array_at(w.doc, "/spec/podFailurePolicy/rules")
            .iter()
            .filter(|r| str_at(r, "/action") == Some("FailJob"))
            .flat_map(|r| array_at(r, "/onExitCodes/values"))
            .filter_map(Value::as_u64)
            .collect();
        assert_eq!(exit_codes, [1, 2], "{id}: exit codes 1 and 2 end the Job");
    }
}

/// `90s`, `2m`, `1h` in seconds.
fn seconds(duration: &str) -> u64 {
    let (n, unit) = duration.split_at(duration.len().saturating_sub(1));
    let n: u64 = n
        .parse()
        .unwrap_or_else(|_| panic!("not a duration: {duration}"));
    match unit {
        "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        _ => panic!("not a duration: {duration}"),
    }
}

fn check_workers(m: &Manifests) {
    let w = m.workload("worker");
    let id = format!("{}: {}", m.name, w.id());
    assert!(
        ["Deployment", "Job"].contains(&w.kind),
        "{id}: Deployment or Job"
    );
    let c = w.container();
    let args = array_at(c, "/args");

    // The coordinator's address is its Service's gRPC port.
    let coordinator = m.workload("coordinator");
    let service = m.services_of(&coordinator)[0];
    let port = array_at(service, "/spec/ports")
        .iter()
        .find(|p| str_at(p, "/name") == Some("grpc"))
        .and_then(|p| p.pointer("/port"))
        .and_then(Value::as_u64)
        .expect("the Service's grpc port");
    let name = str_at(service, "/metadata/name").unwrap_or("");
    assert_eq!(
        flag(args, "--coordinator"),
        Some(format!("http://{name}:{port}").as_str()),
        "{id}: --coordinator"
    );

    // Drain: SIGTERM gives the leases back; the grace period leaves time for it.
    let grace = w
        .pod_spec()
        .pointer("/terminationGracePeriodSeconds")
        .and_then(Value::as_u64)
        .unwrap_or(30);
    // The worker's default --drain-timeout is 20s.
    let drain = seconds(flag(args, "--drain-timeout").unwrap_or("20s"));
    assert!(
        drain + 15 <= grace,
        "{id}: --drain-timeout {drain}s leaves too little of terminationGracePeriodSeconds {grace}"
    );
    if w.kind == "Job" {
        assert!(
            w.doc.pointer("/spec/completions").is_none(),
            "{id}: a work queue"
        );
    }

    // One device per worker.
    let gpu = c.pointer("/resources/limits/nvidia.com~1gpu");
    match (flag(args, "--gpu"), args.iter().any(|a| a == "--cpu")) {
        (Some(index), false) => {
            assert_eq!(index, "0", "{id}: the pod's one GPU is device 0");
            assert_eq!(
                gpu.and_then(Value::as_u64),
                Some(1),
                "{id}: nvidia.com/gpu: 1"
            );
            if let Some(threads) = flag(args, "--threads") {
                assert_eq!(
                    str_at(c, "/resources/limits/cpu"),
                    Some(threads),
                    "{id}: --threads is the CPU limit"
                );
            }
            assert!(
                array_at(w.pod_spec(), "/tolerations")
                    .iter()
                    .any(|t| str_at(t, "/key") == Some("nvidia.com/gpu")),
                "{id}: tolerates GPU nodes' taint"
            );
        }
        (None, true) => {
            assert!(gpu.is_none(), "{id}: a CPU worker asks for no GPU");
            let threads = flag(args, "--threads").expect("--threads on the CPU");
            assert_eq!(
                str_at(c, "/resources/limits/cpu"),
                Some(threads),
                "{id}: --threads is the CPU limit"
            );
        }
        other => panic!("{id}: exactly one of --cpu, --gpu N: {other:?}"),
    }
}

fn check_network_policies(m: &Manifests) {
    let policies: Vec<&Value> = m.of_kind("NetworkPolicy").collect();
    let selects = |p: &Value, component: &str| {
        str_at(
            p,
            "/spec/podSelector/matchLabels/app.kubernetes.io~1component",
        ) == Some(component)
    };
    let coordinator = m.workload("coordinator");
    let c = coordinator.container();
    let ports: Vec<u64> = array_at(c, "/ports")
        .iter()
        .filter_map(|p| p.pointer("/containerPort").and_then(Value::as_u64))
        .collect();
    let p = policies
        .iter()
        .find(|p| selects(p, "coordinator"))
        .unwrap_or_else(|| panic!("{}: no NetworkPolicy for the coordinator", m.name));
    let types: Vec<&str> = array_at(p, "/spec/policyTypes")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        types.contains(&"Ingress"),
        "{}: isolates the coordinator's ingress",
        m.name
    );
    let rules = array_at(p, "/spec/ingress");
    assert!(!rules.is_empty());
    let mut from_workers = false;
    for rule in rules {
        let peers = array_at(rule, "/from");
        assert!(
            !peers.is_empty(),
            "{}: a rule open to everyone: {rule}",
            m.name
        );
        for peer in peers {
            assert!(
                peer.get("ipBlock").is_none(),
                "{}: no ipBlock: {peer}",
                m.name
            );
            let own_namespace = peer.get("namespaceSelector").is_none();
            if own_namespace
                && str_at(
                    peer,
                    "/podSelector/matchLabels/app.kubernetes.io~1component",
                ) == Some("worker")
            {
                from_workers = true;
            }
            assert!(
                peer.pointer("/podSelector/matchLabels")
                    .and_then(Value::as_object)
                    .is_some_and(|l| !l.is_empty()),
                "{}: every peer names its pods: {peer}",
                m.name
            );
        }
        for port in array_at(rule, "/ports") {
            let n = port
                .pointer("/port")
                .and_then(Value::as_u64)
                .expect("a port number");
            assert!(
                ports.contains(&n),
                "{}: port {n} is not the coordinator's",
                m.name
            );
        }
        assert!(
            !array_at(rule, "/ports").is_empty(),
            "{}: a rule without ports",
            m.name
        );
    }
    assert!(
        from_workers,
        "{}: the workers reach the coordinator",
        m.name
    );
    let workers = policies
        .iter()
        .find(|p| selects(p, "worker"))
        .unwrap_or_else(|| panic!("{}: no NetworkPolicy for the workers", m.name));
    assert!(
        array_at(workers, "/spec/ingress").is_empty(),
        "{}: nothing reaches a worker",
        m.name
    );
}

#[test]
fn every_pod_follows_the_policy() {
    let Some(all) = render_all() else {
        return;
    };
    for m in &all {
        let workloads = m.workloads();
        assert_eq!(
            workloads.len(),
            2,
            "{}: the coordinator and the workers",
            m.name
        );
        for w in &workloads {
            check_pod_security(m, w);
        }
        check_coordinator(m);
        check_workers(m);
        check_network_policies(m);
    }
}

/// A pod spec without what a Job changes: its restart policy, and where the state volume comes
/// from (a StatefulSet's claim template or the Job's own claim).
fn comparable(w: &Workload<'_>) -> Value {
    let mut spec = w.pod_spec().clone();
    if let Some(o) = spec.as_object_mut() {
        o.remove("restartPolicy");
        if let Some(volumes) = o.get_mut("volumes").and_then(Value::as_array_mut) {
            volumes.retain(|v| v.get("persistentVolumeClaim").is_none() || v["name"] != "state");
        }
    }
    spec
}

#[test]
fn the_job_variant_runs_the_same_pods() {
    let Some(kubectl) = kubectl() else {
        return;
    };
    for device in ["cpu", "gpu"] {
        let long = render(&kubectl, &k8s::overlay(device));
        let job = render(&kubectl, &k8s::overlay(&format!("{device}-job")));
        for component in ["coordinator", "worker"] {
            let (a, b) = (long.workload(component), job.workload(component));
            assert_eq!(b.kind, "Job", "{}: {component}", job.name);
            assert_eq!(
                comparable(&a),
                comparable(&b),
                "{device}: {component} pods differ"
            );
            assert_eq!(
                a.pod_metadata(),
                b.pod_metadata(),
                "{device}: {component} labels"
            );
            assert_eq!(a.replicas(), b.replicas(), "{device}: {component} replicas");
        }
    }
}

/// The Dockerfile `deploy/docker/NAME.Dockerfile`.
fn dockerfile(name: &str) -> String {
    let path = k8s::repo_root().join(format!("deploy/docker/{name}.Dockerfile"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn the_images_are_what_the_manifests_expect() {
    let Some(kubectl) = kubectl() else {
        return;
    };
    let m = render(&kubectl, &k8s::overlay("cpu"));
    for (name, component) in [("coordinator", "coordinator"), ("worker", "worker")] {
        let text = dockerfile(name);
        let lines: Vec<&str> = text.lines().map(str::trim).collect();
        let stages = lines.iter().filter(|l| l.starts_with("FROM ")).count();
        assert!(stages >= 2, "{name}: a multi-stage build");
        let entrypoint = format!("ENTRYPOINT [\"/usr/local/bin/{name}\"]");
        assert!(lines.contains(&entrypoint.as_str()), "{name}: {entrypoint}");
        let user = lines
            .iter()
            .rev()
            .find_map(|l| l.strip_prefix("USER "))
            .expect("a USER");
        assert_eq!(
            user,
            format!("{USER}:{USER}"),
            "{name}: a numeric non-root user"
        );
        let command = array_at(m.workload(component).container(), "/command");
        assert_eq!(
            command,
            [Value::from(format!("/usr/local/bin/{name}"))],
            "{name}"
        );
    }
    // The coordinator's image builds the coordinator alone (no libtorch); the worker's takes
    // the libtorch that scripts/setup builds against.
    let coordinator = dockerfile("coordinator");
    assert!(
        coordinator
            .contains("cargo build --release --locked -p sweep-coordinator --bin coordinator")
    );
    assert!(!coordinator.contains("sweep-worker") && !coordinator.contains("pip install"));
    let setup =
        std::fs::read_to_string(k8s::repo_root().join("scripts/setup")).expect("scripts/setup");
    let torch = setup
        .lines()
        .find_map(|l| l.trim().strip_prefix("local torch_version="))
        .expect("scripts/setup's torch version");
    assert!(
        dockerfile("worker").contains(&format!("ARG TORCH_VERSION={torch}\n")),
        "the worker's image uses torch {torch}, as scripts/setup"
    );
    let ignore =
        std::fs::read_to_string(k8s::repo_root().join(".dockerignore")).expect(".dockerignore");
    for path in ["target", ".git", "runs"] {
        assert!(
            ignore.lines().any(|l| l.trim() == path),
            ".dockerignore leaves out {path}"
        );
    }
}

#[test]
fn the_results_fetching_pod_validates_and_mounts_the_state() {
    let Some(tool) = kubernetes_validate() else {
        return;
    };
    let Some(kubectl) = kubectl() else {
        return;
    };
    let path = k8s::repo_root().join("deploy/k8s/fetch-results.yaml");
    let yaml = std::fs::read_to_string(&path).expect("deploy/k8s/fetch-results.yaml");
    for version in KUBERNETES_VERSIONS {
        let (ok, out) = validate(&tool, &yaml, version);
        assert!(
            ok,
            "{} is not valid for Kubernetes {version}:\n{out}",
            path.display()
        );
    }
    let m = Manifests {
        name: "fetch-results".into(),
        docs: k8s::yaml_to_json(&yaml).expect("YAML"),
        yaml,
    };
    let pod = m.workload("fetch-results");
    check_pod_security(&m, &pod);

    // It mounts the StatefulSet's claim where the coordinator mounts it.
    let cpu = render(&kubectl, &k8s::overlay("cpu"));
    let sts = cpu.workload("coordinator");
    let template = array_at(sts.doc, "/spec/volumeClaimTemplates")[0].clone();
    let template = str_at(&template, "/metadata/name").expect("a claim template name");
    let claim = format!("{template}-{}-0", sts.name);
    let mount_path = |w: &Workload<'_>, volume: &str| {
        array_at(w.container(), "/volumeMounts")
            .iter()
            .find(|v| str_at(v, "/name") == Some(volume))
            .and_then(|v| str_at(v, "/mountPath"))
            .map(str::to_owned)
    };
    let volume = array_at(pod.pod_spec(), "/volumes")
        .iter()
        .find(|v| str_at(v, "/persistentVolumeClaim/claimName") == Some(claim.as_str()))
        .and_then(|v| str_at(v, "/name"))
        .unwrap_or_else(|| panic!("the pod mounts {claim}"));
    assert_eq!(mount_path(&pod, volume), mount_path(&sts, template));
}

/// (library, where it was found) for each shared library `binary` loads, from `ldd`.
fn shared_libraries(binary: &Path) -> Vec<(String, String)> {
    let out = Command::new("ldd")
        .arg(binary)
        .output()
        .unwrap_or_else(|e| panic!("cannot run ldd: {e}"));
    assert!(out.status.success(), "ldd {}", binary.display());
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let l = l.trim();
            let name = l.split_whitespace().next()?;
            let path = l.split(" => ").nth(1).unwrap_or(name);
            let path = path.split(" (").next().unwrap_or(path);
            assert_ne!(path, "not found", "{}: {name} not found", binary.display());
            Some((name.to_owned(), path.to_owned()))
        })
        .collect()
}

/// What glibc and libgcc provide: all that distroless/cc (the coordinator's base) has, and what
/// every base image has.
const SYSTEM_LIBRARIES: [&str; 10] = [
    "linux-vdso.so.1",
    "libc.so.6",
    "libm.so.6",
    "libgcc_s.so.1",
    "libpthread.so.0",
    "libdl.so.2",
    "librt.so.1",
    "libutil.so.1",
    "/lib64/ld-linux-x86-64.so.2",
    "ld-linux-x86-64.so.2",
];

#[test]
fn the_binaries_need_only_what_their_images_hold() {
    // The coordinator: glibc and libgcc only (distroless/cc), no libtorch, no libsqlite.
    for (name, _) in shared_libraries(&sweep_tests::bin("coordinator")) {
        assert!(
            SYSTEM_LIBRARIES.contains(&name.as_str()),
            "the coordinator links {name}, which its image lacks"
        );
    }
    // The worker: besides those and libstdc++ (on the CUDA base), only libraries from the torch
    // wheel's torch/lib, which its image copies (with nvidia/ beside it).
    let mut torch = 0;
    for (name, path) in shared_libraries(&sweep_tests::bin("worker")) {
        if SYSTEM_LIBRARIES.contains(&name.as_str()) || name == "libstdc++.so.6" {
            continue;
        }
        let dir = Path::new(&path)
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default();
        assert!(
            dir.ends_with("torch/lib") || dir.components().any(|c| c.as_os_str() == "nvidia"),
            "the worker links {name} from {path}, which its image does not copy"
        );
        torch += 1;
    }
    assert!(torch >= 3, "the worker links libtorch");
}
