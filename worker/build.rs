//! Links the worker so that it runs straight from `target/release/` with no extra environment:
//! an rpath to the libtorch folder that torch-sys found, and libtorch_cuda kept as a needed
//! library even though the worker calls none of its symbols directly (linkers that default to
//! `--as-needed` would drop it, and CUDA would then silently report unavailable).
//!
//! Also compiles `csrc/cuda_stream.cpp` against libtorch's headers (per-trial CUDA streams,
//! which tch does not expose), as torch-sys compiles its own C++ shim.

use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
    println!("cargo:rerun-if-env-changed=LIBTORCH_CXX11_ABI");
    println!("cargo:rerun-if-changed=csrc/cuda_stream.cpp");
    println!("cargo::rustc-check-cfg=cfg(sweep_cuda_streams)");
    let Ok(lib) = std::env::var("DEP_TCH_LIBTORCH_LIB") else {
        println!("cargo:warning=torch-sys did not report its libtorch folder; no rpath set");
        return;
    };
    let lib = PathBuf::from(lib);
    println!("cargo:rustc-link-arg=-Wl,-rpath,{}", lib.display());
    if lib.join("libtorch_cuda.so").exists() {
        println!("cargo:rustc-link-arg=-Wl,--no-as-needed,-ltorch_cuda,--as-needed");
    }
    let include = lib.join("../include");
    if !include
        .join("c10/core/impl/DeviceGuardImplInterface.h")
        .exists()
    {
        println!(
            "cargo:warning=libtorch's headers are not in {}: trials on one GPU will share its \
             default stream",
            include.display()
        );
        return;
    }
    // The C++ ABI libtorch was built with; torch-sys reads the same variable (default 1).
    let abi = std::env::var("LIBTORCH_CXX11_ABI").unwrap_or_else(|_| "1".to_owned());
    cc::Build::new()
        .cpp(true)
        .pic(true)
        .warnings(false)
        .include(&include)
        .flag("-std=c++17")
        .flag(format!("-D_GLIBCXX_USE_CXX11_ABI={abi}"))
        .file("csrc/cuda_stream.cpp")
        .compile("sweep_cuda_stream");
    println!("cargo:rustc-link-lib=c10");
    println!("cargo:rustc-cfg=sweep_cuda_streams");
}
