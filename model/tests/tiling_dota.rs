//! DOTA splitting and merging on the real P0706 image (1111×1182, 536 objects).

use std::path::Path;

use rsfm_model::data::formats::dota::{self, DotaObject, Task1Detection};
use rsfm_model::data::image_io::read_image;
use rsfm_model::data::tiling::{merge_detections, split_dataset, split_image, SplitOptions};
use rsfm_model::geometry::{polygon_area, polygon_intersection_area, polygon_iou};

fn sample_dir() -> &'static Path {
    Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/fixtures/dota-devkit-sample"
    ))
}

fn p0706() -> (rsfm_model::data::image_io::Image, dota::DotaLabel) {
    let image = read_image(&sample_dir().join("images/P0706.png")).unwrap();
    let label = dota::read_label(
        &sample_dir().join("labelTxt/P0706.txt"),
        dota::ClassCheck::Any,
    )
    .unwrap();
    (image, label)
}

fn shifted(poly: &[[f64; 2]; 4], dx: f64, dy: f64) -> [[f64; 2]; 4] {
    poly.map(|[x, y]| [x - dx, y - dy])
}

#[test]
fn p0706_splits_into_four_border_aligned_patches() {
    let (image, label) = p0706();
    let options = SplitOptions::default();
    let patches = split_image("P0706", &image, &label, &options);
    let names: Vec<&str> = patches.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "P0706__1__0___0",
            "P0706__1__0___158",
            "P0706__1__87___0",
            "P0706__1__87___158"
        ]
    );
    for patch in &patches {
        assert_eq!((patch.image.width, patch.image.height), (1024, 1024));
        let (x, y) = (patch.window.x, patch.window.y);
        assert_eq!(patch.image.pixel(0, 0), image.pixel(x, y));
        assert_eq!(
            patch.image.pixel(1023, 1023),
            image.pixel(x + 1023, y + 1023)
        );
    }
}

/// Each object's fraction inside each window is computed independently (exact polygon
/// intersection of the geometry module) and the patch labels must follow the documented rules.
#[test]
fn cut_objects_follow_the_documented_thresholds() {
    let (image, label) = p0706();
    let options = SplitOptions::default();
    let patches = split_image("P0706", &image, &label, &options);
    let (mut whole, mut kept_cut, mut marked, mut outside) = (0, 0, 0, 0);
    for patch in &patches {
        let (x0, y0) = (f64::from(patch.window.x), f64::from(patch.window.y));
        let (x1, y1) = (
            x0 + f64::from(patch.window.width),
            y0 + f64::from(patch.window.height),
        );
        let rect = [[x0, y0], [x1, y0], [x1, y1], [x0, y1]];
        for object in &label.objects {
            let fraction =
                polygon_intersection_area(&object.poly, &rect) / polygon_area(&object.poly).abs();
            let local = shifted(&object.poly, x0, y0);
            let same_class = |o: &&DotaObject| o.class == object.class;
            if fraction >= 1.0 - 1e-9 {
                whole += 1;
                assert!(patch
                    .label
                    .objects
                    .iter()
                    .any(|o| o.poly == local && o.difficult == object.difficult));
            } else if fraction <= 0.0 {
                outside += 1;
            } else {
                // The clipped copy lies inside the patch and overlaps the original's part in it.
                let copy = patch.label.objects.iter().filter(same_class).find(|o| {
                    o.poly.iter().all(|p| {
                        p[0] >= -1e-9
                            && p[1] >= -1e-9
                            && p[0] <= 1024.0 + 1e-9
                            && p[1] <= 1024.0 + 1e-9
                    }) && polygon_iou(&o.poly, &local) > 0.5 * fraction
                });
                if let Some(copy) = copy {
                    if fraction >= options.keep_threshold {
                        kept_cut += 1;
                        assert_eq!(copy.difficult, object.difficult, "fraction {fraction}");
                    } else {
                        marked += 1;
                        assert_eq!(copy.difficult, 2, "fraction {fraction}");
                    }
                }
            }
        }
        // Nothing else is in the patch.
        assert!(patch.label.objects.len() <= label.objects.len());
    }
    assert!(
        whole > 2 * label.objects.len() && kept_cut > 0 && marked > 0 && outside > 0,
        "{whole} {kept_cut} {marked} {outside}"
    );
    // Every object inside the image is whole in at least one patch (objects are far smaller than the overlap).
    for object in &label.objects {
        let in_image = object.poly.iter().all(|p| p[0] <= 1111.0 && p[1] <= 1182.0);
        let whole_somewhere = patches.iter().any(|patch| {
            let local = shifted(
                &object.poly,
                f64::from(patch.window.x),
                f64::from(patch.window.y),
            );
            patch.label.objects.iter().any(|o| o.poly == local)
        });
        assert_eq!(in_image, whole_somewhere, "{:?}", object.poly);
    }
}

#[test]
fn split_dataset_writes_patches_the_reader_reads() {
    let out = tempfile::tempdir().unwrap();
    let summary = split_dataset(
        &sample_dir().join("images"),
        &sample_dir().join("labelTxt"),
        out.path(),
        dota::ClassCheck::Version(dota::DotaVersion::V1_0),
        &SplitOptions::default(),
        true,
    )
    .unwrap();
    // P0706 gives 4 patches; P1888 (712×557) one padded patch.
    assert_eq!((summary.images, summary.patches), (2, 5));
    let patches = dota::read_split(
        &out.path().join("images"),
        &out.path().join("labelTxt"),
        dota::ClassCheck::Any,
    )
    .unwrap();
    assert_eq!(patches.len(), 5);
    let p1888 = patches.iter().find(|p| p.id == "P1888__1__0___0").unwrap();
    assert_eq!(p1888.label.objects.len(), 64);
    let padded = read_image(&p1888.image).unwrap();
    assert_eq!((padded.width, padded.height), (1024, 1024));
    assert_eq!(padded.pixel(1000, 1000), &[0, 0, 0]);
    assert_eq!(
        summary.objects,
        patches.iter().map(|p| p.label.objects.len()).sum::<usize>()
    );
}

