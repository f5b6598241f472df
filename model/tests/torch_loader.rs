//! The fine-tuning stages' loaders: detection and segmentation crops made on the loader's
//! threads are bitwise the same for 1 and 4 threads, equal what the training thread made of
//! each sample's own stream before (torch's `standardize(to_tensor(..))` of the crop), and a
//! loader started at step k (a resume) gives the same following batches as one started at 0.
#![cfg(feature = "torch")]

use std::path::Path;
use std::sync::Arc;

use rsfm_model::data::loader::{Batch, Loader};
use rsfm_model::data::synth::{generate, SynthDataset, SynthOptions};
use rsfm_model::params::data::{DetDataParams, DetFormat, SegDataParams, SegFormat};
use rsfm_model::train::det_data::{self, CropSettings, DetCrop, DetSample};
use rsfm_model::train::images::{normalize, standardize, to_tensor};
use rsfm_model::train::replicas::Shard;
use rsfm_model::train::seg_data::{self, Part, SegCrop, SegSample, IGNORE_INDEX};
use rsfm_model::train::step_batches::{loader_config, shard_plans};
use tch::{Kind, Tensor};

const STEPS: u64 = 4;

fn synth(dataset: SynthDataset, dir: &Path, size: u32) {
    let options = SynthOptions {
        images: 6,
        seed: 4,
        size: Some(size),
        test_images: 0,
    };
    generate(dataset, dir, &options).unwrap();
}

fn det_samples(dir: &Path) -> Arc<[DetSample]> {
    synth(SynthDataset::Dota, dir, 96);
    let params = DetDataParams {
        name: "dota".into(),
        format: DetFormat::Dota,
        version: "v2.0".into(),
        trainval: false,
    };
    det_data::list_samples(dir, &params, Part::Train)
        .unwrap()
        .into()
}

fn seg_samples(dir: &Path) -> Arc<[SegSample]> {
    synth(SynthDataset::Loveda, dir, 80);
    let params = SegDataParams {
        name: "loveda".into(),
        format: SegFormat::Loveda,
        val_tiles: None,
        labels: Default::default(),
        clutter: false,
        trainval: false,
    };
    seg_data::list_samples(dir, &params, Part::Train)
        .unwrap()
        .into()
}

/// Rank 1 of 2, global batches of 4: two samples per step.
fn shard() -> Shard {
    Shard::new(9, 1, 2, 4).unwrap()
}

fn crop_settings() -> CropSettings {
    CropSettings {
        size: 64,
        flips: true,
        rotate: true,
    }
}

fn seg_augment() -> rsfm_model::data::transforms::seg_augment::SegAugment {
    rsfm_model::data::transforms::seg_augment::SegAugment::crop_only(48, IGNORE_INDEX)
}

fn det_batches(samples: &Arc<[DetSample]>, threads: usize, first: u64) -> Vec<Batch<DetCrop>> {
    let loader = Loader::start(
        det_data::training_crops(Arc::clone(samples), crop_settings()),
        shard_plans(shard(), samples.len(), first, STEPS),
        loader_config(threads),
    );
    loader.collect::<anyhow::Result<Vec<_>>>().unwrap()
}

fn seg_batches(samples: &Arc<[SegSample]>, threads: usize, first: u64) -> Vec<Batch<SegCrop>> {
    let loader = Loader::start(
        seg_data::training_crops(Arc::clone(samples), seg_augment()),
        shard_plans(shard(), samples.len(), first, STEPS),
        loader_config(threads),
    );
    loader.collect::<anyhow::Result<Vec<_>>>().unwrap()
}

/// Bitwise equality of float samples.
fn same(a: &[f32], b: &[f32]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits())
}

/// Bitwise equality of loaded planes and a `[3, S, S]` float tensor.
fn same_as_tensor(planes: &[f32], tensor: &Tensor) -> bool {
    let want = Vec::<f32>::try_from(tensor.contiguous().view([-1])).unwrap();
    tensor.kind() == Kind::Float && same(planes, &want)
}

#[test]
fn detection_batches_are_bitwise_the_same_for_one_and_four_threads() {
    let dir = tempfile::tempdir().unwrap();
    let samples = det_samples(dir.path());
    let one = det_batches(&samples, 1, 0);
    let four = det_batches(&samples, 4, 0);
    assert_eq!(one.len(), STEPS as usize);
    assert_eq!(four.len(), STEPS as usize);
    let mut objects = 0;
    for (step, (a, b)) in one.iter().zip(&four).enumerate() {
        assert_eq!((a.step, b.step), (step as u64, step as u64));
        assert_eq!(a.items.len(), 2);
        for (crop_a, crop_b) in a.items.iter().zip(&b.items) {
            assert_eq!(crop_a.pixels.len(), 3 * 64 * 64);
            assert!(same(&crop_a.pixels, &crop_b.pixels), "step {step}");
            assert_eq!(crop_a.targets, crop_b.targets);
            objects += crop_a.targets.boxes.len();
        }
    }
    assert!(objects > 0, "the crops hold objects");
    // The crops differ between samples, so equal batches are not trivially equal.
    assert!(!same(&one[0].items[0].pixels, &one[0].items[1].pixels));
}

