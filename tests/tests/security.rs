//! Tokens, TLS and fail-closed listening, with the real binaries: every RPC refuses a call
//! without the right token and changes nothing; a worker token cannot do what an operator token
//! does; a worker presenting the right token over TLS completes a sweep, one trusting another CA
//! cannot connect; a non-loopback address without TLS and a token is refused; and the tokens
//! appear in no output of any process.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use sweep_proto::v1;
use sweep_tests::{Sweep, Worker, bin, faults};
use tonic::Code;

/// Sentinels: the harness greps every process's output for them.
const WORKER_TOKEN: &str = sweep_tests::SENTINEL_TOKENS[0];
const OPERATOR_TOKEN: &str = sweep_tests::SENTINEL_TOKENS[1];

struct Pki {
    ca: PathBuf,
    cert: PathBuf,
    key: PathBuf,
    other_ca: PathBuf,
    client_cert: PathBuf,
    client_key: PathBuf,
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write a file");
    path
}

fn ca(name: &str) -> CertifiedIssuer<'static, KeyPair> {
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, name);
    CertifiedIssuer::self_signed(params, KeyPair::generate().expect("key")).expect("CA")
}

fn pki(dir: &Path) -> Pki {
    let other = ca("some other CA");
    let ca = ca("sweep test CA");
    let key = KeyPair::generate().expect("key");
    let params = CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
        .expect("params");
    let cert = params.signed_by(&key, &ca).expect("server certificate");
    let client_key = KeyPair::generate().expect("key");
    let client = CertificateParams::new(vec!["worker".to_owned()])
        .expect("params")
        .signed_by(&client_key, &ca)
        .expect("client certificate");
    Pki {
        client_cert: write(dir, "client.pem", &client.pem()),
        client_key: write(dir, "client.key", &client_key.serialize_pem()),
        ca: write(dir, "ca.pem", &ca.pem()),
        cert: write(dir, "server.pem", &cert.pem()),
        key: write(dir, "server.key", &key.serialize_pem()),
        other_ca: write(dir, "other-ca.pem", &other.pem()),
    }
}

fn assert_no_token(what: &str, text: &str) {
    for token in [WORKER_TOKEN, OPERATOR_TOKEN] {
        assert!(!text.contains(token), "{what} printed a token:\n{text}");
    }
}

/// Calls every RPC once and returns each call's status code.
async fn every_rpc(c: &mut sweep_proto::Client) -> Vec<(&'static str, Code)> {
    let worker_id = "6f1c1f4e-8d2b-4a8e-9c1b-2f7d3e4a5b6c".to_owned();
    let lease = Some(v1::LeaseRef {
        trial_id: "6f1c1f4e-8d2b-5a8e-9c1b-2f7d3e4a5b6c".to_owned(),
        attempt: 1,
    });
    let code = |r: Result<(), tonic::Status>| r.err().map_or(Code::Ok, |s| s.code());
    vec![
        (
            "Register",
            code(
                c.register(v1::RegisterRequest {
                    protocol_version: sweep_proto::PROTOCOL_VERSION.into(),
                    worker_name: "intruder".into(),
                    device: None,
                    slots: 1,
                })
                .await
                .map(drop),
            ),
        ),
        (
            "Lease",
            code(
                c.lease(v1::LeaseRequest {
                    worker_id: worker_id.clone(),
                })
                .await
                .map(drop),
            ),
        ),
        (
            "Heartbeat",
            code(
                c.heartbeat(v1::HeartbeatRequest {
                    worker_id: worker_id.clone(),
                    leases: lease.iter().cloned().collect(),
                    memory: None,
                })
                .await
                .map(drop),
            ),
        ),
        (
            "ReportEpoch",
            code(
                c.report_epoch(v1::ReportEpochRequest {
                    worker_id: worker_id.clone(),
                    lease: lease.clone(),
                    metrics: None,
                    batch: Vec::new(),
                })
                .await
                .map(drop),
            ),
        ),
        (
            "Complete",
            code(
                c.complete(v1::CompleteRequest {
                    worker_id: worker_id.clone(),
                    lease: lease.clone(),
                    outcome: None,
                })
                .await
                .map(drop),
            ),
        ),
        (
            "UploadArtifact",
            code(
                c.upload_artifact(tokio_stream::iter(vec![v1::ArtifactChunk {
                    header: None,
                    data: vec![1, 2, 3],
                }]))
                .await
                .map(drop),
            ),
        ),
        (
            "FetchCheckpoint",
            code(
                c.fetch_checkpoint(v1::FetchCheckpointRequest {
                    worker_id: worker_id.clone(),
                    lease: lease.clone(),
                })
                .await
                .map(drop),
            ),
        ),
        (
            "Status",
            code(
                c.status(v1::StatusRequest {
                    detail: true,
                    trials: None,
                })
                .await
                .map(drop),
            ),
        ),
        (
            "Cancel",
            code(
                c.cancel(v1::CancelRequest {
                    all: true,
                    ..v1::CancelRequest::default()
                })
                .await
                .map(drop),
            ),
        ),
    ]
}

