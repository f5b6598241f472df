//! `rsfm-worker`: runs one stage (see DESIGN.md, *Worker protocol*).

/// The build identity (build-support/identity.rs), which the harness reads from this section to
/// key worker stages on what the worker is compiled from rather than on its bytes.
#[used]
#[link_section = ".rsfm_build_identity"]
static BUILD_IDENTITY: [u8; include_bytes!(concat!(env!("OUT_DIR"), "/build_identity.json"))
    .len()] = *include_bytes!(concat!(env!("OUT_DIR"), "/build_identity.json"));

fn main() -> std::process::ExitCode {
    // Referenced, so no linker drops the section.
    std::hint::black_box(&BUILD_IDENTITY);
    rsfm_model::worker::main()
}