#[test]
fn detection_loader_gives_the_crops_of_each_samples_own_stream() {
    let dir = tempfile::tempdir().unwrap();
    let samples = det_samples(dir.path());
    let loaded = det_batches(&samples, 2, 0);
    for (step, batch) in (0u64..).zip(&loaded) {
        for (mut sample, crop) in shard()
            .samples(step, samples.len())
            .into_iter()
            .zip(&batch.items)
        {
            let (image, targets) = det_data::training_crop(
                &samples[sample.index],
                &crop_settings(),
                &mut sample.augment,
            )
            .unwrap();
            let want = standardize(&to_tensor(&image));
            assert!(same_as_tensor(&crop.pixels, &want), "step {step}");
            assert_eq!(crop.targets, targets);
        }
    }
    let (images, targets) = det_data::crop_batch(&loaded[1].items, 64);
    assert_eq!(images.size(), vec![2, 3, 64, 64]);
    for (k, crop) in loaded[1].items.iter().enumerate() {
        assert!(same_as_tensor(&crop.pixels, &images.get(k as i64)));
        assert_eq!(targets[k], crop.targets);
    }
}

#[test]
fn detection_loader_resumed_at_a_step_gives_the_same_following_batches() {
    let dir = tempfile::tempdir().unwrap();
    let samples = det_samples(dir.path());
    let whole = det_batches(&samples, 2, 0);
    let resumed = det_batches(&samples, 3, 2);
    assert_eq!(resumed.len(), 2);
    for (a, b) in whole[2..].iter().zip(&resumed) {
        assert_eq!(a.step, b.step);
        assert_eq!(a.items, b.items);
    }
}

#[test]
fn segmentation_batches_are_bitwise_the_same_for_one_and_four_threads() {
    let dir = tempfile::tempdir().unwrap();
    let samples = seg_samples(dir.path());
    let one = seg_batches(&samples, 1, 0);
    let four = seg_batches(&samples, 4, 0);
    assert_eq!(one.len(), STEPS as usize);
    for (step, (a, b)) in one.iter().zip(&four).enumerate() {
        assert_eq!((a.step, b.step), (step as u64, step as u64));
        assert_eq!(a.items.len(), 2);
        for (crop_a, crop_b) in a.items.iter().zip(&b.items) {
            assert_eq!(crop_a.pixels.len(), 3 * 48 * 48);
            assert_eq!(crop_a.labels.len(), 48 * 48);
            assert!(same(&crop_a.pixels, &crop_b.pixels), "step {step}");
            assert_eq!(crop_a.labels, crop_b.labels, "step {step}");
        }
    }
    assert!(!same(&one[0].items[0].pixels, &one[0].items[1].pixels));
    // The loader's crops are those each sample's stream draws on the training thread.
    for (step, batch) in (0u64..).zip(&one) {
        for (mut sample, crop) in shard()
            .samples(step, samples.len())
            .into_iter()
            .zip(&batch.items)
        {
            let (picture, label_map) = samples[sample.index].load().unwrap();
            let (image, labels) =
                seg_data::random_crop(&picture, &label_map, &seg_augment(), &mut sample.augment);
            let want = normalize(&to_tensor(&image), 48);
            assert!(same_as_tensor(&crop.pixels, &want), "step {step}");
            assert_eq!(crop.labels, labels.data, "step {step}");
        }
    }
    let (images, labels) = seg_data::crop_batch(&one[2].items, 48);
    assert_eq!(images.size(), vec![2, 3, 48, 48]);
    assert_eq!(
        (labels.size(), labels.kind()),
        (vec![2, 48, 48], Kind::Int64)
    );
    let second = Vec::<i64>::try_from(labels.get(1).view([-1])).unwrap();
    let want: Vec<i64> = one[2].items[1]
        .labels
        .iter()
        .map(|&l| i64::from(l))
        .collect();
    assert_eq!(second, want);
    assert!(same_as_tensor(&one[2].items[1].pixels, &images.get(1)));
}

#[test]
fn segmentation_loader_resumed_at_a_step_gives_the_same_following_batches() {
    let dir = tempfile::tempdir().unwrap();
    let samples = seg_samples(dir.path());
    let whole = seg_batches(&samples, 2, 0);
    let resumed = seg_batches(&samples, 4, 3);
    assert_eq!(resumed.len(), 1);
    assert_eq!(resumed[0].step, 3);
    assert_eq!(whole[3].items, resumed[0].items);
}

#[test]
fn an_unreadable_segmentation_image_fails_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let samples = seg_samples(dir.path());
    let damaged = damage_images(dir.path());
    let loader = Loader::start(
        seg_data::training_crops(Arc::clone(&samples), seg_augment()),
        // Every sample of a dataset of one comes from index 0.
        shard_plans(shard(), 1, 0, STEPS),
        loader_config(2),
    );
    let err = loader
        .collect::<anyhow::Result<Vec<_>>>()
        .expect_err("a damaged image must fail");
    let message = format!("{err:#}");
    assert!(
        damaged
            .iter()
            .any(|path| message.contains(&*path.to_string_lossy())),
        "{message}"
    );
}

/// Overwrites every file below an `images` folder of `dir`; returns their paths.
fn damage_images(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut damaged = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(folder) = pending.pop() {
        for entry in std::fs::read_dir(&folder).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
            } else if path
                .components()
                .any(|c| c.as_os_str().to_string_lossy().contains("images"))
            {
                std::fs::write(&path, b"not an image").unwrap();
                damaged.push(path);
            }
        }
    }
    assert!(!damaged.is_empty());
    damaged
}
