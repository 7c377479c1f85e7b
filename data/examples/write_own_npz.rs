//! Writes the small `.npz` of `examples/own-data.toml`, as `np.savez` would:
//! `cargo run -p sweep-data --example write_own_npz -- examples/own-data.npz`.
//!
//! 480 training and 120 test images, 12x12 grey (`uint8`), 4 classes named in `class_names`.
//! Synthetic: each class is a fixed random pattern, each image its pattern plus noise (the
//! fixtures' images), so a small CNN learns it in a few epochs.

use std::path::PathBuf;

use sweep_data::fixtures::{OwnNpz, write_own_npz};

fn main() -> std::io::Result<()> {
    let path = std::env::args_os()
        .nth(1)
        .map_or_else(|| PathBuf::from("examples/own-data.npz"), PathBuf::from);
    write_own_npz(&path, &OwnNpz::example())?;
    println!("wrote {}", path.display());
    Ok(())
}
