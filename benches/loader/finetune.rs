//! Throughput of rsfm's loader for the fine-tuning stages, as `finetune-det` and
//! `finetune-seg` run it: read and decode the image (and its label PNG), take a random
//! `crop`-pixel window, flip and turn it (detection: flips and quarter turns, objects moved
//! along; segmentation: a horizontal flip of image and labels), normalise, batches of 8.
//! `benches/loader/run.sh` runs it next to PyTorch's DataLoader with torchvision doing the
//! same on the same files (`finetune_loader.py`).
//!
//! Usage: `loader_finetune DIR` (generates synthetic DOTA and LoveDA trees in DIR/dota and
//! DIR/loveda when missing and writes their `files.txt`, the lists both sides read).
//! Environment: `RSFM_BENCH_THREADS` (loader threads, 2), `RSFM_BENCH_FT_IMAGES` (images per
//! dataset, 160), `RSFM_BENCH_FT_SIZE` (side of the generated images, 640),
//! `RSFM_BENCH_FT_CROP` (crop side, 512), `RSFM_BENCH_EPOCHS` (2). Prints one JSON line per
//! task.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use rsfm_model::data::loader::{BatchPlan, Loader, LoaderConfig};
use rsfm_model::data::synth::{generate, SynthDataset, SynthOptions};
use rsfm_model::data::transforms::seg_augment::SegAugment;
use rsfm_model::params::data::{DetDataParams, DetFormat, SegDataParams, SegFormat};
use rsfm_model::train::det_data::{self, CropSettings};
use rsfm_model::train::replicas::{Shard, ShardSample};
use rsfm_model::train::seg_data::{self, Part, IGNORE_INDEX};
use rsfm_model::train::step_batches::shard_plans;

#[path = "../bench_env.rs"]
mod bench_env;
use bench_env::env_number;

const BATCH: usize = 8;

/// Generates `dataset` into `dir` unless it is there; writes `dir/files.txt` with one line per
/// training image: the image path, and for segmentation a tab and the label path.
fn prepare(dataset: SynthDataset, dir: &Path, segmentation: bool) {
    let list = dir.join("files.txt");
    if list.exists() {
        return;
    }
    let options = SynthOptions {
        images: env_number("RSFM_BENCH_FT_IMAGES", 160),
        seed: 0,
        size: Some(env_number("RSFM_BENCH_FT_SIZE", 640) as u32),
        test_images: 0,
    };
    generate(dataset, dir, &options).expect("generate images");
    let mut lines = Vec::new();
    for path in pngs(dir) {
        let text = path.display().to_string();
        if segmentation && text.contains("/Train/") && text.contains("/images_png/") {
            lines.push(format!(
                "{text}\t{}",
                text.replace("/images_png/", "/masks_png/")
            ));
        } else if !segmentation && text.contains("/train/images/") {
            lines.push(text);
        }
    }
    lines.sort();
    std::fs::write(&list, lines.join("\n") + "\n").expect("write files.txt");
}

/// Every PNG below `dir`.
fn pngs(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(folder) = pending.pop() {
        for entry in std::fs::read_dir(&folder).expect("read dir") {
            let path = entry.expect("dir entry").path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|e| e == "png") {
                found.push(path);
            }
        }
    }
    found
}

/// Images per second of `loader` over its batches, after the first (thread start-up).
fn images_per_s<T: Send + 'static>(mut loader: Loader<T, anyhow::Error>) -> (f64, usize) {
    loader
        .next_batch()
        .expect("a batch")
        .expect("readable samples");
    let started = Instant::now();
    let (mut images, mut batches) = (0, 1);
    for batch in loader {
        images += batch.expect("readable samples").items.len();
        batches += 1;
    }
    (images as f64 / started.elapsed().as_secs_f64(), batches)
}

/// One rank's plans over `epochs` passes of `len` samples.
fn plans(len: usize, epochs: u64) -> impl Iterator<Item = BatchPlan<ShardSample>> + Send {
    let shard = Shard::new(0, 0, 1, BATCH).expect("one rank");
    shard_plans(shard, len, 0, epochs * (len / BATCH) as u64)
}

fn print(task: &str, threads: usize, files: usize, crop: u32, (rate, batches): (f64, usize)) {
    println!(
        "{{\"side\":\"rsfm\",\"task\":\"{task}\",\"threads\":{threads},\"files\":{files},\"crop\":{crop},\"batches\":{batches},\"images_per_s\":{rate:.1}}}"
    );
}

fn main() {
    // `cargo bench` adds `--bench`.
    let dir = std::env::args()
        .skip(1)
        .find(|a| a != "--bench")
        .map(PathBuf::from)
        .expect("usage: loader_finetune DIR");
    let threads = env_number("RSFM_BENCH_THREADS", 2);
    let epochs = env_number("RSFM_BENCH_EPOCHS", 2) as u64;
    let crop = env_number("RSFM_BENCH_FT_CROP", 512) as u32;
    let config = LoaderConfig {
        threads,
        prefetch: 2 * threads,
    };
    // Both sides run one process on the same cores: keep torch's own ops on this thread.
    tch::set_num_threads(1);

    let dota = dir.join("dota");
    prepare(SynthDataset::Dota, &dota, false);
    let det_params = DetDataParams {
        name: "dota".into(),
        format: DetFormat::Dota,
        version: "v2.0".into(),
        trainval: false,
    };
    let samples: Arc<[_]> = det_data::list_samples(&dota, &det_params, Part::Train)
        .expect("list DOTA samples")
        .into();
    let settings = CropSettings {
        size: crop,
        flips: true,
        rotate: true,
    };
    let loader = Loader::start(
        det_data::training_crops(Arc::clone(&samples), settings),
        plans(samples.len(), epochs),
        config,
    );
    print(
        "detection",
        threads,
        samples.len(),
        crop,
        images_per_s(loader),
    );

    let loveda = dir.join("loveda");
    prepare(SynthDataset::Loveda, &loveda, true);
    let seg_params = SegDataParams {
        name: "loveda".into(),
        format: SegFormat::Loveda,
        val_tiles: None,
        labels: Default::default(),
        clutter: false,
        trainval: false,
    };
    let samples: Arc<[_]> = seg_data::list_samples(&loveda, &seg_params, Part::Train)
        .expect("list LoveDA samples")
        .into();
    let loader = Loader::start(
        seg_data::training_crops(
            Arc::clone(&samples),
            SegAugment::crop_only(crop, IGNORE_INDEX),
        ),
        plans(samples.len(), epochs),
        config,
    );
    print(
        "segmentation",
        threads,
        samples.len(),
        crop,
        images_per_s(loader),
    );
}
