//! The Kubernetes manifests (`deploy/k8s/`), checked without a cluster: the tools that render
//! and validate them, their rendered documents as JSON, and queries on the workloads in them.
//! [`local`] runs a rendered container as a local process.
//!
//! The tools come from `sweep_setup_k8s` (scripts/setup), which exports `SWEEP_KUBECTL` and
//! `SWEEP_KUBERNETES_VALIDATE`; without them `kubectl` and `kubernetes-validate` are looked for
//! on `PATH`. A missing tool skips the test with a message, or fails it when `SWEEP_REQUIRE_K8S`
//! is set (as scripts/test and CI do).

pub mod local;

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Map, Value};
use yaml_rust2::{Yaml, YamlLoader};

/// The repository's root folder.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the tests crate is inside the repository")
        .to_path_buf()
}

/// Every overlay: the folders of `deploy/k8s/overlays/`, sorted.
pub fn overlays() -> Vec<PathBuf> {
    let dir = repo_root().join("deploy/k8s/overlays");
    let mut found: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .map(|entry| entry.expect("a folder entry").path())
        .filter(|p| p.join("kustomization.yaml").is_file())
        .collect();
    found.sort();
    assert!(!found.is_empty(), "no overlay in {}", dir.display());
    found
}

/// The overlay `name` (`deploy/k8s/overlays/NAME`).
pub fn overlay(name: &str) -> PathBuf {
    let dir = repo_root().join("deploy/k8s/overlays").join(name);
    assert!(dir.is_dir(), "no overlay {}", dir.display());
    dir
}

/// `kubectl`, or `None` (with a message) when the test is to be skipped.
pub fn kubectl() -> Option<PathBuf> {
    tool("kubectl", "SWEEP_KUBECTL")
}

/// `kubernetes-validate`, or `None` (with a message) when the test is to be skipped.
pub fn kubernetes_validate() -> Option<PathBuf> {
    tool("kubernetes-validate", "SWEEP_KUBERNETES_VALIDATE")
}

fn tool(name: &str, var: &str) -> Option<PathBuf> {
    let found = match std::env::var_os(var) {
        Some(path) => Some(PathBuf::from(path)).filter(|p| p.is_file()),
        None => std::env::var_os("PATH").and_then(|path| {
            std::env::split_paths(&path)
                .map(|dir| dir.join(name))
                .find(|p| p.is_file())
        }),
    };
    if found.is_none() {
        let message = format!(
            "{name} not found (${var}, PATH): run `source scripts/setup && sweep_setup_k8s`, \
             which installs it"
        );
        let required =
            std::env::var_os("SWEEP_REQUIRE_K8S").is_some_and(|v| !v.is_empty() && v != "0");
        assert!(!required, "{message} (SWEEP_REQUIRE_K8S is set)");
        eprintln!("skipped: {message}");
    }
    found
}

/// The Kubernetes versions the manifests must be valid for: the oldest we claim, the newest the
/// pinned kubernetes-validate knows.
pub const KUBERNETES_VERSIONS: [&str; 2] = ["1.30.0", "1.37.0"];

/// The user (and group) both images run as, and the pods ask for.
pub const USER: u64 = 65532;

/// Every overlay, rendered; `None` (test skipped) without kubectl.
pub fn render_overlays() -> Option<Vec<Manifests>> {
    let kubectl = kubectl()?;
    Some(overlays().iter().map(|dir| render(&kubectl, dir)).collect())
}

