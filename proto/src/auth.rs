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

/// A token read by [`read_token`].
#[derive(Clone, PartialEq, Eq)]
pub struct Token {
    /// The token, surrounding whitespace removed.
    pub value: String,
    /// Something its owner should fix, never holding the token: a token file that other
    /// users may read.
    pub warning: Option<String>,
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Token")
            .field("value", &"<redacted>")
            .field("warning", &self.warning)
            .finish()
    }
}

/// The token in `file` or in the environment variable `env`; `None` when neither is given.
/// Giving both is refused (which one was meant?). The file is read by the bounded reader
/// (`sweep_common::files`, a regular file of at most 64 KiB), and a file that group or others
/// may read gives a warning. An error names the file or the variable, never the token. Tokens
/// never come from a command-line argument, which `ps` shows to everyone.
pub fn read_token(file: Option<&std::path::Path>, env: &str) -> Result<Option<Token>, String> {
    let variable = match std::env::var(env) {
        Ok(v) if !v.trim().is_empty() => Some(v.trim().to_owned()),
        Ok(_) | Err(std::env::VarError::NotPresent) => None,
        Err(std::env::VarError::NotUnicode(_)) => return Err(format!("{env} is not valid UTF-8")),
    };
    let Some(path) = file else {
        return Ok(variable.map(|value| Token {
            value,
            warning: None,
        }));
    };
    if variable.is_some() {
        return Err(format!(
            "both the token file {} and the variable {env} give a token; give it one way only \
             (unset {env}, or drop the file)",
            path.display()
        ));
    }
    let file = sweep_common::files::read_small(
        path,
        "token file",
        sweep_common::files::MAX_TOKEN_FILE_BYTES,
    )
    .map_err(|e| e.to_string())?;
    let others = file.readable_by_others();
    let text = String::from_utf8(file.bytes)
        .map_err(|_| format!("the token file {} is not UTF-8 text", path.display()))?;
    let token = text.trim();
    if token.is_empty() {
        return Err(format!("the token file {} is empty", path.display()));
    }
    let warning = others.then(|| {
        format!(
            "the token file {} may be read by other users (mode {:04o}): chmod 600 it",
            path.display(),
            file.mode
        )
    });
    Ok(Some(Token {
        value: token.to_owned(),
        warning,
    }))
}

/// A coordinator's address as `--coordinator` and `--addr` take it: an `http://` or `https://`
/// URL with a host (`http://host:50051`), or `HOST:PORT`, which means `http://HOST:PORT`.
pub fn coordinator_url(s: &str) -> Result<String, String> {
    let url = if s.contains("://") {
        s.to_owned()
    } else {
        format!("http://{s}")
    };
    let bad = |why: &str| format!("{s:?} is not a coordinator address: {why}");
    let uri: tonic::transport::Uri = url
        .parse()
        .map_err(|e: tonic::codegen::http::uri::InvalidUri| bad(&e.to_string()))?;
    match uri.scheme_str() {
        Some("http" | "https") => {}
        _ => return Err(bad("use an http:// or https:// URL (or HOST:PORT)")),
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err(bad("it names no host"));
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    #[test]
    fn coordinator_addresses_are_http_urls() {
        assert_eq!(
            coordinator_url("http://10.0.0.1:50051").as_deref(),
            Ok("http://10.0.0.1:50051")
        );
        assert_eq!(
            coordinator_url("https://sweep.example:443").as_deref(),
            Ok("https://sweep.example:443")
        );
        assert_eq!(
            coordinator_url("127.0.0.1:50051").as_deref(),
            Ok("http://127.0.0.1:50051")
        );
        for bad in [
            "ftp://host:21",
            "file:///etc/passwd",
            "http://",
            "unix:///tmp/sweep.sock",
            "http://a b",
        ] {
            let e = coordinator_url(bad).unwrap_err();
            assert!(
                e.starts_with(&format!("{bad:?} is not a coordinator address")),
                "{e}"
            );
        }
    }

    #[test]
    fn a_token_comes_one_way() {
        let dir = std::env::temp_dir().join(format!("sweep-token-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("token");
        std::fs::write(&path, "  0123456789abcdef0123\n").unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        }
        // A variable no other test sets.
        let env = "SWEEP_TEST_TOKEN_UNSET_7f3e";
        let t = read_token(Some(&path), env).unwrap().unwrap();
        assert_eq!(t.value, "0123456789abcdef0123");
        #[cfg(unix)]
        assert!(
            t.warning
                .as_deref()
                .unwrap()
                .contains("(mode 0644): chmod 600")
        );
        assert!(!format!("{t:?}").contains("0123456789abcdef0123"));
        assert_eq!(read_token(None, env).unwrap(), None);
        let e = read_token(Some(Path::new("/dev/zero")), env).unwrap_err();
        assert!(
            e.ends_with("is a character device, not a regular file"),
            "{e}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
