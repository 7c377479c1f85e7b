//! Generates the sweep.v1 messages and the tonic client and server from `proto/sweep/v1/*.proto`.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto");
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_protos(&["proto/sweep/v1/sweep.proto"], &["proto"])?;
    Ok(())
}