/// Runs `kubernetes-validate --strict` on `yaml` for `version`; returns (success, output).
pub fn validate(tool: &Path, yaml: &str, version: &str) -> (bool, String) {
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

/// The documents of a rendered kustomization, as JSON.
pub struct Manifests {
    /// The kustomization's folder name (`cpu`, `gpu-job`...).
    pub name: String,
    /// What `kubectl kustomize` printed.
    pub yaml: String,
    /// Its documents.
    pub docs: Vec<Value>,
}

/// Renders the kustomization in `dir` with `kubectl kustomize`.
pub fn render(kubectl: &Path, dir: &Path) -> Manifests {
    let out = Command::new(kubectl)
        .arg("kustomize")
        .arg(dir)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", kubectl.display()));
    assert!(
        out.status.success(),
        "kubectl kustomize {} failed: {}",
        dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let yaml = String::from_utf8(out.stdout).expect("kubectl prints UTF-8");
    let docs = yaml_to_json(&yaml).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    Manifests { name, yaml, docs }
}

/// The documents of a YAML stream as JSON values (YAML 1.2 core schema, as Kubernetes reads it).
pub fn yaml_to_json(text: &str) -> Result<Vec<Value>, String> {
    let docs = YamlLoader::load_from_str(text).map_err(|e| format!("invalid YAML: {e}"))?;
    docs.iter()
        .filter(|d| !matches!(d, Yaml::Null))
        .map(to_json)
        .collect()
}

fn to_json(y: &Yaml) -> Result<Value, String> {
    Ok(match y {
        Yaml::Null => Value::Null,
        Yaml::Boolean(b) => Value::Bool(*b),
        Yaml::Integer(i) => Value::from(*i),
        Yaml::Real(r) => {
            let x: f64 = r.parse().map_err(|_| format!("bad number {r}"))?;
            Value::from(x)
        }
        Yaml::String(s) => Value::String(s.clone()),
        Yaml::Array(items) => Value::Array(items.iter().map(to_json).collect::<Result<_, _>>()?),
        Yaml::Hash(hash) => {
            let mut map = Map::new();
            for (k, v) in hash {
                let key = match k {
                    Yaml::String(s) => s.clone(),
                    other => return Err(format!("a mapping key that is not a string: {other:?}")),
                };
                map.insert(key, to_json(v)?);
            }
            Value::Object(map)
        }
        Yaml::Alias(_) | Yaml::BadValue => return Err(format!("unsupported YAML node {y:?}")),
    })
}

/// The string at the JSON pointer `pointer` of `v` (`/metadata/name`), if there is one.
pub fn str_at<'a>(v: &'a Value, pointer: &str) -> Option<&'a str> {
    v.pointer(pointer).and_then(Value::as_str)
}

/// The array at `pointer` (empty when absent).
pub fn array_at<'a>(v: &'a Value, pointer: &str) -> &'a [Value] {
    v.pointer(pointer)
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

/// A document that runs pods: its kind, name and pod template.
#[derive(Debug, Clone, Copy)]
pub struct Workload<'a> {
    /// `StatefulSet`, `Deployment`, `Job`...
    pub kind: &'a str,
    /// `metadata.name`.
    pub name: &'a str,
    /// The whole document.
    pub doc: &'a Value,
}

/// The kinds that run pods: a Pod, and those with a pod template at `/spec/template`.
pub const WORKLOAD_KINDS: [&str; 6] = [
    "Pod",
    "Deployment",
    "StatefulSet",
    "DaemonSet",
    "ReplicaSet",
    "Job",
];

impl<'a> Workload<'a> {
    /// `kind/name`, for messages.
    pub fn id(&self) -> String {
        format!("{}/{}", self.kind, self.name)
    }

    /// The pod's (template's) `spec`.
    pub fn pod_spec(&self) -> &'a Value {
        let pointer = if self.kind == "Pod" {
            "/spec"
        } else {
            "/spec/template/spec"
        };
        self.doc
            .pointer(pointer)
            .unwrap_or_else(|| panic!("{} has no pod template", self.id()))
    }

    /// The pod's (template's) `metadata`.
    pub fn pod_metadata(&self) -> &'a Value {
        let pointer = if self.kind == "Pod" {
            "/metadata"
        } else {
            "/spec/template/metadata"
        };
        self.doc.pointer(pointer).unwrap_or(&Value::Null)
    }

    /// The value of the pod template's label `key`.
    pub fn label(&self, key: &str) -> Option<&'a str> {
        self.pod_metadata()
            .get("labels")
            .and_then(|l| l.get(key))
            .and_then(Value::as_str)
    }

    /// Its containers and init containers.
    pub fn containers(&self) -> Vec<&'a Value> {
        let spec = self.pod_spec();
        array_at(spec, "/initContainers")
            .iter()
            .chain(array_at(spec, "/containers"))
            .collect()
    }

    /// Its one container (panics if there are several).
    pub fn container(&self) -> &'a Value {
        let all = array_at(self.pod_spec(), "/containers");
        assert_eq!(all.len(), 1, "{}: one container expected", self.id());
        &all[0]
    }

    /// How many pods run at once: `replicas` (default 1) or a Job's `parallelism` (default 1);
    /// 1 for a Pod.
    pub fn replicas(&self) -> u64 {
        let field = match self.kind {
            "Pod" => return 1,
            "Job" => "/spec/parallelism",
            _ => "/spec/replicas",
        };
        self.doc.pointer(field).and_then(Value::as_u64).unwrap_or(1)
    }

    /// The pod volume `name`: from the pod spec, or a StatefulSet's claim template of that name
    /// (returned as `{"name": .., "persistentVolumeClaim": {"claimName": ..}}`).
    pub fn volume(&self, name: &str) -> Option<Value> {
        if let Some(v) = array_at(self.pod_spec(), "/volumes")
            .iter()
            .find(|v| str_at(v, "/name") == Some(name))
        {
            return Some(v.clone());
        }
        array_at(self.doc, "/spec/volumeClaimTemplates")
            .iter()
            .find(|t| str_at(t, "/metadata/name") == Some(name))
            .map(|t| {
                serde_json::json!({
                    "name": name,
                    "persistentVolumeClaim": { "claimName": str_at(t, "/metadata/name") },
                })
            })
    }
}

