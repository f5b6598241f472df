//! Bad input gives an error that names the file (and line), never a panic.

use std::path::Path;

use rsfm_model::data::formats::{dior, dota, loveda, potsdam};
use rsfm_model::data::image_io::{write_png, write_tiff, Image, TiffCompression};

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

fn dota_error(text: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("P9.txt");
    write(&path, text);
    let err = dota::read_label(&path, dota::ClassCheck::Version(dota::DotaVersion::V1_0))
        .unwrap_err()
        .to_string();
    assert!(err.contains("P9.txt:"), "{err}");
    err
}

#[test]
fn truncated_label_line() {
    let err = dota_error("imagesource:x\ngsd:1\n1 2 3 4 5 6 7 8 ship 0\n1 2 3 4 5 6\n");
    assert!(err.contains("P9.txt:4:"), "{err}");
}

#[test]
fn unknown_class() {
    let err = dota_error("1 2 3 4 5 6 7 8 ship 0\n1 2 3 4 5 6 7 8 helipad 0\n");
    assert!(
        err.contains("P9.txt:2:") && err.contains("helipad"),
        "{err}"
    );
}

#[test]
fn seven_point_polygon() {
    let err = dota_error("1 2 3 4 5 6 7 8 9 10 11 12 13 14 ship 0\n");
    assert!(
        err.contains("P9.txt:1:") && err.contains("7 points"),
        "{err}"
    );
}

#[test]
fn task1_bad_score() {
    let dir = tempfile::tempdir().unwrap();
    write(
        &dir.path().join("Task1_ship.txt"),
        "P1 0.5 1 2 3 4 5 6 7 8\nP1 high 1 2 3 4 5 6 7 8\n",
    );
    let err = dota::read_task1_dir(dir.path()).unwrap_err().to_string();
    assert!(err.contains("Task1_ship.txt:2:"), "{err}");
}

#[test]
fn dior_image_and_xml_sizes_disagree() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    dior::write_image_set(
        &dior::image_set_path(root, dior::DiorSplit::Test),
        &["1".to_string()],
    )
    .unwrap();
    let ann = dior::DiorAnnotation {
        filename: "1.jpg".into(),
        width: 16,
        height: 16,
        depth: 3,
        objects: vec![],
    };
    dior::write_annotation(&dior::annotations_dir(root).join("1.xml"), &ann).unwrap();
    let image = Image::new(16, 12, 3);
    rsfm_model::data::image_io::write_jpeg(
        &dior::images_dir(root, dior::DiorSplit::Test).join("1.jpg"),
        &image,
        90,
    )
    .unwrap();
    let err = dior::read_split(root, dior::DiorSplit::Test)
        .unwrap_err()
        .to_string();
    assert!(err.contains("1.jpg") && err.contains("16x12"), "{err}");
}

#[test]
fn dior_truncated_xml() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("2.xml");
    write(
        &path,
        "<annotation>\n<filename>2.jpg</filename>\n<object>\n<name>ship</name>\n",
    );
    let err = dior::read_annotation(&path).unwrap_err().to_string();
    assert!(err.contains("2.xml:"), "{err}");
}

#[test]
fn potsdam_label_size_mismatch() {
    let dir = tempfile::tempdir().unwrap();
    let image = dir.path().join("top_potsdam_2_10_RGB.tif");
    let label = dir.path().join("top_potsdam_2_10_label.tif");
    write_tiff(&image, &Image::new(8, 8, 3), TiffCompression::None).unwrap();
    potsdam::write_label(&label, &[0; 56], 8, 7).unwrap();
    let tiles =
        potsdam::find_potsdam_tiles(dir.path(), potsdam::PotsdamBands::Rgb, Default::default())
            .unwrap();
    let err = potsdam::load_tile(&tiles[0]).unwrap_err().to_string();
    assert!(
        err.contains("top_potsdam_2_10_label.tif") && err.contains("8x7"),
        "{err}"
    );
}

#[test]
fn potsdam_colour_outside_the_palette() {
    let dir = tempfile::tempdir().unwrap();
    let label = dir.path().join("top_potsdam_2_10_label.tif");
    let mut image = potsdam::encode_label(&[0; 12], 4, 3);
    image.pixel_mut(2, 1).copy_from_slice(&[128, 128, 128]);
    write_tiff(&label, &image, TiffCompression::PackBits).unwrap();
    let err = potsdam::read_label(&label).unwrap_err().to_string();
    assert!(
        err.contains("top_potsdam_2_10_label.tif:2:") && err.contains("[128, 128, 128]"),
        "{err}"
    );
}

#[test]
fn loveda_mask_size_mismatch() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let (split, domain) = (loveda::LovedaSplit::Train, loveda::LovedaDomain::Rural);
    write_png(
        &loveda::images_dir(root, split, domain).join("7.png"),
        &Image::new(4, 4, 3),
    )
    .unwrap();
    loveda::write_mask(
        &loveda::masks_dir(root, split, domain).join("7.png"),
        &[1; 12],
        4,
        3,
    )
    .unwrap();
    let samples = loveda::list_split(root, split).unwrap();
    let err = loveda::load_sample(&samples[0]).unwrap_err().to_string();
    assert!(err.contains("masks_png") && err.contains("4x3"), "{err}");
}

#[test]
fn loveda_missing_mask() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let (split, domain) = (loveda::LovedaSplit::Val, loveda::LovedaDomain::Urban);
    write_png(
        &loveda::images_dir(root, split, domain).join("3.png"),
        &Image::new(2, 2, 3),
    )
    .unwrap();
    let err = loveda::list_split(root, split).unwrap_err().to_string();
    assert!(err.contains("3.png") && err.contains("no mask"), "{err}");
}

#[test]
fn label_without_image() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("images")).unwrap();
    write(
        &dir.path().join("labelTxt/P5.txt"),
        "1 2 3 4 5 6 7 8 ship 0\n",
    );
    let err = dota::read_split(
        &dir.path().join("images"),
        &dir.path().join("labelTxt"),
        dota::ClassCheck::Any,
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("P5.txt") && err.contains("no image"), "{err}");
}
