//! `rsfm weights import|export`: published checkpoints in and rsfm's out (docs/weights.md).
//! The `rsfm` binary has no libtorch, so it runs `rsfm-worker weights …` (found as stages find
//! it: `RSFM_WORKER`, beside `rsfm`, or on `PATH`) with the same arguments; the worker defines
//! them (`rsfm weights --help`). Its exit 2 (a file it cannot use) is bad input here too.

use std::io::Write as _;
use std::process::{Command, ExitCode, Stdio};

use anyhow::Context;
use clap::Args;

use super::BadInput;
use crate::executor::command_line::find_worker;

/// Arguments of `rsfm weights`.
#[derive(Debug, Clone, Args)]
#[command(disable_help_flag = true)]
pub struct WeightsArgs {
    /// `import FILE [--format auto|mae|timm|mmengine] --out FILE.safetensors [--grid H W]
    /// [--json]` or `export CHECKPOINT --format timm|mmengine --out FILE [--json]`; `--help`
    /// for the details.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, num_args = 0..)]
    pub args: Vec<String>,
}

/// Runs `rsfm-worker weights ARGS` (`--json` added when given globally), passing its output on.
pub fn run(args: &WeightsArgs, json: bool) -> anyhow::Result<ExitCode> {
    let worker = find_worker();
    let mut argv = args.args.clone();
    if json && !argv.iter().any(|a| a == "--json") && !argv.is_empty() {
        argv.push("--json".to_string());
    }
    let output = Command::new(&worker)
        .arg("weights")
        .args(&argv)
        .stdin(Stdio::null())
        .stderr(Stdio::piped())
        .stdout(Stdio::inherit())
        .output()
        .with_context(|| {
            format!(
                "cannot run the worker `{}`, which reads and writes checkpoints (it has libtorch)\nhelp: build it with `make worker`, or set RSFM_WORKER to its path",
                worker.display()
            )
        })?;
    let stderr = String::from_utf8_lossy(&output.stderr);
    let message = stderr.trim().trim_start_matches("error: ").to_string();
    match output.status.code() {
        Some(0) => {
            std::io::stderr().lock().write_all(&output.stderr)?;
            Ok(ExitCode::SUCCESS)
        }
        Some(2) => Err(BadInput::msg(message)),
        _ => anyhow::bail!(
            "`{} weights` failed ({}): {message}",
            worker.display(),
            output.status
        ),
    }
}
