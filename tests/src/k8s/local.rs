//! Runs a container of a rendered manifest as a local process, as the kubelet would run it in a
//! pod, with what a pod has mapped to this machine:
//!
//! - each volume mount is a folder of the pod's own (a ConfigMap's is filled with its keys, from
//!   the rendered ConfigMap), and a path under a mount path, in an argument or an environment
//!   value, becomes the same path under that folder;
//! - `command[0]` (`/usr/local/bin/NAME`, where the images install the binaries) is the binary
//!   `NAME` of `SWEEP_BIN_DIR`;
//! - a listen address on all interfaces (`0.0.0.0:PORT`) becomes `127.0.0.1:0` (a free port);
//!   a Service's address (`NAME:PORT`, `NAME.NAMESPACE.svc...:PORT`) becomes the address that
//!   the test gives for it;
//! - the environment is the container's only (plus `PATH`), `$(VAR)` references expanded as the
//!   kubelet does, `fieldRef`s answered for the pod.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use super::{Manifests, Workload, array_at, str_at};

/// A pod on this machine: its name, namespace, and the folders its volume mounts are.
pub struct Pod {
    /// `metadata.name`, as a `fieldRef` reads it.
    pub name: String,
    /// `metadata.namespace`.
    pub namespace: String,
    /// (mount path in the container, folder here), longest mount path first.
    pub mounts: Vec<(String, PathBuf)>,
    /// (Service address as the manifests write it, address here).
    pub addresses: Vec<(String, String)>,
}

impl Pod {
    /// A pod `name` of workload `w`, its mounts as folders under `dir` (created). A ConfigMap
    /// volume is filled with the rendered ConfigMap's keys.
    pub fn new(manifests: &Manifests, w: &Workload<'_>, name: &str, dir: &Path) -> Pod {
        let namespace = str_at(w.doc, "/metadata/namespace")
            .unwrap_or("default")
            .to_owned();
        let mut mounts = Vec::new();
        for mount in w
            .containers()
            .iter()
            .flat_map(|c| array_at(c, "/volumeMounts"))
        {
            let path = str_at(mount, "/mountPath").expect("a mountPath");
            let volume = str_at(mount, "/name").expect("a volume name");
            let source = w
                .volume(volume)
                .unwrap_or_else(|| panic!("{}: no volume {volume}", w.id()));
            let host = dir.join(volume);
            std::fs::create_dir_all(&host).expect("create a volume folder");
            if let Some(config_map) = str_at(&source, "/configMap/name") {
                let doc = manifests
                    .get("ConfigMap", config_map)
                    .unwrap_or_else(|| panic!("{}: no ConfigMap {config_map}", w.id()));
                for (key, value) in doc
                    .pointer("/data")
                    .and_then(Value::as_object)
                    .into_iter()
                    .flatten()
                {
                    std::fs::write(host.join(key), value.as_str().unwrap_or(""))
                        .expect("write a ConfigMap key");
                }
            }
            if let Some(secret) = str_at(&source, "/secret/secretName") {
                // Secrets are made by the user, not rendered: fill the tokens one with the
                // harness's sentinel tokens (which no process may ever print).
                assert_eq!(
                    secret,
                    "sweep-tokens",
                    "{}: unknown Secret {secret}",
                    w.id()
                );
                let all = [
                    ("worker", crate::SENTINEL_TOKENS[0]),
                    ("operator", crate::SENTINEL_TOKENS[1]),
                ];
                let items: Vec<&str> = array_at(&source, "/secret/items")
                    .iter()
                    .filter_map(|i| str_at(i, "/key"))
                    .collect();
                for (key, token) in all {
                    if items.is_empty() || items.contains(&key) {
                        std::fs::write(host.join(key), token).expect("write a Secret key");
                    }
                }
            }
            mounts.push((path.trim_end_matches('/').to_owned(), host));
        }
        mounts.sort_by_key(|(path, _)| std::cmp::Reverse(path.len()));
        Pod {
            name: name.to_owned(),
            namespace,
            mounts,
            addresses: Vec::new(),
        }
    }

