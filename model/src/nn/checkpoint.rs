//! Model checkpoints as safetensors with timm/MAE parameter names, and loading that reports
//! what did not match.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use anyhow::Context;
use tch::nn::VarStore;
use tch::Tensor;

use super::pos_embed::resample_patch_grid;

/// What a load matched and what it did not.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoadReport {
    /// Model variables set from the file.
    pub loaded: usize,
    /// Model variables the file does not have (left as initialised).
    pub missing: Vec<String>,
    /// File tensors the model has no variable for (ignored).
    pub unexpected: Vec<String>,
    /// Position tables resampled to the model's patch grid.
    pub resampled: Vec<String>,
}

impl LoadReport {
    /// One line for logs: counts and the first names of each list.
    pub fn summary(&self) -> String {
        let head = |names: &[String]| names.iter().take(5).cloned().collect::<Vec<_>>().join(", ");
        format!(
            "{} missing [{}], {} unexpected [{}], {} resampled [{}]",
            self.missing.len(),
            head(&self.missing),
            self.unexpected.len(),
            head(&self.unexpected),
            self.resampled.len(),
            head(&self.resampled)
        )
    }
}

/// Writes every variable of `vs` (trainable or frozen) to a safetensors file, atomically.
pub fn save(vs: &VarStore, path: &Path) -> anyhow::Result<()> {
    let named: BTreeMap<String, Tensor> = vs.variables().into_iter().collect();
    save_tensors(&named, path)
}

/// Writes named tensors to a safetensors file through a temporary file renamed into place.
/// Refuses, writing nothing, when any floating-point tensor (a weight, a buffer such as a
/// batch norm's running variance, an optimiser moment) holds a NaN or an infinity, and names
/// the first such tensor: nothing non-finite is ever saved.
pub fn save_tensors(named: &BTreeMap<String, Tensor>, path: &Path) -> anyhow::Result<()> {
    if let Some((name, bad)) = first_non_finite(named) {
        anyhow::bail!(
            "not writing {}: `{name}` holds {bad} non-finite value{} (NaN or infinity); the training diverged or a statistic was undefined",
            path.display(),
            if bad == 1 { "" } else { "s" }
        );
    }
    let tmp = path.with_extension("safetensors.tmp");
    let list: Vec<(&str, Tensor)> = named
        .iter()
        .map(|(k, v)| (k.as_str(), v.to_device(tch::Device::Cpu).contiguous()))
        .collect();
    Tensor::write_safetensors(&list, &tmp)
        .with_context(|| format!("cannot write checkpoint {}", tmp.display()))?;
    fs_err::rename(&tmp, path)?;
    Ok(())
}

/// The first tensor (in name order) with NaN or infinite elements, and how many it has.
pub fn first_non_finite(named: &BTreeMap<String, Tensor>) -> Option<(String, i64)> {
    named.iter().find_map(|(name, t)| {
        if !t.is_floating_point() {
            return None;
        }
        let bad = t
            .isfinite()
            .logical_not()
            .sum(tch::Kind::Int64)
            .int64_value(&[]);
        (bad > 0).then(|| (name.clone(), bad))
    })
}

/// Reads all tensors of a safetensors file.
pub fn read_tensors(path: &Path) -> anyhow::Result<HashMap<String, Tensor>> {
    let tensors = Tensor::read_safetensors(path).with_context(|| {
        format!(
            "cannot read checkpoint {}: not a safetensors file?",
            path.display()
        )
    })?;
    Ok(tensors.into_iter().collect())
}

/// Loads matching tensors of `path` into `vs`. Tensors are matched by name; a position
/// table (`*pos_embed`) whose patch grid differs is resampled bicubically; any other shape
/// mismatch is an error naming the key.
pub fn load(vs: &VarStore, path: &Path) -> anyhow::Result<LoadReport> {
    let file = read_tensors(path)?;
    load_from(vs, file).with_context(|| format!("loading checkpoint {}", path.display()))
}