fn status_json(url: &str, token: Option<&Path>, ca: Option<&Path>) -> std::process::Output {
    let mut command = Command::new(bin("coordinator"));
    command.args(["status", "--json", "--addr", url]);
    if let Some(t) = token {
        command.arg("--token-file").arg(t);
    }
    if let Some(ca) = ca {
        command.arg("--tls-ca").arg(ca);
    }
    command
        .env_remove("SWEEP_OPERATOR_TOKEN")
        .output()
        .expect("coordinator status")
}

#[test]
fn tokens_roles_and_tls() {
    let sweep = Sweep::new(&faults::grid("secure", 4, 3, 0));
    let dir = sweep.mkdir("secrets");
    let worker_token = write(&dir, "worker-token", WORKER_TOKEN);
    let operator_token = write(&dir, "operator-token", OPERATOR_TOKEN);
    let pki = pki(&dir);
    let tls_args = [
        "--tls-cert".to_owned(),
        pki.cert.display().to_string(),
        "--tls-key".to_owned(),
        pki.key.display().to_string(),
    ];
    let mut args: Vec<String> = vec![
        "--worker-token-file".into(),
        worker_token.display().to_string(),
        "--operator-token-file".into(),
        operator_token.display().to_string(),
        "--linger".into(),
        "1s".into(),
    ];
    args.extend(tls_args);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut c = sweep.start_coordinator_at("127.0.0.1:0", &args);
    let url = format!("https://127.0.0.1:{}", c.addr().port());

    // Without a token, with the wrong one, or with the other role's: refused, nothing changes.
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let ca_pem = std::fs::read(&pki.ca).expect("CA");
    let tls_url = url.clone();
    let calls = |bearer: sweep_proto::Bearer| {
        let ca_pem = ca_pem.clone();
        let url = tls_url.clone();
        runtime.block_on(async move {
            let channel = tonic::transport::Endpoint::from_shared(url.clone())
                .expect("url")
                .tls_config(
                    tonic::transport::ClientTlsConfig::new()
                        .ca_certificate(tonic::transport::Certificate::from_pem(ca_pem)),
                )
                .expect("tls")
                .connect()
                .await
                .expect("connect");
            let mut client = sweep_proto::auth::client(channel, bearer);
            every_rpc(&mut client).await
        })
    };
    for (who, bearer) in [
        ("no token", sweep_proto::Bearer::none()),
        (
            "a wrong token",
            sweep_proto::Bearer::new("not-the-token-0123456789").expect("bearer"),
        ),
    ] {
        for (rpc, code) in calls(bearer) {
            assert_eq!(code, Code::Unauthenticated, "{rpc} with {who}");
        }
    }
    let worker_bearer = sweep_proto::Bearer::new(WORKER_TOKEN).expect("bearer");
    for (rpc, code) in calls(worker_bearer) {
        if rpc == "Status" || rpc == "Cancel" {
            assert_eq!(code, Code::Unauthenticated, "{rpc} with the worker token");
        } else {
            assert_ne!(code, Code::Unauthenticated, "{rpc} with the worker token");
        }
    }
    // The operator token reads the status: nothing changed, the one registration above aside
    // (it came with the worker token).
    let out = status_json(&url, Some(&operator_token), Some(&pki.ca));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v["counts"]["pending"], 4, "{v}");
    let out = status_json(&url, Some(&worker_token), Some(&pki.ca));
    assert!(!out.status.success(), "a worker token reads no status");
    assert!(String::from_utf8_lossy(&out.stderr).contains("Unauthenticated"));
    let out = status_json(&url, Some(&operator_token), None);
    assert!(!out.status.success(), "https without the CA");

    // A worker that trusts another CA cannot connect; the right one completes the sweep.
    let mut wrong = Worker::from_command(
        "wrong-ca",
        worker(&url, &worker_token, &pki.other_ca, "wrong-ca"),
    );
    let mut right = Worker::from_command("right", worker(&url, &worker_token, &pki.ca, "right"));
    c.expect_exit_code(0, Duration::from_secs(60));
    right.wait_exit(Duration::from_secs(30));
    let status = wrong.wait_exit(Duration::from_secs(30));
    assert!(
        !status.success(),
        "the worker trusting another CA exited with success"
    );
    assert!(
        wrong.stderr().contains("cannot reach the coordinator"),
        "{}",
        wrong.stderr()
    );
    assert!(right.trials_trained().len() == 4, "{}", right.stderr());

    for (what, text) in [
        ("the coordinator", c.logs()),
        ("the worker", right.logs()),
        ("the other worker", wrong.logs()),
    ] {
        assert_no_token(what, &text);
    }
    for entry in walk(sweep.out()) {
        let bytes = std::fs::read(&entry).unwrap_or_default();
        assert_no_token(
            &entry.display().to_string(),
            &String::from_utf8_lossy(&bytes),
        );
    }
}

