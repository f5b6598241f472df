//! ISPRS Potsdam and Vaihingen: orthophoto tiles with colour-coded label tiles.
//!
//! Potsdam tiles are `top_potsdam_<a>_<b>_{RGB,RGBIR,IRRG}.tif` with labels
//! `top_potsdam_<a>_<b>_label.tif`; Vaihingen tiles are `top/top_mosaic_09cm_area<N>.tif` with
//! labels of the same name outside `top/`. Labels are RGB colours of the ISPRS palette, mapped
//! here to class indices 0–5 (clutter = 5). The eroded `_noBoundary` labels paint object
//! boundaries black; black maps to [`IGNORE_INDEX`].
//!
//! The standard split holds out the 14 test tiles of [`POTSDAM_TEST_TILES`]. A crop written by
//! `rsfm prepare` (`crop-potsdam`) is named `top_potsdam_<tile>__1__<x>___<y>_RGB.tif`: its id
//! `<tile>__1__<x>___<y>` stays in the part of its tile ([`is_held_out`]).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::data::error::{sorted_entries, DataError, DataResult};
use crate::data::image_io::{read_tiff, write_tiff, Image, TiffCompression};
use crate::data::tiling::parse_patch_name;

/// The standard ISPRS Potsdam test tiles; every other labelled tile is for training.
pub const POTSDAM_TEST_TILES: [&str; 14] = [
    "2_13", "2_14", "3_13", "3_14", "4_13", "4_14", "4_15", "5_13", "5_14", "5_15", "6_13", "6_14",
    "6_15", "7_13",
];

/// The tile an id names: `<tile>` for a crop `<tile>__1__<x>___<y>` (or a crop of a crop),
/// else the id itself.
pub fn source_tile(id: &str) -> String {
    let mut tile = id.to_string();
    while let Some((parent, _, _)) = parse_patch_name(&tile) {
        tile = parent;
    }
    tile
}

/// Whether tile or crop `id` is held out for evaluation: its tile is in `held_out`, or, when
/// that is `None`, among the standard [`POTSDAM_TEST_TILES`].
pub fn is_held_out(id: &str, held_out: Option<&[String]>) -> bool {
    let tile = source_tile(id);
    match held_out {
        Some(tiles) => tiles.contains(&tile),
        None => POTSDAM_TEST_TILES.contains(&tile.as_str()),
    }
}

/// The ISPRS classes in index order.
pub const ISPRS_CLASSES: [&str; 6] = [
    "impervious_surfaces",
    "building",
    "low_vegetation",
    "tree",
    "car",
    "clutter",
];

/// The ISPRS label colour of each class, in index order.
pub const ISPRS_PALETTE: [[u8; 3]; 6] = [
    [255, 255, 255],
    [0, 0, 255],
    [0, 255, 255],
    [0, 255, 0],
    [255, 255, 0],
    [255, 0, 0],
];

/// Class index of the clutter/background class (excluded from the paper's mean F1).
pub const CLUTTER_INDEX: u8 = 5;

/// Label value for pixels without a class (the black boundaries of `_noBoundary` labels).
pub const IGNORE_INDEX: u8 = 255;

/// The class index of an RGB label colour; black is [`IGNORE_INDEX`].
pub fn class_of_colour(rgb: [u8; 3]) -> Option<u8> {
    if rgb == [0, 0, 0] {
        return Some(IGNORE_INDEX);
    }
    ISPRS_PALETTE
        .iter()
        .position(|c| *c == rgb)
        .map(|i| i as u8)
}

/// Converts a colour-coded label image to class indices; a colour outside the palette is an
/// error naming `path` and the pixel's row (line) and column.
pub fn decode_label(image: &Image, path: &Path) -> DataResult<Vec<u8>> {
    if image.channels < 3 {
        return Err(DataError::invalid(
            path,
            format!(
                "label has {} band(s), expected RGB colours of the ISPRS palette",
                image.channels
            ),
        ));
    }
    let mut classes = Vec::with_capacity(image.width as usize * image.height as usize);
    for (i, px) in image.data.chunks_exact(image.channels as usize).enumerate() {
        let rgb = [px[0], px[1], px[2]];
        let class = class_of_colour(rgb).ok_or_else(|| {
            let (x, y) = (i % image.width as usize, i / image.width as usize);
            DataError::parse(
                path,
                y + 1,
                format!(
                    "pixel at row {} column {} has colour {rgb:?}, not in the ISPRS palette {:?}",
                    y + 1,
                    x + 1,
                    ISPRS_PALETTE
                ),
            )
        })?;
        classes.push(class);
    }
    Ok(classes)
}

