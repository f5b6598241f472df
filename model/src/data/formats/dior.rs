//! DIOR and DIOR-R: VOC-style XML annotations.
//!
//! DIOR-R objects carry `<robndbox>` corners (`x_left_top, y_left_top, x_right_top, y_right_top,
//! x_right_bottom, y_right_bottom, x_left_bottom, y_left_bottom`) and often an `<angle>`; the
//! horizontal DIOR release carries `<bndbox>` (`xmin, ymin, xmax, ymax`). The DIOR-R layout is
//! `Annotations/Oriented Bounding Boxes/<id>.xml`, `JPEGImages-trainval/`, `JPEGImages-test/`
//! and `ImageSets/Main/{trainval,test}.txt`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use super::xml::{escape, parse_xml, XmlNode};
use crate::data::error::{read_text, write_file, DataError, DataResult};
use crate::data::image_io::image_size;

/// The 20 DIOR classes, lower-case, in MMRotate's order.
pub const DIOR_CLASSES: [&str; 20] = [
    "airplane",
    "airport",
    "baseballfield",
    "basketballcourt",
    "bridge",
    "chimney",
    "expressway-service-area",
    "expressway-toll-station",
    "dam",
    "golffield",
    "groundtrackfield",
    "harbor",
    "overpass",
    "ship",
    "stadium",
    "storagetank",
    "tenniscourt",
    "trainstation",
    "vehicle",
    "windmill",
];

/// The index of a DIOR class name, ignoring case, `-` and `_` (the DIOR files write
/// `Expressway-Service-area`, MMRotate `expressway-service-area`, torchgeo `expresswayservicearea`).
pub fn dior_class_index(name: &str) -> Option<usize> {
    let key = |s: &str| -> String {
        s.chars()
            .filter(|c| *c != '-' && *c != '_')
            .map(|c| c.to_ascii_lowercase())
            .collect()
    };
    let wanted = key(name);
    DIOR_CLASSES.iter().position(|c| key(c) == wanted)
}

/// The geometry of one DIOR object.
#[derive(Debug, Clone, PartialEq)]
pub enum DiorBox {
    /// DIOR-R `robndbox`: corners left-top, right-top, right-bottom, left-bottom, and the optional `angle`.
    Oriented {
        /// The four corners in the XML's order.
        corners: [[f64; 2]; 4],
        /// The `<angle>` element in degrees, when present.
        angle: Option<f64>,
    },
    /// DIOR `bndbox`.
    Horizontal {
        /// Left edge.
        xmin: f64,
        /// Top edge.
        ymin: f64,
        /// Right edge.
        xmax: f64,
        /// Bottom edge.
        ymax: f64,
    },
}

impl DiorBox {
    /// The four corners as a polygon (clockwise in image coordinates for horizontal boxes).
    pub fn polygon(&self) -> [[f64; 2]; 4] {
        match *self {
            DiorBox::Oriented { corners, .. } => corners,
            DiorBox::Horizontal {
                xmin,
                ymin,
                xmax,
                ymax,
            } => [[xmin, ymin], [xmax, ymin], [xmax, ymax], [xmin, ymax]],
        }
    }
}

/// One annotated object.
#[derive(Debug, Clone, PartialEq)]
pub struct DiorObject {
    /// Class name as spelled in [`DIOR_CLASSES`].
    pub class: String,
    /// The `<difficult>` flag (absent = false).
    pub difficult: bool,
    /// The `<truncated>` flag (absent = false).
    pub truncated: bool,
    /// Oriented or horizontal box.
    pub geometry: DiorBox,
}

/// The content of one annotation XML file.
#[derive(Debug, Clone, PartialEq)]
pub struct DiorAnnotation {
    /// `<filename>` (e.g. `00001.jpg`).
    pub filename: String,
    /// `<size><width>`.
    pub width: u32,
    /// `<size><height>`.
    pub height: u32,
    /// `<size><depth>`.
    pub depth: u32,
    /// The objects in file order.
    pub objects: Vec<DiorObject>,
}

const ROBNDBOX_FIELDS: [[&str; 2]; 4] = [
    ["x_left_top", "y_left_top"],
    ["x_right_top", "y_right_top"],
    ["x_right_bottom", "y_right_bottom"],
    ["x_left_bottom", "y_left_bottom"],
];

fn parse_flag(object: &XmlNode, name: &str, path: &Path) -> DataResult<bool> {
    match object.child(name) {
        None => Ok(false),
        Some(node) => match node.text.as_str() {
            "" | "0" => Ok(false),
            "1" => Ok(true),
            other => Err(DataError::parse(
                path,
                node.line,
                format!("<{name}> holds `{other}`, expected 0 or 1"),
            )),
        },
    }
}

fn parse_size(root: &XmlNode, name: &str, path: &Path) -> DataResult<u32> {
    let size = root.required_text("size", path)?;
    let node = size.required_text(name, path)?;
    node.text.parse::<u32>().map_err(|_| {
        DataError::parse(
            path,
            node.line,
            format!("<{name}> holds `{}`, not a pixel count", node.text),
        )
    })
}

