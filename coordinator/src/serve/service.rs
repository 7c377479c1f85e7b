//! The tonic shell of the `sweep.v1` service: each handler decodes its request, delegates to the
//! state owner's handle and encodes the answer. Besides that, every call that names a worker has
//! its secret checked and is rate-limited per worker (`Service::worker`).

use std::time::Duration;

use sweep_common::{TrialResult, WorkerId};
use sweep_proto::v1::{self, complete_request, lease_response};
use sweep_proto::{DecodeError, failure_kind, lease_ref, parse_lease};
use tonic::{Request, Response, Status};

use crate::Error;
use crate::actor::Handle;
use crate::artifacts::Dirs;
use crate::auth::WorkerKey;
use crate::state::{CancelSelector, LeaseKey, LeaseOutcome, Outcome, RetrySelector};

/// The gRPC service.
pub struct Service {
    handle: Handle,
    dirs: Dirs,
    sweep: String,
    heartbeat_interval: Duration,
    lease_ttl: Duration,
    key: WorkerKey,
    rate: crate::auth::RateLimiter,
}

/// Calls a worker may make a second on average (a worker with 64 slots heartbeating every
/// 100 ms and reporting fast epochs stays well under), and at once.
const WORKER_CALLS_PER_SECOND: f64 = 1000.0;
const WORKER_CALLS_BURST: f64 = 2000.0;

/// The worker secret a call presents (see [`WorkerKey`]).
fn presented(metadata: &tonic::metadata::MetadataMap) -> Option<&[u8]> {
    metadata
        .get(sweep_proto::auth::WORKER_SECRET)
        .map(tonic::metadata::MetadataValue::as_bytes)
}

impl Service {
    /// A service delegating to `handle`.
    pub fn new(
        handle: Handle,
        dirs: Dirs,
        sweep: String,
        heartbeat_interval: Duration,
        lease_ttl: Duration,
        key: WorkerKey,
    ) -> Self {
        Self {
            handle,
            dirs,
            sweep,
            heartbeat_interval,
            lease_ttl,
            key,
            rate: crate::auth::RateLimiter::new(WORKER_CALLS_PER_SECOND, WORKER_CALLS_BURST),
        }
    }

    /// The worker a call names, once its secret is checked.
    fn worker(&self, id: &str, metadata: &tonic::metadata::MetadataMap) -> Result<WorkerId, Error> {
        let worker = worker_id(id)?;
        self.key.verify(worker, presented(metadata))?;
        self.rate.admit(worker, std::time::Instant::now())?;
        Ok(worker)
    }
}

fn worker_id(s: &str) -> Result<WorkerId, Error> {
    s.parse().map_err(|e: sweep_common::ids::InvalidId| {
        Error::Decode(DecodeError::Invalid {
            field: "worker_id",
            message: e.to_string(),
        })
    })
}

fn millis(d: Duration) -> u32 {
    u32::try_from(d.as_millis()).unwrap_or(u32::MAX)
}

/// How a device shows in logs and `coordinator status`: `cuda:0 NVIDIA H100 (79.1 GiB)`.
fn device_text(d: Option<&sweep_proto::Device>) -> String {
    let Some(d) = d else {
        return "unknown".to_owned();
    };
    let kind = match d.kind {
        v1::DeviceKind::Cuda => format!("cuda:{}", d.index),
        v1::DeviceKind::Cpu => "cpu".to_owned(),
        v1::DeviceKind::Unspecified => "unknown".to_owned(),
    };
    if d.memory_bytes > 0 {
        format!(
            "{kind} {} ({:.1} GiB)",
            d.name,
            d.memory_bytes as f64 / f64::from(1u32 << 30)
        )
    } else if d.name.is_empty() {
        kind
    } else {
        format!("{kind} {}", d.name)
    }
}

/// An operator's call on the trials its request selects (cancel, retry): decodes the request
/// into `D` (`proto/src/convert.rs`), lets `act` hand the selection to the state owner, and
/// returns how many trials it changed (as the wire's `u32`) and the names that matched nothing.
async fn select<'r, M, D, F>(
    request: &'r M,
    act: impl FnOnce(D) -> F,
) -> Result<(u32, Vec<String>), Error>
where
    D: TryFrom<&'r M, Error = DecodeError>,
    F: Future<Output = Result<(usize, Vec<String>), Error>>,
{
    let (changed, unknown) = act(D::try_from(request)?).await?;
    Ok((u32::try_from(changed).unwrap_or(u32::MAX), unknown))
}

