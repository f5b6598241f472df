//! The archive an evaluation server expects, checked before it is written.
//!
//! - DOTA v2.0 (Task1): one `Task1_<class>.txt` per class of the release (empty for a class
//!   without detections), lines `image score x1 y1 … x4 y4`, every image a test-dev image,
//!   the files at the archive's root.
//! - LoveDA: one single-channel 8-bit `<id>.png` per test image, the image's size, values 0–6
//!   (the class index: background 0 … agriculture 6, the mask value minus one, as
//!   MMSegmentation's LoveDA `results2img` writes them), the files at the archive's root (a
//!   zip holding a folder scores 0).
//!
//! Every refusal is a [`BadInput`] naming the file.

use std::collections::BTreeSet;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use rsfm_model::data::formats::dota::{parse_task1, task1_class, DotaVersion};
use rsfm_model::data::image_io::{image_size, read_png};
use rsfm_model::data::test_images::TestImage;
use sha2::{Digest, Sha256};

use super::Server;
use crate::error::BadInput;

/// Largest class index LoveDA's server reads.
const LOVEDA_MAX_CLASS: u8 = 6;

/// A checked archive, not yet written.
#[derive(Debug, Clone, PartialEq)]
pub struct Archive {
    /// The server it is for.
    pub server: Server,
    /// Its files: the name at the archive's root, and the file it is read from.
    pub entries: Vec<(String, PathBuf)>,
    /// Test images it covers.
    pub images: usize,
    /// DOTA: detections over all classes.
    pub detections: Option<usize>,
    /// What is accepted but worth saying (a test set of another size than the released one).
    pub warnings: Vec<String>,
}

/// Checks the predictions in `dir` (DOTA: the Task1 files; LoveDA: the PNGs) against the
/// server's rules and the test images `test`. `predicted` lists the images the evaluation
/// predicted, when it is known (an rsfm evaluation's `predicted.txt`): every test image must
/// be among them.
pub fn check(
    server: Server,
    dir: &Path,
    test: &[TestImage],
    predicted: Option<&[String]>,
) -> anyhow::Result<Archive> {
    let files = root_files(dir)?;
    if let Some(predicted) = predicted {
        let predicted: BTreeSet<&str> = predicted.iter().map(String::as_str).collect();
        if let Some(missing) = test.iter().find(|t| !predicted.contains(t.id.as_str())) {
            return Err(BadInput::msg(format!(
                "{}: a test image the evaluation did not predict ({} of {} test images predicted): rerun the evaluation on the current test images",
                missing.image.display(),
                predicted.len(),
                test.len()
            )));
        }
    }
    let mut archive = match server {
        Server::DotaV2 => check_dota(dir, files, test, predicted.is_some())?,
        Server::Loveda => check_loveda(dir, files, test)?,
    };
    let (released, source) = server.released_test_images();
    if test.len() != released {
        archive.warnings.push(format!(
            "{} test images, where the released split has {released} ({source}): the server scores only a complete test set",
            test.len()
        ));
    }
    Ok(archive)
}