    /// The folder here that the container's `path` is in (the path itself, mapped).
    pub fn host_path(&self, path: &str) -> Option<PathBuf> {
        self.mounts.iter().find_map(|(mount, host)| {
            let rest = path.strip_prefix(mount.as_str())?;
            if rest.is_empty() {
                Some(host.clone())
            } else {
                rest.strip_prefix('/').map(|r| host.join(r))
            }
        })
    }

    /// Makes the Service `service` (port `port`) reach `here`, under each name a pod of
    /// namespace `self.namespace` can use for it.
    pub fn route(&mut self, service: &str, port: u64, here: SocketAddr) {
        let ns = &self.namespace;
        for host in [
            format!("{service}.{ns}.svc.cluster.local"),
            format!("{service}.{ns}.svc"),
            format!("{service}.{ns}"),
            service.to_owned(),
        ] {
            self.addresses
                .push((format!("{host}:{port}"), here.to_string()));
        }
    }

    /// `s` as it must read here: a path under a mount, a listen address on all interfaces or a
    /// Service's address mapped.
    pub fn map(&self, s: &str) -> String {
        if let Some(path) = self.host_path(s) {
            return path.to_string_lossy().into_owned();
        }
        for any in ["0.0.0.0:", "[::]:"] {
            if s.strip_prefix(any)
                .is_some_and(|port| port.parse::<u16>().is_ok())
            {
                return "127.0.0.1:0".to_owned();
            }
        }
        // Longest names first: `svc.ns.svc.cluster.local:P` before `svc:P`.
        let mut out = s.to_owned();
        for (from, to) in &self.addresses {
            if let Some(at) = out.find(from.as_str()) {
                let end = at + from.len();
                let before_ok = at == 0 || !is_host_char(out.as_bytes()[at - 1]);
                let after_ok = out.as_bytes().get(end).is_none_or(|b| !b.is_ascii_digit());
                if before_ok && after_ok {
                    out.replace_range(at..end, to);
                    break;
                }
            }
        }
        out
    }

    /// The environment of `container` as the container sees it: `$(VAR)` expanded (a value sees
    /// the variables defined before it), `fieldRef`s answered for this pod.
    fn container_env(&self, container: &Value) -> Vec<(String, String)> {
        assert!(
            array_at(container, "/envFrom").is_empty(),
            "envFrom is not supported here"
        );
        let mut env: Vec<(String, String)> = Vec::new();
        for var in array_at(container, "/env") {
            let name = str_at(var, "/name").expect("an env name").to_owned();
            let value = if let Some(field) = str_at(var, "/valueFrom/fieldRef/fieldPath") {
                match field {
                    "metadata.name" => self.name.clone(),
                    "metadata.namespace" => self.namespace.clone(),
                    "status.podIP" | "status.hostIP" => "127.0.0.1".to_owned(),
                    other => panic!("env {name}: fieldRef {other} is not supported here"),
                }
            } else if var.get("valueFrom").is_some() {
                panic!("env {name}: only value and fieldRef are supported here: {var}");
            } else {
                expand(str_at(var, "/value").unwrap_or(""), &env)
            };
            env.retain(|(n, _)| *n != name);
            env.push((name, value));
        }
        env
    }

    /// The environment of `container` in this pod, its values mapped.
    pub fn env(&self, container: &Value) -> Vec<(String, String)> {
        self.container_env(container)
            .into_iter()
            .map(|(n, v)| {
                let v = self.map(&v);
                (n, v)
            })
            .collect()
    }

    /// The process `container` runs in this pod: `command` + `args`, `$(VAR)` expanded with its
    /// environment, mapped; the environment cleared but for `PATH` and the OpenBLAS settings of
    /// this machine.
    pub fn command(&self, container: &Value) -> Command {
        assert!(
            !array_at(container, "/command").is_empty(),
            "the container must set `command`: the image's entrypoint is not known here"
        );
        let raw_env = self.container_env(container);
        let words: Vec<String> = array_at(container, "/command")
            .iter()
            .chain(array_at(container, "/args"))
            .map(|w| expand(w.as_str().expect("command and args are strings"), &raw_env))
            .collect();
        let (program, args) = words.split_first().expect("a command");
        let binary = program
            .strip_prefix("/usr/local/bin/")
            .unwrap_or_else(|| panic!("command {program:?} is not in /usr/local/bin"));
        let mut command = Command::new(crate::bin(binary));
        command.args(args.iter().map(|a| self.map(a)));
        command.env_clear();
        for (name, value) in std::env::vars_os() {
            let keep = name == "PATH" || name.to_string_lossy().starts_with("OPENBLAS_");
            if keep {
                command.env(name, value);
            }
        }
        command.envs(self.env(container));
        command
    }
}

