//! Throughput of rsfm's image loader: decode + MAE augmentation (random resized crop
//! 0.2–1.0, bicubic, flip, normalisation) to 224², batches of 64, on a folder of JPEGs.
//! `benches/loader/run.sh` runs it next to PyTorch's DataLoader with torchvision transforms
//! on the same files.
//!
//! Usage: `loader DIR` (generates a synthetic Million-AID tree in DIR when it has none and
//! writes DIR/files.txt, the file list both sides read). Environment: `RSFM_BENCH_THREADS`
//! (loader threads, default 2), `RSFM_BENCH_IMAGES` (images to generate, 512),
//! `RSFM_BENCH_SIZE` (side of the generated JPEGs, 320), `RSFM_BENCH_EPOCHS` (2).
//! Prints one JSON line.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use rsfm_model::data::formats::millionaid;
use rsfm_model::data::loader::{mae_images, BatchPlan, Loader, LoaderConfig, MaeAugment, Sample};
use rsfm_model::data::synth::{generate, SynthDataset, SynthOptions};
use rsfm_model::rng::SplitMix64;

#[path = "../bench_env.rs"]
mod bench_env;
use bench_env::env_number;

const BATCH: usize = 64;

/// The JPEGs under `dir`, generating them first when there are none.
fn files(dir: &Path) -> Vec<PathBuf> {
    let list = dir.join("files.txt");
    if !list.exists() {
        let options = SynthOptions {
            images: env_number("RSFM_BENCH_IMAGES", 512),
            seed: 0,
            size: Some(env_number("RSFM_BENCH_SIZE", 320) as u32),
            test_images: 0,
        };
        generate(SynthDataset::MillionAid, dir, &options).expect("generate images");
        let paths: Vec<String> = millionaid::list_images(dir)
            .expect("list images")
            .into_iter()
            .map(|s| s.path.display().to_string())
            .collect();
        std::fs::write(&list, paths.join("\n") + "\n").expect("write files.txt");
    }
    std::fs::read_to_string(&list)
        .expect("read files.txt")
        .lines()
        .map(PathBuf::from)
        .collect()
}

fn main() {
    // `cargo bench` adds `--bench`.
    let dir = std::env::args()
        .skip(1)
        .find(|a| a != "--bench")
        .map(PathBuf::from)
        .expect("usage: loader DIR");
    let paths: Arc<[PathBuf]> = files(&dir).into();
    let threads = env_number("RSFM_BENCH_THREADS", 2);
    let epochs = env_number("RSFM_BENCH_EPOCHS", 2) as u64;
    let len = paths.len();
    let per_epoch = len / BATCH;
    let plans: Vec<BatchPlan> = (0..epochs)
        .flat_map(|epoch| {
            let order = SplitMix64::new(0, 1, epoch).permutation(len);
            (0..per_epoch).map(move |b| BatchPlan {
                step: epoch * per_epoch as u64 + b as u64,
                samples: order[b * BATCH..(b + 1) * BATCH]
                    .iter()
                    .map(|&index| Sample { index, epoch })
                    .collect(),
            })
        })
        .collect();
    let batches = plans.len();
    let config = LoaderConfig {
        threads,
        prefetch: 2 * threads,
    };
    let mut loader = Loader::start(mae_images(paths, MaeAugment::new(224), 0), plans, config);
    // The first batch includes thread start-up: timing starts after it, as on the PyTorch side.
    loader
        .next_batch()
        .expect("a batch")
        .expect("readable images");
    let started = Instant::now();
    let mut images = 0;
    for batch in loader {
        images += batch.expect("readable images").items.len();
    }
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "{{\"side\":\"rsfm\",\"threads\":{threads},\"files\":{len},\"batches\":{batches},\"images_per_s\":{:.1}}}",
        images as f64 / seconds
    );
}
