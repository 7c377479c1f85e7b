//! A trial's files on the wire: the checkpoint it resumes from, fetched and checked, and the
//! checkpoints, final weights and program logs it uploads.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use sweep_common::trial::LogStream;
use sweep_common::{FailureKind, TrialSpec};
use sweep_proto::{Artifact, v1};
use tokio::sync::watch;
use tonic::{Code, Status};
use tracing::{info, warn};

use super::{Lease, Session, retry, retry_if};

/// Whether the coordinator could not store an upload now (its disk is full, a folder is not
/// writable: RESOURCE_EXHAUSTED, which also asks a worker calling too fast to slow down). What
/// to do then is the caller's choice: a checkpoint is skipped (the next one tries again), the
/// final weights wait.
pub(super) fn not_stored_now(status: &Status) -> bool {
    status.code() == Code::ResourceExhausted
}

/// Uploads `bytes` as `artifact` of `lease`, in chunks, retrying transient errors, except that
/// the coordinator cannot store it now ([`not_stored_now`]), which is answered at once.
pub(super) async fn upload(
    session: &Session,
    lease: Lease,
    artifact: Artifact,
    bytes: Arc<Vec<u8>>,
    stop: &watch::Receiver<bool>,
) -> Result<v1::ArtifactReceipt, Status> {
    use sha2::Digest as _;
    let sha256 = format!("{:x}", sha2::Sha256::digest(bytes.as_slice()));
    let again: fn(&Status) -> bool = |s| sweep_proto::transient(s) && !not_stored_now(s);
    let response = retry_if(session.patience, stop, again, || {
        let mut c = session.client.clone();
        let chunks =
            sweep_proto::artifact_chunks(session.worker_id, lease, artifact, &sha256, &bytes);
        async move { c.upload_artifact(tokio_stream::iter(chunks)).await }
    })
    .await?;
    Ok(response.into_inner())
}

/// Uploads a program trial's logs while its lease is live, best effort: a log that cannot be
/// read or stored is a warning, not the trial's failure. A stored log is removed here.
pub(super) async fn upload_logs(
    session: &Session,
    lease: Lease,
    spec: &TrialSpec,
    dir: &Path,
    never: &watch::Receiver<bool>,
) {
    for stream in LogStream::ALL {
        let path = crate::program::log::path(dir, spec, stream);
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => Arc::new(bytes),
            Err(e) => {
                warn!(trial = %spec.name, log = %path.display(), error = %e, "cannot read the program's log");
                continue;
            }
        };
        let artifact = Artifact::ProgramLog(stream);
        match upload(session, lease, artifact, bytes, never).await {
            Ok(receipt) => {
                info!(trial = %spec.name, stream = stream.name(), bytes = receipt.size, "program log uploaded");
                let _ = std::fs::remove_file(&path);
            }
            Err(status) => {
                warn!(trial = %spec.name, log = %path.display(), message = status.message(), "program log not stored; kept here");
            }
        }
    }
}

/// How uploading the final weights ended.
pub(super) enum WeightsUpload {
    /// Stored.
    Stored(v1::ArtifactReceipt),
    /// Refused, or the coordinator could not be reached within the patience.
    NotStored(Status),
    /// The worker was told to stop while the coordinator could not store them.
    Stopped,
}

/// Uploads a trial's final weights. While the coordinator cannot store them now (its storage
/// failed: the operator sees it in the status), keeps the result and tries again with backoff,
/// for as long as it takes: every try renews the lease (so the backoff stops at the heartbeat
/// interval), and nothing is trained again. Told to stop meanwhile, gives up.
pub(super) async fn upload_weights(
    session: &Session,
    lease: Lease,
    name: &str,
    weights: Vec<u8>,
    never: &watch::Receiver<bool>,
    shutdown: &mut watch::Receiver<bool>,
) -> WeightsUpload {
    let weights = Arc::new(weights);
    let mut delay = Duration::from_millis(100);
    let mut failures: u64 = 0;
    loop {
        let artifact = Artifact::FinalWeights;
        let status = match upload(session, lease, artifact, Arc::clone(&weights), never).await {
            Ok(receipt) => {
                if failures > 0 {
                    info!(trial = %name, tries = failures + 1, "the coordinator stored the final weights");
                }
                return WeightsUpload::Stored(receipt);
            }
            Err(status) if not_stored_now(&status) => status,
            Err(status) => return WeightsUpload::NotStored(status),
        };
        if failures == 0 {
            warn!(trial = %name, message = status.message(), "the coordinator cannot store the final weights now; keeping the result and trying again");
        }
        failures += 1;
        if *shutdown.borrow() {
            return WeightsUpload::Stopped;
        }
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            _ = shutdown.changed() => return WeightsUpload::Stopped,
        }
        delay = (delay * 2).min(session.heartbeat);
    }
}

/// Downloads the checkpoint `resume` names for `lease` and checks its size and SHA-256. A
/// checkpoint the coordinator says is damaged (`DATA_LOSS`), or that arrives damaged, is
/// `CheckpointUnusable` (the coordinator sets it aside); not getting it at all is `Internal`.
pub(super) async fn fetch_checkpoint(
    session: &Session,
    lease: Lease,
    resume: &v1::CheckpointRef,
    stop: &watch::Receiver<bool>,
) -> Result<Vec<u8>, (FailureKind, String)> {
    use sha2::Digest as _;
    use tokio_stream::StreamExt as _;
    let request = sweep_proto::fetch_checkpoint_request(session.worker_id, lease);
    let bytes = retry(session.patience, stop, || {
        let mut c = session.client.clone();
        let r = request.clone();
        async move {
            let mut stream = c.fetch_checkpoint(r).await?.into_inner();
            let mut bytes = Vec::new();
            while let Some(chunk) = stream.next().await {
                bytes.extend_from_slice(&chunk?.data);
                if bytes.len() as u64 > resume.size {
                    break;
                }
            }
            Ok(bytes)
        }
    })
    .await
    .map_err(|s| {
        let kind = if s.code() == Code::DataLoss {
            FailureKind::CheckpointUnusable
        } else {
            FailureKind::Internal
        };
        (
            kind,
            format!(
                "cannot fetch the checkpoint to resume from: {}",
                s.message()
            ),
        )
    })?;
    let sha256 = format!("{:x}", sha2::Sha256::digest(&bytes));
    if bytes.len() as u64 != resume.size || sha256 != resume.sha256 {
        return Err((
            FailureKind::CheckpointUnusable,
            format!(
                "the checkpoint to resume from arrived damaged: {} bytes with SHA-256 {sha256}, expected {} bytes with {}",
                bytes.len(),
                resume.size,
                resume.sha256
            ),
        ));
    }
    Ok(bytes)
}
