//! Who may call what. Workers and operators present bearer tokens (`authorization: Bearer
//! TOKEN`), one per role, checked by a tower layer around the gRPC server before any handler
//! runs: a worker token opens the worker RPCs only, an operator token `Status`, `Cancel` and
//! `Retry` only, and the gRPC health service (Kubernetes' probes) needs none. Tokens are compared in
//! constant time, and only their SHA-256 is kept in memory: they never reach a log, an error or
//! a report.
//!
//! With no token configured every call is let through; the coordinator then listens only on
//! loopback unless told `--insecure` (see `main.rs`).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use sha2::{Digest, Sha256};
use tonic::Status;

/// Shortest token accepted: anything shorter is guessable.
pub const MIN_TOKEN_LEN: usize = 16;

/// A token, kept as its SHA-256 only.
#[derive(Clone)]
pub struct Secret([u8; 32]);

impl Secret {
    /// The token `text` (surrounding whitespace removed), or why it is unusable. `source` names
    /// where it came from, for the message (never the token itself).
    pub fn new(text: &str, source: &str) -> Result<Secret, String> {
        let token = text.trim();
        if token.len() < MIN_TOKEN_LEN {
            return Err(format!(
                "the token in {source} is {} characters long; use at least {MIN_TOKEN_LEN} (e.g. `openssl rand -hex 32`)",
                token.len()
            ));
        }
        if token.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(format!(
                "the token in {source} contains whitespace or control characters"
            ));
        }
        Ok(Secret(Sha256::digest(token.as_bytes()).into()))
    }

    /// Whether `other` is the same token (the worker's and the operator's must differ).
    pub fn same_token(&self, other: &Secret) -> bool {
        constant_time_eq(&self.0, &other.0)
    }

    /// Compares in time independent of where the two differ.
    fn matches(&self, presented: &str) -> bool {
        let other: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        constant_time_eq(&self.0, &other)
    }
}

/// `a == b`, in time that depends on the lengths only, not on where the bytes differ.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// The tokens a coordinator accepts.
#[derive(Debug, Clone, Default)]
pub struct Tokens {
    /// For workers.
    pub worker: Option<Secret>,
    /// For operators (`coordinator status`, `cancel`, `retry`).
    pub operator: Option<Secret>,
}

impl Tokens {
    /// True when calls are checked at all.
    pub fn enabled(&self) -> bool {
        self.worker.is_some() || self.operator.is_some()
    }
}

/// Which token a call needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Worker RPCs.
    Worker,
    /// `Status`, `Cancel`, `Retry` and `Promote`.
    Operator,
    /// The gRPC health service.
    Public,
}

/// The role a gRPC method path (`/sweep.v1.SweepService/Lease`) needs. Anything that is not
/// the health service needs a token: an unknown path is no way around the check.
pub fn role(path: &str) -> Role {
    match path {
        "/sweep.v1.SweepService/Status"
        | "/sweep.v1.SweepService/Cancel"
        | "/sweep.v1.SweepService/Retry"
        | "/sweep.v1.SweepService/Promote" => Role::Operator,
        p if p.starts_with("/grpc.health.v1.Health/") => Role::Public,
        _ => Role::Worker,
    }
}

/// Checks a call's `authorization` header against `tokens`.
pub fn check(tokens: &Tokens, path: &str, authorization: Option<&[u8]>) -> Result<(), Status> {
    if !tokens.enabled() {
        return Ok(());
    }
    let (needed, what) = match role(path) {
        Role::Public => return Ok(()),
        Role::Worker => (&tokens.worker, "a worker token"),
        Role::Operator => (&tokens.operator, "an operator token"),
    };
    let Some(secret) = needed else {
        return Err(Status::permission_denied(format!(
            "{path} needs {what}, and this coordinator was started without one"
        )));
    };
    let presented = authorization
        .and_then(|h| std::str::from_utf8(h).ok())
        .and_then(|h| h.strip_prefix("Bearer "));
    match presented {
        None => Err(Status::unauthenticated(format!(
            "{path} needs {what} (authorization: Bearer TOKEN)"
        ))),
        Some(token) if secret.matches(token) => Ok(()),
        Some(_) => Err(Status::unauthenticated(format!(
            "{path}: the token presented is not {what} of this coordinator"
        ))),
    }
}

/// Binds worker ids to the workers they were issued to: `Register` hands each worker
/// HMAC-SHA256(key, worker id) as its secret, and every later call presents it
/// ([`sweep_proto::auth::WORKER_SECRET`]). Checking needs no lookup, and the key is kept in the
/// state database, so secrets stay valid across restarts.
#[derive(Clone)]
pub struct WorkerKey([u8; 32]);

