//! Prometheus metrics, served as `GET /metrics` beside the live web view (`--http`): one more
//! rendering of the status [`Snapshot`], so they agree with everything else people see.
//!
//! Text exposition format 0.0.4, written here rather than through a client library: every value
//! is read from one snapshot at scrape time (there is nothing to instrument), and the format of
//! a dozen families is a few lines. Names follow Prometheus' conventions: a `sweep_` prefix,
//! units in the name (`_seconds`, `_ratio`, `_per_second`), `_total` only on counters, states
//! and kinds as labels. Every label value a family can take is written, zeros included, so
//! `rate()` and alerts see a series from the first scrape. A value that is not known yet (the
//! ETA before the first epoch) is left out rather than written as 0.

use std::fmt::{Display, Write as _};

use crate::state::FailureKind;
use crate::status::Snapshot;

/// The `Content-Type` of [`render`]'s text.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The metrics of `s`, in the text exposition format.
pub fn render(s: &Snapshot) -> String {
    let mut out = Exposition::default();
    sweep(&mut out, s);
    trials(&mut out, s);
    workers(&mut out, s);
    progress(&mut out, s);
    out.text
}

/// The sweep itself: which one, and whether it has finished.
fn sweep(out: &mut Exposition, s: &Snapshot) {
    out.family(
        "sweep_info",
        Type::Gauge,
        "The sweep this coordinator runs (always 1).",
    );
    out.sample("sweep_info", &[("sweep", &s.sweep)], 1);
    out.family(
        "sweep_finished",
        Type::Gauge,
        "1 once every trial has ended, else 0.",
    );
    out.sample("sweep_finished", &[], u8::from(s.finished));
}

/// Trials by state, their leases and the attempts that failed.
fn trials(out: &mut Exposition, s: &Snapshot) {
    let c = &s.counts;
    out.family("sweep_trials", Type::Gauge, "Trials by state.");
    for (state, n) in [
        ("pending", c.pending),
        ("running", c.running),
        ("succeeded", c.succeeded),
        ("failed", c.failed),
    ] {
        out.sample("sweep_trials", &[("state", state)], n);
    }

    out.family(
        "sweep_leases",
        Type::Gauge,
        "Live leases (one per running trial).",
    );
    out.sample("sweep_leases", &[], c.running);
    out.family(
        "sweep_leases_granted_total",
        Type::Counter,
        "Leases granted since the coordinator started (first attempts and retries).",
    );
    out.sample("sweep_leases_granted_total", &[], s.leases_granted);
    out.family(
        "sweep_attempt_failures_total",
        Type::Counter,
        "Attempts that ended without a result, by kind (retried ones included).",
    );
    // Every kind, as `results.json` names it (declared once, in `sweep_common::failure`).
    for kind in FailureKind::ALL {
        let n = s
            .attempt_failures
            .iter()
            .filter(|(k, _)| *k == kind)
            .map(|(_, n)| n)
            .sum::<u64>();
        out.sample("sweep_attempt_failures_total", &[("kind", kind.name())], n);
    }
}

/// The workers: connected or lost, and the slots the connected ones offer.
fn workers(out: &mut Exposition, s: &Snapshot) {
    out.family(
        "sweep_workers",
        Type::Gauge,
        "Registered workers: connected (called within a lease TTL) or lost.",
    );
    let connected = s.workers.iter().filter(|w| w.alive).count();
    out.sample("sweep_workers", &[("state", "connected")], connected);
    out.sample(
        "sweep_workers",
        &[("state", "lost")],
        s.workers.len() - connected,
    );
    out.family(
        "sweep_worker_slots",
        Type::Gauge,
        "Trials the connected workers can train at once.",
    );
    let slots: u64 = s
        .workers
        .iter()
        .filter(|w| w.alive)
        .map(|w| u64::from(w.slots))
        .sum();
    out.sample("sweep_worker_slots", &[], slots);
}

/// How far the sweep has come: epochs, throughput, ETA and the best result so far.
fn progress(out: &mut Exposition, s: &Snapshot) {
    out.family(
        "sweep_epochs_done",
        Type::Gauge,
        "Epochs trained by ended trials and running attempts (a retried attempt's are dropped).",
    );
    out.sample("sweep_epochs_done", &[], s.epochs_done);
    out.family(
        "sweep_epochs_planned",
        Type::Gauge,
        "Epochs of the whole sweep.",
    );
    out.sample("sweep_epochs_planned", &[], s.epochs_total);
    out.family(
        "sweep_throughput_epochs_per_second",
        Type::Gauge,
        "Epochs per second the running trials train at (absent until measured).",
    );
    if let Some(per_minute) = s.throughput_epochs_per_minute {
        out.float("sweep_throughput_epochs_per_second", per_minute / 60.0);
    }
    out.family(
        "sweep_eta_seconds",
        Type::Gauge,
        "Estimated seconds until every trial has ended (absent while unknown).",
    );
    if let Some(eta) = s.eta_seconds {
        out.float("sweep_eta_seconds", eta);
    }
    out.family(
        "sweep_best_test_accuracy_ratio",
        Type::Gauge,
        "Final test accuracy of the best succeeded trial, from 0 to 1 (absent before one).",
    );
    if let Some(best) = &s.best {
        out.float("sweep_best_test_accuracy_ratio", best.test_accuracy / 100.0);
    }
}

/// A metric family's type.
#[derive(Debug, Clone, Copy)]
enum Type {
    Counter,
    Gauge,
}

/// Text being written in the exposition format.
#[derive(Default)]
struct Exposition {
    text: String,
}

impl Exposition {
    /// Starts the family `name`: its `# HELP` and `# TYPE` lines.
    fn family(&mut self, name: &str, kind: Type, help: &str) {
        let kind = match kind {
            Type::Counter => "counter",
            Type::Gauge => "gauge",
        };
        let _ = writeln!(self.text, "# HELP {name} {}", escape(help, false));
        let _ = writeln!(self.text, "# TYPE {name} {kind}");
    }

    /// One sample of the current family.
    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: impl Display) {
        self.text.push_str(name);
        if !labels.is_empty() {
            self.text.push('{');
            for (i, (key, value)) in labels.iter().enumerate() {
                if i > 0 {
                    self.text.push(',');
                }
                let _ = write!(self.text, "{key}=\"{}\"", escape(value, true));
            }
            self.text.push('}');
        }
        let _ = writeln!(self.text, " {value}");
    }

    /// A sample without labels whose value is a float; a value that is not finite is left out.
    fn float(&mut self, name: &str, value: f64) {
        if value.is_finite() {
            self.sample(name, &[], value);
        }
    }
}

/// Escapes `\` and newlines (and `"` in label values), as the format requires.
fn escape(text: &str, label: bool) -> String {
    let mut out = String::with_capacity(text.len());
    for ch in text.chars() {
        match ch {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '"' if label => out.push_str("\\\""),
            _ => out.push(ch),
        }
    }
    out
}

#[cfg(test)]
mod tests;
