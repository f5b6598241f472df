//! `weights import`: a published checkpoint (`.pth` or safetensors) as a safetensors file of the
//! backbone in the timm names rsfm's ViT uses, with the ViT's shape read from the tensors, a
//! report of what was left out, and a failure naming the backbone tensors the file lacks.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Context;
use serde::Serialize;
use tch::nn::VarStore;
use tch::{Device, Tensor};

use super::layout::{state_dict, Format, StateDict};
use super::pth::{is_zip, read_pth, Leaf};
use crate::arch::VitConfig;
use crate::nn::checkpoint;
use crate::nn::pos_embed::resample_patch_grid;
use crate::nn::vit::{PosEmbed, VisionTransformer};

/// Names shown in an error.
const SHOWN: usize = 5;

/// What `import` is asked for.
#[derive(Debug, Clone, Copy, Default)]
pub struct ImportOptions {
    /// The layout; `None` detects it from the file's top-level keys.
    pub format: Option<Format>,
    /// The patch grid (rows, columns) to resample `pos_embed` to (bicubic, as MAE's
    /// `interpolate_pos_embed`); `None` keeps the file's.
    pub grid: Option<(i64, i64)>,
}

/// The ViT a checkpoint holds, read from its tensors' names and shapes.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Architecture {
    /// Token width.
    pub embed_dim: i64,
    /// Sequential stages.
    pub depth: i64,
    /// Parallel branches per stage.
    pub parallel: i64,
    /// Patch side in pixels.
    pub patch_size: i64,
    /// Input channels.
    pub in_chans: i64,
    /// MLP hidden width.
    pub mlp_hidden: i64,
    /// Whether the qkv projections have biases.
    pub qkv_bias: bool,
    /// Patch grid of the file's position table (rows, columns).
    pub grid: (i64, i64),
}

/// What an import read, wrote and left out (`--json` prints it).
#[derive(Debug, Clone, Serialize)]
pub struct ImportReport {
    /// The file read.
    pub source: String,
    /// Its layout (given or detected).
    pub format: Format,
    /// Whether the layout was detected (`--format auto`).
    pub detected: bool,
    /// The backbone's shape.
    pub architecture: Architecture,
    /// Backbone tensors kept, in timm names.
    pub tensors: usize,
    /// MAE's decoder and mask token, as named in the file: a fine-tuning start drops them.
    pub dropped: Vec<String>,
    /// Tensors the ViT has no place for (outside the backbone, or unknown names), as named
    /// after prefixes are stripped (or in the file, for MMEngine's neck and heads).
    pub unexpected: Vec<String>,
    /// Plain values beside the state dict that were left out (`meta.*`, `epoch`), with kinds.
    pub skipped: Vec<String>,
    /// `pos_embed`'s grid after resampling, when `--grid` changed it.
    pub resampled_to: Option<(i64, i64)>,
}

impl ImportReport {
    /// One line for logs.
    pub fn summary(&self) -> String {
        let first = super::first_names;
        let a = &self.architecture;
        let mut line = format!(
            "{} ({}{}): a ViT of width {}, {} stage{} × {} branch{}, patch {}, grid {}×{}; {} \
             backbone tensors in timm names; {} dropped (MAE's decoder and mask token{}{}); {} \
             unexpected{}{}; {} plain values skipped{}{}",
            self.source,
            serde_json::to_value(self.format)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default(),
            if self.detected { ", detected" } else { "" },
            a.embed_dim,
            a.depth,
            if a.depth == 1 { "" } else { "s" },
            a.parallel,
            if a.parallel == 1 { "" } else { "es" },
            a.patch_size,
            a.grid.0,
            a.grid.1,
            self.tensors,
            self.dropped.len(),
            if self.dropped.is_empty() { "" } else { ": " },
            first(&self.dropped),
            self.unexpected.len(),
            if self.unexpected.is_empty() { "" } else { ": " },
            first(&self.unexpected),
            self.skipped.len(),
            if self.skipped.is_empty() { "" } else { ": " },
            first(&self.skipped),
        );
        if let Some((h, w)) = self.resampled_to {
            line.push_str(&format!("; pos_embed resampled to {h}×{w}"));
        }
        line
    }
}

