//! What the coordinator does with each `sweep.v1` request it receives (and the worker with each
//! response): decode it with prost, then convert every field with `sweep_proto`'s conversions.
//! Shared by the property tests (`proto/tests/decode_requests.rs`) and the cargo-fuzz target
//! (`fuzz/fuzz_targets/requests.rs`), so that both exercise the same path.
//!
//! Every function returns `Err` with a description when a conversion *accepted* a value that
//! breaks a domain invariant; a conversion that refuses is fine. A panic anywhere is a bug.

#![allow(dead_code)]

use prost::Message;
use sweep_common::{ConfusionMatrix, EpochMetrics, TrialResult, TrialSpec};
use sweep_proto::{parse_lease, v1};

/// Every message the decoders meet, by name.
pub const MESSAGES: &[&str] = &[
    "RegisterRequest",
    "LeaseRequest",
    "HeartbeatRequest",
    "ReportEpochRequest",
    "CompleteRequest",
    "ArtifactChunk",
    "StatusRequest",
    "LeaseResponse",
    "HeartbeatResponse",
    "FetchCheckpointRequest",
    "CancelRequest",
    "RetryRequest",
    "PromoteRequest",
];

/// Decodes `bytes` as message number `which` of [`MESSAGES`] and converts what decodes.
pub fn decode_and_convert(which: usize, bytes: &[u8]) -> Result<(), String> {
    match which % MESSAGES.len() {
        0 => v1::RegisterRequest::decode(bytes).map_or(Ok(()), |m| register(&m)),
        1 => v1::LeaseRequest::decode(bytes).map_or(Ok(()), |m| lease_request(&m)),
        2 => v1::HeartbeatRequest::decode(bytes).map_or(Ok(()), |m| heartbeat(&m)),
        3 => v1::ReportEpochRequest::decode(bytes).map_or(Ok(()), |m| report_epoch(&m)),
        4 => v1::CompleteRequest::decode(bytes).map_or(Ok(()), |m| complete(&m)),
        5 => v1::ArtifactChunk::decode(bytes).map_or(Ok(()), |m| artifact(&m)),
        6 => v1::StatusRequest::decode(bytes).map_or(Ok(()), |_| Ok(())),
        7 => v1::LeaseResponse::decode(bytes).map_or(Ok(()), |m| lease_response(&m)),
        8 => v1::HeartbeatResponse::decode(bytes).map_or(Ok(()), |m| heartbeat_response(&m)),
        9 => v1::FetchCheckpointRequest::decode(bytes).map_or(Ok(()), |m| {
            lease_request(&v1::LeaseRequest {
                worker_id: m.worker_id.clone(),
            })?;
            lease(m.lease.as_ref())
        }),
        10 => v1::CancelRequest::decode(bytes).map_or(Ok(()), |m| cancel(&m)),
        11 => v1::RetryRequest::decode(bytes).map_or(Ok(()), |m| retry(&m)),
        _ => v1::PromoteRequest::decode(bytes).map_or(Ok(()), |m| promote(&m)),
    }
}

/// Decodes `bytes` as every message in turn.
pub fn decode_as_every_message(bytes: &[u8]) -> Result<(), String> {
    for (which, name) in MESSAGES.iter().enumerate() {
        decode_and_convert(which, bytes).map_err(|e| format!("{name}: {e}"))?;
    }
    Ok(())
}

fn ensure(ok: bool, what: impl FnOnce() -> String) -> Result<(), String> {
    if ok { Ok(()) } else { Err(what()) }
}

/// Text that converted: within `max` characters, with no control or invisible character (it
/// is written to terminals, logs and reports).
fn clean(what: &str, s: &str, max: usize) -> Result<(), String> {
    ensure(!s.chars().any(sweep_common::text::forbidden), || {
        format!("{what} accepted with a control or invisible character: {s:?}")
    })?;
    ensure(s.chars().count() <= max, || {
        format!("{what} of {} characters accepted", s.chars().count())
    })
}

pub fn register(r: &v1::RegisterRequest) -> Result<(), String> {
    let _ = v1::ProtocolVersion::try_from(r.protocol_version);
    if let Ok(reg) = sweep_proto::Registration::try_from(r) {
        clean("worker_name", &reg.name, sweep_proto::MAX_NAME_CHARS)?;
        ensure((1..=sweep_proto::MAX_SLOTS).contains(&reg.slots), || {
            format!("slots {} accepted", reg.slots)
        })?;
        if let Some(d) = &reg.device {
            clean("device.name", &d.name, sweep_proto::MAX_NAME_CHARS)?;
        }
    }
    Ok(())
}

