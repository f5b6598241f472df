//! DOTA: `labelTxt/<image>.txt` annotations and `Task1_<class>.txt` detection results.
//!
//! A split folder (`train/`, `val/`) holds its images anywhere below `images/` (the official
//! archives unpack into `images/part4/`, …) and its labels in one of the folders of
//! [`label_dirs`]: the official archive's (`labelTxt-v2.0/DOTA-v2.0_train/`,
//! `labelTxt-v1.5/DOTA-v1.5_train/`, `labelTxt-v1.0/labelTxt/`) or the devkit's `labelTxt/`.
//!
//! Label files may start with `imagesource:` and `gsd:` header lines; each object row is
//! `x1 y1 x2 y2 x3 y3 x4 y4 class [difficult]` (difficult defaults to 0). Result files hold
//! one detection a line: `image score x1 y1 ... x4 y4`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use crate::data::error::{read_text, sorted_entries, write_file, DataError, DataResult};
use crate::data::image_io::is_image_path;
use crate::metrics::detection::{Detection, GroundTruth};

/// The DOTA releases, which differ in their class lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DotaVersion {
    /// DOTA v1.0: 15 classes.
    V1_0,
    /// DOTA v1.5: v1.0 plus `container-crane`.
    V1_5,
    /// DOTA v2.0: v1.5 plus `airport` and `helipad`.
    V2_0,
}

/// Every DOTA class in the official devkit's order. Each release adds classes at the end, so
/// v1.0 holds the first 15 and v1.5 the first 16.
const V2_0_CLASSES: [&str; 18] = [
    "plane",
    "baseball-diamond",
    "bridge",
    "ground-track-field",
    "small-vehicle",
    "large-vehicle",
    "ship",
    "tennis-court",
    "basketball-court",
    "storage-tank",
    "soccer-ball-field",
    "roundabout",
    "harbor",
    "swimming-pool",
    "helicopter",
    "container-crane",
    "airport",
    "helipad",
];

impl DotaVersion {
    /// The class names of this release, in the order of the official devkit.
    pub fn classes(self) -> &'static [&'static str] {
        match self {
            DotaVersion::V1_0 => &V2_0_CLASSES[..15],
            DotaVersion::V1_5 => &V2_0_CLASSES[..16],
            DotaVersion::V2_0 => &V2_0_CLASSES,
        }
    }

    /// The index of `class` in [`DotaVersion::classes`].
    pub fn class_index(self, class: &str) -> Option<usize> {
        self.classes().iter().position(|c| *c == class)
    }
}

impl FromStr for DotaVersion {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim_start_matches(['v', 'V']) {
            "1" | "1.0" => Ok(DotaVersion::V1_0),
            "1.5" => Ok(DotaVersion::V1_5),
            "2" | "2.0" => Ok(DotaVersion::V2_0),
            _ => Err(format!(
                "unknown DOTA version `{s}`: expected 1.0, 1.5 or 2.0"
            )),
        }
    }
}

/// One annotated object: a quadrilateral, its class and its difficulty flag.
#[derive(Debug, Clone, PartialEq)]
pub struct DotaObject {
    /// The four corners in the file's order.
    pub poly: [[f64; 2]; 4],
    /// Class name.
    pub class: String,
    /// 0 = normal, 1 = difficult; the devkit's splitter writes 2 for heavily cut objects.
    pub difficult: u8,
}

impl DotaObject {
    /// This object as ground truth of image `image`; any non-zero flag counts as difficult,
    /// as in the devkit.
    pub fn into_ground_truth(self, image: &str) -> GroundTruth {
        GroundTruth {
            image: image.to_string(),
            class: self.class,
            poly: self.poly,
            difficult: self.difficult != 0,
        }
    }
}

/// The content of one `labelTxt` file.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DotaLabel {
    /// Text after `imagesource:`, when the header line is there.
    pub image_source: Option<String>,
    /// Text after `gsd:` (metres per pixel, or `null`), when the header line is there.
    pub gsd: Option<String>,
    /// The objects, in file order.
    pub objects: Vec<DotaObject>,
}

