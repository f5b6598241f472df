//! Scoring predictions on disk against ground truth on disk: DOTA Task1 detection files against
//! a labelTxt folder, and segmentation label PNGs paired by file name. Every error names the
//! file (and line) it comes from.

use std::collections::BTreeSet;
use std::path::Path;

use crate::data::error::{sorted_entries, DataError, DataResult};
use crate::data::formats::dota::{read_label, read_task1_dir, ClassCheck};
use crate::data::image_io::read_label_png;
use crate::metrics::detection::{evaluate, Detection, DetectionReport, EvalOptions, GroundTruth};
use crate::metrics::segmentation::{reduce_zero_label, ConfusionMatrix};

/// Every object of the `<image>.txt` files of a DOTA labelTxt folder (any class name), as
/// ground truth of the image its file is named after. A folder without such files is an error.
pub fn read_dota_ground_truth(dir: &Path) -> DataResult<Vec<GroundTruth>> {
    let files: Vec<_> = sorted_entries(dir)?
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "txt"))
        .collect();
    if files.is_empty() {
        return Err(DataError::invalid(
            dir,
            "no ground-truth `<image>.txt` files",
        ));
    }
    let mut gts = Vec::new();
    for file in files {
        let image = file
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let objects = read_label(&file, ClassCheck::Any)?.objects;
        gts.extend(objects.into_iter().map(|o| o.into_ground_truth(&image)));
    }
    Ok(gts)
}

/// The rotated-box mAP of the `Task1_<class>.txt` files in `det` against the labelTxt folder
/// `gt`, over `classes`, or where `None` the union of the classes with a Task1 file and those
/// in the ground truth.
pub fn score_dota_files(
    gt: &Path,
    det: &Path,
    classes: Option<&[String]>,
    options: &EvalOptions,
) -> DataResult<DetectionReport> {
    let gts = read_dota_ground_truth(gt)?;
    let (det_classes, task1) = read_task1_dir(det)?;
    let classes: Vec<String> = match classes {
        Some(list) => list.to_vec(),
        None => {
            let mut all: BTreeSet<String> = det_classes.into_iter().collect();
            all.extend(gts.iter().map(|g| g.class.clone()));
            all.into_iter().collect()
        }
    };
    let dets: Vec<Detection> = task1.into_iter().map(Detection::from).collect();
    Ok(evaluate(&gts, &dets, &classes, options))
}

/// How label maps are read before they are counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LabelMapOptions {
    /// Ground-truth value that is not scored.
    pub ignore: u8,
    /// Map ground truth 0 to the ignore value and k to k − 1 first (MMSeg's
    /// `reduce_zero_label`).
    pub reduce_zero_label: bool,
}

/// Adds every pair of label PNGs (single-channel, 8-bit) with the same file name in `gt` and
/// `pred` to `matrix`. A ground-truth folder without PNGs, a file without its counterpart, or
/// a pair of different sizes is an error naming the files.
pub fn accumulate_label_maps(
    gt: &Path,
    pred: &Path,
    options: LabelMapOptions,
    matrix: &mut ConfusionMatrix,
) -> DataResult<()> {
    let gt_names = png_names(gt)?;
    let pred_names = png_names(pred)?;
    if gt_names.is_empty() {
        return Err(DataError::invalid(gt, "no ground-truth PNG label maps"));
    }
    if let Some(name) = gt_names.difference(&pred_names).next() {
        let message = format!(
            "ground truth has no prediction {}",
            pred.join(name).display()
        );
        return Err(DataError::invalid(&gt.join(name), message));
    }
    if let Some(name) = pred_names.difference(&gt_names).next() {
        let message = format!("prediction has no ground truth {}", gt.join(name).display());
        return Err(DataError::invalid(&pred.join(name), message));
    }
    for name in &gt_names {
        let (gt_path, pred_path) = (gt.join(name), pred.join(name));
        let mut labels = read_label_png(&gt_path)?;
        let prediction = read_label_png(&pred_path)?;
        if (labels.width, labels.height) != (prediction.width, prediction.height) {
            let message = format!(
                "prediction is {}x{} but its ground truth {} is {}x{}",
                prediction.width,
                prediction.height,
                gt_path.display(),
                labels.width,
                labels.height
            );
            return Err(DataError::invalid(&pred_path, message));
        }
        if options.reduce_zero_label {
            reduce_zero_label(&mut labels.data);
        }
        matrix
            .accumulate(&prediction.data, &labels.data, Some(options.ignore))
            .map_err(|e| DataError::invalid(&pred_path, e.to_string()))?;
    }
    Ok(())
}

