//! The threaded loader: the same batches whatever the thread count, epochs change the
//! augmentation, and a damaged image fails naming its file.

use std::path::PathBuf;

use rsfm_model::data::error::DataError;
use rsfm_model::data::image_io::{write_jpeg, Image};
use rsfm_model::data::loader::{
    mae_images, Batch, BatchPlan, Loader, LoaderConfig, MaeAugment, Sample,
};

/// JPEGs of assorted sizes (one gray) with smooth content, so crops differ visibly.
fn write_images(dir: &std::path::Path, count: usize) -> Vec<PathBuf> {
    (0..count)
        .map(|i| {
            let (w, h, c) = (
                40 + 7 * i as u32,
                36 + 5 * i as u32,
                if i == 3 { 1 } else { 3 },
            );
            let mut image = Image::new(w, h, c);
            for y in 0..h {
                for x in 0..w {
                    for (k, v) in image.pixel_mut(x, y).iter_mut().enumerate() {
                        *v = ((x * 5 + y * 3 + k as u32 * 40 + i as u32 * 17) % 256) as u8;
                    }
                }
            }
            let path = dir.join(format!("img{i}.jpg"));
            write_jpeg(&path, &image, 90).unwrap();
            path
        })
        .collect()
}

fn plans(len: usize, batch: usize, steps: u64) -> Vec<BatchPlan> {
    (0..steps)
        .map(|step| BatchPlan {
            step,
            samples: (0..batch)
                .map(|slot| {
                    let position = step as usize * batch + slot;
                    Sample {
                        index: (position * 7) % len,
                        epoch: (position / len) as u64,
                    }
                })
                .collect(),
        })
        .collect()
}

fn mae_loader(
    paths: &[PathBuf],
    side: u32,
    plans: Vec<BatchPlan>,
    config: LoaderConfig,
    seed: u64,
) -> Loader<Vec<f32>, DataError> {
    let produce = mae_images(paths.into(), MaeAugment::new(side), seed);
    Loader::start(produce, plans, config)
}

fn load_all(paths: &[PathBuf], threads: usize, prefetch: usize) -> Vec<Batch<Vec<f32>>> {
    let config = LoaderConfig { threads, prefetch };
    let loader = mae_loader(paths, 24, plans(paths.len(), 4, 5), config, 3);
    loader.collect::<Result<Vec<_>, _>>().unwrap()
}

#[test]
fn batches_are_the_same_for_one_and_four_threads() {
    let dir = tempfile::tempdir().unwrap();
    let paths = write_images(dir.path(), 6);
    let one = load_all(&paths, 1, 1);
    let four = load_all(&paths, 4, 3);
    assert_eq!(one.len(), 5);
    assert_eq!(one, four);
    for (step, batch) in one.iter().enumerate() {
        assert_eq!(batch.step, step as u64);
        assert_eq!(batch.items.len(), 4);
        for image in &batch.items {
            assert_eq!(image.len(), 3 * 24 * 24);
            assert!(image.iter().all(|v| v.is_finite()));
        }
    }
    // Index 0 is drawn in epoch 0 (step 0) and again in epoch 1: different crops.
    let first = &one[0].items[0];
    let (step, slot) = plans(6, 4, 5)
        .iter()
        .flat_map(|p| {
            p.samples
                .iter()
                .enumerate()
                .map(move |(s, x)| (p.step, s, *x))
        })
        .find(|(_, _, x)| x.index == 0 && x.epoch == 1)
        .map(|(step, slot, _)| (step as usize, slot))
        .unwrap();
    assert_ne!(first, &one[step].items[slot]);
}

#[test]
fn a_damaged_image_fails_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let mut paths = write_images(dir.path(), 4);
    let damaged = dir.path().join("damaged.jpg");
    let bytes = std::fs::read(&paths[1]).unwrap();
    std::fs::write(&damaged, &bytes[..bytes.len() / 3]).unwrap();
    paths[2] = damaged.clone();
    let config = LoaderConfig {
        threads: 2,
        prefetch: 2,
    };
    let loader = mae_loader(&paths, 16, plans(4, 4, 3), config, 1);
    let err = loader
        .collect::<Result<Vec<_>, _>>()
        .expect_err("a truncated JPEG must fail");
    let message = err.to_string();
    assert!(message.contains("damaged.jpg"), "{message}");
}
