//! Every file under `../shared/fixtures/` is read by its format's reader, and
//! reader → writer → reader round trips are identical.

use std::path::{Path, PathBuf};

use rsfm_model::data::formats::{dior, dota, loveda, millionaid, potsdam};
use rsfm_model::data::image_io::{read_image, write_png, write_tiff, TiffCompression};

fn fixtures() -> PathBuf {
    Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/fixtures"
    ))
    .to_path_buf()
}

fn all_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            all_files(&path, out);
        } else {
            out.push(path);
        }
    }
}

/// Reads one fixture file with the reader its dataset and extension call for.
fn read_fixture(path: &Path) -> Result<(), String> {
    let rel = path
        .strip_prefix(fixtures())
        .unwrap()
        .to_string_lossy()
        .replace('\\', "/");
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or_default();
    let result = match ext {
        "md" | "csv" => return Ok(()),
        "png" | "jpg" => read_image(path).map(drop),
        "txt" if rel.contains("ImageSets") => dior::read_image_set(path).map(drop),
        "txt" => {
            dota::read_label(path, dota::ClassCheck::Version(dota::DotaVersion::V2_0)).map(drop)
        }
        "xml" => dior::read_annotation(path).map(drop),
        "tif"
            if rel.ends_with("_label.tif")
                || (rel.starts_with("torchgeo-format/vaihingen/top_")) =>
        {
            potsdam::read_label(path).map(drop)
        }
        "tif" => read_image(path).map(drop),
        _ => return Err(format!("no reader for {rel}")),
    };
    result.map_err(|e| e.to_string())
}

#[test]
fn every_fixture_file_is_read() {
    let mut files = Vec::new();
    all_files(&fixtures(), &mut files);
    assert!(files.len() > 70, "fixtures missing: {}", files.len());
    let failures: Vec<String> = files.iter().filter_map(|f| read_fixture(f).err()).collect();
    assert!(failures.is_empty(), "{failures:#?}");
}

