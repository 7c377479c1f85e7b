//! A program's checkpoint folder as one artifact (issue 19, part 4): packed into a tar archive
//! of at most [`LIMIT`] bytes when the program marks a checkpoint, unpacked for the attempt that
//! resumes from it. The archive holds the worker's own record, [`META`] (the epochs reported up
//! to the checkpoint, which the resumed attempt's result starts with), and the program's files
//! under [`FILES`]. It comes back from the coordinator, so unpacking trusts nothing in it: only
//! plain files and folders, only relative paths that stay inside the folder, at most [`LIMIT`]
//! bytes in all.

use std::io::Read;
use std::path::{Component, Path, PathBuf};

/// Largest checkpoint archive, packed or unpacked, in bytes.
pub const LIMIT: u64 = 1 << 30;
/// The worker's record in the archive.
pub const META: &str = "sweep.json";
/// The folder of the program's files in the archive.
pub const FILES: &str = "files";
/// Largest [`META`] read back, in bytes.
const META_LIMIT: u64 = 16 << 20;

/// Why a folder cannot be packed, or an archive unpacked.
#[derive(Debug, thiserror::Error)]
pub enum PackError {
    /// More than [`LIMIT`] bytes.
    #[error("the checkpoint folder holds more than {LIMIT} bytes")]
    TooLarge,
    /// An entry that is not a plain file or a folder (a link, a device).
    #[error("{path}: only plain files and folders can be in a checkpoint")]
    Kind {
        /// The entry.
        path: String,
    },
    /// A path that is absolute or leaves the folder (`..`).
    #[error("{path}: a path outside the checkpoint folder")]
    Outside {
        /// The entry's path as written in the archive.
        path: String,
    },
    /// Reading or writing failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// Packs `meta` and the files under `dir` (sorted, so the same folder packs the same way).
pub fn pack(dir: &Path, meta: &[u8]) -> Result<Vec<u8>, PackError> {
    let mut files = Vec::new();
    walk(dir, Path::new(""), &mut files)?;
    files.sort();
    let mut total: u64 = 0;
    let mut builder = tar::Builder::new(Vec::new());
    builder.mode(tar::HeaderMode::Deterministic);
    builder.follow_symlinks(false);
    let mut header = tar::Header::new_gnu();
    header.set_size(meta.len() as u64);
    header.set_mode(0o644);
    builder.append_data(&mut header, META, meta)?;
    for (relative, is_dir) in files {
        let full = dir.join(&relative);
        let relative = Path::new(FILES).join(relative);
        if is_dir {
            builder.append_dir(&relative, &full)?;
            continue;
        }
        let mut file = std::fs::File::open(&full)?;
        let len = file.metadata()?.len();
        // The 512-byte header and the padding count too.
        total = total.saturating_add(len.div_ceil(512) * 512 + 512);
        if total > LIMIT {
            return Err(PackError::TooLarge);
        }
        let mut header = tar::Header::new_gnu();
        header.set_size(len);
        header.set_mode(0o644);
        builder.append_data(&mut header, &relative, (&mut file).take(len))?;
    }
    Ok(builder.into_inner()?)
}

/// The entries under `dir/relative`, depth first: (path relative to the root, is a folder).
fn walk(root: &Path, relative: &Path, out: &mut Vec<(PathBuf, bool)>) -> Result<(), PackError> {
    for entry in std::fs::read_dir(root.join(relative))? {
        let entry = entry?;
        let path = relative.join(entry.file_name());
        let kind = entry.file_type()?;
        if kind.is_dir() {
            out.push((path.clone(), true));
            walk(root, &path, out)?;
        } else if kind.is_file() {
            out.push((path, false));
        } else {
            return Err(PackError::Kind {
                path: path.display().to_string(),
            });
        }
    }
    Ok(())
}

/// Unpacks the program's files of `archive` into `dir` (which exists), refusing links, paths
/// that leave `dir` and more than [`LIMIT`] bytes; answers the worker's record (empty when the
/// archive has none).
pub fn unpack(archive: &[u8], dir: &Path) -> Result<Vec<u8>, PackError> {
    let mut total: u64 = 0;
    let mut meta = Vec::new();
    let mut archive = tar::Archive::new(archive);
    for entry in archive.entries()? {
        let mut entry = entry?;
        let raw = entry.path_bytes().into_owned();
        let shown = String::from_utf8_lossy(&raw).into_owned();
        let path = entry.path()?.into_owned();
        let inside = path
            .components()
            .all(|c| matches!(c, Component::Normal(_) | Component::CurDir));
        if path == Path::new(META) && entry.header().entry_type() == tar::EntryType::Regular {
            (&mut entry).take(META_LIMIT).read_to_end(&mut meta)?;
            continue;
        }
        let Some(path) = path.strip_prefix(FILES).ok().filter(|_| inside) else {
            return Err(PackError::Outside { path: shown });
        };
        if path.as_os_str().is_empty() {
            continue;
        }
        let target = dir.join(path);
        match entry.header().entry_type() {
            tar::EntryType::Directory => std::fs::create_dir_all(&target)?,
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                total = total.saturating_add(entry.size());
                if total > LIMIT {
                    return Err(PackError::TooLarge);
                }
                if let Some(parent) = target.parent() {
                    std::fs::create_dir_all(parent)?;
                }
                let mut file = std::fs::File::create(&target)?;
                std::io::copy(&mut (&mut entry).take(LIMIT), &mut file)?;
            }
            _ => return Err(PackError::Kind { path: shown }),
        }
    }
    Ok(meta)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_folder_packs_and_unpacks_the_same() {
        let from = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(from.path().join("sub/deeper")).unwrap();
        std::fs::write(from.path().join("state.json"), b"{\"epoch\": 2}").unwrap();
        std::fs::write(from.path().join("sub/deeper/w.bin"), vec![7u8; 3000]).unwrap();
        std::fs::create_dir(from.path().join("empty")).unwrap();
        let archive = pack(from.path(), b"meta").unwrap();
        assert_eq!(
            archive,
            pack(from.path(), b"meta").unwrap(),
            "deterministic"
        );
        let to = tempfile::tempdir().unwrap();
        assert_eq!(unpack(&archive, to.path()).unwrap(), b"meta");
        assert_eq!(
            std::fs::read(to.path().join("state.json")).unwrap(),
            b"{\"epoch\": 2}"
        );
        assert_eq!(
            std::fs::read(to.path().join("sub/deeper/w.bin")).unwrap(),
            vec![7u8; 3000]
        );
        assert!(to.path().join("empty").is_dir());
    }