#[tonic::async_trait]
impl sweep_proto::SweepService for Service {
    type FetchCheckpointStream =
        tokio_stream::Iter<std::vec::IntoIter<Result<v1::CheckpointChunk, Status>>>;

    async fn register(
        &self,
        request: Request<v1::RegisterRequest>,
    ) -> Result<Response<v1::RegisterResponse>, Status> {
        let r = request.into_inner();
        if r.protocol_version != sweep_proto::PROTOCOL_VERSION as i32 {
            return Err(Error::ProtocolVersion(r.protocol_version).into());
        }
        let r = sweep_proto::Registration::try_from(&r).map_err(Error::from)?;
        let id = self
            .handle
            .register(r.name, device_text(r.device.as_ref()), r.slots)
            .await?;
        Ok(Response::new(v1::RegisterResponse {
            worker_id: id.to_string(),
            sweep: self.sweep.clone(),
            heartbeat_interval_ms: millis(self.heartbeat_interval),
            lease_ttl_ms: millis(self.lease_ttl),
            worker_secret: self.key.secret(id),
            max_epochs_per_report: sweep_proto::MAX_EPOCHS_PER_REPORT,
        }))
    }

    async fn lease(
        &self,
        request: Request<v1::LeaseRequest>,
    ) -> Result<Response<v1::LeaseResponse>, Status> {
        let worker = self.worker(&request.get_ref().worker_id, request.metadata())?;
        let outcome = match self.handle.lease(worker).await? {
            LeaseOutcome::Assigned {
                spec,
                attempt,
                resume,
            } => lease_response::Outcome::Assignment(v1::Assignment {
                lease: Some(lease_ref(spec.id, attempt)),
                trial: Some((&spec).into()),
                resume: resume.map(|c| v1::CheckpointRef {
                    epoch: c.epoch,
                    size: c.size,
                    sha256: c.sha256,
                }),
            }),
            LeaseOutcome::Wait(after) => lease_response::Outcome::Wait(v1::Wait {
                retry_after_ms: millis(after),
            }),
            LeaseOutcome::Finished => lease_response::Outcome::Finished(v1::SweepFinished {}),
            LeaseOutcome::CannotRun(reason) => {
                lease_response::Outcome::CannotRun(v1::CannotRun { reason })
            }
        };
        Ok(Response::new(v1::LeaseResponse {
            outcome: Some(outcome),
        }))
    }

    async fn heartbeat(
        &self,
        request: Request<v1::HeartbeatRequest>,
    ) -> Result<Response<v1::HeartbeatResponse>, Status> {
        let worker = self.worker(&request.get_ref().worker_id, request.metadata())?;
        let r = request.into_inner();
        let leases = r
            .leases
            .iter()
            .take(sweep_proto::MAX_SLOTS as usize)
            .map(|l| parse_lease(Some(l)))
            .collect::<Result<Vec<_>, _>>()
            .map_err(Error::from)?;
        let memory = r
            .memory
            .as_ref()
            .map(sweep_proto::DeviceMemory::try_from)
            .transpose()
            .map_err(Error::from)?
            .map(|m| (m.used, m.total));
        let revoked = self.handle.heartbeat(worker, leases, memory).await?;
        Ok(Response::new(v1::HeartbeatResponse {
            revoked: revoked.into_iter().map(|(t, a)| lease_ref(t, a)).collect(),
        }))
    }

    async fn report_epoch(
        &self,
        request: Request<v1::ReportEpochRequest>,
    ) -> Result<Response<v1::ReportEpochResponse>, Status> {
        let worker = self.worker(&request.get_ref().worker_id, request.metadata())?;
        let r = request.into_inner();
        let report = sweep_proto::EpochReport::try_from(&r).map_err(Error::from)?;
        let (trial, attempt) = report.lease;
        let stop = self
            .handle
            .report_epochs(LeaseKey::new(worker, trial, attempt), report.epochs)
            .await?;
        Ok(Response::new(stop.map_or_else(
            v1::ReportEpochResponse::default,
            |s| v1::ReportEpochResponse {
                stopped: s.reason,
                stopped_at: s.epoch,
            },
        )))
    }

