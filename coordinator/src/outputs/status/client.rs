//! Operator calls to a running coordinator over gRPC: its status (`coordinator status`),
//! cancelling trials (`coordinator cancel`), retrying failed ones (`coordinator retry`) and
//! promoting stopped ones (`coordinator promote`).

use std::time::Duration;

use sweep_proto::v1::{
    CancelRequest, CancelResponse, PromoteRequest, PromoteResponse, RetryRequest, RetryResponse,
    StatusRequest,
};
use tonic::transport::Endpoint;

use super::{Snapshot, View};
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

/// The status of the coordinator at `url`, as `view` asks.
pub async fn fetch(url: &str, view: &View, access: &Access) -> Result<Snapshot, Error> {
    let mut client = connect(url, access).await?;
    let response = client
        .status(StatusRequest::from(view))
        .await
        .map_err(remote)?;
    Ok(Snapshot::try_from(response.get_ref())?)
}

/// The coordinator's refusal of an operator call, as [`Error::Remote`].
fn remote(status: tonic::Status) -> Error {
    Error::Remote {
        code: status.code(),
        message: status.message().to_owned(),
    }
}

/// How an operator reaches the coordinator: the token its calls present, and the CA that
/// signed the coordinator's certificate (for an `https://` URL).
#[derive(Debug, Clone, Default)]
pub struct Access {
    /// The operator token, if any.
    pub bearer: sweep_proto::Bearer,
    /// PEM of the CA, for TLS.
    pub tls_ca: Option<Vec<u8>>,
}

async fn connect(url: &str, access: &Access) -> Result<sweep_proto::Client, Error> {
    let url = normalize_url(url);
    let connect = |source| Error::Connect {
        url: url.clone(),
        source,
    };
    let mut endpoint = Endpoint::from_shared(url.clone())
        .map_err(connect)?
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(CALL_TIMEOUT);
    if let Some(ca) = &access.tls_ca {
        endpoint = endpoint
            .tls_config(
                tonic::transport::ClientTlsConfig::new()
                    .ca_certificate(tonic::transport::Certificate::from_pem(ca)),
            )
            .map_err(connect)?;
    }
    let channel = endpoint.connect().await.map_err(connect)?;
    Ok(sweep_proto::auth::client(channel, access.bearer.clone()))
}

/// Cancels the trials `request` names at the coordinator at `url`.
pub async fn cancel(
    url: &str,
    request: CancelRequest,
    access: &Access,
) -> Result<CancelResponse, Error> {
    let mut client = connect(url, access).await?;
    let response = client.cancel(request).await.map_err(remote)?;
    Ok(response.into_inner())
}

/// Resumes the stopped trials `request` names on the coordinator at `url`.
pub async fn promote(
    url: &str,
    request: PromoteRequest,
    access: &Access,
) -> Result<PromoteResponse, Error> {
    let asked = request.epochs;
    let mut client = connect(url, access).await?;
    let response = client.promote(request).await.map_err(remote)?;
    more_epochs_done(asked, response.into_inner())
}

/// `response` to a promotion that asked for `asked` epochs (0: none), unless the coordinator
/// did not do it: one older than `promote --epochs` ignores the request's epochs (resuming the
/// stopped trials named, as `promote` without them does) and answers none.
fn more_epochs_done(asked: u32, response: PromoteResponse) -> Result<PromoteResponse, Error> {
    if asked == 0 || response.epochs == asked {
        return Ok(response);
    }
    Err(Error::Remote {
        code: tonic::Code::Unimplemented,
        message: format!(
            "the coordinator does not know promote --epochs (it is older than this client): \
             no trial was given {asked} epochs; it resumed {} stopped trials named to their own \
             epochs, as promote without --epochs does",
            response.promoted
        ),
    })
}

/// Puts the failed trials `request` names back in the queue of the coordinator at `url`.
pub async fn retry(
    url: &str,
    request: RetryRequest,
    access: &Access,
) -> Result<RetryResponse, Error> {
    let mut client = connect(url, access).await?;
    let response = client.retry(request).await.map_err(remote)?;
    Ok(response.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A coordinator older than `promote --epochs` answers none: the client says the promotion
    /// to more epochs was not done, and what the coordinator did instead.
    #[test]
    fn a_promotion_an_older_coordinator_ignored_is_an_error() {
        let answer = |epochs| PromoteResponse {
            promoted: 1,
            epochs,
            ..PromoteResponse::default()
        };
        assert_eq!(more_epochs_done(4, answer(4)).unwrap(), answer(4));
        assert_eq!(more_epochs_done(0, answer(0)).unwrap(), answer(0));
        let Err(Error::Remote { code, message }) = more_epochs_done(4, answer(0)) else {
            panic!("an older coordinator's answer was taken")
        };
        assert_eq!(code, tonic::Code::Unimplemented);
        assert!(message.contains("no trial was given 4 epochs"), "{message}");
        assert!(message.contains("it resumed 1 stopped trials"), "{message}");
    }
}