fn parse_object(object: &XmlNode, path: &Path) -> DataResult<DiorObject> {
    let name = object.required_text("name", path)?;
    let class = match dior_class_index(&name.text) {
        Some(index) => DIOR_CLASSES[index].to_string(),
        None => {
            return Err(DataError::parse(
                path,
                name.line,
                format!(
                    "unknown class `{}`: expected one of {}",
                    name.text,
                    DIOR_CLASSES.join(", ")
                ),
            ))
        }
    };
    let geometry = if let Some(rbox) = object.child("robndbox") {
        let mut corners = [[0.0; 2]; 4];
        for (corner, [xn, yn]) in corners.iter_mut().zip(ROBNDBOX_FIELDS) {
            *corner = [
                rbox.required_number(xn, path)?,
                rbox.required_number(yn, path)?,
            ];
        }
        let angle = match object.child("angle") {
            Some(_) => Some(object.required_number("angle", path)?),
            None => None,
        };
        DiorBox::Oriented { corners, angle }
    } else if let Some(bbox) = object.child("bndbox") {
        DiorBox::Horizontal {
            xmin: bbox.required_number("xmin", path)?,
            ymin: bbox.required_number("ymin", path)?,
            xmax: bbox.required_number("xmax", path)?,
            ymax: bbox.required_number("ymax", path)?,
        }
    } else {
        return Err(DataError::parse(
            path,
            object.line,
            "<object> has neither <robndbox> (DIOR-R) nor <bndbox> (DIOR)",
        ));
    };
    Ok(DiorObject {
        class,
        difficult: parse_flag(object, "difficult", path)?,
        truncated: parse_flag(object, "truncated", path)?,
        geometry,
    })
}

/// Parses the text of an annotation file; `path` is only used in errors.
pub fn parse_annotation(text: &str, path: &Path) -> DataResult<DiorAnnotation> {
    let root = parse_xml(text, path)?;
    if root.name != "annotation" {
        return Err(DataError::parse(
            path,
            root.line,
            format!("root element is <{}>, expected <annotation>", root.name),
        ));
    }
    let filename = root.required_text("filename", path)?.text.clone();
    let objects = root
        .children_named("object")
        .map(|o| parse_object(o, path))
        .collect::<DataResult<Vec<_>>>()?;
    Ok(DiorAnnotation {
        filename,
        width: parse_size(&root, "width", path)?,
        height: parse_size(&root, "height", path)?,
        depth: parse_size(&root, "depth", path)?,
        objects,
    })
}

/// Reads one annotation XML file.
pub fn read_annotation(path: &Path) -> DataResult<DiorAnnotation> {
    parse_annotation(&read_text(path)?, path)
}

fn flag(value: bool) -> u8 {
    u8::from(value)
}

/// The XML text of an annotation, in the layout of the DIOR-R release.
pub fn format_annotation(annotation: &DiorAnnotation) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "<annotation>");
    let _ = writeln!(
        out,
        "\t<filename>{}</filename>",
        escape(&annotation.filename)
    );
    let _ = writeln!(
        out,
        "\t<source>\n\t\t<database>DIOR</database>\n\t</source>"
    );
    let _ = writeln!(
        out,
        "\t<size>\n\t\t<width>{}</width>\n\t\t<height>{}</height>\n\t\t<depth>{}</depth>\n\t</size>",
        annotation.width, annotation.height, annotation.depth
    );
    let _ = writeln!(out, "\t<segmented>0</segmented>");
    for object in &annotation.objects {
        let _ = writeln!(out, "\t<object>");
        let _ = writeln!(out, "\t\t<name>{}</name>", escape(&object.class));
        let _ = writeln!(out, "\t\t<pose>Unspecified</pose>");
        let _ = writeln!(out, "\t\t<truncated>{}</truncated>", flag(object.truncated));
        let _ = writeln!(out, "\t\t<difficult>{}</difficult>", flag(object.difficult));
        match &object.geometry {
            DiorBox::Oriented { corners, angle } => {
                let _ = writeln!(out, "\t\t<robndbox>");
                for ([x, y], [xn, yn]) in corners.iter().zip(ROBNDBOX_FIELDS) {
                    let _ = writeln!(out, "\t\t\t<{xn}>{x}</{xn}>\n\t\t\t<{yn}>{y}</{yn}>");
                }
                let _ = writeln!(out, "\t\t</robndbox>");
                if let Some(angle) = angle {
                    let _ = writeln!(out, "\t\t<angle>{angle}</angle>");
                }
            }
            DiorBox::Horizontal {
                xmin,
                ymin,
                xmax,
                ymax,
            } => {
                let _ = writeln!(
                    out,
                    "\t\t<bndbox>\n\t\t\t<xmin>{xmin}</xmin>\n\t\t\t<ymin>{ymin}</ymin>\n\t\t\t<xmax>{xmax}</xmax>\n\t\t\t<ymax>{ymax}</ymax>\n\t\t</bndbox>"
                );
            }
        }
        let _ = writeln!(out, "\t</object>");
    }
    let _ = writeln!(out, "</annotation>");
    out
}

