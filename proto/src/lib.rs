//! The `sweep.v1` gRPC protocol: the generated prost messages and tonic client/server, and the
//! conversions (`TryFrom` both ways) between wire types and `sweep_common` domain types.
//!
//! Decoding never panics: a missing field, an unknown enum value or a malformed id becomes a
//! [`DecodeError`] naming the field, which the service shell maps to `INVALID_ARGUMENT`.

/// Generated code for package `sweep.v1`.
#[allow(clippy::all)]
pub mod v1 {
    tonic::include_proto!("sweep.v1");
}

pub mod auth;
mod convert;
mod epochs;

pub use auth::{Bearer, Client};
pub use convert::{
    Artifact, Cancel, Completion, DecodeError, Device, DeviceMemory, MAX_CANCEL_NAME_CHARS,
    MAX_CANCEL_NAMES, MAX_MESSAGE_CHARS, MAX_NAME_CHARS, MAX_SECONDS, MAX_SLOTS, Promote,
    Registration, Retry, artifact_chunks, checked_text, complete_request, failure_kind,
    failure_message, fetch_checkpoint_request, heartbeat_request, lease_ref, lease_request,
    parse_lease, report_epoch_request,
};
pub use epochs::{EpochReport, MAX_EPOCHS_PER_REPORT, report_epochs_request};
pub use v1::sweep_service_client::SweepServiceClient;
pub use v1::sweep_service_server::{SweepService, SweepServiceServer};

/// The protocol version this build speaks.
pub const PROTOCOL_VERSION: v1::ProtocolVersion = v1::ProtocolVersion::V2;

/// Largest encoded message either side accepts (a result with two 10x10 matrices and thousands
/// of epochs is well under this).
pub const MAX_MESSAGE_BYTES: usize = 4 * 1024 * 1024;

/// Bytes of file data per `ArtifactChunk`.
pub const ARTIFACT_CHUNK_BYTES: usize = 1024 * 1024;

/// Largest artifact the coordinator stores (the biggest lab 1 model's weights are ~21 MB).
pub const MAX_ARTIFACT_BYTES: u64 = 2 * 1024 * 1024 * 1024;

/// Whether a failed call may succeed if tried again: the coordinator is restarting or
/// unreachable, slow, asked to slow down, or the call was cut off. Workers retry these; every
/// other status is an answer.
pub fn transient(status: &tonic::Status) -> bool {
    use tonic::Code;
    matches!(
        status.code(),
        Code::Unavailable
            | Code::DeadlineExceeded
            | Code::Unknown
            | Code::ResourceExhausted
            | Code::Aborted
    )
}
