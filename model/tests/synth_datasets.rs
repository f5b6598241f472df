//! Synthetic datasets: same bytes for the same seed, read back by the real-format readers,
//! objects inside their images.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use rsfm_model::data::formats::{dior, dota, loveda, millionaid, potsdam};
use rsfm_model::data::image_io::read_image;
use rsfm_model::data::synth::{generate, SynthDataset, SynthOptions};

fn tree(root: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.insert(
                    path.strip_prefix(root).unwrap().to_path_buf(),
                    std::fs::read(&path).unwrap(),
                );
            }
        }
    }
    out
}

fn options(seed: u64) -> SynthOptions {
    SynthOptions {
        images: 5,
        seed,
        size: Some(128),
        test_images: 0,
    }
}

#[test]
fn same_seed_same_bytes_other_seed_other_bytes() {
    for dataset in SynthDataset::ALL {
        let (a, b, c) = (
            tempfile::tempdir().unwrap(),
            tempfile::tempdir().unwrap(),
            tempfile::tempdir().unwrap(),
        );
        generate(dataset, a.path(), &options(7)).unwrap();
        generate(dataset, b.path(), &options(7)).unwrap();
        generate(dataset, c.path(), &options(8)).unwrap();
        let (ta, tb, tc) = (tree(a.path()), tree(b.path()), tree(c.path()));
        assert!(ta.len() > 5, "{dataset:?} wrote {} files", ta.len());
        assert_eq!(ta, tb, "{dataset:?} is not deterministic");
        assert_ne!(ta, tc, "{dataset:?} ignores the seed");
    }
}

#[test]
fn dota_synth_reads_back_with_objects_inside() {
    let out = tempfile::tempdir().unwrap();
    let summary = generate(SynthDataset::Dota, out.path(), &options(1)).unwrap();
    assert_eq!(
        (summary.splits.train.len(), summary.splits.val.len()),
        (4, 1)
    );
    let mut objects = 0;
    let mut classes = std::collections::BTreeSet::new();
    for split in ["train", "val"] {
        let dir = out.path().join(split);
        let samples = dota::read_split(
            &dir.join("images"),
            &dir.join("labelTxt"),
            dota::ClassCheck::Version(dota::DotaVersion::V2_0),
        )
        .unwrap();
        for sample in samples {
            let image = read_image(&sample.image).unwrap();
            assert_eq!((image.width, image.height, image.channels), (128, 128, 3));
            for object in &sample.label.objects {
                assert!(
                    object
                        .poly
                        .iter()
                        .flatten()
                        .all(|v| (0.0..=128.0).contains(v)),
                    "{object:?}"
                );
                classes.insert(object.class.clone());
                objects += 1;
            }
        }
    }
    assert!(
        objects >= 10 && classes.len() >= 4,
        "{objects} objects, {classes:?}"
    );
}

#[test]
fn dior_r_synth_reads_back() {
    let out = tempfile::tempdir().unwrap();
    generate(SynthDataset::DiorR, out.path(), &options(2)).unwrap();
    let train = dior::read_split(out.path(), dior::DiorSplit::Trainval).unwrap();
    let test = dior::read_split(out.path(), dior::DiorSplit::Test).unwrap();
    assert_eq!((train.len(), test.len()), (4, 1));
    for sample in train.iter().chain(&test) {
        assert!(!sample.annotation.objects.is_empty());
        for object in &sample.annotation.objects {
            assert!(object
                .geometry
                .polygon()
                .iter()
                .flatten()
                .all(|v| (0.0..=128.0).contains(v)));
            assert!(matches!(
                object.geometry,
                dior::DiorBox::Oriented { angle: Some(_), .. }
            ));
        }
    }
}

#[test]
fn potsdam_synth_reads_back() {
    let out = tempfile::tempdir().unwrap();
    generate(SynthDataset::Potsdam, out.path(), &options(3)).unwrap();
    for bands in [potsdam::PotsdamBands::Rgb, potsdam::PotsdamBands::Rgbir] {
        let tiles = potsdam::find_potsdam_tiles(out.path(), bands, Default::default()).unwrap();
        assert_eq!(tiles.len(), 5);
        let mut seen = [0usize; 6];
        for tile in &tiles {
            let loaded = potsdam::load_tile(tile).unwrap();
            for class in loaded.classes.unwrap() {
                seen[class as usize] += 1;
            }
        }
        assert!(seen.iter().all(|&n| n > 0), "every class appears: {seen:?}");
    }
}

