//! `weights export`: an rsfm checkpoint's ViT backbone in the layouts other tools load: timm (a
//! flat state dict, safetensors or `.pth`) and MMEngine (`{"state_dict": {"backbone.…"},
//! "meta"}` as a `.pth`, written by libtorch's pickler).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::import::{import, ImportOptions, ImportReport};
use super::pth::{write_pth, PthLayout};
use crate::nn::checkpoint;
use crate::train::mae_pretrain::CHECKPOINT_FILE;

/// The layouts `export` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ExportFormat {
    /// timm's flat state dict: safetensors, or `.pth` when the output name ends so.
    Timm,
    /// MMEngine's checkpoint: `.pth` holding `{"state_dict": {"backbone.<timm name>": …},
    /// "meta": {…}}`.
    Mmengine,
}

/// What an export read and wrote (`--json` prints it).
#[derive(Debug, Clone, Serialize)]
pub struct ExportReport {
    /// The file written.
    pub out: String,
    /// Its layout.
    pub format: ExportFormat,
    /// Tensors written.
    pub tensors: usize,
    /// What reading the rsfm checkpoint found (its decoder, neck and heads are not exported).
    pub read: ImportReport,
}

/// The checkpoint file of `path`: itself, or `checkpoint.safetensors` in a stage's output
/// folder (a cache entry).
pub fn checkpoint_file(path: &Path) -> PathBuf {
    if path.is_dir() {
        path.join(CHECKPOINT_FILE)
    } else {
        path.to_path_buf()
    }
}

/// Writes the ViT backbone of the rsfm checkpoint at `checkpoint` (a file or a stage's output
/// folder) to `out` in `format`.
pub fn export(checkpoint: &Path, format: ExportFormat, out: &Path) -> anyhow::Result<ExportReport> {
    let file = checkpoint_file(checkpoint);
    let imported = import(&file, &ImportOptions::default())?;
    let pth = out
        .extension()
        .is_some_and(|ext| ext == "pth" || ext == "pt");
    match format {
        ExportFormat::Timm if pth => write_pth(out, PthLayout::Flat, &imported.tensors)?,
        ExportFormat::Timm => checkpoint::save_tensors(&imported.tensors, out)?,
        ExportFormat::Mmengine => {
            anyhow::ensure!(
                pth,
                "{}: an MMEngine checkpoint is a `.pth` file: name the output FILE.pth",
                out.display()
            );
            let backbone: BTreeMap<String, tch::Tensor> = imported
                .tensors
                .iter()
                .map(|(name, t)| (format!("backbone.{name}"), t.shallow_clone()))
                .collect();
            let meta = [
                (
                    "rsfm_version".to_string(),
                    env!("CARGO_PKG_VERSION").to_string(),
                ),
                ("rsfm_source".to_string(), file.display().to_string()),
                ("backbone_names".to_string(), "timm".to_string()),
            ];
            write_pth(
                out,
                PthLayout::Grouped {
                    group: "state_dict",
                    meta: &meta,
                },
                &backbone,
            )?;
        }
    }
    Ok(ExportReport {
        out: out.display().to_string(),
        format,
        tensors: imported.tensors.len(),
        read: imported.report,
    })
}