fn worker(url: &str, token: &Path, ca: &Path, name: &str) -> Command {
    let mut command = faults::test_worker_command(name, url, Duration::from_millis(20), 2);
    command
        .arg("--token-file")
        .arg(token)
        .arg("--tls-ca")
        .arg(ca)
        .args(["--patience", "5s"]);
    command
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}

#[test]
fn a_non_loopback_address_needs_tls_and_a_token() {
    let sweep = Sweep::new(&faults::grid("exposed", 1, 1, 0));
    // Refused before it binds anything.
    let out = Command::new(bin("coordinator"))
        .arg("--grid")
        .arg(sweep.grid())
        .arg("--out")
        .arg(sweep.out())
        .args(["--listen", "0.0.0.0:0"])
        .output()
        .expect("run the coordinator");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("is not a loopback address")
            && err.contains("--insecure")
            && err.contains("TLS")
            && err.contains("worker token"),
        "{err}"
    );
}

#[test]
fn mutual_tls_requires_a_client_certificate() {
    let sweep = Sweep::new(&faults::grid("mtls", 2, 2, 0));
    let dir = sweep.mkdir("pki");
    let pki = pki(&dir);
    let paths = [&pki.cert, &pki.key, &pki.ca].map(|p| p.display().to_string());
    let mut c = sweep.start_coordinator_at(
        "127.0.0.1:0",
        &[
            "--tls-cert",
            &paths[0],
            "--tls-key",
            &paths[1],
            "--tls-client-ca",
            &paths[2],
            "--linger",
            "1s",
        ],
    );
    let url = format!("https://127.0.0.1:{}", c.addr().port());
    let tls = |name: &str| {
        let mut command = faults::test_worker_command(name, &url, Duration::from_millis(20), 1);
        command
            .arg("--tls-ca")
            .arg(&pki.ca)
            .args(["--patience", "5s"]);
        command
    };
    let mut anonymous = Worker::from_command("anonymous", tls("anonymous"));
    let mut command = tls("certified");
    command
        .arg("--tls-cert")
        .arg(&pki.client_cert)
        .arg("--tls-key")
        .arg(&pki.client_key);
    let mut certified = Worker::from_command("certified", command);
    c.expect_exit_code(0, Duration::from_secs(60));
    certified.wait_exit(Duration::from_secs(30));
    assert_eq!(
        certified.trials_trained().len(),
        2,
        "{}",
        certified.stderr()
    );
    let status = anonymous.wait_exit(Duration::from_secs(30));
    assert!(
        !status.success(),
        "a worker without a client certificate got in"
    );
    assert!(anonymous.trials_trained().is_empty());
}