/// [`load`] from tensors already in memory.
pub fn load_from(vs: &VarStore, file: HashMap<String, Tensor>) -> anyhow::Result<LoadReport> {
    let mut report = LoadReport::default();
    let mut variables = vs.variables();
    let mut names: Vec<String> = variables.keys().cloned().collect();
    names.sort();
    for name in names {
        let var = variables.get_mut(&name).expect("name comes from the map");
        let Some(src) = file.get(&name) else {
            report.missing.push(name);
            continue;
        };
        let src = if src.size() != var.size() && name.ends_with("pos_embed") {
            report.resampled.push(name.clone());
            resample_pos_table(src, &var.size())
                .with_context(|| format!("`{name}`: cannot resample"))?
        } else if src.size() != var.size() && is_rel_pos_table(&name) {
            report.resampled.push(name.clone());
            resample_rel_pos_table(src, &var.size())
                .with_context(|| format!("`{name}`: cannot resample"))?
        } else {
            src.shallow_clone()
        };
        anyhow::ensure!(
            !src.is_floating_point() || src.isfinite().all().int64_value(&[]) == 1,
            "`{name}` holds NaN or infinite values in the checkpoint: refusing to start from it"
        );
        anyhow::ensure!(
            src.size() == var.size(),
            "`{name}` has shape {:?} in the checkpoint but {:?} in the model",
            src.size(),
            var.size()
        );
        tch::no_grad(|| var.copy_(&src.to_kind(var.kind()).to_device(var.device())));
        report.loaded += 1;
    }
    let mut unexpected: Vec<String> = file
        .keys()
        .filter(|k| !variables.contains_key(*k))
        .cloned()
        .collect();
    unexpected.sort();
    report.unexpected = unexpected;
    Ok(report)
}

/// The same tensors with `prefix` put before every name (e.g. an MAE encoder's `blocks.0...`
/// as a segmenter's `backbone.blocks.0...`).
pub fn with_prefix(tensors: HashMap<String, Tensor>, prefix: &str) -> HashMap<String, Tensor> {
    tensors
        .into_iter()
        .map(|(k, v)| (format!("{prefix}{k}"), v))
        .collect()
}

/// Resamples a `[1, 1 + g², dim]` table to the square grid of `target` (`[1, 1 + h², dim]`
/// keeps the class row; `[1, h², dim]` drops it).
/// Whether `name` is a relative position table (`…attn.rel_pos_h` / `rel_pos_w`).
fn is_rel_pos_table(name: &str) -> bool {
    name.ends_with("rel_pos_h") || name.ends_with("rel_pos_w")
}

/// A relative position table `[2·s − 1, head_dim]` linearly resampled along its offsets to
/// `target`'s length (ViTDet's interpolation when the grid changes).
fn resample_rel_pos_table(src: &Tensor, target: &[i64]) -> anyhow::Result<Tensor> {
    let (_, dim) = src.size2().context("relative position table is not 2-D")?;
    anyhow::ensure!(
        target.len() == 2 && target[1] == dim,
        "head widths differ: {:?} vs {:?}",
        src.size(),
        target
    );
    Ok(src
        .to_kind(tch::Kind::Float)
        .transpose(0, 1)
        .unsqueeze(0)
        .upsample_linear1d([target[0]], false, None)
        .squeeze_dim(0)
        .transpose(0, 1))
}

fn resample_pos_table(src: &Tensor, target: &[i64]) -> anyhow::Result<Tensor> {
    let (_, n, dim) = src.size3().context("position table is not 3-D")?;
    anyhow::ensure!(
        target.len() == 3 && target[2] == dim,
        "widths differ: {:?} vs {:?}",
        src.size(),
        target
    );
    let src_prefix = if is_square(n - 1) { 1 } else { 0 };
    anyhow::ensure!(
        is_square(n - src_prefix),
        "{n} tokens are not a square grid"
    );
    let (target_prefix, target_patches) = if is_square(target[1] - 1) {
        (1, target[1] - 1)
    } else {
        (0, target[1])
    };
    anyhow::ensure!(
        is_square(target_patches),
        "target of {} tokens is not a square grid",
        target[1]
    );
    let side = (target_patches as f64).sqrt().round() as i64;
    let grid = resample_patch_grid(src, src_prefix, side, side);
    Ok(if target_prefix == 1 {
        Tensor::cat(&[src.narrow(1, 0, 1), grid], 1)
    } else {
        grid
    })
}

