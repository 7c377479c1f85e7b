//! The Kubernetes manifests, checked without a cluster: every overlay of `deploy/k8s/overlays/`
//! renders with `kubectl kustomize` and validates against the Kubernetes schemas in strict mode
//! (`kubernetes-validate`), and the Job variants run the same pods as the StatefulSet and the
//! Deployment. (`k8s_policy.rs` checks what the pods must have, `k8s_images.rs` the images,
//! `k8s_smoke.rs` runs what the manifests run.)

use serde_json::Value;
use sweep_tests::k8s::{
    self, KUBERNETES_VERSIONS, Workload, kubectl, kubernetes_validate, render, render_overlays,
    validate,
};

#[test]
fn every_overlay_renders_and_validates_in_strict_mode() {
    let Some(tool) = kubernetes_validate() else {
        return;
    };
    let Some(all) = render_overlays() else {
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