impl Manifests {
    /// The documents of kind `kind`.
    pub fn of_kind<'a>(&'a self, kind: &'a str) -> impl Iterator<Item = &'a Value> + 'a {
        self.docs
            .iter()
            .filter(move |d| str_at(d, "/kind") == Some(kind))
    }

    /// The document `kind/name`.
    pub fn get(&self, kind: &str, name: &str) -> Option<&Value> {
        self.docs
            .iter()
            .find(|d| str_at(d, "/kind") == Some(kind) && str_at(d, "/metadata/name") == Some(name))
    }

    /// Every document that runs pods.
    pub fn workloads(&self) -> Vec<Workload<'_>> {
        self.docs
            .iter()
            .filter_map(|doc| {
                let kind = str_at(doc, "/kind")?;
                WORKLOAD_KINDS.contains(&kind).then(|| Workload {
                    kind,
                    name: str_at(doc, "/metadata/name").unwrap_or(""),
                    doc,
                })
            })
            .collect()
    }

    /// The one workload whose pods are labelled `app.kubernetes.io/component: component`.
    pub fn workload(&self, component: &str) -> Workload<'_> {
        let found: Vec<Workload<'_>> = self
            .workloads()
            .into_iter()
            .filter(|w| w.label("app.kubernetes.io/component") == Some(component))
            .collect();
        assert_eq!(
            found.len(),
            1,
            "{}: one workload of component {component} expected, found {:?}",
            self.name,
            found.iter().map(Workload::id).collect::<Vec<_>>()
        );
        found[0]
    }

    /// The Services whose selector picks the pods of `w`.
    pub fn services_of(&self, w: &Workload<'_>) -> Vec<&Value> {
        self.of_kind("Service")
            .filter(|s| {
                s.pointer("/spec/selector")
                    .and_then(Value::as_object)
                    .is_some_and(|sel| {
                        !sel.is_empty()
                            && sel
                                .iter()
                                .all(|(k, v)| w.label(k).is_some() && w.label(k) == v.as_str())
                    })
            })
            .collect()
    }
}

/// The `containerPort` of the port named or numbered `port` (a Service's `targetPort`, a
/// probe's `port`) in `container`.
pub fn container_port(container: &Value, port: &Value) -> Option<u64> {
    let ports = array_at(container, "/ports");
    match port {
        Value::Number(n) => n.as_u64(),
        Value::String(name) => ports
            .iter()
            .find(|p| str_at(p, "/name") == Some(name))
            .and_then(|p| p.pointer("/containerPort"))
            .and_then(Value::as_u64),
        _ => None,
    }
}

/// The value following the flag `flag` in `args` (`--out DIR` or `--out=DIR`).
pub fn flag<'a>(args: &'a [Value], flag: &str) -> Option<&'a str> {
    let prefix = format!("{flag}=");
    args.iter().enumerate().find_map(|(i, a)| {
        let a = a.as_str()?;
        if a == flag {
            args.get(i + 1).and_then(Value::as_str)
        } else {
            a.strip_prefix(&prefix)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yaml_documents_become_json() {
        let docs =
            yaml_to_json("a: 1\nb: [x, \"2\", 3.5, true, null]\n---\nkind: K\nname: on\n---\n")
                .unwrap();
        assert_eq!(
            docs,
            [
                serde_json::json!({"a": 1, "b": ["x", "2", 3.5, true, null]}),
                // YAML 1.2: `on` is a string, as Kubernetes reads it.
                serde_json::json!({"kind": "K", "name": "on"}),
            ]
        );
        assert!(yaml_to_json("a: [").is_err());
    }

    #[test]
    fn flags_are_found_in_both_spellings() {
        let args = serde_json::json!(["--a", "1", "--b=2", "--c"]);
        let args = args.as_array().unwrap();
        assert_eq!(flag(args, "--a"), Some("1"));
        assert_eq!(flag(args, "--b"), Some("2"));
        assert_eq!(flag(args, "--c"), None);
        assert_eq!(flag(args, "--d"), None);
    }
}
