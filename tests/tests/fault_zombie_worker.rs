//! A worker frozen with SIGSTOP past its lease, then resumed: the coordinator re-leased its
//! trial meanwhile, refuses everything the zombie sends about the old lease, keeps none of it,
//! and the zombie stops that trial by itself.

use std::time::{Duration, Instant};

use sweep_common::FailureKind;
use sweep_tests::ResultsExt as _;
use sweep_tests::faults;
use sweep_tests::{Signal, Sweep, Worker, field};

const TRIALS: usize = 6;
const EPOCHS: u32 = 8;
const EPOCH: Duration = Duration::from_millis(250);

#[test]
fn frozen_worker_writes_are_refused() {
    let grid = faults::grid("zombie", TRIALS, EPOCHS, 2);
    let (baseline, _) = faults::fault_free_run(&grid, 2, 1, EPOCH);

    let sweep = Sweep::new(&grid);
    let mut c = sweep.start_coordinator_at(
        "127.0.0.1:0",
        &[
            "--lease-ttl",
            "1s",
            "--heartbeat",
            "200ms",
            "--linger",
            "2s",
        ],
    );
    let url = c.url();
    let mut z = Worker::start_test("Z", &url, EPOCH, 1);
    let z_id = z.id();
    let trial = c.wait_for_epoch_on("Z", 1, Duration::from_secs(30));
    z.signal(Signal::SIGSTOP);
    let frozen_at = Instant::now();
    let reported_before: u32 = z
        .stderr()
        .lines()
        .filter(|l| field(l, "trial") == Some(trial.as_str()) && l.contains(": loss "))
        .count() as u32;
    let mut w = Worker::start_test("W", &url, EPOCH, 1);
    // The fault fires: Z's lease expires and W takes the trial over (results.json says why and
    // whose lease it was, below).
    c.wait_for_trial(&trial, "to be queued again", Duration::from_secs(10), |t| {
        t["state"] == "pending" || t["attempt"].as_u64() > Some(1)
    });
    w.wait_for_stderr_line(&format!("trial={trial} "), Duration::from_secs(30));
    std::thread::sleep(Duration::from_secs(3).saturating_sub(frozen_at.elapsed()));
    z.signal(Signal::SIGCONT);
    // Z stops the trial by itself: its lease could not be renewed, or the coordinator refused
    // what it sent after it woke.
    let stop_line = z.wait_for_stderr_line("stopping the trial", Duration::from_secs(10));
    // And whatever a zombie sends about the old lease is refused: replay its calls.
    let replayed = replay_zombie(&c.url(), &sweep.database(), &trial, &z_id);
    c.expect_exit_code(0, Duration::from_secs(120));
    z.wait_exit(Duration::from_secs(30));
    w.wait_exit(Duration::from_secs(30));

    // Everything Z said about the old lease after it woke was refused.
    let short = &z_id[..8];
    let c_log = c.stderr();
    let refused = c_log
        .lines()
        .filter(|l| field(l, "worker") == Some(short))
        .filter(|l| l.contains("revoked") || l.contains("refused"))
        .count();
    assert!(
        refused >= replayed,
        "the coordinator logged {refused} refusals of Z's calls, {replayed} were replayed:\n{c_log}"
    );
    // And none of it was kept: Z's attempt has only the epochs it reported before it froze.
    let db = sweep.database();
    let recorded = faults::recorded_in_grid(&db, &trial);
    let success = recorded.success_attempt.expect("the trial succeeded");
    assert_ne!(
        success, 1,
        "{trial}'s result came from the zombie's attempt"
    );
    let zombie_epochs = faults::last_epoch_kept(&db, &recorded.id, 1);
    assert!(
        zombie_epochs <= reported_before,
        "epoch {zombie_epochs} of the zombie's attempt was kept; it had reported {reported_before} before it froze"
    );
    let zombie_after: usize = z
        .stderr()
        .lines()
        .filter(|l| field(l, "trial") == Some(trial.as_str()) && l.contains(": loss "))
        .count();
    let audit = faults::audit(&db, TRIALS, EPOCHS);
    let results = sweep.results();
    let expired = &results.trial(&trial).failed_attempts;
    assert!(
        matches!(&expired[..], [f] if f.attempt == 1
            && f.kind == FailureKind::LeaseExpired
            && f.worker.to_string() == z_id
            && f.message.contains("no heartbeat")),
        "Z's lease expiry is recorded as {expired:?}"
    );
    faults::assert_same_results(&results, &baseline);
    eprintln!(
        "FAULTS zombie: 1 SIGSTOP of {:.1} s (3 lease TTLs), Z stopped by itself ({stop_line:?}), {refused} calls from the zombie refused ({replayed} replayed), \
         zombie trained {} epochs of {trial} ({reported_before} before freezing, {zombie_epochs} kept), \
         {} duplicates, {} lost, {} extra leases",
        3.0, zombie_after, audit.duplicates, audit.lost, audit.extra_attempts
    );
}

/// Sends what a zombie holding (trial, attempt 1) as `worker` would send once it wakes: an
/// epoch, its heartbeat and a completion. Each must be refused (FAILED_PRECONDITION, or the
/// heartbeat revoking the lease). Returns how many calls were made.
fn replay_zombie(url: &str, db: &std::path::Path, trial: &str, worker: &str) -> usize {
    use sweep_proto::v1;
    let id = faults::recorded_in_grid(db, trial).id;
    // The zombie still holds the secret it was issued: derive it as the coordinator does.
    let secret = faults::worker_secret(db, worker);
    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    runtime.block_on(async {
        let channel = tonic::transport::Endpoint::from_shared(url.to_owned())
            .expect("url")
            .connect()
            .await
            .expect("connect");
        let bearer = sweep_proto::Bearer::none()
            .with_worker_secret(&secret)
            .expect("a header value");
        let mut client = sweep_proto::auth::client(channel, bearer);
        let lease = Some(v1::LeaseRef {
            trial_id: id.clone(),
            attempt: 1,
        });
        let metrics = v1::EpochMetrics {
            epoch: 2,
            train_loss: 1.0,
            train_accuracy: 50.0,
            test_accuracy: 50.0,
            seconds: 1.0,
            scalars: Default::default(),
        };
        let e = client
            .report_epoch(v1::ReportEpochRequest {
                worker_id: worker.to_owned(),
                lease: lease.clone(),
                metrics: Some(metrics),
                batch: Vec::new(),
            })
            .await
            .expect_err("a late epoch is refused");
        assert_eq!(e.code(), tonic::Code::FailedPrecondition, "{e:?}");
        let hb = client
            .heartbeat(v1::HeartbeatRequest {
                worker_id: worker.to_owned(),
                leases: lease.iter().cloned().collect(),
                memory: None,
            })
            .await
            .expect("a heartbeat is answered")
            .into_inner();
        assert_eq!(
            hb.revoked,
            lease.iter().cloned().collect::<Vec<_>>(),
            "the old lease is revoked"
        );
        let e = client
            .complete(v1::CompleteRequest {
                worker_id: worker.to_owned(),
                lease: lease.clone(),
                outcome: Some(v1::complete_request::Outcome::Failure(v1::TrialFailure {
                    kind: v1::FailureKind::Internal.into(),
                    message: "late".into(),
                })),
            })
            .await
            .expect_err("a late completion is refused");
        assert_eq!(e.code(), tonic::Code::FailedPrecondition, "{e:?}");
        3
    })
}