    #[test]
    fn an_empty_folder_packs_to_an_archive_that_unpacks_to_nothing() {
        let from = tempfile::tempdir().unwrap();
        let archive = pack(from.path(), b"").unwrap();
        let to = tempfile::tempdir().unwrap();
        assert!(unpack(&archive, to.path()).unwrap().is_empty());
        assert_eq!(std::fs::read_dir(to.path()).unwrap().count(), 0);
    }

    #[test]
    fn links_are_not_packed() {
        let from = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink("/etc/passwd", from.path().join("link")).unwrap();
        let e = pack(from.path(), b"").unwrap_err();
        assert!(
            matches!(e, PackError::Kind { ref path } if path == "link"),
            "{e}"
        );
    }

    /// An archive with one entry of `kind` whose name is written as given, bypassing the
    /// checks `tar::Header::set_path` makes (as a hostile archive would).
    fn hostile(name: &str, kind: tar::EntryType, link: &str, data: &[u8]) -> Vec<u8> {
        let mut header = tar::Header::new_old();
        let raw = header.as_old_mut();
        raw.name[..name.len()].copy_from_slice(name.as_bytes());
        raw.linkname[..link.len()].copy_from_slice(link.as_bytes());
        header.set_entry_type(kind);
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        let mut builder = tar::Builder::new(Vec::new());
        builder.append(&header, data).unwrap();
        builder.into_inner().unwrap()
    }

    #[test]
    fn paths_leaving_the_folder_are_refused() {
        let outer = tempfile::tempdir().unwrap();
        let dir = outer.path().join("resume");
        std::fs::create_dir(&dir).unwrap();
        for name in [
            "../evil",
            "files/../../evil",
            "files/a/../../../evil",
            "/tmp/evil",
            "evil",
        ] {
            let archive = hostile(name, tar::EntryType::Regular, "", b"x");
            let e = unpack(&archive, &dir).unwrap_err();
            assert!(
                matches!(e, PackError::Outside { ref path } if path == name),
                "{name}: {e}"
            );
        }
        assert!(!outer.path().join("evil").exists());
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0);
    }

    #[test]
    fn links_in_an_archive_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        for kind in [tar::EntryType::Symlink, tar::EntryType::Link] {
            let archive = hostile("files/passwd", kind, "/etc/passwd", b"");
            let e = unpack(&archive, dir.path()).unwrap_err();
            assert!(matches!(e, PackError::Kind { .. }), "{e}");
        }
        assert!(!dir.path().join("passwd").exists());
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        assert!(unpack(&[0xff; 1024], dir.path()).is_err());
    }
}