#[test]
fn potsdam_reads_the_eroded_no_boundary_labels_when_asked() {
    let out = tempfile::tempdir().unwrap();
    generate(SynthDataset::Potsdam, out.path(), &options(3)).unwrap();
    let read = |labels| {
        let tiles =
            potsdam::find_potsdam_tiles(out.path(), potsdam::PotsdamBands::Rgb, labels).unwrap();
        let tile = &tiles[0];
        let path = tile.label.clone().unwrap();
        (path, potsdam::load_tile(tile).unwrap().classes.unwrap())
    };
    let (full_path, full) = read(potsdam::PotsdamLabels::Full);
    let (eroded_path, eroded) = read(potsdam::PotsdamLabels::Eroded);
    assert!(full_path.ends_with("5_Labels_all/top_potsdam_2_10_label.tif"));
    assert!(eroded_path.ends_with("5_Labels_all_noBoundary/top_potsdam_2_10_label_noBoundary.tif"));
    let ignored = eroded
        .iter()
        .filter(|&&c| c == potsdam::IGNORE_INDEX)
        .count();
    assert!(
        ignored > 0 && ignored < eroded.len() / 2,
        "{ignored} of {}",
        eroded.len()
    );
    // Away from the boundaries the eroded labels are the full ones.
    assert!(full
        .iter()
        .zip(&eroded)
        .all(|(f, e)| *e == potsdam::IGNORE_INDEX || f == e));
    assert!(!full.contains(&potsdam::IGNORE_INDEX));
}

#[test]
fn loveda_synth_reads_back() {
    let out = tempfile::tempdir().unwrap();
    generate(
        SynthDataset::Loveda,
        out.path(),
        &SynthOptions {
            images: 10,
            seed: 4,
            size: Some(96),
            test_images: 0,
        },
    )
    .unwrap();
    let train = loveda::list_split(out.path(), loveda::LovedaSplit::Train).unwrap();
    let val = loveda::list_split(out.path(), loveda::LovedaSplit::Val).unwrap();
    assert_eq!((train.len(), val.len()), (8, 2));
    let mut seen = [0usize; 7];
    for sample in train.iter().chain(&val) {
        let (image, labels) = loveda::load_sample(sample).unwrap();
        assert_eq!((image.width, image.height), (96, 96));
        for label in labels.unwrap() {
            if let Some(n) = seen.get_mut(label as usize) {
                *n += 1;
            }
        }
    }
    assert!(seen.iter().filter(|&&n| n > 0).count() >= 6, "{seen:?}");
}

#[test]
fn millionaid_synth_reads_back() {
    let out = tempfile::tempdir().unwrap();
    generate(
        SynthDataset::MillionAid,
        out.path(),
        &SynthOptions {
            images: 10,
            seed: 5,
            size: None,
            test_images: 0,
        },
    )
    .unwrap();
    let train = millionaid::list_images(&out.path().join("train")).unwrap();
    let test = millionaid::list_images(&out.path().join("test")).unwrap();
    assert_eq!((train.len(), test.len()), (8, 2));
    let image = read_image(&train[0].path).unwrap();
    assert_eq!((image.width, image.height), (256, 256));
    assert!(train.iter().all(|s| !s.categories.is_empty()));
}

#[test]
fn bad_options_are_errors() {
    let out = tempfile::tempdir().unwrap();
    assert!(generate(
        SynthDataset::Dota,
        out.path(),
        &SynthOptions {
            images: 0,
            seed: 1,
            size: Some(64),
            test_images: 0,
        }
    )
    .is_err());
    assert!(generate(
        SynthDataset::Dota,
        out.path(),
        &SynthOptions {
            images: 1,
            seed: 1,
            size: Some(8),
            test_images: 0,
        }
    )
    .is_err());
}
