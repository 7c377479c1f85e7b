//! The exclusive lock a coordinator holds on its output folder and on its state directory, so
//! that two coordinators never serve one sweep (each would train every trial and overwrite the
//! other's files).
//!
//! The lock is an advisory `flock(2)` on a file named [`LOCK_FILE`] in the folder, taken before
//! anything else is written there and held for the life of the process: the kernel releases it
//! when the process ends, however it ends, so a coordinator killed with SIGKILL never blocks its
//! own restart. The file is never deleted (deleting a lock file lets two processes each lock a
//! different file of one name); it holds who took the lock last (process id, host, time), which
//! a refused coordinator quotes.

use std::fs::{File, OpenOptions};
use std::io::{Read as _, Seek as _, SeekFrom, Write as _};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};

use crate::Error;

/// The lock file's name, in the output folder and in the state directory.
pub const LOCK_FILE: &str = "coordinator.lock";

/// Most bytes of a lock file quoted in an error.
const MAX_HOLDER_BYTES: u64 = 256;

/// A folder held by this process until the value drops (or the process ends).
#[derive(Debug)]
pub struct DirLock {
    /// The locked lock file (`None` once dropped).
    lock: Option<Flock<File>>,
    /// The folder.
    dir: PathBuf,
}

impl DirLock {
    /// Takes the lock of the existing folder `dir`, called `what` in messages ("output folder",
    /// "state directory"), and writes this process's id, host and start time into the lock file.
    /// Refuses with [`Error::Locked`], naming the holder, while another process holds it.
    pub fn acquire(dir: &Path, what: &'static str) -> Result<DirLock, Error> {
        let path = dir.join(LOCK_FILE);
        let io = |action: &'static str| {
            let path = path.display().to_string();
            move |source| Error::Io {
                action,
                path,
                source,
            }
        };
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io("cannot open the lock file"))?;
        let mut file = match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(locked) => locked,
            Err((mut file, Errno::EWOULDBLOCK)) => {
                return Err(Error::Locked {
                    what,
                    dir: dir.display().to_string(),
                    holder: holder(&mut file),
                });
            }
            Err((_, errno)) => {
                // ENOLCK, EOPNOTSUPP: a file system without locks (some network file systems).
                return Err(io("cannot lock (does this file system support locks?)")(
                    std::io::Error::from(errno),
                ));
            }
        };
        let note = format!(
            "pid {} on host {} since {}\n",
            std::process::id(),
            host(),
            humantime::format_rfc3339_seconds(std::time::SystemTime::now())
        );
        file.set_len(0)
            .and_then(|()| file.seek(SeekFrom::Start(0)))
            .and_then(|_| file.write_all(note.as_bytes()))
            .map_err(io("cannot write the lock file"))?;
        Ok(DirLock {
            lock: Some(file),
            dir: dir.to_owned(),
        })
    }

    /// The folder held.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Drop for DirLock {
    fn drop(&mut self) {
        if let Some(lock) = self.lock.take() {
            if let Err((lock, _)) = lock.unlock() {
                // Released by the kernel when the process ends (or the file is closed): never a
                // panic here, which dropping the `Flock` would be.
                std::mem::forget(lock);
            }
        }
    }
}

/// Who holds the lock, as its lock file says (one line, printable), if it says.
fn holder(file: &mut File) -> Option<String> {
    let mut bytes = Vec::new();
    file.take(MAX_HOLDER_BYTES).read_to_end(&mut bytes).ok()?;
    let text = String::from_utf8_lossy(&bytes);
    let line: String = text
        .lines()
        .next()?
        .chars()
        .filter(|c| !c.is_control())
        .collect();
    let line = line.trim();
    (!line.is_empty()).then(|| line.to_owned())
}

/// This machine's host name, or `unknown`.
fn host() -> String {
    nix::unistd::gethostname()
        .ok()
        .map(|h| h.to_string_lossy().trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_is_refused_naming_the_holder_and_freed_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        let first = DirLock::acquire(dir.path(), "output folder").unwrap();
        // flock belongs to the open file: a second open, even in this process, conflicts.
        let err = DirLock::acquire(dir.path(), "output folder").unwrap_err();
        let text = err.to_string();
        assert!(matches!(err, Error::Locked { .. }), "{text}");
        assert!(
            text.contains(&format!("pid {}", std::process::id())),
            "{text}"
        );
        assert!(text.contains(&dir.path().display().to_string()), "{text}");
        drop(first);
        let again = DirLock::acquire(dir.path(), "output folder").unwrap();
        assert_eq!(again.dir(), dir.path());
    }

    #[test]
    fn a_lock_file_left_by_a_dead_process_does_not_block() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join(LOCK_FILE),
            "pid 1 on host gone since then\n",
        )
        .unwrap();
        let lock = DirLock::acquire(dir.path(), "state directory").unwrap();
        let note = std::fs::read_to_string(dir.path().join(LOCK_FILE)).unwrap();
        assert!(
            note.starts_with(&format!("pid {} on host ", std::process::id())),
            "{note}"
        );
        drop(lock);
    }
}