#[test]
fn real_dota_images_and_labels() {
    let root = fixtures().join("dota-devkit-sample");
    let samples = dota::read_split(
        &root.join("images"),
        &root.join("labelTxt"),
        dota::ClassCheck::Version(dota::DotaVersion::V1_0),
    )
    .unwrap();
    let summary: Vec<(String, u32, u32, usize)> = samples
        .iter()
        .map(|s| {
            let image = read_image(&s.image).unwrap();
            assert_eq!(image.channels, 3);
            (
                s.id.clone(),
                image.width,
                image.height,
                s.label.objects.len(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            ("P0706".to_string(), 1111, 1182, 536),
            ("P1888".to_string(), 712, 557, 64),
        ]
    );
    let p0706 = &samples[0].label;
    assert_eq!(p0706.image_source.as_deref(), Some("GoogleEarth"));
    assert_eq!(p0706.gsd_metres(), Some(0.255589285596));
    assert_eq!(p0706.objects[0].poly[0], [1054.0, 1028.0]);
    assert_eq!(p0706.objects[0].difficult, 1);
    let ships = p0706.objects.iter().filter(|o| o.class == "ship").count();
    let harbors = p0706.objects.iter().filter(|o| o.class == "harbor").count();
    assert_eq!((ships, harbors), (531, 5));
    assert_eq!(p0706.objects.iter().filter(|o| o.difficult == 1).count(), 6);
    let p1888 = &samples[1].label;
    let large = p1888
        .objects
        .iter()
        .filter(|o| o.class == "large-vehicle")
        .count();
    let small = p1888
        .objects
        .iter()
        .filter(|o| o.class == "small-vehicle")
        .count();
    assert_eq!((large, small), (50, 14));
}

#[test]
fn dota_labels_round_trip() {
    let mut files = Vec::new();
    all_files(&fixtures(), &mut files);
    let dir = tempfile::tempdir().unwrap();
    let labels: Vec<&PathBuf> = files
        .iter()
        .filter(|f| {
            f.extension().is_some_and(|e| e == "txt") && !f.to_string_lossy().contains("ImageSets")
        })
        .collect();
    assert_eq!(labels.len(), 17);
    for path in labels {
        let label = dota::read_label(path, dota::ClassCheck::Any).unwrap();
        let copy = dir.path().join("copy.txt");
        dota::write_label(&copy, &label).unwrap();
        assert_eq!(
            dota::read_label(&copy, dota::ClassCheck::Any).unwrap(),
            label,
            "{}",
            path.display()
        );
    }
}

#[test]
fn torchgeo_dota_versions_and_splits() {
    let root = fixtures().join("torchgeo-format/dota");
    for (split, count) in [("train", 3), ("val", 2)] {
        for version in ["1.0", "1.5", "2.0"] {
            let v: dota::DotaVersion = version.parse().unwrap();
            let samples = dota::read_split(
                &root.join(split).join("images"),
                &root
                    .join(split)
                    .join("annotations")
                    .join(format!("version{version}")),
                dota::ClassCheck::Version(v),
            )
            .unwrap();
            assert_eq!(samples.len(), count);
            assert!(samples[0].label.objects.is_empty());
            assert_eq!(samples[1].label.objects.len(), 2);
            assert_eq!(samples[1].label.objects[1].class, "ship");
        }
    }
}

#[test]
fn dior_r_handmade_split() {
    let root = fixtures().join("dior-r-handmade");
    let samples = dior::read_split(&root, dior::DiorSplit::Trainval).unwrap();
    assert_eq!(samples.len(), 1);
    let ann = &samples[0].annotation;
    assert_eq!((ann.width, ann.height, ann.depth), (800, 800, 3));
    let classes: Vec<&str> = ann.objects.iter().map(|o| o.class.as_str()).collect();
    assert_eq!(classes, ["golffield", "vehicle", "airplane"]);
    match &ann.objects[2].geometry {
        dior::DiorBox::Oriented { corners, angle } => {
            assert_eq!(corners[0], [667.0, 741.0]);
            assert_eq!(corners[3], [728.0, 776.0]);
            assert_eq!(*angle, Some(-60.0));
        }
        other => panic!("expected an oriented box, got {other:?}"),
    }
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("copy.xml");
    dior::write_annotation(&copy, ann).unwrap();
    assert_eq!(&dior::read_annotation(&copy).unwrap(), ann);
}

#[test]
fn torchgeo_dior_horizontal_boxes() {
    let dir = fixtures().join("torchgeo-format/dior/Annotations/trainval");
    let first = dior::read_annotation(&dir.join("000000.xml")).unwrap();
    assert_eq!((first.width, first.height), (32, 32));
    assert_eq!(first.objects.len(), 3);
    assert_eq!(
        first.objects[0].geometry,
        dior::DiorBox::Horizontal {
            xmin: 5.0,
            ymin: 11.0,
            xmax: 17.0,
            ymax: 21.0
        }
    );
    let out = tempfile::tempdir().unwrap();
    for i in 0..6 {
        let path = dir.join(format!("{i:06}.xml"));
        let ann = dior::read_annotation(&path).unwrap();
        let image = read_image(
            &fixtures().join(format!("torchgeo-format/dior/Images/trainval/{i:06}.jpg")),
        )
        .unwrap();
        assert_eq!((image.width, image.height), (ann.width, ann.height));
        let copy = out.path().join("c.xml");
        dior::write_annotation(&copy, &ann).unwrap();
        assert_eq!(dior::read_annotation(&copy).unwrap(), ann);
    }
}

#[test]
fn potsdam_tiles_and_labels() {
    let root = fixtures().join("torchgeo-format/potsdam");
    let tiles =
        potsdam::find_potsdam_tiles(&root, potsdam::PotsdamBands::Rgbir, Default::default())
            .unwrap();
    let ids: Vec<&str> = tiles.iter().map(|t| t.id.as_str()).collect();
    assert_eq!(ids, ["2_10", "2_11", "5_15", "6_15"]);
    let out = tempfile::tempdir().unwrap();
    for tile in &tiles {
        let loaded = potsdam::load_tile(tile).unwrap();
        assert_eq!(loaded.image.channels, 4, "{}", tile.image.display());
        let classes = loaded.classes.unwrap();
        assert_eq!(
            classes.len(),
            (loaded.image.width * loaded.image.height) as usize
        );
        // Writers give back what was read.
        let label = out.path().join("l.tif");
        potsdam::write_label(&label, &classes, loaded.image.width, loaded.image.height).unwrap();
        assert_eq!(potsdam::read_label(&label).unwrap().2, classes);
        let image = out.path().join("i.tif");
        write_tiff(&image, &loaded.image, TiffCompression::PackBits).unwrap();
        assert_eq!(read_image(&image).unwrap(), loaded.image);
    }
}

#[test]
fn vaihingen_tiles_and_labels() {
    let tiles =
        potsdam::find_vaihingen_tiles(&fixtures().join("torchgeo-format/vaihingen")).unwrap();
    let ids: Vec<&str> = tiles.iter().map(|t| t.id.as_str()).collect();
    assert_eq!(ids, ["area1", "area11", "area24", "area6"]);
    for tile in &tiles {
        assert!(tile.label.is_some());
        let loaded = potsdam::load_tile(tile).unwrap();
        assert_eq!(loaded.image.channels, 3);
        assert!(loaded.classes.is_some());
    }
}

#[test]
fn loveda_splits() {
    let root = fixtures().join("torchgeo-format/loveda");
    let out = tempfile::tempdir().unwrap();
    for split in [loveda::LovedaSplit::Train, loveda::LovedaSplit::Val] {
        let samples = loveda::list_split(&root, split).unwrap();
        assert_eq!(samples.len(), 2);
        assert_eq!(samples[0].domain, loveda::LovedaDomain::Urban);
        for sample in &samples {
            let (image, labels) = loveda::load_sample(sample).unwrap();
            let labels = labels.unwrap();
            assert_eq!(labels.len(), (image.width * image.height) as usize);
            let copy = out.path().join("m.png");
            loveda::write_mask(&copy, &labels, image.width, image.height).unwrap();
            assert_eq!(loveda::read_mask(&copy).unwrap().2, labels);
            let image_copy = out.path().join("i.png");
            write_png(&image_copy, &image).unwrap();
            assert_eq!(read_image(&image_copy).unwrap(), image);
        }
    }
    let test = loveda::list_split(&root, loveda::LovedaSplit::Test).unwrap();
    assert_eq!(test.len(), 2);
    assert!(test.iter().all(|s| s.mask.is_none()));
}

#[test]
fn millionaid_scene_tree() {
    let root = fixtures().join("torchgeo-format/millionaid");
    let train = millionaid::list_images(&root.join("train")).unwrap();
    let categories: Vec<Vec<String>> = train.iter().map(|s| s.categories.clone()).collect();
    assert_eq!(
        categories,
        vec![
            vec![
                "agriculture_land".to_string(),
                "grassland".into(),
                "meadow".into()
            ],
            vec!["water_area".to_string(), "beach".into()],
        ]
    );
    assert_eq!(millionaid::list_images(&root).unwrap().len(), 4);
}
