//! Oriented R-CNN throughput on a tiny ViTDet backbone at 512²: one JSON line with the mean
//! seconds per training step (forward, losses, backward, AdamW update) and inference
//! images per second (proposals, RoI head, per-class rotated NMS).
//!
//! `benches/models/detector.sh` runs it on the CPU; `RSFM_BENCH_DEVICE=cuda:0` and
//! `RSFM_BENCH_BATCH=8` change device and batch, `RSFM_BENCH_REL_POS=1` turns on the
//! backbone's relative position biases.

use std::time::Instant;

use rsfm_model::arch::VitConfig;
use rsfm_model::geometry::RotatedBox;
use rsfm_model::nn::oriented_rcnn::{ImageTargets, OrientedRcnn, OrientedRcnnConfig};
use rsfm_model::nn::vitdet::VitDetConfig;
use rsfm_model::train::optim::{AdamW, AdamWConfig};
use rsfm_model::train::params::decay_groups;
use rsfm_model::train::stage::parse_device;
use tch::nn::VarStore;
use tch::{Kind, Tensor};

const SIDE: i64 = 512;
const TIMED: usize = 3;

fn targets(index: usize) -> ImageTargets {
    let mut t = ImageTargets::default();
    for k in 0..12 {
        let f = (index * 12 + k) as f64;
        t.boxes.push(RotatedBox::new(
            40.0 + (f * 37.0) % 430.0,
            40.0 + (f * 61.0) % 430.0,
            30.0 + f % 40.0,
            12.0 + f % 9.0,
            (f * 0.37) % 3.0 - 1.5,
        ));
        t.labels.push(k % 15);
    }
    t
}

fn main() -> anyhow::Result<()> {
    let device =
        parse_device(&std::env::var("RSFM_BENCH_DEVICE").unwrap_or_else(|_| "cpu".into()))?;
    let batch: usize = std::env::var("RSFM_BENCH_BATCH")
        .ok()
        .map(|b| b.parse())
        .transpose()?
        .unwrap_or(2);
    let vit: VitConfig = serde_json::from_value(serde_json::json!({
        "patch_size": 16, "image_size": SIDE, "embed_dim": 192, "depth": 12, "num_heads": 3, "drop_path": 0.1
    }))?;
    let rel_pos = std::env::var("RSFM_BENCH_REL_POS").is_ok_and(|v| v == "1");
    let vitdet = VitDetConfig {
        window_size: 8,
        global_stages: None,
        rel_pos,
    };
    let config = OrientedRcnnConfig::new(15);
    tch::manual_seed(0);
    let vs = VarStore::new(device);
    let model = OrientedRcnn::new(&vs.root(), &vit, &vitdet, &config);
    let mut opt = AdamW::new(decay_groups(&vs, 0.05), AdamWConfig::default());
    let images = Tensor::randn([batch as i64, 3, SIDE, SIDE], (Kind::Float, device));
    let goals: Vec<ImageTargets> = (0..batch).map(targets).collect();
    let mut step = || {
        opt.zero_grad();
        let loss = model.losses(&images, &goals).total();
        loss.backward();
        opt.step(1e-4);
        loss.double_value(&[])
    };
    step();
    let started = Instant::now();
    for _ in 0..TIMED {
        step();
    }
    let step_s = started.elapsed().as_secs_f64() / TIMED as f64;
    let single = images.narrow(0, 0, 1);
    let detections = model.predict(&single)[0].len();
    let started = Instant::now();
    for _ in 0..TIMED {
        model.predict(&single);
    }
    let predict_s = started.elapsed().as_secs_f64() / TIMED as f64;
    let line = serde_json::json!({
        "model": "oriented-rcnn vit-tiny/16",
        "rel_pos": rel_pos,
        "pyramid_levels": model.strides().len(),
        "image_side": SIDE,
        "device": format!("{device:?}"),
        "threads": tch::get_num_threads(),
        "train_batch": batch,
        "train_step_s": step_s,
        "train_images_per_s": batch as f64 / step_s,
        "predict_image_s": predict_s,
        "predict_images_per_s": 1.0 / predict_s,
        "detections_per_image": detections,
    });
    println!("{line}");
    Ok(())
}
