//! The load generator's report: what it ran, what it measured, and what went wrong, printed for
//! people and written as JSON for tools.

use std::collections::BTreeMap;

use hdrhistogram::Histogram;
use serde::Serialize;

/// Everything a run measured (the JSON document `--json` writes).
#[derive(Debug, Serialize)]
pub struct Report {
    pub config: Config,
    /// Trials whose Complete the coordinator acknowledged.
    pub trials_completed: u64,
    /// Trials `results.json` says succeeded.
    pub trials_succeeded: u64,
    /// From the first Lease call to the last acknowledged Complete.
    pub wall_seconds: f64,
    pub trials_per_second: f64,
    /// Epochs reported and acknowledged (one call may carry several: --epochs-per-call).
    pub epoch_reports: u64,
    /// Acknowledged ReportEpoch calls.
    pub report_epoch_calls: u64,
    pub epoch_reports_per_second: f64,
    /// Scalar values reported: 4 per epoch report (train loss, train and test accuracy,
    /// seconds).
    pub metric_points_per_second: f64,
    pub latency_us: Latencies,
    pub coordinator: CoordinatorFigures,
    /// The load generator's own user plus system CPU over the whole run.
    pub loadgen_cpu_seconds: f64,
    /// Failed calls by `"Rpc: Code"`.
    pub errors: BTreeMap<String, u64>,
    /// Calls refused by the coordinator's per-worker rate limit, then tried again.
    pub throttled: u64,
    /// Leases a heartbeat answer revoked.
    pub leases_revoked: u64,
    /// Leases abandoned because a call about them was refused.
    pub leases_lost: u64,
    /// Attempts `results.json` records as failed with `lease_expired`.
    pub lease_expiries: u64,
    /// Why the run failed; empty when it passed.
    pub problems: Vec<String>,
}

/// The run's settings.
#[derive(Debug, Serialize)]
pub struct Config {
    pub workers: u32,
    pub trials: u64,
    pub epochs: u32,
    pub epoch_time_ms: f64,
    /// Each epoch takes epoch_time_ms times a factor in [1 - jitter, 1 + jitter].
    pub jitter: f64,
    /// Calls started within this long of the first Register are not in the latency figures.
    pub warmup_seconds: f64,
    pub heartbeat_ms: f64,
    pub lease_ttl_ms: f64,
    pub connections: usize,
    pub threads: usize,
    /// Epochs a worker sends in one ReportEpoch, at most.
    pub epochs_per_call: u32,
}

/// Latencies of successful calls, by RPC.
#[derive(Debug, Serialize)]
pub struct Latencies {
    /// Lease calls that returned an assignment.
    pub lease_assigned: Latency,
    /// Every Lease call (assignments, waits and "finished").
    pub lease: Latency,
    pub report_epoch: Latency,
    pub complete: Latency,
    pub heartbeat: Latency,
    pub register: Latency,
}

/// A latency distribution, in microseconds.
#[derive(Debug, Serialize)]
pub struct Latency {
    pub count: u64,
    pub mean: f64,
    pub p50: u64,
    pub p99: u64,
    pub p999: u64,
    pub max: u64,
}

impl From<&Histogram<u64>> for Latency {
    fn from(h: &Histogram<u64>) -> Latency {
        Latency {
            count: h.len(),
            mean: h.mean(),
            p50: h.value_at_quantile(0.5),
            p99: h.value_at_quantile(0.99),
            p999: h.value_at_quantile(0.999),
            max: h.max(),
        }
    }
}