impl WorkerKey {
    /// A key from its bytes.
    pub fn new(bytes: [u8; 32]) -> Self {
        WorkerKey(bytes)
    }

    fn mac(&self, worker: sweep_common::WorkerId) -> [u8; 32] {
        use hmac::Mac as _;
        // HMAC accepts a key of any length, so this cannot fail.
        let mut mac = <hmac::Hmac<Sha256> as hmac::Mac>::new_from_slice(&self.0)
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        mac.update(worker.to_string().as_bytes());
        mac.finalize().into_bytes().into()
    }

    /// The secret issued to `worker`, as lowercase hex.
    pub fn secret(&self, worker: sweep_common::WorkerId) -> String {
        self.mac(worker)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// Checks that the caller presented `worker`'s secret.
    pub fn verify(
        &self,
        worker: sweep_common::WorkerId,
        presented: Option<&[u8]>,
    ) -> Result<(), crate::Error> {
        let expected = self.secret(worker);
        let ok = presented.is_some_and(|p| constant_time_eq(p, expected.as_bytes()));
        if ok {
            Ok(())
        } else {
            Err(crate::Error::WorkerIdentity(worker))
        }
    }
}

impl std::fmt::Debug for WorkerKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WorkerKey(<redacted>)")
    }
}

/// Bounds each worker's request rate: a token bucket per worker id (created only for ids whose
/// secret checked out, so made-up ids cannot fill it).
#[derive(Debug)]
pub struct RateLimiter {
    per_second: f64,
    burst: f64,
    buckets: std::sync::Mutex<
        std::collections::HashMap<sweep_common::WorkerId, (f64, std::time::Instant)>,
    >,
}

impl RateLimiter {
    /// At most `per_second` calls a second per worker on average, `burst` at once.
    pub fn new(per_second: f64, burst: f64) -> Self {
        Self {
            per_second,
            burst,
            buckets: std::sync::Mutex::new(std::collections::HashMap::new()),
        }
    }

    /// Takes one call from `worker`'s bucket at `now`.
    pub fn admit(
        &self,
        worker: sweep_common::WorkerId,
        now: std::time::Instant,
    ) -> Result<(), crate::Error> {
        let mut buckets = self
            .buckets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let (tokens, last) = buckets.entry(worker).or_insert((self.burst, now));
        let refill = now.saturating_duration_since(*last).as_secs_f64() * self.per_second;
        *tokens = (*tokens + refill).min(self.burst);
        *last = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Ok(())
        } else {
            Err(crate::Error::RateLimited {
                worker,
                per_second: self.per_second,
            })
        }
    }
}

/// The tower layer that checks every call.
#[derive(Debug, Clone)]
pub struct AuthLayer {
    tokens: Arc<Tokens>,
}

impl AuthLayer {
    /// A layer checking calls against `tokens`.
    pub fn new(tokens: Tokens) -> Self {
        Self {
            tokens: Arc::new(tokens),
        }
    }
}

impl<S> tower_layer::Layer<S> for AuthLayer {
    type Service = Auth<S>;

    fn layer(&self, inner: S) -> Auth<S> {
        Auth {
            inner,
            tokens: Arc::clone(&self.tokens),
        }
    }
}

/// The service [`AuthLayer`] wraps around the server.
#[derive(Debug, Clone)]
pub struct Auth<S> {
    inner: S,
    tokens: Arc<Tokens>,
}

type BoxFuture<T, E> = Pin<Box<dyn Future<Output = Result<T, E>> + Send>>;

