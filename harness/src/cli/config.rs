//! `rsfm config show RECIPE [--origin | --resolved] [--json]`.

use std::path::PathBuf;
use std::process::ExitCode;

use crate::plan::resolved::{self, ResolvedStage};
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
        /// Print every value each worker stage runs with (the recipe's, the model preset's,
        /// inferred ones and the schema defaults), each with its origin.
        #[arg(long, conflicts_with = "origin")]
        resolved: bool,
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
        resolved,
        set,
    } = command;
    let recipe = recipe::load_with(&path, &set)?;
    if resolved {
        let stages = resolved::resolve(&recipe)?;
        let text = if json {
            format!("{}\n", serde_json::to_string_pretty(&stages)?)
        } else {
            resolved_table(&stages)
        };
        print_quietly(&text)?;
        return Ok(ExitCode::SUCCESS);
    }
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

/// One aligned `key  value  origin` table per stage.
fn resolved_table(stages: &[ResolvedStage]) -> String {
    let mut out = String::new();
    for (i, stage) in stages.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        out.push_str(&format!("[stage.{}]  {}\n", stage.stage, stage.kind));
        let rows: Vec<(String, String, String)> = stage
            .values
            .iter()
            .map(|v| (v.key.clone(), v.value.to_string(), v.origin.to_string()))
            .collect();
        let key_width = rows.iter().map(|r| r.0.len()).max().unwrap_or(0);
        let value_width = rows
            .iter()
            .map(|r| r.1.len())
            .max()
            .unwrap_or(0)
            .min(MAX_ALIGNED_WIDTH);
        for (key, value, origin) in rows {
            out.push_str(&format!(
                "  {key:<key_width$}  {value:<value_width$}  {origin}\n"
            ));
        }
    }
    out
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
