//! Epoch reports: one epoch in `metrics` (what every coordinator reads), or several
//! consecutive ones in `batch` (a coordinator that said so at Register), so that a worker whose
//! epochs end faster than a round trip sends them in one call.

use sweep_common::{EpochMetrics, TrialId, WorkerId};

use crate::convert::{DecodeError, lease_ref, parse_lease};
use crate::v1;

/// The most epochs one `ReportEpoch` carries (a coordinator says it at Register). 256 epochs with
/// 32 scalars each are under 1 MiB, well inside the message limit.
pub const MAX_EPOCHS_PER_REPORT: u32 = 256;

/// A decoded `ReportEpochRequest`: the lease and its epochs, consecutive and ascending, at least
/// one and at most [`MAX_EPOCHS_PER_REPORT`].
#[derive(Debug, Clone, PartialEq)]
pub struct EpochReport {
    /// The lease (trial, attempt) it reports under.
    pub lease: (TrialId, u32),
    /// The epochs, in order.
    pub epochs: Vec<EpochMetrics>,
}

fn invalid(message: String) -> DecodeError {
    DecodeError::Invalid {
        field: "batch",
        message,
    }
}

impl TryFrom<&v1::ReportEpochRequest> for EpochReport {
    type Error = DecodeError;

    fn try_from(r: &v1::ReportEpochRequest) -> Result<Self, Self::Error> {
        let lease = parse_lease(r.lease.as_ref())?;
        let epochs = match (&r.metrics, r.batch.as_slice()) {
            (Some(m), []) => vec![EpochMetrics::try_from(m)?],
            (None, []) => return Err(DecodeError::Missing("metrics")),
            (Some(_), [_, ..]) => {
                return Err(invalid("give metrics or batch, not both".to_owned()));
            }
            (None, batch) => batch_epochs(batch)?,
        };
        Ok(EpochReport { lease, epochs })
    }
}

/// The epochs of a non-empty `batch`, checked: at most [`MAX_EPOCHS_PER_REPORT`], each valid,
/// consecutive and ascending.
fn batch_epochs(batch: &[v1::EpochMetrics]) -> Result<Vec<EpochMetrics>, DecodeError> {
    if batch.len() > MAX_EPOCHS_PER_REPORT as usize {
        let n = batch.len();
        return Err(invalid(format!(
            "{n} epochs; at most {MAX_EPOCHS_PER_REPORT} in one report"
        )));
    }
    let mut epochs: Vec<EpochMetrics> = Vec::with_capacity(batch.len());
    for m in batch {
        let m = EpochMetrics::try_from(m)?;
        if let Some(last) = epochs.last()
            && last.epoch.checked_add(1) != Some(m.epoch)
        {
            return Err(invalid(format!(
                "epoch {} follows epoch {}: a batch's epochs are consecutive and ascending",
                m.epoch, last.epoch
            )));
        }
        epochs.push(m);
    }
    Ok(epochs)
}

/// A worker reporting `epochs` (consecutive, ascending, at least one) of the trial it leased:
/// one in `metrics`, which every coordinator reads; more in `batch`, which a worker sends only
/// to a coordinator that accepts batches (`RegisterResponse.max_epochs_per_report` > 1).
pub fn report_epochs_request(
    worker: WorkerId,
    (trial, attempt): (TrialId, u32),
    epochs: &[EpochMetrics],
) -> v1::ReportEpochRequest {
    let (metrics, batch) = match epochs {
        [one] => (Some(one.into()), Vec::new()),
        many => (None, many.iter().map(Into::into).collect()),
    };
    v1::ReportEpochRequest {
        worker_id: worker.to_string(),
        lease: Some(lease_ref(trial, attempt)),
        metrics,
        batch,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn epoch(n: u32) -> EpochMetrics {
        EpochMetrics {
            epoch: n,
            train_loss: 0.5,
            train_accuracy: 80.0,
            test_accuracy: 75.0,
            seconds: 0.0,
            scalars: Default::default(),
        }
    }

    fn lease() -> (TrialId, u32) {
        (TrialId::from_content("t"), 2)
    }

    #[test]
    fn one_epoch_goes_in_metrics_and_several_in_batch() {
        let worker = WorkerId::random();
        let one = report_epochs_request(worker, lease(), &[epoch(3)]);
        assert!(one.metrics.is_some() && one.batch.is_empty());
        let decoded = EpochReport::try_from(&one);
        assert_eq!(decoded.map(|r| r.epochs), Ok(vec![epoch(3)]));

        let three: Vec<_> = (3..=5).map(epoch).collect();
        let many = report_epochs_request(worker, lease(), &three);
        assert!(many.metrics.is_none() && many.batch.len() == 3);
        let decoded = EpochReport::try_from(&many);
        assert_eq!(
            decoded,
            Ok(EpochReport {
                lease: lease(),
                epochs: three
            })
        );
    }

    #[test]
    fn a_batch_must_be_consecutive_ascending_bounded_and_alone() {
        let worker = WorkerId::random();
        let field = |r: &v1::ReportEpochRequest| match EpochReport::try_from(r) {
            Err(DecodeError::Invalid { field, message }) => format!("{field}: {message}"),
            other => format!("{other:?}"),
        };
        let gap = report_epochs_request(worker, lease(), &[epoch(1), epoch(3)]);
        assert_eq!(
            field(&gap),
            "batch: epoch 3 follows epoch 1: a batch's epochs are consecutive and ascending"
        );
        let down = report_epochs_request(worker, lease(), &[epoch(2), epoch(1)]);
        assert!(field(&down).contains("epoch 1 follows epoch 2"));
        let repeated = report_epochs_request(worker, lease(), &[epoch(2), epoch(2)]);
        assert!(field(&repeated).contains("epoch 2 follows epoch 2"));

        let too_many: Vec<_> = (1..=MAX_EPOCHS_PER_REPORT + 1).map(epoch).collect();
        let big = report_epochs_request(worker, lease(), &too_many);
        assert_eq!(field(&big), "batch: 257 epochs; at most 256 in one report");

        let mut both = report_epochs_request(worker, lease(), &[epoch(1), epoch(2)]);
        both.metrics = Some((&epoch(1)).into());
        assert_eq!(field(&both), "batch: give metrics or batch, not both");

        let mut neither = both.clone();
        neither.metrics = None;
        neither.batch.clear();
        assert_eq!(
            EpochReport::try_from(&neither),
            Err(DecodeError::Missing("metrics"))
        );

        // Each epoch of a batch is checked as a single one is.
        let mut bad = report_epochs_request(worker, lease(), &[epoch(1), epoch(2)]);
        bad.batch[1].test_accuracy = 250.0;
        assert!(
            field(&bad).starts_with("metrics.test_accuracy"),
            "{}",
            field(&bad)
        );
    }
}
