//! What a `prepare` stage does, one function per op: synthesise a dataset, tile DOTA, or crop
//! Potsdam or LoveDA. Pure Rust, so `rsfm prepare` runs it without libtorch on any executor.

use std::path::Path;

use serde_json::{json, Value};

use crate::data::error::{DataError, DataResult};
use crate::data::formats::dota::ClassCheck;
use crate::data::rescore::{rescore_det, rescore_seg};
use crate::data::seg_crops::{crop_loveda, crop_potsdam, CropGrid};
use crate::data::synth::{generate, SynthOptions};
use crate::data::tiling::{split_dataset, SplitOptions};
use crate::metrics::detection::EvalOptions;
use crate::params::data::{DetDataParams, DetFormat, SegDataParams, SegFormat};
use crate::params::{PrepareOp, PrepareParams};

/// Runs `params.op` into `out` and returns its metrics (counts of what it wrote). `source` is
/// the root of the dataset the op reads (tile-dota, crop-*); `seed` drives synthetic data.
pub fn run_prepare(
    params: &PrepareParams,
    source: Option<&Path>,
    seed: u64,
    out: &Path,
) -> DataResult<Value> {
    if let Some(dataset) = params.op.synth_dataset() {
        let options = SynthOptions {
            images: params.images,
            seed,
            size: params.size,
            test_images: params.test_images,
        };
        let summary = generate(dataset, out, &options)?;
        return Ok(json!({
            "images": summary.images,
            "train_images": summary.splits.train.len(),
            "val_images": summary.splits.val.len(),
            "test_images": summary.splits.test.len(),
            "size": summary.size,
        }));
    }
    let source = source.ok_or_else(|| {
        DataError::invalid(
            out,
            format!("{} reads a dataset: set `dataset`", params.op.as_str()),
        )
    })?;
    let grid = CropGrid {
        size: params.patch_size(),
        stride: params.stride(),
    };
    let counts =
        match params.op {
            PrepareOp::CropPotsdam => {
                crop_potsdam(source, out, grid, params.labels.unwrap_or_default())?
            }
            PrepareOp::CropLoveda => crop_loveda(source, out, grid)?,
            PrepareOp::RescorePotsdam => return Err(DataError::invalid(
                out,
                "rescore-potsdam reads an evaluation's folder too: run it with `rescore_potsdam`",
            )),
            _ => return tile_dota(params, source, out),
        };
    Ok(json!({
        "images": counts.images,
        "crops": counts.train_crops + counts.val_crops,
        "train_crops": counts.train_crops,
        "val_crops": counts.val_crops,
    }))
}

/// A `rescore-*` op: the evaluation in `evaluation` (its output folder) scored again against
/// the held-out labels of `source` under the settings of `params` (`rescore-potsdam`: `labels`,
/// `val_tiles`; `rescore-dota` / `rescore-dior-r`: `protocol`, `ap_metric`, `iou`, `version`);
/// returns the metrics as the evaluation reports them.
pub fn rescore(params: &PrepareParams, source: &Path, evaluation: &Path) -> anyhow::Result<Value> {
    let name = params.dataset.clone().unwrap_or_default();
    let metrics = match params.op {
        PrepareOp::RescorePotsdam => {
            let data = SegDataParams {
                name,
                format: SegFormat::Potsdam,
                val_tiles: params.val_tiles.clone(),
                labels: params.labels.unwrap_or_default(),
                clutter: params.clutter,
                trainval: false,
            };
            rescore_seg(evaluation, source, &data)?
        }
        PrepareOp::RescoreDota | PrepareOp::RescoreDiorR => {
            let format = if params.op == PrepareOp::RescoreDota {
                DetFormat::Dota
            } else {
                DetFormat::DiorR
            };
            let data = DetDataParams {
                name,
                format,
                version: params.version.clone().unwrap_or_else(|| "v1.0".into()),
                trainval: false,
            };
            let options = EvalOptions::named(
                params
                    .protocol
                    .as_deref()
                    .unwrap_or(format.default_protocol()),
                params.ap_metric.as_deref().unwrap_or("voc07"),
                params.iou.unwrap_or(0.5),
            )
            .map_err(|e| anyhow::anyhow!("{e}"))?;
            rescore_det(evaluation, source, &data, &options)?
        }
        other => anyhow::bail!("`{}` does not score an evaluation", other.as_str()),
    };
    Ok(serde_json::to_value(metrics)?)
}

