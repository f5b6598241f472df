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
    },
}

/// Runs `rsfm config`.
pub fn run(command: ConfigCommand, json: bool) -> anyhow::Result<ExitCode> {
    let ConfigCommand::Show {
        recipe: path,
        origin,
    } = command;
    let recipe = recipe::load(&path)?;
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
        println!("{}", serde_json::to_string_pretty(&values)?);
        return Ok(ExitCode::SUCCESS);
    }
    let width = recipe
        .origins
        .iter()
        .map(|o| o.key.len() + o.value.to_string().len() + 3)
        .max()
        .unwrap_or(0);
    for o in &recipe.origins {
        let assignment = format!("{} = {}", o.key, o.value);
        if origin {
            let source = o
                .source
                .as_deref()
                .map(|s| format!("  [{s}]"))
                .unwrap_or_default();
            println!("{assignment:<width$}  # {}{source}", o.location);
        } else {
            println!("{assignment}");
        }
    }
    Ok(ExitCode::SUCCESS)
}