/// The names of the `.png` files (any case) in `dir`.
fn png_names(dir: &Path) -> DataResult<BTreeSet<String>> {
    Ok(sorted_entries(dir)?
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e.eq_ignore_ascii_case("png")))
        .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::formats::dota::{
        write_label, write_task1_dir, DotaLabel, DotaObject, Task1Detection,
    };
    use crate::data::image_io::{write_png, Image};
    use crate::metrics::detection::{ApMetric, Protocol};

    fn square(x: f64, y: f64) -> [[f64; 2]; 4] {
        [[x, y], [x + 10.0, y], [x + 10.0, y + 10.0], [x, y + 10.0]]
    }

    fn devkit() -> EvalOptions {
        EvalOptions {
            protocol: Protocol::Devkit,
            metric: ApMetric::Voc07,
            iou_thresholds: vec![0.5],
        }
    }

    #[test]
    fn dota_scores_from_files() {
        let dir = tempfile::tempdir().unwrap();
        let (gt, det) = (dir.path().join("labelTxt"), dir.path().join("det"));
        let object = |poly, class: &str| DotaObject {
            poly,
            class: class.into(),
            difficult: 0,
        };
        let objects = vec![
            object(square(0.0, 0.0), "ship"),
            object(square(50.0, 50.0), "plane"),
        ];
        let label = DotaLabel {
            objects,
            ..Default::default()
        };
        write_label(&gt.join("P1.txt"), &label).unwrap();
        let detection = |score, poly| Task1Detection {
            image: "P1".into(),
            class: "ship".into(),
            score,
            poly,
        };
        let (hit, miss) = (
            detection(0.9, square(0.0, 0.0)),
            detection(0.8, square(80.0, 0.0)),
        );
        write_task1_dir(&det, &["ship"], &[hit, miss]).unwrap();
        let report = score_dota_files(&gt, &det, None, &devkit()).unwrap();
        assert_eq!(report.ap.keys().collect::<Vec<_>>(), ["plane", "ship"]);
        assert!((report.ap["ship"].unwrap() - 1.0).abs() < 1e-9);
        // No detection of a class with ground truth: AP 0, or null where the protocol leaves it undefined.
        assert_eq!(report.ap["plane"].unwrap_or(0.0), 0.0);
        let only_ship = ["ship".to_string()];
        let report = score_dota_files(&gt, &det, Some(&only_ship), &devkit()).unwrap();
        assert!((report.map - 1.0).abs() < 1e-9);
    }

    #[test]
    fn dota_bad_line_names_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let (gt, det) = (dir.path().join("labelTxt"), dir.path().join("det"));
        fs_err::create_dir_all(&gt).unwrap();
        fs_err::write(gt.join("P2.txt"), "gsd:1\n1 2 3 4 5 6 ship 0\n").unwrap();
        write_task1_dir(&det, &["ship"], &[]).unwrap();
        let err = score_dota_files(&gt, &det, None, &devkit()).unwrap_err();
        assert!(err.to_string().contains("P2.txt:2:"), "{err}");
        let empty = dir.path().join("empty");
        fs_err::create_dir_all(&empty).unwrap();
        let err = read_dota_ground_truth(&empty).unwrap_err().to_string();
        assert!(err.contains("no ground-truth `<image>.txt` files"), "{err}");
    }

    fn label(path: &Path, width: u32, height: u32, data: Vec<u8>) {
        let image = Image {
            width,
            height,
            channels: 1,
            data,
        };
        write_png(path, &image).unwrap();
    }

    const OPTIONS: LabelMapOptions = LabelMapOptions {
        ignore: 255,
        reduce_zero_label: false,
    };

    #[test]
    fn label_maps_are_paired_by_name_and_counted() {
        let dir = tempfile::tempdir().unwrap();
        let (gt, pred) = (dir.path().join("gt"), dir.path().join("pred"));
        label(&gt.join("a.png"), 2, 2, vec![0, 0, 1, 255]);
        label(&pred.join("a.png"), 2, 2, vec![0, 1, 1, 0]);
        let mut matrix = ConfusionMatrix::new(2).unwrap();
        accumulate_label_maps(&gt, &pred, OPTIONS, &mut matrix).unwrap();
        let report = matrix.report(&[]);
        assert_eq!(report.iou, vec![0.5, 0.5]);
        assert!((report.oa - 2.0 / 3.0).abs() < 1e-12);
        // With reduce-zero-label, gt 0 is ignored and 1 becomes class 0.
        let reduced = LabelMapOptions {
            reduce_zero_label: true,
            ..OPTIONS
        };
        let mut matrix = ConfusionMatrix::new(2).unwrap();
        accumulate_label_maps(&gt, &pred, reduced, &mut matrix).unwrap();
        assert_eq!(matrix.report(&[]).iou[0], 0.0);
    }

    #[test]
    fn a_missing_counterpart_or_another_size_names_the_files() {
        let dir = tempfile::tempdir().unwrap();
        let (gt, pred) = (dir.path().join("gt"), dir.path().join("pred"));
        label(&gt.join("a.png"), 2, 2, vec![0; 4]);
        label(&gt.join("b.png"), 2, 2, vec![0; 4]);
        label(&pred.join("a.png"), 2, 2, vec![0; 4]);
        let mut matrix = ConfusionMatrix::new(2).unwrap();
        let err = accumulate_label_maps(&gt, &pred, OPTIONS, &mut matrix)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("b.png") && err.contains("no prediction"),
            "{err}"
        );
        label(&pred.join("b.png"), 1, 4, vec![0; 4]);
        let err = accumulate_label_maps(&gt, &pred, OPTIONS, &mut matrix)
            .unwrap_err()
            .to_string();
        assert!(err.contains("b.png") && err.contains("1x4"), "{err}");
    }
}