impl DotaLabel {
    /// The ground sample distance in metres per pixel, when given as a number.
    pub fn gsd_metres(&self) -> Option<f64> {
        self.gsd.as_deref().and_then(|g| g.parse().ok())
    }
}

/// Which classes a label reader accepts.
#[derive(Debug, Clone, Copy)]
pub enum ClassCheck<'a> {
    /// Any class name.
    Any,
    /// The classes of a DOTA release.
    Version(DotaVersion),
    /// An explicit list.
    List(&'a [&'a str]),
}

impl ClassCheck<'_> {
    fn check(&self, class: &str) -> Result<(), String> {
        let allowed: &[&str] = match self {
            ClassCheck::Any => return Ok(()),
            ClassCheck::Version(v) => v.classes(),
            ClassCheck::List(list) => list,
        };
        if allowed.contains(&class) {
            Ok(())
        } else {
            Err(format!(
                "unknown class `{class}`: expected one of {}",
                allowed.join(", ")
            ))
        }
    }
}

fn parse_number(token: &str) -> Option<f64> {
    token.parse::<f64>().ok().filter(|v| v.is_finite())
}

/// Parses the text of a `labelTxt` file; `path` is only used in errors.
pub fn parse_label(text: &str, path: &Path, classes: ClassCheck<'_>) -> DataResult<DotaLabel> {
    let mut label = DotaLabel::default();
    for (index, line) in text.lines().enumerate() {
        let line_no = index + 1;
        let trimmed = line.trim();
        if trimmed.is_empty() {
            continue;
        }
        if let Some(source) = trimmed.strip_prefix("imagesource:") {
            label.image_source = Some(source.trim().to_string());
            continue;
        }
        if let Some(gsd) = trimmed.strip_prefix("gsd:") {
            label.gsd = Some(gsd.trim().to_string());
            continue;
        }
        let object = parse_object_row(trimmed, &classes)
            .map_err(|message| DataError::parse(path, line_no, message))?;
        label.objects.push(object);
    }
    Ok(label)
}

fn parse_object_row(row: &str, classes: &ClassCheck<'_>) -> Result<DotaObject, String> {
    let tokens: Vec<&str> = row.split_whitespace().collect();
    let coords: Vec<f64> = tokens.iter().map_while(|t| parse_number(t)).collect();
    let rest = &tokens[coords.len()..];
    if coords.len() != 8 {
        let points = if coords.len().is_multiple_of(2) {
            format!("{} points", coords.len() / 2)
        } else {
            format!("{} coordinates", coords.len())
        };
        let stop = match rest.first() {
            Some(token) if coords.len() < 8 => format!(
                " (field {} `{token}` is not a finite number)",
                coords.len() + 1
            ),
            _ => String::new(),
        };
        return Err(format!(
            "expected `x1 y1 x2 y2 x3 y3 x4 y4 class [difficult]` (4 points), found {points}{stop}"
        ));
    }
    let (class, difficult) = match rest {
        [class] => (*class, 0),
        [class, flag] => {
            let difficult = flag
                .parse::<u8>()
                .map_err(|_| format!("difficult flag `{flag}` is not an integer 0, 1 or 2"))?;
            (*class, difficult)
        }
        [] => return Err("missing class name after the 8 coordinates".to_string()),
        _ => {
            return Err(format!(
                "{} extra fields after `class difficult`",
                rest.len() - 2
            ))
        }
    };
    classes.check(class)?;
    let mut poly = [[0.0; 2]; 4];
    for (i, corner) in poly.iter_mut().enumerate() {
        *corner = [coords[2 * i], coords[2 * i + 1]];
    }
    Ok(DotaObject {
        poly,
        class: class.to_string(),
        difficult,
    })
}