/// The eroded variant of class indices: every pixel within `radius` pixels (Chebyshev) of a
/// pixel of another class becomes [`IGNORE_INDEX`], as ISPRS's `noBoundary` labels paint
/// object boundaries black.
pub fn erode_boundaries(classes: &[u8], width: u32, height: u32, radius: u32) -> Vec<u8> {
    let (w, h, r) = (width as i64, height as i64, radius as i64);
    let at = |x: i64, y: i64| classes[(y * w + x) as usize];
    let mut out = classes.to_vec();
    for y in 0..h {
        for x in 0..w {
            let own = at(x, y);
            let boundary = (y - r..=y + r).filter(|ny| (0..h).contains(ny)).any(|ny| {
                (x - r..=x + r)
                    .filter(|nx| (0..w).contains(nx))
                    .any(|nx| at(nx, ny) != own)
            });
            if boundary {
                out[(y * w + x) as usize] = IGNORE_INDEX;
            }
        }
    }
    out
}

/// Paints class indices with the ISPRS palette ([`IGNORE_INDEX`] and unknown indices → black).
pub fn encode_label(classes: &[u8], width: u32, height: u32) -> Image {
    let mut image = Image::new(width, height, 3);
    for (px, &class) in image.data.chunks_exact_mut(3).zip(classes) {
        let colour = ISPRS_PALETTE
            .get(class as usize)
            .copied()
            .unwrap_or([0, 0, 0]);
        px.copy_from_slice(&colour);
    }
    image
}

/// Reads a colour-coded label TIFF as class indices.
pub fn read_label(path: &Path) -> DataResult<(u32, u32, Vec<u8>)> {
    let image = read_tiff(path)?;
    let classes = decode_label(&image, path)?;
    Ok((image.width, image.height, classes))
}

/// Writes class indices as a colour-coded, uncompressed label TIFF.
pub fn write_label(path: &Path, classes: &[u8], width: u32, height: u32) -> DataResult<()> {
    write_tiff(
        path,
        &encode_label(classes, width, height),
        TiffCompression::None,
    )
}

/// Which Potsdam image product to pair with the labels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PotsdamBands {
    /// `_RGB.tif` (3 bands).
    Rgb,
    /// `_RGBIR.tif` (4 bands: red, green, blue, near-infrared).
    Rgbir,
    /// `_IRRG.tif` (3 bands: near-infrared, red, green).
    Irrg,
}

impl PotsdamBands {
    fn suffix(self) -> &'static str {
        match self {
            PotsdamBands::Rgb => "RGB",
            PotsdamBands::Rgbir => "RGBIR",
            PotsdamBands::Irrg => "IRRG",
        }
    }
}

/// Which reference labels of ISPRS Potsdam a stage reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PotsdamLabels {
    /// `*_label.tif` (`5_Labels_all/`): every pixel labelled.
    #[default]
    Full,
    /// `*_label_noBoundary.tif` (`5_Labels_all_noBoundary/`): object boundaries eroded and
    /// painted black (ignored), the labels the ISPRS benchmark scores.
    Eroded,
}

impl PotsdamLabels {
    /// The spellings in recipes.
    pub const SPELLINGS: &'static [&'static str] = &["full", "eroded"];

    /// What ends a label file's stem after the tile id: `label` or `label_noBoundary`.
    pub fn suffix(self) -> &'static str {
        match self {
            PotsdamLabels::Full => "label",
            PotsdamLabels::Eroded => "label_noBoundary",
        }
    }

    /// The folder of the ISPRS distribution that holds them.
    pub fn folder(self) -> &'static str {
        match self {
            PotsdamLabels::Full => "5_Labels_all",
            PotsdamLabels::Eroded => "5_Labels_all_noBoundary",
        }
    }
}

/// One orthophoto tile and its label, if present.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IsprsTile {
    /// Tile id: `2_10` for Potsdam, `area1` for Vaihingen.
    pub id: String,
    /// The orthophoto.
    pub image: PathBuf,
    /// The colour-coded label of the variant asked for, when there is one.
    pub label: Option<PathBuf>,
}

fn walk_tifs(dir: &Path, out: &mut Vec<PathBuf>) -> DataResult<()> {
    for path in sorted_entries(dir)? {
        if path.is_dir() {
            walk_tifs(&path, out)?;
        } else if path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("tif") || e.eq_ignore_ascii_case("tiff"))
        {
            out.push(path);
        }
    }
    Ok(())
}

fn stem(path: &Path) -> &str {
    path.file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or_default()
}

fn pair_tiles(
    images: BTreeMap<String, PathBuf>,
    mut labels: BTreeMap<String, PathBuf>,
    root: &Path,
    layout: &str,
) -> DataResult<Vec<IsprsTile>> {
    if images.is_empty() {
        return Err(DataError::invalid(
            root,
            format!("no ISPRS orthophoto tiles found under this folder; expected layout: {layout}"),
        ));
    }
    Ok(images
        .into_iter()
        .map(|(id, image)| {
            let label = labels.remove(&id);
            IsprsTile { id, image, label }
        })
        .collect())
}

