//! Downloads of a missing dataset from its official source: every file is fetched into a
//! temporary file beside its final place, checked against the MD5 its publisher gives, and only
//! then renamed to its official name, so a later run finds it with the normal search of
//! [`sweep_data`]. A partial or corrupt download is deleted, never used.

use std::collections::HashMap;
use std::fmt;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use md5::{Digest, Md5};
use sweep_common::DatasetKind;
use tempfile::NamedTempFile;
use tracing::{info, warn};

/// Largest file a download may have: 512 MiB, about three times the CIFAR-10 archive (162 MiB).
pub const MAX_DOWNLOAD_BYTES: u64 = 512 << 20;
/// How long to wait for a TCP connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// How long to wait for the response headers once the request is sent.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(60);
/// How long one read of the body may wait for bytes (a stalled transfer fails after this).
const READ_TIMEOUT: Duration = Duration::from_secs(60);
/// Upper bound on a whole body, however slowly it trickles in.
const BODY_TIMEOUT: Duration = Duration::from_secs(2 * 60 * 60);
/// Progress is logged every this many bytes when the server does not say the size.
const PROGRESS_STEP_BYTES: u64 = 32 << 20;

/// One file of a dataset: the name it is saved under, where it comes from, and its MD5.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    /// The official file name, saved as is in the data folder (`cifar-10-binary.tar.gz`).
    pub file: String,
    /// The official URL.
    pub url: String,
    /// The MD5 of the file, lowercase hex, as its publisher gives it.
    pub md5: String,
}

impl Source {
    fn new(file: &str, url: &str, md5: &str) -> Self {
        Self {
            file: file.to_owned(),
            url: url.to_owned(),
            md5: md5.to_owned(),
        }
    }

    /// Where to fetch the file: `{mirror}/{file}` with a mirror, else the official URL.
    pub fn url_with(&self, mirror: Option<&str>) -> String {
        match mirror {
            Some(m) => format!("{}/{}", m.trim_end_matches('/'), self.file),
            None => self.url.clone(),
        }
    }
}

/// The files to download for each dataset.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Catalog {
    sources: HashMap<DatasetKind, Vec<Source>>,
}

impl Catalog {
    /// The official sources and checksums, from [`DatasetKind::official_files`].
    pub fn official() -> Self {
        let mut catalog = Self::default();
        for kind in DatasetKind::ALL {
            let files = kind.official_files().iter();
            catalog.insert(
                kind,
                files.map(|f| Source::new(f.file, f.url, f.md5)).collect(),
            );
        }
        catalog
    }

    /// Sets the files of `kind` (tests use their own files and checksums).
    pub fn insert(&mut self, kind: DatasetKind, sources: Vec<Source>) {
        self.sources.insert(kind, sources);
    }

    /// The files of `kind` (empty if it has none).
    pub fn sources(&self, kind: DatasetKind) -> &[Source] {
        self.sources.get(&kind).map_or(&[], Vec::as_slice)
    }
}

/// Whether and how missing datasets are downloaded.
#[derive(Debug, Clone)]
pub struct Downloads {
    /// Never download (`--offline`).
    pub offline: bool,
    /// Fetch every file as `{mirror}/{file name}` instead of from its official URL (`--mirror`).
    pub mirror: Option<String>,
    /// The files and their checksums.
    pub catalog: Catalog,
    /// Where to download when the data folder cannot be written (searched first, then, for an
    /// earlier such download); `None`: nowhere else. Never used when the data folder is writable.
    pub fallback_dir: Option<PathBuf>,
    /// Largest file accepted.
    pub max_bytes: u64,
}

impl Downloads {
    /// Online, from the official sources, falling back to [`default_cache_dir`].
    pub fn official() -> Self {
        Self {
            offline: false,
            mirror: None,
            catalog: Catalog::official(),
            fallback_dir: default_cache_dir(),
            max_bytes: MAX_DOWNLOAD_BYTES,
        }
    }

    /// What to put where, for an error message: "put F1 (URL1), F2 (URL2) in DIR".
    pub fn hint(&self, kind: DatasetKind, dir: &Path) -> String {
        let files: Vec<String> = self
            .catalog
            .sources(kind)
            .iter()
            .map(|s| format!("{} ({})", s.file, s.url_with(self.mirror.as_deref())))
            .collect();
        format!("put {} in {}", files.join(", "), dir.display())
    }
}

/// `$XDG_CACHE_HOME/sweep/datasets`, else `$HOME/.cache/sweep/datasets` (None without either).
pub fn default_cache_dir() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME")
                .filter(|v| !v.is_empty())
                .map(|h| PathBuf::from(h).join(".cache"))
        })?;
    Some(base.join("sweep").join("datasets"))
}

