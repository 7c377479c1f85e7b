//! The status as text: a few lines for the terminal's live block and `coordinator status`
//! ([`block`]), and one line for logs that are not a terminal ([`line`]). Names and messages
//! from outside (workers, devices, trials, the warning) are written with
//! `sweep_common::text::terminal`: `coordinator status` prints what a remote coordinator
//! sent, and no name may break a line or move the cursor.

use std::fmt::Write as _;

use sweep_common::text::terminal;

use super::{Snapshot, WorkerRow};

/// Worker lines shown in a block; the rest are summed up in one line.
pub const MAX_WORKER_LINES: usize = 8;

/// A duration for people: `42s`, `3m 05s`, `2h 04m`, `3d 02h`.
pub fn duration(seconds: f64) -> String {
    if !seconds.is_finite() || seconds < 0.0 {
        return "-".into();
    }
    // Rounded to whole seconds; far below u64::MAX for any real sweep.
    let s = seconds.round() as u64;
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m {:02}s", s / 60, s % 60),
        3600..86_400 => format!("{}h {:02}m", s / 3600, s % 3600 / 60),
        _ => format!("{}d {:02}h", s / 86_400, s % 86_400 / 3600),
    }
}

fn throughput(s: &Snapshot) -> String {
    match s.throughput_epochs_per_minute {
        Some(t) if t >= 100.0 => format!("{t:.0} epochs/min"),
        Some(t) => format!("{t:.1} epochs/min"),
        None => "? epochs/min".into(),
    }
}

fn eta(s: &Snapshot) -> String {
    s.eta_seconds.map_or_else(|| "?".into(), duration)
}

/// `5/14 done (1 failed), 2 running, 7 pending`, with `, 3 stopped` among the done when early
/// stopping stopped some.
fn counts(s: &Snapshot) -> String {
    let c = &s.counts;
    format!(
        "{}/{} done ({} failed{}), {} running, {} pending",
        c.done(),
        c.total,
        c.failed,
        stopped(c),
        c.running,
        c.pending
    )
}

fn stopped(c: &super::TrialCounts) -> String {
    match c.stopped {
        0 => String::new(),
        n => format!(", {n} stopped"),
    }
}

fn best(s: &Snapshot) -> Option<String> {
    s.best
        .as_ref()
        .map(|b| format!("{:.2} % ({})", b.test_accuracy, terminal(&b.trial)))
}

fn worker_line(w: &WorkerRow) -> String {
    let mut line = format!("  {} [{}]", terminal(&w.name), terminal(&w.device));
    if let Some((used, total)) = w.memory {
        let gib = |b: u64| b as f64 / f64::from(1u32 << 30);
        let _ = write!(line, " mem {:.1}/{:.1} GiB", gib(used), gib(total));
    }
    if !w.alive {
        let _ = write!(line, " (silent {})", duration(w.seen_seconds_ago));
    }
    if let Some(problem) = &w.problem {
        let _ = write!(line, " [{}]", terminal(problem));
    }
    if w.running.is_empty() {
        line.push_str(": idle");
    } else {
        let trials: Vec<String> = w
            .running
            .iter()
            .map(|r| format!("{} epoch {}/{}", terminal(&r.trial), r.epoch, r.epochs))
            .collect();
        let _ = write!(line, ": {}", trials.join(", "));
    }
    line
}

/// The status in a few lines: the counts, rates and times; the best trial; one line per worker
/// (at most [`MAX_WORKER_LINES`]). Every line ends with a newline.
pub fn block(s: &Snapshot) -> String {
    let mut out = String::new();
    if s.finished {
        let _ = writeln!(
            out,
            "sweep {} finished: {}/{} done ({} failed{}); elapsed {}",
            terminal(&s.sweep),
            s.counts.done(),
            s.counts.total,
            s.counts.failed,
            stopped(&s.counts),
            duration(s.elapsed_seconds)
        );
    } else {
        let _ = writeln!(
            out,
            "sweep {} running: {}; {}; eta {}; elapsed {}",
            terminal(&s.sweep),
            counts(s),
            throughput(s),
            eta(s),
            duration(s.elapsed_seconds)
        );
    }
    let _ = writeln!(
        out,
        "best test accuracy: {}",
        best(s).unwrap_or_else(|| "none yet".into())
    );
    if let Some(b) = &s.budget {
        let _ = writeln!(out, "{}", budget(b));
    }
    if let Some(w) = &s.warning {
        let _ = writeln!(out, "warning: {}", terminal(w));
    }
    if s.workers.is_empty() {
        out.push_str("  no worker registered yet\n");
    }
    for w in s.workers.iter().take(MAX_WORKER_LINES) {
        let _ = writeln!(out, "{}", worker_line(w));
    }
    if s.workers.len() > MAX_WORKER_LINES {
        let _ = writeln!(
            out,
            "  ... and {} more workers",
            s.workers.len() - MAX_WORKER_LINES
        );
    }
    out
}