/// Reads one `labelTxt` file.
pub fn read_label(path: &Path, classes: ClassCheck<'_>) -> DataResult<DotaLabel> {
    parse_label(&read_text(path)?, path, classes)
}

/// The text of a `labelTxt` file (coordinates in their shortest exact decimal form).
pub fn format_label(label: &DotaLabel) -> String {
    let mut out = String::new();
    if let Some(source) = &label.image_source {
        let _ = writeln!(out, "imagesource:{source}");
    }
    if let Some(gsd) = &label.gsd {
        let _ = writeln!(out, "gsd:{gsd}");
    }
    for object in &label.objects {
        for [x, y] in object.poly {
            let _ = write!(out, "{x} {y} ");
        }
        let _ = writeln!(out, "{} {}", object.class, object.difficult);
    }
    out
}

/// Writes one `labelTxt` file.
pub fn write_label(path: &Path, label: &DotaLabel) -> DataResult<()> {
    write_file(path, format_label(label).as_bytes())
}

/// The label folders of a split of `version`, relative to the split folder (`train`, `val`),
/// in the order they are looked for: the one the official archive of `version` unpacks to,
/// then the devkit's (and `tile-dota`'s) `labelTxt`. Without a version, the official folders of
/// every release, newest first.
///
/// Sources: DOTA v2.0's `train/labelTxt-v2.0/DOTA-v2.0_train/` (beside `DOTA-v2.0_train_hbb/`)
/// and v1.5's `train/labelTxt-v1.5/DOTA-v1.5_train/` as the download site's folders appear in
/// users' scripts and READMEs (the archives' own listing was not seen); v1.0's
/// `labelTxt-v1.0/labelTxt/` (beside `trainset_reclabelTxt/`) as MMYOLO's dataset preparation
/// documents OpenDataLab's DOTA v1.0 download. The official v1.0 site's own folder names were
/// not verified.
pub fn label_dirs(split: &str, version: Option<DotaVersion>) -> Vec<String> {
    let official = |v: DotaVersion| match v {
        DotaVersion::V2_0 => format!("labelTxt-v2.0/DOTA-v2.0_{split}"),
        DotaVersion::V1_5 => format!("labelTxt-v1.5/DOTA-v1.5_{split}"),
        DotaVersion::V1_0 => "labelTxt-v1.0/labelTxt".to_string(),
    };
    let mut dirs: Vec<String> = match version {
        Some(v) => vec![official(v)],
        None => [DotaVersion::V2_0, DotaVersion::V1_5, DotaVersion::V1_0]
            .map(official)
            .to_vec(),
    };
    dirs.push("labelTxt".to_string());
    dirs
}

/// Whether `dir` holds a `.txt` file directly.
pub fn holds_labels(dir: &Path) -> bool {
    std::fs::read_dir(dir).is_ok_and(|entries| {
        entries
            .flatten()
            .any(|e| e.path().extension().is_some_and(|x| x == "txt") && e.path().is_file())
    })
}

/// The label folder of the split folder `split_dir` (named `train`, `val`, …) for `version`:
/// the first of [`label_dirs`] that holds `.txt` files. None found is an error naming the
/// folders looked for, and a label folder of another release when there is one.
pub fn find_label_dir(split_dir: &Path, version: Option<DotaVersion>) -> DataResult<PathBuf> {
    let split = split_dir
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    let wanted = label_dirs(split, version);
    if let Some(found) = wanted
        .iter()
        .map(|d| split_dir.join(d))
        .find(|d| holds_labels(d))
    {
        return Ok(found);
    }
    let other = label_dirs(split, None)
        .into_iter()
        .find(|d| !wanted.contains(d) && holds_labels(&split_dir.join(d)));
    let message = match other {
        Some(other) => format!(
            "labels of another DOTA release here (`{other}`): this stage reads DOTA {}; set its `version` to the release of these labels",
            version.map_or("?", version_name)
        ),
        None => format!(
            "no DOTA labels: expected `.txt` files in {}",
            wanted
                .iter()
                .map(|d| format!("`{d}/`"))
                .collect::<Vec<_>>()
                .join(" or ")
        ),
    };
    Err(DataError::invalid(split_dir, message))
}

