//! `rsfm config show RECIPE [--origin] [--json]`.

use std::path::PathBuf;
use std::process::ExitCode;

use crate::recipe;

/// Subcommands of `rsfm config`.
#[derive(Debug, clap::Subcommand)]
pub enum ConfigCommand {
    /// Print the resolved recipe.
    Show {
        /// Recipe file.
        recipe: PathBuf,
        /// Print each resolved value with the file:line it came from (and its source).
        #[arg(long)]
        origin: bool,
        /// Override a recipe value: `stage.NAME.KEY=VALUE` (repeatable; VALUE is TOML; its
        /// origin reads `cli`).
        #[arg(long = "set", value_name = "KEY=VALUE")]
        set: Vec<recipe::Override>,
    },
}

/// Runs `rsfm config`.
pub fn run(command: ConfigCommand, json: bool) -> anyhow::Result<ExitCode> {
    let ConfigCommand::Show {
        recipe: path,
        origin,
        set,
    } = command;
    let recipe = recipe::load_with(&path, &set)?;
    if json {
        let values: Vec<_> = recipe
            .origins
            .iter()
            .map(|o| {
                serde_json::json!({
                    "key": o.key,
                    "value": o.value,
                    "source": o.source,
                    "origin": o.location.to_string(),
                })
            })
            .collect();
        print_quietly(&format!("{}\n", serde_json::to_string_pretty(&values)?))?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut out = String::new();
    let width = recipe
        .origins
        .iter()
        .map(|o| o.key.len() + o.value.to_string().len() + 3)
        .max()
        .unwrap_or(0)
        .min(MAX_ALIGNED_WIDTH);
    for o in &recipe.origins {
        let assignment = format!("{} = {}", o.key, o.value);
        if origin {
            let source = o
                .source
                .as_deref()
                .map(|s| format!("  [{s}]"))
                .unwrap_or_default();
            out.push_str(&format!("{assignment:<width$}  # {}{source}\n", o.location));
        } else {
            out.push_str(&format!("{assignment}\n"));
        }
    }
    print_quietly(&out)?;
    Ok(ExitCode::SUCCESS)
}

/// Assignments longer than this are not padded to align their origin comments (and a format
/// width stays far below its limit of 65,535).
const MAX_ALIGNED_WIDTH: usize = 100;

/// Writes `text` to stdout; a reader that stops early (`| head -1`) ends the output quietly.
fn print_quietly(text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        Err(err) if err.kind() != std::io::ErrorKind::BrokenPipe => Err(err.into()),
        _ => Ok(()),
    }
}
