//! The coordinator's errors, and their one mapping to gRPC status codes.

use sweep_common::grid::GridError;
use sweep_proto::DecodeError;
use tonic::{Code, Status};

use crate::state::StateError;

/// Everything that can go wrong in the coordinator.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The grid file is unusable.
    #[error(transparent)]
    Grid(#[from] GridError),
    /// A file or folder could not be written or read.
    #[error("{action} {path}: {source}")]
    Io {
        /// What was being done ("cannot write").
        action: &'static str,
        /// The path.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// Storing a file failed (the disk is full, a file is too large for the process's limit, the
    /// folder is not writable): the sender should try again later.
    #[error("the coordinator cannot store {what}: {action} {path}: {source}")]
    Storage {
        /// What was being stored ("final weights").
        what: &'static str,
        /// What was being done ("cannot write").
        action: &'static str,
        /// The path.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// A folder the coordinator writes in cannot be written (checked before it serves).
    #[error(
        "cannot write in the {what} {path}: {source}; make it writable (permissions, free space, \
         a read-only mount, a file where the folder should be) or choose another folder"
    )]
    NotWritable {
        /// Which folder ("output folder").
        what: &'static str,
        /// The folder.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// Every local worker (`--local-workers`, `--local-gpus`) was given up: crashed too often,
    /// or cannot run (see `local::restart`). The sweep stopped; rerunning resumes it.
    #[error(
        "every local worker stopped for good, so the sweep stopped (rerun the same command to \
         resume it): {message}"
    )]
    LocalWorkers {
        /// Each worker and why it was given up.
        message: String,
    },
    /// The sweep ended, but some of its outputs could not be written.
    #[error(
        "the sweep ended and every trial is recorded in {database}, but {errors}; fix that and \
         run the same command again: it writes them"
    )]
    Outputs {
        /// The state database.
        database: String,
        /// What could not be written, and why.
        errors: String,
    },
    /// The output folder holds results but no state database to resume them from.
    #[error(
        "{path} already holds the results of a sweep (results.json) but no state database to \
         resume from ({path}/state/sweep.db); choose another --out or move it away"
    )]
    OutputInUse {
        /// The output folder.
        path: String,
    },
    /// Another process (a coordinator) holds the lock of a folder this one needs.
    #[error(
        "the {what} {dir} is in use by another coordinator{}; stop that one first, or give this \
         one another {}",
        holder.as_ref().map(|h| format!(" ({h})")).unwrap_or_default(),
        if *what == "output folder" { "--out" } else { "--state-dir" }
    )]
    Locked {
        /// Which folder: "output folder" or "state directory".
        what: &'static str,
        /// The folder.
        dir: String,
        /// Who holds it, as its lock file says (process id, host, since when).
        holder: Option<String>,
    },
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The gRPC server failed.
    #[error("grpc server: {0}")]
    Transport(#[from] tonic::transport::Error),
    /// The state database failed.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    /// The state machine refused a request.
    #[error(transparent)]
    State(#[from] StateError),
    /// A request did not decode.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// The worker speaks another protocol version.
    #[error(
        "unsupported protocol version {0}; this coordinator speaks sweep.v1 version {ours}",
        ours = sweep_proto::PROTOCOL_VERSION as i32
    )]
    ProtocolVersion(i32),
    /// A call names a worker id without that worker's secret.
    #[error(
        "worker {0} was not registered by this caller (its x-sweep-worker-secret is missing or wrong); register again"
    )]
    WorkerIdentity(sweep_common::WorkerId),
    /// A worker calls faster than its rate allows.
    #[error("worker {worker} calls more than {per_second} times a second; slow down")]
    RateLimited {
        /// The worker.
        worker: sweep_common::WorkerId,
        /// Its allowed rate.
        per_second: f64,
    },
    /// The coordinator is stopping.
    #[error("the coordinator is shutting down")]
    ShuttingDown,
    /// Another coordinator could not be reached (`coordinator status`).
    #[error("cannot reach the coordinator at {url}: {source}")]
    Connect {
        /// The URL given.
        url: String,
        /// What failed.
        source: tonic::transport::Error,
    },
    /// Another coordinator refused a call (`coordinator status`).
    #[error("the coordinator answered {code:?}: {message}")]
    Remote {
        /// Its status code.
        code: Code,
        /// Its message.
        message: String,
    },
    /// The live web view's HTTP server failed.
    #[error("http server: {0}")]
    Http(std::io::Error),
    /// A stored checkpoint is missing or fails its size or SHA-256 check.
    #[error("checkpoint {path} is unusable: {message}")]
    CheckpointDamaged {
        /// The file.
        path: String,
        /// What is wrong.
        message: String,
    },
}

impl From<Error> for Status {
    /// The one mapping from our errors to status codes. No wildcard arm: a new error variant
    /// must decide its code here. Internal errors are logged once, here.
    fn from(e: Error) -> Status {
        let code = match &e {
            Error::State(s) => match s {
                StateError::UnknownWorker(_) | StateError::UnknownTrial(_) => Code::NotFound,
                StateError::StaleLease { .. } => Code::FailedPrecondition,
                StateError::NotLeaseHolder { .. } => Code::PermissionDenied,
                StateError::InvalidReport { .. } => Code::InvalidArgument,
                StateError::NoCheckpoint { .. } => Code::NotFound,
                StateError::SweepFinished => Code::FailedPrecondition,
                StateError::CannotPromote { .. } => Code::FailedPrecondition,
            },
            // The worker ends its attempt as CHECKPOINT_UNUSABLE on this code.
            Error::CheckpointDamaged { .. } => {
                tracing::warn!(error = %e, "a checkpoint to resume from is unusable");
                Code::DataLoss
            }
            Error::Decode(_) | Error::ProtocolVersion(_) => Code::InvalidArgument,
            Error::WorkerIdentity(_) => Code::PermissionDenied,
            // Both mean "not now": the worker keeps what it has and tries again.
            Error::RateLimited { .. } | Error::Storage { .. } => Code::ResourceExhausted,
            Error::ShuttingDown => Code::Unavailable,
            // A call to another coordinator failed: never while serving, but if it were, its
            // code is the truth.
            Error::Remote { code, .. } => *code,
            Error::Grid(_)
            | Error::Io { .. }
            | Error::OutputInUse { .. }
            | Error::Locked { .. }
            | Error::NotWritable { .. }
            | Error::Outputs { .. }
            | Error::LocalWorkers { .. }
            | Error::Store(_)
            | Error::Bind { .. }
            | Error::Transport(_)
            | Error::Connect { .. }
            | Error::Http(_) => {
                tracing::error!(error = %e, "internal error while serving a request");
                Code::Internal
            }
        };
        Status::new(code, e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_storage_failure_asks_the_worker_to_try_again_later() {
        let e = Error::Storage {
            what: "final weights",
            action: "cannot write",
            path: "out/models/t.safetensors".into(),
            source: std::io::Error::from_raw_os_error(27),
        };
        let status = Status::from(e);
        assert_eq!(status.code(), Code::ResourceExhausted);
        assert!(sweep_proto::transient(&status));
        assert!(
            status.message().starts_with(
                "the coordinator cannot store final weights: cannot write out/models/t.safetensors:"
            ),
            "{}",
            status.message()
        );
    }
}
