//! `rsfm`: the command-line entry point. All logic lives in `rsfm-harness`.

/// The build identity (build-support/identity.rs), which keys `prepare` stages; read back from
/// this section of the running executable.
#[used]
#[link_section = ".rsfm_build_identity"]
static BUILD_IDENTITY: [u8; include_bytes!(concat!(env!("OUT_DIR"), "/build_identity.json"))
    .len()] = *include_bytes!(concat!(env!("OUT_DIR"), "/build_identity.json"));

fn main() -> std::process::ExitCode {
    // Referenced, so no linker drops the section.
    std::hint::black_box(&BUILD_IDENTITY);
    rsfm_harness::cli::main()
}
