//! The state directory is its owner's alone: it holds the key that worker secrets are derived
//! from (in the database) and the checkpoints. The folder is made `0700`, the database (and
//! its `-wal` and `-shm` files, which SQLite creates with the database's mode) and checkpoints
//! `0600`, whatever the umask; a folder or file left more open by an older version is tightened
//! when the coordinator starts, and said so in the log. (On platforms without Unix permissions
//! this does nothing.)

use std::io;
use std::path::{Path, PathBuf};

/// The permission bits of a private folder and of a private file.
const DIR_MODE: u32 = 0o700;
const FILE_MODE: u32 = 0o600;

/// Something made private that was not: the path and the mode it had.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tightened {
    /// The folder or file.
    pub path: PathBuf,
    /// Its permission bits before.
    pub was: u32,
}

/// Creates the folder `dir` `0700` (its missing parents as usual), or makes the existing one
/// `0700`.
pub fn dir(dir: &Path) -> io::Result<Option<Tightened>> {
    if dir.exists() && !dir.is_dir() {
        return Err(io::Error::other("it exists and is not a folder"));
    }
    if !dir.exists() {
        if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)?;
        }
        let mut builder = std::fs::DirBuilder::new();
        #[cfg(unix)]
        {
            use std::os::unix::fs::DirBuilderExt as _;
            builder.mode(DIR_MODE);
        }
        match builder.create(dir) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && dir.is_dir() => {}
            Err(e) => return Err(e),
        }
    }
    tighten(dir, DIR_MODE)
}

/// Makes the existing files of folder `dir` `0600` (a missing folder has none).
pub fn files_in(dir: &Path) -> io::Result<Vec<Tightened>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut tightened = Vec::new();
    for entry in entries {
        let entry = entry?;
        if entry.file_type()?.is_file() {
            tightened.extend(tighten(&entry.path(), FILE_MODE)?);
        }
    }
    Ok(tightened)
}

/// Makes the existing file `path` `0600`, if there is one.
pub fn existing_file(path: &Path) -> io::Result<Option<Tightened>> {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.is_file() => tighten(path, FILE_MODE),
        Ok(_) => Ok(None),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Sets `mode` on `path` when group or others have any permission on it.
#[cfg(unix)]
fn tighten(path: &Path, mode: u32) -> io::Result<Option<Tightened>> {
    use std::os::unix::fs::PermissionsExt as _;
    let was = std::fs::metadata(path)?.permissions().mode() & 0o7777;
    if was & 0o077 == 0 {
        return Ok(None);
    }
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
    Ok(Some(Tightened {
        path: path.to_owned(),
        was,
    }))
}

#[cfg(not(unix))]
fn tighten(_: &Path, _: u32) -> io::Result<Option<Tightened>> {
    Ok(None)
}

#[cfg(test)]
#[cfg(unix)]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    use super::*;

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().permissions().mode() & 0o7777
    }

    #[test]
    fn new_folders_and_files_are_private_and_old_ones_are_tightened() {
        let root = tempfile::tempdir().unwrap();
        let state = root.path().join("out").join("state");
        assert_eq!(dir(&state).unwrap(), None);
        assert_eq!(mode(&state), 0o700);
        assert_ne!(mode(&root.path().join("out")), 0o700, "parents as usual");
        // The database is made `0600` by the store (a temporary file renamed into place).
        let db = state.join("sweep.db");
        std::fs::write(&db, "").unwrap();

        std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o644)).unwrap();
        let old = state.join("old.safetensors");
        std::fs::write(&old, "x").unwrap();
        std::fs::set_permissions(&old, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert_eq!(dir(&state).unwrap().map(|t| t.was), Some(0o755));
        assert_eq!(existing_file(&db).unwrap().map(|t| t.was), Some(0o644));
        assert_eq!(files_in(&state).unwrap().len(), 1);
        assert_eq!(existing_file(&state.join("missing")).unwrap(), None);
        for (p, m) in [(&state, 0o700), (&db, 0o600), (&old, 0o600)] {
            assert_eq!(mode(p), m, "{}", p.display());
        }
        // A file where the folder should be is an error, and keeps its mode.
        assert!(dir(&old).is_err());
        assert_eq!(mode(&old), 0o600);
    }
}
