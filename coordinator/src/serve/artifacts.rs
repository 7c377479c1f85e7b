//! Files that workers upload under a live lease: final weights (kept with the results as
//! `models/<trial name>.safetensors`) and checkpoints (in the state directory, as
//! `checkpoints/<trial id>-a<attempt>-e<epoch>.safetensors`, until the trial ends), and the
//! download of a checkpoint by the attempt that resumes from it.
//!
//! A file is written to a temporary name, checked against the size and SHA-256 of its header,
//! synced and renamed into place only if both match; it counts only once the state owner has
//! recorded it under the still-live lease. A checkpoint is checked again before it is served: one
//! that is missing or damaged is answered with `DATA_LOSS`, and once the attempt says so the
//! state owner sets it aside (moved into `checkpoints/set-aside/`, kept for inspection).

use std::io::Write as _;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use sweep_common::WorkerId;
use sweep_proto::v1;
use sweep_proto::{DecodeError, MAX_ARTIFACT_BYTES, parse_lease};
use tokio_stream::{Stream, StreamExt};
use tonic::Status;

use crate::Error;
use crate::actor::Handle;
use crate::state::{Checkpoint, LeaseKey, Storage};

/// Where uploads go.
#[derive(Debug, Clone)]
pub struct Dirs {
    /// The output folder (final weights).
    pub out: PathBuf,
    /// The state directory (checkpoints).
    pub state: PathBuf,
}

/// The folder of final weights in the output folder.
pub const MODELS: &str = "models";

/// The file name of a trial's final weights in [`MODELS`]: the file stem of its name (unique per
/// trial: the grid refuses names that give one file name).
fn weights_name(trial_name: &str) -> String {
    format!("{}.safetensors", sweep_common::trial::file_stem(trial_name))
}

/// Where a trial's final weights go, relative to the output folder.
pub fn weights_file(trial_name: &str) -> String {
    format!("{MODELS}/{}", weights_name(trial_name))
}

/// The folder of checkpoints in the state directory.
pub fn checkpoints_dir(state_dir: &Path) -> PathBuf {
    state_dir.join("checkpoints")
}

/// Where unusable checkpoints are kept, in the checkpoints folder.
pub const SET_ASIDE: &str = "set-aside";

/// Moves checkpoint `file` of the folder `checkpoints` into its [`SET_ASIDE`] folder. A file
/// that is already gone (it was missing, or moved before a crash) is fine; any other failure is
/// logged: the state stops naming the file either way, so it is never offered again.
pub fn set_aside(checkpoints: &Path, file: &str) {
    let from = checkpoints.join(file);
    let dir = checkpoints.join(SET_ASIDE);
    let moved = std::fs::create_dir_all(&dir).and_then(|()| std::fs::rename(&from, dir.join(file)));
    match moved {
        Ok(()) => {
            tracing::info!(file = %from.display(), to = %dir.display(), "unusable checkpoint set aside")
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => {
            tracing::warn!(file = %from.display(), error = %e, "cannot move an unusable checkpoint aside");
        }
    }
}

fn invalid(field: &'static str, message: impl Into<String>) -> Error {
    Error::Decode(DecodeError::Invalid {
        field,
        message: message.into(),
    })
}

/// Receives one upload. Returns its size and SHA-256.
pub async fn receive(
    mut stream: impl Stream<Item = Result<v1::ArtifactChunk, Status>> + Unpin,
    dirs: &Dirs,
    handle: &Handle,
    verify: impl FnOnce(WorkerId) -> Result<(), Error>,
) -> Result<v1::ArtifactReceipt, Error> {
    let first = match stream.next().await {
        Some(Ok(chunk)) => chunk,
        Some(Err(status)) => return Err(invalid("stream", status.message().to_owned())),
        None => return Err(Error::Decode(DecodeError::Missing("header"))),
    };
    let header = first
        .header
        .clone()
        .ok_or(Error::Decode(DecodeError::Missing("header")))?;
    let worker: WorkerId = header
        .worker_id
        .parse()
        .map_err(|e: sweep_common::ids::InvalidId| invalid("header.worker_id", e.to_string()))?;
    verify(worker)?;
    let (trial, attempt) = parse_lease(header.lease.as_ref())?;
    if header.size > MAX_ARTIFACT_BYTES {
        return Err(invalid(
            "header.size",
            format!(
                "{} bytes is over the limit of {MAX_ARTIFACT_BYTES}",
                header.size
            ),
        ));
    }
    let sha256 = header.sha256.to_ascii_lowercase();
    if sha256.len() != 64 || !sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(invalid("header.sha256", "expected 64 hex digits"));
    }
    let spec = handle
        .check_lease(LeaseKey::new(worker, trial, attempt))
        .await?;
    let checkpoint = v1::ArtifactKind::try_from(header.kind) == Ok(v1::ArtifactKind::Checkpoint);
    let (dir, name, what) = match v1::ArtifactKind::try_from(header.kind) {
        Ok(v1::ArtifactKind::FinalWeights) => (
            dirs.out.join(MODELS),
            weights_name(&spec.name),
            Storage::Weights,
        ),
        Ok(v1::ArtifactKind::Checkpoint) => (
            checkpoints_dir(&dirs.state),
            format!("{}-a{attempt}-e{}.safetensors", spec.id, header.epoch),
            Storage::Checkpoints,
        ),
        _ => {
            return Err(invalid(
                "header.kind",
                format!("unknown artifact kind {}", header.kind),
            ));
        }
    };
    let written = write(first, &mut stream, header.size, &sha256, &dir, &name, what).await;
    // The status says when the coordinator cannot store what workers send, until it can again.
    match &written {
        Ok(_) => handle.storage_worked(what).await,
        Err(Error::Storage {
            action,
            path,
            source,
            ..
        }) => {
            let message = format!("{action} {path}: {source}");
            handle.storage_failed(what, message).await;
        }
        Err(_) => {}
    }
    let (path, size, actual) = written?;
    let recorded = if checkpoint {
        let c = Checkpoint {
            epoch: header.epoch,
            attempt,
            file: name.clone(),
            size,
            sha256: actual.clone(),
        };
        handle.record_checkpoint(worker, trial, c).await
    } else {
        handle
            .record_weights(
                LeaseKey::new(worker, trial, attempt),
                format!("{MODELS}/{name}"),
            )
            .await
    };
    if let Err(e) = recorded {
        // The lease ended while the file was coming in (or the checkpoint does not fit the
        // epochs accepted): the file is not this trial's.
        let _ = std::fs::remove_file(&path);
        return Err(e);
    }
    tracing::debug!(trial = %spec.name, attempt, bytes = size, file = %path.display(), "artifact stored");
    Ok(v1::ArtifactReceipt {
        size,
        sha256: actual,
    })
}