/// Finds the Potsdam tiles under `root` (searched recursively) with their labels of the
/// `labels` variant (`_label.tif` or `_label_noBoundary.tif`).
pub fn find_potsdam_tiles(
    root: &Path,
    bands: PotsdamBands,
    labels_of: PotsdamLabels,
) -> DataResult<Vec<IsprsTile>> {
    let mut files = Vec::new();
    walk_tifs(root, &mut files)?;
    let mut images = BTreeMap::new();
    let mut labels = BTreeMap::new();
    let image_suffix = format!("_{}", bands.suffix());
    let label_suffix = format!("_{}", labels_of.suffix());
    for path in files {
        let Some(rest) = stem(&path).strip_prefix("top_potsdam_") else {
            continue;
        };
        if let Some(id) = rest.strip_suffix(label_suffix.as_str()) {
            labels.insert(id.to_string(), path.clone());
        } else if let Some(id) = rest.strip_suffix(image_suffix.as_str()) {
            images.insert(id.to_string(), path.clone());
        }
    }
    let layout = format!(
        "top_potsdam_<a>_<b>_{}.tif with top_potsdam_<a>_<b>_{}.tif anywhere below the root \
         (Potsdam's 2_Ortho_RGB/ and {}/)",
        bands.suffix(),
        labels_of.suffix(),
        labels_of.folder()
    );
    pair_tiles(images, labels, root, &layout)
}

/// Finds the Vaihingen tiles under `root`: images inside a `top/` folder, labels of the same
/// name elsewhere.
pub fn find_vaihingen_tiles(root: &Path) -> DataResult<Vec<IsprsTile>> {
    let mut files = Vec::new();
    walk_tifs(root, &mut files)?;
    let mut images = BTreeMap::new();
    let mut labels = BTreeMap::new();
    for path in files {
        let Some(id) = stem(&path).strip_prefix("top_mosaic_09cm_") else {
            continue;
        };
        let in_top = path
            .parent()
            .and_then(|p| p.file_name())
            .is_some_and(|n| n == "top");
        if in_top {
            images.insert(id.to_string(), path.clone());
        } else {
            labels.insert(id.to_string(), path.clone());
        }
    }
    let layout = "top/top_mosaic_09cm_area<N>.tif with top_mosaic_09cm_area<N>.tif outside top/";
    pair_tiles(images, labels, root, layout)
}

/// A tile read into memory.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadedTile {
    /// The orthophoto.
    pub image: Image,
    /// Class indices, row-major, when the tile has a label.
    pub classes: Option<Vec<u8>>,
}

/// Reads a tile and its label, checking that both have the same size.
pub fn load_tile(tile: &IsprsTile) -> DataResult<LoadedTile> {
    let image = read_tiff(&tile.image)?;
    let classes = match &tile.label {
        None => None,
        Some(label_path) => {
            let (width, height, classes) = read_label(label_path)?;
            if (width, height) != (image.width, image.height) {
                return Err(DataError::invalid(
                    label_path,
                    format!(
                        "label is {width}x{height} but its image {} is {}x{}",
                        tile.image.display(),
                        image.width,
                        image.height
                    ),
                ));
            }
            Some(classes)
        }
    };
    Ok(LoadedTile { image, classes })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crops_stay_in_the_part_of_their_tile() {
        assert!(is_held_out("2_13", None) && !is_held_out("2_10", None));
        assert!(is_held_out("2_13__1__384___0", None));
        assert!(!is_held_out("2_10__1__0___768", None));
        let mine = ["2_10".to_string()];
        assert!(is_held_out("2_10__1__0___768", Some(&mine)));
        assert!(!is_held_out("2_13__1__0___0", Some(&mine)));
        assert_eq!(source_tile("7_8__1__12___3"), "7_8");
        assert_eq!(source_tile("2_13__1__0___384__1__24___0"), "2_13");
    }

    #[test]
    fn palette_maps_both_ways() {
        let classes = vec![0, 1, 2, 3, 4, 5, IGNORE_INDEX, 2];
        let image = encode_label(&classes, 4, 2);
        assert_eq!(decode_label(&image, Path::new("l.tif")).unwrap(), classes);
    }

    #[test]
    fn foreign_colour_names_row_and_column() {
        let mut image = encode_label(&[0, 1, 2, 3], 2, 2);
        image.pixel_mut(1, 1).copy_from_slice(&[10, 20, 30]);
        let err = decode_label(&image, Path::new("l.tif"))
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("l.tif:2:") && err.contains("column 2"),
            "{err}"
        );
    }
}