fn version_name(version: DotaVersion) -> &'static str {
    match version {
        DotaVersion::V1_0 => "v1.0",
        DotaVersion::V1_5 => "v1.5",
        DotaVersion::V2_0 => "v2.0",
    }
}

/// Every image below `dir` (at any depth: the official archives unpack into `images/part4/`,
/// …) by id (file stem). Two images of one id are an error naming both.
pub fn list_images(dir: &Path) -> DataResult<BTreeMap<String, PathBuf>> {
    fn walk(dir: &Path, out: &mut BTreeMap<String, PathBuf>) -> DataResult<()> {
        for path in sorted_entries(dir)? {
            if path.is_dir() {
                walk(&path, out)?;
            } else if is_image_path(&path) {
                let Some(stem) = path.file_stem().and_then(|s| s.to_str()) else {
                    continue;
                };
                if let Some(first) = out.insert(stem.to_string(), path.clone()) {
                    return Err(DataError::invalid(
                        &path,
                        format!(
                            "a second image of id `{stem}` (the first: {}): keep one of them",
                            first.display()
                        ),
                    ));
                }
            }
        }
        Ok(())
    }
    let mut out = BTreeMap::new();
    walk(dir, &mut out)?;
    Ok(out)
}

/// One image of a DOTA split with its annotation.
#[derive(Debug, Clone, PartialEq)]
pub struct DotaSample {
    /// Image id (file stem, e.g. `P0706`).
    pub id: String,
    /// Path of the image.
    pub image: PathBuf,
    /// Path of the label file.
    pub label_path: PathBuf,
    /// Parsed annotation.
    pub label: DotaLabel,
}

/// Reads a split laid out as `images_dir/**/<id>.{png,jpg,tif}` with `labels_dir/<id>.txt`.
///
/// Every label must have its image (labels without one are an error naming the first and how
/// many); images without a label file are listed with an empty annotation (as DOTA's test
/// split).
pub fn read_split(
    images_dir: &Path,
    labels_dir: &Path,
    classes: ClassCheck<'_>,
) -> DataResult<Vec<DotaSample>> {
    let images = list_images(images_dir)?;
    let mut labels: BTreeMap<String, PathBuf> = BTreeMap::new();
    let mut orphans: Vec<PathBuf> = Vec::new();
    if labels_dir.is_dir() {
        for path in sorted_entries(labels_dir)? {
            if path.extension().is_some_and(|e| e == "txt") {
                let stem = path
                    .file_stem()
                    .and_then(|s| s.to_str())
                    .unwrap_or_default();
                if images.contains_key(stem) {
                    labels.insert(stem.to_string(), path);
                } else {
                    orphans.push(path);
                }
            }
        }
    }
    if let Some(first) = orphans.first() {
        let stem = first
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or_default();
        return Err(DataError::invalid(
            first,
            format!(
                "label has no image `{stem}.png` (or .jpg/.tif) below {} ({} label{} without one in all); DOTA v2.0's labels cover the DOTA v1.0 images too: unpack those (train part1-3, val part1) below the same images/ folder",
                images_dir.display(),
                orphans.len(),
                if orphans.len() == 1 { "" } else { "s" }
            ),
        ));
    }
    images
        .into_iter()
        .map(|(id, image)| {
            let label_path = labels
                .remove(&id)
                .unwrap_or_else(|| labels_dir.join(format!("{id}.txt")));
            let label = if label_path.is_file() {
                read_label(&label_path, classes)?
            } else {
                DotaLabel::default()
            };
            Ok(DotaSample {
                id,
                image,
                label_path,
                label,
            })
        })
        .collect()
}

