//! The Python with PyTorch that the tests comparing against PyTorch run: the project's torch venv
//! (`scripts/setup` installs it and exports `$SWEEP_TORCH_VENV`).

use std::path::{Path, PathBuf};
use std::process::Command;

/// What a test prints when it skips for want of PyTorch.
pub const NO_TORCH: &str = "skipped: no Python with torch ($SWEEP_TORCH_VENV, \
     $SWEEP_CACHE/torch-2.11.0 or ~/.cache/sweep/torch-2.11.0, python3 on PATH); \
     `source scripts/setup` installs it";

/// Where `scripts/setup` puts the project's torch venv when `$SWEEP_TORCH_VENV` is not set.
fn default_venv() -> Option<PathBuf> {
    let cache = std::env::var_os("SWEEP_CACHE")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cache/sweep")))?;
    Some(cache.join("torch-2.11.0"))
}

fn imports_torch(python: &Path) -> bool {
    Command::new(python)
        .args(["-c", "import torch"])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// A Python that imports torch: the project's venv first, then `python3` on the PATH; `None`
/// when there is none, and the caller skips with [`NO_TORCH`].
///
/// # Panics
/// When `$SWEEP_TORCH_VENV` is set (`scripts/setup` ran, as in CI) but its Python cannot import
/// torch: the comparison would otherwise pass by skipping where it was promised to run.
pub fn torch_python() -> Option<PathBuf> {
    if let Some(venv) = std::env::var_os("SWEEP_TORCH_VENV") {
        let python = Path::new(&venv).join("bin/python3");
        assert!(
            imports_torch(&python),
            "$SWEEP_TORCH_VENV is set but {} cannot import torch: rerun `source scripts/setup`",
            python.display()
        );
        return Some(python);
    }
    default_venv()
        .map(|venv| venv.join("bin/python3"))
        .into_iter()
        .chain([PathBuf::from("python3")])
        .find(|python| imports_torch(python))
}
