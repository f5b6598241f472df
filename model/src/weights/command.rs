//! `rsfm-worker weights import|export`: the command line `rsfm weights` runs (the `rsfm`
//! binary has no libtorch). Returns the text to print; the worker prints it and exits 2 on an
//! error (a file it cannot use is bad input).

use std::path::PathBuf;

use clap::{Args, Subcommand, ValueEnum};

use super::export::{export, ExportFormat};
use super::import::{import, write_safetensors, ImportOptions};
use super::layout::Format;

/// `rsfm-worker weights`.
#[derive(Debug, Args)]
pub struct WeightsArgs {
    #[command(subcommand)]
    command: WeightsCommand,
}

#[derive(Debug, Subcommand)]
enum WeightsCommand {
    /// A published checkpoint (.pth or safetensors) as safetensors with rsfm's timm names.
    Import(ImportArgs),
    /// An rsfm checkpoint's ViT backbone in timm's or MMEngine's layout.
    Export(ExportArgs),
}

/// The layouts `import` reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum ImportFormat {
    /// From the file's top-level keys: `state_dict` → mmengine, `model` → mae, else timm.
    Auto,
    /// MAE's `{"model": state_dict}`: drops `decoder_*` and `mask_token`.
    Mae,
    /// A flat state dict.
    Timm,
    /// `{"state_dict": {"backbone.…"}, "meta"}`: keeps the backbone.
    Mmengine,
}

#[derive(Debug, Args)]
struct ImportArgs {
    /// The checkpoint to read.
    file: PathBuf,
    /// Its layout.
    #[arg(long, value_enum, default_value = "auto")]
    format: ImportFormat,
    /// The safetensors file to write.
    #[arg(long)]
    out: PathBuf,
    /// Resample `pos_embed` (bicubic) to this patch grid: rows, columns.
    #[arg(long, num_args = 2, value_names = ["H", "W"])]
    grid: Option<Vec<i64>>,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum ExportLayout {
    /// A flat state dict (safetensors, or .pth when FILE ends so).
    Timm,
    /// `{"state_dict": {"backbone.…"}, "meta"}` as .pth.
    Mmengine,
}

#[derive(Debug, Args)]
struct ExportArgs {
    /// An rsfm checkpoint (safetensors) or a stage's output folder holding one.
    checkpoint: PathBuf,
    /// The layout to write.
    #[arg(long, value_enum)]
    format: ExportLayout,
    /// The file to write.
    #[arg(long)]
    out: PathBuf,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

/// Runs `weights import|export`; the text to print on success.
pub fn run(args: &WeightsArgs) -> anyhow::Result<String> {
    match &args.command {
        WeightsCommand::Import(args) => {
            let options = ImportOptions {
                format: match args.format {
                    ImportFormat::Auto => None,
                    ImportFormat::Mae => Some(Format::Mae),
                    ImportFormat::Timm => Some(Format::Timm),
                    ImportFormat::Mmengine => Some(Format::Mmengine),
                },
                grid: args.grid.as_deref().map(|g| (g[0], g[1])),
            };
            let imported = import(&args.file, &options)?;
            write_safetensors(&imported, &args.out)?;
            Ok(if args.json {
                serde_json::to_string_pretty(&imported.report)? + "\n"
            } else {
                format!(
                    "{}\nwrote {}\n",
                    imported.report.summary(),
                    args.out.display()
                )
            })
        }
        WeightsCommand::Export(args) => {
            let format = match args.format {
                ExportLayout::Timm => ExportFormat::Timm,
                ExportLayout::Mmengine => ExportFormat::Mmengine,
            };
            let report = export(&args.checkpoint, format, &args.out)?;
            Ok(if args.json {
                serde_json::to_string_pretty(&report)? + "\n"
            } else {
                format!(
                    "wrote {} backbone tensors of {} to {} ({})\n",
                    report.tensors,
                    report.read.source,
                    report.out,
                    if format == ExportFormat::Timm {
                        "timm names"
                    } else {
                        "MMEngine: state_dict.backbone.<timm name>, meta"
                    }
                )
            })
        }
    }
}
