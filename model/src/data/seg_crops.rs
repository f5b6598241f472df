//! Segmentation datasets cut into square crops in their own on-disk layout (the `crop-potsdam`
//! and `crop-loveda` ops of `rsfm prepare`), so the Potsdam and LoveDA readers read the result
//! as they read the source.
//!
//! Each image is cut by the windows of [`crop_windows`]: `size` pixels every `stride`, the last
//! window of a row or column ending at the image border (an image smaller than `size` gives one
//! smaller crop; nothing is padded). Its labels are cut by the same windows. The crop of image
//! `<id>` at (x, y) is named `<id>__1__<x>___<y>` ([`patch_name`], the DOTA devkit's scheme) and
//! stays in its image's part: LoveDA's `Train`/`Val` folder, Potsdam's held-out tiles
//! ([`potsdam::is_held_out`]).
//!
//! - Potsdam: `2_Ortho_RGB/top_potsdam_<crop>_RGB.tif` and `5_Labels_all/top_potsdam_<crop>_label.tif`
//!   (ISPRS palette); only the RGB product is cut, the one the segmentation stages read. A tile
//!   without a label gives image crops only.
//! - LoveDA: `{Train,Val}/{Urban,Rural}/images_png/<crop>.png` and `masks_png/<crop>.png`.

use std::path::Path;

use crate::data::error::{DataError, DataResult};
use crate::data::formats::{loveda, potsdam};
use crate::data::image_io::{write_png, write_tiff, Image, TiffCompression};
use crate::data::tiling::{crop_windows, patch_name, Window};

/// Side and stride of the crops, in pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CropGrid {
    /// Side of a square crop.
    pub size: u32,
    /// Pixels between the starts of neighbouring crops.
    pub stride: u32,
}

/// What a crop op read and wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CropCounts {
    /// Source images cut.
    pub images: usize,
    /// Crops of training images.
    pub train_crops: usize,
    /// Crops of held-out images.
    pub val_crops: usize,
}

impl CropCounts {
    fn add(&mut self, held_out: bool, crops: usize) {
        self.images += 1;
        if held_out {
            self.val_crops += crops;
        } else {
            self.train_crops += crops;
        }
    }
}

/// The pixels of `image` inside `window` (which lies inside the image).
fn cut(image: &Image, window: &Window) -> Image {
    image.crop_padded(
        i64::from(window.x),
        i64::from(window.y),
        window.width,
        window.height,
        0,
    )
}

/// The window of a row-major `width`-wide label map.
fn cut_labels(labels: &[u8], width: u32, height: u32, window: &Window) -> Vec<u8> {
    let map = Image {
        width,
        height,
        channels: 1,
        data: labels.to_vec(),
    };
    cut(&map, window).data
}

/// Cuts the RGB tiles of the Potsdam root `source` and their `labels` variant into `out`, the
/// crops' labels under the same variant's name and folder.
pub fn crop_potsdam(
    source: &Path,
    out: &Path,
    grid: CropGrid,
    labels: potsdam::PotsdamLabels,
) -> DataResult<CropCounts> {
    if !source.is_dir() {
        return Err(DataError::invalid(
            source,
            "no such folder: a Potsdam root holds top_potsdam_<a>_<b>_RGB.tif and top_potsdam_<a>_<b>_label.tif (Potsdam's 2_Ortho_RGB/ and 5_Labels_all/)",
        ));
    }
    let tiles = potsdam::find_potsdam_tiles(source, potsdam::PotsdamBands::Rgb, labels)?;
    if tiles.iter().all(|tile| tile.label.is_none()) {
        return Err(DataError::invalid(
            source,
            format!(
                "no top_potsdam_<a>_<b>_{}.tif beside the RGB tiles: add Potsdam's {}/ folder to the root",
                labels.suffix(),
                labels.folder()
            ),
        ));
    }
    let mut counts = CropCounts::default();
    for tile in &tiles {
        let loaded = potsdam::load_tile(tile)?;
        let (width, height) = (loaded.image.width, loaded.image.height);
        let windows = crop_windows(width, height, grid.size, grid.stride);
        for window in &windows {
            let name = format!("top_potsdam_{}", patch_name(&tile.id, window));
            write_tiff(
                &out.join("2_Ortho_RGB").join(format!("{name}_RGB.tif")),
                &cut(&loaded.image, window),
                TiffCompression::None,
            )?;
            if let Some(classes) = &loaded.classes {
                potsdam::write_label(
                    &out.join(labels.folder())
                        .join(format!("{name}_{}.tif", labels.suffix())),
                    &cut_labels(classes, width, height, window),
                    window.width,
                    window.height,
                )?;
            }
        }
        counts.add(potsdam::is_held_out(&tile.id, None), windows.len());
    }
    Ok(counts)
}

/// Cuts the Train and Val images of the LoveDA root `source` and their masks into `out`.
pub fn crop_loveda(source: &Path, out: &Path, grid: CropGrid) -> DataResult<CropCounts> {
    let mut counts = CropCounts::default();
    for split in [loveda::LovedaSplit::Train, loveda::LovedaSplit::Val] {
        let has_images = [loveda::LovedaDomain::Urban, loveda::LovedaDomain::Rural]
            .into_iter()
            .any(|domain| loveda::images_dir(source, split, domain).is_dir());
        if !has_images {
            let folder = split.folder();
            return Err(DataError::invalid(
                &source.join(folder),
                format!("no `{folder}/Urban/images_png` or `{folder}/Rural/images_png` folder: a LoveDA root holds {{Train,Val}}/{{Urban,Rural}}/{{images_png,masks_png}}/<id>.png"),
            ));
        }
        for sample in loveda::list_split(source, split)? {
            let (image, labels) = loveda::load_sample(&sample)?;
            let labels = labels.ok_or_else(|| {
                DataError::invalid(&sample.image, "image has no mask in masks_png")
            })?;
            let windows = crop_windows(image.width, image.height, grid.size, grid.stride);
            for window in &windows {
                let name = format!("{}.png", patch_name(&sample.id, window));
                write_png(
                    &loveda::images_dir(out, split, sample.domain).join(&name),
                    &cut(&image, window),
                )?;
                loveda::write_mask(
                    &loveda::masks_dir(out, split, sample.domain).join(&name),
                    &cut_labels(&labels, image.width, image.height, window),
                    window.width,
                    window.height,
                )?;
            }
            counts.add(split == loveda::LovedaSplit::Val, windows.len());
        }
    }
    Ok(counts)
}