fn is_host_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-' || b == b'.'
}

/// `$(VAR)` replaced by the value of `VAR` in `env` (left as it is when `VAR` is not defined),
/// `$$` by `$`: the kubelet's expansion of `command`, `args` and `env` values.
pub fn expand(s: &str, env: &[(String, String)]) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some((name, tail)) = after
            .strip_prefix('(')
            .and_then(|inner| inner.split_once(')'))
        {
            match env.iter().rev().find(|(n, _)| n == name) {
                Some((_, value)) => out.push_str(value),
                None => {
                    out.push_str("$(");
                    out.push_str(name);
                    out.push(')');
                }
            }
            rest = tail;
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

/// Asks `addr` for the health of `service` over `grpc.health.v1`, as a kubelet's gRPC probe
/// does; returns the serving status's name (`SERVING`, `NOT_SERVING`...) or the error.
pub fn grpc_health(addr: SocketAddr, service: &str) -> Result<String, String> {
    use tonic_health::pb::HealthCheckRequest;
    use tonic_health::pb::health_client::HealthClient;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    runtime.block_on(async {
        let channel = tonic::transport::Channel::from_shared(format!("http://{addr}"))
            .map_err(|e| e.to_string())?
            .connect_timeout(std::time::Duration::from_secs(5))
            .timeout(std::time::Duration::from_secs(5))
            .connect()
            .await
            .map_err(|e| format!("cannot connect to {addr}: {e}"))?;
        let response = HealthClient::new(channel)
            .check(HealthCheckRequest {
                service: service.to_owned(),
            })
            .await
            .map_err(|s| format!("{:?}: {}", s.code(), s.message()))?;
        Ok(response.into_inner().status().as_str_name().to_owned())
    })
}

/// A raw HTTP/1.0 `GET path` on `addr`: (status line, body).
pub fn http_get(addr: SocketAddr, path: &str) -> (String, String) {
    use std::io::{Read, Write};
    let mut conn = std::net::TcpStream::connect(addr)
        .unwrap_or_else(|e| panic!("cannot connect to {addr}: {e}"));
    conn.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .expect("set a timeout");
    conn.write_all(format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").as_bytes())
        .expect("send the request");
    let mut text = String::new();
    conn.read_to_string(&mut text).expect("read the response");
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    (
        head.lines().next().unwrap_or("").to_owned(),
        body.to_owned(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn expansion_follows_the_kubelet() {
        let e = env(&[("A", "x"), ("B", "y")]);
        assert_eq!(expand("--name=$(A)-$(B)", &e), "--name=x-y");
        assert_eq!(expand("$(C) $$(A) $$ $ $(A", &e), "$(C) $(A) $ $ $(A");
    }

    #[test]
    fn paths_and_addresses_are_mapped() {
        let mut pod = Pod {
            name: "p".into(),
            namespace: "ns".into(),
            mounts: vec![
                ("/var/lib/sweep".into(), "/tmp/x/state".into()),
                ("/data".into(), "/tmp/x/data".into()),
            ],
            addresses: Vec::new(),
        };
        pod.route("svc", 50051, "127.0.0.1:4000".parse().unwrap());
        assert_eq!(pod.map("/var/lib/sweep/out"), "/tmp/x/state/out");
        assert_eq!(pod.map("/data"), "/tmp/x/data");
        assert_eq!(pod.map("/database"), "/database");
        assert_eq!(pod.map("0.0.0.0:8080"), "127.0.0.1:0");
        assert_eq!(pod.map("http://svc:50051"), "http://127.0.0.1:4000");
        assert_eq!(
            pod.map("http://svc.ns.svc.cluster.local:50051"),
            "http://127.0.0.1:4000"
        );
        assert_eq!(pod.map("http://other-svc:50051"), "http://other-svc:50051");
        assert_eq!(pod.map("http://svc:5005"), "http://svc:5005");
        assert_eq!(pod.map("http://svc:500511"), "http://svc:500511");
    }
}