impl<S, B, R> tower_service::Service<http::Request<B>> for Auth<S>
where
    S: tower_service::Service<http::Request<B>, Response = http::Response<R>>,
    S::Future: Send + 'static,
    R: Default + Send + 'static,
    S::Error: Send + 'static,
{
    type Response = http::Response<R>;
    type Error = S::Error;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let authorization = request
            .headers()
            .get(http::header::AUTHORIZATION)
            .map(http::HeaderValue::as_bytes);
        match check(&self.tokens, request.uri().path(), authorization) {
            Ok(()) => Box::pin(self.inner.call(request)),
            Err(status) => {
                tracing::warn!(path = request.uri().path(), code = ?status.code(), "call refused");
                let response = status.into_http::<R>();
                Box::pin(async move { Ok(response) })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WORKER: &str = "worker-token-0123456789";
    const OPERATOR: &str = "operator-token-0123456789";

    fn tokens() -> Tokens {
        Tokens {
            worker: Some(Secret::new(WORKER, "test").unwrap()),
            operator: Some(Secret::new(OPERATOR, "test").unwrap()),
        }
    }

    fn bearer(t: &str) -> Vec<u8> {
        format!("Bearer {t}").into_bytes()
    }

    #[test]
    fn each_role_opens_its_own_calls_only() {
        let t = tokens();
        let lease = "/sweep.v1.SweepService/Lease";
        let cancel = "/sweep.v1.SweepService/Cancel";
        assert!(check(&t, lease, Some(&bearer(WORKER))).is_ok());
        assert!(check(&t, cancel, Some(&bearer(OPERATOR))).is_ok());
        let refused = check(&t, cancel, Some(&bearer(WORKER))).unwrap_err();
        assert_eq!(refused.code(), tonic::Code::Unauthenticated);
        let retry = "/sweep.v1.SweepService/Retry";
        assert!(check(&t, retry, Some(&bearer(OPERATOR))).is_ok());
        assert_eq!(
            check(&t, retry, Some(&bearer(WORKER))).unwrap_err().code(),
            tonic::Code::Unauthenticated,
            "a worker cannot retry trials"
        );
        let promote = "/sweep.v1.SweepService/Promote";
        assert!(check(&t, promote, Some(&bearer(OPERATOR))).is_ok());
        assert_eq!(
            check(&t, promote, Some(&bearer(WORKER)))
                .unwrap_err()
                .code(),
            tonic::Code::Unauthenticated,
            "a worker cannot promote trials"
        );
        assert_eq!(
            check(&t, lease, Some(&bearer(OPERATOR)))
                .unwrap_err()
                .code(),
            tonic::Code::Unauthenticated
        );
        assert_eq!(
            check(&t, lease, None).unwrap_err().code(),
            tonic::Code::Unauthenticated
        );
        assert_eq!(
            check(&t, lease, Some(WORKER.as_bytes()))
                .unwrap_err()
                .code(),
            tonic::Code::Unauthenticated,
            "the Bearer scheme is required"
        );
        // Unknown paths need a worker token; the health service none.
        assert!(check(&t, "/x.Y/Z", None).is_err());
        assert!(check(&t, "/grpc.health.v1.Health/Check", None).is_ok());
        // Messages never carry the token.
        let e = check(&t, lease, Some(&bearer("worker-token-0123456780"))).unwrap_err();
        assert!(!e.message().contains("worker-token"), "{}", e.message());
    }

    #[test]
    fn without_tokens_everything_is_open_and_a_missing_role_is_closed() {
        assert!(check(&Tokens::default(), "/sweep.v1.SweepService/Cancel", None).is_ok());
        let only_worker = Tokens {
            worker: Some(Secret::new(WORKER, "test").unwrap()),
            operator: None,
        };
        let e = check(
            &only_worker,
            "/sweep.v1.SweepService/Status",
            Some(&bearer(WORKER)),
        )
        .unwrap_err();
        assert_eq!(e.code(), tonic::Code::PermissionDenied);
    }

    #[test]
    fn each_worker_gets_its_own_rate() {
        let limiter = RateLimiter::new(10.0, 3.0);
        let (a, b) = (
            sweep_common::WorkerId::random(),
            sweep_common::WorkerId::random(),
        );
        let t0 = std::time::Instant::now();
        for _ in 0..3 {
            assert!(limiter.admit(a, t0).is_ok());
        }
        assert!(limiter.admit(a, t0).is_err(), "the burst is spent");
        assert!(
            limiter.admit(b, t0).is_ok(),
            "another worker is not held back"
        );
        // A tenth of a second refills one call.
        assert!(
            limiter
                .admit(a, t0 + std::time::Duration::from_millis(100))
                .is_ok()
        );
        assert!(
            limiter
                .admit(a, t0 + std::time::Duration::from_millis(100))
                .is_err()
        );
        let key = WorkerKey::new([1; 32]);
        assert!(key.verify(a, Some(key.secret(a).as_bytes())).is_ok());
        assert!(key.verify(a, Some(key.secret(b).as_bytes())).is_err());
        assert!(key.verify(a, None).is_err());
    }

    #[test]
    fn weak_tokens_are_refused_and_secrets_do_not_print() {
        assert!(Secret::new("short", "FILE").unwrap_err().contains("FILE"));
        assert!(Secret::new("has space inside it ok", "FILE").is_err());
        let s = Secret::new(WORKER, "FILE").unwrap();
        assert!(!format!("{s:?}").contains("worker"));
    }
}
