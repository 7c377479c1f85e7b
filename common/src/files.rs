//! Small files named on a command line (grid files, tokens, TLS certificates and keys), read
//! whole by one bounded reader: only regular files (a FIFO would hang the reader, `/dev/zero`
//! would fill its memory), at most a given size, and every error naming the file and what it
//! was for.

use std::io::Read as _;
use std::path::Path;

/// Most bytes of a token file (a token is a line of at most a few hundred characters).
pub const MAX_TOKEN_FILE_BYTES: u64 = 64 * 1024;
/// Most bytes of a PEM file (a certificate chain, a private key, a CA bundle).
pub const MAX_PEM_FILE_BYTES: u64 = 1024 * 1024;

/// A file read by [`read_small`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmallFile {
    /// Its content.
    pub bytes: Vec<u8>,
    /// Its permission bits (`0o644`); 0 where the platform has none.
    pub mode: u32,
}

impl SmallFile {
    /// True when users other than its owner may read it (group or other read bits).
    pub fn readable_by_others(&self) -> bool {
        self.mode & 0o044 != 0
    }
}

/// Why a small file could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FileError {
    /// The operating system refused (no such file, permission denied...).
    #[error("cannot read the {what} {path}: {message}")]
    Io {
        /// What the file is for ("token file").
        what: String,
        /// The path given.
        path: String,
        /// What the operating system said.
        message: String,
    },
    /// Not a regular file.
    #[error("the {what} {path} is {kind}, not a regular file")]
    NotRegular {
        /// What the file is for.
        what: String,
        /// The path given.
        path: String,
        /// What it is instead ("a FIFO (named pipe)").
        kind: &'static str,
    },
    /// Larger than such a file can be; it was not read.
    #[error("the {what} {path} is larger than {limit} bytes; is it the right file?")]
    TooLarge {
        /// What the file is for.
        what: String,
        /// The path given.
        path: String,
        /// The most bytes allowed.
        limit: u64,
    },
}

/// What a file that is not a regular one is, in words.
fn kind(t: std::fs::FileType) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt as _;
        if t.is_fifo() {
            return "a FIFO (named pipe)";
        }
        if t.is_char_device() {
            return "a character device";
        }
        if t.is_block_device() {
            return "a block device";
        }
        if t.is_socket() {
            return "a socket";
        }
    }
    if t.is_dir() { "a folder" } else { "something" }
}

#[cfg(unix)]
fn mode(m: &std::fs::Metadata) -> u32 {
    use std::os::unix::fs::PermissionsExt as _;
    m.permissions().mode() & 0o7777
}

#[cfg(not(unix))]
fn mode(_: &std::fs::Metadata) -> u32 {
    0
}

/// Reads the file at `path` (symbolic links followed), `what` it is for naming it in errors:
/// refused unless it is a regular file of at most `limit` bytes. The type is checked before the
/// file is opened (opening a FIFO waits for a writer) and again on the open file.
pub fn read_small(path: &Path, what: &str, limit: u64) -> Result<SmallFile, FileError> {
    let shown = || path.display().to_string();
    let io = |e: std::io::Error| FileError::Io {
        what: what.to_owned(),
        path: shown(),
        message: e.to_string().to_lowercase(),
    };
    let check = |m: &std::fs::Metadata| {
        if !m.is_file() {
            return Err(FileError::NotRegular {
                what: what.to_owned(),
                path: shown(),
                kind: kind(m.file_type()),
            });
        }
        if m.len() > limit {
            return Err(FileError::TooLarge {
                what: what.to_owned(),
                path: shown(),
                limit,
            });
        }
        Ok(())
    };
    check(&std::fs::metadata(path).map_err(io)?)?;
    let file = std::fs::File::open(path).map_err(io)?;
    let metadata = file.metadata().map_err(io)?;
    check(&metadata)?;
    let mut bytes = Vec::new();
    file.take(limit + 1).read_to_end(&mut bytes).map_err(io)?;
    if bytes.len() as u64 > limit {
        // It grew while being read.
        return Err(FileError::TooLarge {
            what: what.to_owned(),
            path: shown(),
            limit,
        });
    }
    Ok(SmallFile {
        bytes,
        mode: mode(&metadata),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_regular_file_is_read_with_its_mode() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, "secret\n").unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
        }
        let f = read_small(&path, "token file", 100).unwrap();
        assert_eq!(f.bytes, b"secret\n");
        #[cfg(unix)]
        {
            assert_eq!(f.mode, 0o640);
            assert!(f.readable_by_others());
        }
    }

    #[test]
    fn too_large_missing_and_folders_are_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big");
        std::fs::write(&path, [b'x'; 101]).unwrap();
        let e = read_small(&path, "token file", 100).unwrap_err();
        assert!(matches!(e, FileError::TooLarge { limit: 100, .. }), "{e}");
        assert!(e.to_string().starts_with("the token file "), "{e}");
        assert!(read_small(&path, "token file", 101).is_ok());
        let e = read_small(&dir.path().join("missing"), "grid file", 100).unwrap_err();
        assert!(e.to_string().contains("no such file"), "{e}");
        let e = read_small(dir.path(), "grid file", 100).unwrap_err();
        assert!(
            e.to_string().ends_with("is a folder, not a regular file"),
            "{e}"
        );
    }

    #[cfg(unix)]
    #[test]
    fn devices_are_refused_without_reading() {
        let e = read_small(Path::new("/dev/zero"), "token file", 100).unwrap_err();
        assert_eq!(
            e.to_string(),
            "the token file /dev/zero is a character device, not a regular file"
        );
    }

    #[cfg(unix)]
    #[test]
    fn a_fifo_is_refused_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("grid.toml");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .expect("mkfifo (coreutils)");
        assert!(made.success());
        // No writer ever opens it: reading it would wait forever.
        let e = read_small(&fifo, "grid file", 100).unwrap_err();
        assert!(
            e.to_string()
                .ends_with("is a FIFO (named pipe), not a regular file"),
            "{e}"
        );
    }
}
