//! Synthetic oriented-object datasets in the DOTA and DIOR-R layouts.

use std::path::Path;

use super::objects::{angle_degrees, draw_object, label_polygon, place_objects, PlacedObject};
use super::raster::textured_background;
use super::{SplitIds, SynthOptions};
use crate::data::error::DataResult;
use crate::data::formats::dior::{
    self, DiorAnnotation, DiorBox, DiorObject, DiorSplit, DIOR_CLASSES,
};
use crate::data::formats::dota::{self, DotaLabel, DotaObject, DotaVersion};
use crate::data::image_io::{write_jpeg, write_png, Image};
use crate::data::test_images::dota_test_dir;
use crate::rng::SplitMix64;

/// Renders image `index`: a textured background with non-overlapping objects.
fn render(
    options: &SynthOptions,
    size: u32,
    index: u64,
    num_classes: usize,
) -> (Image, Vec<PlacedObject>) {
    let mut rng = SplitMix64::derive(options.seed, 1, index);
    let mut image = Image::new(size, size, 3);
    let base = [
        rng.range(70.0, 150.0),
        rng.range(80.0, 150.0),
        rng.range(60.0, 130.0),
    ];
    textured_background(&mut image, &mut rng, base, 28.0, 10.0);
    let crowd = (f64::from(size) / 512.0).powi(2).max(1.0);
    let count = ((3.0 + rng.below(6) as f64) * crowd).round() as usize;
    let objects = place_objects(&mut rng, size, num_classes, count);
    for object in &objects {
        draw_object(&mut image, object, &mut rng);
    }
    (image, objects)
}

/// DOTA v2.0 layout: `{train,val}/images/P<id>.png` and `{train,val}/labelTxt/P<id>.txt`, and
/// `test-dev/images/P<id>.png` without labels for the test images asked for.
pub fn write_dota(out: &Path, options: &SynthOptions, size: u32) -> DataResult<SplitIds> {
    let classes = DotaVersion::V2_0.classes();
    let mut ids = SplitIds::default();
    for index in 0..options.images {
        let (image, objects) = render(options, size, index as u64, classes.len());
        let id = format!("P{index:04}");
        let split = ids.assign(index, options.images, &id);
        let label = DotaLabel {
            image_source: Some("synthetic".to_string()),
            gsd: Some("null".to_string()),
            objects: objects
                .iter()
                .map(|o| DotaObject {
                    poly: label_polygon(o),
                    class: classes[o.class].to_string(),
                    difficult: 0,
                })
                .collect(),
        };
        let dir = out.join(split);
        write_png(&dir.join("images").join(format!("{id}.png")), &image)?;
        dota::write_label(&dir.join("labelTxt").join(format!("{id}.txt")), &label)?;
    }
    let test_dir = dota_test_dir(out, DotaVersion::V2_0);
    for k in 0..options.test_images {
        let index = options.images + k;
        let (image, _) = render(options, size, index as u64, classes.len());
        let id = format!("P{index:04}");
        write_png(&test_dir.join(format!("{id}.png")), &image)?;
        ids.test.push(id);
    }
    Ok(ids)
}

/// DIOR-R layout: `JPEGImages-{trainval,test}/<id>.jpg`, `Annotations/Oriented Bounding Boxes/<id>.xml`,
/// `ImageSets/Main/{trainval,test}.txt` (the held-out part goes to `test`).
pub fn write_dior_r(out: &Path, options: &SynthOptions, size: u32) -> DataResult<SplitIds> {
    let mut ids = SplitIds::default();
    for index in 0..options.images {
        let (image, objects) = render(options, size, index as u64, DIOR_CLASSES.len());
        let id = format!("{:05}", index + 1);
        let split = match ids.assign(index, options.images, &id) {
            "train" => DiorSplit::Trainval,
            _ => DiorSplit::Test,
        };
        let annotation = DiorAnnotation {
            filename: format!("{id}.jpg"),
            width: size,
            height: size,
            depth: 3,
            objects: objects
                .iter()
                .map(|o| DiorObject {
                    class: DIOR_CLASSES[o.class].to_string(),
                    difficult: false,
                    truncated: false,
                    geometry: DiorBox::Oriented {
                        corners: label_polygon(o),
                        angle: Some(angle_degrees(o)),
                    },
                })
                .collect(),
        };
        write_jpeg(
            &dior::images_dir(out, split).join(format!("{id}.jpg")),
            &image,
            95,
        )?;
        dior::write_annotation(
            &dior::annotations_dir(out).join(format!("{id}.xml")),
            &annotation,
        )?;
    }
    dior::write_image_set(&dior::image_set_path(out, DiorSplit::Trainval), &ids.train)?;
    dior::write_image_set(&dior::image_set_path(out, DiorSplit::Test), &ids.val)?;
    Ok(ids)
}