    async fn complete(
        &self,
        request: Request<v1::CompleteRequest>,
    ) -> Result<Response<v1::CompleteResponse>, Status> {
        let worker = self.worker(&request.get_ref().worker_id, request.metadata())?;
        let r = request.into_inner();
        let (trial, attempt) = parse_lease(r.lease.as_ref()).map_err(Error::from)?;
        let outcome = match r.outcome {
            Some(complete_request::Outcome::Result(result)) => {
                Outcome::Succeeded(TrialResult::try_from(&result).map_err(Error::from)?)
            }
            Some(complete_request::Outcome::Failure(f)) => Outcome::Failed {
                kind: failure_kind(f.kind),
                message: sweep_proto::failure_message(&f).map_err(Error::from)?,
            },
            None => return Err(Error::Decode(DecodeError::Missing("outcome")).into()),
        };
        self.handle
            .complete(LeaseKey::new(worker, trial, attempt), outcome)
            .await?;
        Ok(Response::new(v1::CompleteResponse {}))
    }

    async fn upload_artifact(
        &self,
        request: Request<tonic::Streaming<v1::ArtifactChunk>>,
    ) -> Result<Response<v1::ArtifactReceipt>, Status> {
        let secret = presented(request.metadata()).map(<[u8]>::to_vec);
        let receipt =
            crate::artifacts::receive(request.into_inner(), &self.dirs, &self.handle, |worker| {
                self.key.verify(worker, secret.as_deref())
            })
            .await?;
        Ok(Response::new(receipt))
    }

    async fn fetch_checkpoint(
        &self,
        request: Request<v1::FetchCheckpointRequest>,
    ) -> Result<Response<Self::FetchCheckpointStream>, Status> {
        self.worker(&request.get_ref().worker_id, request.metadata())?;
        let chunks =
            crate::artifacts::send_checkpoint(request.get_ref(), &self.dirs.state, &self.handle)
                .await?;
        Ok(Response::new(tokio_stream::iter(
            chunks.into_iter().map(Ok).collect::<Vec<_>>(),
        )))
    }

    async fn cancel(
        &self,
        request: Request<v1::CancelRequest>,
    ) -> Result<Response<v1::CancelResponse>, Status> {
        let (cancelled, unknown) = select(request.get_ref(), |r: sweep_proto::Cancel| {
            self.handle.cancel(CancelSelector {
                trials: r.trials,
                experiments: r.experiments,
                all: r.all,
                reason: r.reason,
            })
        })
        .await?;
        Ok(Response::new(v1::CancelResponse { cancelled, unknown }))
    }

    async fn retry(
        &self,
        request: Request<v1::RetryRequest>,
    ) -> Result<Response<v1::RetryResponse>, Status> {
        let (retried, unknown) = select(request.get_ref(), |r: sweep_proto::Retry| {
            self.handle.retry(RetrySelector {
                trials: r.trials,
                experiments: r.experiments,
                failed: r.failed,
                include_cancelled: r.include_cancelled,
            })
        })
        .await?;
        Ok(Response::new(v1::RetryResponse { retried, unknown }))
    }

    async fn promote(
        &self,
        request: Request<v1::PromoteRequest>,
    ) -> Result<Response<v1::PromoteResponse>, Status> {
        let r = sweep_proto::Promote::try_from(request.get_ref()).map_err(Error::from)?;
        let promoted = self
            .handle
            .promote(r.trials, r.experiments, r.epochs)
            .await?;
        Ok(Response::new(v1::PromoteResponse {
            promoted: u32::try_from(promoted.trials.len()).unwrap_or(u32::MAX),
            unknown: promoted.unknown,
            not_stopped: promoted.not_stopped,
            epochs: r.epochs.unwrap_or(0),
        }))
    }

    async fn status(
        &self,
        request: Request<v1::StatusRequest>,
    ) -> Result<Response<v1::StatusResponse>, Status> {
        let view = crate::status::View::try_from(request.get_ref()).map_err(Error::Decode)?;
        let snapshot = self.handle.status(view).await?;
        Ok(Response::new(v1::StatusResponse::from(&snapshot)))
    }
}
