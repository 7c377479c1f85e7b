//! A worker on another "host" (a Linux network namespace joined to this one by a veth pair) cut
//! off from the coordinator for three lease TTLs, then reconnected: it stops its trials by itself
//! when it cannot renew their leases, the coordinator leases them again, and once the link is
//! back the worker goes on training. Needs root (as CI runs) for `ip netns`.

use std::process::Command;
use std::time::Duration;

use sweep_tests::faults;
use sweep_tests::{Sweep, Worker};

const TRIALS: usize = 12;
const EPOCHS: u32 = 8;
const EPOCH: Duration = Duration::from_millis(200);

fn ip(args: &[&str]) {
    let out = Command::new("ip")
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run ip (iproute2, installed by scripts/setup): {e}"));
    assert!(
        out.status.success(),
        "ip {}: {} (this test needs root, as CI runs it)",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr).trim()
    );
}

/// A namespace `NS` and a veth pair: `host` (10.213.N.1, here) and `peer` (10.213.N.2, in NS).
/// Removed on drop.
struct Link {
    ns: String,
    host: String,
    peer: String,
    host_ip: String,
}

impl Link {
    fn new() -> Link {
        let id = std::process::id();
        let net = id % 250 + 1;
        let link = Link {
            ns: format!("sweep-cut-{id}"),
            host: format!("swh{id}"),
            peer: format!("swn{id}"),
            host_ip: format!("10.213.{net}.1"),
        };
        ip(&["netns", "add", &link.ns]);
        ip(&[
            "link", "add", &link.host, "type", "veth", "peer", "name", &link.peer,
        ]);
        ip(&["link", "set", &link.peer, "netns", &link.ns]);
        ip(&[
            "addr",
            "add",
            &format!("{}/24", link.host_ip),
            "dev",
            &link.host,
        ]);
        ip(&["link", "set", &link.host, "up"]);
        link.in_ns(&[
            "addr",
            "add",
            &format!("10.213.{net}.2/24"),
            "dev",
            &link.peer,
        ]);
        link.in_ns(&["link", "set", &link.peer, "up"]);
        link.in_ns(&["link", "set", "lo", "up"]);
        link
    }

    fn in_ns(&self, args: &[&str]) {
        let mut all = vec!["netns", "exec", &self.ns, "ip"];
        all.extend_from_slice(args);
        ip(&all);
    }

    /// Cuts (or restores) the link on the namespace's side.
    fn set(&self, up: bool) {
        self.in_ns(&["link", "set", &self.peer, if up { "up" } else { "down" }]);
    }

    /// `command`, run inside the namespace.
    fn wrap(&self, command: &Command) -> Command {
        let mut wrapped = Command::new("ip");
        wrapped
            .args(["netns", "exec", &self.ns])
            .arg(command.get_program())
            .args(command.get_args());
        wrapped
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["link", "del", &self.host])
            .output();
        let _ = Command::new("ip").args(["netns", "del", &self.ns]).output();
    }
}

#[test]
fn worker_cut_off_for_three_ttls() {
    let grid = faults::grid("network-cut", TRIALS, EPOCHS, 2);
    let (baseline, _) = faults::fault_free_run(&grid, 2, 1, EPOCH);

    let link = Link::new();
    let sweep = Sweep::new(&grid);
    let mut c = sweep.start_coordinator_at(
        &format!("{}:0", link.host_ip),
        // A link between this test's own namespaces: plaintext without tokens is deliberate.
        &[
            "--insecure",
            "--lease-ttl",
            "1s",
            "--heartbeat",
            "200ms",
            "--linger",
            "2s",
        ],
    );
    let url = c.url();
    let remote = faults::test_worker_command("N", &url, EPOCH, 2);
    let mut n = Worker::from_command("N", link.wrap(&remote));
    let mut h = Worker::start_test("H", &url, EPOCH, 1);
    let trial = c.wait_for_epoch_on("N", 1, Duration::from_secs(30));

    link.set(false);
    // N gives its leases up by itself within about a TTL; the coordinator re-leases them.
    n.wait_for_stderr_line(
        "lease could not be renewed within its TTL",
        Duration::from_secs(10),
    );
    c.wait_for_trial(&trial, "to be queued again", Duration::from_secs(10), |t| {
        t["state"] == "pending" || t["attempt"].as_u64() > Some(1)
    });
    std::thread::sleep(Duration::from_secs(3));
    assert!(
        c.try_status().is_none(),
        "the sweep ended while N was cut off: make it longer"
    );
    let trained_before = n.stderr().matches(" training ").count();
    link.set(true);
    // Back on the network, N trains again.
    n.wait_for(
        "N to lease a trial after the link came back",
        Duration::from_secs(30),
        |out| (out.stderr.matches(" training ").count() > trained_before).then_some(()),
    );
    c.expect_exit_code(0, Duration::from_secs(120));
    n.wait_exit(Duration::from_secs(30));
    h.wait_exit(Duration::from_secs(30));

    let db = sweep.database();
    let audit = faults::audit(&db, TRIALS, EPOCHS);
    let logs = faults::logs([&*n, &*h]);
    faults::assert_acknowledged_present(&db, &faults::acknowledged_results(&logs));
    faults::assert_same_results(&sweep.results(), &baseline);
    eprintln!(
        "FAULTS network-cut: N cut off for 3 s (3 TTLs); {} trials, {} duplicates, {} lost, {} extra leases, {} resumed from checkpoints, {} epochs re-run",
        audit.trials,
        audit.duplicates,
        audit.lost,
        audit.extra_attempts,
        audit.resumed,
        faults::epochs_trained(&logs).saturating_sub(TRIALS * EPOCHS as usize)
    );
}