pub fn cancel(r: &v1::CancelRequest) -> Result<(), String> {
    if let Ok(c) = sweep_proto::Cancel::try_from(r) {
        for name in c.trials.iter().chain(&c.experiments) {
            clean("a cancelled name", name, sweep_proto::MAX_CANCEL_NAME_CHARS)?;
        }
        clean("reason", &c.reason, sweep_proto::MAX_MESSAGE_CHARS)?;
        ensure(
            c.all || !c.trials.is_empty() || !c.experiments.is_empty(),
            || "a cancel naming nothing accepted".to_owned(),
        )?;
    }
    Ok(())
}

pub fn retry(r: &v1::RetryRequest) -> Result<(), String> {
    if let Ok(c) = sweep_proto::Retry::try_from(r) {
        for name in c.trials.iter().chain(&c.experiments) {
            clean("a retried name", name, sweep_proto::MAX_CANCEL_NAME_CHARS)?;
        }
        ensure(
            c.failed || !c.trials.is_empty() || !c.experiments.is_empty(),
            || "a retry naming nothing accepted".to_owned(),
        )?;
    }
    Ok(())
}

pub fn promote(r: &v1::PromoteRequest) -> Result<(), String> {
    if let Ok(c) = sweep_proto::Promote::try_from(r) {
        for name in c.trials.iter().chain(&c.experiments) {
            clean("a promoted name", name, sweep_proto::MAX_CANCEL_NAME_CHARS)?;
        }
        ensure(!c.trials.is_empty() || !c.experiments.is_empty(), || {
            "a promotion naming nothing accepted".to_owned()
        })?;
    }
    Ok(())
}

pub fn lease_request(r: &v1::LeaseRequest) -> Result<(), String> {
    let _ = r.worker_id.parse::<sweep_common::WorkerId>();
    Ok(())
}

/// A lease that converts names a trial and an attempt of at least 1.
fn lease(l: Option<&v1::LeaseRef>) -> Result<(), String> {
    if let Ok((_, attempt)) = parse_lease(l) {
        ensure(attempt >= 1, || {
            format!("lease accepted with attempt {attempt}")
        })?;
    }
    Ok(())
}

pub fn heartbeat(r: &v1::HeartbeatRequest) -> Result<(), String> {
    lease_request(&v1::LeaseRequest {
        worker_id: r.worker_id.clone(),
    })?;
    if let Some(m) = &r.memory
        && let Ok(m) = sweep_proto::DeviceMemory::try_from(m)
    {
        ensure(m.used <= m.total && m.free <= m.total, || {
            format!("memory accepted with more used or free than in total: {m:?}")
        })?;
    }
    r.leases.iter().try_for_each(|l| lease(Some(l)))
}

pub fn heartbeat_response(r: &v1::HeartbeatResponse) -> Result<(), String> {
    r.revoked.iter().try_for_each(|l| lease(Some(l)))
}

pub fn report_epoch(r: &v1::ReportEpochRequest) -> Result<(), String> {
    lease(r.lease.as_ref())?;
    if let Some(m) = &r.metrics
        && let Ok(metrics) = EpochMetrics::try_from(m)
    {
        epoch_metrics(&metrics)?;
    }
    // A batch decodes only whole: bounded, every epoch valid, consecutive.
    if let Ok(report) = sweep_proto::EpochReport::try_from(r) {
        let n = report.epochs.len();
        ensure(
            (1..=sweep_proto::MAX_EPOCHS_PER_REPORT as usize).contains(&n),
            || format!("a report of {n} epochs accepted"),
        )?;
        report.epochs.iter().try_for_each(epoch_metrics)?;
        let steps = report.epochs.windows(2);
        ensure(
            steps.into_iter().all(|w| w[0].epoch + 1 == w[1].epoch),
            || "a batch of epochs that are not consecutive accepted".to_owned(),
        )?;
    }
    Ok(())
}

