//! Compiles `proto/` with protox (pure Rust: no system `protoc`), generates the tonic code and
//! the proto3 JSON mapping (pbjson), and writes the descriptor set that server reflection
//! serves.

use std::path::PathBuf;

use prost::Message;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto");
    let fds = protox::compile(["editgate/v1/editgate.proto"], ["proto"])?;
    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    let descriptors = fds.encode_to_vec();
    std::fs::write(out.join("editgate_descriptor.bin"), &descriptors)?;
    // The codec maps a request that does not decode to INVALID_ARGUMENT (see
    // `proto::WireCodec`). `google.protobuf.Timestamp` is pbjson's, which has the JSON
    // mapping (an RFC 3339 string).
    tonic_prost_build::configure()
        .codec_path("crate::proto::WireCodec")
        .extern_path(".google.protobuf.Timestamp", "::pbjson_types::Timestamp")
        .compile_fds(fds)?;
    // The one JSON mapping of the HTTP API and the console: proto3 JSON, generated from the
    // same descriptors. Answers carry every field (`emit_fields`), so a client never has to
    // know a field's default; unknown request fields are an error.
    pbjson_build::Builder::new()
        .register_descriptors(&descriptors)?
        .emit_fields()
        .build(&[".editgate.v1"])?;
    Ok(())
}