fn is_square(n: i64) -> bool {
    let r = (n.max(0) as f64).sqrt().round() as i64;
    r * r == n
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arch::VitConfig;
    use crate::nn::vit::{PosEmbed, VisionTransformer};
    use tch::nn::Init;
    use tch::{Device, Kind};

    fn vit(image_size: usize) -> VitConfig {
        VitConfig {
            patch_size: 4,
            image_size,
            in_chans: 3,
            embed_dim: 8,
            depth: 1,
            parallel: 1,
            num_heads: 2,
            mlp_ratio: 2.0,
            qkv_bias: true,
            drop_path: 0.0,
        }
    }

    #[test]
    fn relative_position_tables_are_resampled_to_the_models_grid() {
        let vs = VarStore::new(Device::Cpu);
        let _ = (vs.root() / "blocks" / 0 / "attn").var("rel_pos_h", &[7, 2], Init::Const(0.0));
        let mut file = HashMap::new();
        let table = Tensor::arange(6, (Kind::Float, Device::Cpu)).reshape([3, 2]);
        file.insert("blocks.0.attn.rel_pos_h".to_string(), table);
        let report = load_from(&vs, file).unwrap();
        assert_eq!(report.resampled, ["blocks.0.attn.rel_pos_h"]);
        let loaded = &vs.variables()["blocks.0.attn.rel_pos_h"];
        // Linear over the offsets: the ends stay, the middle row is the middle of the source.
        assert_eq!(Vec::<f32>::try_from(loaded.get(0)).unwrap(), [0.0, 1.0]);
        assert_eq!(Vec::<f32>::try_from(loaded.get(3)).unwrap(), [2.0, 3.0]);
        assert_eq!(Vec::<f32>::try_from(loaded.get(6)).unwrap(), [4.0, 5.0]);
    }

    #[test]
    fn a_non_finite_buffer_is_never_saved_nor_loaded() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("m.safetensors");
        let vs = VarStore::new(Device::Cpu);
        let _ = (vs.root() / "a").var("weight", &[3], Init::Const(1.0));
        let var = (vs.root() / "head" / "bn").ones_no_train("running_var", &[4]);
        save(&vs, &file).unwrap();
        let _ = var.get(2).fill_(f64::NAN);
        let err = save(&vs, &dir.path().join("nan.safetensors"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("`head.bn.running_var` holds 1 non-finite value"),
            "{err}"
        );
        assert!(!dir.path().join("nan.safetensors").exists());
        assert!(!dir.path().join("nan.safetensors.tmp").exists());
        let mut poisoned = read_tensors(&file).unwrap();
        let _ = poisoned
            .get_mut("a.weight")
            .unwrap()
            .get(0)
            .fill_(f64::INFINITY);
        let err = load_from(&vs, poisoned).unwrap_err().to_string();
        assert!(err.contains("`a.weight` holds NaN or infinite"), "{err}");
    }

    #[test]
    fn round_trip_and_resampled_position_tables() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("m.safetensors");
        let src = VarStore::new(Device::Cpu);
        let _ = VisionTransformer::new(&src.root(), &vit(16), PosEmbed::Learned);
        let _ = src.root().var("decoder_extra", &[2], Init::Const(1.0));
        save(&src, &file).unwrap();

        let same = VarStore::new(Device::Cpu);
        let _ = VisionTransformer::new(&same.root(), &vit(16), PosEmbed::Learned);
        let report = load(&same, &file).unwrap();
        assert!(report.missing.is_empty() && report.resampled.is_empty());
        assert_eq!(report.unexpected, vec!["decoder_extra".to_string()]);
        let (a, b) = (src.variables(), same.variables());
        assert!(a["blocks.0.attn.qkv.weight"].equal(&b["blocks.0.attn.qkv.weight"]));

        let bigger = VarStore::new(Device::Cpu);
        let _ = VisionTransformer::new(&bigger.root(), &vit(32), PosEmbed::Learned);
        let report = load(&bigger, &file).unwrap();
        assert_eq!(report.resampled, vec!["pos_embed".to_string()]);
        let pos = &bigger.variables()["pos_embed"];
        assert_eq!(pos.size(), vec![1, 65, 8]);
        assert!(
            pos.narrow(1, 0, 1).equal(&a["pos_embed"].narrow(1, 0, 1)),
            "class row kept"
        );
    }

    #[test]
    fn other_shape_mismatches_name_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("m.safetensors");
        let mut named = BTreeMap::new();
        named.insert(
            "norm.weight".to_string(),
            Tensor::ones([3], (Kind::Float, Device::Cpu)),
        );
        save_tensors(&named, &file).unwrap();
        let vs = VarStore::new(Device::Cpu);
        let _ = VisionTransformer::new(&vs.root(), &vit(16), PosEmbed::Learned);
        let err = format!("{:#}", load(&vs, &file).unwrap_err());
        assert!(
            err.contains("norm.weight") && err.contains("m.safetensors"),
            "{err}"
        );
    }
}
