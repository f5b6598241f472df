//! Embeds the build identity of `rsfm` (build-support/identity.rs): `prepare` stages, which
//! `rsfm prepare` runs, are keyed on it.

include!("build-support/identity.rs");

/// What `rsfm` is compiled from (relative to the workspace root): its own crate, the harness,
/// the model crate without `torch`, the presets the harness embeds.
const RSFM_SOURCES: [&str; 12] = [
    "src",
    "build.rs",
    "harness/src",
    "harness/Cargo.toml",
    "model/src",
    "model/csrc",
    "model/build.rs",
    "model/Cargo.toml",
    "recipes/models",
    "Cargo.toml",
    "Cargo.lock",
    "build-support",
];

fn main() {
    write_build_identity(std::path::Path::new("."), &RSFM_SOURCES);
}