/// A converted epoch: numbered from 1, accuracies that are percentages, a duration.
fn epoch_metrics(m: &EpochMetrics) -> Result<(), String> {
    ensure(m.epoch >= 1, || format!("epoch {} accepted", m.epoch))?;
    for a in [m.train_accuracy, m.test_accuracy] {
        ensure((0.0..=100.0).contains(&a), || {
            format!("accuracy {a} accepted")
        })?;
    }
    ensure(m.train_loss.is_finite() && m.train_loss >= 0.0, || {
        format!("train_loss {} accepted", m.train_loss)
    })?;
    ensure(duration(m.seconds), || {
        format!("seconds {} accepted", m.seconds)
    })
}

/// A duration a clock can have measured: finite, from 0 to a year.
fn duration(seconds: f64) -> bool {
    seconds.is_finite() && (0.0..=sweep_proto::MAX_SECONDS).contains(&seconds)
}

pub fn complete(r: &v1::CompleteRequest) -> Result<(), String> {
    lease(r.lease.as_ref())?;
    match &r.outcome {
        Some(v1::complete_request::Outcome::Result(result)) => {
            if let Ok(result) = TrialResult::try_from(result) {
                trial_result(&result)?;
            }
        }
        Some(v1::complete_request::Outcome::Failure(f)) => {
            let _ = sweep_proto::failure_kind(f.kind);
            if let Ok(message) = sweep_proto::failure_message(f) {
                clean("failure.message", &message, sweep_proto::MAX_MESSAGE_CHARS)?;
            }
        }
        None => {}
    }
    Ok(())
}

/// A converted result: valid epochs and accuracies, square matrices whose totals fit a u64 (the
/// coordinator sums them to check them against the split sizes).
fn trial_result(r: &TrialResult) -> Result<(), String> {
    r.epochs.iter().try_for_each(epoch_metrics)?;
    for a in [r.last.train_accuracy, r.last.test_accuracy] {
        ensure((0.0..=100.0).contains(&a), || {
            format!("accuracy {a} accepted")
        })?;
    }
    ensure(duration(r.last.train_seconds), || {
        format!("train_seconds {} accepted", r.last.train_seconds)
    })?;
    confusion(&r.last.train_confusion)?;
    confusion(&r.last.test_confusion)
}

fn confusion(m: &ConfusionMatrix) -> Result<(), String> {
    ensure(
        m.classes >= 1 && m.counts.len() == m.classes * m.classes,
        || {
            format!(
                "{} counts accepted for {} classes",
                m.counts.len(),
                m.classes
            )
        },
    )?;
    let total = m.counts.iter().try_fold(0u64, |sum, &c| sum.checked_add(c));
    ensure(total.is_some(), || {
        format!(
            "counts accepted whose total overflows a u64: {:?}",
            m.counts
        )
    })?;
    // What the coordinator computes from an accepted matrix.
    let _ = (m.total(), m.correct(), m.accuracy());
    Ok(())
}

pub fn artifact(c: &v1::ArtifactChunk) -> Result<(), String> {
    if let Some(h) = &c.header {
        let _ = h.worker_id.parse::<sweep_common::WorkerId>();
        lease(h.lease.as_ref())?;
        let _ = v1::ArtifactKind::try_from(h.kind);
    }
    Ok(())
}

pub fn lease_response(r: &v1::LeaseResponse) -> Result<(), String> {
    if let Some(v1::lease_response::Outcome::Assignment(a)) = &r.outcome {
        lease(a.lease.as_ref())?;
        if let Some(t) = &a.trial
            && let Ok(spec) = TrialSpec::try_from(t)
        {
            trial_spec(&spec)?;
        }
    }
    Ok(())
}

/// A converted trial: its id is its content's, and every hyperparameter is one a grid file
/// could have given (the worker builds and trains the model it describes).
fn trial_spec(t: &TrialSpec) -> Result<(), String> {
    ensure(t.content_id() == t.id, || {
        "a trial accepted with a foreign id".to_owned()
    })?;
    clean(
        "trial.experiment",
        &t.experiment,
        sweep_proto::MAX_NAME_CHARS,
    )?;
    clean("trial.name", &t.name, sweep_proto::MAX_CANCEL_NAME_CHARS)?;
    for (param, value) in t.params.values() {
        ensure(param.def().domain.contains(value), || {
            format!("{param} {value:?} accepted")
        })?;
    }
    ensure(
        t.split.train_ratio > 0.0 && t.split.train_ratio < 1.0,
        || format!("split_ratio {} accepted", t.split.train_ratio),
    )
}