/// One line of a `Task1_<class>.txt` result file.
#[derive(Debug, Clone, PartialEq)]
pub struct Task1Detection {
    /// Image id.
    pub image: String,
    /// Class name (from the file name).
    pub class: String,
    /// Confidence.
    pub score: f64,
    /// The four corners.
    pub poly: [[f64; 2]; 4],
}

impl From<Task1Detection> for Detection {
    fn from(d: Task1Detection) -> Self {
        Detection {
            image: d.image,
            class: d.class,
            score: d.score,
            poly: d.poly,
        }
    }
}

/// The class named by a `Task1_<class>.txt` file name, if it is one.
pub fn task1_class(path: &Path) -> Option<String> {
    let name = path.file_name()?.to_str()?;
    let class = name.strip_prefix("Task1_")?.strip_suffix(".txt")?;
    (!class.is_empty()).then(|| class.to_string())
}

/// Parses the text of a `Task1_<class>.txt` file; `path` is only used in errors.
pub fn parse_task1(text: &str, path: &Path, class: &str) -> DataResult<Vec<Task1Detection>> {
    let mut detections = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let trimmed = line.trim();
        if trimmed.is_empty() {
            continue;
        }
        let tokens: Vec<&str> = trimmed.split_whitespace().collect();
        if tokens.len() != 10 {
            return Err(DataError::parse(
                path,
                index + 1,
                format!(
                    "expected `image score x1 y1 x2 y2 x3 y3 x4 y4` (10 fields), found {}",
                    tokens.len()
                ),
            ));
        }
        let numbers: Vec<f64> = tokens[1..]
            .iter()
            .map(|t| {
                parse_number(t).ok_or_else(|| {
                    DataError::parse(path, index + 1, format!("`{t}` is not a finite number"))
                })
            })
            .collect::<DataResult<_>>()?;
        let mut poly = [[0.0; 2]; 4];
        for (i, corner) in poly.iter_mut().enumerate() {
            *corner = [numbers[1 + 2 * i], numbers[2 + 2 * i]];
        }
        detections.push(Task1Detection {
            image: tokens[0].to_string(),
            class: class.to_string(),
            score: numbers[0],
            poly,
        });
    }
    Ok(detections)
}

/// Reads every `Task1_<class>.txt` in `dir`; returns the classes whose files exist and the detections.
pub fn read_task1_dir(dir: &Path) -> DataResult<(Vec<String>, Vec<Task1Detection>)> {
    let mut classes = Vec::new();
    let mut detections = Vec::new();
    for path in sorted_entries(dir)? {
        if let Some(class) = task1_class(&path) {
            detections.extend(parse_task1(&read_text(&path)?, &path, &class)?);
            classes.push(class);
        }
    }
    if classes.is_empty() {
        return Err(DataError::invalid(
            dir,
            "no `Task1_<class>.txt` files: pass the folder that holds the DOTA Task1 results",
        ));
    }
    Ok((classes, detections))
}

