//! Files that workers upload under a live lease: final weights (kept with the results as
//! `models/<trial name>.safetensors`) and checkpoints (in the state directory, as
//! `checkpoints/<trial id>-a<attempt>-e<epoch>.safetensors`, until the trial ends), a program
//! trial's logs (with the results, as `logs/<trial name>.{stdout,stderr}.log`), and the
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
use sweep_common::TrialSpec;
use sweep_common::trial::{LOGS, LogStream, log_file};

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

/// Receives one upload: checks its header and the lease it names, writes the file, then
/// records it under the lease. Returns its size and SHA-256.
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
    let upload = Upload::check(&first, verify)?;
    let spec = handle.check_lease(upload.key).await?;
    let (dir, name, what) = upload.destination(dirs, &spec)?;
    let written = write(
        first,
        &mut stream,
        upload.header.size,
        &upload.sha256,
        &dir,
        &name,
        what,
    )
    .await;
    storage_status(handle, what, &written).await;
    let (path, size, actual) = written?;
    upload.commit(handle, name, &path, size, &actual).await?;
    tracing::debug!(trial = %spec.name, attempt = upload.key.attempt, bytes = size, file = %path.display(), "artifact stored");
    Ok(v1::ArtifactReceipt {
        size,
        sha256: actual,
    })
}

/// An upload whose header has been checked (before the lease it names is).
struct Upload {
    header: v1::ArtifactHeader,
    key: LeaseKey,
    /// The announced SHA-256, lowercase.
    sha256: String,
}

impl Upload {
    /// Checks the header of the first chunk: the worker (and `verify` of it), the lease, the
    /// announced size and SHA-256. The kind is checked by [`Upload::destination`], after the
    /// lease.
    fn check(
        first: &v1::ArtifactChunk,
        verify: impl FnOnce(WorkerId) -> Result<(), Error>,
    ) -> Result<Upload, Error> {
        let header = first
            .header
            .clone()
            .ok_or(Error::Decode(DecodeError::Missing("header")))?;
        let worker: WorkerId =
            header
                .worker_id
                .parse()
                .map_err(|e: sweep_common::ids::InvalidId| {
                    invalid("header.worker_id", e.to_string())
                })?;
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
        Ok(Upload {
            header,
            key: LeaseKey::new(worker, trial, attempt),
            sha256,
        })
    }

    /// The folder and file name the upload is written to and what it is stored as, by its kind
    /// (an unknown kind is refused here).
    fn destination(
        &self,
        dirs: &Dirs,
        spec: &TrialSpec,
    ) -> Result<(PathBuf, String, Storage), Error> {
        match v1::ArtifactKind::try_from(self.header.kind) {
            Ok(v1::ArtifactKind::FinalWeights) => Ok((
                dirs.out.join(MODELS),
                weights_name(&spec.name),
                Storage::Weights,
            )),
            Ok(v1::ArtifactKind::Checkpoint) => Ok((
                checkpoints_dir(&dirs.state),
                format!(
                    "{}-a{}-e{}.safetensors",
                    spec.id, self.key.attempt, self.header.epoch
                ),
                Storage::Checkpoints,
            )),
            Ok(v1::ArtifactKind::ProgramStdout | v1::ArtifactKind::ProgramStderr)
                if spec.program.is_some() =>
            {
                let stream = if self.header.kind == v1::ArtifactKind::ProgramStdout as i32 {
                    LogStream::Stdout
                } else {
                    LogStream::Stderr
                };
                let file = log_file(&spec.name, stream);
                let name = file.rsplit('/').next().unwrap_or(&file).to_owned();
                Ok((dirs.out.join(LOGS), name, Storage::Results))
            }
            _ => Err(invalid(
                "header.kind",
                format!(
                    "artifact kind {} is unknown or not for this trial (logs are for program \
                     trials only)",
                    self.header.kind
                ),
            )),
        }
    }

    /// Records the file written at `path` (named `name`) under the lease; if the state owner
    /// refuses it, removes the file.
    async fn commit(
        &self,
        handle: &Handle,
        name: String,
        path: &Path,
        size: u64,
        sha256: &str,
    ) -> Result<(), Error> {
        let LeaseKey {
            worker,
            trial,
            attempt,
        } = self.key;
        let kind = v1::ArtifactKind::try_from(self.header.kind);
        let recorded = if matches!(
            kind,
            Ok(v1::ArtifactKind::ProgramStdout | v1::ArtifactKind::ProgramStderr)
        ) {
            // A log needs no record: its place follows from the trial's name, and the lease was
            // live when it came (a later attempt's log replaces it).
            Ok(())
        } else if kind == Ok(v1::ArtifactKind::Checkpoint) {
            let c = Checkpoint {
                epoch: self.header.epoch,
                attempt,
                file: name,
                size,
                sha256: sha256.to_owned(),
            };
            handle.record_checkpoint(worker, trial, c).await
        } else {
            handle
                .record_weights(self.key, format!("{MODELS}/{name}"))
                .await
        };
        if recorded.is_err() {
            // The lease ended while the file was coming in (or the checkpoint does not fit the
            // epochs accepted): the file is not this trial's.
            let _ = std::fs::remove_file(path);
        }
        recorded
    }
}

/// Tells the state owner whether storing `what` worked, so that the status says when the
/// coordinator cannot store what workers send, until it can again.
async fn storage_status<T>(handle: &Handle, what: Storage, written: &Result<T, Error>) {
    match written {
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
    if what != Storage::Checkpoints {
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
