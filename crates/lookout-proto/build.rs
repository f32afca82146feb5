fn main() -> Result<(), Box<dyn std::error::Error>> {
    // No system protoc needed: use the vendored binary.
    // SAFETY: build scripts are single-threaded.
    unsafe { std::env::set_var("PROTOC", protoc_bin_vendored::protoc_bin_path()?) };
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../proto");
    let files: Vec<_> = ["kv.proto", "admin.proto", "peer.proto", "screening.proto"]
        .iter()
        .map(|f| root.join("lookout/v1").join(f))
        .collect();
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR")?);
    tonic_prost_build::configure()
        .file_descriptor_set_path(out.join("lookout_descriptor.bin"))
        .compile_protos(&files, &[root.clone()])?;
    for f in &files {
        println!("cargo:rerun-if-changed={}", f.display());
    }
    Ok(())
}
