//! `rsfm eval dota|seg`: score predictions on disk against ground truth on disk.
//!
//! - `dota`: ground truth `labelTxt/<image>.txt`, detections `Task1_<class>.txt`; rotated mAP
//!   under the DOTA devkit or MMRotate protocol. JSON: `{"map": f64, "ap": {"class": f64|null}}`
//!   (plus `per_threshold` when several IoU thresholds are given).
//! - `seg`: single-channel 8-bit PNG label maps with the same file names in both folders.
//!   JSON: `{"miou", "mf1", "oa", "iou": {..}, "f1": {..}}` (NaN as `null`).
//!
//! Bad input prints one error naming the file (and line) and exits with code 2.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use super::BadInput;
use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use rsfm_model::data::formats::dota::{read_label, read_task1_dir, ClassCheck};
use rsfm_model::data::image_io::read_label_png;
use rsfm_model::metrics::detection::{
    evaluate, ApMetric, Detection, DetectionReport, EvalOptions, GroundTruth, Protocol,
};
use rsfm_model::metrics::segmentation::{reduce_zero_label, ConfusionMatrix, SegReport};

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
                Ok(render_dota(&report))
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

/// The paths in `dir`; an unreadable folder or entry is an error with `hint` as its context.
fn entries(dir: &Path, hint: &str) -> anyhow::Result<Vec<PathBuf>> {
    fs_err::read_dir(dir)
        .with_context(|| hint.to_string())?
        .map(|entry| entry.map(|entry| entry.path()))
        .collect::<Result<_, _>>()
        .with_context(|| format!("{}: cannot list an entry", dir.display()))
}

