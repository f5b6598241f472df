//! Embeds the build identity of `rsfm prepare` (build-support/identity.rs) in `rsfm`: `prepare`
//! stages, which `rsfm prepare` runs, are keyed on it.

include!("build-support/identity.rs");

/// What `rsfm prepare`, the code of `prepare` stages, is compiled from (relative to the
/// workspace root; its dependencies come from `Cargo.lock`): the model crate without `torch`,
/// which holds every prepare op, and the command that calls it. The rest of the harness (the
/// scheduler, reports, queries) is left out, so an edit there keeps every stage cached.
const PREPARE_SOURCES: [&str; 6] = [
    "model/src",
    "model/build.rs",
    "model/Cargo.toml",
    "harness/src/cli/prepare.rs",
    "src/main.rs",
    "build-support",
];

fn main() {
    write_build_identity(std::path::Path::new("."), &PREPARE_SOURCES, "rsfm-model");
}
