//! The images agree with the manifests and with the binaries: the commands the pods run are the
//! images' entrypoints, both run as the pods' non-root user, the coordinator's image has no
//! libtorch, the worker's the libtorch scripts/setup builds against, and each binary needs only
//! the shared libraries its image holds.

use std::path::Path;
use std::process::Command;

use serde_json::Value;
use sweep_tests::k8s::{self, USER, array_at, kubectl, render};

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