/// Reads every `<image>.txt` of a labelTxt folder as ground truth.
fn read_ground_truth(dir: &Path) -> anyhow::Result<Vec<GroundTruth>> {
    let mut files: Vec<PathBuf> = entries(
        dir,
        "pass the labelTxt folder of the ground truth with --gt",
    )?
    .into_iter()
    .filter(|p| p.extension().is_some_and(|e| e == "txt"))
    .collect();
    files.sort();
    if files.is_empty() {
        bail!("{}: no ground-truth `<image>.txt` files", dir.display());
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

/// Computes the DOTA report of `rsfm eval dota`.
pub fn dota_report(args: &DotaEvalArgs) -> anyhow::Result<DetectionReport> {
    if args.iou.is_empty() || args.iou.iter().any(|t| !(0.0..=1.0).contains(t)) {
        bail!("--iou takes thresholds between 0 and 1, e.g. --iou 0.5 or --iou 0.5,0.75");
    }
    let gts = read_ground_truth(&args.gt)?;
    let (det_classes, task1) = read_task1_dir(&args.det)?;
    let classes: Vec<String> = match &args.classes {
        Some(list) if list.is_empty() => bail!("--classes is empty: give class names a,b,..."),
        Some(list) => list.clone(),
        None => {
            let mut all: BTreeSet<String> = det_classes.into_iter().collect();
            all.extend(gts.iter().map(|g| g.class.clone()));
            all.into_iter().collect()
        }
    };
    let dets: Vec<Detection> = task1.into_iter().map(Detection::from).collect();
    let options = EvalOptions {
        protocol: args.protocol,
        metric: args.metric,
        iou_thresholds: args.iou.clone(),
    };
    Ok(evaluate(&gts, &dets, &classes, &options))
}

fn fmt_score(value: Option<f64>) -> String {
    match value {
        Some(v) if v.is_finite() => format!("{v:.4}"),
        _ => "—".to_string(),
    }
}

/// The aligned table of a DOTA report.
pub fn render_dota(report: &DetectionReport) -> String {
    let width = report
        .ap
        .keys()
        .map(|c| c.chars().count())
        .max()
        .unwrap_or(0)
        .max(5);
    let mut out = String::new();
    let _ = writeln!(out, "{:<width$}  {:>7}", "class", "AP");
    for (class, ap) in &report.ap {
        let _ = writeln!(out, "{class:<width$}  {:>7}", fmt_score(*ap));
    }
    for (threshold, map) in &report.per_threshold {
        let _ = writeln!(
            out,
            "{:<width$}  {:>7}",
            format!("mAP@{threshold}"),
            fmt_score(Some(*map))
        );
    }
    let _ = writeln!(out, "{:<width$}  {:>7}", "mAP", fmt_score(Some(report.map)));
    out
}

fn png_names(dir: &Path, flag: &str) -> anyhow::Result<BTreeSet<String>> {
    Ok(
        entries(dir, &format!("pass a folder of label PNGs with {flag}"))?
            .into_iter()
            .filter(|p| p.extension().is_some_and(|e| e.eq_ignore_ascii_case("png")))
            .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
            .collect(),
    )
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
    let gt_names = png_names(&args.gt, "--gt")?;
    let pred_names = png_names(&args.pred, "--pred")?;
    if gt_names.is_empty() {
        bail!("{}: no ground-truth PNG label maps", args.gt.display());
    }
    if let Some(name) = gt_names.difference(&pred_names).next() {
        bail!(
            "{}: ground truth has no prediction {}",
            args.gt.join(name).display(),
            args.pred.join(name).display()
        );
    }
    if let Some(name) = pred_names.difference(&gt_names).next() {
        bail!(
            "{}: prediction has no ground truth {}",
            args.pred.join(name).display(),
            args.gt.join(name).display()
        );
    }
    for name in &gt_names {
        let (gt_path, pred_path) = (args.gt.join(name), args.pred.join(name));
        let mut gt = read_label_png(&gt_path)?;
        let pred = read_label_png(&pred_path)?;
        if (gt.width, gt.height) != (pred.width, pred.height) {
            bail!(
                "{}: prediction is {}x{} but its ground truth {} is {}x{}",
                pred_path.display(),
                pred.width,
                pred.height,
                gt_path.display(),
                gt.width,
                gt.height
            );
        }
        if args.reduce_zero_label {
            reduce_zero_label(&mut gt.data);
        }
        matrix
            .accumulate(&pred.data, &gt.data, Some(args.ignore))
            .with_context(|| format!("{}", pred_path.display()))?;
    }
    Ok((matrix.report(&args.exclude_from_mean), names))
}

/// The aligned table of a segmentation report.
pub fn render_seg(report: &SegReport, names: &[String]) -> String {
    let width = names
        .iter()
        .map(|c| c.chars().count())
        .max()
        .unwrap_or(0)
        .max(5);
    let value = |v: f64| fmt_score(Some(v));
    let mut out = String::new();
    let _ = writeln!(out, "{:<width$}  {:>7}  {:>7}", "class", "IoU", "F1");
    for (k, name) in names.iter().enumerate() {
        let _ = writeln!(
            out,
            "{name:<width$}  {:>7}  {:>7}",
            value(report.iou[k]),
            value(report.fscore[k])
        );
    }
    let _ = writeln!(out, "{:<width$}  {:>7}", "mIoU", value(report.miou));
    let _ = writeln!(out, "{:<width$}  {:>7}", "mF1", value(report.mf1));
    let _ = writeln!(out, "{:<width$}  {:>7}", "OA", value(report.oa));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use rsfm_model::data::formats::dota::{
        write_label, write_task1_dir, DotaLabel, DotaObject, Task1Detection,
    };
    use rsfm_model::data::image_io::{write_png, Image};

    fn square(x: f64, y: f64) -> [[f64; 2]; 4] {
        [[x, y], [x + 10.0, y], [x + 10.0, y + 10.0], [x, y + 10.0]]
    }

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
    fn dota_scores_from_files() {
        let dir = tempfile::tempdir().unwrap();
        let (gt, det) = (dir.path().join("labelTxt"), dir.path().join("det"));
        let objects = vec![
            DotaObject {
                poly: square(0.0, 0.0),
                class: "ship".into(),
                difficult: 0,
            },
            DotaObject {
                poly: square(50.0, 50.0),
                class: "plane".into(),
                difficult: 0,
            },
        ];
        write_label(
            &gt.join("P1.txt"),
            &DotaLabel {
                objects,
                ..Default::default()
            },
        )
        .unwrap();
        let hit = Task1Detection {
            image: "P1".into(),
            class: "ship".into(),
            score: 0.9,
            poly: square(0.0, 0.0),
        };
        let miss = Task1Detection {
            image: "P1".into(),
            class: "ship".into(),
            score: 0.8,
            poly: square(80.0, 0.0),
        };
        write_task1_dir(&det, &["ship"], &[hit, miss]).unwrap();
        let report = dota_report(&dota_args(&gt, &det)).unwrap();
        assert_eq!(report.ap.keys().collect::<Vec<_>>(), ["plane", "ship"]);
        assert!((report.ap["ship"].unwrap() - 1.0).abs() < 1e-9);
        // No detection of a class with ground truth: AP 0, or null where the protocol leaves it undefined.
        assert_eq!(report.ap["plane"].unwrap_or(0.0), 0.0);
        let table = render_dota(&report);
        assert!(table.lines().last().unwrap().starts_with("mAP"), "{table}");
        let only_ship = DotaEvalArgs {
            classes: Some(vec!["ship".into()]),
            ..dota_args(&gt, &det)
        };
        assert!((dota_report(&only_ship).unwrap().map - 1.0).abs() < 1e-9);
    }

    #[test]
    fn dota_bad_line_names_file_and_line() {
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

    fn label(path: &Path, data: Vec<u8>) {
        write_png(
            path,
            &Image {
                width: 2,
                height: 2,
                channels: 1,
                data,
            },
        )
        .unwrap();
    }

    #[test]
    fn seg_scores_from_files() {
        let dir = tempfile::tempdir().unwrap();
        let (gt, pred) = (dir.path().join("gt"), dir.path().join("pred"));
        label(&gt.join("a.png"), vec![0, 0, 1, 255]);
        label(&pred.join("a.png"), vec![0, 1, 1, 0]);
        let (report, names) = seg_report(&seg_args(&gt, &pred)).unwrap();
        assert_eq!(names, ["road", "tree"]);
        assert_eq!(report.iou, vec![0.5, 0.5]);
        assert!((report.oa - 2.0 / 3.0).abs() < 1e-12);
        assert!(render_seg(&report, &names).contains("mIoU"));
        // With reduce-zero-label, gt 0 is ignored and 1 becomes class 0.
        let reduced = SegEvalArgs {
            reduce_zero_label: true,
            ..seg_args(&gt, &pred)
        };
        let (report, _) = seg_report(&reduced).unwrap();
        assert_eq!(report.iou[0], 0.0);
    }

    #[test]
    fn seg_missing_counterpart_and_size_mismatch() {
        let dir = tempfile::tempdir().unwrap();
        let (gt, pred) = (dir.path().join("gt"), dir.path().join("pred"));
        label(&gt.join("a.png"), vec![0; 4]);
        label(&gt.join("b.png"), vec![0; 4]);
        label(&pred.join("a.png"), vec![0; 4]);
        let err = seg_report(&seg_args(&gt, &pred)).unwrap_err().to_string();
        assert!(
            err.contains("b.png") && err.contains("no prediction"),
            "{err}"
        );
        write_png(
            &pred.join("b.png"),
            &Image {
                width: 1,
                height: 4,
                channels: 1,
                data: vec![0; 4],
            },
        )
        .unwrap();
        let err = seg_report(&seg_args(&gt, &pred)).unwrap_err().to_string();
        assert!(err.contains("b.png") && err.contains("1x4"), "{err}");
    }
}