/// Patch labels used as detections map back to the image and their overlapping copies collapse.
#[test]
fn merge_maps_back_and_removes_duplicates() {
    let (image, label) = p0706();
    let patches = split_image("P0706", &image, &label, &SplitOptions::default());
    let score_of = |class: &str, poly: &[[f64; 2]; 4], dx: f64, dy: f64| -> f64 {
        let global = poly.map(|[x, y]| [x + dx, y + dy]);
        let (best, iou) = label
            .objects
            .iter()
            .enumerate()
            .filter(|(_, o)| o.class == class)
            .map(|(i, o)| (i, polygon_iou(&o.poly, &global)))
            .max_by(|a, b| a.1.total_cmp(&b.1))
            .unwrap();
        // Whole copies outrank clipped ones, as a detector's full view of an object would.
        1.0 - best as f64 * 1e-4 - (1.0 - iou) * 1e-5
    };
    let mut detections = Vec::new();
    for patch in &patches {
        let (dx, dy) = (f64::from(patch.window.x), f64::from(patch.window.y));
        for object in patch.label.objects.iter().filter(|o| o.difficult != 2) {
            detections.push(Task1Detection {
                image: patch.name.clone(),
                class: object.class.clone(),
                score: score_of(&object.class, &object.poly, dx, dy),
                poly: object.poly,
            });
        }
    }
    let merged = merge_detections(&detections, 0.5).unwrap();
    assert!(detections.len() > 2 * merged.len());
    assert!(merged.iter().all(|d| d.image == "P0706"));
    // No two kept detections of one class overlap beyond the threshold.
    for (i, a) in merged.iter().enumerate() {
        for b in &merged[i + 1..] {
            if a.class == b.class {
                assert!(polygon_iou(&a.poly, &b.poly) <= 0.5 + 1e-9);
            }
        }
    }
    // Every object inside the image is found again at its place.
    let missing: Vec<&DotaObject> = label
        .objects
        .iter()
        .filter(|o| {
            !merged
                .iter()
                .any(|d| d.class == o.class && polygon_iou(&d.poly, &o.poly) > 0.99)
        })
        .collect();
    assert!(missing.is_empty(), "{missing:?}");
    assert!(merge_detections(
        &[Task1Detection {
            image: "P0706".into(),
            ..detections[0].clone()
        }],
        0.1
    )
    .is_err());
}

/// The paper's DOTA training set: a tiled split without its empty patches, iterated by epoch in
/// a shuffled order, each patch once per epoch, whatever the ranks.
#[cfg(feature = "torch")]
#[test]
fn tiled_patches_without_objects_are_dropped_and_each_is_seen_once_per_epoch() {
    use rsfm_model::data::prepare::run_prepare;
    use rsfm_model::params::{PrepareParams, Schema};
    use rsfm_model::train::replicas::Shard;
    let params = |value: serde_json::Value| {
        PrepareParams::from_map(value.as_object().unwrap().clone()).unwrap()
    };
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("dota");
    let synth = params(serde_json::json!({ "op": "synth-dota", "images": 10, "size": 256 }));
    run_prepare(&synth, None, 3, &source).unwrap();
    let tile = |keep_empty: bool, out: &Path| {
        let op = params(serde_json::json!({
            "op": "tile-dota", "patch_size": 64, "gap": 16, "splits": ["train"],
            "keep_empty": keep_empty,
        }));
        run_prepare(&op, Some(&source), 0, out).unwrap()
    };
    let all = tile(true, &dir.path().join("all"));
    let out = dir.path().join("tiles");
    let kept = tile(false, &out);
    let dropped = kept["empty_patches_dropped"].as_u64().unwrap();
    assert!(dropped > 0, "{kept}");
    assert_eq!(
        kept["patches"].as_u64().unwrap() + dropped,
        all["patches"].as_u64().unwrap()
    );
    let patches = dota::read_split(
        &out.join("train/images"),
        &out.join("train/labelTxt"),
        dota::ClassCheck::Any,
    )
    .unwrap();
    assert!(patches.iter().all(|p| !p.label.objects.is_empty()));

    // Two ranks of 2 patches per step: the global order, cut into epochs, holds every patch
    // once per epoch, in a different order each epoch.
    let len = patches.len();
    let shards: Vec<Shard> = (0..2).map(|r| Shard::new(7, r, 2, 4).unwrap()).collect();
    let steps = (3 * len).div_ceil(4) as u64;
    let order: Vec<usize> = (0..steps)
        .flat_map(|step| {
            shards
                .iter()
                .flat_map(move |shard| shard.samples(step, len).into_iter().map(|s| s.index))
        })
        .collect();
    let epochs: Vec<&[usize]> = order.chunks(len).take(3).collect();
    for epoch in &epochs {
        let mut seen = epoch.to_vec();
        seen.sort_unstable();
        assert_eq!(seen, (0..len).collect::<Vec<_>>());
    }
    assert_ne!(epochs[0], epochs[1], "each epoch is shuffled anew");
}
