//! The images of a dataset's hidden-label test split, which only its evaluation server scores:
//! DOTA's `test-dev/images/` (v2.0; `test/images/` for v1.0 and v1.5) and LoveDA's
//! `Test/{Urban,Rural}/images_png/`. An `evaluate` stage with `split = "test"` predicts them,
//! and `rsfm submit` checks its archive against them.

use std::path::{Path, PathBuf};

use crate::data::error::{DataError, DataResult};
use crate::data::formats::dota::DotaVersion;
use crate::data::formats::loveda::{self, LovedaSplit};

/// The file of a test-split evaluation's output that lists, one id a line, every test image it
/// predicted.
pub const PREDICTED_FILE: &str = "predicted.txt";

/// One test image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestImage {
    /// Image id (file stem), the name the server knows it by.
    pub id: String,
    /// The image file.
    pub image: PathBuf,
}

/// The folder of DOTA's test images for `version`, under the dataset root.
pub fn dota_test_dir(root: &Path, version: DotaVersion) -> PathBuf {
    let split = match version {
        DotaVersion::V2_0 => "test-dev",
        DotaVersion::V1_0 | DotaVersion::V1_5 => "test",
    };
    root.join(split).join("images")
}

/// DOTA's test images for `version`, sorted by id.
pub fn dota_test_images(root: &Path, version: DotaVersion) -> DataResult<Vec<TestImage>> {
    let dir = dota_test_dir(root, version);
    if !dir.is_dir() {
        return Err(DataError::invalid(
            &dir,
            "no DOTA test images here: unpack the test images (DOTA v2.0: test-dev/images/) under the dataset root",
        ));
    }
    // At any depth: the official test-dev archives unpack into `images/part3/`, ….
    let images: Vec<TestImage> = crate::data::formats::dota::list_images(&dir)?
        .into_iter()
        .map(|(id, image)| TestImage { id, image })
        .collect();
    non_empty(images, &dir)
}

/// LoveDA's test images (both domains), sorted by id.
pub fn loveda_test_images(root: &Path) -> DataResult<Vec<TestImage>> {
    let mut images: Vec<TestImage> = loveda::list_split(root, LovedaSplit::Test)?
        .into_iter()
        .map(|s| TestImage {
            id: s.id,
            image: s.image,
        })
        .collect();
    images.sort_by(|a, b| a.id.cmp(&b.id));
    non_empty(images, &root.join(LovedaSplit::Test.folder()))
}

/// Reads a [`PREDICTED_FILE`].
pub fn read_predicted(path: &Path) -> DataResult<Vec<String>> {
    let text = crate::data::error::read_text(path)?;
    Ok(text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect())
}

/// Writes a [`PREDICTED_FILE`] listing `images` into `out`.
pub fn write_predicted(out: &Path, images: &[TestImage]) -> DataResult<()> {
    let text: String = images.iter().map(|i| format!("{}\n", i.id)).collect();
    crate::data::error::write_file(&out.join(PREDICTED_FILE), text.as_bytes())
}

fn non_empty(images: Vec<TestImage>, dir: &Path) -> DataResult<Vec<TestImage>> {
    if images.is_empty() {
        return Err(DataError::invalid(dir, "no test images in this folder"));
    }
    Ok(images)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dota_test_images_come_from_the_release_folder() {
        let dir = tempfile::tempdir().unwrap();
        let images = dir.path().join("test-dev/images");
        std::fs::create_dir_all(&images).unwrap();
        for id in ["P0002", "P0001"] {
            std::fs::write(images.join(format!("{id}.png")), b"").unwrap();
        }
        std::fs::write(images.join("notes.txt"), b"").unwrap();
        let listed = dota_test_images(dir.path(), DotaVersion::V2_0).unwrap();
        let ids: Vec<&str> = listed.iter().map(|i| i.id.as_str()).collect();
        assert_eq!(ids, ["P0001", "P0002"]);
        let err = dota_test_images(dir.path(), DotaVersion::V1_0).unwrap_err();
        assert!(err.to_string().contains("test/images"), "{err}");
        write_predicted(dir.path(), &listed).unwrap();
        assert_eq!(
            read_predicted(&dir.path().join(PREDICTED_FILE)).unwrap(),
            ["P0001", "P0002"]
        );
    }
}
