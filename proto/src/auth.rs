//! The client side of authentication: every call carries `authorization: Bearer TOKEN` when a
//! token is configured. The header is marked sensitive, so it is neither logged by `Debug` nor
//! indexed by HPACK.

use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;
use tonic::{Request, Status};

use crate::SweepServiceClient;

/// The client every caller uses: the generated one, with [`Bearer`] on every call.
pub type Client = SweepServiceClient<InterceptedService<Channel, Bearer>>;

/// The metadata key a worker's secret travels in (see `RegisterResponse.worker_secret`).
pub const WORKER_SECRET: &str = "x-sweep-worker-secret";

/// Adds the token (and, once registered, the worker's secret) to every call.
#[derive(Clone, Default)]
pub struct Bearer(Option<MetadataValue<Ascii>>, Option<MetadataValue<Ascii>>);

impl Bearer {
    /// Carries `token` (surrounding whitespace removed); `None` when it cannot be a header
    /// value (then it is not a token the coordinator would accept either).
    pub fn new(token: &str) -> Option<Bearer> {
        let mut value: MetadataValue<Ascii> = format!("Bearer {}", token.trim()).parse().ok()?;
        value.set_sensitive(true);
        Some(Bearer(Some(value), None))
    }

    /// No token.
    pub fn none() -> Bearer {
        Bearer(None, None)
    }

    /// The same, also presenting the worker secret the coordinator issued at registration
    /// (`None` if it cannot be a header value).
    pub fn with_worker_secret(&self, secret: &str) -> Option<Bearer> {
        let mut value: MetadataValue<Ascii> = secret.parse().ok()?;
        value.set_sensitive(true);
        Some(Bearer(self.0.clone(), Some(value)))
    }
}

impl std::fmt::Debug for Bearer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "Bearer(<redacted>)"
        } else {
            "Bearer(none)"
        })
    }
}

impl Interceptor for Bearer {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        if let Some(value) = &self.0 {
            request
                .metadata_mut()
                .insert("authorization", value.clone());
        }
        if let Some(value) = &self.1 {
            request.metadata_mut().insert(WORKER_SECRET, value.clone());
        }
        Ok(request)
    }
}

/// A client on `channel` presenting `bearer`, with the protocol's message size limits.
pub fn client(channel: Channel, bearer: Bearer) -> Client {
    SweepServiceClient::with_interceptor(channel, bearer)
        .max_decoding_message_size(crate::MAX_MESSAGE_BYTES)
        .max_encoding_message_size(crate::MAX_MESSAGE_BYTES)
}

/// The token in `file` if given, else in the environment variable `env` if set; `None` when
/// neither is. The message of an error names the file or the variable, never the token. Tokens
/// never come from a command-line argument, which `ps` shows to everyone.
pub fn read_token(file: Option<&std::path::Path>, env: &str) -> Result<Option<String>, String> {
    if let Some(path) = file {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read the token file {}: {e}", path.display()))?;
        let token = text.trim();
        if token.is_empty() {
            return Err(format!("the token file {} is empty", path.display()));
        }
        return Ok(Some(token.to_owned()));
    }
    match std::env::var(env) {
        Ok(v) if !v.trim().is_empty() => Ok(Some(v.trim().to_owned())),
        Ok(_) | Err(std::env::VarError::NotPresent) => Ok(None),
        Err(std::env::VarError::NotUnicode(_)) => Err(format!("{env} is not valid UTF-8")),
    }
}