/// Why a download failed.
#[derive(Debug, thiserror::Error)]
pub enum DownloadError {
    /// The catalog has no file for the dataset.
    #[error("no download source is known for {0}")]
    NoSource(DatasetKind),
    /// Neither the data folder nor the fallback folder can be written.
    #[error("cannot write the download into {}: {source}", .dir.display())]
    NotWritable {
        /// The last folder tried.
        dir: PathBuf,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
    /// The request failed before a response came (DNS, connection, TLS, timeout).
    #[error("GET {url} failed: {message}")]
    Request {
        /// The URL.
        url: String,
        /// The client's error.
        message: String,
    },
    /// The server answered with a status other than 2xx.
    #[error("GET {url}: HTTP {status}")]
    Status {
        /// The URL.
        url: String,
        /// The status, with its reason phrase.
        status: HttpStatus,
    },
    /// The body broke off or stalled.
    #[error("GET {url}: transfer failed after {received} bytes: {message}")]
    Transfer {
        /// The URL.
        url: String,
        /// Bytes received before the failure.
        received: u64,
        /// The error.
        message: String,
    },
    /// The body is larger than allowed.
    #[error("GET {url}: the file is larger than the limit of {limit} bytes")]
    TooLarge {
        /// The URL.
        url: String,
        /// The limit.
        limit: u64,
    },
    /// The file's MD5 is not the published one: the file was deleted.
    #[error(
        "GET {url}: checksum mismatch: expected MD5 {expected}, got {actual}; the file was deleted"
    )]
    Checksum {
        /// The URL.
        url: String,
        /// The published MD5.
        expected: String,
        /// The downloaded file's MD5.
        actual: String,
    },
    /// Writing the file failed.
    #[error("cannot write {}: {source}", .path.display())]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
}

/// An HTTP status and its reason phrase, shown as "404 Not Found".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpStatus(pub u16);

impl fmt::Display for HttpStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let reason = ureq::http::StatusCode::from_u16(self.0)
            .ok()
            .and_then(|s| s.canonical_reason());
        match reason {
            Some(r) => write!(f, "{} {r}", self.0),
            None => write!(f, "{}", self.0),
        }
    }
}

/// Downloads every file of `kind` into `dir` (created if needed) under its official name.
/// Blocking: call it on a blocking thread.
///
/// All files are downloaded and verified before any is renamed to its official name, so a
/// failure leaves nothing behind.
pub fn fetch(kind: DatasetKind, dir: &Path, downloads: &Downloads) -> Result<(), DownloadError> {
    let sources = downloads.catalog.sources(kind);
    if sources.is_empty() {
        return Err(DownloadError::NoSource(kind));
    }
    std::fs::create_dir_all(dir).map_err(|source| DownloadError::NotWritable {
        dir: dir.to_owned(),
        source,
    })?;
    let agent = agent();
    let mut done = Vec::with_capacity(sources.len());
    for source in sources {
        let url = source.url_with(downloads.mirror.as_deref());
        let file = download(&agent, &url, &source.md5, dir, downloads.max_bytes)?;
        done.push((file, dir.join(&source.file)));
    }
    for (file, path) in done {
        // A file saved under a subfolder (`mnist/...`) needs the subfolder.
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|source| DownloadError::Io {
                path: parent.to_owned(),
                source,
            })?;
        }
        file.persist(&path).map_err(|e| DownloadError::Io {
            path: path.clone(),
            source: e.error,
        })?;
    }
    info!(dataset = %kind, dir = %dir.display(), "dataset downloaded and verified");
    Ok(())
}

/// Where downloads go: `data_dir` if a file can be created in it (creating it if needed), else
/// `fallback` (likewise).
pub fn target_dir(data_dir: &Path, fallback: Option<&Path>) -> Result<PathBuf, DownloadError> {
    let probe = |dir: &Path| -> io::Result<()> {
        std::fs::create_dir_all(dir)?;
        tempfile::Builder::new()
            .prefix(".sweep-write-test")
            .tempfile_in(dir)
            .map(drop)
    };
    let error = match probe(data_dir) {
        Ok(()) => return Ok(data_dir.to_owned()),
        Err(e) => e,
    };
    let Some(fallback) = fallback else {
        return Err(DownloadError::NotWritable {
            dir: data_dir.to_owned(),
            source: error,
        });
    };
    warn!(
        data_dir = %data_dir.display(),
        error = %error,
        fallback = %fallback.display(),
        "the data folder is not writable; using the fallback folder for downloads"
    );
    probe(fallback).map_err(|source| DownloadError::NotWritable {
        dir: fallback.to_owned(),
        source,
    })?;
    Ok(fallback.to_owned())
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_connect(Some(CONNECT_TIMEOUT))
        .timeout_recv_response(Some(RESPONSE_TIMEOUT))
        .timeout_per_read(Some(READ_TIMEOUT))
        .timeout_recv_body(Some(BODY_TIMEOUT))
        .user_agent(concat!("sweep-worker/", env!("CARGO_PKG_VERSION")))
        .build()
        .into()
}

