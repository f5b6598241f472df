//! `rsfm eval dota|seg`: score predictions on disk against ground truth on disk.
//!
//! - `dota`: ground truth `labelTxt/<image>.txt`, detections `Task1_<class>.txt`; rotated mAP
//!   under the DOTA devkit or MMRotate protocol. JSON: `{"map": f64, "ap": {"class": f64|null}}`
//!   (plus `per_threshold` when several IoU thresholds are given).
//! - `seg`: single-channel 8-bit PNG label maps with the same file names in both folders.
//!   JSON: `{"miou", "mf1", "oa", "iou": {..}, "f1": {..}}` (NaN as `null`).
//!
//! Bad input prints one error naming the file (and line) and exits with code 2.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use super::BadInput;
use crate::query::table::Table;
use anyhow::bail;
use clap::{Args, Subcommand};
use rsfm_model::data::error::DataError;
use rsfm_model::metrics::detection::{ApMetric, DetectionReport, EvalOptions, Protocol};
use rsfm_model::metrics::files::{accumulate_label_maps, score_dota_files, LabelMapOptions};
use rsfm_model::metrics::segmentation::{ConfusionMatrix, SegReport};
use serde_json::Value;

/// Arguments of `rsfm eval`.
#[derive(Debug, Clone, Args)]
pub struct EvalArgs {
    /// What to evaluate.
    #[command(subcommand)]
    pub target: EvalTarget,
}

/// The evaluations `rsfm eval` offers.
#[derive(Debug, Clone, Subcommand)]
pub enum EvalTarget {
    /// Rotated-box mAP of DOTA Task1 results against DOTA labelTxt ground truth.
    Dota(DotaEvalArgs),
    /// mIoU, mF1 and OA of segmentation label maps.
    Seg(SegEvalArgs),
}