/// A checkpoint's backbone in timm names, and the report.
#[derive(Debug)]
pub struct Imported {
    /// Tensors by timm name, exactly the ViT's.
    pub tensors: BTreeMap<String, Tensor>,
    /// What was read and left out.
    pub report: ImportReport,
}

/// Every leaf of `file`: a `torch.save` zip through libtorch's unpickler, else safetensors.
pub fn read_leaves(file: &Path) -> anyhow::Result<Vec<(String, Leaf)>> {
    if is_zip(file)? {
        return read_pth(file);
    }
    let tensors = Tensor::read_safetensors(file).with_context(|| {
        format!(
            "{}: neither a PyTorch checkpoint in the zip format (`torch.save` of PyTorch ≥ 1.6; \
             re-save older files with a current PyTorch) nor a safetensors file",
            file.display()
        )
    })?;
    Ok(tensors
        .into_iter()
        .map(|(name, t)| (name, Leaf::Tensor(t)))
        .collect())
}

/// Reads `file` and returns its ViT backbone in timm names; fails naming the backbone tensors
/// it lacks, a tensor whose shape does not fit, or any entry that is not a tensor or a plain value.
pub fn import(file: &Path, options: &ImportOptions) -> anyhow::Result<Imported> {
    let leaves = read_leaves(file)?;
    let format = options.format.unwrap_or_else(|| Format::detect(&leaves));
    let StateDict {
        tensors,
        dropped,
        outside,
        skipped,
    } = state_dict(file, leaves, format)?;
    let architecture = architecture(file, &tensors)?;
    let expected = expected_names(&architecture)?;
    let missing: Vec<&String> = expected
        .iter()
        .filter(|name| !tensors.contains_key(*name))
        .collect();
    if !missing.is_empty() {
        let shown: Vec<&str> = missing.iter().take(SHOWN).map(|s| s.as_str()).collect();
        anyhow::bail!(
            "{}: the checkpoint lacks {} of the {} tensors of its ViT (width {}, {} stages; first: {}). \
             Check --format ({} read here), or that the file holds the backbone",
            file.display(),
            missing.len(),
            expected.len(),
            architecture.embed_dim,
            architecture.depth,
            shown.join(", "),
            serde_json::to_value(format)?.as_str().unwrap_or_default()
        );
    }
    let mut kept = BTreeMap::new();
    let mut unexpected = Vec::new();
    for (name, tensor) in tensors {
        if expected.binary_search(&name).is_ok() {
            kept.insert(name, tensor);
        } else {
            unexpected.push(name);
        }
    }
    unexpected.extend(outside);
    let mut resampled_to = None;
    if let Some((h, w)) = options.grid {
        anyhow::ensure!(
            h > 0 && w > 0,
            "--grid {h} {w}: both sides must be positive"
        );
        if (h, w) != architecture.grid {
            let pos = &kept["pos_embed"];
            let prefix = i64::from(kept.contains_key("cls_token"));
            let grid = resample_patch_grid(&pos.to_kind(tch::Kind::Float), prefix, h, w)
                .to_kind(pos.kind());
            let table = if prefix == 1 {
                Tensor::cat(&[pos.narrow(1, 0, 1), grid], 1)
            } else {
                grid
            };
            kept.insert("pos_embed".to_string(), table);
            resampled_to = Some((h, w));
        }
    }
    let report = ImportReport {
        source: file.display().to_string(),
        format,
        detected: options.format.is_none(),
        architecture,
        tensors: kept.len(),
        dropped,
        unexpected,
        skipped,
        resampled_to,
    };
    Ok(Imported {
        tensors: kept,
        report,
    })
}

