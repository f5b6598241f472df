//! rsfm-harness: recipes → plan → content-addressed cache → scheduler → store, and the CLI.
//! Builds and tests without libtorch.

#![warn(clippy::unwrap_used, clippy::print_stdout, clippy::print_stderr)]

pub mod audit;
pub mod cache;
pub mod canonical;
#[allow(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "the command line: its output is what it prints"
)]
pub mod cli;
pub mod dataset_roots;
pub mod disk;
pub mod error;
pub mod executor;
pub mod export;
pub mod fingerprint;
pub mod lock;
pub mod param_count;
pub mod plan;
pub mod presets;
pub mod process;
pub mod query;
pub mod recipe;
pub mod report;
pub mod results_dir;
pub mod run;
pub mod scheduler;
pub mod servers;
pub mod session;
pub mod store;
pub mod suggest;
pub mod time;

#[cfg(test)]
mod layering {
    /// The command line sits on top: no module outside `cli/` imports it, so the plan, the
    /// scheduler, the store and the reports stay usable without it.
    #[test]
    fn nothing_outside_the_cli_imports_it() {
        // Spelled in two parts, so that this test does not find itself.
        let needle = ["crate", "::cli"].concat();
        fn visit(dir: &std::path::Path, needle: &str, found: &mut Vec<String>) {
            for entry in std::fs::read_dir(dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    if path.file_name().is_some_and(|n| n != "cli") {
                        visit(&path, needle, found);
                    }
                } else if path.extension().is_some_and(|e| e == "rs") {
                    let text = std::fs::read_to_string(&path).unwrap();
                    for (i, line) in text.lines().enumerate() {
                        if line.contains(needle) && !line.trim_start().starts_with("//") {
                            found.push(format!("{}:{}: {line}", path.display(), i + 1));
                        }
                    }
                }
            }
        }
        let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut found = Vec::new();
        visit(&src, &needle, &mut found);
        assert!(
            found.is_empty(),
            "imports of the CLI below it:\n{}",
            found.join("\n")
        );
    }
}
