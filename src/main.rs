//! `rsfm`: the command-line entry point. All logic lives in `rsfm-harness`.

fn main() -> std::process::ExitCode {
    rsfm_harness::cli::main()
}
