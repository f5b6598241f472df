//! What a `prepare` stage does, one function per op: synthesise a dataset or tile DOTA. Pure
//! Rust, so `rsfm prepare` runs it without libtorch on any executor.

use std::path::Path;

use serde_json::{json, Value};

use crate::data::error::{DataError, DataResult};
use crate::data::formats::dota::ClassCheck;
use crate::data::synth::{generate, SynthOptions};
use crate::data::tiling::{split_dataset, SplitOptions};
use crate::params::{PrepareOp, PrepareParams};

/// Runs `params.op` into `out` and returns its metrics (counts of what it wrote). `source` is
/// the root of the dataset the op reads (tile-dota); `seed` drives synthetic data.
pub fn run_prepare(
    params: &PrepareParams,
    source: Option<&Path>,
    seed: u64,
    out: &Path,
) -> DataResult<Value> {
    match params.op.synth_dataset() {
        Some(dataset) => {
            let options = SynthOptions {
                images: params.images,
                seed,
                size: params.size,
            };
            let summary = generate(dataset, out, &options)?;
            Ok(json!({
                "images": summary.images,
                "train_images": summary.splits.train.len(),
                "val_images": summary.splits.val.len(),
                "size": summary.size,
            }))
        }
        None => match params.op {
            PrepareOp::TileDota => {
                let source = source.ok_or_else(|| {
                    DataError::invalid(out, "tile-dota reads a dataset: set `dataset`")
                })?;
                tile_dota(params, source, out)
            }
            op => unreachable!("{} is a synth op", op.as_str()),
        },
    }
}

/// Cuts each split of a DOTA root into `patch_size` patches overlapping by `gap` pixels, as the
/// DOTA devkit does, into `out/<split>/{images,labelTxt}`.
fn tile_dota(params: &PrepareParams, source: &Path, out: &Path) -> DataResult<Value> {
    let options = SplitOptions {
        patch_size: params.patch_size,
        gap: params.gap,
        ..SplitOptions::default()
    };
    let mut metrics = serde_json::Map::new();
    let (mut images, mut patches, mut objects) = (0, 0, 0);
    for split in &params.splits {
        let from = source.join(split);
        if !from.join("images").is_dir() {
            return Err(DataError::invalid(
                &from,
                format!("no `{split}/images` folder: a DOTA root holds `{split}/images` and `{split}/labelTxt` (or remove `{split}` from `splits`)"),
            ));
        }
        let summary = split_dataset(
            &from.join("images"),
            &from.join("labelTxt"),
            &out.join(split),
            ClassCheck::Any,
            &options,
        )?;
        metrics.insert(format!("{split}_patches"), json!(summary.patches));
        images += summary.images;
        patches += summary.patches;
        objects += summary.objects;
    }
    metrics.insert("images".into(), json!(images));
    metrics.insert("patches".into(), json!(patches));
    metrics.insert("objects".into(), json!(objects));
    Ok(Value::Object(metrics))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::params::Schema;

    fn params(value: Value) -> PrepareParams {
        PrepareParams::from_map(value.as_object().unwrap().clone()).unwrap()
    }

    #[test]
    fn synth_ops_write_the_dataset_they_name() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("loveda");
        let p = params(json!({ "op": "synth-loveda", "images": 5, "size": 32 }));
        let metrics = run_prepare(&p, None, 2, &out).unwrap();
        assert_eq!(metrics["images"], 5);
        assert_eq!(metrics["val_images"], 1);
        assert!(out.join("Train").is_dir() && out.join("Val").is_dir());
        let again = dir.path().join("again");
        run_prepare(&p, None, 2, &again).unwrap();
        assert_eq!(
            std::fs::read(out.join("synth.json")).unwrap(),
            std::fs::read(again.join("synth.json")).unwrap(),
            "the same seed writes the same dataset"
        );
    }

    #[test]
    fn tile_dota_cuts_every_split_into_patches() {
        let dir = tempfile::tempdir().unwrap();
        let source = dir.path().join("dota");
        let synth = params(json!({ "op": "synth-dota", "images": 5, "size": 96 }));
        run_prepare(&synth, None, 3, &source).unwrap();
        let tile = params(json!({ "op": "tile-dota", "patch_size": 64, "gap": 32 }));
        let out = dir.path().join("tiles");
        let metrics = run_prepare(&tile, Some(&source), 0, &out).unwrap();
        assert_eq!(metrics["images"], 5);
        // 96 px with 64 px patches every 32 px: 2 × 2 windows per image.
        assert_eq!(metrics["patches"], 20);
        assert_eq!(metrics["train_patches"], 16);
        let names = std::fs::read_dir(out.join("val/images")).unwrap().count();
        assert_eq!(names, 4);
        assert_eq!(
            std::fs::read_dir(out.join("val/labelTxt")).unwrap().count(),
            4
        );
    }

    #[test]
    fn tile_dota_names_a_missing_split() {
        let dir = tempfile::tempdir().unwrap();
        let tile = params(json!({ "op": "tile-dota" }));
        let err = run_prepare(&tile, Some(dir.path()), 0, &dir.path().join("out")).unwrap_err();
        assert!(err.to_string().contains("train/images"), "{err}");
        let err = run_prepare(&tile, None, 0, &dir.path().join("out")).unwrap_err();
        assert!(err.to_string().contains("`dataset`"), "{err}");
    }
}