/// Arguments of `rsfm eval dota`.
#[derive(Debug, Clone, Args)]
pub struct DotaEvalArgs {
    /// Folder of ground-truth `<image>.txt` files (DOTA labelTxt format).
    #[arg(long)]
    pub gt: PathBuf,
    /// Folder of `Task1_<class>.txt` detection files.
    #[arg(long)]
    pub det: PathBuf,
    /// Scoring protocol: devkit, devkit-v1.5, mmrotate (and mmrotate-ignore-difficult,
    /// mmrotate-0.x, mmrotate-0.x-ignore-difficult).
    #[arg(long, default_value = "devkit", value_parser = parse_protocol)]
    pub protocol: Protocol,
    /// AP integration: voc07 (11-point) or voc12 (area).
    #[arg(long, default_value = "voc07", value_parser = parse_metric)]
    pub metric: ApMetric,
    /// IoU thresholds, comma-separated; mAP is averaged over them.
    #[arg(long, value_delimiter = ',', default_value = "0.5")]
    pub iou: Vec<f64>,
    /// Classes to score, comma-separated; default: the union of the Task1 files present and
    /// the classes in the ground truth.
    #[arg(long, value_delimiter = ',')]
    pub classes: Option<Vec<String>>,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `rsfm eval seg`.
#[derive(Debug, Clone, Args)]
pub struct SegEvalArgs {
    /// Folder of ground-truth label PNGs.
    #[arg(long)]
    pub gt: PathBuf,
    /// Folder of predicted label PNGs with the same file names.
    #[arg(long)]
    pub pred: PathBuf,
    /// Number of classes (label values 0..N).
    #[arg(long)]
    pub classes: usize,
    /// Ground-truth value that is not scored.
    #[arg(long, default_value_t = 255)]
    pub ignore: u8,
    /// Map ground truth 0 to the ignore value and k to k − 1 before scoring (MMSeg's
    /// `reduce_zero_label`, e.g. for LoveDA masks).
    #[arg(long)]
    pub reduce_zero_label: bool,
    /// Class indices left out of the means (e.g. Potsdam's clutter, 5), comma-separated.
    #[arg(long, value_delimiter = ',')]
    pub exclude_from_mean: Vec<usize>,
    /// Class names for the report, comma-separated (default: the indices).
    #[arg(long, value_delimiter = ',')]
    pub class_names: Option<Vec<String>>,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

fn parse_protocol(s: &str) -> Result<Protocol, String> {
    s.parse()
}

fn parse_metric(s: &str) -> Result<ApMetric, String> {
    s.parse()
}

/// Runs `rsfm eval`; `json` is the global `--json` flag (either flag selects JSON).
/// Bad input prints the error and returns exit code 2.
pub fn run(args: &EvalArgs, json: bool) -> anyhow::Result<ExitCode> {
    let text = match &args.target {
        EvalTarget::Dota(dota) => dota_report(dota).map(|report| {
            if json || dota.json {
                serde_json::to_string_pretty(&report).map(|s| s + "\n")
            } else {
                Ok(dota_table(&report).to_text())
            }
        }),
        EvalTarget::Seg(seg) => seg_report(seg).map(|(report, names)| {
            if json || seg.json {
                serde_json::to_string_pretty(&report.to_json(&names)).map(|s| s + "\n")
            } else {
                Ok(render_seg(&report, &names))
            }
        }),
    };
    match text {
        Ok(text) => {
            std::io::stdout().lock().write_all(text?.as_bytes())?;
            Ok(ExitCode::SUCCESS)
        }
        Err(err) => Err(BadInput::wrap(err)),
    }
}

/// Computes the DOTA report of `rsfm eval dota`.
pub fn dota_report(args: &DotaEvalArgs) -> anyhow::Result<DetectionReport> {
    if args.iou.is_empty() || args.iou.iter().any(|t| !(0.0..=1.0).contains(t)) {
        bail!("--iou takes thresholds between 0 and 1, e.g. --iou 0.5 or --iou 0.5,0.75");
    }
    if args.classes.as_ref().is_some_and(Vec::is_empty) {
        bail!("--classes is empty: give class names a,b,...");
    }
    let options = EvalOptions {
        protocol: args.protocol,
        metric: args.metric,
        iou_thresholds: args.iou.clone(),
    };
    score_dota_files(&args.gt, &args.det, args.classes.as_deref(), &options).map_err(|err| {
        with_folder_hint(
            err,
            &[
                (
                    &args.gt,
                    "pass the labelTxt folder of the ground truth with --gt",
                ),
                (
                    &args.det,
                    "pass the folder of the Task1_<class>.txt files with --det",
                ),
            ],
        )
    })
}

/// Computes the segmentation report of `rsfm eval seg` and the class names to show.
pub fn seg_report(args: &SegEvalArgs) -> anyhow::Result<(SegReport, Vec<String>)> {
    let names: Vec<String> = match &args.class_names {
        Some(names) if names.len() != args.classes => bail!(
            "--class-names lists {} names but --classes is {}",
            names.len(),
            args.classes
        ),
        Some(names) => names.clone(),
        None => (0..args.classes).map(|k| k.to_string()).collect(),
    };
    if let Some(k) = args.exclude_from_mean.iter().find(|&&k| k >= args.classes) {
        bail!(
            "--exclude-from-mean {k} is not a class index below {}",
            args.classes
        );
    }
    let mut matrix =
        ConfusionMatrix::new(args.classes).map_err(|e| anyhow::anyhow!("--classes: {e}"))?;
    let options = LabelMapOptions {
        ignore: args.ignore,
        reduce_zero_label: args.reduce_zero_label,
    };
    accumulate_label_maps(&args.gt, &args.pred, options, &mut matrix).map_err(|err| {
        with_folder_hint(
            err,
            &[
                (&args.gt, "pass a folder of label PNGs with --gt"),
                (&args.pred, "pass a folder of label PNGs with --pred"),
            ],
        )
    })?;
    Ok((matrix.report(&args.exclude_from_mean), names))
}

/// `error`, with the hint of its folder as context where it is the failure to list one of
/// `folders` (a folder and the flag that names it).
fn with_folder_hint(error: DataError, folders: &[(&PathBuf, &'static str)]) -> anyhow::Error {
    let hint = match &error {
        DataError::Io { path, .. } => folders
            .iter()
            .find(|(folder, _)| *folder == path)
            .map(|(_, hint)| *hint),
        _ => None,
    };
    match hint {
        Some(hint) => anyhow::Error::new(error).context(hint),
        None => error.into(),
    }
}

/// A score as a table cell: NULL where it is undefined (NaN).
fn score_cell(value: f64) -> Value {
    serde_json::Number::from_f64(value).map_or(Value::Null, Value::Number)
}

/// The table of a DOTA report: the AP of each class, then the mAP at each IoU threshold and
/// averaged over them.
pub fn dota_table(report: &DetectionReport) -> Table {
    let classes = report.ap.iter().map(|(class, ap)| {
        let ap = ap.map_or(Value::Null, score_cell);
        vec![Value::from(class.as_str()), ap]
    });
    let thresholds = report
        .per_threshold
        .iter()
        .map(|(threshold, map)| vec![Value::from(format!("mAP@{threshold}")), score_cell(*map)]);
    let mean = std::iter::once(vec![Value::from("mAP"), score_cell(report.map)]);
    Table {
        columns: vec!["class".into(), "AP".into()],
        rows: classes.chain(thresholds).chain(mean).collect(),
    }
}

/// The tables of a segmentation report: IoU and F1 of each class, then the means and the
/// overall accuracy.
pub fn seg_tables(report: &SegReport, names: &[String]) -> [Table; 2] {
    let classes = names
        .iter()
        .enumerate()
        .map(|(k, name)| {
            vec![
                Value::from(name.as_str()),
                score_cell(report.iou[k]),
                score_cell(report.fscore[k]),
            ]
        })
        .collect();
    let summary = [
        ("mIoU", report.miou),
        ("mF1", report.mf1),
        ("OA", report.oa),
    ]
    .into_iter()
    .map(|(metric, value)| vec![Value::from(metric), score_cell(value)])
    .collect();
    [
        Table {
            columns: vec!["class".into(), "IoU".into(), "F1".into()],
            rows: classes,
        },
        Table {
            columns: vec!["metric".into(), "value".into()],
            rows: summary,
        },
    ]
}

/// The text of a segmentation report: its two tables, a blank line between them.
fn render_seg(report: &SegReport, names: &[String]) -> String {
    let [classes, summary] = seg_tables(report, names);
    format!("{}\n{}", classes.to_text(), summary.to_text())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    use rsfm_model::data::formats::dota::write_task1_dir;
    use rsfm_model::data::image_io::{write_png, Image};

    fn dota_args(gt: &Path, det: &Path) -> DotaEvalArgs {
        DotaEvalArgs {
            gt: gt.to_path_buf(),
            det: det.to_path_buf(),
            protocol: Protocol::Devkit,
            metric: ApMetric::Voc07,
            iou: vec![0.5],
            classes: None,
            json: false,
        }
    }

    #[test]
    fn dota_bad_input_is_bad_input_and_a_missing_folder_names_its_flag() {
        let dir = tempfile::tempdir().unwrap();
        let (gt, det) = (dir.path().join("labelTxt"), dir.path().join("det"));
        fs_err::create_dir_all(&gt).unwrap();
        fs_err::write(gt.join("P2.txt"), "gsd:1\n1 2 3 4 5 6 ship 0\n").unwrap();
        write_task1_dir(&det, &["ship"], &[]).unwrap();
        let err = dota_report(&dota_args(&gt, &det)).unwrap_err().to_string();
        assert!(err.contains("P2.txt:2:"), "{err}");
        let args = EvalArgs {
            target: EvalTarget::Dota(dota_args(&gt, &det)),
        };
        assert!(crate::error::is_bad_input(&run(&args, true).unwrap_err()));
        let missing = dir.path().join("missing");
        let err = dota_report(&dota_args(&missing, &det)).unwrap_err();
        let shown = format!("{err:#}");
        assert!(shown.starts_with("pass the labelTxt folder of the ground truth with --gt: "));
        assert!(shown.contains(&missing.display().to_string()), "{shown}");
        let empty_classes = DotaEvalArgs {
            classes: Some(vec![]),
            ..dota_args(&gt, &det)
        };
        let err = dota_report(&empty_classes).unwrap_err().to_string();
        assert!(err.starts_with("--classes is empty"), "{err}");
    }

    #[test]
    fn dota_table_ends_with_the_map() {
        let report = DetectionReport {
            map: 0.5,
            ap: [("plane".to_string(), None), ("ship".to_string(), Some(1.0))].into(),
            per_threshold: vec![(0.5, 0.5)],
        };
        let text = dota_table(&report).to_text();
        assert_eq!(
            text,
            "class     AP\n-------  ---\nplane      -\nship       1\nmAP@0.5  0.5\nmAP      0.5\n"
        );
    }

    fn seg_args(gt: &Path, pred: &Path) -> SegEvalArgs {
        SegEvalArgs {
            gt: gt.to_path_buf(),
            pred: pred.to_path_buf(),
            classes: 2,
            ignore: 255,
            reduce_zero_label: false,
            exclude_from_mean: vec![],
            class_names: Some(vec!["road".into(), "tree".into()]),
            json: false,
        }
    }

    #[test]
    fn seg_scores_from_files_with_names_and_tables() {
        let dir = tempfile::tempdir().unwrap();
        let (gt, pred) = (dir.path().join("gt"), dir.path().join("pred"));
        for (folder, data) in [(&gt, vec![0, 0, 1, 255]), (&pred, vec![0, 1, 1, 0])] {
            let image = Image {
                width: 2,
                height: 2,
                channels: 1,
                data,
            };
            write_png(&folder.join("a.png"), &image).unwrap();
        }
        let (report, names) = seg_report(&seg_args(&gt, &pred)).unwrap();
        assert_eq!(names, ["road", "tree"]);
        assert_eq!(report.iou, vec![0.5, 0.5]);
        let text = render_seg(&report, &names);
        assert!(text.starts_with("class  IoU      F1\n"), "{text}");
        assert!(text.contains("\nmIoU       0.5\n"), "{text}");
        let unnamed = SegEvalArgs {
            class_names: Some(vec!["road".into()]),
            ..seg_args(&gt, &pred)
        };
        let err = seg_report(&unnamed).unwrap_err().to_string();
        assert!(err.contains("--class-names lists 1 names"), "{err}");
        let missing = SegEvalArgs {
            pred: dir.path().join("missing"),
            ..seg_args(&gt, &pred)
        };
        let shown = format!("{:#}", seg_report(&missing).unwrap_err());
        assert!(
            shown.starts_with("pass a folder of label PNGs with --pred: "),
            "{shown}"
        );
    }
}
