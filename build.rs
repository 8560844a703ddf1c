//! Compiles `proto/` with protox (pure Rust: no system `protoc`), generates the tonic code,
//! and writes the descriptor set that server reflection serves.

use std::path::PathBuf;

use prost::Message;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto");
    let fds = protox::compile(["editgate/v1/editgate.proto"], ["proto"])?;
    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(out.join("editgate_descriptor.bin"), fds.encode_to_vec())?;
    // The codec maps a request that does not decode to INVALID_ARGUMENT (see
    // `server::proto::WireCodec`).
    tonic_prost_build::configure()
        .codec_path("crate::server::proto::WireCodec")
        .compile_fds(fds)?;
    Ok(())
}
