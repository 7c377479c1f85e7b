//! Files that workers upload under a live lease: final weights (kept with the results as
//! `models/<trial name>.safetensors`) and checkpoints (`checkpoints/<trial id>.safetensors`).
//!
//! A file is written to a temporary name, checked against the size and SHA-256 of its header,
//! and renamed into place only if both match and the lease is still live.

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

fn invalid(field: &'static str, message: impl Into<String>) -> Error {
    Error::Decode(DecodeError::Invalid {
        field,
        message: message.into(),
    })
}

/// Keeps a name safe as a file name: letters, digits, '_', '-', '.'; nothing else.
fn file_name(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Receives one upload. Returns its size and SHA-256.
pub async fn receive(
    mut stream: impl Stream<Item = Result<v1::ArtifactChunk, Status>> + Unpin,
    out_dir: &Path,
    handle: &Handle,
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
    let spec = handle.check_lease(worker, trial, attempt).await?;
    let (folder, name) = match v1::ArtifactKind::try_from(header.kind) {
        Ok(v1::ArtifactKind::FinalWeights) => {
            ("models", format!("{}.safetensors", file_name(&spec.name)))
        }
        Ok(v1::ArtifactKind::Checkpoint) => ("checkpoints", format!("{}.safetensors", spec.id)),
        _ => {
            return Err(invalid(
                "header.kind",
                format!("unknown artifact kind {}", header.kind),
            ));
        }
    };
    let dir = out_dir.join(folder);
    let io = |action: &'static str, path: &Path| {
        let path = path.display().to_string();
        move |source| Error::Io {
            action,
            path,
            source,
        }
    };
    std::fs::create_dir_all(&dir).map_err(io("cannot create", &dir))?;
    let mut tmp =
        tempfile::NamedTempFile::new_in(&dir).map_err(io("cannot create a file in", &dir))?;
    let mut hasher = Sha256::new();
    let mut size: u64 = 0;
    let mut chunk = Some(first);
    while let Some(c) = chunk {
        size += c.data.len() as u64;
        if size > header.size {
            return Err(invalid(
                "data",
                format!("more than the {} bytes announced", header.size),
            ));
        }
        hasher.update(&c.data);
        tmp.write_all(&c.data)
            .map_err(io("cannot write", tmp.path()))?;
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
    if size != header.size || actual != sha256 {
        return Err(invalid(
            "data",
            format!(
                "received {size} bytes with SHA-256 {actual}, the header announced {} bytes with {sha256}",
                header.size
            ),
        ));
    }
    tmp.as_file()
        .sync_all()
        .map_err(io("cannot write", tmp.path()))?;
    // Temporary files are private; results are for whoever may read the output folder.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let readable = std::fs::Permissions::from_mode(0o644);
        tmp.as_file()
            .set_permissions(readable)
            .map_err(io("cannot write", tmp.path()))?;
    }
    let path: PathBuf = dir.join(&name);
    tmp.persist(&path).map_err(|e| Error::Io {
        action: "cannot write",
        path: path.display().to_string(),
        source: e.error,
    })?;
    if folder == "models" {
        let relative = format!("{folder}/{name}");
        if let Err(e) = handle
            .record_weights(worker, trial, attempt, relative)
            .await
        {
            // The lease ended while the file was coming in: the file is not this trial's.
            let _ = std::fs::remove_file(&path);
            return Err(e);
        }
    }
    tracing::info!(trial = %spec.name, attempt, bytes = size, file = %path.display(), "artifact stored");
    Ok(v1::ArtifactReceipt {
        size,
        sha256: actual,
    })
}
