//! LoveDA: `{Train,Val,Test}/{Urban,Rural}/images_png/<id>.png` with `masks_png/<id>.png`.
//!
//! Masks are 8-bit single-channel PNGs: 0 = no-data (ignored), 1–7 = the classes below.

use std::path::{Path, PathBuf};

use crate::data::error::{sorted_entries, DataError, DataResult};
use crate::data::image_io::{read_png, write_png, Image};

/// The seven LoveDA classes; mask value `k` (1–7) is class `k - 1` here.
pub const LOVEDA_CLASSES: [&str; 7] = [
    "background",
    "building",
    "road",
    "water",
    "barren",
    "forest",
    "agriculture",
];

/// Training label for no-data pixels (mask value 0).
pub const IGNORE_INDEX: u8 = 255;

/// The LoveDA splits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LovedaSplit {
    /// `Train/`
    Train,
    /// `Val/`
    Val,
    /// `Test/` (no masks are published)
    Test,
}

impl LovedaSplit {
    /// The folder name of the split.
    pub fn folder(self) -> &'static str {
        match self {
            LovedaSplit::Train => "Train",
            LovedaSplit::Val => "Val",
            LovedaSplit::Test => "Test",
        }
    }
}

/// The two LoveDA domains.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LovedaDomain {
    /// `Urban/`
    Urban,
    /// `Rural/`
    Rural,
}

impl LovedaDomain {
    /// The folder name of the domain.
    pub fn folder(self) -> &'static str {
        match self {
            LovedaDomain::Urban => "Urban",
            LovedaDomain::Rural => "Rural",
        }
    }
}

/// One LoveDA image with its mask path (absent for the test split).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LovedaSample {
    /// Image id (file stem).
    pub id: String,
    /// Split.
    pub split: LovedaSplit,
    /// Domain.
    pub domain: LovedaDomain,
    /// The RGB image.
    pub image: PathBuf,
    /// The mask, when the split has masks.
    pub mask: Option<PathBuf>,
}

/// The image folder of a split and domain.
pub fn images_dir(root: &Path, split: LovedaSplit, domain: LovedaDomain) -> PathBuf {
    root.join(split.folder())
        .join(domain.folder())
        .join("images_png")
}

/// The mask folder of a split and domain.
pub fn masks_dir(root: &Path, split: LovedaSplit, domain: LovedaDomain) -> PathBuf {
    root.join(split.folder())
        .join(domain.folder())
        .join("masks_png")
}

/// Lists a split (both domains, Urban first). For Train and Val every image must have its mask.
pub fn list_split(root: &Path, split: LovedaSplit) -> DataResult<Vec<LovedaSample>> {
    let mut samples = Vec::new();
    for domain in [LovedaDomain::Urban, LovedaDomain::Rural] {
        let dir = images_dir(root, split, domain);
        if !dir.is_dir() {
            continue;
        }
        for image in sorted_entries(&dir)? {
            if image.extension().is_none_or(|e| e != "png") {
                continue;
            }
            let name = image.file_name().map(PathBuf::from).unwrap_or_default();
            let id = image
                .file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or_default()
                .to_string();
            let mask_path = masks_dir(root, split, domain).join(&name);
            let mask = match split {
                LovedaSplit::Test => mask_path.is_file().then_some(mask_path),
                LovedaSplit::Train | LovedaSplit::Val => {
                    if !mask_path.is_file() {
                        return Err(DataError::invalid(
                            &image,
                            format!("image has no mask {}", mask_path.display()),
                        ));
                    }
                    Some(mask_path)
                }
            };
            samples.push(LovedaSample {
                id,
                split,
                domain,
                image,
                mask,
            });
        }
    }
    if samples.is_empty() {
        return Err(DataError::invalid(
            &root.join(split.folder()),
            "no LoveDA images (expected Urban/images_png or Rural/images_png)",
        ));
    }
    Ok(samples)
}

/// Reads a mask (values 0–7) and converts it to training labels: 0 → [`IGNORE_INDEX`], k → k − 1.
/// A value above 7 is an error naming the file and the pixel's row.
pub fn read_mask(path: &Path) -> DataResult<(u32, u32, Vec<u8>)> {
    let mask = read_png(path)?;
    if mask.channels != 1 {
        return Err(DataError::invalid(
            path,
            format!(
                "mask has {} channels, expected a single-channel PNG",
                mask.channels
            ),
        ));
    }
    let mut labels = Vec::with_capacity(mask.data.len());
    for (i, &v) in mask.data.iter().enumerate() {
        let label = match v {
            0 => IGNORE_INDEX,
            1..=7 => v - 1,
            _ => {
                let (x, y) = (i % mask.width as usize, i / mask.width as usize);
                return Err(DataError::parse(
                    path,
                    y + 1,
                    format!(
                        "pixel at row {} column {} has value {v}; LoveDA masks hold 0 (no-data) to 7",
                        y + 1,
                        x + 1
                    ),
                ));
            }
        };
        labels.push(label);
    }
    Ok((mask.width, mask.height, labels))
}

/// Writes training labels back as a LoveDA mask: [`IGNORE_INDEX`] → 0, k → k + 1.
pub fn write_mask(path: &Path, labels: &[u8], width: u32, height: u32) -> DataResult<()> {
    let mut mask = Image::new(width, height, 1);
    for (m, &label) in mask.data.iter_mut().zip(labels) {
        *m = if usize::from(label) < LOVEDA_CLASSES.len() {
            label + 1
        } else {
            0
        };
    }
    write_png(path, &mask)
}

/// Reads a sample's image and labels, checking that they have the same size.
pub fn load_sample(sample: &LovedaSample) -> DataResult<(Image, Option<Vec<u8>>)> {
    let image = read_png(&sample.image)?;
    let labels = match &sample.mask {
        None => None,
        Some(path) => {
            let (width, height, labels) = read_mask(path)?;
            if (width, height) != (image.width, image.height) {
                return Err(DataError::invalid(
                    path,
                    format!(
                        "mask is {width}x{height} but its image {} is {}x{}",
                        sample.image.display(),
                        image.width,
                        image.height
                    ),
                ));
            }
            Some(labels)
        }
    };
    Ok((image, labels))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mask_values_shift_and_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.png");
        let labels = vec![IGNORE_INDEX, 0, 3, 6];
        write_mask(&path, &labels, 2, 2).unwrap();
        assert_eq!(read_png(&path).unwrap().data, vec![0, 1, 4, 7]);
        assert_eq!(read_mask(&path).unwrap().2, labels);
    }

    #[test]
    fn out_of_range_value_names_the_row() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.png");
        let mut mask = Image::new(2, 2, 1);
        mask.data = vec![1, 2, 3, 9];
        write_png(&path, &mask).unwrap();
        let err = read_mask(&path).unwrap_err().to_string();
        assert!(err.contains("m.png:2:") && err.contains("value 9"), "{err}");
    }
}
