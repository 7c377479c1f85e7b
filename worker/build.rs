//! Links the worker so that it runs straight from `target/release/` with no extra environment:
//! an rpath to the libtorch folder that torch-sys found, and libtorch_cuda kept as a needed
//! library even though the worker calls none of its symbols directly (linkers that default to
//! `--as-needed` would drop it, and CUDA would then silently report unavailable).

use std::path::Path;

fn main() {
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
    let Ok(lib) = std::env::var("DEP_TCH_LIBTORCH_LIB") else {
        println!("cargo:warning=torch-sys did not report its libtorch folder; no rpath set");
        return;
    };
    println!("cargo:rustc-link-arg=-Wl,-rpath,{lib}");
    if Path::new(&lib).join("libtorch_cuda.so").exists() {
        println!("cargo:rustc-link-arg=-Wl,--no-as-needed,-ltorch_cuda,--as-needed");
    }
}