/// The files directly in `dir`, sorted; a folder inside is refused.
fn root_files(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let entries = fs_err::read_dir(dir).map_err(BadInput::wrap)?;
    let mut files = Vec::new();
    for entry in entries {
        let path = entry.map_err(BadInput::wrap)?.path();
        if path.is_dir() {
            return Err(BadInput::msg(format!(
                "{}: a folder among the predictions; the server reads the files at the archive's root only: move its files up or remove it",
                path.display()
            )));
        }
        files.push(path);
    }
    files.sort();
    Ok(files)
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn check_dota(
    dir: &Path,
    files: Vec<PathBuf>,
    test: &[TestImage],
    predictions_listed: bool,
) -> anyhow::Result<Archive> {
    let classes = DotaVersion::V2_0.classes();
    let ids: BTreeSet<&str> = test.iter().map(|t| t.id.as_str()).collect();
    let mut seen_classes = BTreeSet::new();
    let mut detected_images = BTreeSet::new();
    let mut detections = 0;
    for path in &files {
        let class = task1_class(path).filter(|c| classes.contains(&c.as_str()));
        let Some(class) = class else {
            return Err(BadInput::msg(format!(
                "{}: not the Task1 file of a DOTA v2.0 class; the server reads Task1_<class>.txt for the classes {}",
                path.display(),
                classes.join(", ")
            )));
        };
        let text = fs_err::read_to_string(path).map_err(BadInput::wrap)?;
        let parsed = parse_task1(&text, path, &class).map_err(BadInput::wrap)?;
        for detection in &parsed {
            if !ids.contains(detection.image.as_str()) {
                let line = text
                    .lines()
                    .position(|l| l.split_whitespace().next() == Some(detection.image.as_str()))
                    .map_or(0, |i| i + 1);
                return Err(BadInput::msg(format!(
                    "{}:{line}: image `{}` is not one of the {} DOTA v2.0 test-dev images",
                    path.display(),
                    detection.image,
                    test.len()
                )));
            }
            detected_images.insert(detection.image.clone());
        }
        detections += parsed.len();
        seen_classes.insert(class);
    }
    if let Some(missing) = classes.iter().find(|c| !seen_classes.contains(**c)) {
        return Err(BadInput::msg(format!(
            "{}: missing; the server expects one file per DOTA v2.0 class (an empty one for a class without detections)",
            dir.join(format!("Task1_{missing}.txt")).display()
        )));
    }
    let mut warnings = Vec::new();
    let undetected = test.len() - detected_images.len();
    if !predictions_listed && undetected > 0 {
        warnings.push(format!(
            "{undetected} of {} test images have no detection in any class: check that every test image was predicted",
            test.len()
        ));
    }
    Ok(Archive {
        server: Server::DotaV2,
        entries: files.into_iter().map(|p| (file_name(&p), p)).collect(),
        images: test.len(),
        detections: Some(detections),
        warnings,
    })
}

fn check_loveda(dir: &Path, files: Vec<PathBuf>, test: &[TestImage]) -> anyhow::Result<Archive> {
    let ids: BTreeSet<&str> = test.iter().map(|t| t.id.as_str()).collect();
    for path in &files {
        let name = file_name(path);
        let known = name.strip_suffix(".png").is_some_and(|id| ids.contains(id));
        if !known {
            return Err(BadInput::msg(format!(
                "{}: not the prediction of a LoveDA test image; the server reads <id>.png for each of the {} test images, nothing else",
                path.display(),
                test.len()
            )));
        }
    }
    let mut entries = Vec::new();
    for image in test {
        let path = dir.join(format!("{}.png", image.id));
        if !path.is_file() {
            return Err(BadInput::msg(format!(
                "{}: missing: the prediction of test image {}",
                path.display(),
                image.image.display()
            )));
        }
        check_loveda_png(&path, image)?;
        entries.push((format!("{}.png", image.id), path));
    }
    Ok(Archive {
        server: Server::Loveda,
        entries,
        images: test.len(),
        detections: None,
        warnings: Vec::new(),
    })
}

/// A LoveDA prediction: one 8-bit channel, the test image's size, class indexes 0–6.
fn check_loveda_png(path: &Path, image: &TestImage) -> anyhow::Result<()> {
    let prediction = read_png(path).map_err(BadInput::wrap)?;
    if prediction.channels != 1 {
        return Err(BadInput::msg(format!(
            "{}: {} channels; the server reads single-channel 8-bit class indexes",
            path.display(),
            prediction.channels
        )));
    }
    let size = image_size(&image.image).map_err(BadInput::wrap)?;
    if (prediction.width, prediction.height) != size {
        return Err(BadInput::msg(format!(
            "{}: {}×{} pixels, and test image {} is {}×{}",
            path.display(),
            prediction.width,
            prediction.height,
            image.image.display(),
            size.0,
            size.1
        )));
    }
    if let Some(i) = prediction.data.iter().position(|&v| v > LOVEDA_MAX_CLASS) {
        let width = prediction.width as usize;
        return Err(BadInput::msg(format!(
            "{}: pixel at row {} column {} has value {}; the server reads class indexes 0 (background) to 6 (agriculture)",
            path.display(),
            i / width + 1,
            i % width + 1,
            prediction.data[i]
        )));
    }
    Ok(())
}

/// Writes `archive` as a zip at `out` (through a temporary file beside it, renamed at the end)
/// and returns its sha256. Entries carry a fixed time, so the same predictions always make the
/// same bytes.
pub fn write_zip(archive: &Archive, out: &Path) -> anyhow::Result<String> {
    if let Some(parent) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs_err::create_dir_all(parent)?;
    }
    let partial = out.with_extension("zip.partial");
    let file = fs_err::File::create(&partial)?;
    let mut zip = zip::ZipWriter::new(std::io::BufWriter::new(file));
    for (name, source) in &archive.entries {
        let method = if name.ends_with(".png") {
            zip::CompressionMethod::Stored
        } else {
            zip::CompressionMethod::Deflated
        };
        let options = zip::write::FileOptions::default()
            .compression_method(method)
            .unix_permissions(0o644);
        zip.start_file(name.as_str(), options)?;
        zip.write_all(&fs_err::read(source)?)?;
    }
    let mut writer = zip.finish()?;
    writer.flush()?;
    writer
        .into_inner()
        .map_err(|e| anyhow::anyhow!("{}: {}", partial.display(), e.error()))?
        .sync_all()?;
    fs_err::rename(&partial, out)?;
    Ok(hex::encode(Sha256::digest(fs_err::read(out)?)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn test_images(dir: &Path, ids: &[&str]) -> Vec<TestImage> {
        ids.iter()
            .map(|id| TestImage {
                id: id.to_string(),
                image: dir.join(format!("{id}.png")),
            })
            .collect()
    }

    fn task1_dir(dir: &Path, lines: &[(&str, &str)]) {
        for class in DotaVersion::V2_0.classes() {
            let text: String = lines
                .iter()
                .filter(|(c, _)| c == class)
                .map(|(_, l)| format!("{l}\n"))
                .collect();
            std::fs::write(dir.join(format!("Task1_{class}.txt")), text).unwrap();
        }
    }

    #[test]
    fn a_complete_dota_archive_is_accepted_and_written_the_same_twice() {
        let dir = tempfile::tempdir().unwrap();
        task1_dir(dir.path(), &[("plane", "P0001 0.9 1 1 5 1 5 5 1 5")]);
        let test = test_images(dir.path(), &["P0001", "P0002"]);
        let archive = check(Server::DotaV2, dir.path(), &test, None).unwrap();
        assert_eq!(archive.entries.len(), 18);
        assert_eq!(archive.detections, Some(1));
        assert!(archive.warnings.iter().any(|w| w.contains("1 of 2")));
        assert!(archive.warnings.iter().any(|w| w.contains("2792")));
        let out = tempfile::tempdir().unwrap();
        let a = write_zip(&archive, &out.path().join("a.zip")).unwrap();
        let b = write_zip(&archive, &out.path().join("b.zip")).unwrap();
        assert_eq!(a, b);
        let listed = zip::ZipArchive::new(std::fs::File::open(out.path().join("a.zip")).unwrap())
            .unwrap()
            .file_names()
            .all(|n| n.starts_with("Task1_") && !n.contains('/'));
        assert!(listed);
    }

    #[test]
    fn dota_refusals_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let test = test_images(dir.path(), &["P0001"]);
        task1_dir(dir.path(), &[("ship", "P0009 0.9 1 1 5 1 5 5 1 5")]);
        let err = check(Server::DotaV2, dir.path(), &test, None).unwrap_err();
        assert!(
            err.to_string().contains("Task1_ship.txt:1: image `P0009`"),
            "{err}"
        );
        let err = check(Server::DotaV2, dir.path(), &test, Some(&[])).unwrap_err();
        assert!(
            err.to_string()
                .contains("P0001.png: a test image the evaluation did not predict"),
            "{err}"
        );
        task1_dir(dir.path(), &[]);
        std::fs::remove_file(dir.path().join("Task1_helipad.txt")).unwrap();
        let err = check(Server::DotaV2, dir.path(), &test, None).unwrap_err();
        assert!(
            err.to_string().contains("Task1_helipad.txt: missing"),
            "{err}"
        );
    }
}