/// Cuts each split of a DOTA root into `patch_size` patches overlapping by `gap` pixels, as the
/// DOTA devkit does, into `out/<split>/{images,labelTxt}`, leaving out the patches without
/// objects unless `keep_empty`.
fn tile_dota(params: &PrepareParams, source: &Path, out: &Path) -> DataResult<Value> {
    let options = SplitOptions {
        patch_size: params.patch_size(),
        gap: params.gap,
        ..SplitOptions::default()
    };
    let mut metrics = serde_json::Map::new();
    let (mut images, mut patches, mut objects, mut dropped) = (0, 0, 0, 0);
    for split in &params.splits {
        let from = source.join(split);
        if !from.join("images").is_dir() {
            return Err(DataError::invalid(
                &from,
                format!("no `{split}/images` folder: a DOTA root holds `{split}/images` and `{split}/labelTxt` or the official `{split}/labelTxt-v2.0/DOTA-v2.0_{split}` (or remove `{split}` from `splits`)"),
            ));
        }
        let summary = split_dataset(
            &from.join("images"),
            &crate::data::formats::dota::find_label_dir(&from, None)?,
            &out.join(split),
            ClassCheck::Any,
            &options,
            params.keep_empty,
        )?;
        metrics.insert(format!("{split}_patches"), json!(summary.patches));
        images += summary.images;
        patches += summary.patches;
        objects += summary.objects;
        dropped += summary.empty_dropped;
    }
    metrics.insert("empty_patches_dropped".into(), json!(dropped));
    metrics.insert("images".into(), json!(images));
    metrics.insert("patches".into(), json!(patches));
    metrics.insert("objects".into(), json!(objects));
    Ok(Value::Object(metrics))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::formats::{loveda, potsdam};
    use crate::data::image_io::{read_png, read_tiff};
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
        let tile = params(json!({
            "op": "tile-dota", "patch_size": 64, "gap": 32, "keep_empty": true
        }));
        let out = dir.path().join("tiles");
        let metrics = run_prepare(&tile, Some(&source), 0, &out).unwrap();
        assert_eq!(metrics["images"], 5);
        // 96 px with 64 px patches every 32 px: 2 × 2 windows per image.
        assert_eq!(metrics["patches"], 20);
        assert_eq!(metrics["empty_patches_dropped"], 0);
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

    /// The `w`×`h` window at (x, y) of a row-major map `width` wide with `channels` samples.
    fn window(
        data: &[u8],
        width: u32,
        channels: u8,
        (x, y, w, h): (u32, u32, u32, u32),
    ) -> Vec<u8> {
        let c = usize::from(channels);
        (y..y + h)
            .flat_map(|row| {
                let start = (row as usize * width as usize + x as usize) * c;
                data[start..start + w as usize * c].to_vec()
            })
            .collect()
    }

    /// A synthetic dataset written by `op` with `images` images of side `size` into `dir/name`.
    fn synth(dir: &Path, name: &str, op: &str, images: usize, size: u32) -> std::path::PathBuf {
        let source = dir.join(name);
        let p = params(json!({ "op": op, "images": images, "size": size }));
        run_prepare(&p, None, 5, &source).unwrap();
        source
    }

    #[test]
    fn crop_potsdam_cuts_tiles_and_labels_alike_and_keeps_the_held_out_tiles() {
        let dir = tempfile::tempdir().unwrap();
        // Tiles 2_10 to 2_14; 2_13 and 2_14 are standard test tiles.
        let source = synth(dir.path(), "potsdam", "synth-potsdam", 5, 80);
        let crop = params(json!({ "op": "crop-potsdam", "patch_size": 32, "stride": 24 }));
        let out = dir.path().join("crops");
        let metrics = run_prepare(&crop, Some(&source), 0, &out).unwrap();
        // 80 px, 32 px crops every 24 px: starts 0, 24 and 48 (flush with the border), 3 × 3.
        assert_eq!(metrics["images"], 5);
        assert_eq!(metrics["crops"], 45);
        assert_eq!(metrics["val_crops"], 18);
        assert_eq!(metrics["train_crops"], 27);

        let tiles =
            potsdam::find_potsdam_tiles(&out, potsdam::PotsdamBands::Rgb, Default::default())
                .unwrap();
        assert_eq!(tiles.len(), 45);
        assert!(tiles.iter().all(|t| t.label.is_some()));
        let held_out = tiles.iter().filter(|t| potsdam::is_held_out(&t.id, None));
        assert_eq!(held_out.count(), 18);

        let (label_w, _, labels) =
            potsdam::read_label(&source.join("5_Labels_all/top_potsdam_2_11_label.tif")).unwrap();
        let image = read_tiff(&source.join("2_Ortho_RGB/top_potsdam_2_11_RGB.tif")).unwrap();
        let crop = tiles.iter().find(|t| t.id == "2_11__1__24___48").unwrap();
        let loaded = potsdam::load_tile(crop).unwrap();
        assert_eq!((loaded.image.width, loaded.image.height), (32, 32));
        let at = (24, 48, 32, 32);
        assert_eq!(loaded.image.data, window(&image.data, image.width, 3, at));
        assert_eq!(loaded.classes.unwrap(), window(&labels, label_w, 1, at));
    }

    #[test]
    fn crop_loveda_cuts_images_and_masks_alike_within_their_split() {
        let dir = tempfile::tempdir().unwrap();
        // Images 0 to 4, even Urban, odd Rural; image 4 is in Val.
        let source = synth(dir.path(), "loveda", "synth-loveda", 5, 70);
        let crop = params(json!({ "op": "crop-loveda", "patch_size": 40, "stride": 24 }));
        let out = dir.path().join("crops");
        let metrics = run_prepare(&crop, Some(&source), 0, &out).unwrap();
        // 70 px, 40 px crops every 24 px: starts 0, 24 and 30 (flush with the border), 3 × 3.
        assert_eq!(metrics["images"], 5);
        assert_eq!(metrics["crops"], 45);
        assert_eq!(metrics["val_crops"], 9);

        let train = loveda::list_split(&out, loveda::LovedaSplit::Train).unwrap();
        let val = loveda::list_split(&out, loveda::LovedaSplit::Val).unwrap();
        assert_eq!((train.len(), val.len()), (36, 9));
        assert!(val.iter().all(|s| s.id.starts_with("4__1__")));
        let crop = train.iter().find(|s| s.id == "1__1__30___24").unwrap();
        assert_eq!(crop.domain, loveda::LovedaDomain::Rural);
        let (image, labels) = loveda::load_sample(crop).unwrap();
        let source_image = read_png(&source.join("Train/Rural/images_png/1.png")).unwrap();
        let source_mask = read_png(&source.join("Train/Rural/masks_png/1.png")).unwrap();
        let written_mask = read_png(crop.mask.as_ref().unwrap()).unwrap();
        let at = (30, 24, 40, 40);
        assert_eq!(image.data, window(&source_image.data, 70, 3, at));
        assert_eq!(written_mask.data, window(&source_mask.data, 70, 1, at));
        assert_eq!(labels.unwrap().len(), 40 * 40);
    }

    #[test]
    fn crop_ops_name_the_expected_layout_of_a_missing_folder() {
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty");
        std::fs::create_dir_all(&empty).unwrap();
        let out = dir.path().join("out");
        let loveda = params(json!({ "op": "crop-loveda" }));
        let err = run_prepare(&loveda, Some(&empty), 0, &out)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("no `Train/Urban/images_png` or `Train/Rural/images_png` folder")
                && err.contains("{Train,Val}/{Urban,Rural}/{images_png,masks_png}/<id>.png"),
            "{err}"
        );
        let potsdam_op = params(json!({ "op": "crop-potsdam" }));
        let err = run_prepare(&potsdam_op, Some(&empty), 0, &out)
            .unwrap_err()
            .to_string();
        assert!(err.contains("top_potsdam_<a>_<b>_RGB.tif with"), "{err}");
        let source = synth(dir.path(), "potsdam", "synth-potsdam", 2, 40);
        std::fs::remove_dir_all(source.join("5_Labels_all")).unwrap();
        let err = run_prepare(&potsdam_op, Some(&source), 0, &out)
            .unwrap_err()
            .to_string();
        assert!(err.contains("add Potsdam's 5_Labels_all/"), "{err}");
        let err = run_prepare(&potsdam_op, None, 0, &out)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("crop-potsdam reads a dataset: set `dataset`"),
            "{err}"
        );
    }
}
