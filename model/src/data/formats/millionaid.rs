//! Million-AID: scene images in a category folder tree, `{train,test}/<level1>/[<level2>/[<level3>/]]<id>.jpg`.
//!
//! `test/` holds the ~990k unlabelled scenes, `train/` the 10k labelled ones; pretraining reads
//! every image below the root (the images only; the category path is kept for reference).

use std::path::{Path, PathBuf};

use crate::data::error::{sorted_entries, DataError, DataResult};
use crate::data::image_io::is_image_path;

/// One scene image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SceneImage {
    /// Path of the image.
    pub path: PathBuf,
    /// The category folders between the root (or split folder) and the file, outermost first.
    pub categories: Vec<String>,
}

fn walk(dir: &Path, categories: &mut Vec<String>, out: &mut Vec<SceneImage>) -> DataResult<()> {
    for path in sorted_entries(dir)? {
        if path.is_dir() {
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default()
                .to_string();
            categories.push(name);
            walk(&path, categories, out)?;
            categories.pop();
        } else if is_image_path(&path) {
            out.push(SceneImage {
                path,
                categories: categories.clone(),
            });
        }
    }
    Ok(())
}

/// Lists every image under `root` (sorted by path) with its category folders.
pub fn list_images(root: &Path) -> DataResult<Vec<SceneImage>> {
    let mut out = Vec::new();
    walk(root, &mut Vec::new(), &mut out)?;
    if out.is_empty() {
        return Err(DataError::invalid(
            root,
            "no images (.jpg, .png, .tif) under this folder",
        ));
    }
    Ok(out)
}
