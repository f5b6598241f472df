//! Embeds the build identity of `rsfm` (build-support/identity.rs): `prepare` stages, which
//! `rsfm prepare` runs, are keyed on it.

include!("build-support/identity.rs");

/// What `rsfm` is compiled from (relative to the workspace root; its dependencies come from
/// `Cargo.lock`): its own crate, the harness with the schema and presets it embeds, the model
/// crate without `torch`.
const RSFM_SOURCES: [&str; 11] = [
    "src",
    "build.rs",
    "harness/src",
    "harness/migrations",
    "harness/Cargo.toml",
    "model/src",
    "model/build.rs",
    "model/Cargo.toml",
    "recipes/models",
    "Cargo.toml",
    "build-support",
];

fn main() {
    write_build_identity(std::path::Path::new("."), &RSFM_SOURCES, "rsfm");
}