/// Fetches `url` into a temporary file in `dir` and checks its MD5 against `expected_md5`.
fn download(
    agent: &ureq::Agent,
    url: &str,
    expected_md5: &str,
    dir: &Path,
    max_bytes: u64,
) -> Result<NamedTempFile, DownloadError> {
    info!(url, "downloading");
    let started = Instant::now();
    let response = agent.get(url).call().map_err(|e| DownloadError::Request {
        url: url.to_owned(),
        message: e.to_string(),
    })?;
    let status = response.status();
    if !status.is_success() {
        return Err(DownloadError::Status {
            url: url.to_owned(),
            status: HttpStatus(status.as_u16()),
        });
    }
    let total = response.body().content_length();
    if total.is_some_and(|t| t > max_bytes) {
        return Err(DownloadError::TooLarge {
            url: url.to_owned(),
            limit: max_bytes,
        });
    }
    let mut file = tempfile::Builder::new()
        .prefix(".sweep-download-")
        .suffix(".part")
        .tempfile_in(dir)
        .map_err(|source| DownloadError::Io {
            path: dir.to_owned(),
            source,
        })?;
    let body = response.into_body().into_reader();
    let (received, actual) = copy_body(url, body, &mut file, total, max_bytes)?;
    if let Some(total) = total.filter(|&t| t != received) {
        return Err(DownloadError::Transfer {
            url: url.to_owned(),
            received,
            message: format!("the server announced {total} bytes"),
        });
    }
    if !actual.eq_ignore_ascii_case(expected_md5) {
        // Dropping `file` deletes it.
        return Err(DownloadError::Checksum {
            url: url.to_owned(),
            expected: expected_md5.to_ascii_lowercase(),
            actual,
        });
    }
    file.as_file()
        .sync_all()
        .map_err(|source| DownloadError::Io {
            path: file.path().to_owned(),
            source,
        })?;
    info!(
        url,
        bytes = received,
        seconds = format!("{:.1}", started.elapsed().as_secs_f64()),
        md5 = %actual,
        "downloaded; checksum verified"
    );
    Ok(file)
}

/// Copies a response's `body` into `file`, at most `max_bytes` of it, logging the progress
/// towards `total` (when the server announced it). Returns the bytes received and their MD5.
fn copy_body(
    url: &str,
    mut body: impl Read,
    file: &mut NamedTempFile,
    total: Option<u64>,
    max_bytes: u64,
) -> Result<(u64, String), DownloadError> {
    let mut hasher = Md5::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut received = 0u64;
    let mut progress = Progress::new(url, total);
    loop {
        let n = match body.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                return Err(DownloadError::Transfer {
                    url: url.to_owned(),
                    received,
                    message: e.to_string(),
                });
            }
        };
        received += n as u64;
        if received > max_bytes {
            return Err(DownloadError::TooLarge {
                url: url.to_owned(),
                limit: max_bytes,
            });
        }
        hasher.update(&buf[..n]);
        file.write_all(&buf[..n])
            .map_err(|source| DownloadError::Io {
                path: file.path().to_owned(),
                source,
            })?;
        progress.update(received);
    }
    Ok((received, format!("{:x}", hasher.finalize())))
}

/// Logs a download's progress every 10 % (or every [`PROGRESS_STEP_BYTES`] without a size).
struct Progress<'a> {
    url: &'a str,
    total: Option<u64>,
    next: u64,
}

impl<'a> Progress<'a> {
    fn new(url: &'a str, total: Option<u64>) -> Self {
        let mut p = Self {
            url,
            total,
            next: 0,
        };
        p.next = p.step();
        p
    }

    fn step(&self) -> u64 {
        self.total.map_or(PROGRESS_STEP_BYTES, |t| (t / 10).max(1))
    }

    fn update(&mut self, received: u64) {
        if received < self.next {
            return;
        }
        match self.total {
            Some(total) => info!(
                url = self.url,
                percent = received.saturating_mul(100) / total.max(1),
                bytes = received,
                total,
                "download progress"
            ),
            None => info!(url = self.url, bytes = received, "download progress"),
        }
        let step = self.step();
        self.next = (received / step + 1) * step;
    }
}
