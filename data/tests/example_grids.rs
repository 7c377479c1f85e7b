//! The example grids on a user's own `.npz` (the ones `common`'s `every_example_grid_loads`
//! leaves out, as it cannot read data files) load as the coordinator loads them, and the
//! committed `examples/own-data.npz` is what its generator writes.

use std::path::Path;

use sweep_common::grid::Grid;
use sweep_data::fixtures::{OwnNpz, write_own_npz};
use sweep_data::npz::{GridReader, sha256};

#[test]
fn the_own_data_example_loads_and_is_reproducible() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let grid = Grid::from_file_with(&root.join("examples/own-data.toml"), &GridReader)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(grid.len(), 4);
    let d = grid.experiments[0].dataset;
    assert_eq!(d.name(), "own-data.npz");
    assert_eq!(d.class_names(), &["alpha", "beta", "gamma", "delta"]);
    assert_eq!(d.image_shape(), [1, 12, 12]);
    assert_eq!(d.official_train_len(), 600);

    // examples/own-data.npz is what `--example write_own_npz` writes (keep them in step).
    let dir = tempfile::tempdir().unwrap();
    let again = dir.path().join("own-data.npz");
    write_own_npz(&again, &OwnNpz::example()).unwrap();
    assert_eq!(sha256(&again).unwrap(), d.own().unwrap().facts().sha256);
}
