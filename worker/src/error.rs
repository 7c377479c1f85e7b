//! The worker's errors.

/// What stops a worker.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The device cannot be used.
    #[error(transparent)]
    Device(#[from] crate::device::DeviceError),
    /// The coordinator's address is not a valid URL.
    #[error("invalid coordinator address {addr:?}: {message}")]
    Address {
        /// The address given.
        addr: String,
        /// Why it is invalid.
        message: String,
    },
    /// The coordinator could not be reached in time.
    #[error("cannot reach the coordinator at {addr} (gave up after {seconds:.0} s): {message}")]
    Unreachable {
        /// The address.
        addr: String,
        /// How long the worker tried.
        seconds: f64,
        /// The last error.
        message: String,
    },
    /// The coordinator refused the worker.
    #[error("the coordinator refused this worker: {0}")]
    Refused(String),
    /// What answers at the address is not a gRPC server.
    #[error(
        "{addr} does not speak gRPC ({detail}): is it the coordinator's web view (--http)? \
         Point --coordinator at the address the coordinator prints as `listening on` (its \
         --listen, port 50051 by default)"
    )]
    NotGrpc {
        /// The address given.
        addr: String,
        /// What came back instead.
        detail: String,
    },
    /// This worker cannot run any of the trials left (its data folder, its device): it stopped
    /// taking trials.
    #[error("this worker cannot run the trials left: {0}")]
    CannotRun(String),
    /// Something inside the worker failed that should not (a task crashed).
    #[error("internal error: {0}")]
    Internal(String),
}
