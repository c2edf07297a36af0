//! Compiles `proto/credit/v1/*.proto` with protox (a pure-Rust protobuf compiler), so a fresh
//! machine builds without a system `protoc`, and keeps the descriptor set for reflection.

use std::path::{Path, PathBuf};

use prost::Message;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let proto_root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../proto");
    let package_dir = proto_root.join("credit/v1");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&package_dir)?
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .filter(|path| {
            path.extension()
                .is_some_and(|extension| extension == "proto")
        })
        .collect();
    files.sort();

    println!("cargo:rerun-if-changed={}", package_dir.display());
    for file in &files {
        println!("cargo:rerun-if-changed={}", file.display());
    }

    let descriptors = protox::compile(&files, [&proto_root])?;
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(
        out_dir.join("credit_descriptor.bin"),
        descriptors.encode_to_vec(),
    )?;

    tonic_prost_build::configure()
        // An RPC whose issue has not landed answers UNIMPLEMENTED instead of failing the build.
        .generate_default_stubs(true)
        // Maps as BTreeMap: encoded in key order, so the same request always has the same
        // bytes (idempotency fingerprints hash them) and iterating one is deterministic.
        .btree_map(".")
        // Messages that carry personal data get a hand-written Debug that redacts it
        // (src/redacted.rs), so a `{:?}` can never put it in a log.
        .skip_debug(["credit.v1.IndividualDetails", "credit.v1.Contact"])
        .compile_fds(descriptors)?;
    Ok(())
}
