//! Operator calls to a running coordinator over gRPC: its status (`coordinator status`) and
//! cancelling trials (`coordinator cancel`).

use std::time::Duration;

use sweep_proto::SweepServiceClient;
use sweep_proto::v1::{CancelRequest, CancelResponse, StatusRequest};
use tonic::transport::Endpoint;

use super::Snapshot;
use crate::Error;

/// How long connecting may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long the call may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// `url` with `http://` in front when it names no scheme (`127.0.0.1:50051`).
pub fn normalize_url(url: &str) -> String {
    if url.contains("://") {
        url.to_owned()
    } else {
        format!("http://{url}")
    }
}

/// The status of the coordinator at `url`; with `detail`, every trial's per-epoch history and
/// the experiments' tables too.
pub async fn fetch(url: &str, detail: bool) -> Result<Snapshot, Error> {
    let mut client = connect(url).await?;
    let response = client
        .status(StatusRequest { detail })
        .await
        .map_err(|s| Error::Remote {
            code: s.code(),
            message: s.message().to_owned(),
        })?;
    Ok(Snapshot::try_from(response.get_ref())?)
}

async fn connect(url: &str) -> Result<SweepServiceClient<tonic::transport::Channel>, Error> {
    let url = normalize_url(url);
    let connect = |source| Error::Connect {
        url: url.clone(),
        source,
    };
    let channel = Endpoint::from_shared(url.clone())
        .map_err(connect)?
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(CALL_TIMEOUT)
        .connect()
        .await
        .map_err(connect)?;
    Ok(SweepServiceClient::new(channel).max_decoding_message_size(sweep_proto::MAX_MESSAGE_BYTES))
}

/// Cancels the trials `request` names at the coordinator at `url`.
pub async fn cancel(url: &str, request: CancelRequest) -> Result<CancelResponse, Error> {
    let mut client = connect(url).await?;
    let response = client.cancel(request).await.map_err(|s| Error::Remote {
        code: s.code(),
        message: s.message().to_owned(),
    })?;
    Ok(response.into_inner())
}
