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
}