/// Running trials named in a progress line at most (a sweep on 1 000 workers runs 1 000).
const RUNNING_SHOWN: usize = 8;

/// The status in one line, for logs: `5/14 done (1 failed), 2 running, 7 pending, 2 workers
/// (3 silent); 31.2 epochs/min, eta 4m 10s; best test accuracy 88.41 % (t3) [t5 epoch 2/10 on
/// a, ...]` (at most [`RUNNING_SHOWN`] running trials named). Workers count those alive (heard
/// from within a lease TTL); the silent ones are counted apart.
pub fn line(s: &Snapshot) -> String {
    let alive = s.workers.iter().filter(|w| w.alive).count();
    let mut out = format!("{}, {alive} workers", counts(s));
    let silent = s.workers.len() - alive;
    if silent > 0 {
        let _ = write!(out, " ({silent} silent)");
    }
    if !s.finished {
        let _ = write!(out, "; {}, eta {}", throughput(s), eta(s));
    }
    if let Some(b) = best(s) {
        let _ = write!(out, "; best test accuracy {b}");
    }
    let running: Vec<String> = s
        .workers
        .iter()
        .flat_map(|w| {
            w.running.iter().map(move |r| {
                format!(
                    "{} epoch {}/{} on {}",
                    terminal(&r.trial),
                    r.epoch,
                    r.epochs,
                    terminal(&w.name)
                )
            })
        })
        .collect();
    if running.len() > RUNNING_SHOWN {
        let more = running.len() - RUNNING_SHOWN;
        let _ = write!(
            out,
            " [{}, and {more} more]",
            running[..RUNNING_SHOWN].join(", ")
        );
    } else if !running.is_empty() {
        let _ = write!(out, " [{}]", running.join(", "));
    }
    if let Some(w) = &s.warning {
        let _ = write!(out, "; warning: {}", terminal(w));
    }
    out
}

/// The page of trials a snapshot lists, one line each (`t3 [e] succeeded epoch 5/5, test
/// 88.41 %, on gpu-a`), under a line saying which page it is. Empty without a page.
pub fn trials(s: &Snapshot) -> String {
    let Some(page) = s.page else {
        return String::new();
    };
    let mut out = String::new();
    if s.trials.is_empty() {
        let _ = writeln!(
            out,
            "no trial on this page ({} match, from {})",
            page.matched, page.offset
        );
        return out;
    }
    let _ = writeln!(
        out,
        "trials {} to {} of {} matching:",
        u64::from(page.offset) + 1,
        u64::from(page.offset) + s.trials.len() as u64,
        page.matched
    );
    for t in &s.trials {
        let _ = write!(
            out,
            "  {} [{}] {} epoch {}/{}",
            t.name,
            t.experiment,
            t.state.name(),
            t.epoch,
            t.epochs
        );
        if let Some(a) = t.test_accuracy {
            let _ = write!(out, ", test {a:.2} %");
        }
        if let Some(w) = &t.worker {
            let _ = write!(out, ", on {w}");
        }
        if let Some(f) = &t.failure {
            let _ = write!(out, ": {f}");
        }
        out.push('\n');
    }
    out
}

/// The budget's line: what is spent and committed of `[sweep] max_hours`, and what it stopped.
pub fn budget(b: &super::BudgetRow) -> String {
    let mut line = format!(
        "budget: {:.2} of {} device-hours spent, {:.2} committed ({:.2} left)",
        b.spent_hours,
        b.max_hours,
        b.committed_hours,
        (b.max_hours - b.committed_hours).max(0.0)
    );
    if b.stopped > 0 {
        let _ = write!(
            line,
            "; {} trial{} not run: the budget would be exceeded",
            b.stopped,
            if b.stopped == 1 { "" } else { "s" }
        );
    }
    line
}
