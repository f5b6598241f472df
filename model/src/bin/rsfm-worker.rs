//! `rsfm-worker`: runs one stage (see DESIGN.md, *Worker protocol*).

fn main() -> std::process::ExitCode {
    rsfm_model::worker::main()
}
