//! Writes datasets in the official file formats (learnable synthetic images) for benchmarks and
//! GPU checks on machines without the real data:
//!
//!     write_fixtures DIR cifar10-bin 10000      # DIR/cifar-10-batches-bin, 5 x 10000 images
//!     write_fixtures DIR fashion-mnist 60000    # DIR/train-images-idx3-ubyte.gz, ...

use std::path::Path;

use anyhow::{Context, bail};
use sweep_data::fixtures;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let [_, dir, kind, n] = args.as_slice() else {
        bail!("usage: write_fixtures DIR (cifar10-bin|cifar10-py|fashion-mnist) N");
    };
    let n: usize = n.parse().context("N must be a number")?;
    let dir = Path::new(dir);
    std::fs::create_dir_all(dir)?;
    let set = match kind.as_str() {
        "cifar10-bin" => fixtures::write_cifar10_bin(dir, n, 1)?,
        "cifar10-py" => fixtures::write_cifar10_py(dir, n, 1)?,
        "fashion-mnist" => fixtures::write_fashion_mnist(dir, n, 1)?,
        other => bail!("unknown kind {other:?}"),
    };
    println!("wrote {} {kind} images into {}", set.len(), dir.display());
    Ok(())
}