/// The coordinator's figures.
#[derive(Debug, Serialize)]
pub struct CoordinatorFigures {
    /// From spawn to listening.
    pub startup_seconds: f64,
    /// Resident memory as soon as it listened.
    pub rss_after_startup_bytes: u64,
    /// Peak resident memory (VmHWM) at the last Complete: serving the sweep.
    pub peak_rss_serving_bytes: u64,
    /// Peak resident memory (VmHWM) before it exited: the final results and report too.
    pub peak_rss_bytes: u64,
    /// User plus system CPU from just before the first Register to the last Complete.
    pub cpu_seconds: f64,
    pub cpu_us_per_trial: f64,
    /// `state/sweep.db` and its `-wal` file when the last trial ended.
    pub db_bytes: u64,
    pub wal_bytes: u64,
    /// From the last Complete to its exit (lingering, writing results and the report).
    pub exit_seconds: f64,
    /// Its exit code (`None` if killed by a signal).
    pub exit_code: Option<i32>,
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

impl Report {
    /// Prints the report for people.
    pub fn print(&self) {
        let c = &self.config;
        println!(
            "loadgen: {} workers on {} connections ({} loadgen threads), {} trials x {} epochs, \
             epoch time {} ms (+-{:.0} %), heartbeat {} ms, lease TTL {} ms, \
             up to {} epochs a report",
            c.workers,
            c.connections,
            c.threads,
            c.trials,
            c.epochs,
            c.epoch_time_ms,
            c.jitter * 100.0,
            c.heartbeat_ms,
            c.lease_ttl_ms,
            c.epochs_per_call
        );
        println!(
            "trials           {} completed, {} succeeded (or stopped early) in results.json (of {})",
            self.trials_completed, self.trials_succeeded, c.trials
        );
        println!(
            "wall time        {:.2} s (first Lease to last Complete)",
            self.wall_seconds
        );
        println!(
            "throughput       {:.1} trials/s, {:.0} epoch reports/s, {:.0} metric points/s",
            self.trials_per_second, self.epoch_reports_per_second, self.metric_points_per_second
        );
        if self.config.warmup_seconds > 0.0 {
            println!(
                "latency          of calls started {} s or more after the first Register",
                self.config.warmup_seconds
            );
        }
        self.print_latencies();
        self.print_coordinator();
        self.print_outcome();
    }

    fn print_latencies(&self) {
        println!(
            "latency (us)     {:>9} {:>8} {:>8} {:>8} {:>8} {:>8}",
            "calls", "mean", "p50", "p99", "p99.9", "max"
        );
        let l = &self.latency_us;
        for (name, h) in [
            ("  Lease (assigned)", &l.lease_assigned),
            ("  Lease (all)", &l.lease),
            ("  ReportEpoch", &l.report_epoch),
            ("  Complete", &l.complete),
            ("  Heartbeat", &l.heartbeat),
            ("  Register", &l.register),
        ] {
            println!(
                "{name:<18}{:>9} {:>8.0} {:>8} {:>8} {:>8} {:>8}",
                h.count, h.mean, h.p50, h.p99, h.p999, h.max
            );
        }
    }

    fn print_coordinator(&self) {
        let k = &self.coordinator;
        println!(
            "coordinator      startup {:.3} s, RSS {:.1} MiB after startup, peak {:.1} MiB serving, {:.1} MiB with the final report",
            k.startup_seconds,
            mib(k.rss_after_startup_bytes),
            mib(k.peak_rss_serving_bytes),
            mib(k.peak_rss_bytes)
        );
        println!(
            "                 CPU {:.2} s ({:.0} us per trial), database {:.1} MiB + WAL {:.1} MiB",
            k.cpu_seconds,
            k.cpu_us_per_trial,
            mib(k.db_bytes),
            mib(k.wal_bytes)
        );
        println!(
            "                 exited with {} {:.2} s after the last Complete",
            k.exit_code
                .map_or_else(|| "a signal".to_owned(), |c| format!("code {c}")),
            k.exit_seconds
        );
        println!("loadgen CPU      {:.2} s", self.loadgen_cpu_seconds);
    }

    fn print_outcome(&self) {
        println!(
            "leases           {} revoked by a heartbeat, {} refused, {} expired",
            self.leases_revoked, self.leases_lost, self.lease_expiries
        );
        if self.throttled > 0 {
            println!(
                "throttled        {} calls refused by the per-worker rate limit (RESOURCE_EXHAUSTED), tried again",
                self.throttled
            );
        }
        if self.errors.is_empty() {
            println!("errors           none");
        } else {
            println!("errors:");
            for (what, n) in &self.errors {
                println!("  {what}: {n}");
            }
        }
        for p in &self.problems {
            println!("FAILED: {p}");
        }
    }
}