/// Writes the upload's chunks (`first`, then the rest of `stream`) into `dir/name`: to a
/// temporary file, checked against the header's `size` and `sha256`, synced, then renamed into
/// place. Returns the path, the size and the SHA-256. A failure to write is an
/// [`Error::Storage`] of `what`; a stream that does not match its header is an
/// [`Error::Decode`].
async fn write(
    first: v1::ArtifactChunk,
    stream: &mut (impl Stream<Item = Result<v1::ArtifactChunk, Status>> + Unpin),
    announced: u64,
    sha256: &str,
    dir: &Path,
    name: &str,
    what: Storage,
) -> Result<(PathBuf, u64, String), Error> {
    let storage = |action: &'static str, path: &Path| {
        let path = path.display().to_string();
        move |source| Error::Storage {
            what: what.what(),
            action,
            path,
            source,
        }
    };
    std::fs::create_dir_all(dir).map_err(storage("cannot create", dir))?;
    // A checkpoint stays its owner's alone (`0600`, tempfile's mode, in the `0700` state
    // directory); the final weights are results, made as any file the user makes (`0666` less
    // the umask).
    let mut builder = tempfile::Builder::new();
    #[cfg(unix)]
    if what == Storage::Weights {
        use std::os::unix::fs::PermissionsExt as _;
        builder.permissions(std::fs::Permissions::from_mode(0o666));
    }
    let mut tmp = builder
        .tempfile_in(dir)
        .map_err(storage("cannot create a file in", dir))?;
    let mut hasher = Sha256::new();
    let mut size: u64 = 0;
    let mut chunk = Some(first);
    while let Some(c) = chunk {
        size += c.data.len() as u64;
        if size > announced {
            return Err(invalid(
                "data",
                format!("more than the {announced} bytes announced"),
            ));
        }
        hasher.update(&c.data);
        tmp.write_all(&c.data)
            .map_err(storage("cannot write", tmp.path()))?;
        chunk = match stream.next().await {
            Some(Ok(c)) if c.header.is_some() => {
                return Err(invalid("header", "only the first chunk may carry a header"));
            }
            Some(Ok(c)) => Some(c),
            Some(Err(status)) => return Err(invalid("stream", status.message().to_owned())),
            None => None,
        };
    }
    let actual = format!("{:x}", hasher.finalize());
    if size != announced || actual != sha256 {
        return Err(invalid(
            "data",
            format!(
                "received {size} bytes with SHA-256 {actual}, the header announced {announced} bytes with {sha256}"
            ),
        ));
    }
    tmp.as_file()
        .sync_all()
        .map_err(storage("cannot write", tmp.path()))?;
    let path: PathBuf = dir.join(name);
    tmp.persist(&path)
        .map_err(|e| storage("cannot write", &path)(e.error))?;
    Ok((path, size, actual))
}

/// The checkpoint the live lease resumes from, as chunks of at most
/// [`sweep_proto::ARTIFACT_CHUNK_BYTES`].
pub async fn send_checkpoint(
    request: &v1::FetchCheckpointRequest,
    state_dir: &Path,
    handle: &Handle,
) -> Result<Vec<v1::CheckpointChunk>, Error> {
    let worker: WorkerId = request
        .worker_id
        .parse()
        .map_err(|e: sweep_common::ids::InvalidId| invalid("worker_id", e.to_string()))?;
    let (trial, attempt) = parse_lease(request.lease.as_ref())?;
    let c = handle
        .resume_checkpoint(LeaseKey::new(worker, trial, attempt))
        .await?;
    let path = checkpoints_dir(state_dir).join(&c.file);
    let bytes = match std::fs::read(&path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(Error::CheckpointDamaged {
                path: path.display().to_string(),
                message: "the file is missing".to_owned(),
            });
        }
        Err(source) => {
            return Err(Error::Io {
                action: "cannot read the checkpoint",
                path: path.display().to_string(),
                source,
            });
        }
    };
    let actual = format!("{:x}", Sha256::digest(&bytes));
    if bytes.len() as u64 != c.size || actual != c.sha256 {
        return Err(Error::CheckpointDamaged {
            path: path.display().to_string(),
            message: format!(
                "{} bytes with SHA-256 {actual}, recorded {} bytes with {}",
                bytes.len(),
                c.size,
                c.sha256
            ),
        });
    }
    Ok(bytes
        .chunks(sweep_proto::ARTIFACT_CHUNK_BYTES)
        .map(|d| v1::CheckpointChunk { data: d.to_vec() })
        .collect())
}