/// The ViT the tensors describe: width and patch from `patch_embed.proj.weight`, stages and
/// branches from the `blocks.*` names, the grid from `pos_embed`.
fn architecture(file: &Path, tensors: &BTreeMap<String, Tensor>) -> anyhow::Result<Architecture> {
    let Some(patch) = tensors.get("patch_embed.proj.weight") else {
        let shown: Vec<&str> = tensors.keys().take(SHOWN).map(String::as_str).collect();
        anyhow::bail!(
            "{}: no ViT patch embedding (`patch_embed.proj.weight`) among its {} backbone tensors \
             ({}); rsfm reads ViTs in timm names (`blocks.0.attn.qkv.weight`, ...), optionally under \
             `module.`, `encoder.` or `backbone.`",
            file.display(),
            tensors.len(),
            if shown.is_empty() { "none".to_string() } else { format!("first: {}", shown.join(", ")) }
        );
    };
    let size = patch.size();
    anyhow::ensure!(
        size.len() == 4,
        "{}: `patch_embed.proj.weight` is not a 4-D convolution weight: {size:?}",
        file.display()
    );
    let (embed_dim, in_chans, patch_size) = (size[0], size[1], size[2]);
    let index = |name: &str, prefix: &str| -> Option<i64> {
        name.strip_prefix(prefix)?.split('.').next()?.parse().ok()
    };
    let depth = tensors
        .keys()
        .filter_map(|n| index(n, "blocks."))
        .max()
        .map_or(0, |d| d + 1);
    anyhow::ensure!(
        depth > 0,
        "{}: no transformer blocks (`blocks.N.*`) among its backbone tensors",
        file.display()
    );
    let parallel = tensors
        .keys()
        .filter_map(|n| index(n, "blocks.0.attns."))
        .max()
        .map_or(1, |p| p + 1);
    let branch = if parallel > 1 {
        "blocks.0.ffns.0.mlp"
    } else {
        "blocks.0.mlp"
    };
    let mlp_hidden = tensors
        .get(&format!("{branch}.fc1.weight"))
        .map_or(4 * embed_dim, |fc1| fc1.size()[0]);
    let qkv_bias = tensors.contains_key(if parallel > 1 {
        "blocks.0.attns.0.attn.qkv.bias"
    } else {
        "blocks.0.attn.qkv.bias"
    });
    let prefix = i64::from(tensors.contains_key("cls_token"));
    let grid = match tensors.get("pos_embed").map(Tensor::size) {
        Some(pos) if pos.len() == 3 => {
            let patches = pos[1] - prefix;
            let side = (patches.max(0) as f64).sqrt().round() as i64;
            anyhow::ensure!(
                side * side == patches,
                "{}: `pos_embed` has {} patch rows, not a square grid",
                file.display(),
                patches
            );
            (side, side)
        }
        Some(pos) => anyhow::bail!(
            "{}: `pos_embed` is not [1, tokens, width]: {pos:?}",
            file.display()
        ),
        None => (1, 1),
    };
    Ok(Architecture {
        embed_dim,
        depth,
        parallel,
        patch_size,
        in_chans,
        mlp_hidden,
        qkv_bias,
        grid,
    })
}

/// Every tensor name of rsfm's ViT with the stages, branches and biases of `arch` (built at
/// width 2 on a one-patch grid: the names do not depend on the sizes, and a billion-parameter
/// model is not allocated to learn them).
fn expected_names(arch: &Architecture) -> anyhow::Result<Vec<String>> {
    let as_usize = |v: i64| usize::try_from(v).context("a negative size");
    let config = VitConfig {
        patch_size: 1,
        image_size: 1,
        in_chans: 1,
        embed_dim: 2,
        depth: as_usize(arch.depth)?,
        parallel: as_usize(arch.parallel)?,
        num_heads: 1,
        mlp_ratio: 1.0,
        qkv_bias: arch.qkv_bias,
        drop_path: 0.0,
    };
    let vs = VarStore::new(Device::Cpu);
    let _vit = VisionTransformer::new(&vs.root(), &config, PosEmbed::Learned);
    let mut names: Vec<String> = vs.variables().into_keys().collect();
    names.sort();
    Ok(names)
}

/// Writes the imported backbone to `out` as safetensors (atomically; nothing non-finite).
pub fn write_safetensors(imported: &Imported, out: &Path) -> anyhow::Result<()> {
    checkpoint::save_tensors(&imported.tensors, out)
}
