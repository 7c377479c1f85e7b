//! The policy every rendered overlay follows: the security settings of every pod (Pod Security
//! "restricted" and more), the coordinator's probes, state volume, Service and scraping, the
//! workers' address, device and drain, and NetworkPolicies that let only the workers, operators
//! and Prometheus reach the coordinator. Also the pod that fetches the results.

use std::path::Path;

use serde_json::Value;
use sweep_tests::k8s::{
    self, KUBERNETES_VERSIONS, Manifests, USER, Workload, array_at, container_port, flag, kubectl,
    kubernetes_validate, render, render_overlays, str_at, validate,
};

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
        // Exit 0 (the sweep is finished) is the only success: a drained worker (130) is
        // replaced without counting, a bad flag (2) ends the Job, and the rest are retried.
        assert_eq!(
            str_at(w.pod_spec(), "/restartPolicy"),
            Some("Never"),
            "{id}: podFailurePolicy needs restartPolicy Never"
        );
        let rules = array_at(w.doc, "/spec/podFailurePolicy/rules");
        let codes = |action: &str| -> Vec<u64> {
            rules
                .iter()
                .filter(|r| str_at(r, "/action") == Some(action))
                .flat_map(|r| array_at(r, "/onExitCodes/values"))
                .filter_map(Value::as_u64)
                .collect()
        };
        assert_eq!(codes("FailJob"), [2], "{id}: a bad flag ends the Job");
        assert_eq!(codes("Ignore"), [130], "{id}: a drained worker is replaced");
        assert!(
            rules.iter().any(|r| str_at(r, "/action") == Some("Ignore")
                && array_at(r, "/onPodConditions")
                    .iter()
                    .any(|c| str_at(c, "/type") == Some("DisruptionTarget"))),
            "{id}: a disrupted pod is not counted"
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
    let Some(all) = render_overlays() else {
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