/// Writes one annotation XML file.
pub fn write_annotation(path: &Path, annotation: &DiorAnnotation) -> DataResult<()> {
    write_file(path, format_annotation(annotation).as_bytes())
}

/// The DIOR-R splits listed under `ImageSets/Main/`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiorSplit {
    /// `trainval.txt`, images in `JPEGImages-trainval/`.
    Trainval,
    /// `test.txt`, images in `JPEGImages-test/`.
    Test,
}

impl DiorSplit {
    /// The split's name as used in file and folder names.
    pub fn name(self) -> &'static str {
        match self {
            DiorSplit::Trainval => "trainval",
            DiorSplit::Test => "test",
        }
    }
}

/// Path of the annotation folder of a DIOR-R root.
pub fn annotations_dir(root: &Path) -> PathBuf {
    root.join("Annotations").join("Oriented Bounding Boxes")
}

/// Path of the image folder of a DIOR-R split.
pub fn images_dir(root: &Path, split: DiorSplit) -> PathBuf {
    root.join(format!("JPEGImages-{}", split.name()))
}

/// Path of the id list of a DIOR-R split.
pub fn image_set_path(root: &Path, split: DiorSplit) -> PathBuf {
    root.join("ImageSets")
        .join("Main")
        .join(format!("{}.txt", split.name()))
}

/// One image of a DIOR-R split.
#[derive(Debug, Clone, PartialEq)]
pub struct DiorSample {
    /// Image id (e.g. `00001`).
    pub id: String,
    /// Path of the JPEG.
    pub image: PathBuf,
    /// The parsed annotation.
    pub annotation: DiorAnnotation,
}

/// Reads the ids of a split list (one id a line; blank lines skipped).
pub fn read_image_set(path: &Path) -> DataResult<Vec<String>> {
    let text = read_text(path)?;
    let mut ids = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let id = line.trim();
        if id.is_empty() {
            continue;
        }
        if id.contains(char::is_whitespace) {
            return Err(DataError::parse(
                path,
                index + 1,
                format!("`{id}` is not one image id a line"),
            ));
        }
        ids.push(id.to_string());
    }
    Ok(ids)
}

/// Reads a DIOR-R split: every listed id must have its XML and its JPEG, and the JPEG's size
/// must match the XML's `<size>`.
pub fn read_split(root: &Path, split: DiorSplit) -> DataResult<Vec<DiorSample>> {
    let ids = read_image_set(&image_set_path(root, split))?;
    ids.into_iter()
        .map(|id| {
            let xml = annotations_dir(root).join(format!("{id}.xml"));
            let annotation = read_annotation(&xml)?;
            let image = images_dir(root, split).join(format!("{id}.jpg"));
            let (width, height) = image_size(&image)?;
            if (width, height) != (annotation.width, annotation.height) {
                return Err(DataError::invalid(
                    &image,
                    format!(
                        "image is {width}x{height} but {} says {}x{}",
                        xml.display(),
                        annotation.width,
                        annotation.height
                    ),
                ));
            }
            Ok(DiorSample {
                id,
                image,
                annotation,
            })
        })
        .collect()
}

/// Writes a split list.
pub fn write_image_set(path: &Path, ids: &[String]) -> DataResult<()> {
    let mut text = ids.join("\n");
    text.push('\n');
    write_file(path, text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "<annotation><filename>1.jpg</filename><size><width>8</width><height>6</height><depth>3</depth></size>\n<object><name>Expressway-Service-area</name><difficult>1</difficult><robndbox><x_left_top>1</x_left_top><y_left_top>1</y_left_top><x_right_top>5</x_right_top><y_right_top>1</y_right_top><x_right_bottom>5</x_right_bottom><y_right_bottom>4</y_right_bottom><x_left_bottom>1</x_left_bottom><y_left_bottom>4</y_left_bottom></robndbox><angle>0</angle></object></annotation>";

    #[test]
    fn oriented_object_round_trips() {
        let ann = parse_annotation(SAMPLE, Path::new("a.xml")).unwrap();
        assert_eq!(ann.objects[0].class, "expressway-service-area");
        assert!(ann.objects[0].difficult);
        assert_eq!(ann.objects[0].geometry.polygon()[2], [5.0, 4.0]);
        let again = parse_annotation(&format_annotation(&ann), Path::new("b.xml")).unwrap();
        assert_eq!(again, ann);
    }

    #[test]
    fn bad_objects_name_file_and_line() {
        let bad = SAMPLE.replace("Expressway-Service-area", "spaceship");
        let err = parse_annotation(&bad, Path::new("a.xml"))
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("a.xml:2:") && err.contains("spaceship"),
            "{err}"
        );
        let missing = SAMPLE.replace("<y_left_bottom>4</y_left_bottom>", "");
        let err = parse_annotation(&missing, Path::new("a.xml"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("y_left_bottom"), "{err}");
    }
}