/// Writes one `Task1_<class>.txt` per class in `classes` (empty files for classes without detections).
pub fn write_task1_dir(
    dir: &Path,
    classes: &[&str],
    detections: &[Task1Detection],
) -> DataResult<()> {
    let mut texts: BTreeMap<&str, String> = classes.iter().map(|c| (*c, String::new())).collect();
    for det in detections {
        let text = texts.entry(det.class.as_str()).or_default();
        let _ = write!(text, "{} {}", det.image, det.score);
        for [x, y] in det.poly {
            let _ = write!(text, " {x} {y}");
        }
        text.push('\n');
    }
    for (class, text) in texts {
        write_file(&dir.join(format!("Task1_{class}.txt")), text.as_bytes())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> DataResult<DotaLabel> {
        parse_label(
            text,
            Path::new("x.txt"),
            ClassCheck::Version(DotaVersion::V1_0),
        )
    }

    #[test]
    fn each_release_extends_the_one_before() {
        let counts = [DotaVersion::V1_0, DotaVersion::V1_5, DotaVersion::V2_0]
            .map(|version| version.classes().len());
        assert_eq!(counts, [15, 16, 18]);
        assert_eq!(DotaVersion::V1_0.classes().last(), Some(&"helicopter"));
        assert_eq!(DotaVersion::V1_5.class_index("container-crane"), Some(15));
        assert_eq!(DotaVersion::V1_5.class_index("airport"), None);
        assert_eq!(DotaVersion::V2_0.class_index("helipad"), Some(17));
    }

    #[test]
    fn objects_and_results_convert_for_the_metrics() {
        let label = parse("1 2 3 4 5 6 7 8 plane 2\n1 2 3 4 5 6 7 8 ship 0\n").unwrap();
        let gts: Vec<GroundTruth> = label
            .objects
            .into_iter()
            .map(|o| o.into_ground_truth("P0001"))
            .collect();
        assert_eq!(gts[0].image, "P0001");
        assert_eq!(gts[0].class, "plane");
        assert_eq!(gts[0].poly[1], [3.0, 4.0]);
        assert!(
            gts[0].difficult,
            "the splitter's flag 2 counts as difficult"
        );
        assert!(!gts[1].difficult);
        let result = Task1Detection {
            image: "P0001".into(),
            class: "ship".into(),
            score: 0.75,
            poly: [[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]],
        };
        let det = Detection::from(result.clone());
        assert_eq!(
            (det.image, det.class, det.score, det.poly),
            (result.image, result.class, result.score, result.poly)
        );
    }

    #[test]
    fn header_and_rows() {
        let label = parse(
            "imagesource:GoogleEarth\ngsd:0.25\n1 2 3 4 5 6 7 8 plane 1\n1 2 3 4 5 6 7 8 ship\n",
        )
        .unwrap();
        assert_eq!(label.image_source.as_deref(), Some("GoogleEarth"));
        assert_eq!(label.gsd_metres(), Some(0.25));
        assert_eq!(label.objects.len(), 2);
        assert_eq!(label.objects[0].difficult, 1);
        assert_eq!(label.objects[1].difficult, 0);
        assert_eq!(label.objects[1].poly[3], [7.0, 8.0]);
    }

    #[test]
    fn bad_rows_name_the_line() {
        let err = parse("gsd:1\n1 2 3 4 5 6 7 plane 0\n")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("x.txt:2:"), "{err}");
        let err = parse("1 2 3 4 5 6 7 8 9 10 11 12 13 14 ship 0\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("7 points"), "{err}");
        let err = parse("1 2 3 4 5 6 7 8 airport 0\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown class `airport`"), "{err}");
        assert!(parse("1 2 3 4 5 6 7 8\n").is_err());
        assert!(parse("1 2 3 4 5 6 7 8 ship x\n").is_err());
    }

    #[test]
    fn versions_have_their_class_counts() {
        assert_eq!(DotaVersion::V1_0.classes().len(), 15);
        assert_eq!(DotaVersion::V1_5.classes().len(), 16);
        assert_eq!(DotaVersion::V2_0.classes().len(), 18);
        assert_eq!("2.0".parse::<DotaVersion>(), Ok(DotaVersion::V2_0));
        assert_eq!(DotaVersion::V1_5.class_index("container-crane"), Some(15));
    }

    #[test]
    fn task1_lines() {
        let dets = parse_task1(
            "P1 0.9 1 2 3 4 5 6 7 8\n",
            Path::new("Task1_ship.txt"),
            "ship",
        )
        .unwrap();
        assert_eq!(dets[0].score, 0.9);
        assert_eq!(
            task1_class(Path::new("a/Task1_small-vehicle.txt")).as_deref(),
            Some("small-vehicle")
        );
        let err = parse_task1("P1 0.9 1 2\n", Path::new("Task1_ship.txt"), "ship").unwrap_err();
        assert!(err.to_string().starts_with("Task1_ship.txt:1:"));
    }
}
