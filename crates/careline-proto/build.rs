//! Compiles `proto/careline/v1/*.proto` with protox (pure Rust, no system protoc).

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Read when the script runs, not when it was compiled: worktrees sharing
    // one target directory share this build script.
    let manifest_dir = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let proto_root = PathBuf::from(manifest_dir).join("../../proto");
    let files = [
        "common",
        "events",
        "router",
        "presence",
        "notifications",
        "email",
        "chat",
        "audit",
        "survey",
        "console",
        "campaigns",
    ]
    .map(|name| proto_root.join(format!("careline/v1/{name}.proto")));
    for file in &files {
        println!("cargo:rerun-if-changed={}", file.display());
    }
    let descriptors = protox::compile(&files, [&proto_root])?;
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(
        out_dir.join("careline_descriptor.bin"),
        prost::Message::encode_to_vec(&descriptors),
    )?;
    tonic_prost_build::configure()
        // Sorted maps: a message encodes to the same bytes every time, which
        // request fingerprints (idempotency) rely on.
        .btree_map(".")
        .build_server(true)
        .build_client(true)
        .compile_fds(descriptors)?;
    Ok(())
}
